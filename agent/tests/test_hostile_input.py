"""Input nobody planned for: saved facts that break the schema, NaN, huge and deep files,
a config with values out of range; then a fuzz test over the commands' arguments.

Each case ends in a clear message and a documented exit code, never a traceback,
a signal or a hang.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

import pytest
from conftest import document_paths, replaced
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netmedic.commands import COMMANDS
from netmedic.context import Context
from netmedic.inputs import MAX_FACTS_BYTES, json_depth

FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"
INCIDENTS: Dict[str, Any] = json.loads((FIXTURES / "incidents.json").read_text(encoding="utf-8"))
CONFIG = FIXTURES / "config.yml"
AGENT = Path(__file__).resolve().parents[1]
EXITS = {0, 1, 2, 3}


def run(command: str, args: List[str], etc: Path) -> Tuple[int, str, str]:
    """``netmedic COMMAND ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err):
        code = COMMANDS[command](args, out, Context(etc_root=etc))  # type: ignore[call-arg]
    return code, out.getvalue(), err.getvalue()


def saved(tmp_path: Path, document: Any, name: str = "facts.json") -> str:
    """``document`` (text, bytes, or a value to write as JSON) in a file; its path."""
    path = tmp_path / name
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def with_value(path: Tuple[Any, ...], value: Any) -> Dict[str, Any]:
    """The incidents document with the value at ``path`` replaced."""
    changed: Dict[str, Any] = replaced(INCIDENTS, path, value)
    return changed


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("ports",), "oops", "ports: must be"),
        (("units",), 5, "units: must be"),
        (("errors",), 5, "errors: must be an array, got integer"),
        (("errors",), [{"family": ["ports"], "type": "x", "message": "y"}], "errors[0].family"),
        (("ports", "sockets", 0, "port"), 70000, "ports.sockets[0].port: must be <= 65535"),
        (("ports", "sockets", 0, "owner"), {"pid": "812"}, "ports.sockets[0].owner"),
        (("ephemeral", "sysctl_sources", "net.ipv4.tcp_tw_reuse"), 1,
         'ephemeral.sysctl_sources["net.ipv4.tcp_tw_reuse"]'),
    ],
)  # fmt: skip
def test_facts_breaking_the_schema_exit_3_naming_the_path(
    tmp_path: Path, path: Tuple[Any, ...], value: Any, named: str
) -> None:
    facts = saved(tmp_path, with_value(path, value))
    code, out, err = run("diagnose", ["--facts", facts, "--config", str(CONFIG)], tmp_path)
    assert (code, out) == (3, "")
    assert err.startswith(f"netmedic diagnose: --facts {facts}: not a facts document: {named}")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema_version": NaN}', "NaN is not a JSON number"),
        ('{"duration_ms": Infinity}', "Infinity is not a JSON number"),
        ('{"duration_ms": -Infinity}', "-Infinity is not a JSON number"),
        ('{"duration_ms": 1e999}', "1e999 is too large for a number"),
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep (the limit is 64)"),
        (b'{"host": "\xff"}', "not UTF-8 text (byte 10)"),
    ],
)
def test_facts_that_are_not_strict_json_exit_3(
    tmp_path: Path, text: Union[str, bytes], message: str
) -> None:
    facts = saved(tmp_path, text)
    code, out, err = run("check", ["declared-port-held-by-other", "--facts", facts], tmp_path)
    assert (code, out, err) == (3, "", f"netmedic check: --facts {facts}: {message}\n")


def test_a_nan_in_a_real_document_produces_no_finding(tmp_path: Path) -> None:
    document = with_value(("ephemeral", "pressure", "ratio"), 0.987654321)
    text = json.dumps(document).replace("0.987654321", "NaN")
    code, _, err = run("diagnose", ["--facts", saved(tmp_path, text)], tmp_path)
    assert code == 3
    assert err.endswith(": NaN is not a JSON number\n")


def test_dev_zero_is_refused_after_the_limit_not_read_whole(tmp_path: Path) -> None:
    started = time.monotonic()
    code, _, err = run("diagnose", ["--facts", "/dev/zero"], tmp_path)
    assert code == 3
    assert err == (
        f"netmedic diagnose: --facts /dev/zero: larger than {MAX_FACTS_BYTES} bytes"
        " (the limit for this kind of file)\n"
    )
    assert time.monotonic() - started < 5


def nesting(value: Any) -> int:
    """How deep lists and objects nest, measured on the parsed value (json_depth's reference)."""
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


# Strings made of the characters that could fool a bracket count: brackets, quotes, backslashes.
TRICKY_TEXT = st.text(alphabet='[]{}"\\\\ a\u00e9', max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_json_depth_counts_brackets_outside_strings_only(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text.encode("utf-8")) == nesting(value)


def agent_process(args: List[str], etc: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child: a crash of the C parsers would be a signal, not a test error."""
    code = f"import sys; sys.argv[1:] = {args!r}; from netmedic.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        env={"PYTHONPATH": str(AGENT), "PATH": "/usr/bin:/bin"}, cwd=etc,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text", ["[" * 50_000 + "]" * 50_000, "".join(" " * i + "a:\n" for i in range(1000))]
)
def test_a_config_50000_levels_deep_is_an_error_entry_not_a_crash(
    tmp_path: Path, text: str
) -> None:
    config = tmp_path / "deep.yml"
    config.write_text(text)
    facts = saved(tmp_path, INCIDENTS)
    done = agent_process(["diagnose", "--facts", facts, "--config", str(config),
                          "--format", "json"], tmp_path)  # fmt: skip
    assert done.returncode in EXITS, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [e for e in json.loads(done.stdout)["facts_errors"] if e["family"] == "config"]
    assert error == {
        "family": "config", "type": "ConfigError",
        "message": f"{config}: nested deeper than 64 levels",
    }  # fmt: skip


def test_a_declared_port_of_70000_is_reported_and_the_rest_is_diagnosed(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    declared = "ports:\n- {port: 70000, proto: udp, owner: x.service}\n"
    config.write_text(CONFIG.read_text().replace("ports:\n", declared, 1))
    facts = saved(tmp_path, INCIDENTS)
    code, out, _ = run("diagnose", ["--facts", facts, "--config", str(config), "--format",
                                    "json"], tmp_path)  # fmt: skip
    result = json.loads(out)
    assert code == 2  # the port conflict on 1900/udp is still found
    assert "1900/udp" in [f["subject"] for f in result["findings"]]
    assert result["facts_errors"][-1] == {
        "family": "config", "type": "ConfigInvalid",
        "message": f"{config}: ports[0].port: must be <= 65535 (left out: ports[0])",
    }  # fmt: skip
    code, text, _ = run("diagnose", ["--facts", facts, "--config", str(config)], tmp_path)
    assert f"config: {config}: ports[0].port: must be <= 65535 (left out: ports[0])" in text


# --- fuzz: whatever the arguments, a documented exit code, a message, no traceback --------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)  # fmt: skip


def _at(path: Tuple[Any, ...]) -> Any:
    node: Any = INCIDENTS
    for step in path:
        node = node[step]
    return node


def _same_kind(path: Tuple[Any, ...]) -> st.SearchStrategy[Dict[str, Any]]:
    """The document with the value at ``path`` replaced by another of its JSON type."""
    value = _at(path)
    kinds: Dict[type, st.SearchStrategy[Any]] = {
        bool: st.booleans(), int: st.integers(), float: st.floats(allow_nan=False),
        str: st.text(max_size=12), list: st.lists(JSON_VALUES, max_size=2),
        dict: st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=2),
    }  # fmt: skip
    return st.builds(with_value, st.just(path), kinds.get(type(value), st.none()))


PATHS = document_paths(INCIDENTS)
MUTATED = st.builds(with_value, st.sampled_from(PATHS), JSON_VALUES).map(json.dumps)
RETYPED = st.sampled_from(PATHS).flatmap(_same_kind).map(json.dumps)
FACTS_TEXT = st.one_of(
    MUTATED,
    RETYPED,
    st.text(max_size=40),
    st.sampled_from(["NaN", "[Infinity]", "[" * 5000, "{}", "[]", json.dumps(INCIDENTS)]),
)
CONFIG_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["ports: [{port: 70000}]", "[" * 5000, "a: &a [*a]", "- x", "ports: {",
                     CONFIG.read_text()]),
    st.builds(lambda key, value: json.dumps({key: value}),
              st.sampled_from(["ports", "units", "dns", "processes", "channels", "x"]),
              JSON_VALUES),
)  # fmt: skip
WORDS = st.sampled_from(
    ["tcp", "udp", "sctp", "0", "1", "65535", "65536", "-1", "80x", "127.0.0.1", "::1",
     "0.0.0.0", "::", "fe80::1%lo", "fe80::1%nosuchif", "::ffff:127.0.0.1", "localhost",
     "--addr", "--format", "json", "text", "prometheus", "--bogus", "--addr=", ""]
) | st.text(max_size=10)  # fmt: skip


PROBES = st.tuples(
    st.sampled_from(["tcp", "udp"]),
    st.integers(1, 65535).map(str) | st.just("HELD"),
    st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "::", "fe80::1%lo", "::ffff:127.0.0.1",
                     "192.0.2.1", "fe80::1%1"]),
    st.sampled_from(["text", "json"]),
).map(lambda p: [p[0], p[1], "--addr", p[2], "--format", p[3]])  # fmt: skip


def _timed(command: str, args: List[str], etc: Path) -> None:
    started = time.monotonic()
    code, _, err = run(command, args, etc)
    event(f"{command}: exit {code}")
    assert code in EXITS, (args, code, err)
    assert "Traceback" not in err
    assert time.monotonic() - started < 5, args


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


@FUZZ
@given(facts=FACTS_TEXT, config=CONFIG_TEXT, extra=st.lists(WORDS, max_size=2))
def test_fuzz_diagnose_and_check(tmp_path: Path, facts: str, config: str, extra: List[str]) -> None:
    facts_path = saved(tmp_path, facts)
    config_path = saved(tmp_path, config, "config.yml")
    args = ["--facts", facts_path, "--config", config_path, *extra]
    _timed("diagnose", args, tmp_path)
    _timed("check", ["declared-port-held-by-other", *args], tmp_path)


@pytest.fixture(scope="module")
def held() -> Iterator[int]:
    """A dual-stack TCP listener and UDP socket on one port (``HELD`` in the fuzzed words)."""
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    tcp.bind(("::", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", tcp.getsockname()[1]))
    with tcp, udp:
        yield int(tcp.getsockname()[1])


@FUZZ
@given(words=st.lists(WORDS, max_size=5) | PROBES)
def test_fuzz_probe_bind(tmp_path: Path, held: int, words: List[str]) -> None:
    _timed("probe-bind", [str(held) if word == "HELD" else word for word in words], tmp_path)
