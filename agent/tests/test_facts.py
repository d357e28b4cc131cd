"""facts.gather: assembly, ordering, derived data, error isolation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx

import netmedic
from netmedic import facts
from netmedic.context import Context


def _recording_loader(calls: List[str], results: Dict[str, Any]) -> Callable[[str], Any]:
    def load(family: str) -> Callable[[Context], Dict[str, Any]]:
        def collect(ctx: Context) -> Dict[str, Any]:
            calls.append(family)
            results[family] = ctx
            if family == "ports":
                return {
                    "source": "netlink",
                    "sockets": [{"owner": {"unit": "plex.service"}}, {"owner": None}],
                }
            return {"family": family}

        return collect

    return load


def test_order_and_derived_data() -> None:
    calls: List[str] = []
    seen: Dict[str, Any] = {}
    doc = facts.gather(Context(config={"units": []}), load=_recording_loader(calls, seen))
    assert calls == list(facts.FAMILIES)
    assert seen["units"].related_units == ["plex.service"]
    assert seen["dns"].derived["units"] == {"family": "units"}
    assert set(seen["channels"].derived) == {"ports", "units", "dns", "processes", "ephemeral"}
    assert doc["errors"] == []
    assert list(doc)[:5] == [
        "schema_version", "agent_version", "host", "collected_at", "duration_ms",
    ]  # fmt: skip
    assert doc["agent_version"] == netmedic.__version__


def test_a_raising_collector_becomes_an_error_entry() -> None:
    def load(family: str) -> Callable[[Context], Dict[str, Any]]:
        def collect(ctx: Context) -> Dict[str, Any]:
            if family == "dns":
                raise PermissionError(13, "Permission denied", "/etc/resolv.conf")
            return {"ok": family}

        return collect

    doc = facts.gather(Context(config={"units": []}), load=load)
    assert doc["dns"] is None
    assert doc["errors"] == [
        {
            "family": "dns",
            "type": "PermissionError",
            "message": "[Errno 13] Permission denied: '/etc/resolv.conf'",
        }
    ]
    assert doc["processes"] == {"ok": "processes"}


def test_a_bug_is_not_swallowed() -> None:
    def load(family: str) -> Callable[[Context], Dict[str, Any]]:
        def collect(ctx: Context) -> Dict[str, Any]:
            raise ZeroDivisionError("bug")

        return collect

    with pytest.raises(ZeroDivisionError):
        facts.gather(Context(only=["dns"], config={"units": []}), load=load)


def test_a_failed_command_becomes_an_error_entry() -> None:
    import subprocess  # noqa: PLC0415 - the collector's command runner imports it on use

    def load(family: str) -> Callable[[Context], Dict[str, Any]]:
        def collect(ctx: Context) -> Dict[str, Any]:
            raise subprocess.TimeoutExpired(["systemctl", "show"], 5)

        return collect

    doc = facts.gather(Context(only=["units"], config={"units": []}), load=load)
    assert doc["units"] is None
    assert doc["errors"][0]["type"] == "TimeoutExpired"


def test_only_selects_and_orders() -> None:
    assert facts.select_families(["dns", "ports"]) == ("ports", "dns")
    with pytest.raises(ValueError, match="unknown fact families: nope"):
        facts.select_families(["nope"])


def test_collected_at_and_duration_from_injected_clocks() -> None:
    ticks = iter([10.0, 10.25])
    doc = facts.gather(
        Context(only=["channels"], clock=lambda: 1714557600.0, monotonic=lambda: next(ticks)),
    )
    assert doc["collected_at"] == "2024-05-01T10:00:00Z"
    assert doc["duration_ms"] == 250


def test_gather_reads_no_config_of_its_own() -> None:
    """The config is the caller's: a malformed host file is not gather's to read."""
    sys.modules.pop("yaml", None)
    doc = facts.gather(fixture_ctx(FIXTURES / "config" / "malformed", only=["processes"]))
    assert doc["processes"] == {"profiles": []}
    assert doc["errors"] == []
    assert "yaml" not in sys.modules


def test_full_pipeline_with_recorded_systemctl(tmp_path: Path) -> None:
    """units (fake systemctl) → dns (derived units) with the real collectors."""
    root = tmp_path
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    (root / "run" / "dnsmasq").mkdir()
    (root / "etc").mkdir()
    (root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    fake = FakeSystemctl(RECORDED_SHOW.read_text())
    doc = facts.gather(
        fixture_ctx(root, run=fake, only=["units", "dns"], config={"units": ["dbus.service"]})
    )
    assert doc["errors"] == []
    assert len(fake.calls) == 1
    assert doc["dns"]["mode"] == "dnsmasq"
    assert doc["dns"]["units"] == {
        "dbus.service": {"started_monotonic_us": 1005736381, "started_before_dns": True}
    }
