"""DNS family: resolv.conf modes from fixture trees, resolver readiness, bounded probe."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx

from netmedic.collectors import dns, units
from netmedic.context import Context

DNS = FIXTURES / "dns"


@pytest.mark.parametrize(
    ("tree", "mode", "nameservers", "target"),
    [
        ("stub", "resolved-stub", ["127.0.0.53"], "/run/systemd/resolve/stub-resolv.conf"),
        (
            "uplink",
            "resolved-uplink",
            ["192.0.2.1", "2001:db8::1"],
            "../run/systemd/resolve/resolv.conf",
        ),
        ("dnsmasq", "dnsmasq", ["127.0.0.1"], None),
        ("static", "static", ["192.0.2.53"], None),
        ("foreign", "foreign", ["192.168.1.1"], None),
        ("dangling", "foreign", [], "/run/NetworkManager/resolv.conf"),
        ("missing", "missing", [], None),
    ],
)
def test_modes(tree: str, mode: str, nameservers: List[str], target: str) -> None:
    facts = dns.collect(fixture_ctx(DNS / tree))
    assert facts["mode"] == mode
    assert facts["resolv_conf"]["nameservers"] == nameservers
    assert facts["resolv_conf"]["symlink_target"] == target


def test_static_file_fields() -> None:
    resolv = dns.collect(fixture_ctx(DNS / "static"))["resolv_conf"]
    assert resolv == {
        "path": "/etc/resolv.conf",
        "exists": True,
        "symlink_target": None,
        "nameservers": ["192.0.2.53"],
        "search": ["lan"],
        "options": ["rotate", "timeout:1"],
        "generated_by": None,
        "error": None,
    }


def test_dangling_symlink_keeps_exists_and_reports_error() -> None:
    resolv = dns.collect(fixture_ctx(DNS / "dangling"))["resolv_conf"]
    assert resolv["exists"] is True
    assert resolv["error"].startswith("FileNotFoundError")


def test_foreign_names_its_manager() -> None:
    assert (
        dns.collect(fixture_ctx(DNS / "foreign"))["resolv_conf"]["generated_by"] == "NetworkManager"
    )


def test_denied_resolv_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.read_text

    def deny(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "resolv.conf":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", deny)
    resolv = dns.collect(fixture_ctx(DNS / "static"))["resolv_conf"]
    assert resolv["exists"] is True
    assert resolv["error"] == "PermissionError: Permission denied"
    assert resolv["nameservers"] == []


def _units_facts(
    extra: Dict[str, Dict[str, str]],
    declared: Sequence[str] = ("early.service", "late.service", "never.service"),
) -> Dict[str, Any]:
    """The units family as facts.py would hand it over in ctx.derived."""
    return units.collect(
        Context(
            run_root=_systemd_root(),
            run=FakeSystemctl(RECORDED_SHOW.read_text(), overrides=extra),
            config={"units": list(declared)},
        )
    )


def _systemd_root() -> Path:
    return FIXTURES / "dns" / "systemd-run"


def test_started_before_dns_from_units_family() -> None:
    unit_facts = _units_facts(
        {
            "dnsmasq.service": {"ActiveEnterTimestampMonotonic": "5000000"},
            "early.service": {"ExecMainStartTimestampMonotonic": "4000000", "LoadState": "loaded"},
            "late.service": {
                "ExecMainStartTimestampMonotonic": "0",
                "ActiveEnterTimestampMonotonic": "6000000",
            },
        }
    )
    calls: List[object] = []
    ctx = fixture_ctx(
        DNS / "dnsmasq", derived={"units": unit_facts}, run=lambda *a: calls.append(a)
    )
    facts = dns.collect(ctx)
    assert calls == []  # never re-collects units
    assert facts["resolver"] == {
        "unit": "dnsmasq.service",
        "active_state": "active",
        "usable_since_monotonic_us": 5000000,
    }
    assert facts["units"] == {
        "early.service": {"started_monotonic_us": 4000000, "started_before_dns": True},
        "late.service": {"started_monotonic_us": 6000000, "started_before_dns": False},
        "never.service": {"started_monotonic_us": None, "started_before_dns": None},
    }


def test_resolver_units_are_not_judged_against_dns() -> None:
    """dnsmasq holds port 53 (a watched port owner) yet is the resolver itself."""
    unit_facts = _units_facts(
        {
            "dnsmasq.service": {
                "ExecMainStartTimestampMonotonic": "4000000",
                "ActiveEnterTimestampMonotonic": "5000000",
            },
            "systemd-resolved.service": {"ExecMainStartTimestampMonotonic": "3000000"},
            "early.service": {"ExecMainStartTimestampMonotonic": "4500000"},
        },
        declared=["dnsmasq.service", "systemd-resolved.service", "early.service"],
    )
    facts = dns.collect(fixture_ctx(DNS / "dnsmasq", derived={"units": unit_facts}))
    assert facts["units"] == {
        "early.service": {"started_monotonic_us": 4500000, "started_before_dns": True},
    }


def test_static_mode_has_no_reference_point() -> None:
    unit_facts = _units_facts({"early.service": {"ExecMainStartTimestampMonotonic": "4000000"}})
    facts = dns.collect(fixture_ctx(DNS / "static", derived={"units": unit_facts}))
    assert facts["resolver"]["unit"] is None
    assert facts["units"]["early.service"] == {
        "started_monotonic_us": 4000000,
        "started_before_dns": None,
    }


def test_own_batched_call_when_units_not_collected(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "systemd" / "system").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (run / "dnsmasq").mkdir()
    fake = FakeSystemctl(RECORDED_SHOW.read_text())
    facts = dns.collect(fixture_ctx(tmp_path, run=fake, config={"units": ["dbus.service"]}))
    assert len(fake.calls) == 1
    assert fake.calls[0][-2:] == ["dnsmasq.service", "dbus.service"]
    # recorded: dbus ExecMainStart 1005736381 < dnsmasq ActiveEnter 1020852845
    assert facts["units"] == {
        "dbus.service": {"started_monotonic_us": 1005736381, "started_before_dns": True}
    }


def test_probe_resolves_localhost_via_hosts_file() -> None:
    facts = dns.collect(
        Context(etc_root=DNS / "static", config={"dns": {"probe_names": ["localhost"]}})
    )
    (result,) = facts["probe"]["results"]
    assert result["name"] == "localhost"
    assert result["ok"] is True
    assert "127.0.0.1" in result["addresses"]


def test_probe_never_waits_past_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(name: str) -> List[str]:
        time.sleep(5)
        return ["192.0.2.1"]

    monkeypatch.setattr(dns, "resolve", hang)
    started = time.monotonic()
    results = dns.probe(["slow.example"], 0.2)
    assert time.monotonic() - started < 1.0
    assert results == [
        {
            "name": "slow.example",
            "ok": False,
            "addresses": [],
            "error": "timed out after 0.2s",
            "elapsed_ms": None,
        }
    ]


def test_probe_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> List[str]:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(dns, "resolve", fail)
    (result,) = dns.probe(["nx.invalid"], 1.0)
    assert result["ok"] is False
    assert result["error"] == "[Errno -2] Name or service not known"


def test_parse_resolv_conf_docstring_example() -> None:
    text = "# Generated by NetworkManager\nnameserver 127.0.0.53\nsearch lan\n"
    assert dns.parse_resolv_conf(text) == {
        "nameservers": ["127.0.0.53"],
        "search": ["lan"],
        "options": [],
        "generated_by": "NetworkManager",
    }
