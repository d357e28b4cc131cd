"""Contract: documents validate against the shipped JSON Schema (jsonschema is test-only).

That the schema describes exactly what the collectors write: test_schema_exact.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx

from netmedic import facts
from netmedic.context import Context

SCHEMA_PATH = Path(facts.__file__).parent / "schema" / "facts.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(doc: Dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_real_host_document_is_valid() -> None:
    assert_valid(facts.gather(Context()))


def test_fixture_document_with_every_family_filled(tmp_path: Path) -> None:
    root = tmp_path
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    config = {
        "units": ["dbus.service"],
        "dns": {"probe_names": ["localhost"], "timeout_s": 1},
        "processes": [
            {"name": "self", "match": {"name": "pytest|python.*"}, "lock_files": ["/run/x.lock"]}
        ],
        "channels": [
            {
                "app": "pm",
                "data_dir": "/opt/safing/portmaster",
                "indexes": {"beta": "updates/beta.json"},
            }
        ],
        "ports": [{"port": 40200, "proto": "tcp"}],
    }
    doc = facts.gather(
        fixture_ctx(
            root,
            proc_root=Path("/proc"),
            run=FakeSystemctl(RECORDED_SHOW.read_text()),
            config=config,
            only=["units", "dns", "processes", "channels"],
        )
    )
    assert doc["errors"] == []
    assert doc["units"]["units"]["dbus.service"]["active_state"] == "active"
    assert doc["processes"]["profiles"][0]["processes"]
    assert_valid(doc)
    ephemeral_doc = facts.gather(
        fixture_ctx(FIXTURES / "ephemeral" / "root", config=config, only=["ephemeral"])
    )
    assert_valid(ephemeral_doc)


def test_ports_shape_is_pinned() -> None:
    sock = {
        "proto": "udp",
        "family": "ipv4",
        "address": "0.0.0.0",
        "port": 1900,
        "inode": 1,
        "uid": 0,
        "netns": None,
        "owner": None,
        "owner_reason": "permission denied",
        "other_pids": [],
        "sharing": {"reuse_addr": False, "reuse_port": None},
    }
    doc = {
        "schema_version": 2,
        "agent_version": "0.2.0",
        "host": "h",
        "collected_at": "2024-05-01T10:00:00Z",
        "duration_ms": 1,
        "ports": {"source": "netlink", "sockets": [sock]},
        "errors": [],
    }
    assert_valid(doc)
    bad = dict(sock, proto="sctp")
    with pytest.raises(AssertionError):
        assert_valid(dict(doc, ports={"source": "netlink", "sockets": [bad]}))


def test_failed_family_and_error_entry_are_valid() -> None:
    doc = {
        "schema_version": 2,
        "agent_version": "0.2.0",
        "host": "h",
        "collected_at": "2024-05-01T10:00:00Z",
        "duration_ms": 1,
        "dns": None,
        "errors": [{"family": "dns", "type": "OSError", "message": "x"}],
    }
    assert_valid(doc)
    with pytest.raises(AssertionError):
        assert_valid(dict(doc, errors=[{"family": "nope", "type": "OSError", "message": "x"}]))

