"""netlink.py: reply parsing against a message-by-message oracle (property tests), real dumps.

netlink.parse_replies decodes runs of same-length messages a field at a time;
``oracle`` below is the plain way, one ``struct`` unpack per message, and the
two must agree on any buffer."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
import time
from typing import Any, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmedic import netlink

MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


def diag_msg(
    family: int, state: int, port: int, raw: bytes, *, uid: int, inode: int, ifindex: int = 0
) -> bytes:
    """A ``struct inet_diag_msg`` as the kernel lays it out (ports big-endian)."""
    return MSG.pack(
        family, state, 0, 0, port.to_bytes(2, "big"), b"\0\0", raw.ljust(16, b"\0"),
        b"\0" * 16, ifindex, b"\0" * 8, 0, 0, 0, uid, inode,
    )  # fmt: skip


def attribute(kind: int, value: bytes) -> bytes:
    """One netlink attribute, padded to NLA_ALIGN."""
    body = struct.pack("=HH", 4 + len(value), kind) + value
    return body + b"\0" * (-len(body) % 4)


SHUTDOWN, SKV6ONLY, MARK = 8, 11, 15
# What may follow the struct: nothing or pad, the kernel's attributes (SHUTDOWN, then
# SKV6ONLY, then MARK), and SKV6ONLY elsewhere than second (the walk finds it).
AFTER = [
    b"", b"\0" * 8, b"\0" * 12, b"\0" * 2,
    attribute(SHUTDOWN, b"\0") + attribute(SKV6ONLY, b"\1") + attribute(MARK, b"\0" * 4),
    attribute(SHUTDOWN, b"\0") + attribute(SKV6ONLY, b"\0"),
    attribute(MARK, b"\0" * 4) + attribute(SKV6ONLY, b"\1"),
]


def v6only_of(attributes: bytes) -> Any:
    """SKV6ONLY among the attributes after a message's struct, one at a time."""
    at = 0
    while at + 4 <= len(attributes):
        length, kind = struct.unpack_from("=HH", attributes, at)
        if length < 4:
            return None
        if kind == SKV6ONLY and length >= 5:
            return bool(attributes[at + 4])
        at += (length + 3) & ~3
    return None


def nlmsg(mtype: int, payload: bytes, seq: int = 1, flags: int = netlink.NLM_F_MULTI) -> bytes:
    """A netlink message, padded to NLMSG_ALIGN (its length field does not count the pad)."""
    body = netlink.NLMSGHDR.pack(16 + len(payload), mtype, flags, seq, 0) + payload
    return body + b"\0" * (-len(body) % 4)


INET_DIAG_MSG = struct.Struct("=BB2x2s2x16s16xI20xII")  # the fields read: family .. inode


def oracle(proto: str, data: bytes, seq: int) -> Tuple[List[netlink.DiagSocket], bool, bool]:
    """What parse_replies must return, decoded one message at a time."""
    sockets, done, interrupted, offset = [], False, False, 0
    while offset + 16 <= len(data) and not done:
        length, mtype, flags, mseq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16 or offset + length > len(data):
            raise netlink.NetlinkProtocolError("length")
        if mseq == seq:
            interrupted = interrupted or bool(flags & netlink.NLM_F_DUMP_INTR)
            if mtype == netlink.NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + 16) if length >= 20 else (None,)
                if code is None:
                    raise netlink.NetlinkProtocolError("no code")
                if code:
                    raise (netlink.NetlinkUnavailable if -code in UNAVAILABLE
                           else netlink.NetlinkError)("errno")  # fmt: skip
            done = mtype == netlink.NLMSG_DONE
            if mtype == netlink.SOCK_DIAG_BY_FAMILY:
                if length < 16 + 72:
                    raise netlink.NetlinkProtocolError("truncated")
                fam, state, sport, src, ifindex, uid, inode = INET_DIAG_MSG.unpack_from(
                    data, offset + 16
                )
                if fam not in (socket.AF_INET, socket.AF_INET6):
                    raise netlink.NetlinkProtocolError("family")
                address = socket.inet_ntop(fam, src[: 4 if fam == socket.AF_INET else 16])
                name = "ipv4" if fam == socket.AF_INET else "ipv6"
                attrs = data[offset + 16 + 72 : offset + length]
                sockets.append(netlink.DiagSocket(
                    proto, name, address, int.from_bytes(sport, "big"), inode, uid,
                    netlink.TCP_STATES.get(state, str(state)), ifindex,
                    v6only_of(attrs) if fam == socket.AF_INET6 else None,
                ))  # fmt: skip
        offset += (length + 3) & ~3
    return sockets, done, interrupted


UNAVAILABLE = {errno.ENOENT, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EINVAL}


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
def test_one_message_roundtrip(  # noqa: PLR0917 - one argument per hypothesis strategy
    v6: bool, raw: bytes, port: int, state: int, uid: int, inode: int
) -> None:
    family = socket.AF_INET6 if v6 else socket.AF_INET
    address = raw if v6 else raw[:4]
    data = nlmsg(netlink.SOCK_DIAG_BY_FAMILY, diag_msg(family, state, port, address, uid=uid,
                                                       inode=inode))  # fmt: skip
    (parsed,), done, interrupted = netlink.parse_replies("udp", data, 1)
    assert (done, interrupted) == (False, False)
    expected = str(ipaddress.IPv6Address(address) if v6 else ipaddress.IPv4Address(address))
    # inet_ntop and ipaddress spell v4-mapped addresses differently; compare as addresses.
    assert ipaddress.ip_address(parsed.address) == ipaddress.ip_address(expected)
    assert parsed == netlink.DiagSocket(
        "udp", "ipv6" if v6 else "ipv4", parsed.address, port, inode, uid,
        netlink.TCP_STATES[state],
    )  # fmt: skip


def test_docstring_example() -> None:
    data = nlmsg(netlink.SOCK_DIAG_BY_FAMILY,
                 diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=4242))  # fmt: skip
    assert netlink.parse_replies("tcp", data, 1)[0] == [
        netlink.DiagSocket("tcp", "ipv4", "127.0.0.1", 22, 4242, 0, "LISTEN")
    ]


def test_truncated_message_and_unknown_family_are_protocol_errors() -> None:
    good = diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=1)
    with pytest.raises(netlink.NetlinkProtocolError, match="truncated"):
        netlink.parse_replies("tcp", nlmsg(netlink.SOCK_DIAG_BY_FAMILY, good[:-4]), 1)
    unknown = diag_msg(99, 10, 22, b"\1" * 16, uid=0, inode=2)
    with pytest.raises(netlink.NetlinkProtocolError, match="family 99"):
        netlink.parse_replies("tcp", nlmsg(netlink.SOCK_DIAG_BY_FAMILY, unknown), 1)


def test_other_sequences_are_skipped_and_an_interrupted_dump_is_said() -> None:
    one = diag_msg(socket.AF_INET, 10, 22, b"\x7f\0\0\1", uid=0, inode=1)
    two = diag_msg(socket.AF_INET, 10, 23, b"\x7f\0\0\1", uid=0, inode=2)
    late = diag_msg(socket.AF_INET, 10, 24, b"\x7f\0\0\1", uid=0, inode=3)
    buffer = (
        nlmsg(netlink.SOCK_DIAG_BY_FAMILY, one, seq=1)
        + nlmsg(netlink.SOCK_DIAG_BY_FAMILY, late, seq=9)  # a late reply to another request
        + nlmsg(netlink.SOCK_DIAG_BY_FAMILY, two, seq=1, flags=netlink.NLM_F_DUMP_INTR)
        + nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0", seq=1)
        + nlmsg(netlink.SOCK_DIAG_BY_FAMILY, late, seq=1)  # after DONE: not read
    )
    sockets, done, interrupted = netlink.parse_replies("tcp", buffer, 1)
    assert [s.inode for s in sockets] == [1, 2]
    assert (done, interrupted) == (True, True)


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
        netlink.parse_replies("tcp", error, 1)


def test_nlmsg_error_zero_is_an_ack() -> None:
    ack = nlmsg(netlink.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16)
    assert netlink.parse_replies("tcp", ack, 1) == ([], False, False)


def test_bad_length_is_a_protocol_error() -> None:
    header = netlink.NLMSGHDR.pack(4000, netlink.SOCK_DIAG_BY_FAMILY, 2, 1, 0)
    with pytest.raises(netlink.NetlinkProtocolError):
        netlink.parse_replies("tcp", header + b"\0" * 56, 1)


@given(st.binary(max_size=300), st.integers(0, 3))
def test_garbage_is_a_netlink_error_or_parses(data: bytes, seq: int) -> None:
    # A clear, catchable error is the contract; anything else fails the test.
    with contextlib.suppress(netlink.NetlinkError):
        netlink.parse_replies("tcp", data, seq)


message_spec = st.tuples(
    st.sampled_from([socket.AF_INET, socket.AF_INET6, socket.AF_INET, 99]),  # 99: unknown
    st.sampled_from(sorted(netlink.TCP_STATES)),
    st.integers(0, 65535),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**32 - 1),  # uid
    st.integers(0, 2**32 - 1),  # inode
    st.sampled_from(AFTER),  # after the struct
    st.sampled_from([1, 1, 1, 2]),  # sequence (2: a late reply to another request)
    st.sampled_from([netlink.NLM_F_MULTI, netlink.NLM_F_MULTI, netlink.NLM_F_DUMP_INTR]),
)


@given(st.lists(message_spec, max_size=12), st.booleans(), st.binary(max_size=24))
def test_parse_replies_equals_the_oracle(
    specs: List[Tuple[int, int, int, bytes, int, int, bytes, int, int]], done: bool, junk: bytes
) -> None:
    """Any buffer (runs, mixed lengths, other sequences, flags, garbage after) decodes alike."""
    data = b"".join(
        nlmsg(netlink.SOCK_DIAG_BY_FAMILY,
              diag_msg(fam, state, port, raw, uid=uid, inode=inode, ifindex=uid % 3) + extra,
              seq, flags)
        if state != netlink.TCP_LISTEN or port % 7  # now and then a DONE or an ACK mid-buffer
        else nlmsg(netlink.NLMSG_DONE if port % 2 else netlink.NLMSG_ERROR, b"\0" * 20, seq)
        for fam, state, port, raw, uid, inode, extra, seq, flags in specs
    )  # fmt: skip
    if done:
        data += nlmsg(netlink.NLMSG_DONE, b"\0\0\0\0")
    data += junk
    try:
        expected: object = oracle("udp", data, 1)
    except netlink.NetlinkError as exc:
        expected = type(exc)
    try:
        got: object = netlink.parse_replies("udp", data, 1)
    except netlink.NetlinkError as exc:
        got = type(exc)
    assert got == expected


def test_a_real_dump_comes_in_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's buffers hold runs of same-length messages: the strided decoding is used."""
    runs: List[int] = []
    real = netlink._parse_run

    def recording(proto: str, data: bytes, start: int, stride: int, count: int) -> Any:
        runs.append(count)
        return real(proto, data, start, stride, count)

    listener = make_time_wait(300)
    monkeypatch.setattr(netlink, "_parse_run", recording)
    try:
        with netlink.DiagClient() as client:
            listed = client.dump("tcp", "ipv4", netlink.states_mask([netlink.TCP_TIME_WAIT]))
    finally:
        listener.close()
    assert len(listed) >= 300 and sum(runs) == len(listed)
    assert max(runs) >= 100


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
            # A socket bound to one IPv6 address (not v4-mapped) is v6-only: the kernel sets it.
            v6only = True if fam_name == "ipv6" else None
            expected.add(netlink.DiagSocket(proto, fam_name, address, port, _inode(sock), 0, state,
                                            0, v6only))  # fmt: skip
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


def time_wait_count() -> int:
    """TIME_WAIT sockets of this namespace, v4 and v6, as sock_diag lists them."""
    mask = netlink.states_mask([netlink.TCP_TIME_WAIT])
    with netlink.DiagClient() as client:
        return sum(len(client.dump("tcp", family, mask)) for family in ("ipv4", "ipv6"))


def test_time_wait_sockets_are_filtered_in_the_kernel() -> None:
    before = len(netlink.bound_sockets())
    listener = make_time_wait(3000)
    try:
        assert time_wait_count() >= 3000
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


def test_a_dump_lists_the_states_asked_for() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        mask = netlink.states_mask([netlink.TCP_ESTABLISHED, netlink.TCP_LISTEN])
        with netlink.DiagClient() as nl:
            found = {s.inode: s.state for s in nl.dump("tcp", "ipv4", mask)}
        assert found[_inode(client)] == found[_inode(server)] == "ESTABLISHED"
        assert found[_inode(listener)] == "LISTEN"
    finally:
        for sock in (client, server, listener):
            sock.close()
