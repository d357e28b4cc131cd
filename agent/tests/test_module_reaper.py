"""plugins/modules/netmedic_reaper.py and netmedic.procs.reap against real processes this test
starts.

Every process signalled here is a stand-in the test started (molecule/process_reaper/
files/gp-standin.py run through a copy of python3 under a unique name in a temp dir).
The module runs as Ansible runs it, importing the agent of this tree (``agent_path``).
Guards that concern processes we must not touch (PID 1, kernel threads) are proved on
the plan, which signals nothing. No test skips: a machine that cannot show a guard fails
with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml
from conftest import ROOT, as_nobody, run_agent_module

from netmedic import api
from netmedic.context import Context
from netmedic.procs import reap, vpnc
from netmedic.procs import table as proctable
from netmedic.procs.profiles import build_profile

STANDIN = ROOT / "molecule" / "process_reaper" / "files" / "gp-standin.py"
EXAMPLE = ROOT / "inventories" / "example" / "group_vars" / "vpn_laptops" / "agent.yml"
TUN = "/dev/net/tun"
SYSTEM_PYTHON = "/usr/bin/python3"  # the copy must find its stdlib from its compiled-in prefix
TAG = uuid.uuid4().hex[:4]
FAST = [{"signal": "SIGTERM", "grace": 2.0}, {"signal": "SIGKILL", "grace": 2.0}]


class Lab:
    """Copies of python3 named like programs, and the stand-ins started from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pids: List[int] = []

    def binary(self, name: str) -> str:
        path = self.root / name
        if not path.exists():
            shutil.copy2(SYSTEM_PYTHON, path)
        return str(path)

    def start(self, name: str, *flags: str, children: Any = ()) -> Dict[str, Any]:
        """A detached (re-parented) stand-in as ``name``; its tree once it is set up."""
        argv = [self.binary(name), str(STANDIN), "--max-life", "60", "--daemonize", *flags]
        if children:
            argv.append("--children=" + json.dumps(list(children)))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
        tree: Dict[str, Any] = json.loads(out.stdout)
        stack = [tree]
        while stack:
            node = stack.pop()
            self.pids.append(node["pid"])
            stack.extend(node["children"])
        return tree

    def child(self, name: str, *flags: str, children: Any = ()) -> Dict[str, Any]:
        return {"exe": self.binary(name), "flags": list(flags), "children": list(children)}

    def profile(self, name: str, **extra: Any) -> Dict[str, Any]:
        """A profile that can only match this lab's copies (exe under its temp dir)."""
        return {"name": name, "match": {"name": name, "exe": f"^{self.root}/"}, "ladder": FAST,
                **extra}  # fmt: skip

    def cleanup(self) -> None:
        for pid in self.pids:
            stat = proctable.read_stat("/proc", pid)
            if stat is not None and str(self.root) in (proctable.read_exe("/proc", pid) or ""):
                os.kill(pid, 9)


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is missing: the stand-ins are copies of it")
    box = Lab(tmp_path_factory.mktemp("reaper"))
    yield box
    box.cleanup()


def target(pid: int, profile: str) -> Dict[str, Any]:
    """A target as the agent's finding names it: PID and start time after boot."""
    stat = proctable.read_stat("/proc", pid)
    assert stat is not None, pid
    return {"pid": pid, "start_time": stat.start_time, "profile": profile}


def alive(pid: int, start_time: Optional[float] = None) -> bool:
    stat = proctable.read_stat("/proc", pid)
    same = start_time is None or (stat is not None and stat.start_time == start_time)
    return stat is not None and not stat.zombie and same


def run(tmp_path: Path, check: bool = False, **args: Any) -> Dict[str, Any]:
    return run_agent_module("netmedic_reaper", tmp_path, check=check, **args)


# ---------------------------------------------------------------- the module


def test_ladder_escalates_and_the_stale_lock_goes(lab: Lab, tmp_path: Path) -> None:
    name = f"nmt{TAG}cli"
    lock = tmp_path / "cli.lock"
    polite = lab.start(name)["pid"]
    stubborn = lab.start(name, "--ignore", "SIGINT,SIGTERM", "--lock", str(lock))["pid"]
    ladder = [{"signal": "SIGINT", "grace": 2.0}, {"signal": "SIGTERM", "grace": 0.5},
              {"signal": "SIGKILL", "grace": 2.0}]  # fmt: skip
    result = run(
        tmp_path,
        targets=[target(polite, name), target(stubborn, name)],
        profiles=[lab.profile(name, ladder=ladder, lock_files=[str(lock)])],
    )
    assert result["imported_agent"].startswith(str(ROOT / "agent")), result
    outcome = {t["pid"]: (t["signals"], t["died_after"]) for t in result["targets"]}
    assert outcome == {
        polite: (["SIGINT"], "SIGINT"),
        stubborn: (["SIGINT", "SIGTERM", "SIGKILL"], "SIGKILL"),
    }
    assert sorted(result["reaped"]) == sorted([polite, stubborn]) and result["changed"]
    assert [entry["path"] for entry in result["lock_files"]] == [str(lock)]
    assert not lock.exists() and not alive(polite) and not alive(stubborn)


def test_check_mode_signals_nothing_and_a_reused_pid_is_left_alone(
    lab: Lab, tmp_path: Path
) -> None:
    name = f"nmt{TAG}chk"
    planned, reused = lab.start(name)["pid"], lab.start(name)["pid"]
    stale = {**target(reused, name), "start_time": 1.0}  # the agent saw another process
    result = run(tmp_path, check=True, targets=[target(planned, name), stale],
                 profiles=[lab.profile(name)])  # fmt: skip
    assert [(t["pid"], t["outcome"], t["signals"]) for t in result["targets"]] == [
        (planned, "would-signal", ["SIGTERM", "SIGKILL"])
    ]
    assert result["gone"] == [{**stale, "name": name, "outcome": "pid-reused"}]
    assert result["check_mode"] and result["reaped"] == []
    assert alive(planned) and alive(reused)
    really = run(tmp_path, targets=[stale], profiles=[lab.profile(name)])
    assert really["signalled"] == 0 and not really["changed"] and alive(reused)


def test_cap_and_bad_input_fail_before_any_signal(lab: Lab, tmp_path: Path) -> None:
    name = f"nmt{TAG}cap"
    pids = [lab.start(name)["pid"] for _ in range(2)]
    targets = [target(pid, name) for pid in pids]
    cases = [
        ({"max_targets": 1}, "would signal 2 processes, above max_targets=1; nothing was"),
        ({"max_targets": 0}, "max_targets must be >= 1, got 0"),
        ({"profiles": [{**lab.profile(name), "ladder": [{"signal": "SIGFOO"}]}]},
         "unknown signal 'SIGFOO'"),
        ({"profiles": [{"name": name, "match": {"user": "root"}}]},
         f"profiles[0] ({name}): match needs a name, exe or cmdline selector"),
        ({"profiles": []}, f"names profile '{name}', which is not declared"),
        ({"targets": []}, "targets and leftovers are empty"),
    ]  # fmt: skip
    for extra, message in cases:
        args = {"targets": targets, "profiles": [lab.profile(name)], **extra}
        result = run(tmp_path, **args)
        assert result.get("failed") and message in result["msg"], (extra, result)
    assert all(alive(pid) for pid in pids)


def test_tunnel_in_the_process_or_below_it_spares_it_unless_forced(
    lab: Lab, tmp_path: Path
) -> None:
    """Killing a GUI client takes down the gpservice below it: a tun there spares the parent."""
    if not os.path.exists(TUN):
        pytest.fail(f"no {TUN} here: load the tun driver or mknod -m 0666 {TUN} c 10 200")
    name = f"nmt{TAG}tun"
    tree = lab.start(name, children=[lab.child(f"nmt{TAG}svc", "--tun")])
    service = tree["children"][0]["pid"]
    result = run(tmp_path, check=True, targets=[target(tree["pid"], name)],
                 profiles=[lab.profile(name)])  # fmt: skip
    (spared,) = result["spared"]
    assert (spared["guard"], spared["detail"]) == ("tunnel", f"pid {service}: fd 3 is {TUN}")
    forced = run(tmp_path, check=True, force=True, targets=[target(tree["pid"], name)],
                 profiles=[lab.profile(name)])  # fmt: skip
    assert [t["pid"] for t in forced["targets"]] == [tree["pid"]]


def test_tunnel_unknown_when_the_fds_cannot_be_read(lab: Lab) -> None:
    """As nobody, a root process's /proc/PID/fd is unreadable: it might hold the tunnel."""
    pid = lab.start(f"nmt{TAG}unk")["pid"]

    def guard() -> Any:
        table = proctable.scan("/proc")
        return reap.Guards(table, [], force=False, own_pid=os.getpid()).tunnel(pid)

    assert as_nobody(guard) == ["tunnel-unknown", f"PermissionError: /proc/{pid}/fd; cannot rule "
                                f"out an open {TUN}"]  # fmt: skip


def test_fixed_guards_hold_even_when_forced(lab: Lab) -> None:
    """PID 1, kernel threads, own ancestry, sshd and protected names are never planned."""
    sshd = lab.start("sshd")["pid"]
    keeper = lab.start(f"nmt{TAG}kpr")["pid"]
    kthreads = [pid for pid, stat in proctable.scan("/proc").items() if stat.kernel_thread][:3]
    assert kthreads, "no kernel threads visible: run the suite in the host's PID namespace"
    pids = [1, os.getpid(), sshd, keeper, *kthreads]
    profile = build_profile({"name": "any", "match": {"name": ".*"}})
    table = proctable.scan("/proc")
    guards = reap.Guards(table, [f"nmt{TAG}kpr"], force=True, own_pid=os.getpid())
    planned = reap.plan([target(pid, "any") for pid in pids], {"any": profile}, guards)
    assert planned["targets"] == []
    assert {e["pid"]: e["guard"] for e in planned["spared"]} == {
        1: "pid1", os.getpid(): "own-ancestry", sshd: "sshd", keeper: "protected-name",
        **dict.fromkeys(kthreads, "kernel-thread"),
    }  # fmt: skip


# ---------------------------------------------------------------- one judgement


def test_the_agent_and_the_module_judge_the_same_processes(lab: Lab, tmp_path: Path) -> None:
    """Issue 18 item 7: a client lingers while a GUI of another session runs.

    The agent's finding names the lone client (no GUI in its tree) and not the healthy
    one (its GUI is its grandchild); the module signals exactly what the finding names,
    so the fix verifies: the finding is gone and the healthy tree lives.
    """
    client, gui = f"nmt{TAG}gpc", f"nmt{TAG}gui"
    healthy = lab.start(client, children=[lab.child(f"nmt{TAG}gps", children=[lab.child(gui)])])
    lone = lab.start(client)["pid"]
    elsewhere = lab.start(gui)["pid"]  # a GUI of another session
    config = {"processes": [lab.profile(client, gui=[gui])]}
    found = api.check(Context(config=config), "lingering-client-processes", subject=client)
    assert found.state == "present", found.to_dict()
    (finding,) = found.findings
    vars_ = finding.role_vars
    assert [t["pid"] for t in vars_["process_reaper_targets"]] == [lone]
    assert vars_["process_reaper_profiles"] == config["processes"]
    result = run(tmp_path, targets=vars_["process_reaper_targets"],
                 profiles=vars_["process_reaper_profiles"])  # fmt: skip
    assert result["reaped"] == [lone], result
    after = api.check(Context(config=config), "lingering-client-processes", subject=client)
    assert after.state == "absent", after.to_dict()
    assert alive(healthy["pid"]) and alive(elsewhere)


def test_the_example_declaration_plans_through_the_module(lab: Lab, tmp_path: Path) -> None:
    """inventories/example's GlobalProtect declaration: every profile is valid for the agent
    and the module, and a GUI client gets gpclient's ladder (SIGINT first) in check mode."""
    declared = yaml.safe_load(EXAMPLE.read_text())["vpn_laptops_globalprotect"]
    assert [build_profile(raw).error for raw in declared] == [None] * len(declared)
    by_name = {raw["name"]: raw for raw in declared}
    assert set(by_name) == {"gpclient-gui", "gpservice", "gpclient", "gpauth", "gpgui-helper"}
    gui_client = build_profile(by_name["gpclient-gui"])
    cli_client = build_profile(by_name["gpclient"])
    launch = ["/usr/bin/gpclient", "launch-gui"]
    assert gui_client.match_cmdline and gui_client.match_cmdline.search(" ".join(launch))
    assert cli_client.match_cmdline and not cli_client.match_cmdline.search(" ".join(launch))
    assert cli_client.match_cmdline.search("/usr/bin/gpclient connect vpn.example.com")
    pid = lab.start(f"nmt{TAG}exa")["pid"]
    result = run(tmp_path, check=True, targets=[target(pid, "gpclient-gui")], profiles=declared)
    assert [t["signals"] for t in result["targets"]] == [["SIGINT", "SIGTERM", "SIGKILL"]]
    assert not result["changed"] or result["check_mode"]
    assert alive(pid)


# ---------------------------------------------------------------- leftovers


def test_restore_puts_back_only_what_a_dead_clients_files_prove(tmp_path: Path) -> None:
    dead = int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    state = tmp_path / "vpnc"
    state.mkdir()
    resolv = tmp_path / "resolv.conf"
    original = "nameserver 192.0.2.53\nsearch lab.example\n"
    (state / f"resolv.conf-backup.{dead}").write_text(original)
    (state / f"resolv.conf-backup.{os.getpid()}").write_text(original)  # a live client's
    resolv.write_text(f"{vpnc.MARKER} -- this file is generated by vpnc\nnameserver 203.0.113.53\n")
    leftovers = [
        {"pid": dead, "state_dir": str(state), "resolv_conf": str(resolv)},
        {"pid": os.getpid(), "state_dir": str(state), "resolv_conf": str(resolv)},
    ]
    planned = run(tmp_path, check=True, leftovers=leftovers)
    assert [(e["pid"], e["restored"]) for e in planned["leftovers"]] == [
        (dead, ["resolv_conf"]), (os.getpid(), [])
    ]  # fmt: skip
    assert resolv.read_text().startswith(vpnc.MARKER)
    result = run(tmp_path, leftovers=leftovers)
    assert result["changed"] and resolv.read_text() == original
    skipped = result["leftovers"][1]["skipped"]
    assert skipped == f"PID {os.getpid()} is running: its client owns these files"
    assert sorted(p.name for p in state.iterdir()) == [f"resolv.conf-backup.{os.getpid()}"]
    again = run(tmp_path, leftovers=leftovers)
    assert not again["changed"]


def test_leftovers_facts_name_what_can_be_restored(tmp_path: Path) -> None:
    table = {4300: proctable.ProcStat("gpservice", "S", 1, 0, 100)}
    state = tmp_path / "vpnc"
    state.mkdir()
    for pid in (4300, 4301):
        (state / f"resolv.conf-backup.{pid}").write_text("nameserver 192.0.2.53\n")
        (state / f"defaultroute.{pid}").write_text("default\nvia\n192.0.2.1\ndev\nlab0\n")
    routes = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
    found = vpnc.scan(str(state), table, vpnc.MARKER + " x\n", routes)
    assert [(e["pid"], e["pid_alive"], e["restorable"]) for e in found] == [
        (4300, True, []), (4301, False, ["resolv_conf", "default_route"])
    ]  # fmt: skip
    assert found[1]["saved_default_route"] == "default via 192.0.2.1 dev lab0"
    with_default = routes + "lab0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"
    (_, kept) = vpnc.scan(str(state), table, "nameserver 192.0.2.53\n", with_default)
    assert kept["restorable"] == [] and kept["default_route_present"] is True
