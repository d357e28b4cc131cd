"""Units family against systemctl output recorded in a bookworm systemd lab container."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RECORDED_SHOW, FakeSystemctl

from netmedic.collectors import units
from netmedic.context import CommandResult, Context


def test_parse_show_splits_recorded_blocks() -> None:
    blocks = units.parse_show(RECORDED_SHOW.read_text())
    assert [b["Id"] for b in blocks] == [
        "dbus.service",
        "dnsmasq.service",
        "nonexistent.service",
        "network-online.target",
        "systemd-networkd-wait-online.service",
        "systemd-networkd.service",
        "systemd-resolved.service",
    ]
    # a target has no ExecMain*/NRestarts properties at all
    assert "NRestarts" not in blocks[3]


def test_unit_state_of_recorded_dnsmasq() -> None:
    dnsmasq = units.parse_show(RECORDED_SHOW.read_text())[1]
    assert units.unit_state(dnsmasq) == {
        "id": "dnsmasq.service",
        "load_state": "loaded",
        "active_state": "active",
        "sub_state": "running",
        "unit_file_state": "disabled",
        "fragment_path": "/lib/systemd/system/dnsmasq.service",
        "after": [
            "network-online.target",
            "sysinit.target",
            "systemd-journald.socket",
            "nss-lookup.target",
            "network.target",
            "basic.target",
            "system.slice",
        ],
        "wants": ["network-online.target", "nss-lookup.target"],
        "requires": ["system.slice", "network.target", "sysinit.target"],
        "drop_in_paths": ["/etc/systemd/system/dnsmasq.service.d/10-netmedic.conf"],
        "exec_main_start_monotonic_us": 1020501779,
        "active_enter_monotonic_us": 1020852845,
        "n_restarts": 0,
        "need_daemon_reload": True,
        "after_network_online": True,
        "wants_network_online": True,
        "after_nss_lookup": True,
    }


def test_not_found_unit_has_nulls() -> None:
    missing = units.unit_state(units.parse_show(RECORDED_SHOW.read_text())[2])
    assert missing["load_state"] == "not-found"
    assert missing["fragment_path"] is None
    assert missing["unit_file_state"] is None
    assert missing["exec_main_start_monotonic_us"] is None
    assert missing["active_enter_monotonic_us"] is None
    assert missing["need_daemon_reload"] is False


def test_collect_makes_one_batched_call(
    systemd_run: Path, recorded_systemctl: FakeSystemctl
) -> None:
    ctx = Context(
        run_root=systemd_run,
        run=recorded_systemctl,
        config={"units": ["dbus.service", "bad name.service", "dnsmasq.service"]},
        related_units=("dnsmasq.service", "nonexistent.service"),
    )
    facts = units.collect(ctx)
    assert len(recorded_systemctl.calls) == 1
    argv = recorded_systemctl.calls[0]
    assert argv[2] == "--no-pager"
    assert argv[3] == "--property=" + ",".join(units.PROPERTIES)
    assert facts["systemd"] == "running"
    assert facts["invalid_names"] == ["bad name.service"]
    assert facts["requested"][:3] == ["dbus.service", "dnsmasq.service", "nonexistent.service"]
    assert facts["units"]["dnsmasq.service"]["reasons"] == ["config", "port_owner", "resolver"]
    assert facts["units"]["nonexistent.service"]["reasons"] == ["port_owner"]
    assert facts["units"]["dbus.service"]["after_network_online"] is False
    assert facts["network"] == {
        # dnsmasq's drop-in pulled network-online.target in when it started
        "network_online_state": "active",
        "network_online_active_enter_monotonic_us": 1019841374,
        "wait_online_enabled": [],
        "network_managers_active": [],
        "wait_online_available": [],
    }


def test_wait_online_and_manager_detection(systemd_run: Path) -> None:
    fake = FakeSystemctl(
        RECORDED_SHOW.read_text(),
        overrides={
            "NetworkManager.service": {"LoadState": "loaded", "ActiveState": "active"},
            "NetworkManager-wait-online.service": {
                "UnitFileState": "enabled",
                "LoadState": "loaded",
            },
            "network-online.target": {
                "ActiveState": "active",
                "ActiveEnterTimestampMonotonic": "9000000",
            },
        },
    )
    facts = units.collect(Context(run_root=systemd_run, run=fake))
    assert facts["network"] == {
        "network_online_state": "active",
        "network_online_active_enter_monotonic_us": 9000000,
        "wait_online_enabled": ["NetworkManager-wait-online.service"],
        "network_managers_active": ["NetworkManager"],
        "wait_online_available": ["NetworkManager-wait-online.service"],
    }


def test_no_systemd_reports_not_running_without_calling(tmp_path: Path) -> None:
    def never(argv: object, timeout: float) -> CommandResult:
        raise AssertionError("systemctl must not run without systemd")

    facts = units.collect(Context(run_root=tmp_path, run=never, config={"units": ["a.service"]}))
    assert facts["systemd"] == "not running"
    assert facts["units"] == {}
    assert facts["network"] is None
    assert facts["requested"][0] == "a.service"


def test_failing_systemctl_raises_for_facts_to_report(systemd_run: Path) -> None:
    def failing(argv: object, timeout: float) -> CommandResult:
        return CommandResult(1, "", "Failed to connect to bus: No such file or directory")

    with pytest.raises(units.CommandFailed, match="Failed to connect to bus"):
        units.collect(Context(run_root=systemd_run, run=failing))


def test_block_count_mismatch_is_an_error(systemd_run: Path) -> None:
    def short(argv: object, timeout: float) -> CommandResult:
        return CommandResult(0, "Id=a.service\n", "")

    ctx = Context(run_root=systemd_run, run=short)
    with pytest.raises(units.CommandFailed, match="blocks"):
        units.collect(ctx)


def test_real_host_without_systemd_pid1() -> None:
    """This CI box has no systemd as PID 1: the real collector must say so."""
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is running here")
    assert units.collect(Context())["systemd"] == "not running"


def test_declared_units_are_names_or_mappings(
    systemd_run: Path, recorded_systemctl: FakeSystemctl
) -> None:
    """config units: a plain name reads {name}; a mapping keeps every key (the role's too)."""
    dbus = {
        "name": "dbus.service",
        "dns_gate_names": ["cdimage.lab.test"],
        "refresh_command": "busctl call ...",
    }
    config = {"units": ["dnsmasq.service", dbus, {"name": "bad name"}, {"gate": "x"}, 5]}
    declared, refused = units.declared_units(Context(config=config))
    assert declared == {"dnsmasq.service": {"name": "dnsmasq.service"}, "dbus.service": dbus}
    assert refused == ["bad name", "None", "5"]
    facts = units.collect(Context(run_root=systemd_run, run=recorded_systemctl, config=config))
    assert facts["invalid_names"] == ["bad name", "None", "5"]
    assert facts["units"]["dbus.service"]["declared"] == dbus
    assert facts["units"]["dbus.service"]["reasons"] == ["config"]
    # Not declared (a resolver, the plumbing): no declaration to hand a role.
    assert facts["units"]["network-online.target"]["declared"] is None
