"""containers.py: Docker containers behind declared ports, from a fixture data root.

The tree (fixtures/containers/README.md) is dockerd's data root as the agent reads it:
config.v2.json (``Name`` with its leading slash, ``State``) and hostconfig.json
(``PortBindings``) per container id; no Docker runs here.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from netmedic import containers
from netmedic.collectors import ports
from netmedic.context import Context

FIXTURE = Path(__file__).parent / "fixtures" / "containers"
AIRCONNECT = "a1c0" + "c" * 60
PLEX = "9b" * 32
LAB = "66" * 32  # the lab container the agent itself runs in: its dockerd is not this host's


def ctx(ports_declared: List[Dict[str, Any]], etc: Path = FIXTURE / "etc") -> Context:
    return Context(etc_root=etc, config={"ports": ports_declared})


def holder(
    port: int, proto: str, name: str, unit: Optional[str], cid: Optional[str]
) -> Dict[str, Any]:
    owner = {"pid": 41, "name": name, "exe": f"/usr/bin/{name}", "user": "root", "unit": unit,
             "container_id": cid}  # fmt: skip
    return {"proto": proto, "port": port, "address": "0.0.0.0", "owner": owner}


def test_a_scope_nested_in_a_container_is_named_from_its_own_id() -> None:
    # /docker/<lab>/system.slice/docker-<airconnect>.scope: owners.py reports the outer id.
    sock = holder(1900, "udp", "gmediarender", f"docker-{AIRCONNECT}.scope", LAB)
    family = containers.name_containers(ctx([{"port": 1900, "proto": "udp"}]), {"sockets": [sock]})
    assert sock["owner"]["container_name"] == "airconnect"
    assert family["containers"] == {
        "airconnect": {"id": AIRCONNECT, "state": "running", "exit_code": 0, "published": []}
    }


def test_the_outermost_id_names_a_container_of_this_host() -> None:
    # cgroupfs driver (/docker/<id>): no scope, the container_id is the container.
    sock = holder(8080, "tcp", "nginx", None, PLEX)
    containers.name_containers(ctx([{"port": 8080}]), {"sockets": [sock]})
    assert sock["owner"]["container_name"] == "plex"


def test_dockerd_holding_a_published_port_is_named_by_the_publisher() -> None:
    """AirConnect#416: dockerd held 1900/udp for a container publishing it."""
    sock = holder(1900, "udp", "dockerd", "docker.service", None)
    family = containers.name_containers(ctx([{"port": 1900, "proto": "udp"}]), {"sockets": [sock]})
    assert sock["owner"]["container_name"] == "plex"
    assert family["containers"]["plex"] == {
        "id": PLEX, "state": "restarting", "exit_code": 137, "published": ["1900/udp", "32400/tcp"],
    }  # fmt: skip


def test_an_unknown_container_and_an_undeclared_port_are_left_alone() -> None:
    lab = holder(1900, "udp", "python3", "plexmediaserver.service", LAB)  # no config.v2.json
    other = holder(22, "tcp", "sshd", None, PLEX)  # in a known container, but 22 is not declared
    family = containers.name_containers(
        ctx([{"port": 1900, "proto": "udp"}]), {"sockets": [lab, other]}
    )
    assert "container_name" not in lab["owner"] and "container_name" not in other["owner"]
    assert "containers" not in family


def test_a_declared_container_owner_is_found_by_name_with_its_state() -> None:
    declared = [{"port": 1900, "proto": "udp", "owner": {"container": "unifi"}},
                {"port": 9, "proto": "udp", "owner": {"container": "gone"}}]  # fmt: skip
    family = containers.name_containers(ctx(declared), {"sockets": []})
    assert family["containers"] == {
        "unifi": {"id": "55" * 32, "state": "created", "exit_code": 0, "published": ["10001/udp"]}
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Running": True, "Paused": True}, "paused"),
        ({"Running": True, "Restarting": True}, "restarting"),
        ({"Running": True}, "running"),
        (
            {"Running": False, "RemovalInProgress": True, "StartedAt": "2026-01-01T00:00:00Z"},
            "removing",
        ),
        ({"Dead": True, "StartedAt": "2026-01-01T00:00:00Z"}, "dead"),
        ({"StartedAt": "0001-01-01T00:00:00Z"}, "created"),
        ({"StartedAt": "2026-01-01T00:00:00Z", "ExitCode": 1}, "exited"),
    ],
)
def test_state_as_moby_says_it(state: Dict[str, Any], expected: str) -> None:
    assert containers.container_state(state) == expected


def test_the_data_root_comes_from_daemon_json(tmp_path: Path) -> None:
    (tmp_path / "etc" / "docker").mkdir(parents=True)
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    daemon.write_text(json.dumps({"data-root": "/srv/docker"}), encoding="utf-8")
    assert containers.data_root(ctx([], tmp_path / "etc")) == tmp_path / "srv" / "docker"
    daemon.write_text("{torn", encoding="utf-8")
    assert containers.data_root(ctx([], tmp_path / "etc")) == tmp_path / "var" / "lib" / "docker"


def test_the_ports_family_names_containers_only_for_declared_ports() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        plain = ports.collect(Context())
        declared = ports.collect(ctx([{"port": port, "proto": "udp"}]))
    assert set(plain) == {"source", "sockets"}
    mine = [s for s in declared["sockets"] if s["port"] == port and s["proto"] == "udp"]
    assert mine and "container_name" not in (
        mine[0]["owner"] or {}
    )  # this test runs in no container it knows
    assert "containers" not in declared
