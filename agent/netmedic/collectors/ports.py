"""The ``ports`` fact family: every listening TCP and bound UDP socket and who holds it.

Fast path: :mod:`netmedic.netlink` (sock_diag, kernel-side state filter) joined
to one pass over the fd tables (:func:`netmedic.fdtables.scan_socket_holders`).
Fallback when sock_diag is unavailable: ``psutil.net_connections``, imported
only then.

A socket whose holder cannot be read stays in the list with ``owner: null``
and an ``owner_reason``: a port is never reported free because we could not
see who holds it.

Socket sharing (SO_REUSEADDR / SO_REUSEPORT) is read from the holder's own
socket for UDP sockets on declared ports (``ctx.setting("ports")``): this is
what decides whether libupnp can bind 0.0.0.0:1900 next to the holder
(INCIDENTS §5). Elsewhere it is null, so the common path stays cheap.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)

from .. import addresses, fdtables, netlink, owners

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:  # no typing, socket or psutil import at run time on the fast path
    from typing import (
        Any,
        Callable,
        Dict,
        Iterable,
        List,
        Mapping,
        Optional,
        Sequence,
        Set,
        Tuple,
        TypedDict,
    )

    from ..context import Context

    # The lowest pid holding the socket, as owners.owner_identity reads it.
    Owner = owners.OwnerIdentity

    class Sharing(TypedDict):
        """Socket options of the holder's socket; null when not read or not readable."""

        reuse_addr: Optional[bool]
        reuse_port: Optional[bool]

    class PortSocket(TypedDict):
        """One entry of ``ports.sockets`` (``inode``/``uid`` are null from psutil).

        Its keys are registry.SOCKET_FIELDS, in that order.
        """

        proto: str
        family: str
        address: str
        port: int
        device: Optional[str]
        scope_id: Optional[int]
        v6only: Optional[bool]
        inode: Optional[int]
        uid: Optional[int]
        netns: Optional[str]
        owner: Optional[Owner]
        owner_reason: Optional[str]
        other_pids: List[int]
        sharing: Sharing

    _OwnerByPid = Dict[int, Optional[Owner]]
    Relist = Callable[[], Iterable[netlink.DiagSocket]]
else:
    _OwnerByPid = dict  # the base class, without importing typing at run time


# pidfd syscalls share one number on every architecture (Linux >= 5.6 for getfd).
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438

HOLDER_EXITED = "every process holding the socket exited during the scan"
PSUTIL_NO_PID = "psutil could not map the socket to a process (permission denied?)"


def unread_sharing() -> Sharing:
    """The sharing of a socket whose options were not read (or could not be)."""
    return {"reuse_addr": None, "reuse_port": None}


def collect(ctx: Context) -> Dict[str, Any]:
    """``{"source": "netlink"|"psutil", "sockets": [PortSocket, ...]}``, sorted (plus
    ``containers`` when a declared port's holder or owner is a Docker container)."""
    try:
        found = netlink.bound_sockets()
    except netlink.NetlinkError:
        family: Dict[str, Any] = {"source": "psutil", "sockets": collect_psutil(ctx)}
    else:
        family = {"source": "netlink", "sockets": join_owners(ctx, found, netlink.bound_sockets)}
    if ctx.setting("ports"):  # declared ports: name the containers holding them (AirConnect#416)
        from ..containers import name_containers  # noqa: PLC0415 - json and pathlib only then

        name_containers(ctx, family)
    return family


def join_owners(
    ctx: Context, found: Sequence[netlink.DiagSocket], relist: Optional[Relist] = None
) -> List[PortSocket]:
    """Attach holders from one ``/proc`` pass to the sockets sock_diag returned.

    ``relist`` lists the sockets again (as ``found`` was listed): a socket without
    a holder that it no longer lists closed during the scan. None: none did.
    """
    scan = fdtables.scan_socket_holders(ctx, [s.inode for s in found])
    netns = own_netns(ctx)
    declared = declared_ports(ctx.setting("ports", []))
    identities = _IdentityCache(ctx)
    unheld = _unheld_reasons(ctx, found, scan, relist)
    # One dict for all the sockets whose options are not read, as one owner for all its
    # sockets: the document is read-only (docs/facts.md).
    unread = unread_sharing()
    result = []
    other_pids: List[int]
    for diag in found:
        holders = scan.holders.get(diag.inode)
        owner = identities[holders[0][0]] if holders and len(holders) == 1 else None
        if owner is not None:  # one fd of one live process: most sockets
            other_pids, reason = [], None
        elif holders:
            owner, other_pids, reason = _pick_owner(holders, identities)
        else:
            other_pids, reason = [], unheld[diag.inode]
        sharing = unread
        if declared and owner is not None and holders and (diag.proto, diag.port) in declared:
            sharing = socket_sharing(owner["pid"], _fd_of(holders, owner["pid"]))
        device = scope_id = None
        if diag.ifindex:  # bound to a device: by SO_BINDTODEVICE, or a link-local address's scope
            device = addresses.device_name(diag.ifindex)
            scope_id = addresses.scope_of(diag.address, diag.ifindex)
        entry: PortSocket = {
            "proto": diag.proto, "family": diag.family, "address": diag.address,
            "port": diag.port, "device": device, "scope_id": scope_id, "v6only": diag.v6only,
            "inode": diag.inode, "uid": diag.uid, "netns": netns, "owner": owner,
            "owner_reason": reason, "other_pids": other_pids, "sharing": sharing,
        }  # fmt: skip
        result.append(entry)
    result.sort(key=sort_key)
    return result


def _fd_of(holders: Sequence[Tuple[int, int]], pid: int) -> int:
    return next(fd for holder, fd in holders if holder == pid)


def _pick_owner(
    holders: Sequence[Tuple[int, int]], identities: _IdentityCache
) -> Tuple[Optional[Owner], List[int], Optional[str]]:
    """(owner, other_pids, reason): owner = lowest pid still alive, the others sorted.

    ``holders`` is sorted by pid, one pair per fd; a pid holding the socket on
    two fds counts once.
    """
    pids = sorted({pid for pid, _fd in holders})
    for index, pid in enumerate(pids):
        owner = identities[pid]
        if owner is not None:
            return owner, pids[:index] + pids[index + 1 :], None
    return None, pids, HOLDER_EXITED


def _unheld_reasons(
    ctx: Context,
    found: Sequence[netlink.DiagSocket],
    scan: fdtables.SocketHolders,
    relist: Optional[Relist],
) -> Dict[int, str]:
    """inode → why no holder was seen, for each socket of ``found`` the scan did not place."""
    unheld = [diag for diag in found if diag.inode not in scan.holders]
    if not unheld:
        return {}
    still_open = {diag.inode for diag in unheld}
    if relist is not None:
        still_open &= _inodes(relist, still_open)
    uids: Dict[int, int] = {}
    return {
        diag.inode: fdtables.unheld_reason(ctx, diag.uid, scan.denied, diag.inode in still_open,
                                           uids)
        for diag in unheld
    }  # fmt: skip


def _inodes(relist: Relist, otherwise: Set[int]) -> Set[int]:
    """The inodes ``relist`` lists; ``otherwise`` when sock_diag cannot answer."""
    try:
        return {diag.inode for diag in relist()}
    except netlink.NetlinkError:
        return otherwise


class _IdentityCache(_OwnerByPid):
    """pid → owner (None: the process exited), read on first lookup, once per pid.

    A dict whose ``__missing__`` reads the identity: every later lookup of the
    pid, once per socket it holds, is a plain dict subscript.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self._ctx = ctx

    def __missing__(self, pid: int) -> Optional[Owner]:
        owner = self[pid] = owners.owner_identity(self._ctx, pid)
        return owner


def sort_key(entry: PortSocket) -> Tuple[str, int, str, int, int]:
    """(proto, port, address, owner pid, inode); sockets without owner sort first."""
    owner = entry["owner"]
    inode = entry["inode"]
    return (
        entry["proto"],
        entry["port"],
        entry["address"],
        -1 if owner is None else owner["pid"],
        -1 if inode is None else inode,
    )


def own_netns(ctx: Context) -> Optional[str]:
    """The network namespace sock_diag answered for: ``"net:[4026531840]"``."""
    try:
        return posix.readlink(f"{ctx.proc_dir}/self/ns/net")
    except OSError:
        return None


def declared_ports(entries: Any) -> Set[Tuple[str, int]]:
    """(proto, port) pairs whose UDP sharing to read, from the ``ports`` setting.

    ``[{"port": 1900, "proto": "udp", "owner": "gmediarender.service"}, {"port": 5353}]``
    → ``{("udp", 1900), ("udp", 5353)}``; TCP entries and malformed ones are skipped.
    """
    wanted: Set[Tuple[str, int]] = set()
    if not isinstance(entries, list):
        return wanted
    for item in entries:
        if not isinstance(item, dict) or not isinstance(item.get("port"), int):
            continue
        if item.get("proto", "udp") == "udp":
            wanted.add(("udp", item["port"]))
    return wanted


def socket_sharing(pid: int, fd: int) -> Sharing:
    """SO_REUSEADDR/SO_REUSEPORT of fd ``fd`` in process ``pid``, null when not readable.

    Duplicates the holder's fd with pidfd_open + pidfd_getfd (Linux >= 5.6,
    needs ptrace rights over ``pid``, e.g. root with CAP_SYS_PTRACE), reads the
    options and closes the copy; the holder's socket is not otherwise touched.
    """
    import socket  # noqa: PLC0415 - only on the declared-port path

    unknown = unread_sharing()
    local = _borrow_fd(pid, fd)
    if local is None:
        return unknown
    try:
        sock = socket.socket(fileno=local)
    except OSError:
        posix.close(local)
        return unknown
    try:
        return {
            "reuse_addr": bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),
            "reuse_port": bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)),
        }
    except OSError:
        return unknown
    finally:
        sock.close()


def _borrow_fd(pid: int, fd: int) -> Optional[int]:
    """A copy of another process's fd in ours, None when the kernel refuses (EPERM, ENOSYS)."""
    import ctypes  # noqa: PLC0415 - only on the declared-port path

    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = int(libc.syscall(SYS_PIDFD_OPEN, pid, 0))
    if pidfd < 0:
        return None
    try:
        local = int(libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0))
    finally:
        posix.close(pidfd)
    return local if local >= 0 else None


def collect_psutil(ctx: Context) -> List[PortSocket]:
    """The same facts from ``psutil.net_connections`` (reads /proc/net, slower).

    psutil gives no inode, so sockets bound to the same address and port
    (SO_REUSEPORT groups) merge into one entry, and it names one holder per
    socket (the first pid it met, not always the lowest), so ``other_pids`` of
    a socket shared by forked workers is incomplete here.
    """
    from ..sitedirs import add_site_dirs  # noqa: PLC0415 - with the psutil import

    add_site_dirs()
    import psutil  # noqa: PLC0415 - fallback only: keep it off the fast path

    groups: Dict[Tuple[str, str, str, int], List[Tuple[int, int]]] = {}
    unmapped: Set[Tuple[str, str, str, int]] = set()
    for conn in psutil.net_connections(kind="inet"):
        key = _psutil_key(conn, psutil.CONN_LISTEN)
        if key is None:
            continue
        holders = groups.setdefault(key, [])
        if conn.pid is None:
            unmapped.add(key)
        else:
            holders.append((conn.pid, conn.fd))
    return _psutil_entries(ctx, groups, unmapped)


def _psutil_key(conn: Any, listen: str) -> Optional[Tuple[str, str, str, int]]:
    """(proto, family, address, port) of a listening TCP / unconnected UDP row, else None."""
    import socket  # noqa: PLC0415 - psutil fallback only (a dict lookup once imported)

    if not conn.laddr or not conn.laddr.port:
        return None
    family = "ipv6" if conn.family == socket.AF_INET6 else "ipv4"
    if conn.type == socket.SOCK_STREAM:
        return ("tcp", family, conn.laddr.ip, conn.laddr.port) if conn.status == listen else None
    return None if conn.raddr else ("udp", family, conn.laddr.ip, conn.laddr.port)


def _psutil_entries(
    ctx: Context,
    groups: Mapping[Tuple[str, str, str, int], List[Tuple[int, int]]],
    unmapped: Iterable[Tuple[str, str, str, int]],
) -> List[PortSocket]:
    netns = own_netns(ctx)
    declared = declared_ports(ctx.setting("ports", []))
    identities = _IdentityCache(ctx)
    no_pid = set(unmapped)
    unread = unread_sharing()  # one for all, as in join_owners
    result = []
    for key, holders in groups.items():
        proto, family, address, port = key
        holders.sort()
        owner, other_pids, reason = (
            _pick_owner(holders, identities) if holders else (None, [], PSUTIL_NO_PID)
        )
        if owner is None and key in no_pid:
            reason = PSUTIL_NO_PID
        sharing = unread
        if owner is not None and (proto, port) in declared:
            sharing = socket_sharing(owner["pid"], _fd_of(holders, owner["pid"]))
        entry: PortSocket = {
            "proto": proto, "family": family, "address": address, "port": port,
            "device": None, "scope_id": None, "v6only": None, "inode": None, "uid": None,
            "netns": netns, "owner": owner, "owner_reason": reason, "other_pids": other_pids,
            "sharing": sharing,
        }  # fmt: skip
        result.append(entry)
    result.sort(key=sort_key)
    return result
