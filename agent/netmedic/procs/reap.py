"""The signal ladder for lingering processes the agent named, with its guards.

Used by the ``netmedic_reaper`` module only. It takes targets as the agent's
findings name them (pid and start time in seconds after boot) and does not judge
again whether they linger: before every signal it re-checks that the PID still is
the process the agent saw (PID reuse) and the guards below, which are safety
checks, not a diagnosis.

- Always (even with ``force``): PID 1, kernel threads, the module's own ancestry,
  Ansible's processes (``ansible*``/``AnsiballZ_*`` in argv[0:2]), sshd, and the
  names in ``protected_names``.
- Unless ``force``: an active tunnel in the process or below it (an open
  ``/dev/net/tun``, a descriptor table that cannot be read, the live PID of a
  ``tunnel_lock_files`` entry): killing its parent would drop the VPN too.
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from netmedic.procs import table as proctable
from netmedic.procs.profiles import Profile, identity_matches
from netmedic.procs.table import COMM_LEN, TUN_DEVICE, ProcStat

SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
DEFAULT_LADDER = ({"signal": "SIGTERM", "grace": 5.0}, {"signal": "SIGKILL", "grace": 5.0})
SSHD_NAMES = frozenset({"sshd", "sshd-session", "sshd-auth"})
ANSIBLE_ARG = re.compile(r"(^|/)(ansible[\w.-]*|AnsiballZ_\w+\.py)$")
POLL = 0.05
Info = Dict[str, Any]
Guard = Optional[Tuple[str, str]]


class ReaperError(Exception):
    """An input or state the module refuses; the module turns it into fail_json."""


def ladder_of(profile: Profile) -> List[Tuple[str, float]]:
    """The declared ladder as ``[(signal, grace)]``; refused when unknown or negative."""
    steps = profile.declared.get("ladder") or list(DEFAULT_LADDER)
    ladder = []
    for step in steps:
        name, grace = str(step.get("signal")), float(step.get("grace", 5))
        if name not in SIGNALS:
            raise ReaperError(f"profile {profile.name!r}: unknown signal {name!r} in ladder")
        if grace < 0:
            raise ReaperError(
                f"profile {profile.name!r}: grace of {name} must be >= 0, got {grace}"
            )
        ladder.append((name, grace))
    return ladder


class Guards:
    """The guards; :meth:`check` names the first that protects a process, or None."""

    def __init__(
        self,
        table: Dict[int, ProcStat],
        protected_names: List[str],
        force: bool,
        own_pid: int,
        proc_dir: str = "/proc",
    ) -> None:
        self.table = table
        self.proc_dir = proc_dir
        self.protected = {n[:COMM_LEN] for n in protected_names}
        self.force = force
        self.ancestry = {own_pid, *proctable.ancestors(own_pid, table)}
        self.children = proctable.children_of(table)
        self.tunnel_lock_pids: Dict[int, str] = {}

    def note_tunnel_locks(self, profile: Profile) -> None:
        for path in profile.tunnel_lock_files:
            lock = proctable.read_lock(path)
            if lock.pid is not None and proctable.alive(lock.pid, self.table):
                self.tunnel_lock_pids[lock.pid] = path

    def fixed(self, pid: int, stat: ProcStat) -> Guard:
        """Guards that hold even with force."""
        if pid == 1:
            return "pid1", "PID 1"
        if stat.kernel_thread or stat.ppid == 2:
            return "kernel-thread", "kernel thread"
        if pid in self.ancestry:
            return "own-ancestry", "the module's own process or one of its ancestors"
        argv = proctable.read_cmdline(self.proc_dir, pid) or []
        if any(ANSIBLE_ARG.search(arg) for arg in argv[:2]):
            return "ansible", "an Ansible process"
        if stat.comm in SSHD_NAMES:
            return "sshd", "sshd"
        if stat.comm[:COMM_LEN] in self.protected:
            return "protected-name", f"{stat.comm} is in protected_names"
        return None

    def tunnel(self, pid: int) -> Guard:
        """The active-tunnel guard over the process and its descendants (lifted by force)."""
        if self.force:
            return None
        for each in [pid, *proctable.descendants(pid, self.children)]:
            if each in self.tunnel_lock_pids:
                return "tunnel-lock", f"{each} is the live PID of {self.tunnel_lock_pids[each]}"
            fds, error = proctable.tun_fds(self.proc_dir, each)
            if fds is None:
                return "tunnel-unknown", f"{error}; cannot rule out an open {TUN_DEVICE}"
            if fds:
                fd_text = ", ".join(map(str, fds))
                return "tunnel", f"pid {each}: fd {fd_text} is {TUN_DEVICE}"
        return None


def same_process(pid: int, start_time: float, proc_dir: str = "/proc") -> Optional[str]:
    """None when ``pid`` still is the process that started ``start_time`` s after boot."""
    stat = proctable.read_stat(proc_dir, pid)
    if stat is None:
        return "vanished"
    if abs(stat.start_time - start_time) > 0.005:
        return "pid-reused"
    return "exited" if stat.zombie else None


def send(pid: int, start_time: float, signame: str) -> Optional[str]:
    """Signal ``pid`` only if it is still the same process; returns why not, or None when sent.

    With a pidfd the identity check and the signal refer to one process object, so the
    kernel cannot hand the PID to another process in between.
    """
    signum = getattr(signal, signame)
    pidfd = None
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return "vanished"
        except OSError:
            pidfd = None  # kernel without pidfd: fall back to kill after the check
    try:
        why = same_process(pid, start_time)
        if why:
            return why
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            return "vanished"
        except PermissionError as exc:
            raise ReaperError(f"not permitted to send {signame} to PID {pid}: {exc}") from exc
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return None


def plan(
    targets: List[Mapping[str, Any]],
    profiles: Dict[str, Profile],
    guards: Guards,
) -> Dict[str, List[Info]]:
    """Each target as it is now: to signal, spared by a guard, or already gone."""
    planned: Dict[str, List[Info]] = {"targets": [], "spared": [], "gone": []}
    seen: Set[int] = set()
    for raw in targets:
        pid, start_time = int(raw["pid"]), float(raw["start_time"])
        profile = profiles.get(str(raw.get("profile")))
        if profile is None:
            raise ReaperError(
                f"target pid {pid} names profile {raw.get('profile')!r}, which is not declared"
            )
        if pid in seen:
            continue
        seen.add(pid)
        entry: Info = {"pid": pid, "start_time": start_time, "profile": profile.name}
        stat = guards.table.get(pid)
        entry["name"] = stat.comm if stat else raw.get("name")
        why = same_process(pid, start_time, guards.proc_dir)
        if why:
            planned["gone"].append({**entry, "outcome": why})
            continue
        assert stat is not None  # same_process read it
        guards.note_tunnel_locks(profile)
        guard = guards.fixed(pid, stat) or guards.tunnel(pid)
        if guard:
            planned["spared"].append({**entry, "guard": guard[0], "detail": guard[1]})
            continue
        entry.update(ladder=ladder_of(profile), signals=[], outcome=None, died_after=None)
        entry.update(ppid=stat.ppid)
        planned["targets"].append(entry)
    return planned


def wait_all(done: Callable[[], bool], grace: float) -> None:
    deadline = time.monotonic() + grace
    while not done() and time.monotonic() < deadline:
        time.sleep(POLL)


def run_ladder(targets: List[Info]) -> None:
    """Walk every target's ladder in lock step; fills signals, outcome, died_after."""

    def gone(target: Info) -> bool:
        return same_process(target["pid"], target["start_time"]) is not None

    depth = max((len(t["ladder"]) for t in targets), default=0)
    for step in range(depth):
        sent: List[Info] = []
        grace = 0.0
        for target in targets:
            if target["outcome"] is not None or step >= len(target["ladder"]):
                continue
            signame, step_grace = target["ladder"][step]
            why = send(target["pid"], target["start_time"], signame)
            if why:
                died = why == "exited" and bool(target["signals"])
                target["outcome"] = "died" if died else why
                target["died_after"] = target["signals"][-1] if died else None
                continue
            target["signals"].append(signame)
            sent.append(target)
            grace = max(grace, step_grace)
        wait_all(lambda: all(gone(t) for t in sent), grace)  # noqa: B023 - used at once
        for target in sent:
            if gone(target):
                target["outcome"] = "died"
                target["died_after"] = target["signals"][-1]
    for target in targets:
        if target["outcome"] is None:
            target["outcome"] = "survived"


def stale_locks(
    profiles: List[Profile], dying: Set[int], proc_dir: str = "/proc"
) -> List[Info]:
    """The profiles' lock files whose PID is dead, dying in this run, or another program's."""
    table = proctable.scan(proc_dir)
    found: List[Info] = []
    for profile in profiles:
        for path in profile.lock_files:
            lock = proctable.read_lock(path)
            if not lock.exists or lock.pid is None:
                continue  # absent, or not ours to judge (unparsed): left for a person
            entry: Info = {
                "path": path, "profile": profile.name, "pid": lock.pid, "port": lock.port,
            }  # fmt: skip
            if lock.pid in dying or not proctable.alive(lock.pid, table):
                found.append(entry)
                continue
            stat = table[lock.pid]
            argv = proctable.read_cmdline(proc_dir, lock.pid)
            exe = proctable.read_exe(proc_dir, lock.pid)
            if not identity_matches(profile, stat.comm, argv, exe):
                found.append({**entry, "detail": f"PID {lock.pid} is now {stat.comm}"})
    return found


def remove_locks(locks: List[Info]) -> None:
    for lock in locks:
        try:
            os.unlink(lock["path"])
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ReaperError(f"cannot remove stale lock file {lock['path']}: {exc}") from exc
