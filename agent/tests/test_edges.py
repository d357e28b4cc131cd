"""Clean edges: a process whose exe, name and arguments are not UTF-8 reads one way in every
field and every reader; a reader that closes the agent's output early gets no traceback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from netmedic import output, owners
from netmedic.collectors import ports
from netmedic.context import Context
from netmedic.procs import table

AGENT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"


@pytest.fixture
def odd_process(tmp_path: Path) -> Iterator[Tuple[subprocess.Popen[bytes], str, int]]:
    """``sleep`` copied to a path whose name is not UTF-8 (so are its comm and argv[0]), the
    only holder of a listening socket: (process, its exe as the agent writes it, port)."""
    exe = os.fsencode(tmp_path) + b"/sl\xffeep"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        child = subprocess.Popen([exe, b"30"], pass_fds=[sock.fileno()])
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{child.pid}/cmdline").read_bytes().startswith(exe):  # exec done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield child, f"{tmp_path}/sl\\xffeep", port
    child.kill()
    child.wait()


def test_bytes_that_are_not_utf8_read_as_backslash_escapes_everywhere(
    odd_process: Tuple[subprocess.Popen[bytes], str, int],
) -> None:
    child, exe, port = odd_process
    identity = owners.process_identity(Context(), child.pid)
    assert identity is not None
    assert (identity["name"], identity["exe"], identity["cmdline"]) == (
        "sl\\xffeep", exe, [exe, "30"],
    )  # fmt: skip
    assert owners.owner_identity(Context(), child.pid) == {
        "pid": child.pid, "name": "sl\\xffeep", "exe": exe, "user": identity["user"],
        "unit": identity["unit"], "container_id": identity["container_id"],
    }  # fmt: skip
    # The process layer (netmedic.procs, the reaper's too) reads them the same way.
    stat = table.read_stat("/proc", child.pid)
    assert stat is not None and stat.comm == "sl\\xffeep"
    assert table.read_exe("/proc", child.pid) == exe
    assert table.read_cmdline("/proc", child.pid) == [exe, "30"]
    # The socket it holds names it so, and the document is UTF-8 JSON without surrogates.
    (entry,) = [s for s in ports.collect(Context())["sockets"] if s["port"] == port]
    assert entry["owner"]["exe"] == exe
    text = output.compact_json({"ports": {"sockets": [entry]}})
    assert json.loads(text.encode("utf-8").decode("utf-8"))["ports"]["sockets"][0] == entry


def closed_early(args: List[str], entry: str) -> Tuple[int, bytes]:
    """Run the agent with its output's reader gone before it writes: (exit code, stderr)."""
    code = {"python -m": ["-m", "netmedic"],
            "wrapper": ["-S", "-c", "from netmedic.cli import run; run()"]}[entry]  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, *code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(AGENT), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # like `| head -c 10` that has read its ten bytes
    err = child.stderr.read()
    return child.wait(timeout=60), err


@pytest.mark.parametrize("entry", ["python -m", "wrapper"])
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["facts", "--only", "ports"], 0),
        (["facts", "--only", "ports", "--format", "yaml"], 0),
        (["diagnose", "--facts", str(FIXTURES / "incidents.json"), "--config",
          str(FIXTURES / "config.yml")], 2),  # the usual exit code: CRITICAL
        (["check", "declared-port-held-by-other", "--facts", str(FIXTURES / "incidents.json"),
          "--config", str(FIXTURES / "config.yml")], 1),
    ],
)  # fmt: skip
def test_a_closed_output_ends_quietly_with_the_usual_code(
    args: List[str], code: int, entry: str
) -> None:
    assert closed_early(args, entry) == (code, b"")
