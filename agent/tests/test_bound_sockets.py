"""Sockets keep what makes them distinct: the device they are bound to, the IPv6 scope,
v6only; probe-bind binds scoped addresses and names v4-mapped and dual-stack holders.

Real sockets: on loopback here, and in a network namespace each test makes for itself
(``unshare -n``: its own ``lo`` with ``fe80::1``, and a veth pair ``v0``/``v1``) where
devices and link-local addresses can be added without touching the host's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from netmedic.collectors import ports
from netmedic.context import Context
from netmedic.probe import IN_USE, probe_bind

AGENT = Path(__file__).resolve().parents[1]


def listener(family: int, address: str, v6only: Any = None, device: bytes = b"") -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    if device:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
    sock.bind((address, 0))
    sock.listen()
    return sock


@pytest.fixture
def loopback() -> Iterator[Dict[str, socket.socket]]:
    """Listeners on loopback: bound to lo, dual-stack ::, v6-only ::, v4-mapped 127.0.0.1."""
    opened = {
        "device": listener(socket.AF_INET, "127.0.0.1", device=b"lo"),
        "dual": listener(socket.AF_INET6, "::", v6only=False),
        "v6only": listener(socket.AF_INET6, "::", v6only=True),
        "mapped": listener(socket.AF_INET6, "::ffff:127.0.0.1", v6only=False),
    }
    yield opened
    for sock in opened.values():
        sock.close()


def entry_of(sock: socket.socket) -> Dict[str, Any]:
    port = sock.getsockname()[1]
    (found,) = [s for s in ports.collect(Context())["sockets"] if s["port"] == port]
    return dict(found)


def test_facts_keep_device_v6only_and_mapped_addresses(
    loopback: Dict[str, socket.socket],
) -> None:
    seen = {name: entry_of(sock) for name, sock in loopback.items()}
    fields = {name: (e["address"], e["device"], e["scope_id"], e["v6only"])
              for name, e in seen.items()}  # fmt: skip
    assert fields == {
        "device": ("127.0.0.1", "lo", None, None),
        "dual": ("::", None, None, False),
        "v6only": ("::", None, None, True),
        "mapped": ("::ffff:127.0.0.1", None, None, False),
    }


@pytest.mark.parametrize(("name", "address"), [("dual", "127.0.0.1"), ("dual", "0.0.0.0"),
                                               ("mapped", "127.0.0.1"), ("device", "0.0.0.0")])
def test_probe_names_dual_stack_v4_mapped_and_device_holders(
    loopback: Dict[str, socket.socket], name: str, address: str
) -> None:
    sock = loopback[name]
    result = probe_bind("tcp", sock.getsockname()[1], address, Context())
    assert result.status == IN_USE
    assert [h["inode"] for h in result.holders] == [entry_of(sock)["inode"]]
    assert result.notes == []  # no "a connected socket may hold it": the holder is named


def test_a_v6_only_listener_leaves_ipv4_free(loopback: Dict[str, socket.socket]) -> None:
    result = probe_bind("tcp", loopback["v6only"].getsockname()[1], "127.0.0.1", Context())
    assert (result.status, result.holders) == ("free", [])


# --- in a network namespace of the test's own -------------------------------------------

NETNS = textwrap.dedent(
    """
    import json, socket, subprocess, sys
    for args in (["link", "set", "lo", "up"], ["-6", "addr", "add", "fe80::1/64", "dev", "lo",
                 "nodad"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                 ["link", "set", "v0", "up"], ["link", "set", "v1", "up"]):
        subprocess.run(["ip", *args], check=True)
    from netmedic import api, probe
    from netmedic.catalog import load_catalog
    from netmedic.collectors import ports
    from netmedic.context import Context
    from netmedic.diagnose import diagnose

    scoped = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    scoped.bind(("fe80::1", 0, 0, socket.if_nametoindex("lo")))
    scoped.listen()
    udp = []
    for device in (b"v0", b"v1"):  # two binds of 0.0.0.0 on one port, one per device
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
        sock.bind(("0.0.0.0", udp[0].getsockname()[1] if udp else 0))
        udp.append(sock)
    tcp_port, udp_port = scoped.getsockname()[1], udp[0].getsockname()[1]
    spare = socket.socket(socket.AF_INET6)
    spare.bind(("::1", 0))
    free_port = spare.getsockname()[1]
    spare.close()
    facts = {"schema_version": 2, "host": "ns", "collected_at": "2026-12-01T00:00:00Z",
             "duration_ms": 0, "ports": ports.collect(Context()), "errors": []}
    config = {"ports": [{"port": udp_port, "proto": "udp", "owner": "declared.service",
                         "device": "v0"}]}
    found = diagnose(facts, load_catalog(None), config, only=["declared-port-held-by-other"])
    probes = {
        name: probe.probe_bind("tcp", port, address, Context()).to_dict()
        for name, address, port in (
            ("by name", "fe80::1%lo", tcp_port), ("by index", "fe80::1%1", tcp_port),
            ("free", "fe80::1%lo", free_port), ("other device", "fe80::1%v0", tcp_port),
        )
    }
    print(json.dumps({"tcp_port": tcp_port, "udp_port": udp_port, "pid": __import__("os").getpid(),
                      "sockets": facts["ports"]["sockets"], "probes": probes,
                      "findings": [f.to_dict() for f in found.findings]}))
    """
)


@pytest.fixture(scope="module")
def netns() -> Dict[str, Any]:
    """What the agent saw in a fresh network namespace (see NETNS), run once."""
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", NETNS], capture_output=True, text=True,
        timeout=60, check=False, env={"PYTHONPATH": str(AGENT), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def test_facts_keep_the_scope_of_a_link_local_address(netns: Dict[str, Any]) -> None:
    (scoped,) = [s for s in netns["sockets"] if s["port"] == netns["tcp_port"]]
    assert (scoped["address"], scoped["device"], scoped["scope_id"], scoped["v6only"]) == (
        "fe80::1", "lo", 1, True,
    )  # fmt: skip


def test_two_per_device_binds_on_one_port_are_two_sockets_and_no_conflict(
    netns: Dict[str, Any],
) -> None:
    binds = [s for s in netns["sockets"] if s["port"] == netns["udp_port"]]
    assert sorted(s["device"] for s in binds) == ["v0", "v1"]
    assert all(s["owner"]["pid"] == netns["pid"] for s in binds)
    # The owner declared on v0: the holder on v0 is in its way, the one on v1 is not.
    (finding,) = netns["findings"]
    held: List[str] = finding["evidence"]
    assert [line for line in held if "bound to device" in line] == [
        "the holder's socket is bound to device v0, where the declared owner binds v0"
    ]


def test_probe_bind_binds_a_scoped_link_local_address(netns: Dict[str, Any]) -> None:
    probes = netns["probes"]
    for name, address in (("by name", "fe80::1%lo"), ("by index", "fe80::1%1")):
        in_use = probes[name]
        assert (in_use["status"], in_use["address"]) == ("in_use", address)
        assert [h["owner"]["pid"] for h in in_use["holders"]] == [netns["pid"]]
    assert (probes["free"]["status"], probes["free"]["errno"]) == ("free", None)
    # fe80::1 is on lo only: on v0 it is no local address.
    assert probes["other device"]["status"] == "address_not_available"
