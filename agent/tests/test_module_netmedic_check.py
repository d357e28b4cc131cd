"""plugins/modules/netmedic_check.py: the one way roles verify a fix and learn what to fix."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict

from conftest import run_agent_module

HELD = "declared-port-held-by-other"


def declared(port: int) -> Dict[str, Any]:
    """A config declaring ``port`` as owned by a unit that is not this test's process."""
    return {"ports": [{"port": port, "proto": "tcp", "owner": "netmedic-test-owner.service"}]}


def check(tmp_path: Path, port: int, **args: Any) -> Dict[str, Any]:
    return run_agent_module("netmedic_check", tmp_path, check=True, config=declared(port), **args)


def test_a_held_port_is_present_and_fails_verification(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        subject = f"{port}/tcp"
        asked = check(tmp_path, port, findings=[{"id": HELD}], state="query")
        assert not asked.get("failed"), asked
        assert [(f["id"], f["subject"]) for f in asked["present"]] == [(HELD, subject)]
        assert asked["absent"] == [] and asked["not_evaluated"] == []

        verified = check(tmp_path, port, findings=[{"id": HELD, "subject": subject}])
        assert verified["failed"]
        assert verified["msg"].startswith(f"verification failed: still present: {HELD} ({subject})")
        # Another subject of the same id is not this one: absent.
        other = check(tmp_path, port, findings=[{"id": HELD, "subject": "1/tcp"}])
        assert not other.get("failed") and other["absent"] == [{"id": HELD, "subject": "1/tcp"}]


def test_verification_waits_until_the_finding_is_gone(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    started = time.monotonic()
    # The socket closes 1.5 s in: the check polls every second for up to 10 s.
    threading.Timer(1.5, listener.close).start()
    result = check(
        tmp_path, port, findings=[{"id": HELD, "subject": f"{port}/tcp"}], wait=10, delay=1
    )
    assert not result.get("failed"), result
    assert 1.5 <= time.monotonic() - started < 10
    assert result["present"] == [] and result["absent"] == [{"id": HELD, "subject": f"{port}/tcp"}]


def test_an_unknown_id_fails_naming_it(tmp_path: Path) -> None:
    result = check(tmp_path, 9, findings=[{"id": "no-such-finding"}], state="query")
    assert result["failed"] and "no-such-finding" in result["msg"]
    assert "not in the catalog" in result["msg"]


def test_a_missing_agent_fails_naming_the_path(tmp_path: Path) -> None:
    result = run_agent_module(
        "netmedic_check", tmp_path, findings=[{"id": HELD}], agent_path=str(tmp_path / "none")
    )
    assert result["failed"] and str(tmp_path / "none") in result["msg"]
