"""netlink.py: packed-struct parsing (property tests) and real sock_diag dumps on loopback."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import time
from typing import List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmedic import netlink

MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


def diag_msg(family: int, state: int, port: int, raw: bytes, *, uid: int, inode: int) -> bytes:
    """A ``struct inet_diag_msg`` as the kernel lays it out (ports big-endian)."""
    return MSG.pack(
        family, state, 0, 0, port.to_bytes(2, "big"), b"\0\0", raw.ljust(16, b"\0"),
        b"\0" * 16, 0, b"\0" * 8, 0, 0, 0, uid, inode,
    )  # fmt: skip


def nlmsg(mtype: int, payload: bytes, seq: int = 1, flags: int = netlink.NLM_F_MULTI) -> bytes:
    body = netlink.NLMSGHDR.pack(16 + len(payload), mtype, flags, seq, 0) + payload
    return body + b"\0" * (-len(body) % 4)


def test_request_layout() -> None:
    request = netlink.build_request("tcp", "ipv6", netlink.states_mask([10]), 7)
    assert len(request) == 72
    assert netlink.NLMSGHDR.unpack_from(request) == (72, 20, 0x301, 7, 0)
    family, proto, ext, states = struct.unpack_from("=BBBxI", request, 16)
    assert (family, proto, ext, states) == (socket.AF_INET6, socket.IPPROTO_TCP, 0, 1 << 10)
    assert request[24:] == b"\0" * 48  # the sockid filter is left empty


@given(
    v6=st.booleans(),
    raw=st.binary(min_size=16, max_size=16),
    port=st.integers(0, 65535),
    state=st.sampled_from(sorted(netlink.TCP_STATES)),
    uid=st.integers(0, 2**32 - 1),
    inode=st.integers(0, 2**32 - 1),
)
def test_parse_diag_msg_roundtrip(  # noqa: PLR0917 - one argument per hypothesis strategy
    v6: bool, raw: bytes, port: int, state: int, uid: int, inode: int
) -> None:
    family = socket.AF_INET6 if v6 else socket.AF_INET
    address = raw if v6 else raw[:4]
    data = b"junk" + diag_msg(family, state, port, address, uid=uid, inode=inode)
    parsed = netlink.parse_diag_msg("udp", data, 4)
    expected = str(ipaddress.IPv6Address(address) if v6 else ipaddress.IPv4Address(address))
    # inet_ntop and ipaddress spell v4-mapped addresses differently; compare as addresses.
    assert ipaddress.ip_address(parsed.address) == ipaddress.ip_address(expected)
    assert parsed == netlink.DiagSocket(
        "udp", "ipv6" if v6 else "ipv4", parsed.address, port, inode, uid,
        netlink.TCP_STATES[state],
    )  # fmt: skip


def test_parse_diag_msg_rejects_truncated_and_unknown_family() -> None:
    good = diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=1)
    with pytest.raises(netlink.NetlinkProtocolError, match="truncated"):
        netlink.parse_diag_msg("tcp", good[:-1])
    with pytest.raises(netlink.NetlinkProtocolError, match="family 99"):
        netlink.parse_diag_msg("tcp", diag_msg(99, 10, 22, b"\1" * 16, uid=0, inode=2))


def test_iter_messages_multipart_skips_other_sequences() -> None:
    one = diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=1)
    buffer = (
        nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, seq=1)
        + nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, seq=9)  # a late reply to another request
        + nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, seq=1, flags=netlink.NLM_F_DUMP_INTR)
        + nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0", seq=1)
    )
    seen = [(mtype, flags) for mtype, flags, _ in netlink.iter_messages(buffer, 1)]
    assert seen == [
        (netlink.SOCK_DIAG_BY_FAMILY, netlink.NLM_F_MULTI),
        (netlink.SOCK_DIAG_BY_FAMILY, netlink.NLM_F_DUMP_INTR),
        (netlink.NLMSG_DONE, netlink.NLM_F_MULTI),
    ]


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        (errno.ENOENT, netlink.NetlinkUnavailable),  # udp_diag module not loaded
        (errno.EPERM, netlink.NetlinkUnavailable),
        (errno.ENOBUFS, netlink.NetlinkError),
    ],
)
def test_nlmsg_error_raises(code: int, exc: type) -> None:
    error = nlmsg(netlink.NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16)
    with pytest.raises(exc, match=os.strerror(code)):
        list(netlink.iter_messages(error, 1))


def test_nlmsg_error_zero_is_an_ack() -> None:
    ack = nlmsg(netlink.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16)
    assert [m for m, _, _ in netlink.iter_messages(ack, 1)] == [netlink.NLMSG_ERROR]


@given(st.binary(max_size=200), st.integers(0, 3))
def test_iter_messages_never_crashes_on_garbage(data: bytes, seq: int) -> None:
    try:
        for _ in netlink.iter_messages(data, seq):
            pass
    except netlink.NetlinkError:
        pass  # a clear, catchable error is the contract; anything else fails the test


def test_bad_length_is_a_protocol_error() -> None:
    header = netlink.NLMSGHDR.pack(4000, netlink.SOCK_DIAG_BY_FAMILY, 2, 1, 0)
    with pytest.raises(netlink.NetlinkProtocolError):
        list(netlink.iter_messages(header + b"\0" * 56, 1))


def walk_all(proto: str, data: bytes, seq: int) -> List[netlink.DiagSocket]:
    """The message-by-message decode of one buffer: what the run decoder must equal."""
    offsets = [
        payload
        for mtype, _flags, payload in netlink.iter_messages(data, seq)
        if mtype == netlink.SOCK_DIAG_BY_FAMILY
    ]
    return netlink.parse_diag_msgs(proto, data, offsets)


def run_then_walk(proto: str, data: bytes, seq: int) -> List[netlink.DiagSocket]:
    """As DiagClient decodes a buffer: the walk after the run, the run in bulk, the rest."""
    stride, run = netlink.uniform_run(data, seq)
    offsets = [
        payload
        for mtype, _flags, payload in netlink.iter_messages(data, seq, stride * run)
        if mtype == netlink.SOCK_DIAG_BY_FAMILY
    ]
    found = netlink.parse_run(proto, data, stride, run) if run else []
    return found + netlink.parse_diag_msgs(proto, data, offsets)


def test_a_dump_buffer_is_one_run() -> None:
    """Messages of one length (as the kernel sends them) are decoded as one run."""
    v4 = [
        diag_msg(socket.AF_INET, 10, 20000 + i, b"\x7f\0\0\1", uid=i, inode=7 + i) for i in range(5)
    ]
    attribute = b"\x05\0\x08\0\0\0\0\0"  # an 8-byte rtattr, as INET_DIAG_SHUTDOWN comes
    data = b"".join(nlmsg(netlink.SOCK_DIAG_BY_FAMILY, m + attribute, seq=3) for m in v4)
    done = nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0", seq=3)
    assert netlink.uniform_run(data + done, 3) == (16 + 72 + 8, 5)
    parsed = netlink.parse_run("tcp", data, 96, 5)
    assert parsed == walk_all("tcp", data + done, 3)
    assert [(s.port, s.uid, s.inode, s.address, s.state) for s in parsed[:2]] == [
        (20000, 0, 7, "127.0.0.1", "LISTEN"), (20001, 1, 8, "127.0.0.1", "LISTEN")
    ]  # fmt: skip


def test_a_run_ends_at_the_first_message_that_differs() -> None:
    one = diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=1)
    plain = nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one)
    stride = len(plain)
    assert netlink.uniform_run(plain * 3, 1) == (stride, 3)
    longer = nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one + b"\0" * 8)
    late = nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, seq=9)
    flagged = nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, flags=netlink.NLM_F_DUMP_INTR)
    done = nlmsg(netlink.NLMSG_DONE, b"\0" * (stride - 16))  # as long as a socket's
    for odd in (longer, late, flagged, done):
        assert netlink.uniform_run(plain * 2 + odd + plain, 1) == (stride, 2)
        if odd is not longer:
            assert netlink.uniform_run(odd + plain, 1) == (0, 0)
    assert netlink.uniform_run(longer + plain, 1) == (len(longer), 1)  # a run of its own length
    assert netlink.uniform_run(plain[:-4], 1) == (0, 0)  # shorter than its own length
    assert netlink.uniform_run(nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0"), 1) == (0, 0)
    assert netlink.uniform_run(b"", 1) == (0, 0)


message_spec = st.tuples(
    st.sampled_from([socket.AF_INET, socket.AF_INET6, socket.AF_INET, 99]),  # 99: unknown
    st.sampled_from(sorted(netlink.TCP_STATES)),
    st.integers(0, 65535),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**32 - 1),  # uid
    st.integers(0, 2**32 - 1),  # inode
    st.sampled_from([b"", b"\0" * 8, b"\0" * 12]),  # attributes after the struct
    st.sampled_from([1, 1, 1, 2]),  # sequence (2: a late reply to another request)
    st.sampled_from([netlink.NLM_F_MULTI, netlink.NLM_F_MULTI, netlink.NLM_F_DUMP_INTR]),
)


@given(st.lists(message_spec, max_size=12), st.booleans(), st.binary(max_size=24))
def test_run_decoding_equals_the_message_walk(
    specs: List[Tuple[int, int, int, bytes, int, int, bytes, int, int]], done: bool, junk: bytes
) -> None:
    """Any buffer (runs, mixed lengths, other sequences, flags, garbage after) decodes alike."""
    data = b"".join(
        nlmsg(netlink.SOCK_DIAG_BY_FAMILY,
              diag_msg(fam, state, port, raw, uid=uid, inode=inode) + extra, seq, flags)
        if state != netlink.TCP_LISTEN or port % 7  # now and then a DONE or an ACK mid-buffer
        else nlmsg(netlink.NLMSG_DONE if port % 2 else netlink.NLMSG_ERROR, b"\0" * 20, seq)
        for fam, state, port, raw, uid, inode, extra, seq, flags in specs
    )  # fmt: skip
    if done:
        data += nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0")
    data += junk
    try:
        expected: object = walk_all("udp", data, 1)
    except netlink.NetlinkError as exc:
        expected = type(exc)
    try:
        got: object = run_then_walk("udp", data, 1)
    except netlink.NetlinkError as exc:
        got = type(exc)
    assert got == expected


def test_state_counts_from_a_run_equal_the_walk() -> None:
    """DiagClient.count reads a run's state bytes in bulk: as many as the dump lists."""
    listener = make_time_wait(300)
    mask = netlink.states_mask([netlink.TCP_TIME_WAIT])
    try:
        with netlink.DiagClient() as client:
            runs = [run for _data, _stride, run, _rest in client._replies("tcp", "ipv4", mask)]
            assert sum(runs) >= 300  # the kernel's buffers are runs: the bulk path is tested
            for _attempt in range(3):  # other TIME_WAIT sockets may expire in between
                counts = client.count("tcp", "ipv4", mask)
                listed = client.dump("tcp", "ipv4", mask)
                if counts == {"TIME_WAIT": len(listed)}:
                    break
        assert counts == {"TIME_WAIT": len(listed)}
        assert len(listed) >= 300
    finally:
        listener.close()


def _inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def test_real_listeners_v4_v6_tcp_udp() -> None:
    specs = [
        (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", "tcp", "ipv4", "LISTEN"),
        (socket.AF_INET6, socket.SOCK_STREAM, "::1", "tcp", "ipv6", "LISTEN"),
        (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", "udp", "ipv4", "CLOSE"),
        (socket.AF_INET6, socket.SOCK_DGRAM, "::1", "udp", "ipv6", "CLOSE"),
    ]
    opened = []
    try:
        expected = set()
        for family, kind, address, proto, fam_name, state in specs:
            sock = socket.socket(family, kind)
            opened.append(sock)
            sock.bind((address, 0))
            if kind == socket.SOCK_STREAM:
                sock.listen()
            port = sock.getsockname()[1]
            expected.add(netlink.DiagSocket(proto, fam_name, address, port, _inode(sock), 0, state))
        assert expected <= set(netlink.bound_sockets())
    finally:
        for sock in opened:
            sock.close()


def test_connected_udp_is_not_bound_unless_asked() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with server, client:
        server.bind(("127.0.0.1", 0))
        client.connect(server.getsockname())
        inodes = {s.inode for s in netlink.bound_sockets(families=["ipv4"])}
        assert _inode(server) in inodes
        assert _inode(client) not in inodes
        wider = netlink.bound_sockets(
            udp_states=[netlink.TCP_CLOSE, netlink.TCP_ESTABLISHED], families=["ipv4"]
        )
        assert _inode(client) in {s.inode for s in wider}


def make_time_wait(count: int) -> socket.socket:
    """``count`` TIME_WAIT sockets on loopback (client closes first); returns the listener."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        client.close()
        server.close()
    return listener


def test_time_wait_sockets_are_filtered_in_the_kernel() -> None:
    before = len(netlink.bound_sockets())
    listener = make_time_wait(3000)
    try:
        time_wait = netlink.tcp_state_counts([netlink.TCP_TIME_WAIT])["TIME_WAIT"]
        assert time_wait >= 3000
        started = time.perf_counter()
        found = netlink.bound_sockets()
        elapsed = time.perf_counter() - started
        assert {s.state for s in found} <= {"LISTEN", "CLOSE"}
        assert _inode(listener) in {s.inode for s in found}
        # 3000 TIME_WAIT sockets leaking through would show; a few listeners may come and go.
        assert len(found) - before < 100
        assert elapsed < 1.0
    finally:
        listener.close()


def test_state_counts_counts_established() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        counts = netlink.tcp_state_counts([netlink.TCP_ESTABLISHED, netlink.TCP_LISTEN])
        assert counts["ESTABLISHED"] >= 2  # both ends of the loopback connection
        assert counts["LISTEN"] >= 1
    finally:
        for sock in (client, server, listener):
            sock.close()
