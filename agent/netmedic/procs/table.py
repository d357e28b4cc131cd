"""The process table as ``/proc`` shows it, and the per-process reads both sides need.

Every read takes the ``/proc`` directory as a string (``ctx.proc_dir`` in the
agent, ``"/proc"`` in the module) so tests point it at fixture trees. A process
that exits while it is read is the expected race: it is skipped, never an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from netmedic.procfs import proc_text, stat_fields

TUN_DEVICE = "/dev/net/tun"
COMM_LEN = 15  # the kernel cuts /proc/PID/comm at 15 characters
PF_KTHREAD = 0x00200000  # task flag of kernel threads (include/linux/sched.h)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the layer uses."""

    comm: str
    state: str
    ppid: int
    flags: int
    start_ticks: int

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    @property
    def kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def start_time(self) -> float:
        """Seconds after boot, as the agent reports ``start_time``."""
        return start_seconds(self.start_ticks)


def start_seconds(ticks: int) -> float:
    """Start ticks → seconds after boot, rounded as :mod:`netmedic.owners` rounds them."""
    return round(ticks / CLOCK_TICKS, 2)


def parse_stat(text: str) -> ProcStat:
    """``"42 (gp (x) y) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242"``
    → ``ProcStat("gp (x) y", "S", 1, 4194560, 4242)``; raises ValueError or IndexError
    when the text is malformed (the split is :func:`netmedic.procfs.stat_fields`).
    """
    comm, fields = stat_fields(text)
    # fields[0] is field 3 (state): ppid is field 4, flags field 9, starttime field 22.
    return ProcStat(
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        flags=int(fields[6]),
        start_ticks=int(fields[19]),
    )


def read_stat(proc_dir: str, pid: int) -> Optional[ProcStat]:
    """The stat of ``pid``; None when it is gone or unreadable."""
    try:
        with open(f"{proc_dir}/{pid}/stat", "rb") as fh:
            return parse_stat(proc_text(fh.read()))
    except (OSError, ValueError, IndexError):
        return None


def scan(proc_dir: str) -> Dict[int, ProcStat]:
    """One pass over ``/proc``: every pid's stat; vanished or unreadable pids are skipped."""
    table: Dict[int, ProcStat] = {}
    try:
        names = os.listdir(proc_dir)
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = read_stat(proc_dir, int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def children_of(table: Dict[int, ProcStat]) -> Dict[int, List[int]]:
    """ppid → its children's pids (sorted), built once per table."""
    children: Dict[int, List[int]] = {}
    for pid, stat in sorted(table.items()):
        children.setdefault(stat.ppid, []).append(pid)
    return children


def ancestors(pid: int, table: Dict[int, ProcStat]) -> List[int]:
    """``pid``'s parent, grandparent, ... up to PID 1 (loops and gaps end the walk)."""
    chain: List[int] = []
    stat = table.get(pid)
    while stat is not None and stat.ppid > 0 and stat.ppid not in chain and stat.ppid != pid:
        chain.append(stat.ppid)
        stat = table.get(stat.ppid)
    return chain


def descendants(pid: int, children: Dict[int, List[int]]) -> List[int]:
    """Every pid below ``pid``, breadth first."""
    found: List[int] = []
    queue = list(children.get(pid, ()))
    while queue:
        child = queue.pop(0)
        if child not in found and child != pid:
            found.append(child)
            queue.extend(children.get(child, ()))
    return found


def read_cmdline(proc_dir: str, pid: int) -> Optional[List[str]]:
    """``b"/usr/bin/gpclient\\x00launch-gui\\x00"`` → ``["/usr/bin/gpclient", "launch-gui"]``."""
    try:
        with open(f"{proc_dir}/{pid}/cmdline", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return [proc_text(arg) for arg in data.split(b"\0") if arg]


def read_exe(proc_dir: str, pid: int) -> Optional[str]:
    try:
        return proc_text(os.readlink(os.fsencode(f"{proc_dir}/{pid}/exe")))
    except OSError:
        return None


def tun_fds(proc_dir: str, pid: int) -> Tuple[Optional[List[int]], Optional[str]]:
    """fds of ``pid`` open on /dev/net/tun: ``([7], None)``; unreadable → ``(None, reason)``.

    Unreadable is the directory or any one link: root without CAP_SYS_PTRACE lists a
    more privileged process's fds but gets EACCES on every readlink there, so "no
    tunnel" is only said when every fd was seen. A process gone meanwhile holds nothing.
    """
    fd_dir = f"{proc_dir}/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        return None, f"{type(exc).__name__}: {fd_dir}"
    found = []
    for name in names:
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except FileNotFoundError:
            continue  # closed since the listing: the expected race
        except OSError as exc:
            return None, f"{type(exc).__name__}: {fd_dir}/{name}"
        if target == TUN_DEVICE:
            found.append(int(name))
    return sorted(found), None


@dataclass(frozen=True)
class Lock:
    """A lock file holding ``PID`` or ``PID:PORT``."""

    path: str
    exists: bool
    pid: Optional[int] = None
    port: Optional[int] = None
    error: Optional[str] = None


def parse_lock(text: str) -> Tuple[Optional[int], Optional[int]]:
    """Lock file text → (pid, port).

    ``"1234\\n"`` → ``(1234, None)``; ``"99:4123"`` → ``(99, 4123)``; ``"x"`` → ``(None, None)``.
    """
    pid_text, _colon, port_text = text.strip().partition(":")
    pid = int(pid_text) if pid_text.isdigit() else None
    port = int(port_text) if port_text.isdigit() else None
    return pid, port


def read_lock(path: str, file: Optional[str] = None) -> Lock:
    """The lock file ``path`` (read from ``file`` when a fixture root maps it elsewhere)."""
    try:
        with open(file or path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(256)
    except FileNotFoundError:
        return Lock(path, exists=False)
    except OSError as exc:
        return Lock(path, exists=True, error=f"{type(exc).__name__}: {exc.strerror or exc}")
    pid, port = parse_lock(text)
    error = f"no pid in {text.strip()[:40]!r}" if pid is None else None
    return Lock(path, exists=True, pid=pid, port=port, error=error)


def alive(pid: Optional[int], table: Dict[int, ProcStat]) -> bool:
    """In the table and not a zombie (a zombie has exited; its parent owns the rest)."""
    stat = table.get(pid) if pid is not None else None
    return stat is not None and not stat.zombie


def uptime(proc_dir: str) -> Optional[float]:
    """Seconds since boot from ``/proc/uptime`` (``"3600.52 7000.01"`` → 3600.52)."""
    try:
        with open(f"{proc_dir}/uptime", encoding="ascii") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
