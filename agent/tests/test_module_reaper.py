"""library/netmedic_reaper.py against real processes this test starts.

Every process signalled here is a stand-in the test started (molecule/process_reaper/
files/gp-standin.py run through a copy of python3 under a unique name in a temp dir),
selected by that temp dir's exe path, so nothing else on the machine can match.
Guards that concern processes we must not touch (PID 1, kernel threads) run the whole
reap with ``send`` replaced by a tripwire, so a guard that let one through fails the
test instead of signalling. No test skips: a machine that cannot show a guard fails
with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import psutil
import pytest
from conftest import as_nobody, run_module

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "library"))

import netmedic_reaper as reaper  # noqa: E402

STANDIN = ROOT / "molecule" / "process_reaper" / "files" / "gp-standin.py"
TUN = "/dev/net/tun"
# Root without CAP_SYS_PTRACE (a trimmed bounding set, a container's default caps).
NO_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace", "--"]
SYSTEM_PYTHON = "/usr/bin/python3"  # the copy must find its stdlib from its compiled-in prefix
TAG = uuid.uuid4().hex[:4]
FAST = [{"signal": "SIGTERM", "grace": 2.0}, {"signal": "SIGKILL", "grace": 2.0}]


class Lab:
    """Copies of python3 named like programs, and the stand-ins started from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: List[psutil.Process] = []
        self.children: List[subprocess.Popen[str]] = []

    def binary(self, name: str) -> str:
        path = self.root / name
        if not path.exists():
            shutil.copy2(SYSTEM_PYTHON, path)
        return str(path)

    def script(self, name: str) -> str:
        """The stand-in script under another file name: what argv[1] shows."""
        path = self.root / name
        if not path.exists():
            shutil.copy2(STANDIN, path)
        return str(path)

    def start(
        self, name: str, *flags: str, orphan: bool = False, script: Optional[str] = None
    ) -> psutil.Process:
        """Start a stand-in as ``name``; returns it once it is set up (it printed its pid)."""
        argv = [self.binary(name), script or str(STANDIN), "--max-life", "60", *flags]
        if orphan:
            out = subprocess.run(
                [*argv, "--daemonize"], capture_output=True, text=True, timeout=20, check=True
            )
            pid = int(out.stdout.split()[0])
        else:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            self.children.append(child)
            assert child.stdout is not None
            pid = int(child.stdout.readline())
        proc = psutil.Process(pid)
        self.started.append(proc)
        return proc

    def profile(self, name: str, **extra: Any) -> Dict[str, Any]:
        """A profile that can only match this lab's copies (exe under its temp dir)."""
        profile: Dict[str, Any] = {
            "name": name,
            "match": {"name": name, "exe": f"^{self.root}/"},
            "ladder": FAST,
        }
        profile.update(extra)
        return profile

    def cleanup(self) -> None:
        for proc in self.started:
            try:
                if proc.is_running():  # psutil re-checks create_time: never a reused pid
                    proc.kill()
            except psutil.Error:
                pass
        for child in self.children:
            child.wait(timeout=10)


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is missing: the stand-ins are copies of it")
    box = Lab(tmp_path_factory.mktemp("reaper"))
    yield box
    box.cleanup()


def params(*profiles: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {
        "profiles": list(profiles),
        "force": False,
        "max_targets": 10,
        "protected_names": [],
        "zombie_grace": 2.0,
    }
    base.update(extra)
    return base


def alive(proc: psutil.Process) -> bool:
    return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE


def by_pid(entries: List[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    return {entry["pid"]: entry for entry in entries}


def guards_by_pid(entries: List[Dict[str, Any]]) -> Dict[int, str]:
    return {entry["pid"]: entry["guard"] for entry in entries}


def require_tun() -> None:
    if not os.path.exists(TUN):
        pytest.fail(
            f"no {TUN} on this machine: the tunnel guards need a real open tun fd; load the "
            f"tun driver (modprobe tun) or create the node (mknod -m 0666 {TUN} c 10 200)"
        )


def kernel_threads(limit: int = 4) -> List[psutil.Process]:
    """kthreadd (PID 2, parent 0) and its first children with no argv, long-lived ones.

    Found by what ps shows of them, not by the module's PF_KTHREAD test; kworkers come and
    go, so they are left out.
    """
    procs = {p.pid: p for p in psutil.process_iter(["ppid", "name", "cmdline"], ad_value=None)}
    kthreadd = procs.get(2)
    if kthreadd is None or (kthreadd.info["name"], kthreadd.info["ppid"]) != ("kthreadd", 0):
        return []
    children = [
        proc
        for _, proc in sorted(procs.items())
        if proc.info["ppid"] == 2
        and proc.info["cmdline"] == []
        and "kworker" not in (proc.info["name"] or "")
    ]
    return [kthreadd, *children[: limit - 1]]


def pins(procs: List[psutil.Process]) -> List[Dict[str, Any]]:
    """The processes as the agent names them: PID and start time in seconds after boot."""
    boot = psutil.boot_time()
    return [{"pid": p.pid, "start_time": round(p.create_time() - boot, 2)} for p in procs]


def no_signal_profiles(init: psutil.Process, kthreads: List[psutil.Process]) -> List[Any]:
    """Profiles selecting PID 1 and these kernel threads (pin them: names alone match more)."""
    kernel_names = "|".join(sorted({re.escape(p.name()) for p in kthreads}))
    return [
        {"name": "init", "match": {"name": re.escape(init.name())}, "ladder": FAST},
        {"name": "kthreads", "match": {"name": kernel_names}, "ladder": FAST},
    ]


def require_kernel_threads() -> List[psutil.Process]:
    kthreads = kernel_threads()
    if not kthreads:
        pytest.fail(
            "no kernel threads in /proc (no kthreadd at PID 2): this PID namespace hides "
            "them; run the suite in the host's PID namespace to prove the kernel-thread guard"
        )
    return kthreads


# ---------------------------------------------------------------- reaping


def test_signal_ladder_kills_orphans_and_escalates_when_term_is_ignored(lab: Lab) -> None:
    polite = lab.start(f"nmt{TAG}cli", orphan=True)
    stubborn = lab.start(f"nmt{TAG}cli", "--ignore", "SIGINT,SIGTERM", orphan=True)
    ladder = [
        {"signal": "SIGINT", "grace": 2.0},
        {"signal": "SIGTERM", "grace": 0.5},
        {"signal": "SIGKILL", "grace": 2.0},
    ]
    result = reaper.reap(params(lab.profile(f"nmt{TAG}cli", ladder=ladder)), check_mode=False)
    targets = by_pid(result["targets"])
    assert targets[polite.pid]["signals"] == ["SIGINT"]
    assert targets[polite.pid]["died_after"] == "SIGINT"
    assert targets[stubborn.pid]["signals"] == ["SIGINT", "SIGTERM", "SIGKILL"]
    assert targets[stubborn.pid]["died_after"] == "SIGKILL"
    assert result["reaped"] == sorted([polite.pid, stubborn.pid])
    assert result["changed"] and result["signalled"] == 2
    assert not alive(polite) and not alive(stubborn)


def test_check_mode_reports_the_plan_and_signals_nothing(lab: Lab, tmp_path: Path) -> None:
    procs = [lab.start(f"nmt{TAG}cli", orphan=True) for _ in range(2)]
    lock = tmp_path / "client.lock"
    lock.write_text(f"{procs[0].pid}\n")
    before = {p.pid: p.create_time() for p in procs}
    profile = lab.profile(f"nmt{TAG}cli", lock_files=[str(lock)])
    result = reaper.reap(params(profile), check_mode=True)
    assert {t["pid"]: t["outcome"] for t in result["targets"]} == dict.fromkeys(
        before, "would-signal"
    )
    assert all(t["signals"] == ["SIGTERM", "SIGKILL"] for t in result["targets"])
    assert result["lock_files"][0]["state"] == "stale" and result["lock_files"][0]["removed"]
    assert result["changed"] and result["reaped"] == []
    # Re-read the system: same processes (pid and start time), lock file untouched.
    assert {p.pid: psutil.Process(p.pid).create_time() for p in procs} == before
    assert all(alive(p) for p in procs)
    assert lock.read_text() == f"{procs[0].pid}\n"


def test_selectors_min_age_orphaned_only_user_and_gui_gone(lab: Lab) -> None:
    child = lab.start(f"nmt{TAG}cli")  # a child of this test: not orphaned
    orphan = lab.start(f"nmt{TAG}cli", orphan=True)
    name = f"nmt{TAG}cli"

    def planned(**extra: Any) -> List[int]:
        profiles = [reaper.Profile(lab.profile(name, **extra))]
        return [t["pid"] for t in reaper.plan(profiles, reaper.Guards([], False))["targets"]]

    assert sorted(planned()) == sorted([child.pid, orphan.pid])
    assert planned(orphaned_only=True) == [orphan.pid]
    assert planned(min_age=3600) == []
    assert planned(match={"name": name, "exe": f"^{lab.root}/", "user": "nobody"}) == []
    assert planned(match={"cmdline": f"{lab.root}/{name} .*--daemonize"}) == [orphan.pid]
    gui = lab.start(f"nmt{TAG}gui")
    assert planned(gui=[f"nmt{TAG}gui"], gui_gone=True) == []
    gui.terminate()
    gui.wait(5)
    assert sorted(planned(gui=[f"nmt{TAG}gui"], gui_gone=True)) == sorted([child.pid, orphan.pid])


# ---------------------------------------------------------------- guards


def test_guards_pid1_and_kernel_threads_stop_a_real_run_before_any_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole reap (check_mode false, force true) selects PID 1 and kernel threads.

    The guards must spare them in planning; ``send`` is a tripwire, so a guard that let one
    through fails here and signals nothing.
    """
    init, kthreads = psutil.Process(1), require_kernel_threads()
    attempts: List[Any] = []

    def tripwire(pid: int, create_time: Optional[float], signame: str) -> Optional[str]:
        attempts.append((pid, signame))
        raise AssertionError(f"a guard let PID {pid} through: reap() tried to send {signame}")

    monkeypatch.setattr(reaper, "send", tripwire)
    result = reaper.reap(
        params(*no_signal_profiles(init, kthreads), force=True, targets=pins([init, *kthreads])),
        check_mode=False,
    )
    assert attempts == []
    assert guards_by_pid(result["spared"]) == {
        1: "pid1",
        **dict.fromkeys((p.pid for p in kthreads), "kernel-thread"),
    }
    assert result["targets"] == [] and result["zombies"] == [] and result["reaped"] == []
    assert result["signalled"] == 0 and not result["changed"]


def test_guards_own_ancestry_sshd_and_protected_names(lab: Lab) -> None:
    parent = lab.start(f"nmt{TAG}anc")
    sshd = lab.start("sshd", orphan=True)
    keeper = lab.start(f"nmt{TAG}kpr", orphan=True)
    profiles = [
        reaper.Profile(lab.profile(f"nmt{TAG}anc")),
        reaper.Profile(lab.profile("sshd")),
        reaper.Profile(lab.profile(f"nmt{TAG}kpr")),
    ]
    # Pretend the module runs as `parent`: its own pid is in its ancestry.
    guards = reaper.Guards([f"nmt{TAG}kpr"], force=True, own_pid=parent.pid)
    planned = reaper.plan(profiles, guards)
    assert planned["targets"] == []
    assert {e["pid"]: e["guard"] for e in planned["spared"]} == {
        parent.pid: "own-ancestry",
        sshd.pid: "sshd",
        keeper.pid: "protected-name",
    }
    # The real ancestry: this test's own process and its parents are never selected.
    assert os.getpid() in reaper.Guards([], False).ancestry


def test_ansible_guard_spares_ansible_argv_outside_own_ancestry(lab: Lab) -> None:
    """Processes that look like Ansible's (argv[1] a controller or an AnsiballZ module) live.

    They are orphans, not in the module's ancestry, so only the ``ansible`` guard can spare
    them; a stand-in of the same program with ordinary argv is the control that dies.
    """
    name = f"nmt{TAG}ans"
    controller = lab.start(name, orphan=True, script=lab.script("ansible-playbook"))
    module = lab.start(name, orphan=True, script=lab.script("AnsiballZ_command.py"))
    control = lab.start(name, orphan=True)
    own_ancestry = reaper.Guards([], False).ancestry
    assert {controller.pid, module.pid, control.pid}.isdisjoint(own_ancestry)
    assert controller.cmdline()[1] == f"{lab.root}/ansible-playbook"
    result = reaper.reap(params(lab.profile(name), force=True), check_mode=False)
    assert guards_by_pid(result["spared"]) == {controller.pid: "ansible", module.pid: "ansible"}
    assert [t["pid"] for t in result["targets"]] == [control.pid]
    assert result["reaped"] == [control.pid] and result["signalled"] == 1
    assert alive(controller) and alive(module) and not alive(control)


def test_tunnel_unknown_guard_spares_what_the_module_cannot_look_into(lab: Lab) -> None:
    """Run as nobody, the module cannot list a root process's /proc/PID/fd: it spares it.

    The holder might have /dev/net/tun open; force lifts the guard (the plan then targets it).
    """
    name = f"nmt{TAG}unk"
    holder = lab.start(name, orphan=True)
    # As nobody, exe is unreadable too: select by name and argv[0] under the lab dir.
    profile = {
        "name": name,
        "match": {"name": name, "cmdline": f"^{re.escape(str(lab.root))}/"},
        "ladder": FAST,
    }

    def reap_as_nobody(check_mode: bool, **extra: Any) -> Dict[str, Any]:
        def work() -> Dict[str, Any]:
            try:
                return reaper.reap(params(profile, **extra), check_mode=check_mode)
            except reaper.ReaperError as exc:  # e.g. EPERM: a guard let the holder through
                return {"error": str(exc)}

        result: Dict[str, Any] = as_nobody(work)
        assert "error" not in result, result["error"]
        return result

    result = reap_as_nobody(check_mode=False)
    spared = by_pid(result["spared"])[holder.pid]
    assert spared["guard"] == "tunnel-unknown"
    assert f"cannot read /proc/{holder.pid}/fd: Permission denied" in spared["detail"]
    assert result["targets"] == [] and result["signalled"] == 0 and not result["changed"]
    assert alive(holder)
    forced = reap_as_nobody(check_mode=True, force=True)
    assert [t["pid"] for t in forced["targets"]] == [holder.pid]
    assert alive(holder)


def test_tunnel_unknown_guard_when_the_fd_links_cannot_be_resolved(
    lab: Lab, tmp_path: Path
) -> None:
    """Root without CAP_SYS_PTRACE lists a full-capability process's /proc/PID/fd (DAC
    override) but every readlink there is EACCES: that is not "no /dev/net/tun open".

    The module runs as Ansible runs it (a program, args in a file, check mode off) against
    a stand-in that holds /dev/net/tun open; the holder is spared and lives.
    """
    require_tun()
    assert shutil.which(NO_PTRACE[0]), f"{NO_PTRACE[0]} (util-linux) is missing"
    name = f"nmt{TAG}npt"
    holder = lab.start(name, "--tun", orphan=True)
    # Without CAP_SYS_PTRACE exe is unreadable too: select by name and argv[0].
    match = {"name": name, "cmdline": f"^{re.escape(str(lab.root))}/"}
    result = run_module(
        "netmedic_reaper",
        tmp_path,
        prefix=NO_PTRACE,
        profiles=[{"name": name, "match": match, "ladder": FAST}],
    )
    assert not result.get("failed"), result
    spared = by_pid(result["spared"])[holder.pid]
    assert spared["guard"] == "tunnel-unknown", spared
    assert re.search(rf"cannot read /proc/{holder.pid}/fd/\d+: Permission denied", spared["detail"])
    assert result["targets"] == [] and result["signalled"] == 0 and not result["changed"]
    assert alive(holder)


def test_tunnel_fd_guard_spares_unless_forced(lab: Lab) -> None:
    require_tun()
    holder = lab.start(f"nmt{TAG}tun", "--tun", orphan=True)
    profile = lab.profile(f"nmt{TAG}tun")
    result = reaper.reap(params(profile), check_mode=False)
    assert result["targets"] == [] and not result["changed"]
    assert by_pid(result["spared"])[holder.pid]["guard"] == "tunnel"
    assert alive(holder)
    forced = reaper.reap(params(profile, force=True), check_mode=True)
    assert [t["pid"] for t in forced["targets"]] == [holder.pid]


def test_tunnel_lock_file_guard(lab: Lab, tmp_path: Path) -> None:
    lock = tmp_path / "tunnel.lock"
    holder = lab.start(f"nmt{TAG}tlk", "--lock", str(lock), "--lock-port", "4123", orphan=True)
    profile = lab.profile(f"nmt{TAG}tlk", tunnel_lock_files=[str(lock)])
    result = reaper.reap(params(profile), check_mode=False)
    assert by_pid(result["spared"])[holder.pid]["guard"] == "tunnel-lock"
    assert alive(holder)


def test_cap_aborts_before_any_signal(lab: Lab) -> None:
    procs = [lab.start(f"nmt{TAG}cap", orphan=True) for _ in range(3)]
    with pytest.raises(reaper.ReaperError, match=r"would signal 3 processes, above max_targets=2"):
        reaper.reap(params(lab.profile(f"nmt{TAG}cap"), max_targets=2), check_mode=False)
    assert all(alive(p) for p in procs)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"profiles": []}, "profiles is empty"),
        (
            {"profiles": [{"name": "e", "match": {}}]},
            "match needs a non-empty name, exe or cmdline",
        ),
        ({"profiles": [{"name": "e", "match": {"name": "", "user": "root"}}]}, "'e': match needs"),
        ({"profiles": [{"name": "r", "match": {"name": "("}}]}, r"match.name '\(' is not a valid"),
        ({"max_targets": 0}, "max_targets must be >= 1, got 0"),
        (
            {
                "profiles": [
                    {
                        "name": "g",
                        "match": {"name": "x"},
                        "ladder": [{"signal": "SIGTERM", "grace": -1}],
                    }
                ]
            },
            "grace of SIGTERM must be >= 0, got -1",
        ),
        ({"profiles": [{"name": "u", "match": {"name": "x"}, "gui_gone": True}]}, "gui lists no"),
    ],
)
def test_bad_input_is_refused_naming_the_value(bad: Dict[str, Any], message: str) -> None:
    good = params({"name": "ok", "match": {"name": "no-such-process-x"}, "ladder": FAST})
    good.update(bad)
    with pytest.raises(reaper.ReaperError, match=message):
        reaper.reap(good, check_mode=False)


# ---------------------------------------------------------------- races and zombies


def test_pid_reuse_is_detected_by_create_time(lab: Lab) -> None:
    proc = lab.start(f"nmt{TAG}pid", orphan=True)
    profiles = [reaper.Profile(lab.profile(f"nmt{TAG}pid"))]
    targets = reaper.plan(profiles, reaper.Guards([], False))["targets"]
    targets[0]["create_time"] -= 5  # as if the planned process died and the pid was reused
    reaper.run_ladder(targets)
    assert targets[0]["outcome"] == "pid-reused" and targets[0]["signals"] == []
    assert alive(proc)


def test_zombie_cleared_by_reaping_its_parent(lab: Lab) -> None:
    zname = f"nmt{TAG}zmb"
    parent = lab.start(f"nmt{TAG}zpa", "--zombie", lab.binary(zname), orphan=True)
    zombie = next(c for c in parent.children() if c.status() == psutil.STATUS_ZOMBIE)
    profiles = [lab.profile(f"nmt{TAG}zpa"), {**lab.profile(zname), "match": {"name": zname}}]
    result = reaper.reap(params(*profiles), check_mode=False)
    assert result["reaped"] == [parent.pid]
    assert by_pid(result["zombies"])[zombie.pid]["outcome"] == "cleared-by-parent"
    assert not psutil.pid_exists(zombie.pid) or psutil.Process(zombie.pid).ppid() != parent.pid


def test_zombie_reaped_through_sigchld_to_its_parent(lab: Lab) -> None:
    zname = f"nmt{TAG}zmb"
    parent = lab.start(
        f"nmt{TAG}zrp", "--zombie", lab.binary(zname), "--reap-after", "2", orphan=True
    )
    zombie = next(c for c in parent.children() if c.status() == psutil.STATUS_ZOMBIE)
    profile = {**lab.profile(zname), "match": {"name": zname}}
    result = reaper.reap(params(profile), check_mode=False)
    entry = by_pid(result["zombies"])[zombie.pid]
    assert entry["outcome"] == "reaped" and entry["parent_signalled"]
    assert result["signalled"] == 1 and result["changed"]
    assert alive(parent)  # SIGCHLD only asks it to reap; it lives on
    assert zombie.pid not in [c.pid for c in parent.children()]


def test_zombie_whose_parent_is_guarded_is_reported(lab: Lab) -> None:
    zname = f"nmt{TAG}zmb"
    # The stand-in that leaves the zombie is protected by name.
    parent = lab.start(f"nmt{TAG}zgd", "--zombie", lab.binary(zname), orphan=True)
    zombie = next(c for c in parent.children() if c.status() == psutil.STATUS_ZOMBIE)
    profile = {**lab.profile(zname), "match": {"name": zname}}
    result = reaper.reap(params(profile, protected_names=[f"nmt{TAG}zgd"]), check_mode=False)
    spared = by_pid(result["spared"])[zombie.pid]
    assert spared["guard"] == "parent-guarded" and str(parent.pid) in spared["detail"]
    assert not result["changed"] and result["signalled"] == 0
    assert zombie.status() == psutil.STATUS_ZOMBIE


def test_lock_files_stale_removed_live_kept(lab: Lab, tmp_path: Path) -> None:
    live_lock = tmp_path / "gpservice.lock"
    holder = lab.start(f"nmt{TAG}lck", "--lock", str(live_lock), "--lock-port", "4123")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale_lock = tmp_path / "gpclient.lock"
    stale_lock.write_text(dead.stdout)
    junk_lock = tmp_path / "junk.lock"
    junk_lock.write_text("not a pid\n")
    profile = lab.profile(
        f"nmt{TAG}lck", min_age=3600, lock_files=[str(live_lock), str(stale_lock), str(junk_lock)]
    )
    result = reaper.reap(params(profile), check_mode=False)
    states = {Path(e["path"]).name: (e["state"], e["removed"]) for e in result["lock_files"]}
    assert states == {
        "gpservice.lock": ("live", False),
        "gpclient.lock": ("stale", True),
        "junk.lock": ("unparsed", False),
    }
    assert (
        by_pid([{"pid": e["pid"], **e} for e in result["lock_files"] if e["pid"]])[holder.pid][
            "port"
        ]
        == 4123
    )
    assert live_lock.exists() and junk_lock.exists() and not stale_lock.exists()
    assert alive(holder)


# ---------------------------------------------------------------- through Ansible


BAD_INPUT = [
    (
        {"profiles": [{"name": "p", "match": {"user": "root"}}]},
        "one of the following is required: name, exe, cmdline",
    ),
    (
        {"profiles": [{"name": "p", "match": {"name": "x"}, "ladder": [{"signal": "SIGFOO"}]}]},
        "SIGFOO",
    ),
    (
        {"profiles": [{"name": "p", "match": {"name": "x"}}], "max_targets": 0},
        "max_targets must be >= 1, got 0",
    ),
]


def test_through_ansible(tmp_path: Path) -> None:
    """One ansible-playbook run: the module spares its own process, PID 1 and kernel threads
    (check mode: nothing here may be signalled for real); bad input fails naming it."""
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    assert ansible_playbook.exists(), f"{ansible_playbook} is missing (scripts/venv.sh test)"
    # ansible.cfg pipelines modules: the module runs as the bare interpreter (argv is just
    # its path, the code comes on stdin), so that argv selects the module process itself.
    own = {
        "profiles": [{"name": "self", "match": {"cmdline": f"^{re.escape(sys.executable)}$"}}],
        "max_targets": 1,
    }
    init, kthreads = psutil.Process(1), require_kernel_threads()
    untouchable = {
        "profiles": no_signal_profiles(init, kthreads),
        "targets": pins([init, *kthreads]),
        "force": True,
    }
    tasks = [
        {"netmedic_reaper": own, "check_mode": True},
        {"netmedic_reaper": untouchable, "check_mode": True},
    ] + [{"netmedic_reaper": args, "ignore_errors": True} for args, _ in BAD_INPUT]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = {
        **os.environ,
        "ANSIBLE_LIBRARY": str(ROOT / "library"),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
    }
    out = subprocess.run(
        [
            str(ansible_playbook),
            str(playbook),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    results = [t["hosts"]["localhost"] for t in json.loads(out.stdout)["plays"][0]["tasks"]]
    spared_self = results[0]
    assert spared_self["targets"] == [] and spared_self["spared"], spared_self
    assert [(e["cmdline"], e["guard"]) for e in spared_self["spared"]] == [
        ([sys.executable], "own-ancestry")
    ]
    spared_kernel = results[1]
    assert spared_kernel["targets"] == [] and spared_kernel["signalled"] == 0, spared_kernel
    assert guards_by_pid(spared_kernel["spared"]) == {
        1: "pid1",
        **dict.fromkeys((p.pid for p in kthreads), "kernel-thread"),
    }
    assert len(results) == 2 + len(BAD_INPUT), results
    for result, (_, message) in zip(results[2:], BAD_INPUT):
        assert result.get("failed"), result
        assert message in result["msg"], result["msg"]


def test_pinned_targets_match_pid_and_boot_relative_start_time(lab: Lab) -> None:
    name = f"nmt{TAG}pin"
    pinned, reused = lab.start(name, orphan=True), lab.start(name, orphan=True)
    boot = psutil.boot_time()
    pins = [
        {"pid": pinned.pid, "start_time": round(pinned.create_time() - boot, 2)},  # as the agent
        {"pid": reused.pid, "start_time": 1.0},  # the agent saw another process with this pid
    ]
    result = reaper.reap(params(lab.profile(name), targets=pins), check_mode=True)
    assert [t["pid"] for t in result["targets"]] == [pinned.pid]
    assert by_pid(result["spared"])[reused.pid]["guard"] == "start-time-mismatch"


def test_globalprotect_playbook_plans_in_check_mode_here() -> None:
    """The README's play, aimed at this host: report-only by default, --check on top."""
    playbook = Path(sys.executable).parent / "ansible-playbook"
    assert playbook.exists(), f"{playbook} is missing (scripts/venv.sh test)"
    out = subprocess.run(
        [
            str(playbook),
            "playbooks/globalprotect-reap.yml",
            "--check",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            "netmedic_targets=all",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "changed=0" in out.stdout and "failed=0" in out.stdout
