"""Processes family with real processes: a renamed child, a zombie, a tun holder, an orphan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from conftest import FIXTURES

from netmedic.collectors import processes
from netmedic.context import Context
from netmedic.procs import profiles, table, vpnc

AGENT = str(Path(processes.__file__).resolve().parents[2])

# Sets its own comm (PR_SET_NAME) so the profile matches by name, like a copied binary.
_NAMED_CHILD = """
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
if sys.argv[2] == "tun":
    fd = os.open("/dev/net/tun", os.O_RDWR)
print("ready", flush=True)
time.sleep(60)
"""


def _spawn(name: str, mode: str = "plain") -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _NAMED_CHILD, name, mode], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


@pytest.fixture
def children() -> Iterator[List[subprocess.Popen[str]]]:
    spawned: List[subprocess.Popen[str]] = []
    yield spawned
    for child in spawned:
        child.kill()
        child.wait()


def _profile(**match: Any) -> Dict[str, Any]:
    return {"name": "gp", "match": match, "gui": ["nmgui-test"]}


def _collect(*profiles: Dict[str, Any], run_root: Path = Path("/run")) -> List[Dict[str, Any]]:
    result: List[Dict[str, Any]] = processes.collect(
        Context(run_root=run_root, config={"processes": list(profiles)})
    )["profiles"]
    return result


def test_matches_a_named_child_with_identity(children: List[subprocess.Popen[str]]) -> None:
    children.append(_spawn("nmtest-gpclnt"))
    (profile,) = _collect(_profile(name="nmtest-gpclnt", user="root"))
    assert profile["error"] is None
    assert profile["gui_running"] is False
    (proc,) = profile["processes"]
    assert proc["pid"] == children[0].pid
    assert proc["ppid"] == os.getpid()
    assert proc["name"] == "nmtest-gpclnt"
    assert proc["user"] == "root"
    assert proc["cmdline"][0] == sys.executable
    assert proc["zombie"] is False
    assert proc["reparented"] is False
    assert proc["orphaned"] is False  # its parent (this test) lives
    assert proc["gui_pids"] == []  # no GUI in its tree
    assert proc["lingering"] is False  # it waits on nothing, but its parent lives: not orphaned
    assert proc["tun_open"] is False
    assert isinstance(proc["start_time"], float)


def test_a_gui_elsewhere_is_running_but_not_in_the_tree(
    children: List[subprocess.Popen[str]],
) -> None:
    children.extend([_spawn("nmtest-gpclnt"), _spawn("nmgui-test")])
    (profile,) = _collect(_profile(name="nmtest-gpclnt"))
    assert profile["gui_running"] is True
    assert profile["processes"][0]["gui_pids"] == []  # a sibling, not its ancestor or child


def test_user_criterion_filters(children: List[subprocess.Popen[str]]) -> None:
    children.append(_spawn("nmtest-gpclnt"))
    (profile,) = _collect(_profile(name="nmtest-gpclnt", user="nobody"))
    assert profile["processes"] == []


def test_zombie(children: List[subprocess.Popen[str]]) -> None:
    child = _spawn("nmtest-zombie")
    children.append(child)
    os.kill(child.pid, 9)
    for _ in range(100):  # until the kernel shows it as Z (we have not reaped it)
        if Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.01)
    (profile,) = _collect(_profile(name="nmtest-zombie"))
    (proc,) = profile["processes"]
    assert proc["zombie"] is True
    assert proc["state"] == "Z"


def test_tun_holder(children: List[subprocess.Popen[str]]) -> None:
    assert os.path.exists("/dev/net/tun"), "no /dev/net/tun here: modprobe tun"
    children.extend([_spawn("nmtest-gpsvc", "tun"), _spawn("nmtest-gpsvc")])
    (profile,) = _collect(_profile(name="nmtest-gpsvc"))
    by_pid = {p["pid"]: p["tun_open"] for p in profile["processes"]}
    assert by_pid == {children[0].pid: True, children[1].pid: False}


def test_tun_unknown_when_fd_links_cannot_be_read(children: List[subprocess.Popen[str]]) -> None:
    """Root without CAP_SYS_PTRACE lists a root process's fds but reads none of them:
    a tunnel holder must come out unknown (never ``False``, which lets it be reaped)."""
    assert os.path.exists("/dev/net/tun"), "no /dev/net/tun here: modprobe tun"
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed for this test"
    children.append(_spawn("nmtest-gptun", "tun"))
    code = (
        "import json, sys; from netmedic.procs import table; "
        "print(json.dumps(table.tun_fds('/proc', int(sys.argv[1]))))"
    )
    out = subprocess.run(
        ["setpriv", "--bounding-set=-sys_ptrace", "--", sys.executable, "-c", code,
         str(children[0].pid)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": AGENT},
    )  # fmt: skip
    state, error = json.loads(out.stdout)
    assert state is None
    assert error.startswith(f"PermissionError: /proc/{children[0].pid}/fd/")


def test_reparented_orphan(tmp_path: Path) -> None:
    fake = tmp_path / "nmtest-orphan"
    shutil.copy("/bin/sleep", fake)  # a copied binary gives the right process name
    pid_file = tmp_path / "pid"
    subprocess.run(["sh", "-c", f'"{fake}" 60 & echo $! > "{pid_file}"'], check=True)
    pid = int(pid_file.read_text())
    try:
        # The backgrounded child may still be the forked sh, not yet exec'd (a busy host).
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{pid}/exe") != str(fake) and time.monotonic() < deadline:
            time.sleep(0.01)
        (profile,) = _collect(
            {"name": "o", "match": {"name": "nmtest-orphan", "exe": "nmtest-orphan$"}}
        )
        (proc,) = profile["processes"]
        assert proc["pid"] == pid
        assert proc["exe"] == str(fake)
        parent_comm = Path(f"/proc/{proc['ppid']}/comm").read_text().strip()
        assert proc["reparented"] is (proc["ppid"] == 1 or parent_comm == "systemd")
        assert proc["orphaned"] is proc["reparented"]
        assert proc["lingering"] is proc["orphaned"]  # no gui declared: orphaned is lingering
    finally:
        os.kill(pid, 9)


def test_cmdline_regex_and_long_names(children: List[subprocess.Popen[str]]) -> None:
    children.append(_spawn("nmtest-a-very-long-name"))  # comm is cut at 15 chars
    (by_cmdline,) = _collect({"name": "c", "match": {"cmdline": "nmtest-a-very-long-name plain"}})
    assert [p["pid"] for p in by_cmdline["processes"]] == [children[0].pid]
    assert by_cmdline["processes"][0]["name"] == "nmtest-a-very-l"


def test_lock_files_from_fixture_run_root() -> None:
    profile = {
        "name": "gp",
        "match": {"name": "nmtest-none"},
        "lock_files": [
            "/var/run/gpclient.lock",
            "/run/gpservice.lock",
            "/run/bad.lock",
            "/run/absent.lock",
        ],
    }
    (facts,) = _collect(profile, run_root=FIXTURES / "processes" / "run")
    assert facts["lock_files"] == [
        {
            "path": "/var/run/gpclient.lock",
            "exists": True,
            "pid": 4194303,
            "port": None,
            "pid_alive": False,
            "error": None,
        },
        {
            "path": "/run/gpservice.lock",
            "exists": True,
            "pid": 4194302,
            "port": 4123,
            "pid_alive": False,
            "error": None,
        },
        {
            "path": "/run/bad.lock",
            "exists": True,
            "pid": None,
            "port": None,
            "pid_alive": None,
            "error": "no pid in 'garbage'",
        },
        {
            "path": "/run/absent.lock",
            "exists": False,
            "pid": None,
            "port": None,
            "pid_alive": None,
            "error": None,
        },
    ]


def test_live_lock_pid(tmp_path: Path) -> None:
    (tmp_path / "me.lock").write_text(f"{os.getpid()}\n")
    (facts,) = _collect(
        {"name": "x", "match": {"name": "nmtest-none"}, "lock_files": ["/run/me.lock"]},
        run_root=tmp_path,
    )
    assert facts["lock_files"][0]["pid_alive"] is True


def test_bad_profiles_are_reported_not_raised() -> None:
    bad_regex, no_match = _collect({"name": "r", "match": {"name": "("}}, {"name": "m"})
    assert bad_regex["error"].startswith("match.name: invalid regex '('")
    assert no_match["error"] == "match must be a non-empty mapping"


def test_no_profiles_no_proc_pass(tmp_path: Path) -> None:
    assert processes.collect(Context(proc_root=tmp_path / "absent")) == {"profiles": []}


def test_parse_stat_with_parens_in_comm() -> None:
    text = "42 (gp (x) y) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0"
    assert table.parse_stat(text) == table.ProcStat("gp (x) y", "S", 1, 4194560, 4242)


def test_a_vanished_process_holds_no_tun(tmp_path: Path) -> None:
    assert table.tun_fds(str(tmp_path), 12345) == ([], None)


def test_unreadable_fd_dir(tmp_path: Path) -> None:
    (tmp_path / "12345").mkdir()
    (tmp_path / "12345" / "fd").write_text("not a directory")
    state, error = table.tun_fds(str(tmp_path), 12345)
    assert state is None and error == f"NotADirectoryError: {tmp_path}/12345/fd"


def _stat(comm: str, ppid: int, state: str = "S", start: int = 10000) -> table.ProcStat:
    return table.ProcStat(comm=comm, state=state, ppid=ppid, flags=0, start_ticks=start)


# GlobalProtect 2.x as users run it (research-19 §2a), one process table:
#   100 gpclient launch-gui (the user's, parent gone) → 101 gpservice → 102 gpgui: healthy
#   103 gpclient, a child of the live gpgui 102: healthy
#   200 gpclient launch-gui (parent gone), its gpservice killed: lingers, although
#   300 gpgui (another session) runs
#   400 gpclient launch-gui (parent gone) waiting on 401 pkexec: not yet
#   500 gpclient launch-gui, started 10 s ago: too young
#   600 gpservice, parent 700 (a live gpclient): not orphaned
#   800 gpclient connect (CLI, no gui declared), parent gone: lingers; 801 under bash 900: not
#   950 zombie gpclient (parent gone): never
TABLE = {
    1: _stat("systemd", 0),
    100: _stat("gpclient", 1), 101: _stat("gpservice", 100), 102: _stat("gpgui", 101),
    103: _stat("gpclient", 102),
    200: _stat("gpclient", 1), 300: _stat("gpgui", 1),
    400: _stat("gpclient", 1), 401: _stat("pkexec", 400),
    500: _stat("gpclient", 1, start=99000),
    600: _stat("gpservice", 700), 700: _stat("gpclient", 900), 900: _stat("bash", 1),
    800: _stat("gpclient", 1), 801: _stat("gpclient", 900),
    950: _stat("gpclient", 1, state="Z"),
}  # fmt: skip
NOW = 1000.0  # seconds since boot; start 10000 ticks = 100 s → age 900


@pytest.mark.parametrize(
    ("pid", "gui", "lingering", "gui_pids"),
    [
        (100, True, False, [102]),
        (101, True, False, [102]),
        (103, True, False, [102]),
        (200, True, True, []),
        (400, True, False, []),
        (500, True, False, []),
        (600, True, False, []),
        (800, False, True, None),
        (801, False, False, None),
        (950, True, False, []),
    ],
)
def test_one_judgement_of_lingering(pid: int, gui: bool, lingering: bool, gui_pids: Any) -> None:
    profile = profiles.build_profile(
        {"name": "gp", "match": {"name": "gp.*"}, "gui": ["gpgui"] if gui else [], "min_age": 60}
    )
    verdict = profiles.judge(
        profile, pid, unit="session-3.scope", table=TABLE, children=table.children_of(TABLE),
        now=NOW,
    )  # fmt: skip
    assert (verdict.lingering, verdict.gui_pids) == (lingering, gui_pids)


def test_a_service_process_is_never_orphaned() -> None:
    assert profiles.orphaned(TABLE[800], TABLE, "gpclient.service") is False
    assert profiles.orphaned(TABLE[800], TABLE, "app-gpclient-1.scope") is True


def test_vpnc_leftovers_from_a_fixture_host(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "resolv.conf").write_text(f"{vpnc.MARKER} -- x\nnameserver 203.0.113.53\n")
    (tmp_path / "run" / "vpnc").mkdir(parents=True)
    (tmp_path / "run" / "vpnc" / "resolv.conf-backup.4194300").write_text("nameserver 192.0.2.53\n")
    (tmp_path / "run" / "vpnc" / "defaultroute.4194300").write_text("default\nvia\n192.0.2.1\n")
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text("Iface\tDestination\tGateway\n")
    ctx = Context(proc_root=tmp_path / "proc", etc_root=tmp_path / "etc", run_root=tmp_path / "run")
    raw = [{"name": name, "vpnc_state_dir": "/var/run/vpnc"} for name in ("a", "b")]  # one dir
    assert vpnc.collect(ctx, raw, {}) == [
        {
            "pid": 4194300,
            "state_dir": "/var/run/vpnc",
            "resolv_conf_backup": "/var/run/vpnc/resolv.conf-backup.4194300",
            "defaultroute": "/var/run/vpnc/defaultroute.4194300",
            "pid_alive": False,
            "saved_default_route": "default via 192.0.2.1",
            "resolv_conf": "/etc/resolv.conf",
            "resolv_conf_generated": True,
            "default_route_present": False,
            "restorable": ["resolv_conf", "default_route"],
        }
    ]
