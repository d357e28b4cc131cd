"""Contract: the shipped JSON Schema describes exactly what the collectors write.

Documents validate against it (jsonschema is test-only), every object in it is
closed (no field a collector could add unseen), and every field it declares is
written in one of the documents built here.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import jsonschema
import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx

from netmedic import api, facts
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
        "host": "h",
        "collected_at": "2024-05-01T10:00:00Z",
        "duration_ms": 1,
        "dns": None,
        "errors": [{"family": "dns", "type": "OSError", "message": "x"}],
    }
    assert_valid(doc)
    with pytest.raises(AssertionError):
        assert_valid(dict(doc, errors=[{"family": "nope", "type": "OSError", "message": "x"}]))


# --- exactly what collectors write ----------------------------------------------------

SCHEMA = json.loads(SCHEMA_PATH.read_text())
Field = Tuple[str, ...]  # ("ports", "sockets", "[]", "owner", "pid"); "*" a mapping's key


def alternatives(node: Dict[str, Any]) -> List[Dict[str, Any]]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in node:
        return [alt for option in node["oneOf"] for alt in alternatives(option)]
    return [node]


def declared_fields(node: Dict[str, Any], at: Field = ()) -> Iterator[Field]:
    """Every named field (and mapping value) the schema declares, through lists."""
    for alt in alternatives(node):
        for key, child in alt.get("properties", {}).items():
            yield (*at, key)
            yield from declared_fields(child, (*at, key))
        if isinstance(alt.get("additionalProperties"), dict):
            yield (*at, "*")
            yield from declared_fields(alt["additionalProperties"], (*at, "*"))
        if "items" in alt:
            yield from declared_fields(alt["items"], (*at, "[]"))


def written_fields(value: Any, node: Dict[str, Any], at: Field = ()) -> Iterator[Field]:
    """The declared fields ``value`` has, walked along the schema."""
    for alt in alternatives(node):
        values = alt.get("additionalProperties")
        if isinstance(value, dict):
            for key, child in value.items():
                if key in alt.get("properties", {}):
                    yield (*at, key)
                    yield from written_fields(child, alt["properties"][key], (*at, key))
                elif isinstance(values, dict):
                    yield (*at, "*")
                    yield from written_fields(child, values, (*at, "*"))
        elif isinstance(value, list) and "items" in alt:
            for item in value:
                yield from written_fields(item, alt["items"], (*at, "[]"))


def every_field_documents(root: Path) -> Iterator[Dict[str, Any]]:
    """Documents that, together, write every field: this host with a socket we hold,
    the fixture families, an unreadable sysctl file, a failing family."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield facts.gather(Context(only=["ports"]))
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "resolv.conf").write_text("search example.net\nnameserver 127.0.0.53\n")
    config = {
        "units": ["dbus.service"],
        "dns": {"probe_names": ["localhost"], "timeout_s": 1},
        "processes": [{"name": "self", "match": {"name": "pytest|python.*"}, "gui": ["nogui"],
                       "lock_files": ["/run/x.lock"]}],
        "channels": [{"app": "pm", "data_dir": "/opt/safing/portmaster",
                      "indexes": {"beta": "updates/beta.json"}}],
    }  # fmt: skip
    yield facts.gather(
        fixture_ctx(root, proc_root=Path("/proc"), run=FakeSystemctl(RECORDED_SHOW.read_text()),
                    config=config, only=["units", "dns", "processes", "channels"])
    )  # fmt: skip
    ephemeral = root / "ephemeral"
    shutil.copytree(FIXTURES / "ephemeral" / "root", ephemeral, symlinks=True)
    (ephemeral / "etc" / "sysctl.d" / "70-a-directory.conf").mkdir()
    config = {"ports": [{"port": 40200, "proto": "tcp"}]}
    yield facts.gather(fixture_ctx(ephemeral, config=config, only=["ephemeral"]))
    yield api.collect(fixture_ctx(FIXTURES / "config" / "malformed", only=["ephemeral"]))


def test_every_object_the_schema_declares_is_closed() -> None:
    def objects(node: Any, at: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
        if isinstance(node, dict):
            if "properties" in node:
                yield at, node
            for key, child in node.items():
                yield from objects(child, f"{at}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from objects(child, f"{at}[{index}]")

    open_ones = [at for at, node in objects(SCHEMA, "") if node.get("additionalProperties", True)]
    assert open_ones == []


def test_every_field_the_schema_declares_is_written(tmp_path: Path) -> None:
    written: Set[Field] = set()
    for doc in every_field_documents(tmp_path):
        assert_valid(doc)
        written.update(written_fields(doc, SCHEMA))
    missing = sorted(set(declared_fields(SCHEMA)) - written)
    unwritten = ", ".join(".".join(field) for field in missing)
    assert missing == [], f"declared but written by no collector: {unwritten}"
