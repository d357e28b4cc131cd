"""Processes family: only the processes the config's profiles select.

A profile (``config.processes``)::

    {name: globalprotect, match: {name: "gp(client|service)", user: root},
     gui: [gpgui], lock_files: [/var/run/gpclient.lock]}

``match`` keys are ANDed: ``name`` is a regex fully matching the process name
(comm, or argv[0]'s basename when comm is cut at 15 chars), ``exe`` and
``cmdline`` are regexes searched in the exe path and the space-joined argv,
``user`` is an exact user name. One pass over ``/proc`` reads every stat once;
the identity of a matching process comes from :func:`netmedic.owners.process_identity`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Pattern, Sequence, Tuple

from netmedic import owners
from netmedic.context import Context, Facts
from netmedic.hostpaths import host_path

TUN_DEVICE = "/dev/net/tun"
COMM_LEN = 15  # the kernel truncates /proc/PID/comm to 15 characters
IDENTITY_KEYS: Tuple[str, ...] = (
    "pid",
    "ppid",
    "name",
    "exe",
    "cmdline",
    "user",
    "uid",
    "unit",
    "container_id",
    "netns",
    "start_time",
    "denied",
)


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the pass needs."""

    comm: str
    state: str
    ppid: int


@dataclass(frozen=True)
class Profile:
    """A validated profile; ``error`` set when its config could not be used."""

    name: str
    match_name: Optional[Pattern[str]] = None
    match_exe: Optional[Pattern[str]] = None
    match_cmdline: Optional[Pattern[str]] = None
    match_user: Optional[str] = None
    gui: Tuple[str, ...] = ()
    lock_files: Tuple[str, ...] = ()
    error: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def parse_stat(text: str) -> ProcStat:
    """``"42 (gp client) S 1 42 42 0"`` → ``ProcStat(comm="gp client", state="S", ppid=1)``.

    comm may itself hold spaces and ``)``, so split at the last ``)``.
    """
    head, _, tail = text.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    return ProcStat(comm=comm, state=fields[0], ppid=int(fields[1]))


def scan(proc_root: Path) -> Dict[int, ProcStat]:
    """One pass over ``/proc``: every live pid's stat; vanished pids are skipped."""
    table: Dict[int, ProcStat] = {}
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), encoding="utf-8", errors="replace") as fh:
                table[int(entry.name)] = parse_stat(fh.read())
        except (OSError, ValueError, IndexError):
            continue  # exited between listdir and open, or unreadable: not ours to report
    return table


def _compile(pattern: Any, key: str) -> Optional[Pattern[str]]:
    if pattern is None:
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"match.{key}: invalid regex {pattern!r}: {exc}") from exc


def build_profile(raw: Mapping[str, Any]) -> Profile:
    """Config mapping → :class:`Profile`; a bad entry yields a profile carrying ``error``."""
    name = str(raw.get("name", "?"))
    try:
        match = raw.get("match") or {}
        if not isinstance(match, dict) or not match:
            raise ValueError("match must be a non-empty mapping")
        return Profile(
            name=name,
            match_name=_compile(match.get("name"), "name"),
            match_exe=_compile(match.get("exe"), "exe"),
            match_cmdline=_compile(match.get("cmdline"), "cmdline"),
            match_user=None if match.get("user") is None else str(match["user"]),
            gui=tuple(str(g) for g in raw.get("gui") or ()),
            lock_files=tuple(str(p) for p in raw.get("lock_files") or ()),
            raw=raw,
        )
    except (ValueError, TypeError) as exc:
        return Profile(name=name, error=str(exc), raw=raw)


def _read_cmdline(proc_root: Path, pid: int) -> Optional[List[str]]:
    try:
        data = (proc_root / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [arg.decode("utf-8", "replace") for arg in data.split(b"\0") if arg]


def _readlink(path: Path) -> Optional[str]:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _names_match(pattern: Pattern[str], comm: str, cmdline: Optional[List[str]]) -> bool:
    if pattern.fullmatch(comm):
        return True
    # comm cut at 15 chars: the full name is argv[0]'s basename.
    if len(comm) != COMM_LEN or not cmdline:
        return False
    return bool(pattern.fullmatch(os.path.basename(cmdline[0])))


def matches(profile: Profile, proc_root: Path, pid: int, stat: ProcStat) -> bool:
    """Name/exe/cmdline criteria; files are read only when a criterion needs them."""
    cmdline: Optional[List[str]] = None
    if profile.match_cmdline is not None or (
        profile.match_name is not None and len(stat.comm) == COMM_LEN
    ):
        cmdline = _read_cmdline(proc_root, pid)
    if profile.match_name is not None and not _names_match(profile.match_name, stat.comm, cmdline):
        return False
    if profile.match_exe is not None:
        exe = _readlink(proc_root / str(pid) / "exe")
        if exe is None or not profile.match_exe.search(exe):
            return False
    if profile.match_cmdline is not None:
        return cmdline is not None and bool(profile.match_cmdline.search(" ".join(cmdline)))
    return True


def tun_open(proc_root: Path, pid: int) -> Tuple[Optional[bool], Optional[str]]:
    """Whether any fd of ``pid`` is ``/dev/net/tun``.

    Holding it → ``(True, None)``; fd dir unreadable → ``(None, "PermissionError: <dir>")``;
    an fd link that cannot be read (root without CAP_SYS_PTRACE may list a more
    privileged process's fds but not read them) → ``(None, "PermissionError: <fd>")``:
    "no tunnel" is only said when every fd was seen.
    """
    fd_dir = proc_root / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError as exc:
        return None, f"{type(exc).__name__}: {fd_dir}"
    unreadable: Optional[str] = None
    for fd in fds:
        try:
            if os.readlink(fd_dir / fd) == TUN_DEVICE:
                return True, None
        except FileNotFoundError:
            continue  # closed since the listing: the expected race
        except OSError as exc:
            unreadable = unreadable or f"{type(exc).__name__}: {fd_dir / fd}"
    return (None, unreadable) if unreadable else (False, None)


def parse_lock(text: str) -> Tuple[Optional[int], Optional[int]]:
    """Lock file content → (pid, port).

    ``"1234\\n"`` → ``(1234, None)``; ``"99:4123"`` → ``(99, 4123)``; ``"x"`` → ``(None, None)``.
    """
    pid_text, _, port_text = text.strip().partition(":")
    pid = int(pid_text) if pid_text.isdigit() else None
    port = int(port_text) if port_text.isdigit() else None
    return pid, port


def lock_file(ctx: Context, path: str, table: Mapping[int, ProcStat]) -> Facts:
    """One lock file.

    ``/var/run/gpclient.lock`` holding ``"4242"``
    → ``{"path": ..., "exists": True, "pid": 4242, "port": None, "pid_alive": ..., "error": None}``
    """
    facts: Facts = {
        "path": path,
        "exists": False,
        "pid": None,
        "port": None,
        "pid_alive": None,
        "error": None,
    }
    try:
        text = host_path(ctx, path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return facts
    except OSError as exc:
        facts.update(exists=True, error=f"{type(exc).__name__}: {exc.strerror or exc}")
        return facts
    pid, port = parse_lock(text)
    facts.update(exists=True, pid=pid, port=port)
    if pid is None:
        facts["error"] = f"no pid in {text.strip()[:40]!r}"
    else:
        facts["pid_alive"] = pid in table and table[pid].state != "Z"
    return facts


def _reparented(stat: ProcStat, table: Mapping[int, ProcStat]) -> bool:
    """Parent is PID 1 or a user manager (``systemd --user`` is a subreaper)."""
    parent = table.get(stat.ppid)
    return stat.ppid == 1 or (parent is not None and parent.comm == "systemd")


def process_facts(
    ctx: Context, pid: int, stat: ProcStat, table: Mapping[int, ProcStat], gui_gone: bool
) -> Optional[Facts]:
    """One matching process; None when it vanished meanwhile."""
    identity = owners.process_identity(ctx, pid)
    if identity is None:
        return None
    facts: Facts = {key: identity.get(key) for key in IDENTITY_KEYS}
    reparented = _reparented(stat, table)
    unit = facts.get("unit") or ""
    # A service's main process is a child of PID 1 by design: not an orphan.
    facts.update(
        state=stat.state,
        zombie=stat.state == "Z",
        reparented=reparented,
        orphaned=gui_gone or (reparented and not unit.endswith(".service")),
    )
    facts["tun_open"], facts["tun_open_error"] = tun_open(ctx.proc_root, pid)
    return facts


def _gui_running(gui: Sequence[str], table: Mapping[int, ProcStat]) -> Optional[bool]:
    if not gui:
        return None
    wanted = {name[:COMM_LEN] for name in gui}
    return any(stat.comm in wanted and stat.state != "Z" for stat in table.values())


def profile_facts(ctx: Context, profile: Profile, table: Mapping[int, ProcStat]) -> Facts:
    """All processes and lock files of one profile."""
    facts: Facts = {
        "name": profile.name,
        "error": profile.error,
        "gui": list(profile.gui),
        "gui_running": None,
        "processes": [],
        "lock_files": [],
    }
    if profile.error is not None:
        return facts
    gui_running = _gui_running(profile.gui, table)
    facts["gui_running"] = gui_running
    for pid, stat in sorted(table.items()):
        if not matches(profile, ctx.proc_root, pid, stat):
            continue
        entry = process_facts(ctx, pid, stat, table, gui_running is False)
        if entry is None:
            continue
        if profile.match_user is not None and entry.get("user") != profile.match_user:
            continue
        facts["processes"].append(entry)
    facts["lock_files"] = [lock_file(ctx, path, table) for path in profile.lock_files]
    return facts


def collect(ctx: Context) -> Facts:
    """The processes family: ``{"profiles": [...]}``; no profiles → no /proc pass."""
    raw_profiles: List[Mapping[str, Any]] = [
        p if isinstance(p, dict) else {"name": "?", "match": None}
        for p in ctx.setting("processes", []) or []
    ]
    if not raw_profiles:
        return {"profiles": []}
    table = scan(ctx.proc_root)
    return {"profiles": [profile_facts(ctx, build_profile(raw), table) for raw in raw_profiles]}
