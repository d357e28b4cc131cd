#!/usr/bin/python
"""Ansible module: reap lingering processes by profile, with guards and a signal ladder."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_reaper
short_description: Reap lingering processes by profile, with guards and a signal ladder
description:
  - Selects processes by profile (name, exe or cmdline regex, user, minimum age,
    orphaned only, GUI gone), drops every one a guard protects, then walks each
    profile's signal ladder (for example C(SIGINT) then C(SIGTERM) then C(SIGKILL)),
    waiting the step's grace period for the processes to exit before the next step.
  - Before every signal the process is re-identified by PID and start time, through a
    pidfd where the kernel has them, so a PID the kernel reused is never signalled.
  - Guards that always hold, even with O(force) - PID 1, kernel threads, this
    module's own ancestry, Ansible's processes (C(ansible*) and C(AnsiballZ_*) command
    lines), C(sshd) and the names in O(protected_names). The active-tunnel guard
    (an open C(/dev/net/tun) descriptor, a descriptor table the module cannot list or
    resolve - for example without C(CAP_SYS_PTRACE) - or the live PID of a
    O(profiles[].tunnel_lock_files) entry) holds unless O(force=true).
  - Zombies matching a profile (on name and user only - the kernel drops a zombie's
    exe and argv) are reaped through their parent - C(SIGCHLD) to the
    parent, or nothing at all when the parent is itself a target (reaping the parent
    clears them). A zombie whose parent is guarded is reported in RV(spared).
  - Lock files of a profile whose PID is dead, reused by another program, or
    reaped by this run are removed; a lock held by a live matching process stays.
  - When the run would signal more than O(max_targets) processes it aborts
    before signalling anything. A profile without a name, exe or cmdline selector is
    refused - an empty selector never means "everything".
  - Needs C(psutil) on the target (Debian package C(python3-psutil)).
options:
  profiles:
    description: What to reap. Profiles are handled in order; put the process that
      holds the connection first (C(gpclient) before C(gpservice)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The profile's name, used in results and messages.
        type: str
        required: true
      match:
        description: Selectors, ANDed. At least one of C(name), C(exe), C(cmdline) is required.
        type: dict
        required: true
        suboptions:
          name:
            description: Regex that must fully match the process name (comm, or argv[0]'s
              basename when comm is cut at 15 characters).
            type: str
          exe:
            description: Regex searched in the executable's path.
            type: str
          cmdline:
            description: Regex searched in the space-joined argv.
            type: str
          user:
            description: Exact user name the process must run as.
            type: str
      min_age:
        description: Only processes that have run at least this many seconds.
        type: float
        default: 0
      orphaned_only:
        description: Only processes re-parented to PID 1 or a user manager
          (C(systemd --user)) that are not a systemd service's process.
        type: bool
        default: false
      gui:
        description: Names of the product's GUI processes.
        type: list
        elements: str
        default: []
      gui_gone:
        description: Only when none of O(profiles[].gui) is alive.
        type: bool
        default: false
      ladder:
        description: The signals to send, in order, each followed by its grace period
          (seconds) to wait for the process to exit.
        type: list
        elements: dict
        default: [{signal: SIGTERM, grace: 5}, {signal: SIGKILL, grace: 5}]
        suboptions:
          signal:
            description: Signal name.
            type: str
            required: true
            choices: [SIGINT, SIGTERM, SIGKILL, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]
          grace:
            description: Seconds to wait after the signal; must not be negative.
            type: float
            default: 5
      lock_files:
        description: Lock files holding C(PID) or C(PID:PORT); removed when stale.
        type: list
        elements: path
        default: []
      tunnel_lock_files:
        description: Lock files whose live PID means a tunnel is up (products that
          write them only while connected); that process is spared unless O(force).
        type: list
        elements: path
        default: []
  targets:
    description:
      - Restrict the run to these processes, as the agent's facts name them - PID and
        start time in seconds after boot (C(/proc/PID/stat) starttime).
      - They must still match a profile and pass the guards. A PID whose start time
        differs is a reused PID - reported in RV(spared) with guard C(start-time-mismatch),
        never signalled.
      - Empty - every process the profiles select.
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: Process ID.
        type: int
        required: true
      start_time:
        description: Start time in seconds after boot, as the agent reports it.
        type: float
        required: true
      profile:
        description: The profile the agent matched it with (informational).
        type: str
      name:
        description: The process name the agent saw (informational).
        type: str
  force:
    description:
      - Signal processes that the active-tunnel guard would spare.
      - The other guards still hold.
    type: bool
    default: false
  max_targets:
    description: Most processes one run may signal (targets plus zombie parents).
      Above it the run aborts and signals nothing. At least 1.
    type: int
    default: 10
  protected_names:
    description: Process names never signalled, in addition to the built-in guards.
    type: list
    elements: str
    default: []
  zombie_grace:
    description: Seconds to wait for a zombie to disappear after C(SIGCHLD) to its parent.
    type: float
    default: 2
requirements:
  - psutil (python3-psutil) on the target
attributes:
  check_mode:
    support: full
    details:
      - Reports exactly which processes would be signalled and which lock files
        removed; signals nothing.
  diff_mode:
    support: none
  platform:
    platforms: linux
notes:
  - Signals are sent with C(pidfd_send_signal) when Python and the kernel offer it,
    otherwise with C(kill) right after the PID and start time were re-read.
author:
  - netmedic
"""

EXAMPLES = r"""
# Report which lingering GlobalProtect clients would be signalled (changes nothing)
- name: Plan the reap
  netmedic_reaper:
    profiles:
      - name: gpclient
        match: {name: gpclient, exe: ^/usr/bin/gpclient$, user: root}
        gui: [gpgui]
        gui_gone: true
        ladder:
          - {signal: SIGINT, grace: 5}
          - {signal: SIGTERM, grace: 5}
          - {signal: SIGKILL, grace: 3}
        lock_files: [/var/run/gpclient.lock]
  check_mode: true
  register: plan

# Reap gpservice gracefully (SIGUSR1 first, as gpclient disconnect does), at most 4 processes
- name: Reap gpservice
  netmedic_reaper:
    max_targets: 4
    profiles:
      - name: gpservice
        match: {name: gpservice, user: root}
        min_age: 60
        orphaned_only: true
        ladder:
          - {signal: SIGUSR1, grace: 5}
          - {signal: SIGTERM, grace: 5}
          - {signal: SIGKILL, grace: 3}
        lock_files: [/var/run/gpservice.lock]
"""

RETURN = r"""
targets:
  description: Processes selected and not guarded, with the signals sent (in check mode
    the ladder that would be sent) and how each ended.
  returned: always
  type: list
  elements: dict
  sample:
    - pid: 4242
      name: gpclient
      profile: gpclient
      user: root
      ppid: 1
      create_time: 1795000000.12
      age: 3600.5
      signals: [SIGINT, SIGTERM, SIGKILL]
      outcome: died
      died_after: SIGKILL
spared:
  description: Processes a profile selected that a guard protects. C(guard) is one of
    C(pid1), C(kernel-thread), C(own-ancestry), C(ansible), C(sshd), C(protected-name),
    C(tunnel), C(tunnel-lock), C(tunnel-unknown), C(parent-guarded) (a zombie whose
    parent is guarded), or C(start-time-mismatch) (a PID in O(targets) that now belongs
    to another process).
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 4300, name: gpclient, profile: gpclient, guard: tunnel, detail: "fd 7 is /dev/net/tun"}
zombies:
  description: Zombies a profile selected and what was done about them. C(outcome) is
    C(cleared-by-parent), C(reaped), C(unreaped), C(gone) or, in check mode, C(would-signal-parent)
    and C(would-clear-with-parent).
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 4250, name: gpclient, profile: gpclient, ppid: 4243, parent: gpservice,
       outcome: cleared-by-parent}
lock_files:
  description: Every lock file of every profile that exists, with its state
    (C(live), C(stale), C(unparsed)) and whether it was (or in check mode would be) removed.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /var/run/gpservice.lock, profile: gpservice, pid: 4243, port: 4123,
       state: stale, removed: true}
reaped:
  description: PIDs that died in this run (empty in check mode).
  returned: always
  type: list
  elements: int
  sample: [4242, 4243]
check_mode:
  description: Whether this was a check-mode run (a plan; nothing was signalled or removed).
  returned: always
  type: bool
  sample: false
signalled:
  description: How many processes were signalled (in check mode, would be).
  returned: always
  type: int
  sample: 2
"""

import os
import re
import signal
import time
from typing import Any, Dict, List, Optional, Pattern, Set, Tuple

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import psutil

    HAS_PSUTIL = True
except ImportError:  # reported through fail_json in main()
    HAS_PSUTIL = False

SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"]
TUN_DEVICE = "/dev/net/tun"
COMM_LEN = 15  # the kernel cuts /proc/PID/comm at 15 characters
PF_KTHREAD = 0x00200000  # task flag of kernel threads (include/linux/sched.h)
SSHD_NAMES = frozenset({"sshd", "sshd-session", "sshd-auth"})
ANSIBLE_ARG = re.compile(r"(^|/)(ansible[\w.-]*|AnsiballZ_\w+\.py)$")
POLL = 0.05
ATTRS = ["pid", "ppid", "name", "exe", "cmdline", "username", "create_time", "status"]

Info = Dict[str, Any]


class ReaperError(Exception):
    """An input or state the module refuses; main() turns it into fail_json."""


# ---------------------------------------------------------------- reading /proc


def snapshot() -> Dict[int, Info]:
    """One pass over the process table: pid → the ATTRS fields (None where unreadable)."""
    table: Dict[int, Info] = {}
    for proc in psutil.process_iter(ATTRS, ad_value=None):
        table[proc.info["pid"]] = dict(proc.info)
    return table


def stat_flags(pid: int) -> Optional[int]:
    """Task flags from /proc/PID/stat: ``"2 (kthreadd) S 0 0 0 0 -1 2129984 ..."`` → 2129984."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return int(fields[6])
    except (OSError, ValueError, IndexError):
        return None


def service_unit(pid: int) -> Optional[str]:
    """The service a process belongs to: ``0::/system.slice/x.service`` → ``x.service``."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        leaf = line.rpartition(":")[2].rstrip("/").rpartition("/")[2]
        if leaf.endswith(".service"):
            return leaf
    return None


def tun_fds(pid: int) -> Tuple[Optional[List[int]], Optional[str]]:
    """fds of ``pid`` open on /dev/net/tun: ``([7], None)``; unreadable → ``(None, reason)``.

    Unreadable is the directory or any one link: root without CAP_SYS_PTRACE lists a
    more privileged process's fds but gets EACCES on every readlink there.
    """
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return [], None  # exited meanwhile: holds nothing
    except OSError as exc:
        return None, f"cannot read {fd_dir}: {exc.strerror or exc}"
    found = []
    for name in names:
        link = os.path.join(fd_dir, name)
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            continue  # fd closed (or the process exited) between listdir and readlink
        except OSError as exc:
            return None, f"cannot read {link}: {exc.strerror or exc}"
        if target == TUN_DEVICE:
            found.append(int(name))
    return sorted(found), None


def parse_lock(text: str) -> Tuple[Optional[int], Optional[int]]:
    """Lock file content → (pid, port): ``"1234\\n"`` → (1234, None); ``"99:4123"`` → (99, 4123)."""
    pid_text, _, port_text = text.strip().partition(":")
    pid = int(pid_text) if pid_text.isdigit() else None
    port = int(port_text) if port_text.isdigit() else None
    return pid, port


def read_lock(path: str) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """(pid, port) of a lock file, None when it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return parse_lock(fh.read(256))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReaperError(f"cannot read lock file {path}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------- selecting


class Profile:
    """A validated profile: compiled selectors plus ladder and lock files."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.name: str = raw["name"]
        match = raw.get("match") or {}
        self.match_name = self._compile(match, "name")
        self.match_exe = self._compile(match, "exe")
        self.match_cmdline = self._compile(match, "cmdline")
        if not (self.match_name or self.match_exe or self.match_cmdline):
            raise ReaperError(
                f"profile {self.name!r}: match needs a non-empty name, exe or cmdline "
                f"selector (got {match!r}); an empty selector never means every process"
            )
        self.match_user: Optional[str] = match.get("user")
        self.min_age = float(raw.get("min_age") or 0)
        if self.min_age < 0:
            raise ReaperError(f"profile {self.name!r}: min_age must be >= 0, got {self.min_age}")
        self.orphaned_only = bool(raw.get("orphaned_only"))
        self.gui = [str(g) for g in raw.get("gui") or []]
        self.gui_gone = bool(raw.get("gui_gone"))
        if self.gui_gone and not self.gui:
            raise ReaperError(f"profile {self.name!r}: gui_gone is true but gui lists no names")
        self.ladder: List[Tuple[str, float]] = []
        for step in raw.get("ladder") or []:
            grace = float(step.get("grace", 5))
            if step["signal"] not in SIGNALS:
                raise ReaperError(f"profile {self.name!r}: unknown signal {step['signal']!r}")
            if grace < 0:
                raise ReaperError(
                    f"profile {self.name!r}: grace of {step['signal']} must be >= 0, got {grace}"
                )
            self.ladder.append((step["signal"], grace))
        if not self.ladder:
            raise ReaperError(f"profile {self.name!r}: ladder is empty")
        self.lock_files: List[str] = list(raw.get("lock_files") or [])
        self.tunnel_lock_files: List[str] = list(raw.get("tunnel_lock_files") or [])

    def _compile(self, match: Dict[str, Any], key: str) -> Optional[Pattern[str]]:
        pattern = match.get(key)
        if pattern is None or pattern == "":
            return None
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise ReaperError(
                f"profile {self.name!r}: match.{key} {pattern!r} is not a valid regex: {exc}"
            ) from exc

    def identity_matches(self, info: Info) -> bool:
        """Name/exe/cmdline/user selectors (what the process is, not its state).

        A zombie has no exe or argv left: it matches on name (required) and user only.
        """
        name = info.get("name") or ""
        cmdline = info.get("cmdline") or []
        if info.get("status") == "zombie":
            return (
                self.match_name is not None
                and bool(self.match_name.fullmatch(name))
                and (self.match_user is None or info.get("username") == self.match_user)
            )
        if self.match_name is not None and not (
            self.match_name.fullmatch(name)
            or (
                len(name) == COMM_LEN
                and cmdline
                and self.match_name.fullmatch(os.path.basename(cmdline[0]))
            )
        ):
            return False
        if self.match_exe is not None and not self.match_exe.search(info.get("exe") or ""):
            return False
        if self.match_cmdline is not None and not (
            cmdline and self.match_cmdline.search(" ".join(cmdline))
        ):
            return False
        return self.match_user is None or info.get("username") == self.match_user


def gui_alive(gui: List[str], table: Dict[int, Info]) -> bool:
    wanted = {g[:COMM_LEN] for g in gui}
    return any(
        (info.get("name") or "")[:COMM_LEN] in wanted and info.get("status") != "zombie"
        for info in table.values()
    )


def orphaned(info: Info, table: Dict[int, Info]) -> bool:
    """Re-parented to PID 1 or a user manager, and not a systemd service's process."""
    ppid = info.get("ppid")
    parent = table.get(ppid) if ppid is not None else None
    reparented = ppid == 1 or (parent is not None and parent.get("name") == "systemd")
    return reparented and service_unit(info["pid"]) is None


def ancestry(pid: int) -> Set[int]:
    """``pid`` and every ancestor up to PID 1 (the module's own process tree upwards)."""
    chain: Set[int] = set()
    while pid > 0 and pid not in chain:
        chain.add(pid)
        try:
            pid = psutil.Process(pid).ppid()
        except psutil.Error:
            break
    return chain


class Guards:
    """The guards; :meth:`check` names the first that protects a process, or None."""

    def __init__(self, protected_names: List[str], force: bool, own_pid: Optional[int] = None):
        self.protected = {n[:COMM_LEN] for n in protected_names}
        self.force = force
        self.ancestry = ancestry(own_pid if own_pid is not None else os.getpid())
        self.tunnel_lock_pids: Dict[int, str] = {}

    def fixed(self, info: Info) -> Optional[Tuple[str, str]]:
        """Guards that hold even with force."""
        pid = info["pid"]
        name = info.get("name") or ""
        if pid == 1:
            return "pid1", "PID 1"
        flags = stat_flags(pid)
        if flags is None:
            return "kernel-thread", f"cannot read /proc/{pid}/stat to rule out a kernel thread"
        if flags & PF_KTHREAD:
            return "kernel-thread", "kernel thread"
        if pid in self.ancestry:
            return "own-ancestry", "the module's own process or one of its ancestors"
        if any(ANSIBLE_ARG.search(arg) for arg in (info.get("cmdline") or [])[:2]):
            return "ansible", "an Ansible process"
        if name in SSHD_NAMES:
            return "sshd", "sshd"
        if name[:COMM_LEN] in self.protected:
            return "protected-name", f"{name} is in protected_names"
        return None

    def tunnel(self, info: Info) -> Optional[Tuple[str, str]]:
        """The active-tunnel guard (lifted by force)."""
        if self.force:
            return None
        pid = info["pid"]
        if pid in self.tunnel_lock_pids:
            return "tunnel-lock", f"live PID of tunnel lock file {self.tunnel_lock_pids[pid]}"
        fds, error = tun_fds(pid)
        if fds is None:
            return "tunnel-unknown", f"{error}; cannot rule out an open {TUN_DEVICE}"
        if fds:
            return "tunnel", f"fd {', '.join(map(str, fds))} is {TUN_DEVICE}"
        return None

    def check(self, info: Info) -> Optional[Tuple[str, str]]:
        return self.fixed(info) or self.tunnel(info)


def describe(info: Info, profile: Profile, now: float) -> Info:
    create_time = info.get("create_time")
    return {
        "pid": info["pid"],
        "name": info.get("name"),
        "profile": profile.name,
        "user": info.get("username"),
        "ppid": info.get("ppid"),
        "exe": info.get("exe"),
        "cmdline": info.get("cmdline"),
        "create_time": create_time,
        "age": round(now - create_time, 1) if create_time else None,
    }


def plan(
    profiles: List[Profile],
    guards: Guards,
    table: Optional[Dict[int, Info]] = None,
    now: Optional[float] = None,
    pinned: Optional[Dict[int, float]] = None,
) -> Dict[str, Any]:
    """Targets, spared processes and zombies per profile (nothing is signalled here).

    ``pinned`` (pid → start time in seconds after boot) restricts the run to those pids.
    """
    table = snapshot() if table is None else table
    boot_time = psutil.boot_time()
    now = time.time() if now is None else now
    targets: List[Info] = []
    spared: List[Info] = []
    zombies: List[Info] = []
    seen: Set[int] = set()
    for profile in profiles:
        for path in profile.tunnel_lock_files:
            lock = read_lock(path)
            if lock and lock[0] in table and table[lock[0]].get("status") != "zombie":
                guards.tunnel_lock_pids[lock[0]] = path
        if profile.gui_gone and gui_alive(profile.gui, table):
            continue
        for pid, info in sorted(table.items()):
            if pid in seen or (pinned and pid not in pinned):
                continue
            if not profile.identity_matches(info):
                continue
            create_time = info.get("create_time")
            if create_time is None or now - create_time < profile.min_age:
                continue
            entry = describe(info, profile, now)
            if info.get("status") == "zombie":
                seen.add(pid)
                entry["ladder"] = profile.ladder
                zombies.append(entry)
                continue
            if profile.orphaned_only and not orphaned(info, table):
                continue
            seen.add(pid)
            guard = guards.check(info)
            if pinned and abs(create_time - boot_time - pinned[pid]) > 0.05:
                guard = (
                    "start-time-mismatch",
                    f"started {create_time - boot_time:.2f} s after "
                    f"boot, not {pinned[pid]}: the PID was reused",
                )
            if guard:
                entry.update(guard=guard[0], detail=guard[1])
                spared.append(entry)
            else:
                entry.update(ladder=profile.ladder, signals=[], outcome=None, died_after=None)
                targets.append(entry)
    classify_zombies(zombies, {t["pid"] for t in targets}, table, guards, spared)
    return {"targets": targets, "spared": spared, "zombies": zombies}


def classify_zombies(
    zombies: List[Info],
    target_pids: Set[int],
    table: Dict[int, Info],
    guards: Guards,
    spared: List[Info],
) -> None:
    """Decide per zombie: clear with its parent (a target), signal the parent, wait, or spare."""
    for zombie in zombies:
        parent = table.get(zombie["ppid"])
        zombie["parent"] = parent.get("name") if parent else None
        zombie["parent_create_time"] = parent.get("create_time") if parent else None
        if zombie["ppid"] in target_pids:
            zombie["action"] = "clear-with-parent"
            continue
        guard = guards.fixed(parent) if parent else None
        if guard and zombie["ppid"] != 1:
            zombie["action"] = "none"
            spared.append(
                {
                    **zombie,
                    "guard": "parent-guarded",
                    "detail": f"parent {zombie['ppid']} ({zombie['parent']}): {guard[1]}",
                }
            )
        elif zombie["ppid"] == 1 or parent is None:
            zombie["action"] = "wait"  # init reaps its own children
        else:
            zombie["action"] = "signal-parent"


def signal_count(planned: Dict[str, Any]) -> int:
    parents = {z["ppid"] for z in planned["zombies"] if z["action"] == "signal-parent"}
    return len(planned["targets"]) + len(parents)


# ---------------------------------------------------------------- acting


def same_process(pid: int, create_time: Optional[float]) -> Optional[str]:
    """None when ``pid`` still is the process started at ``create_time``, else why not."""
    try:
        proc = psutil.Process(pid)
        if create_time is None or abs(proc.create_time() - create_time) > 0.01:
            return "pid-reused"
        if proc.status() == psutil.STATUS_ZOMBIE:
            return "exited"
    except psutil.NoSuchProcess:
        return "vanished"
    return None


def send(pid: int, create_time: Optional[float], signame: str) -> Optional[str]:
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
        why = same_process(pid, create_time)
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


def gone(pid: int, create_time: Optional[float]) -> bool:
    """Exited (a zombie counts: its parent owns the rest) or replaced by another process."""
    return same_process(pid, create_time) is not None


def wait_all(check: Any, grace: float) -> None:
    deadline = time.monotonic() + grace
    while not check() and time.monotonic() < deadline:
        time.sleep(POLL)


def run_ladder(targets: List[Info]) -> None:
    """Walk every target's ladder in lock step; fills signals, outcome, died_after."""
    depth = max((len(t["ladder"]) for t in targets), default=0)
    for step in range(depth):
        sent: List[Info] = []
        grace = 0.0
        for target in targets:
            if target["outcome"] is not None or step >= len(target["ladder"]):
                continue
            signame, step_grace = target["ladder"][step]
            why = send(target["pid"], target["create_time"], signame)
            if why:
                died = why == "exited" and bool(target["signals"])
                target["outcome"] = "died" if died else why
                target["died_after"] = target["signals"][-1] if died else None
                continue
            target["signals"].append(signame)
            sent.append(target)
            grace = max(grace, step_grace)
        wait_all(lambda sent=sent: all(gone(t["pid"], t["create_time"]) for t in sent), grace)
        for target in sent:
            if gone(target["pid"], target["create_time"]):
                target["outcome"] = "died"
                target["died_after"] = target["signals"][-1]
    for target in targets:
        if target["outcome"] is None:
            target["outcome"] = "survived"


def reap_zombies(zombies: List[Info], zombie_grace: float) -> None:
    """SIGCHLD to each zombie's parent where planned; then record which zombies are gone."""
    signalled: Set[int] = set()
    for zombie in zombies:
        if (
            zombie["action"] == "signal-parent"
            and zombie["ppid"] not in signalled
            and send(zombie["ppid"], zombie["parent_create_time"], "SIGCHLD") is None
        ):
            signalled.add(zombie["ppid"])

    def cleared(zombie: Info) -> bool:
        try:
            process = psutil.Process(zombie["pid"])
            recorded: float = zombie["create_time"]
            return process.create_time() != recorded
        except psutil.NoSuchProcess:
            return True

    waiting = [z for z in zombies if z["action"] != "none"]
    wait_all(lambda: all(cleared(z) for z in waiting), zombie_grace if waiting else 0)
    for zombie in zombies:
        if zombie["action"] == "none":
            zombie["outcome"] = "parent-guarded"
        elif cleared(zombie):
            zombie["outcome"] = {
                "clear-with-parent": "cleared-by-parent",
                "signal-parent": "reaped",
            }.get(zombie["action"], "gone")
        else:
            zombie["outcome"] = "unreaped"
        zombie["parent_signalled"] = zombie["ppid"] in signalled


def lock_files(
    profiles: List[Profile], targets: List[Info], check_mode: bool
) -> Tuple[List[Info], bool]:
    """Each existing lock file's state; stale ones removed (unless check mode)."""
    reaped = {t["pid"] for t in targets if t["outcome"] in ("died", "would-signal")}
    results: List[Info] = []
    changed = False
    for profile in profiles:
        for path in profile.lock_files:
            lock = read_lock(path)
            if lock is None:
                continue
            pid, port = lock
            entry: Info = {
                "path": path,
                "profile": profile.name,
                "pid": pid,
                "port": port,
                "removed": False,
            }
            if pid is None:
                entry["state"] = "unparsed"  # not ours to judge: leave it for a person
            elif pid in reaped or not live_holder(profile, pid):
                entry["state"] = "stale"
            else:
                entry["state"] = "live"
            if entry["state"] == "stale":
                if not check_mode:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        raise ReaperError(f"cannot remove stale lock file {path}: {exc}") from exc
                entry["removed"] = True
                changed = True
            results.append(entry)
    return results, changed


def live_holder(profile: Profile, pid: int) -> bool:
    """The lock's PID is alive and still the profile's program (not a reused PID)."""
    try:
        proc = psutil.Process(pid)
        info = proc.as_dict(ATTRS, ad_value=None)
    except psutil.NoSuchProcess:
        return False
    return info.get("status") != "zombie" and profile.identity_matches(info)


def reap(params: Dict[str, Any], check_mode: bool, own_pid: Optional[int] = None) -> Dict[str, Any]:
    """The whole run: validate, plan, enforce the cap, then (unless check mode) act."""
    if not params.get("profiles"):
        raise ReaperError("profiles is empty: an empty target set never means every process")
    if params["max_targets"] < 1:
        raise ReaperError(f"max_targets must be >= 1, got {params['max_targets']}")
    if params["zombie_grace"] < 0:
        raise ReaperError(f"zombie_grace must be >= 0, got {params['zombie_grace']}")
    profiles = [Profile(raw) for raw in params["profiles"]]
    guards = Guards(params["protected_names"] or [], params["force"], own_pid)
    pinned = {t["pid"]: float(t["start_time"]) for t in params.get("targets") or []}
    planned = plan(profiles, guards, pinned=pinned or None)
    count = signal_count(planned)
    if count > params["max_targets"]:
        pids = [t["pid"] for t in planned["targets"]]
        raise ReaperError(
            f"would signal {count} processes, above max_targets={params['max_targets']}; "
            f"nothing was signalled (targets: {pids})"
        )
    targets, zombies = planned["targets"], planned["zombies"]
    if check_mode:
        for target in targets:
            target["signals"] = [name for name, _ in target["ladder"]]
            target["outcome"] = "would-signal"
        for zombie in zombies:
            zombie["outcome"] = {
                "signal-parent": "would-signal-parent",
                "clear-with-parent": "would-clear-with-parent",
                "none": "parent-guarded",
            }.get(zombie["action"], "gone")
    else:
        run_ladder(targets)
        reap_zombies(zombies, params["zombie_grace"])
    locks, locks_changed = lock_files(profiles, targets, check_mode)
    signalled = sum(1 for t in targets if t["signals"]) + len(
        {
            z["ppid"]
            for z in zombies
            if z.get("parent_signalled") or z.get("outcome") == "would-signal-parent"
        }
    )
    for entry in targets + zombies:
        entry["ladder"] = [{"signal": s, "grace": g} for s, g in entry["ladder"]]
    return {
        "changed": bool(signalled or locks_changed),
        "targets": targets,
        "spared": planned["spared"],
        "zombies": zombies,
        "lock_files": locks,
        "reaped": sorted(t["pid"] for t in targets if t["outcome"] == "died"),
        "signalled": signalled,
        "check_mode": check_mode,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "profiles": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "match": {
                        "type": "dict",
                        "required": True,
                        "options": {
                            "name": {"type": "str"},
                            "exe": {"type": "str"},
                            "cmdline": {"type": "str"},
                            "user": {"type": "str"},
                        },
                        "required_one_of": [["name", "exe", "cmdline"]],
                    },
                    "min_age": {"type": "float", "default": 0},
                    "orphaned_only": {"type": "bool", "default": False},
                    "gui": {"type": "list", "elements": "str", "default": []},
                    "gui_gone": {"type": "bool", "default": False},
                    "ladder": {
                        "type": "list",
                        "elements": "dict",
                        "default": [
                            {"signal": "SIGTERM", "grace": 5},
                            {"signal": "SIGKILL", "grace": 5},
                        ],
                        "options": {
                            "signal": {"type": "str", "required": True, "choices": SIGNALS},
                            "grace": {"type": "float", "default": 5},
                        },
                    },
                    "lock_files": {"type": "list", "elements": "path", "default": []},
                    "tunnel_lock_files": {"type": "list", "elements": "path", "default": []},
                },
                "required_if": [["gui_gone", True, ["gui"]]],
            },
            "targets": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "pid": {"type": "int", "required": True},
                    "start_time": {"type": "float", "required": True},
                    "profile": {"type": "str"},
                    "name": {"type": "str"},
                },
            },
            "force": {"type": "bool", "default": False},
            "max_targets": {"type": "int", "default": 10},
            "protected_names": {"type": "list", "elements": "str", "default": []},
            "zombie_grace": {"type": "float", "default": 2},
        },
        supports_check_mode=True,
    )
    if not HAS_PSUTIL:
        module.fail_json(msg=missing_required_lib("psutil (Debian: python3-psutil)"))
    try:
        result = reap(module.params, module.check_mode)
    except ReaperError as exc:
        module.fail_json(msg=str(exc))
    failed = [t["pid"] for t in result["targets"] if t["outcome"] == "survived"]
    if failed:
        module.fail_json(msg=f"processes survived the whole signal ladder: {failed}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
