"""Which processes hold a socket: the fd tables under ``/proc`` (``ctx.proc_root``), read once.

:func:`scan_socket_holders` maps socket inodes to the ``(pid, fd)`` pairs holding
them, the join ``ss -p`` does, and goes where ``ss -p`` does not: a thread
whose fd table is its own (it called ``unshare(CLONE_FILES)``, or was cloned
without ``CLONE_FILES``) and the threads of a process whose main thread has
exited (its ``/proc/PID/fd`` is empty) hold sockets ``/proc/PID/fd`` never
shows. Those are read from ``/proc/PID/task/TID/fd``, only for the sockets
the processes' own tables did not show.

:func:`unheld_reason` says why a socket has no holder, per socket: it closed
during the scan, or which fd tables could not be read (the processes running
as the socket's uid first), or that no process of this pid namespace holds it.

OS errors are translated by :func:`netmedic.owners.failure`.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)

from netmedic.owners import DENIED, DIR_FLAGS, failure

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:  # annotations only: the ports path does not import typing
    from typing import Collection, Dict, List, Optional, Sequence, Tuple

    from .context import Context

NO_HOLDER = (
    "no process in this pid namespace holds the socket (a kernel socket, one passed in a "
    "unix socket and not yet received, or one held in another pid namespace)"
)
SOCKET_CLOSED = "the socket closed during the scan: its holder exited or closed it"


class SocketHolders:
    """Result of one pass over the fd tables.

    ``holders[81234] == [(812, 5), (813, 5)]``: socket inode 81234 is fd 5 of
    pids 812 and 813 (sorted; a pid is the process, whichever of its threads'
    tables holds the fd). ``denied`` lists pids whose fd table we may not read: a
    socket nobody was seen holding may belong to one of them.
    """

    def __init__(self) -> None:
        self.holders: Dict[int, List[Tuple[int, int]]] = {}
        self.denied: List[int] = []
        self.processes = 0


def scan_socket_holders(ctx: Context, inodes: Collection[int]) -> SocketHolders:
    """Map each socket inode in ``inodes`` to the (pid, fd) pairs holding it.

    One pass over ``<proc_root>/*/fd``: every fd link is read (the only way to
    know it is a socket) and looked up among the links the wanted inodes would
    have (``b"socket:[81234]"``), so the links we do not want are never parsed.
    Each fd directory is listed, then opened once and its links read relative
    to it (``readlinkat``: no path walk per fd, no ``stat`` per entry).
    Processes that vanish mid-scan are skipped; those whose fd directory or fd
    links are denied are listed in ``denied``. When sockets are left without a
    holder, :func:`_scan_threads` reads the tables of threads that have their own.
    """
    # Bytes throughout: paths and links as the kernel gives them, nothing to encode or decode.
    wanted = {b"socket:[%d]" % inode: inode for inode in inodes}
    result = SocketHolders()
    proc = _fs_bytes(ctx.proc_dir)
    try:
        names = [name for name in posix.listdir(proc) if name.isdigit()]
    except OSError:
        return result
    for name in names:
        pid = int(name)
        fd_dir = b"%s/%s/fd" % (proc, name)
        try:
            fds = posix.listdir(fd_dir)
        except OSError as exc:
            if failure(exc) == DENIED:
                result.denied.append(pid)
            continue
        result.processes += 1
        if fds:  # kernel threads have none: nothing to open
            _scan_fds(fd_dir, fds, pid, wanted, result)
    missing = {link: inode for link, inode in wanted.items() if inode not in result.holders}
    if missing:
        denied = set(result.denied)
        _scan_threads(proc, [n for n in names if int(n) not in denied], missing, result)
    for pairs in result.holders.values():
        pairs.sort()
    result.denied = sorted(set(result.denied))
    return result


def _fs_bytes(path: str) -> bytes:
    """``path`` as the kernel gets it (``os.fsencode`` on Linux, without importing os)."""
    return path.encode("utf-8", "surrogateescape")


def _scan_threads(
    proc: bytes, names: Sequence[bytes], wanted: Dict[bytes, int], result: SocketHolders
) -> None:
    """Read the fd tables of threads whose table is not their process's.

    Only processes with more than one thread are looked at (``/proc/PID/task``
    links 2 + its threads). A thread's table counts as its process's when it
    holds as many fds (the kernel reports the count as the fd directory's size
    since Linux 6.2, at the cost of a stat) or, on older kernels, lists the same
    fds; one that unshared its table and opened a socket, or outlived the main
    thread (whose table reads empty), differs, and its links are read.
    """
    for name in names:
        task_dir = b"%s/%s/task" % (proc, name)
        try:
            if posix.stat(task_dir).st_nlink <= 3:
                continue  # one thread: its table is the one the first pass read
            tids = posix.listdir(task_dir)
            process_dir = b"%s/%s/fd" % (proc, name)
            size = posix.stat(process_dir).st_size
            shared = None if size else posix.listdir(process_dir)
        except OSError:
            continue  # exited since the first pass
        for tid in tids:
            fd_dir = b"%s/%s/fd" % (task_dir, tid)
            try:
                if tid == name or (size and posix.stat(fd_dir).st_size == size):
                    continue
                fds = posix.listdir(fd_dir)
            except OSError:
                continue  # the thread exited, or its table is denied as its process's is
            if fds and fds != shared:
                _scan_fds(fd_dir, fds, int(name), wanted, result)
    for inode in wanted.values():  # two threads' tables may hold the same fd: count it once
        if inode in result.holders:
            result.holders[inode] = sorted(set(result.holders[inode]))


def _scan_fds(
    fd_dir: bytes, fds: List[bytes], pid: int, wanted: Dict[bytes, int], result: SocketHolders
) -> None:
    try:
        dir_fd = posix.open(fd_dir, DIR_FLAGS)
    except OSError:
        return  # the process exited since the listing
    try:
        _read_fd_links(dir_fd, fds, pid, wanted, result)
    finally:
        posix.close(dir_fd)


def _read_fd_links(
    dir_fd: int, fds: List[bytes], pid: int, wanted: Dict[bytes, int], result: SocketHolders
) -> None:
    for fd in fds:
        try:
            link = posix.readlink(fd, dir_fd=dir_fd)
        except OSError as exc:
            if failure(exc) == DENIED:
                # The kernel decides per process (ptrace access: root without
                # CAP_SYS_PTRACE, another user namespace): no other fd would be readable.
                result.denied.append(pid)
                return
            continue  # fd closed (or process gone) since the listing: the expected race
        inode = wanted.get(link)
        if inode is not None:
            result.holders.setdefault(inode, []).append((pid, int(fd)))


def unheld_reason(
    ctx: Context, uid: Optional[int], denied: Sequence[int], still_open: bool, uids: Dict[int, int]
) -> str:
    """Why a socket created by ``uid`` has no holder, after a scan that was ``denied`` pids.

    ``still_open``: the socket was still there after the scan (else it closed
    during it). ``uids`` caches the uid each denied pid runs as.

    ``(0, [1], True)`` → ``"permission denied reading /proc/1/fd"``; ``(115, [1, 812, 900],
    True)`` with pid 812 running as 115 → ``"permission denied reading the fd tables of 3
    processes (pid 812 runs as the socket's uid 115)"``.
    """
    if not still_open:
        return SOCKET_CLOSED
    if not denied:
        return NO_HOLDER
    if len(denied) == 1:
        return f"permission denied reading /proc/{denied[0]}/fd"
    same = [pid for pid in denied if uid is not None and _uid_of(ctx, pid, uids) == uid]
    if same:
        runs = f"pid {same[0]} runs" if len(same) == 1 else f"pids {same[0]}, ... ({len(same)}) run"
        which = f"{runs} as the socket's uid {uid}"
    else:
        which = f"first: {denied[0]}"
    return f"permission denied reading the fd tables of {len(denied)} processes ({which})"


def _uid_of(ctx: Context, pid: int, uids: Dict[int, int]) -> int:
    """The uid ``pid`` runs as (the owner of ``/proc/PID``); -1 when it exited."""
    found = uids.get(pid)
    if found is None:
        try:
            found = posix.stat(f"{ctx.proc_dir}/{pid}").st_uid
        except OSError:
            found = -1
        uids[pid] = found
    return found
