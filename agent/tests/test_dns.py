"""DNS family: resolv.conf modes from fixture trees, when DNS was usable (markers from
units facts and recorded journal lines), the units' own logged failures, bounded probe."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest
from conftest import FIXTURES, RECORDED_SHOW, FakeSystemctl, fixture_ctx

from netmedic import journal
from netmedic.collectors import dns, units
from netmedic.context import CommandResult, Context

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
        "usable_since_source": "resolver-active",
        "markers": [
            {
                "source": "resolver-active",
                "unit": "dnsmasq.service",
                "monotonic_us": 5000000,
                "detail": "dnsmasq.service became active",
            }
        ],
    }
    # No journald in this tree: the markers are the units facts' alone.
    assert facts["journal"] == {"available": False, "errors": []}
    assert facts["resolution_failures"] == {}
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


# --- DNS usable since: journal markers and the units' own failures (fixture trees) ---

STANDIN = "multipassd-standin.service"
LOOKALIKE = "lookalike-standin.service"
NOT_FOUND = "Host cdimage.lab.test not found ([Errno -3] Temporary failure in name resolution)"


class JournalTree:
    """Answers ``journalctl ... _SYSTEMD_UNIT=u`` with the tree's ``journal/<u>.json``
    (recorded ``journalctl -o json`` lines), ``systemctl show`` with the recording."""

    def __init__(self, root: Path, show: FakeSystemctl, fail: str = "") -> None:
        self.root, self.show, self.fail = root, show, fail
        self.calls: List[List[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        if argv[0] == "systemctl":
            return self.show(argv, timeout)
        self.calls.append(list(argv))
        if self.fail:
            return CommandResult(1, "", self.fail)
        units = [a.split("=", 1)[1] for a in argv if a.startswith("_SYSTEMD_UNIT=")]
        files = [self.root / "journal" / f"{unit}.json" for unit in units]
        return CommandResult(0, "".join(f.read_text() for f in files if f.exists()), "")


def _late_upstream(
    declared: Sequence[Any] = (
        {"name": STANDIN, "dns_gate_names": ["cdimage.lab.test"]},
        {"name": LOOKALIKE, "dns_gate_names": ["cdimage.lab.test"]},
    ),
    **overrides: Dict[str, str],
) -> Context:
    """The field variant, recorded in a lab container (journal/*.json, and the units'
    times below): dnsmasq forwarding to 192.0.2.53 before that address existed, the
    stand-in started after dnsmasq and logged the failure, the look-alike started 7 s
    later once the upstream answered."""
    tree = DNS / "late-upstream"
    props = {
        "dnsmasq.service": {"ExecMainStartTimestampMonotonic": "5281553605",
                            "ActiveEnterTimestampMonotonic": "5281557471"},
        STANDIN: {"LoadState": "loaded", "ActiveState": "active",
                  "ExecMainStartTimestampMonotonic": "5281564529"},
        LOOKALIKE: {"LoadState": "loaded", "ActiveState": "active",
                    "ExecMainStartTimestampMonotonic": "5288562517"},
    }  # fmt: skip
    for unit, extra in overrides.items():
        props.setdefault(unit, {}).update(extra)
    runner = JournalTree(tree, FakeSystemctl(RECORDED_SHOW.read_text(), overrides=props))
    config = {"units": list(declared)}
    unit_facts = units.collect(Context(run_root=tree / "run", run=runner, config=config))
    return fixture_ctx(tree, run=runner, config=config, derived={"units": unit_facts},
                       clock=lambda: 1796592600.0, monotonic=lambda: 5300.0)  # fmt: skip


def _resolves(monkeypatch: pytest.MonkeyPatch, ok: bool) -> None:
    def answer(name: str) -> List[str]:
        if not ok:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        return ["192.0.2.5"]

    monkeypatch.setattr(dns, "resolve", answer)


def test_unit_that_logged_a_failure_while_dns_answers_now_started_before_dns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolves(monkeypatch, True)
    ctx = _late_upstream()
    facts = dns.collect(ctx)
    # The resolver was up (and had its upstream configured) before the daemon started:
    # the markers alone would say "after DNS". Its own line says otherwise.
    assert facts["resolver"]["usable_since_monotonic_us"] == 5281557471
    assert [m["source"] for m in facts["resolver"]["markers"]] == [
        "resolver-upstream",
        "resolver-active",
    ]
    assert facts["resolver"]["markers"][0]["detail"] == (
        "dnsmasq.service: using nameserver 192.0.2.53#53"
    )
    assert facts["answers_now"] is True
    assert facts["resolution_failures"] == {
        STANDIN: {
            "monotonic_us": 5281606536,
            "message": f'multipassd-standin: Remote "" is unknown or unreachable: {NOT_FOUND}',
            "count": 2,
        }
    }
    assert facts["units"][STANDIN] == {
        "started_monotonic_us": 5281564529,
        "started_before_dns": True,
    }
    # The healthy look-alike: started after DNS answered, logged no failure.
    assert facts["units"][LOOKALIKE] == {
        "started_monotonic_us": 5288562517,
        "started_before_dns": False,
    }
    assert facts["journal"] == {"available": True, "errors": []}


def test_journal_reads_are_bounded_and_per_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves(monkeypatch, True)
    ctx = _late_upstream()
    dns.collect(ctx)
    runner: JournalTree = ctx.run  # type: ignore[assignment]
    base = ["journalctl", "--no-pager", "-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT", "-b"]
    # The resolver's window: a second before its main process, 10 minutes on (+1 s);
    # each unit's: a second before its start (journalctl's --since has 1 s steps).
    resolver = ["--since", "@1796592579", "--until", "@1796593181"]
    assert runner.calls == [
        [*base, "-n", "2000", *resolver, "_SYSTEMD_UNIT=dnsmasq.service"],
        [*base, "-n", "500", "--since", "@1796592580", f"_SYSTEMD_UNIT={STANDIN}"],
        [*base, "-n", "500", "--since", "@1796592587", f"_SYSTEMD_UNIT={LOOKALIKE}"],
    ]


def test_failure_while_dns_still_fails_is_not_a_stale_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS down now: a restart would not help, so the failure is reported, not judged."""
    _resolves(monkeypatch, False)
    facts = dns.collect(_late_upstream())
    assert facts["answers_now"] is False
    assert STANDIN in facts["resolution_failures"]
    assert facts["units"][STANDIN]["started_before_dns"] is False


def test_unit_restarted_after_its_failure_is_not_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves(monkeypatch, True)
    facts = dns.collect(
        _late_upstream(**{STANDIN: {"ExecMainStartTimestampMonotonic": "5289000000"}})
    )
    assert facts["resolution_failures"] == {}
    assert facts["units"][STANDIN]["started_before_dns"] is False


def test_a_unit_own_failure_patterns_replace_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves(monkeypatch, True)
    declared = [{"name": STANDIN, "dns_gate_names": ["cdimage.lab.test"],
                 "dns_failure_patterns": ["^Could not update manifest"]}]  # fmt: skip
    facts = dns.collect(_late_upstream(declared))
    assert facts["resolution_failures"][STANDIN]["count"] == 1
    assert facts["resolution_failures"][STANDIN]["message"].startswith("Could not update manifest")


def test_a_bad_failure_pattern_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves(monkeypatch, True)
    declared = [{"name": STANDIN, "dns_gate_names": ["x"], "dns_failure_patterns": ["("]}]
    facts = dns.collect(_late_upstream(declared))
    assert facts["resolution_failures"] == {}
    assert facts["journal"]["errors"] == [
        f"{STANDIN}: missing ), unterminated subpattern at position 0"
    ]
    # Without its own evidence, the markers decide: it started after the resolver.
    assert facts["units"][STANDIN]["started_before_dns"] is False


def test_a_failing_journalctl_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves(monkeypatch, True)
    ctx = _late_upstream()
    runner: JournalTree = ctx.run  # type: ignore[assignment]
    runner.fail = "Failed to open journal: Permission denied"
    facts = dns.collect(ctx)
    assert facts["journal"]["errors"][0] == (
        "journalctl exited 1: Failed to open journal: Permission denied"
    )
    assert facts["resolver"]["usable_since_source"] == "resolver-active"  # units facts still count


def test_probe_asks_the_declared_gate_names_too() -> None:
    gated = {"name": "a.service", "dns_gate_names": ["localhost", "ip6-localhost"]}
    config = {"dns": {"probe_names": ["localhost"]}, "units": [gated]}
    facts = dns.collect(Context(etc_root=DNS / "static", run_root=DNS / "static", config=config))
    assert [r["name"] for r in facts["probe"]["results"]] == ["localhost", "ip6-localhost"]


def test_resolver_markers_from_its_journal_and_the_network_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """systemd-resolved up at 3 s; NetworkManager connected at 12.39 s and set the link's
    DNS at 12.4 s; the upstream did not answer at 13.9 s; a degraded line at 700 s is
    outside the boot window. multipassd started at 8 s, network-online.target at 9 s.
    Not recorded (no desktop here): the lines as resolved 252 and NetworkManager word them
    (the strings of the bookworm binaries, docs research §4), in journalctl's JSON."""
    _resolves(monkeypatch, True)
    tree = DNS / "late-link"
    active = {"LoadState": "loaded", "ActiveState": "active"}
    props = {
        "systemd-resolved.service": {**active, "ActiveEnterTimestampMonotonic": "3000000"},
        "NetworkManager.service": {**active, "ActiveEnterTimestampMonotonic": "2000000"},
        "NetworkManager-wait-online.service": {"LoadState": "loaded", "UnitFileState": "enabled"},
        "network-online.target": {**active, "ActiveEnterTimestampMonotonic": "9000000"},
        "snap.multipass.multipassd.service": {
            **active,
            "ExecMainStartTimestampMonotonic": "8000000",
        },
    }
    runner = JournalTree(tree, FakeSystemctl(RECORDED_SHOW.read_text(), overrides=props))
    config = {"units": ["snap.multipass.multipassd.service"]}
    unit_facts = units.collect(Context(run_root=tree / "run", run=runner, config=config))
    ctx = fixture_ctx(tree, run=runner, config=config, derived={"units": unit_facts})
    facts = dns.collect(ctx)
    assert facts["mode"] == "resolved-stub"
    assert [(m["source"], m["monotonic_us"]) for m in facts["resolver"]["markers"]] == [
        ("resolver-active", 3000000),
        ("network-online", 9000000),
        ("network-connected", 12390000),
        ("resolver-upstream", 12400000),
        ("resolver-unreachable", 13900000),
    ]
    assert facts["resolver"]["usable_since_monotonic_us"] == 13900000
    assert facts["resolver"]["markers"][1]["detail"] == (
        "network-online.target reached (NetworkManager-wait-online.service enabled)"
    )
    assert facts["units"]["snap.multipass.multipassd.service"]["started_before_dns"] is True


def test_no_journald_no_journal_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _resolves(monkeypatch, True)
    ctx = _late_upstream()
    runner: JournalTree = ctx.run  # type: ignore[assignment]
    facts = dns.collect(ctx.replace(run_root=tmp_path))  # no /run/systemd/journal/socket
    assert runner.calls == []
    assert facts["journal"] == {"available": False, "errors": []}


def test_parse_journal_reads_byte_messages_and_skips_stampless_lines() -> None:
    text = (
        '{"_SYSTEMD_UNIT":"a.service","__MONOTONIC_TIMESTAMP":"7","MESSAGE":[104,105]}\n'
        '{"_SYSTEMD_UNIT":"a.service","MESSAGE":"no stamp"}\n\n'
        '{"_SYSTEMD_UNIT":"a.service","__MONOTONIC_TIMESTAMP":"9","MESSAGE":null}\n'
    )
    assert journal.parse_journal(text) == [("a.service", 7, "hi")]


def test_epoch_arg_is_a_second_early() -> None:
    ctx = Context(clock=lambda: 1000.0, monotonic=lambda: 10.0)
    assert journal.epoch_arg(ctx, 5000000) == "@994"
