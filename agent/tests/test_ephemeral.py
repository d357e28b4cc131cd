"""Ephemeral family: fixture /proc + sysctl.d trees, exact values; real host; 20k TIME_WAIT cost."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, fixture_ctx
from hypothesis import given
from hypothesis import strategies as st

from netmedic.collectors import ephemeral
from netmedic.context import Context

ROOT = FIXTURES / "ephemeral" / "root"
CONFIG = {
    "ports": [
        {"port": 1900, "proto": "udp", "owner": "airupnp.service"},
        {"port": 40100, "proto": "tcp"},
        {"port": 40200, "proto": "tcp"},
    ],
    "processes": [{"name": "trippy", "match": {"name": "trip"}, "probe_ports": ["40495-40515"]}],
}


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
            "unreserved_in_range": [[40495, 40499], [40510, 40515]],
        },
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
