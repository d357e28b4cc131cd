"""CLI: the real `netmedic facts` on this host, --only, --format, exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_schema import assert_valid

from netmedic import cli, output
from netmedic.collectors import channels
from netmedic.registry import FAMILIES

VENV_BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_console_script_on_this_host_is_valid_and_exits_0() -> None:
    done = _run(str(VENV_BIN / "netmedic"), "facts")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert_valid(doc)
    assert doc["host"] == os.uname().nodename
    if not Path("/run/systemd/system").is_dir():
        assert doc["units"]["systemd"] == "not running"
    # a failed collector is an errors entry, never a missing document
    assert {e["family"] for e in doc["errors"]} <= {"ports"}


def test_python_m_only_ephemeral() -> None:
    done = _run(sys.executable, "-m", "netmedic", "facts", "--only", "ephemeral")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == {
        "schema_version",
        "agent_version",
        "host",
        "collected_at",
        "duration_ms",
        "ephemeral",
        "errors",
    }
    assert_valid(doc)


def test_only_ports_imports_nothing_heavy() -> None:
    # typing, dataclasses, subprocess, pathlib, socket, json (→ re), collections,
    # importlib and even os cost more start-up time than they save on the ports path
    # (docs/performance.md). -S as the wrapper runs it: site.py would load some itself.
    code = (
        "import io, sys; before = set(sys.modules); from netmedic import cli;"
        "cli.main(['facts', '--only', 'ports'], io.StringIO());"
        "print(sorted(m for m in ('yaml','psutil','argparse','netmedic.collectors.units',"
        "'netmedic.collectors.dns','netmedic.config','netmedic.commands','netmedic.diagnose',"
        "'netmedic.catalog','typing','dataclasses','subprocess',"
        "'pathlib','socket','json','re','inspect','enum','collections','importlib','site','os')"
        " if m in set(sys.modules) - before))"
    )
    agent = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=agent, check=False
    )
    assert done.stdout.strip() == "[]", done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_is_compact_for_pipes_and_indented_on_a_terminal() -> None:
    piped, terminal = io.StringIO(), _Terminal()
    assert cli.main(["facts", "--only", "ephemeral"], piped) == 0
    assert cli.main(["facts", "--only", "ephemeral"], terminal) == 0
    assert "\n" not in piped.getvalue().rstrip("\n")
    assert terminal.getvalue().startswith('{\n  "schema_version": 2,')
    first, second = json.loads(piped.getvalue()), json.loads(terminal.getvalue())
    # The same document either way; socket counters move between the two runs on a busy host.
    assert first.keys() == second.keys() and first["ephemeral"].keys() == second["ephemeral"].keys()
    assert first["ephemeral"]["port_range"] == second["ephemeral"]["port_range"]


@pytest.mark.parametrize(
    "doc",
    [
        {"a": [1, None, True, False, "é", 'q"\\\n\t'], "b": {"c": 1.5, "d": -0.0, "e": 10**20}},
        [],
        {"sockets": [{"owner": None, "other_pids": [3, 4]}] * 3, "emoji": "\U0001f600"},
        # the sockets list is encoded apart, whatever it holds; other lists whole
        list(range(350)),
        {"ports": {"sockets": [{"port": n, "owner": {"pid": n}} for n in range(250)], "x": {}},
         "deep": {"a": {"b": list(range(201))}}, "empty": [], "exact": list(range(200))},
        {1: list(range(150)), "b": {2.5: [True] * 101, "c": [None] * 100}},
    ],
)  # fmt: skip
def test_compact_json_is_what_json_dumps_gives(doc: object) -> None:
    assert output.compact_json(doc) == json.dumps(doc, separators=(",", ":"))


def test_compact_json_rejects_what_json_rejects() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        output.compact_json({"a": {1, 2}})


def test_collector_failure_still_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ctx: object) -> dict:  # type: ignore[type-arg]
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(channels, "collect", boom)
    out = io.StringIO()
    assert cli.main(["facts", "--only", "channels,ephemeral"], out) == 0
    doc = json.loads(out.getvalue())
    assert doc["channels"] is None
    assert doc["ephemeral"]["port_range"]["size"] > 0
    assert doc["errors"] == [
        {"family": "channels", "type": "OSError", "message": "[Errno 5] Input/output error"}
    ]
    assert_valid(doc)


def test_yaml_format() -> None:
    out = io.StringIO()
    assert cli.main(["facts", "--only=ephemeral", "--format", "yaml"], out) == 0
    assert yaml.safe_load(out.getvalue())["ephemeral"]["tcp_tw_reuse"] in (0, 1, 2)


def test_yaml_writes_a_shared_value_out_where_it_is_held() -> None:
    """One owner dict for two sockets: written twice, never as an &id001 / *id001 pair."""
    owner = {"pid": 812, "name": "gmediarender", "unit": "gmediarender.service"}
    doc = {"ports": {"sockets": [{"port": 1900, "owner": owner}, {"port": 49152, "owner": owner}]}}
    text = "".join(output.render(doc, "yaml", pretty=False))
    assert "&" not in text and "*" not in text
    assert text.count("unit: gmediarender.service") == 2
    assert yaml.safe_load(text) == doc


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["facts", "--only", "nope"], "unknown fact families: nope"),
        (["facts", "--format", "xml"], "--format must be one of json, yaml, not 'xml'"),
        (["facts", "--only"], "option --only needs a value"),
        (["facts", "--verbose"], "unknown option: --verbose"),
        (["facts", "--diagnose", "--only", "ports"], "--diagnose needs every family"),
        (["frobnicate"], "unknown command: frobnicate"),
        ([], ""),
    ],
)
def test_usage_errors_exit_2(argv: list, message: str, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    assert cli.main(argv, io.StringIO()) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0_and_names_the_families() -> None:
    out = io.StringIO()
    assert cli.main(["facts", "--help"], out) == 0
    assert "usage: netmedic" in out.getvalue()
    assert f"(families: {', '.join(FAMILIES)})" in out.getvalue()


@pytest.mark.parametrize("command", ["facts", "diagnose", "check", "probe-bind"])
def test_each_command_s_help_is_its_own_usage(command: str) -> None:
    out = io.StringIO()
    assert cli.main([command, "--help"], out) == 0
    assert out.getvalue().startswith(f"usage: netmedic {command} ")
    others = {"facts", "diagnose", "check", "probe-bind"} - {command}
    assert not any(f"usage: netmedic {other}" in out.getvalue() for other in others)


def test_the_whole_usage_names_version_and_every_command() -> None:
    out = io.StringIO()
    assert cli.main(["--help"], out) == 0
    assert "netmedic --version" in out.getvalue()
    assert all(f"\n  {name} " in out.getvalue() for name in ("facts", "diagnose", "check"))


def test_facts_with_diagnose_carries_the_findings_of_the_same_collection() -> None:
    """The facts.d hook's document: one collection, its diagnosis beside it."""
    out = io.StringIO()
    assert cli.main(["facts", "--diagnose"], out) == 0
    doc = json.loads(out.getvalue())
    assert_valid(doc)
    assert set(doc["diagnosis"]) == {"status", "exit_code", "findings", "skipped", "catalog_errors"}
    assert doc["diagnosis"]["status"] in ("OK", "WARNING", "CRITICAL", "UNKNOWN")
