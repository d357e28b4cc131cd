"""Processes family: only the processes the config's profiles select.

The readers, profiles and the "lingering" judgement live in :mod:`netmedic.procs`,
shared with the ``netmedic_reaper`` module; this collector turns them into facts.
One pass over ``/proc`` reads every stat once; the identity of a matching process
comes from :func:`netmedic.owners.process_identity`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from netmedic import owners
from netmedic.context import Context, Facts
from netmedic.hostpaths import host_path
from netmedic.procs import table as proctable
from netmedic.procs import vpnc
from netmedic.procs.profiles import Profile, build_profile, identity_matches, judge
from netmedic.procs.table import COMM_LEN, ProcStat

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


def matches(profile: Profile, proc_dir: str, pid: int, stat: ProcStat) -> bool:
    """Name/exe/cmdline selectors; cmdline and exe are read only when a selector needs them."""
    cmdline = None
    if profile.match_cmdline is not None or (
        profile.match_name is not None and len(stat.comm) == COMM_LEN
    ):
        cmdline = proctable.read_cmdline(proc_dir, pid)
    exe = proctable.read_exe(proc_dir, pid) if profile.match_exe is not None else None
    return identity_matches(profile, stat.comm, cmdline, exe)


def lock_file(ctx: Context, path: str, table: Mapping[int, ProcStat]) -> Facts:
    """One lock file.

    ``/var/run/gpclient.lock`` holding ``"4242"``
    → ``{"path": ..., "exists": True, "pid": 4242, "port": None, "pid_alive": ..., "error": None}``
    """
    lock = proctable.read_lock(path, str(host_path(ctx, path)))
    return {
        "path": path,
        "exists": lock.exists,
        "pid": lock.pid,
        "port": lock.port,
        "pid_alive": None if lock.pid is None else proctable.alive(lock.pid, dict(table)),
        "error": lock.error,
    }


def process_facts(
    ctx: Context,
    *,
    profile: Profile,
    pid: int,
    table: Dict[int, ProcStat],
    children: Dict[int, List[int]],
    now: Optional[float],
) -> Optional[Facts]:
    """One matching process; None when it vanished meanwhile."""
    identity = owners.process_identity(ctx, pid)
    if identity is None:
        return None
    facts: Facts = {key: identity.get(key) for key in IDENTITY_KEYS}
    stat = table[pid]
    verdict = judge(
        profile, pid, unit=identity.get("unit"), table=table, children=children, now=now
    )
    facts.update(
        state=stat.state,
        zombie=stat.zombie,
        age=verdict.age,
        reparented=verdict.reparented,
        orphaned=verdict.orphaned,
        gui_pids=verdict.gui_pids,
        lingering=verdict.lingering,
    )
    fds, error = proctable.tun_fds(ctx.proc_dir, pid)
    facts["tun_open"] = None if fds is None else bool(fds)
    facts["tun_open_error"] = error
    return facts


def _gui_running(gui: Sequence[str], table: Mapping[int, ProcStat]) -> Optional[bool]:
    if not gui:
        return None
    wanted = {name[:COMM_LEN] for name in gui}
    return any(stat.comm in wanted and not stat.zombie for stat in table.values())


def profile_facts(
    ctx: Context,
    profile: Profile,
    table: Dict[int, ProcStat],
    children: Dict[int, List[int]],
    now: Optional[float],
) -> Facts:
    """All processes and lock files of one profile, and its declaration (for the role)."""
    facts: Facts = {
        "name": profile.name,
        "error": profile.error,
        "declared": dict(profile.declared),
        "gui": list(profile.gui),
        "gui_running": None,
        "processes": [],
        "lock_files": [],
    }
    if profile.error is not None:
        return facts
    facts["gui_running"] = _gui_running(profile.gui, table)
    for pid, stat in sorted(table.items()):
        if not matches(profile, ctx.proc_dir, pid, stat):
            continue
        entry = process_facts(
            ctx, profile=profile, pid=pid, table=table, children=children, now=now
        )
        if entry is None:
            continue
        if profile.match_user is not None and entry.get("user") != profile.match_user:
            continue
        facts["processes"].append(entry)
    facts["lock_files"] = [lock_file(ctx, path, table) for path in profile.lock_files]
    return facts


def collect(ctx: Context) -> Facts:
    """``{"profiles": [...], "vpnc_leftovers": [...]}``; no profiles → no /proc pass and
    ``{"profiles": []}``."""
    raw_profiles: List[Mapping[str, Any]] = [
        p if isinstance(p, dict) else {"name": "?", "match": None}
        for p in ctx.setting("processes", []) or []
    ]
    if not raw_profiles:
        return {"profiles": []}
    table = proctable.scan(ctx.proc_dir)
    children = proctable.children_of(table)
    now = proctable.uptime(ctx.proc_dir)
    profiles = [build_profile(raw) for raw in raw_profiles]
    return {
        "profiles": [profile_facts(ctx, p, table, children, now) for p in profiles],
        "vpnc_leftovers": vpnc.collect(ctx, raw_profiles, table),
    }
