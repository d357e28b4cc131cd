"""A small NETLINK_SOCK_DIAG (inet_diag) client: listening and bound sockets, fast.

What ``ss -tuln`` asks the kernel, in pure Python (``socket`` + ``struct``): one
``SOCK_DIAG_BY_FAMILY`` dump per (protocol, family) with a kernel-side state
filter (``idiag_states``), so the kernel never walks the established hash for a
LISTEN-only TCP request and 100k TIME_WAIT sockets cost nothing.

Which sockets count (see :func:`bound_sockets`):

- TCP: state ``LISTEN`` (10).
- UDP: state ``CLOSE`` (7, shown by ``ss`` as ``UNCONN``) with a non-zero local
  port: the sockets a server binds to receive datagrams, exactly what
  ``ss -ulpn`` lists. Connected UDP sockets (state ``ESTABLISHED``, a remote
  address set by ``connect()``) are client flows on an ephemeral port and are
  left out, like ``ss -l`` does; pass ``udp_states`` to include them.

Only the caller's network namespace is visible: the kernel answers for the
namespace the netlink socket was created in.

EINTR needs no handling here: since Python 3.5 (PEP 475) ``recv`` retries by
itself after a signal unless the handler raises.

Imports are kept to what the ``--only ports`` path needs: the C modules
``_socket`` and ``_struct`` rather than their Python wrappers, ``errno`` on
the error path only, no ``typing`` or ``collections`` at run time.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)

try:
    import _struct as struct  # the C module behind `struct`, without its wrapper's imports
except ImportError:  # pragma: no cover - an interpreter without it
    import struct  # type: ignore[no-redef]

try:
    import _socket as socket  # the C module behind `socket`: same calls, no enum set-up
except ImportError:  # pragma: no cover - an interpreter without it
    import socket  # type: ignore[no-redef]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

# <linux/netlink.h>, <linux/sock_diag.h>, <linux/inet_diag.h>
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH

# TCP states as the kernel numbers them (<net/tcp_states.h>).
TCP_STATES: Dict[int, str] = dict(enumerate((
    "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
    "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
), start=1))  # fmt: skip
TCP_ESTABLISHED = 1
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_LISTEN = 10

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSGERR = struct.Struct("=i")  # negative errno, followed by the request header
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid
# (sport, dport big-endian; src[4], dst[4]; ifindex; cookie[2]) left zero.
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, sockid (sport, dport, src, dst,
# if, cookie), expires, rqueue, wqueue, uid, inode; only the fields read are
# unpacked (family, state, sport, src, uid, inode), the rest are pad bytes.
# Ports are big-endian inside an otherwise host-order struct, so they come out as bytes.
INET_DIAG_MSG = struct.Struct("=BB2x2s2x16s40xII")  # 72 bytes: sizeof(struct inet_diag_msg)
_HEADER = NLMSGHDR.size
NLATTR = struct.Struct("=HH")  # nla_len, nla_type
INET_DIAG_SKV6ONLY = 11
_SHUTDOWN_SIZE = 8  # INET_DIAG_SHUTDOWN, the first attribute: header and one byte, aligned
_V6ONLY_HEAD = NLATTR.pack(5, INET_DIAG_SKV6ONLY)  # the SKV6ONLY attribute's header
_RECV_BUFFER = 1 << 16  # the kernel fills dump replies up to ~32 KiB per recv

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
_FAMILY_NAMES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
_ADDRESS_LEN = {socket.AF_INET: 4, socket.AF_INET6: 16}
# A host has few distinct local addresses: decode each (family, raw bytes) once.
# The family is part of the key: 0.0.0.0 zero-padded has the same bytes as "::".
_ADDRESSES: Dict[Tuple[int, bytes], str] = {}
# How often to redo a dump the kernel flags as interrupted by concurrent changes.
_DUMP_RETRIES = 3


class NetlinkError(Exception):
    """sock_diag could not answer; the caller falls back to another source."""


class NetlinkUnavailable(NetlinkError):
    """No sock_diag here: socket family, protocol or diag module missing, or denied."""


class NetlinkProtocolError(NetlinkError):
    """The kernel's reply did not parse (truncated or unexpected message)."""


class DiagSocket:
    """One socket as inet_diag reports it.

    ``DiagSocket("udp", "ipv4", "0.0.0.0", 1900, 81234, 0, "CLOSE")`` is
    ``0.0.0.0:1900/udp`` held through socket inode 81234 created by uid 0; ``ifindex``
    its device (SO_BINDTODEVICE, a link-local scope; 0: none), ``v6only`` IPV6_V6ONLY
    (None: IPv4). A value, never changed after parsing (``__slots__``, not a
    namedtuple: the ports path does not import ``collections``).
    """

    __slots__ = ("address", "family", "ifindex", "inode", "port", "proto", "state", "uid",
                 "v6only")  # fmt: skip

    def __init__(  # noqa: PLR0917 - positional, like the namedtuple it replaces
        self, proto: str, family: str, address: str, port: int, inode: int, uid: int, state: str,
        ifindex: int = 0, v6only: Optional[bool] = None,
    ) -> None:  # fmt: skip
        self.proto = proto
        self.family = family
        self.address = address
        self.port = port
        self.inode = inode
        self.uid = uid
        self.state = state
        self.ifindex = ifindex
        self.v6only = v6only

    def _fields(self) -> Tuple[str, str, str, int, int, int, str, int, Optional[bool]]:
        return (self.proto, self.family, self.address, self.port, self.inode, self.uid,
                self.state, self.ifindex, self.v6only)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiagSocket):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "DiagSocket({})".format(", ".join(map(repr, self._fields())))


def states_mask(states: Iterable[int]) -> int:
    """The ``idiag_states`` bitmask for kernel state numbers: ``[10]`` → ``1024``."""
    mask = 0
    for state in states:
        mask |= 1 << state
    return mask


def build_request(proto: str, family: str, states: int, seq: int) -> bytes:
    """One SOCK_DIAG_BY_FAMILY dump request.

    ``build_request("tcp", "ipv4", 1 << 10, 1)`` is 72 bytes: a 16-byte
    nlmsghdr (len 72, type 20, flags 0x301, seq 1) and a 56-byte
    inet_diag_req_v2 (family 2, protocol 6, states 0x400, zero sockid).
    """
    body = INET_DIAG_REQ_V2.pack(FAMILIES[family], PROTOCOLS[proto], 0, states)
    header = NLMSGHDR.pack(
        NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def parse_replies(proto: str, data: bytes, seq: int) -> Tuple[List[DiagSocket], bool, bool]:
    """(sockets, done, interrupted) of one ``recv`` buffer of a dump.

    Walks the buffer's netlink messages: SOCK_DIAG_BY_FAMILY messages of the
    request ``seq`` are sockets, NLMSG_DONE ends the dump (``done``),
    NLM_F_DUMP_INTR on any of them means the kernel's tables changed under the
    dump (``interrupted``), and an NLMSG_ERROR carrying an errno raises
    (ENOENT: no diag handler for that protocol/family, so :class:`NetlinkUnavailable`).
    Messages for another sequence are skipped (a late reply to an earlier request).
    A message whose length runs past the buffer, or too short for its body,
    raises :class:`NetlinkProtocolError`.

    The kernel fills a dump's buffers with socket messages of one length, so
    they are decoded a run at a time (:func:`_run_length`, :func:`_parse_run`).
    """
    sockets: List[DiagSocket] = []
    done = interrupted = False
    offset, end = 0, len(data)
    while offset + _HEADER <= end and not done:
        length, mtype, flags, mseq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < _HEADER or offset + length > end:
            raise NetlinkProtocolError(f"netlink message length {length} at offset {offset}")
        if mseq == seq and mtype == SOCK_DIAG_BY_FAMILY:
            if length < _HEADER + INET_DIAG_MSG.size:
                raise NetlinkProtocolError(f"inet_diag_msg truncated: {length} bytes")
            count, cut = _run_length(data, offset, length, seq)
            sockets += _parse_run(proto, data, offset, length, count)
            interrupted = interrupted or cut
            offset = (offset + count * length + 3) & ~3  # NLMSG_ALIGN
            continue
        if mseq == seq:
            interrupted = interrupted or bool(flags & NLM_F_DUMP_INTR)
            if mtype == NLMSG_ERROR:
                _raise_for_error(data, offset + _HEADER, length - _HEADER)
            done = mtype == NLMSG_DONE
        offset += (length + 3) & ~3  # NLMSG_ALIGN
    return sockets, done, interrupted


def _run_length(data: bytes, start: int, stride: int, seq: int) -> Tuple[int, bool]:
    """(count, interrupted) of the run of socket messages at ``start``.

    The run: SOCK_DIAG_BY_FAMILY messages of ``seq``, ``stride`` bytes each, one
    after the other from ``start`` (at least the one there). While the length at
    ``start + k * stride`` is ``stride``, each of these offsets is a message
    boundary (by induction), so the headers are read a field at a time over
    every ``stride`` bytes (strided slices, in C). The run ends at the first
    message that differs; ``interrupted`` if one in it is flagged NLM_F_DUMP_INTR.
    """
    available = (len(data) - start) // stride
    if stride % 4 or available == 1:  # only NLMSG_ALIGNed messages follow each other
        return 1, bool(NLMSGHDR.unpack_from(data, start)[2] & NLM_F_DUMP_INTR)
    words = memoryview(data)[start : start + available * stride].cast("I")  # the u32 fields
    halves = words.cast("B").cast("H")  # and the u16 ones
    step = stride // 4
    lengths, seqs = words[::step].tolist(), words[2::step].tolist()
    types, flags = halves[2 :: 2 * step].tolist(), halves[3 :: 2 * step].tolist()
    count = available
    if lengths.count(stride) + types.count(SOCK_DIAG_BY_FAMILY) + seqs.count(seq) < 3 * count:
        wanted = (stride, SOCK_DIAG_BY_FAMILY, seq)
        count = next(i for i, header in enumerate(zip(lengths, types, seqs)) if header != wanted)
    return count, any(flag & NLM_F_DUMP_INTR for flag in flags[:count])


def _parse_run(proto: str, data: bytes, start: int, stride: int, count: int) -> List[DiagSocket]:
    """The sockets of ``count`` messages of ``stride`` bytes each from ``start``.

    Each field of every message is one strided slice (in C); Python does per
    socket only the address (cached) and the object. In a message, ports are
    big-endian and the rest host order: family 2, state 10, sport ``00 16``,
    src ``7f000001`` (zero-padded), uid 0, inode 4242 →
    ``DiagSocket("tcp", "ipv4", "127.0.0.1", 22, 4242, 0, "LISTEN")``.
    """
    first, last = start + _HEADER, start + (count - 1) * stride + _HEADER  # their inet_diag_msg

    def field(at: int) -> bytes:  # byte ``at`` of every message's inet_diag_msg
        return data[first + at : last + at + 1 : stride]

    families = field(0)
    sources = [data[at : at + 16] for at in range(first + 8, last + 9, stride)]
    addresses = [_ADDRESSES.get(key) or _decode_address(*key) for key in zip(families, sources)]
    ports = [(high << 8) | low for high, low in zip(field(4), field(5))]
    words = memoryview(data)[first : last + INET_DIAG_MSG.size].cast("I")  # host-order u32s
    uids, inodes = words[16 :: stride // 4].tolist(), words[17 :: stride // 4].tolist()
    ifindexes = words[10 :: stride // 4].tolist()  # idiag_if: the kernel's sk_bound_dev_if
    states = [TCP_STATES.get(state) or str(state) for state in field(1)]
    v6only: List[Optional[bool]] = [None] * count  # a dump's run is of one family
    if socket.AF_INET6 in families:
        flags = _v6only(data, first, stride, count)
        v6only = [flag if fam == socket.AF_INET6 else None for fam, flag in zip(families, flags)]
    return list(map(
        DiagSocket, [proto] * count, map(_FAMILY_NAMES.__getitem__, families), addresses,
        ports, inodes, uids, states, ifindexes, v6only,
    ))  # fmt: skip


def _v6only(data: bytes, first: int, stride: int, count: int) -> List[Optional[bool]]:
    """INET_DIAG_SKV6ONLY of ``count`` IPv6 messages (``first``: the first's inet_diag_msg).

    The kernel writes it for listening and unconnected sockets, after
    INET_DIAG_SHUTDOWN (8 aligned bytes); where a run has it there in every
    message its values are one strided slice, else each message's attributes are walked.
    """
    if stride < _HEADER + INET_DIAG_MSG.size + 5:  # no attribute at all (a TIME_WAIT socket)
        return [None] * count
    at = first + INET_DIAG_MSG.size + _SHUTDOWN_SIZE
    heads = [data[at + k:at + k + (count - 1) * stride + 1:stride] for k in range(5)]
    expected = [bytes([byte]) * count for byte in _V6ONLY_HEAD]
    if stride >= at - first + _HEADER + 5 and heads[:4] == expected:
        return [bool(value) for value in heads[4]]  # byte 4: the flag, after the header
    return [_attribute(data, first + k * stride, stride - _HEADER) for k in range(count)]


def _attribute(data: bytes, message: int, size: int) -> Optional[bool]:
    """The INET_DIAG_SKV6ONLY flag among one message's attributes, None when absent."""
    at, end = message + INET_DIAG_MSG.size, message + size
    while at + 4 <= end:
        length, kind = NLATTR.unpack_from(data, at)
        if length < 4:
            return None
        if kind == INET_DIAG_SKV6ONLY and length >= 5:
            return bool(data[at + 4])
        at += (length + 3) & ~3  # NLA_ALIGN
    return None


def _decode_address(fam: int, src: bytes) -> str:
    """``(2, b"\\x7f\\0\\0\\1" + 12 zero bytes)`` → ``"127.0.0.1"``, remembered in _ADDRESSES."""
    length = _ADDRESS_LEN.get(fam)
    if length is None:
        raise NetlinkProtocolError(f"inet_diag_msg with unknown family {fam}")
    address = _ADDRESSES[fam, src] = socket.inet_ntop(fam, src[:length])
    return address


def _raise_for_error(data: bytes, payload: int, size: int) -> None:
    """Turn an NLMSG_ERROR into an exception; error 0 is an ACK and returns."""
    if size < NLMSGERR.size:
        raise NetlinkProtocolError("NLMSG_ERROR without an error code")
    (code,) = NLMSGERR.unpack_from(data, payload)
    if code == 0:
        return
    import errno  # noqa: PLC0415 - error path only

    err = -code
    message = f"sock_diag: {posix.strerror(err)} (errno {err})"
    if err in (errno.ENOENT, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EINVAL):
        raise NetlinkUnavailable(message)
    raise NetlinkError(message)


class DiagClient:
    """A NETLINK_SOCK_DIAG socket; use as a context manager.

    ``with DiagClient() as nl: nl.dump("tcp", "ipv4", states_mask([10]))``
    """

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG
            )
            self._sock.bind((0, 0))
        except (OSError, AttributeError) as exc:  # AttributeError: no AF_NETLINK (not Linux)
            raise NetlinkUnavailable(f"cannot open NETLINK_SOCK_DIAG socket: {exc}") from exc
        self._seq = 0
        self._buffer = bytearray(_RECV_BUFFER)

    def __enter__(self) -> DiagClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def dump(self, proto: str, family: str, states: int) -> List[DiagSocket]:
        """All sockets of ``proto``/``family`` whose state bit is set in ``states``.

        A dump the kernel flags as interrupted is redone, up to _DUMP_RETRIES times.
        """
        for _attempt in range(_DUMP_RETRIES):
            sockets, interrupted = self._dump_once(proto, family, states)
            if not interrupted:
                break
        return sockets

    def _dump_once(self, proto: str, family: str, states: int) -> Tuple[List[DiagSocket], bool]:
        self._seq += 1
        try:
            self._sock.sendall(build_request(proto, family, states, self._seq))
        except OSError as exc:
            raise NetlinkUnavailable(f"sock_diag request failed: {exc}") from exc
        sockets: List[DiagSocket] = []
        interrupted = done = False
        view = memoryview(self._buffer)
        while not done:
            try:
                size = self._sock.recv_into(view)
            except OSError as exc:
                raise NetlinkError(f"sock_diag receive failed: {exc}") from exc
            if size == 0:
                raise NetlinkProtocolError("sock_diag socket closed before NLMSG_DONE")
            found, done, cut = parse_replies(proto, bytes(view[:size]), self._seq)
            sockets += found
            interrupted = interrupted or cut
        return sockets, interrupted


def bound_sockets(
    tcp_states: Iterable[int] = (TCP_LISTEN,),
    udp_states: Iterable[int] = (TCP_CLOSE,),
    families: Iterable[str] = ("ipv4", "ipv6"),
) -> List[DiagSocket]:
    """Listening TCP and bound UDP sockets of this network namespace, v4 and v6.

    Raises :class:`NetlinkError` (or its :class:`NetlinkUnavailable`) when the
    kernel cannot answer, so the caller can fall back. UDP sockets on port 0
    (never bound) are dropped.
    """
    wanted = [("tcp", states_mask(tcp_states)), ("udp", states_mask(udp_states))]
    result: List[DiagSocket] = []
    with DiagClient() as client:
        for family in families:
            for proto, mask in wanted:
                if mask:
                    result += [s for s in client.dump(proto, family, mask) if s.port]
    return result
