"""Ephemeral family: fixture /proc + sysctl.d trees, exact values; real host; 20k TIME_WAIT cost;
probe spans (Trippy's sequence rule) and the bind check with real sockets."""

from __future__ import annotations

import errno
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from conftest import FIXTURES, fixture_ctx
from hypothesis import given
from hypothesis import strategies as st

from netmedic import probe
from netmedic.catalog import load_catalog
from netmedic.collectors import ephemeral
from netmedic.context import Context
from netmedic.diagnose import diagnose

ROOT = FIXTURES / "ephemeral" / "root"
CONFIG = {
    "ports": [
        {"port": 1900, "proto": "udp", "owner": "airupnp.service"},
        {"port": 40100, "proto": "tcp"},
        {"port": 40200, "proto": "tcp"},
    ],
    "processes": [{"name": "trippy", "match": {"name": "trip"}, "probe_ports": ["40495-40515"]}],
}


@pytest.fixture(autouse=True)
def binds_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixture trees describe another host: their probe ports are not bound on this one."""
    monkeypatch.setattr(probe, "try_bind", lambda *args, **kwargs: None)


def test_fixture_values() -> None:
    facts = ephemeral.collect(fixture_ctx(ROOT, config=CONFIG))
    assert facts["port_range"] == {"low": 40000, "high": 40999, "size": 1000}
    assert facts["reserved_ports"] == [[40100, 40100], [40500, 40509]]
    assert facts["tcp_tw_reuse"] == 1
    assert facts["sockstat"]["tcp"] == {
        "inuse": 12,
        "orphan": 1,
        "tw": 20000,
        "alloc": 15,
        "mem": 9,
    }
    assert facts["sockstat"]["tcp6"] == {"inuse": 4}
    assert facts["sockstat"]["sockets"] == {"used": 20123}
    assert facts["pressure"] == {"used": 20016, "ratio": 20.016}
    assert facts["declared"] == [
        {"source": "ports", "proto": "udp", "ports": [1900, 1900]},
        {"source": "ports", "proto": "tcp", "ports": [40100, 40100]},
        {"source": "ports", "proto": "tcp", "ports": [40200, 40200]},
        {"source": "processes:trippy", "proto": "tcp", "ports": [40495, 40515], "sequence": None},
    ]
    assert facts["declared_unreserved"] == [
        {
            "source": "ports",
            "proto": "tcp",
            "ports": [40200, 40200],
            "unreserved_in_range": [[40200, 40200]],
        },
        {
            "source": "processes:trippy",
            "proto": "tcp",
            "ports": [40495, 40515],
            "sequence": None,
            "unreserved_in_range": [[40495, 40499], [40510, 40515]],
        },
    ]
    # The first 8 ports of the span inside the range are bound (reserved ones too:
    # a reservation does not stop an explicit bind).
    assert facts["probe_binds"] == [
        {
            "source": "processes:trippy",
            "proto": "tcp",
            "address": "0.0.0.0",
            "ports": [40495, 40515],
            "checked": [40495, 40502],
            "failures": [],
            "summary": "",
        }
    ]
    assert facts["sysctl_sources"] == {
        "net.ipv4.ip_local_port_range": {
            "file": "/etc/sysctl.d/60-ports.conf",
            "value": "40000 40999",
            "overrides": ["/usr/lib/sysctl.d/50-default.conf"],
        },
        "net.ipv4.ip_local_reserved_ports": {
            "file": "/run/sysctl.d/70-netmedic.conf",
            "value": "40100,40500-40509",
            "overrides": ["/etc/sysctl.d/60-ports.conf"],
        },
        "net.ipv4.tcp_tw_reuse": {
            "file": "/etc/sysctl.d/99-sysctl.conf",
            "value": "1",
            "overrides": ["/usr/lib/sysctl.d/50-default.conf"],
        },
    }
    assert facts["sysctl_unreadable"] == []


def test_file_order_follows_systemd_sysctl() -> None:
    # /etc/sysctl.d/60-ports.conf shadows /usr/lib/sysctl.d/60-ports.conf; sysctl.conf is
    # not applied twice because 99-sysctl.conf links to it.
    assert ephemeral.sysctl_files(fixture_ctx(ROOT)) == [
        "/usr/lib/sysctl.d/50-default.conf",
        "/etc/sysctl.d/60-ports.conf",
        "/run/sysctl.d/70-netmedic.conf",
        "/etc/sysctl.d/99-sysctl.conf",
    ]


def test_sysctl_conf_applies_last_without_debian_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(ROOT, root, symlinks=True)
    (root / "etc" / "sysctl.d" / "99-sysctl.conf").unlink()
    assert ephemeral.sysctl_files(fixture_ctx(root))[-1] == "/etc/sysctl.conf"


def test_missing_sockstat6_and_unreadable_sysctl_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    shutil.copytree(ROOT, root, symlinks=True)
    (root / "proc" / "net" / "sockstat6").unlink()
    real = Path.read_text

    def deny(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "70-netmedic.conf":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", deny)
    facts = ephemeral.collect(fixture_ctx(root))
    assert "tcp6" not in facts["sockstat"]
    assert facts["pressure"]["used"] == 20012
    assert facts["sysctl_unreadable"] == [
        {"path": "/run/sysctl.d/70-netmedic.conf", "error": "PermissionError: Permission denied"}
    ]
    assert (
        facts["sysctl_sources"]["net.ipv4.ip_local_reserved_ports"]["file"]
        == "/etc/sysctl.d/60-ports.conf"
    )


def test_missing_range_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ephemeral.collect(fixture_ctx(tmp_path))


def test_real_host_matches_proc() -> None:
    facts = ephemeral.collect(Context())
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert facts["port_range"] == {"low": low, "high": high, "size": high - low + 1}
    assert facts["tcp_tw_reuse"] == int(Path("/proc/sys/net/ipv4/tcp_tw_reuse").read_text())


def test_cost_is_independent_of_time_wait_count() -> None:
    """Counters, not socket lists: the fixture claims 20,000 TIME_WAIT sockets."""
    ctx = fixture_ctx(ROOT, config=CONFIG)
    started = time.perf_counter()
    for _ in range(20):
        ephemeral.collect(ctx)
    assert (time.perf_counter() - started) / 20 < 0.05


@given(st.lists(st.tuples(st.integers(1, 65535), st.integers(0, 50)), max_size=8))
def test_parse_port_ranges_roundtrip(spans: list) -> None:  # type: ignore[type-arg]
    ranges = [(low, min(65535, low + width)) for low, width in spans]
    text = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)
    assert ephemeral.parse_port_ranges(text) == ranges


@given(
    st.integers(1, 2000),
    st.integers(0, 200),
    st.lists(st.tuples(st.integers(1, 2200), st.integers(0, 30)), max_size=5),
)
def test_exposed_is_exactly_the_unreserved_in_range_ports(low: int, width: int, res: list) -> None:  # type: ignore[type-arg]
    span = (low, low + width)
    port_range = (500, 1500)
    reserved = sorted((a, a + w) for a, w in res)
    pieces = ephemeral.exposed(span, port_range, reserved)
    got = {p for a, b in pieces for p in range(a, b + 1)}
    want = {
        p
        for p in range(span[0], span[1] + 1)
        if port_range[0] <= p <= port_range[1] and not any(a <= p <= b for a, b in reserved)
    }
    assert got == want


# --- probe spans: Trippy's sequence rule (research-19 §3) -----------------------------


@pytest.mark.parametrize(
    ("initial", "per_round", "rounds", "span"),
    [
        (33434, 64, 10, (33434, 34073)),  # report mode: 10 cycles, no skips
        (33434, 64, None, (33434, 65085)),  # TUI: unbounded, wraps after 65022
        (33434, 512, None, (33434, 65533)),  # the hard bound
        (61000, 64, None, (61000, 65085)),  # started above the default range
        (64511, 512, 1, (64511, 65022)),  # the highest initial sequence Trippy takes
    ],
)
def test_sequence_span(initial: int, per_round: int, rounds: Optional[int], span: Any) -> None:
    assert ephemeral.sequence_span(initial, per_round, rounds) == span


@given(st.integers(1, 64511), st.integers(1, 512), st.one_of(st.none(), st.integers(1, 10**6)))
def test_sequence_span_stays_within_the_port_space(
    initial: int, per_round: int, rounds: Any
) -> None:
    low, high = ephemeral.sequence_span(initial, per_round, rounds)
    assert low == initial and low <= high <= 65533
    if rounds is not None:
        assert high <= initial + rounds * per_round - 1


def test_probe_sequence_and_remap_targets_are_declared() -> None:
    config = {
        "ports": [{"port": 18080, "proto": "tcp", "remap": {"port": 40300}}],
        "processes": [
            {"name": "trippy", "probe_sequence": {"initial": 40400, "per_round": 20, "rounds": 3}},
            {"name": "above", "probe_sequence": {"initial": 41000, "per_round": 64}},
        ],
    }
    facts = ephemeral.collect(fixture_ctx(ROOT, config=config))
    assert [(d["source"], d["ports"]) for d in facts["declared"]] == [
        ("ports", [18080, 18080]),
        ("ports", [40300, 40300]),
        ("processes:trippy", [40400, 40459]),
        ("processes:above", [41000, 65085]),
    ]
    assert facts["declared"][2]["sequence"] == {
        "initial": 40400,
        "per_round": 20,
        "rounds": 3,
        "above_range": 41000,  # the fixture's range ends at 40999
    }
    # Outside the range (18080, 41000+): neither exposed nor bound.
    assert [d["source"] for d in facts["declared_unreserved"]] == ["ports", "processes:trippy"]
    assert [b["source"] for b in facts["probe_binds"]] == ["processes:trippy"]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"probe_sequence": {"initial": 64512, "per_round": 8}}, "initial must be a whole number"),
        ({"probe_sequence": {"initial": 33434, "per_round": 513}}, "per_round must be a whole"),
        ({"probe_sequence": {"initial": "33434", "per_round": 8}}, "got '33434'"),
        ({"probe_sequence": [33434]}, "probe_sequence must be a mapping"),
        ({"probe_ports": ["40495"], "probe_check": 65}, "probe_check must be a whole number"),
        ({"probe_ports": ["40495"], "probe_address": "myhost"}, "probe_address: --addr must be"),
    ],
)
def test_bad_probe_declaration_names_the_key(profile: Dict[str, Any], message: str) -> None:
    config = {"processes": [{"name": "t", **profile}]}
    with pytest.raises(ValueError, match=message) as raised:
        ephemeral.collect(fixture_ctx(ROOT, config=config))
    assert "processes[t]" in str(raised.value) or "processes:t" in str(raised.value)


# --- the bind check with real sockets on this host --------------------------------------


@pytest.fixture
def real_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the autouse fixture's fake bind: these tests bind for real


@pytest.fixture
def sockets() -> Iterator[List[socket.socket]]:
    opened: List[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _ephemeral_port() -> int:
    """A port the kernel picks from this host's ephemeral range, free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _profile(port: int, address: str = "127.0.0.1") -> Dict[str, Any]:
    return {
        "processes": [
            {"name": "trippy", "probe_ports": [f"{port}-{port}"], "probe_address": address}
        ]
    }


def _connect_from(port: int, sockets: List[socket.socket]) -> socket.socket:
    """An outgoing connection whose source port is ``port`` (as a client's would be)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.socket()
    client.bind(("127.0.0.1", port))
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    sockets.extend([server, client, accepted])
    return client


def _binds(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    result: List[Dict[str, Any]] = ephemeral.collect(Context(config=config))["probe_binds"]
    return result


def test_free_probe_port_binds(real_binds: None) -> None:
    port = _ephemeral_port()
    (entry,) = _binds(_profile(port))
    assert entry["checked"] == [port, port] and entry["failures"] == []


def test_port_held_by_an_outgoing_connection_names_the_process(
    real_binds: None, sockets: List[socket.socket]
) -> None:
    port = _ephemeral_port()
    _connect_from(port, sockets)
    (entry,) = _binds(_profile(port))
    (failure,) = entry["failures"]
    assert (failure["status"], failure["errno"]) == ("in_use", "EADDRINUSE")
    assert any(
        holder.startswith("pid ") and holder.endswith("on 127.0.0.1, ESTABLISHED")
        for holder in failure["holders"]
    ), failure["holders"]
    assert entry["summary"].startswith(f"{port}/tcp EADDRINUSE on 127.0.0.1: held by pid ")


def test_port_held_by_time_wait_has_no_process(
    real_binds: None, sockets: List[socket.socket]
) -> None:
    port = _ephemeral_port()
    client = _connect_from(port, sockets)
    client.close()  # the side that closes first keeps the TIME_WAIT
    sockets[-1].close()
    time.sleep(0.2)
    (entry,) = _binds(_profile(port))
    (failure,) = entry["failures"]
    assert failure["errno"] == "EADDRINUSE"
    assert failure["holders"] == ["a TIME_WAIT socket on 127.0.0.1 (no process; freed within 60 s)"]


def test_non_local_address_is_not_available_with_the_caveat(real_binds: None) -> None:
    port = _ephemeral_port()
    (entry,) = _binds(_profile(port, "192.0.2.1"))  # TEST-NET-1: never local, no traffic
    (failure,) = entry["failures"]
    assert (failure["status"], failure["errno"]) == ("address_not_available", "EADDRNOTAVAIL")
    assert failure["notes"] == [probe.NOT_EXHAUSTION_NOTE]


def test_bind_check_binds_as_the_tracer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[Any] = []

    def record(*args: Any, **kwargs: Any) -> Optional[OSError]:
        calls.append((args, kwargs))
        return OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(probe, "try_bind", record)
    monkeypatch.setattr(ephemeral, "probe_holders", lambda *a: {40495: ["x"], 40496: ["x"]})
    config = {"processes": [{"name": "t", "probe_ports": ["40495-40515"], "probe_check": 2}]}
    (entry,) = ephemeral.collect(fixture_ctx(ROOT, config=config))["probe_binds"]
    assert calls == [
        (("tcp", "0.0.0.0", 40495), {"reuse_addr": False, "reuse_port": True}),
        (("tcp", "0.0.0.0", 40496), {"reuse_addr": False, "reuse_port": True}),
    ]
    assert entry["summary"] == "40495-40496/tcp EADDRINUSE on 0.0.0.0: held by x"


# --- the catalog on these facts ---------------------------------------------------------


CATALOG = load_catalog(None)


def _findings(facts: Dict[str, Any]) -> Dict[str, Any]:
    doc = {"ephemeral": facts}
    return {(f.id, f.subject): f for f in diagnose(doc, CATALOG, {}).findings}


def test_bind_failure_and_exposure_are_two_findings_of_one_span(
    real_binds: None, sockets: List[socket.socket]
) -> None:
    port = _ephemeral_port()
    _connect_from(port, sockets)
    found = _findings(ephemeral.collect(Context(config=_profile(port))))
    subject = f"{port}-{port}/tcp"
    bind = found[("declared-probe-port-bind-fails", subject)]
    assert bind.evidence[0].startswith(
        f"processes:trippy: of its probe ports {port}-{port} (span {port}-{port}), binding as"
        f" the tracer does fails: {port}/tcp EADDRINUSE on 127.0.0.1: held by pid "
    )
    assert bind.evidence[1].startswith("EADDRINUSE: another socket holds the port")
    assert bind.role_vars == {"ephemeral_ports_reserved": [[port, port]]}
    assert ("declared-port-in-ephemeral-range", subject) in found


def test_sequence_span_evidence_recommends_starting_above_the_range() -> None:
    config = {
        "processes": [{"name": "trippy", "probe_sequence": {"initial": 40400, "per_round": 8}}]
    }
    found = _findings(ephemeral.collect(fixture_ctx(ROOT, config=config)))
    exposure = found[("declared-port-in-ephemeral-range", "40400-65029/tcp")]
    assert exposure.evidence[1:] == [
        "processes:trippy binds its sequence numbers as source ports: initial 40400, at most 8"
        " per round, unbounded rounds give 40400-65029",
        "to keep the range whole instead, start the sequence above it (Trippy: --initial-sequence"
        " 41000) and declare probe_sequence.initial: 41000",
    ]
    assert exposure.role_vars == {"ephemeral_ports_reserved": [[40400, 65029]]}


def test_span_outside_the_range_and_free_ports_give_no_finding() -> None:
    config = {
        "processes": [
            {"name": "above", "probe_sequence": {"initial": 41000, "per_round": 64}},
            {"name": "reserved", "probe_ports": ["40500-40509"]},  # reserved in the fixture
        ]
    }
    facts = ephemeral.collect(fixture_ctx(ROOT, config=config))
    ids = {key[0] for key in _findings(facts)}
    assert ids <= {"ephemeral-port-pressure"}, ids  # the fixture's pressure is real


def test_pressure_finding_hands_the_range_and_every_declared_span() -> None:
    found = _findings(ephemeral.collect(fixture_ctx(ROOT, config=CONFIG)))
    pressure = found[("ephemeral-port-pressure", "net.ipv4.ip_local_port_range")]
    assert pressure.role_vars == {
        "ephemeral_ports_range": {"low": 15000, "high": 60999},
        "ephemeral_ports_reserved": [[1900, 1900], [40100, 40100], [40200, 40200], [40495, 40515]],
    }
