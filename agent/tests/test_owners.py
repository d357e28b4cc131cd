"""owners.py, procfs.py: /proc text parsing, the fixture tree, real processes, denied reads."""

from __future__ import annotations

import doctest
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import as_nobody
from hypothesis import given
from hypothesis import strategies as st

from netmedic import fdtables, owners, procfs
from netmedic.context import Context

FIXTURES = Path(__file__).parent / "fixtures" / "ports"
CID = "4f3c2b1a" * 8


def fixture_ctx(root: Path = FIXTURES) -> Context:
    return Context(proc_root=root / "proc", etc_root=root / "etc")


@pytest.fixture
def shared_copy() -> Iterator[Path]:
    """A copy of the fixture tree that nobody may traverse, with 900/fd unreadable."""
    root = Path(tempfile.mkdtemp(prefix="netmedic-ports-"))
    try:
        os.chmod(root, 0o755)
        shutil.copytree(FIXTURES, root / "tree", symlinks=True)
        os.chmod(root / "tree" / "proc" / "900" / "fd", 0o000)
        os.chmod(root / "tree" / "proc" / "813" / "cmdline", 0o000)
        yield root / "tree"
    finally:
        os.chmod(root / "tree" / "proc" / "900" / "fd", 0o755)
        shutil.rmtree(root)


# --- unit_of_cgroup -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0::/system.slice/gmediarender.service\n", ("gmediarender.service", None)),
        (f"0::/docker/{CID}/system.slice/foo.service\n", ("foo.service", CID)),
        (f"0::/system.slice/docker-{CID}.scope\n", (f"docker-{CID}.scope", CID)),
        (f"0::/machine.slice/libpod-{CID}.scope/container\n", (f"libpod-{CID}.scope", CID)),
        (f"0::/machine.slice/libpod-conmon-{CID}.scope\n", (f"libpod-conmon-{CID}.scope", None)),
        (
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
            f"cri-containerd-{CID}.scope\n",
            (f"cri-containerd-{CID}.scope", CID),
        ),
        (f"0::/kubepods/burstable/pod1/{CID}\n", (None, CID)),
        (
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
            "app-org.gnome.Terminal.slice/vte-spawn-1.scope\n",
            ("vte-spawn-1.scope", None),
        ),
        (
            "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
            ("user@1000.service", None),
        ),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", ("session-3.scope", None)),
        ("0::/system.slice/foo.service/payload/worker\n", ("foo.service", None)),
        ("0::/init.scope\n", ("init.scope", None)),
        # cgroup v1: only the name=systemd line names the unit
        (
            "12:pids:/system.slice/ssh.service\n4:memory:/system.slice/ssh.service\n"
            "1:name=systemd:/system.slice/ssh.service\n",
            ("ssh.service", None),
        ),
        (f"9:memory:/docker/{CID}\n1:name=systemd:/docker/{CID}\n", (None, CID)),
        # hybrid: the unified line wins, the v1 one is the fallback
        (
            "1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n",
            ("b.service", None),
        ),
        ("1:name=systemd:/system.slice/a.service\n0::/\n", ("a.service", None)),
        ("0::/\n", (None, None)),
        ("", (None, None)),
        ("garbage\n1:cpu\n::\nx::/a.service\n0::relative.service\n", (None, None)),
        (
            "9:name=systemd:/\n4:memory:/process_api/c5e084ccc4f25f436806debd41136b83\n0::/\n",
            (None, None),
        ),
    ],
)
def test_unit_of_cgroup(text: str, expected: tuple) -> None:
    assert procfs.unit_of_cgroup(text) == expected


_COMPONENT = st.text(alphabet="abcdefgh-_.@0123456789", min_size=1, max_size=12)


@given(st.text(max_size=300))
def test_unit_of_cgroup_total(text: str) -> None:
    unit, container = procfs.unit_of_cgroup(text)
    assert unit is None or unit.endswith((".service", ".scope"))
    assert container is None or len(container) == 64


@given(
    st.lists(_COMPONENT.filter(lambda c: not c.endswith((".service", ".scope"))), max_size=4),
    _COMPONENT,
    st.lists(_COMPONENT.filter(lambda c: not c.endswith((".service", ".scope"))), max_size=3),
    st.sampled_from([".service", ".scope"]),
)
def test_unit_is_innermost_unit_component(outer: list, name: str, inner: list, suffix: str) -> None:
    unit = f"x{name}{suffix}"
    path = "/".join(["", *outer, unit, *inner])
    assert procfs.unit_of_cgroup(f"0::{path}\n")[0] == unit


# --- small parsers --------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="\n\x00"), max_size=15))
def test_parse_stat_any_comm(comm: str) -> None:
    line = f"812 ({comm}) S 1 812 812 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 1 2 3\n"
    assert procfs.parse_stat(line) == (comm, 1, 4242)


def test_parse_stat_malformed() -> None:
    with pytest.raises(ValueError):
        procfs.parse_stat("812 no parens")


def test_procfs_docstring_examples() -> None:
    failed, tried = doctest.testmod(procfs)
    assert tried and not failed


def test_scan_matches_whole_socket_links_only(tmp_path: Path) -> None:
    fd_dir = tmp_path / "proc" / "700" / "fd"
    fd_dir.mkdir(parents=True)
    links = {"3": "socket:[81234]", "4": "socket:[812340]", "5": "pipe:[81234]",
             "6": "socket:[8123]", "7": "/dev/null"}  # fmt: skip
    for fd, target in links.items():
        (fd_dir / fd).symlink_to(target)
    scan = fdtables.scan_socket_holders(Context(proc_root=tmp_path / "proc"), [81234, 99])
    assert scan.holders == {81234: [(700, 3)]}
    assert (scan.denied, scan.processes) == ([], 1)


@pytest.mark.parametrize(
    ("raw", "name"),
    [(b"gmediarender\n", "gmediarender"), (b"gmr (worker) 2\n", "gmr (worker) 2"),
     (b"two\nlines\n", "two\nlines"), (b"\n", ""), (b"no-newline", "no-newline"),
     (b"caf\xc3\xa9\n", "caf\u00e9"), (b"\xff\n", "\\xff")],
)  # fmt: skip
def test_parse_comm(raw: bytes, name: str) -> None:
    assert procfs.parse_comm(raw) == name


def test_parse_cmdline() -> None:
    assert procfs.parse_cmdline(b"/usr/bin/gmediarender\x00-f\x00Living room\x00") == [
        "/usr/bin/gmediarender", "-f", "Living room"]  # fmt: skip
    assert procfs.parse_cmdline(b"") == []


# --- fixture tree ---------------------------------------------------------------


def test_scan_fixture_tree() -> None:
    scan = fdtables.scan_socket_holders(fixture_ctx(), [81234, 90000, 55555, 1])
    assert scan.holders == {81234: [(812, 3), (813, 5)], 55555: [(812, 6)], 90000: [(900, 7)]}
    assert scan.denied == []
    assert scan.processes == 4  # 812, 813, 900, 1000; 4242 vanished, sys/ and self/ are not pids


def test_identity_fixture_812() -> None:
    uid = (FIXTURES / "proc" / "812").stat().st_uid
    assert owners.process_identity(fixture_ctx(), 812) == {
        "pid": 812, "ppid": 1, "name": "gmediarender", "exe": "/usr/bin/gmediarender",
        "cmdline": ["/usr/bin/gmediarender", "-f", "Living room"],
        "user": "root" if uid == 0 else owners.user_name(fixture_ctx(), uid), "uid": uid,
        "unit": "gmediarender.service", "container_id": None, "netns": "net:[4026531840]",
        "start_time": 4242.0, "denied": [],
    }  # fmt: skip


def test_identity_fixture_missing_and_malformed() -> None:
    worker = owners.process_identity(fixture_ctx(), 813)
    assert worker is not None
    assert (worker["name"], worker["ppid"], worker["exe"], worker["netns"]) == (
        "gmr (worker) 2", 812, None, None)  # fmt: skip
    assert (worker["cmdline"], worker["unit"], worker["denied"]) == ([], "gmediarender.service", [])
    app = owners.process_identity(fixture_ctx(), 1000)
    assert app is not None
    assert (app["name"], app["ppid"], app["start_time"]) == (None, None, None)
    assert app["unit"] == "pipewire.service"
    nginx = owners.process_identity(fixture_ctx(), 900)
    assert nginx is not None
    assert (nginx["unit"], nginx["container_id"]) == (f"docker-{CID}.scope", CID)


def test_identity_without_lineage_names_from_comm() -> None:
    full = owners.process_identity(fixture_ctx(), 813)
    light = owners.process_identity(fixture_ctx(), 813, netns=False, lineage=False)
    assert full is not None and light is not None
    assert (light["name"], light["ppid"], light["start_time"]) == ("gmr (worker) 2", None, None)
    assert {k: v for k, v in light.items() if k not in ("ppid", "start_time")} == {
        k: v for k, v in full.items() if k not in ("ppid", "start_time")
    }
    # a malformed stat does not hide the name comm gives
    app = owners.process_identity(fixture_ctx(), 1000, lineage=False)
    assert app is not None and app["name"] == "pipewire"
    assert owners.process_identity(fixture_ctx(), 4242, lineage=False) is None


OWNER_KEYS = ("pid", "name", "exe", "user", "unit", "container_id")


def owner_part(identity: Any) -> Any:
    """The fields of a process identity a port owner has, in an owner's order."""
    return None if identity is None else {key: identity[key] for key in OWNER_KEYS}


@pytest.mark.parametrize("pid", [812, 813, 900, 1000, 4242, 5])
def test_owner_identity_is_the_identity_s_owner_fields(pid: int) -> None:
    """One way to read them: 813 lacks exe and ns, 1000's stat is malformed, 4242 vanished."""
    ctx = fixture_ctx()
    light = owners.process_identity(ctx, pid, netns=False, lineage=False, cmdline=False)
    owner = owners.owner_identity(ctx, pid)
    assert owner == owner_part(light)
    assert owner is None or tuple(owner) == OWNER_KEYS


def test_owner_identity_of_real_denied_and_vanished_processes(holder: subprocess.Popen) -> None:
    def work() -> Any:
        return {
            "owner": owners.owner_identity(Context(), holder.pid),
            "identity": owners.process_identity(Context(), holder.pid, lineage=False),
            "root": owners.owner_identity(Context(), 1),
        }

    assert owners.owner_identity(Context(), holder.pid) == owner_part(
        owners.process_identity(Context(), holder.pid)
    )
    unprivileged = as_nobody(work)
    assert unprivileged["owner"] == owner_part(unprivileged["identity"])
    assert unprivileged["owner"]["exe"] is None  # denied: None, and still the owner
    assert unprivileged["root"]["pid"] == 1
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert owners.owner_identity(Context(), proc.pid) is None


def test_identity_vanished_is_none() -> None:
    assert owners.process_identity(fixture_ctx(), 4242) is None  # dir listed, files gone
    assert owners.process_identity(fixture_ctx(), 5) is None  # never existed


def test_denied_fd_dir_and_file(shared_copy: Path) -> None:
    ctx = fixture_ctx(shared_copy)

    def work() -> Any:
        scan = fdtables.scan_socket_holders(ctx, [81234, 90000])
        return {
            "holders": {str(k): v for k, v in scan.holders.items()},
            "denied": scan.denied,
            "worker": owners.process_identity(ctx, 813),
            "owner": owners.process_identity(ctx, 813, cmdline=False),
        }

    result = as_nobody(work)
    assert result["holders"] == {"81234": [[812, 3], [813, 5]]}
    assert result["denied"] == [900]
    assert result["worker"]["cmdline"] is None
    assert result["worker"]["denied"] == ["cmdline"]
    assert result["worker"]["name"] == "gmr (worker) 2"  # the rest is still read
    # cmdline=False does not read the file: nothing to deny, the rest alike
    assert result["owner"]["denied"] == []
    assert {k: v for k, v in result["owner"].items() if k != "denied"} == {
        k: v for k, v in result["worker"].items() if k != "denied"
    }


def test_denied_names_the_fields_in_the_order_they_are_read(shared_copy: Path) -> None:
    """stat, the uid, exe, cmdline, cgroup, ns: cmdline before unit, as it always was."""
    for name in ("cgroup", "stat"):
        os.chmod(shared_copy / "proc" / "813" / name, 0o000)
    ctx = fixture_ctx(shared_copy)
    identity = as_nobody(lambda: owners.process_identity(ctx, 813))
    assert identity["denied"] == ["name", "ppid", "start_time", "cmdline", "unit", "container_id"]
    owner = as_nobody(lambda: owners.owner_identity(ctx, 813))
    assert (owner["name"], owner["unit"]) == ("gmr (worker) 2", None)  # comm still readable


def test_denied_fd_links_in_a_listable_fd_dir(shared_copy: Path) -> None:
    # r-- without x: the fd names list, their links do not read (EACCES), as for a
    # root without CAP_SYS_PTRACE; the process is denied, not taken for gone.
    os.chmod(shared_copy / "proc" / "900" / "fd", 0o444)
    ctx = fixture_ctx(shared_copy)

    def work() -> Any:
        scan = fdtables.scan_socket_holders(ctx, [81234, 90000])
        return {"holders": {str(k): v for k, v in scan.holders.items()}, "denied": scan.denied}

    assert as_nobody(work) == {"holders": {"81234": [[812, 3], [813, 5]]}, "denied": [900]}


def test_user_name_from_injected_passwd() -> None:
    assert owners.user_name(fixture_ctx(), 115) == "gmr"
    assert owners.user_name(fixture_ctx(), 4711) is None


# --- real processes -------------------------------------------------------------

HOLDER = (
    "import socket, sys\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
)


@pytest.fixture
def holder() -> Iterator[subprocess.Popen]:
    """A real child process holding a TCP listener until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.port = int(proc.stdout.readline())  # type: ignore[attr-defined]
    yield proc
    proc.communicate("")


def test_identity_of_a_real_process(holder: subprocess.Popen) -> None:
    identity = owners.process_identity(Context(), holder.pid)
    assert identity is not None
    cgroup = Path(f"/proc/{holder.pid}/cgroup").read_text()
    assert (identity["unit"], identity["container_id"]) == procfs.unit_of_cgroup(cgroup)
    assert identity["exe"] == os.path.realpath(sys.executable)
    assert identity["cmdline"] == [sys.executable, "-c", HOLDER]
    assert (identity["ppid"], identity["uid"], identity["user"]) == (os.getpid(), 0, "root")
    assert identity["netns"] == os.readlink("/proc/self/ns/net")
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert identity["start_time"] is not None
    assert 0 <= uptime - identity["start_time"] < 60
    assert identity["denied"] == []


def test_comm_and_stat_name_a_real_process_alike(holder: subprocess.Popen) -> None:
    light = owners.process_identity(Context(), holder.pid, lineage=False)
    full = owners.process_identity(Context(), holder.pid)
    assert light is not None and full is not None
    assert light["name"] == full["name"] and light["name"]


def test_scan_finds_a_real_socket(holder: subprocess.Popen) -> None:
    link = next(
        os.readlink(f"/proc/{holder.pid}/fd/{fd}")
        for fd in os.listdir(f"/proc/{holder.pid}/fd")
        if os.readlink(f"/proc/{holder.pid}/fd/{fd}").startswith("socket:")
    )
    inode = int(link[len("socket:[") : -1])
    scan = fdtables.scan_socket_holders(Context(), [inode])
    assert [pid for pid, _fd in scan.holders[inode]] == [holder.pid]


def test_real_denied_for_unprivileged_reader(holder: subprocess.Popen) -> None:
    def work() -> Any:
        scan = fdtables.scan_socket_holders(Context(), [])
        return {"denied": scan.denied, "identity": owners.process_identity(Context(), holder.pid)}

    result = as_nobody(work)
    assert holder.pid in result["denied"]
    identity = result["identity"]
    assert identity["name"] == "python3" or identity["name"].startswith("python")
    assert {"exe", "netns"} <= set(identity["denied"])
    assert identity["exe"] is None


def test_vanished_real_process_is_none() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert owners.process_identity(Context(), proc.pid) is None


def test_scan_finds_our_own_socket_and_its_fd() -> None:
    with socket.socket() as sock:
        inode = os.fstat(sock.fileno()).st_ino
        scan = fdtables.scan_socket_holders(Context(), [inode])
        assert (os.getpid(), sock.fileno()) in scan.holders[inode]
