"""probe-bind with real sockets: a child process holding a port is named, a free
port is free, a non-local address is not available (binding sends no traffic)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import textwrap
from typing import Iterator, List, Tuple

import pytest

from netmedic.commands import cmd_probe_bind
from netmedic.context import Context
from netmedic.probe import (
    ADDRESS_NOT_AVAILABLE,
    FREE,
    IN_USE,
    NOT_EXHAUSTION_NOTE,
    parse_port,
    probe_bind,
)

HOLDER = textwrap.dedent(
    """
    import socket, sys
    kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    if sys.argv[2] == "reuse":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    print(sock.getsockname()[1], flush=True)
    sys.stdin.read()  # hold the port until the test closes stdin
    """
)


def spawn_holder(proto: str, reuse: bool) -> Tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, proto, "reuse" if reuse else "plain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


@pytest.fixture
def holders() -> Iterator[List[subprocess.Popen[str]]]:
    children: List[subprocess.Popen[str]] = []
    yield children
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_port_held_by_child_names_it(proto: str, holders: List[subprocess.Popen[str]]) -> None:
    child, port = spawn_holder(proto, reuse=False)
    holders.append(child)
    result = probe_bind(proto, port, "127.0.0.1", Context())
    assert result.status == IN_USE
    assert result.errno_name == "EADDRINUSE"
    (holder,) = result.holders
    assert holder["owner"]["pid"] == child.pid
    assert holder["owner"]["name"] == "python3" or holder["owner"]["name"].startswith("python")
    assert holder["address"] == "127.0.0.1"
    if proto == "udp":
        assert result.shareable is False
        assert holder["sharing"]["reuse_addr"] in (False, None)  # None without ptrace rights


def test_udp_holder_with_reuseaddr_is_shareable(holders: List[subprocess.Popen[str]]) -> None:
    child, port = spawn_holder("udp", reuse=True)
    holders.append(child)
    result = probe_bind("udp", port, "127.0.0.1", Context())
    assert (result.status, result.shareable) == (IN_USE, True)


def test_wildcard_probe_conflicts_with_a_specific_holder(
    holders: List[subprocess.Popen[str]],
) -> None:
    child, port = spawn_holder("tcp", reuse=False)
    holders.append(child)
    result = probe_bind("tcp", port, "0.0.0.0", Context())
    assert result.status == IN_USE
    assert [h["owner"]["pid"] for h in result.holders] == [child.pid]


@pytest.mark.parametrize(
    ("proto", "kind"), [("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)]
)
def test_free_port(proto: str, kind: int) -> None:
    result = probe_bind(proto, free_port(kind), "127.0.0.1", Context())
    assert (result.status, result.holders, result.errno_name) == (FREE, [], None)


def test_non_local_address_is_not_available_and_not_called_exhaustion() -> None:
    result = probe_bind("tcp", 40000, "192.0.2.1", Context())  # TEST-NET-1: never local
    assert result.status == ADDRESS_NOT_AVAILABLE
    assert result.errno_name == "EADDRNOTAVAIL"
    assert result.notes == [NOT_EXHAUSTION_NOTE]


def run_cli(args: List[str]) -> Tuple[int, str]:
    out = io.StringIO()
    return cmd_probe_bind(args, out, Context()), out.getvalue()


def test_cli_exit_codes_and_text(holders: List[subprocess.Popen[str]]) -> None:
    child, port = spawn_holder("udp", reuse=False)
    holders.append(child)
    code, text = run_cli(["udp", str(port), "--addr", "127.0.0.1"])
    assert code == 1
    assert text.startswith(
        f"{port}/udp on 127.0.0.1: in use (EADDRINUSE)\n  held by pid {child.pid} ("
    )
    assert "a SO_REUSEADDR socket can share it: no" in text
    code, text = run_cli(["tcp", "40000", "--addr=192.0.2.1"])
    assert code == 2
    assert "not proof of ephemeral-port exhaustion" in text
    code, text = run_cli(["udp", str(free_port(socket.SOCK_DGRAM)), "--addr", "127.0.0.1"])
    assert (code, text.split(": ")[-1]) == (0, "free\n")


def test_cli_json(holders: List[subprocess.Popen[str]]) -> None:
    child, port = spawn_holder("tcp", reuse=False)
    holders.append(child)
    code, text = run_cli(["tcp", str(port), "--addr", "127.0.0.1", "--format", "json"])
    doc = json.loads(text)
    assert code == 1
    assert (doc["status"], doc["errno"], doc["port"]) == ("in_use", "EADDRINUSE", port)
    assert doc["holders"][0]["owner"]["pid"] == child.pid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tcp", "0"], "PORT must be a number from 1 to 65535, got '0'"),
        (["tcp", "65536"], "got '65536'"),
        (["udp", "http"], "got 'http'"),
        (["udp", "-5"], "got '-5'"),
        (["sctp", "80"], "protocol must be tcp or udp, got 'sctp'"),
        (["tcp"], "expected PROTO PORT, got tcp"),
        # A name is refused, never resolved: the probe causes no DNS traffic.
        (["tcp", "80", "--addr", "example.com"], "--addr must be an IP address, got 'example.com'"),
    ],
)
def test_cli_rejects_bad_input_naming_it(
    capsys: pytest.CaptureFixture[str], args: List[str], message: str
) -> None:
    code, _ = run_cli(args)
    assert code == 3
    assert message in capsys.readouterr().err


def test_parse_port_bounds() -> None:
    assert parse_port("1") == 1
    assert parse_port("65535") == 65535
    with pytest.raises(ValueError, match="'65536'"):
        parse_port("65536")
