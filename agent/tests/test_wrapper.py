"""The agent run the way roles/netmedic_agent's wrapper runs it: ``python3 -B -S -c ...``.

Without site.py, psutil and PyYAML are not on ``sys.path`` until the agent adds
the site directories (netmedic.sitedirs); every command that needs one of them
must still work, and ``facts --only ports`` must not load site.py at all.
The argv comes from the template itself (bench/wrapper_command.py), run with
this test's interpreter (a venv: site-packages) and, when present, the
system's ``/usr/bin/python3`` (Debian: dist-packages), as on targets.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import pytest
import yaml
from test_schema import assert_valid

from wrapper_command import wrapper_command

AGENT = Path(__file__).resolve().parent.parent
DIAGNOSE = Path(__file__).parent / "fixtures" / "diagnose"
SYSTEM_PYTHON = "/usr/bin/python3"


def _has_yaml(python: str) -> bool:
    done = subprocess.run([python, "-c", "import yaml"], capture_output=True, check=False)
    return done.returncode == 0


INTERPRETERS = [sys.executable] + (
    [SYSTEM_PYTHON] if os.path.exists(SYSTEM_PYTHON) and _has_yaml(SYSTEM_PYTHON) else []
)


def run_wrapped(
    python: str, *args: str, before: str = "", flags: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The wrapper's command with ``python`` (plus ``flags``); ``before`` runs ahead of its
    ``-c`` code."""
    argv = wrapper_command(python, *args)
    argv[1:1] = flags
    code = argv.index("-c") + 1
    argv[code] = before + argv[code]
    env = {**os.environ, "PYTHONPATH": str(AGENT)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_the_wrapper_skips_site() -> None:
    assert wrapper_command("/usr/bin/python3")[:4] == ["/usr/bin/python3", "-B", "-S", "-c"]


@pytest.mark.parametrize("python", INTERPRETERS)
def test_only_ports_never_loads_site(python: str) -> None:
    done = run_wrapped(python, "facts", "--only", "ports", flags=["-X", "importtime"])
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "netmedic.collectors.ports" in imported  # the report is complete
    assert "site" not in imported
    assert json.loads(done.stdout)["ports"]["source"] == "netlink"


@pytest.mark.parametrize("python", INTERPRETERS)
def test_all_families_without_site(python: str) -> None:
    done = run_wrapped(python, "facts")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert_valid(doc)
    assert doc["errors"] == []


@pytest.mark.parametrize("python", INTERPRETERS)
def test_yaml_output_without_site(python: str) -> None:
    done = run_wrapped(python, "facts", "--only", "ephemeral", "--format", "yaml")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["ephemeral"]["port_range"]["size"] > 0


def _saved(host: str) -> List[str]:
    return ["--facts", str(DIAGNOSE / f"{host}.json"), "--config", str(DIAGNOSE / "config.yml")]


@pytest.mark.parametrize("python", INTERPRETERS)
def test_diagnose_and_check_without_site(python: str) -> None:
    # The catalog and --config are YAML: both need PyYAML from the site directories.
    done = run_wrapped(python, "diagnose", "--format", "json", *_saved("incidents"))
    assert done.returncode == 2, done.stderr  # CRITICAL, as test_diagnose expects
    assert json.loads(done.stdout)["catalog_errors"] == []
    check = ("check", "declared-port-held-by-other")
    assert run_wrapped(python, *check, *_saved("healthy")).returncode == 0  # absent
    assert run_wrapped(python, *check, *_saved("incidents")).returncode == 1  # present


@pytest.mark.parametrize("python", INTERPRETERS)
def test_probe_bind_without_site(python: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        done = run_wrapped(python, "probe-bind", "tcp", port, "--addr", "127.0.0.1")
    assert done.returncode == 1, done.stdout + done.stderr  # in use, holder named
    assert str(os.getpid()) in done.stdout


def test_psutil_fallback_without_site() -> None:
    # sock_diag refused, as on a kernel without inet_diag: ports come from psutil.
    no_netlink = (
        "import netmedic.netlink as nl\n"
        "def refuse(*args, **kwargs): raise nl.NetlinkUnavailable('refused by the test')\n"
        "nl.bound_sockets = refuse\n"
    )
    done = run_wrapped(sys.executable, "facts", "--only", "ports", before=no_netlink)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["errors"] == []
    assert doc["ports"]["source"] == "psutil"
    assert doc["ports"]["sockets"]


@pytest.mark.parametrize("python", INTERPRETERS)
def test_site_dirs_are_added_once_and_only_under_dash_s(python: str) -> None:
    code = (
        "import sys; from netmedic.sitedirs import add_site_dirs; before = list(sys.path);"
        "add_site_dirs(); after = list(sys.path); add_site_dirs();"
        "print(len(after) > len(before), sys.path == after, 'site' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(AGENT)}
    for flags, expected in ((["-S"], "True True True"), ([], "False True True")):
        done = subprocess.run(
            [python, *flags, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.stdout.strip() == expected, (flags, done.stderr)


def test_run_exits_with_main_and_tracebacks_like_python() -> None:
    # run() ends with os._exit: the exit code, the flushed output and a bug's traceback
    # must come out as they would from sys.exit(main()).
    usage = run_wrapped(sys.executable, "frobnicate")
    assert (usage.returncode, usage.stdout) == (2, "")
    assert "unknown command: frobnicate" in usage.stderr
    bug = (
        "import netmedic.cli as cli\n"
        "def main(): raise ZeroDivisionError('a bug')\n"
        "cli.main = main\n"
    )
    done = run_wrapped(sys.executable, "facts", before=bug)
    assert done.returncode == 1
    assert done.stderr.rstrip().endswith("ZeroDivisionError: a bug")
