"""Declared process profiles, matching, and the one judgement of "lingering".

A profile (one entry of ``netmedic_agent_config.processes``)::

    {name: gpclient-gui, match: {name: gpclient, cmdline: "launch-gui"},
     gui: [gpgui], min_age: 60, lock_files: [/var/run/gpclient.lock],
     ladder: [...], tunnel_lock_files: [...]}

``match`` keys are ANDed: ``name`` fully matches the process name (comm, or
argv[0]'s basename when comm is cut at 15 characters), ``exe`` and ``cmdline``
are regexes searched in the exe path and the space-joined argv, ``user`` is an
exact user name. Keys the agent does not judge with (``ladder``, ...) travel in
``declared`` to the role untouched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Pattern, Sequence, Tuple

from netmedic.procs.table import COMM_LEN, ProcStat, alive, ancestors, descendants


@dataclass(frozen=True)
class Profile:
    """A validated profile; ``error`` set when its declaration could not be used."""

    name: str
    match_name: Optional[Pattern[str]] = None
    match_exe: Optional[Pattern[str]] = None
    match_cmdline: Optional[Pattern[str]] = None
    match_user: Optional[str] = None
    gui: Tuple[str, ...] = ()
    min_age: float = 0.0
    lock_files: Tuple[str, ...] = ()
    tunnel_lock_files: Tuple[str, ...] = ()
    error: Optional[str] = None
    declared: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_cmdline(self) -> bool:
        return self.match_cmdline is not None or self.match_name is not None


def _compile(pattern: Any, key: str) -> Optional[Pattern[str]]:
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"match.{key}: invalid regex {pattern!r}: {exc}") from exc


def build_profile(raw: Mapping[str, Any]) -> Profile:
    """Declaration → :class:`Profile`; a bad entry yields a profile carrying ``error``.

    ``{"name": "p", "match": {"user": "root"}}`` → error: a profile must say which
    program it means (an empty selector never means every process).
    """
    name = str(raw.get("name", "?"))
    try:
        match = raw.get("match") or {}
        if not isinstance(match, dict) or not match:
            raise ValueError("match must be a non-empty mapping")
        selectors = [_compile(match.get(k), k) for k in ("name", "exe", "cmdline")]
        if not any(selectors):
            raise ValueError("match needs a name, exe or cmdline selector")
        min_age = float(raw.get("min_age") or 0)
        if min_age < 0:
            raise ValueError(f"min_age must be >= 0, got {min_age}")
        return Profile(
            name=name,
            match_name=selectors[0],
            match_exe=selectors[1],
            match_cmdline=selectors[2],
            match_user=None if match.get("user") is None else str(match["user"]),
            gui=tuple(str(g) for g in raw.get("gui") or ()),
            min_age=min_age,
            lock_files=tuple(str(p) for p in raw.get("lock_files") or ()),
            tunnel_lock_files=tuple(str(p) for p in raw.get("tunnel_lock_files") or ()),
            declared=raw,
        )
    except (ValueError, TypeError) as exc:
        return Profile(name=name, error=str(exc), declared=raw)


def name_matches(pattern: Pattern[str], comm: str, cmdline: Optional[Sequence[str]]) -> bool:
    """comm fully matches, or (comm cut at 15 characters) argv[0]'s basename does."""
    if pattern.fullmatch(comm):
        return True
    if len(comm) != COMM_LEN or not cmdline:
        return False
    return bool(pattern.fullmatch(os.path.basename(cmdline[0])))


def identity_matches(
    profile: Profile,
    comm: str,
    cmdline: Optional[Sequence[str]],
    exe: Optional[str],
    *,
    user: Optional[str] = None,
    check_user: bool = False,
) -> bool:
    """The name/exe/cmdline selectors (and ``user`` when ``check_user``) on what was read."""
    if profile.error is not None:
        return False
    if profile.match_name is not None and not name_matches(profile.match_name, comm, cmdline):
        return False
    if profile.match_exe is not None and not (exe and profile.match_exe.search(exe)):
        return False
    if profile.match_cmdline is not None and not (
        cmdline and profile.match_cmdline.search(" ".join(cmdline))
    ):
        return False
    return not check_user or profile.match_user is None or user == profile.match_user


def reparented(stat: ProcStat, table: Mapping[int, ProcStat]) -> bool:
    """Its parent is gone: re-parented to PID 1 or a user manager (``systemd --user``)."""
    parent = table.get(stat.ppid)
    return stat.ppid == 1 or (parent is not None and parent.comm == "systemd")


def orphaned(stat: ProcStat, table: Mapping[int, ProcStat], unit: Optional[str]) -> bool:
    """Re-parented, and not a systemd service's process (whose parent is PID 1 by design)."""
    return reparented(stat, table) and not (unit or "").endswith(".service")


def gui_pids(
    profile: Profile,
    pid: int,
    table: Dict[int, ProcStat],
    children: Dict[int, List[int]],
) -> Optional[List[int]]:
    """Live GUI processes among ``pid``'s ancestors and descendants; None without ``gui``.

    A GUI-launched client lives in one tree with its GUI (``gpclient launch-gui`` →
    gpservice → gpgui): a GUI elsewhere on the host (another session) does not keep it.
    """
    if not profile.gui:
        return None
    wanted = {name[:COMM_LEN] for name in profile.gui}
    lineage = ancestors(pid, table) + descendants(pid, children)
    return [p for p in lineage if alive(p, table) and table[p].comm in wanted]


@dataclass(frozen=True)
class Judgement:
    """Why a matching process lingers, or not (the facts of one process)."""

    reparented: bool
    orphaned: bool
    gui_pids: Optional[List[int]]
    age: Optional[float]
    lingering: bool


def judge(
    profile: Profile,
    pid: int,
    *,
    unit: Optional[str],
    table: Dict[int, ProcStat],
    children: Dict[int, List[int]],
    now: Optional[float],
) -> Judgement:
    """The one definition of a lingering process; ``now`` is seconds since boot.

    - not a zombie, running at least ``min_age`` seconds, and orphaned (its parent
      gone, outside a systemd service);
    - with ``gui``, also: no live GUI in its tree and no live child it waits on
      (``gpclient launch-gui`` waiting on pkexec at a password prompt has no GUI yet).
    """
    stat = table[pid]
    age = None if now is None else round(now - stat.start_time, 2)
    is_reparented = reparented(stat, table)
    is_orphaned = orphaned(stat, table, unit)
    guis = gui_pids(profile, pid, table, children)
    left = is_orphaned
    if guis is not None:
        waits_on_child = any(alive(c, table) for c in children.get(pid, ()))
        left = left and not guis and not waits_on_child
    old_enough = profile.min_age == 0 or (age is not None and age >= profile.min_age)
    lingering = left and old_enough and not stat.zombie
    return Judgement(is_reparented, is_orphaned, guis, age, lingering)
