"""Contract: documents validate against the shipped JSON Schema (jsonschema is test-only).

That the schema describes exactly what the collectors write: test_schema_exact.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

import jsonschema
import pytest
from conftest import (
    FIXTURES,
    RECORDED_SHOW,
    FakeSystemctl,
    document_paths,
    fixture_ctx,
    replaced,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from netmedic import facts
from netmedic.context import Context
from netmedic.registry import CONFIG_KEYS
from netmedic.validate import SCHEMA_DIR, schema_validator

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



# --- the agent's own validator (netmedic.validate) agrees with jsonschema -----------


def test_the_agents_validator_accepts_what_jsonschema_accepts() -> None:
    ours = schema_validator("facts")
    assert ours.validate(facts.gather(Context())) == []
    for path in sorted((FIXTURES / "diagnose").glob("*.json")):
        assert ours.validate(json.loads(path.read_text())) == [], path


_JSONSCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
_INCIDENTS = json.loads((FIXTURES / "diagnose" / "incidents.json").read_text())
# 1.0 is an integer to jsonschema, a number to the agent (netmedic.validate): not compared.
_FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
_LEAVES = st.none() | st.booleans() | st.integers() | _FRACTIONS | st.text(max_size=4)
_VALUES = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
        st.sampled_from(["pid", "port", "x", "name"]), inner, max_size=2), max_leaves=4,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(document_paths(_INCIDENTS)), value=_VALUES)
def test_the_agents_validator_agrees_with_jsonschema_on_changed_documents(
    path: Tuple[Any, ...], value: Any
) -> None:
    document = replaced(_INCIDENTS, path, value)
    theirs = list(_JSONSCHEMA.iter_errors(document))
    ours = schema_validator("facts").validate(document)
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])


def test_the_config_schema_is_valid_and_its_keys_are_the_registrys() -> None:
    schema = json.loads((SCHEMA_DIR / "config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    kinds = {list: "array", dict: "object"}
    declared = {key: sub.get("type") or schema["$defs"][sub["$ref"].split("/")[-1]]["type"]
                for key, sub in schema["properties"].items()}  # fmt: skip
    assert declared == {key: kinds[kind] for key, kind in CONFIG_KEYS.items()}
