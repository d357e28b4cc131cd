"""The facts schema describes exactly what the collectors write.

Every object the schema declares is closed (no field a collector could add
unseen), and every field it declares is written in one of the documents built
here by the collectors themselves, from the fixtures and helpers the families'
own tests use. The one open shape is ``config_entry``: an entry of config.yml
the operator wrote, echoed back (test_catalog_paths treats it as config data).
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx
from test_channels import (
    CHECKS,
    ROOT,
    SYMPTOM,
    Recorder,
    _profile,
    core,  # noqa: F401 - its loopback API, a fixture (getfixturevalue)
)
from test_containers import PLEX
from test_containers import ctx as containers_ctx
from test_dns import _late_upstream, _resolves
from test_schema import SCHEMA_PATH, assert_valid

from netmedic import api, facts
from netmedic.collectors import dns
from netmedic.containers import name_containers
from netmedic.context import Context
from netmedic.procs import vpnc

SCHEMA = json.loads(SCHEMA_PATH.read_text())
Field = Tuple[str, ...]  # ("ports", "sockets", "[]", "owner", "pid"); "*" a mapping's key


def alternatives(node: Dict[str, Any]) -> List[Dict[str, Any]]:
    if "$ref" in node:
        return alternatives(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]])
    if "oneOf" in node or "allOf" in node:
        return [alt for part in node.get("oneOf") or node["allOf"] for alt in alternatives(part)]
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


def document(**families: Any) -> Dict[str, Any]:
    """A facts document around collector output gathered outside facts.gather."""
    return {"schema_version": 2, "agent_version": "0.2.0", "host": "h",
            "collected_at": "2026-12-06T20:00:00Z",
            "duration_ms": 1, **families, "errors": []}  # fmt: skip


def every_field_documents(
    root: Path, api_core: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Dict[str, Any]]:
    """Documents that, together, write every field the schema declares."""
    with socket.socket() as held:  # this host's ports, one owner readable: ours
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        this_host = facts.gather(Context(only=["ports"]))
        yield this_host
    # a declared port held in a Docker container the data root knows (test_containers' tree)
    (ours,) = [s for s in this_host["ports"]["sockets"] if s["port"] == port and s["owner"]]
    in_container = copy.deepcopy(ours)
    in_container["owner"].update(unit=None, container_id=PLEX)
    declared = [
        {"port": port, "proto": "tcp"},
        {"port": 9, "proto": "udp", "owner": {"container": "unifi"}},
    ]
    named = name_containers(
        containers_ctx(declared), {"source": "netlink", "sockets": [in_container]}
    )
    yield document(ports=named)
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "resolv.conf").write_text("search example.net\nnameserver 127.0.0.53\n")
    config = {
        "units": ["dbus.service"],
        "dns": {"probe_names": ["localhost"], "timeout_s": 1},
        "processes": [{"name": "self", "match": {"name": "pytest|python.*"}, "gui": ["nogui"],
                       "lock_files": ["/run/x.lock"]}],
    }  # fmt: skip
    yield facts.gather(
        fixture_ctx(root, proc_root=Path("/proc"), run=FakeSystemctl(RECORDED_SHOW.read_text()),
                    config=config, only=["units", "dns", "processes"])
    )  # fmt: skip
    # channels with an API that shows the symptom and a journal (test_channels' helpers)
    api_profile = {"url": api_core["url"], "checks": CHECKS, "symptom": SYMPTOM}
    journal = {"symptom": "denying api access: failed to identify process"}
    profile = _profile("/opt/safing/portmaster", service="portmaster.service",
                       api=api_profile, journal=journal)  # fmt: skip
    yield facts.gather(fixture_ctx(ROOT, run=Recorder(), config={"channels": [profile]},
                                   only=["channels"]))  # fmt: skip
    # dns with journal markers and a unit's own resolution failure (test_dns' field variant)
    _resolves(monkeypatch, True)
    yield document(dns=dns.collect(_late_upstream()))
    # vpnc leftovers of a declared profile (as test_processes plants them)
    vpnc_root = root / "vpnc"
    (vpnc_root / "etc").mkdir(parents=True)
    (vpnc_root / "etc" / "resolv.conf").write_text(f"{vpnc.MARKER} -- x\nnameserver 203.0.113.53\n")
    state = vpnc_root / "run" / "vpnc"
    state.mkdir(parents=True)
    (state / "resolv.conf-backup.4194300").write_text("nameserver 192.0.2.53\n")
    (state / "defaultroute.4194300").write_text("default\nvia\n192.0.2.1\n")
    (vpnc_root / "proc" / "net").mkdir(parents=True)
    (vpnc_root / "proc" / "net" / "route").write_text("Iface\tDestination\tGateway\n")
    vpn = {"processes": [{"name": "vpn", "match": {"name": "nothing-here"},
                          "vpnc_state_dir": "/var/run/vpnc"}]}  # fmt: skip
    yield facts.gather(fixture_ctx(vpnc_root, config=vpn, only=["processes"]))
    # an unreadable sysctl file, and a failing family with a malformed config
    ephemeral = root / "ephemeral"
    shutil.copytree(FIXTURES / "ephemeral" / "root", ephemeral, symlinks=True)
    (ephemeral / "etc" / "sysctl.d" / "70-a-directory.conf").mkdir()
    trippy = {"name": "trippy", "match": {"name": "trip"}, "probe_check": 0,
              "probe_sequence": {"initial": 40600, "per_round": 64, "rounds": 2}}  # fmt: skip
    ports = {"ports": [{"port": 40200, "proto": "tcp"}], "processes": [trippy]}
    yield facts.gather(fixture_ctx(ephemeral, config=ports, only=["ephemeral"]))
    yield api.collect(fixture_ctx(FIXTURES / "config" / "malformed", only=["ephemeral"]))
    # `netmedic facts --diagnose`: the saved documents with their diagnosis (one not evaluated)
    for saved in ("incidents", "partial"):
        doc = json.loads((FIXTURES / "diagnose" / f"{saved}.json").read_text())
        config = api.load_config(Context(), str(FIXTURES / "diagnose" / "config.yml"))[0]
        host = api.diagnose_host(Context(config=config), facts=doc)
        yield dict(host.facts, diagnosis=host.diagnosis.to_dict())


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
    assert "properties" not in SCHEMA["$defs"]["config_entry"]  # the operator's, by design


def test_every_field_the_schema_declares_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    written: Set[Field] = set()
    api_core = request.getfixturevalue("core")
    for doc in every_field_documents(tmp_path, api_core, monkeypatch):
        assert_valid(doc)
        written.update(written_fields(doc, SCHEMA))
    missing = sorted(set(declared_fields(SCHEMA)) - written)
    unwritten = ", ".join(".".join(field) for field in missing)
    assert missing == [], f"declared but written by no collector: {unwritten}"
