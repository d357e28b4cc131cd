"""plugins/filter/ephemeral_ports.py, the ephemeral_ports role's filters: port entries in, the
kernel's list format out.

``sysctl_sources`` below is shaped like the agent's ``ephemeral.sysctl_sources``
(collectors/ephemeral.py): per key the winning file, its value and the files it overrode.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from ansible_collections.netmedic.remediation.plugins.filter import ephemeral_ports as ep

VAR = "ephemeral_ports_reserved"
DROPIN = "/etc/sysctl.d/60-netmedic-ephemeral.conf"
RANGE = "net.ipv4.ip_local_port_range"
RESERVED = "net.ipv4.ip_local_reserved_ports"
TW_REUSE = "net.ipv4.tcp_tw_reuse"


def winner(file: str, value: str, overrides: Optional[List[str]] = None) -> Dict[str, Any]:
    """One key's entry in the agent's ``sysctl_sources``."""
    return {"file": file, "value": value, "overrides": overrides or []}


# --- port_entry_errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [33434, "40000-40010", " 40020 - 40030 ", "40040", [40050, 40060], (40070, 40070)],
        [1024, 65535, "1024-65535"],
        [],
        None,  # the variable left unset
    ],
)
def test_good_entries_have_no_errors(entries: Any) -> None:
    assert ep.port_entry_errors(entries, VAR) == []


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("200-100", "has its low end above its high end"),
        ([40010, 40000], "has its low end above its high end"),
        ("abc", "is neither a port number nor a 'low-high' range"),
        ("1-2-3", "is neither a port number nor a 'low-high' range"),
        ("-5", "is neither a port number nor a 'low-high' range"),
        ("", "is neither a port number nor a 'low-high' range"),
        ("0", "is outside 1-65535"),
        (0, "is outside 1-65535"),
        (70000, "is outside 1-65535"),
        (65536, "is outside 1-65535"),
        ("40000-70000", "is outside 1-65535"),
        # A YAML ``true`` is not port 1; a float is not a port either.
        (True, "is neither a port number nor a 'low-high' range"),
        (1.5, "is neither a port number nor a 'low-high' range"),
        (None, "is neither a port number nor a 'low-high' range"),
        ([1, 2, 3], "is neither a port number nor a 'low-high' range"),
        # A [low, high] pair holds whole numbers only.
        (["a", "b"], "is neither a port number nor a 'low-high' range"),
        ([1.5, 2000], "is neither a port number nor a 'low-high' range"),
        ([True, 2000], "is neither a port number nor a 'low-high' range"),
        (1023, "is below 1024; set ephemeral_ports_allow_below_1024: true to allow it"),
        ("80-90", "is below 1024; set ephemeral_ports_allow_below_1024: true to allow it"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_variable_and_the_value(entry: Any, problem: str) -> None:
    errors = ep.port_entry_errors([40000, entry, "40010-40020"], VAR)
    assert errors == [f"{VAR}: {entry!r} {problem}"]


def test_every_bad_entry_gets_its_own_message() -> None:
    errors = ep.port_entry_errors([80, "70000", "9-3", 40000, "abc"], VAR)
    assert len(errors) == 4
    for value in ("80", "'70000'", "'9-3'", "'abc'"):
        assert sum(f"{VAR}: {value} " in e for e in errors) == 1, (value, errors)


def test_allow_below_1024_admits_low_ports_but_not_port_0() -> None:
    assert ep.port_entry_errors([80, "1-1023"], VAR, allow_below_1024=True) == []
    assert ep.port_entry_errors([0], VAR, allow_below_1024=True) == [f"{VAR}: 0 is outside 1-65535"]


@pytest.mark.parametrize("entries", ["33434", 33434, {"low": 1}])
def test_a_value_that_is_not_a_list_is_refused_whole(entries: Any) -> None:
    assert ep.port_entry_errors(entries, VAR) == [
        f"{VAR} must be a list of ports or 'low-high' ranges, got {entries!r}"
    ]


# --- merge_spans, port_list, port_count --------------------------------------------------------


@pytest.mark.parametrize(
    ("spans", "merged"),
    [
        ([], []),
        ([(5, 5)], [(5, 5)]),
        ([(1, 10), (5, 20)], [(1, 20)]),  # overlapping
        ([(1, 20), (5, 10)], [(1, 20)]),  # contained
        ([(1, 2), (3, 3), (4, 9)], [(1, 9)]),  # adjacent runs join
        ([(1, 2), (4, 5)], [(1, 2), (4, 5)]),  # a gap of one port stays a gap
        ([(9, 9), (5, 7), (1, 2), (3, 4)], [(1, 7), (9, 9)]),  # unsorted
        ([(9, 9), (5, 7), (1, 2), (3, 3)], [(1, 3), (5, 7), (9, 9)]),
        ([(7, 7), (7, 7)], [(7, 7)]),  # duplicates
        ([(30, 40), (1, 5), (10, 20), (21, 29)], [(1, 5), (10, 40)]),
    ],
)
def test_merge_spans(spans: List[Any], merged: List[Any]) -> None:
    assert ep.merge_spans(spans) == merged
    assert ep.merge_spans(iter(spans)) == merged  # any iterable


@pytest.mark.parametrize(
    ("entries", "text"),
    [
        ([33533, "33434-33532", 40050], "33434-33533,40050"),
        (["40000-40010", "40005-40020", 40021], "40000-40021"),
        ([[5, 6]], "5-6"),  # the agent's [low, high] pairs
        ("1-2,5", "1-2,5"),  # the kernel's own text round-trips
        ("5, 1-2,,", "1-2,5"),
        ([], ""),
        (None, ""),
        (["abc", True, 40000], "40000"),  # malformed entries are validate.yml's to refuse
    ],
)
def test_port_list_writes_the_kernels_format(entries: Any, text: str) -> None:
    assert ep.port_list(entries) == text


# --- the drop-in and the runtime values --------------------------------------------------------


def test_dropin_state_reads_sources_and_values() -> None:
    text = (
        "# Managed by netmedic\n"
        "# netmedic-reserved-probes: 33434-33533\n"
        "# netmedic-reserved-ports:\n"
        f"{RANGE} = 15000\t60999\n"
        f"{TW_REUSE} =1\n"
    )
    assert ep.dropin_state(text) == {
        "reserved": {"probes": "33434-33533", "ports": ""},
        "values": {RANGE: "15000 60999", TW_REUSE: "1"},
    }
    assert ep.dropin_state(None) == {"reserved": {}, "values": {}}
    assert ep.dropin_state("") == {"reserved": {}, "values": {}}


def test_sysctl_value_normalises_whitespace() -> None:
    assert ep.sysctl_value("40000\t40100\n") == "40000 40100"
    assert ep.sysctl_value(2) == "2"


def test_runtime_values_in_the_dropins_form() -> None:
    facts = {
        "port_range": {"low": 1, "high": 2},
        "reserved_ports": [[5, 6], [7, 7]],
        "tcp_tw_reuse": 2,
    }
    assert ep.runtime_values(facts) == {RANGE: "1 2", RESERVED: "5-7", TW_REUSE: "2"}


def test_changed_keys_ignore_whitespace_and_report_missing_runtime_keys() -> None:
    desired = {RANGE: "15000 60999", RESERVED: "33434-33533", TW_REUSE: "1"}
    runtime = {RANGE: "15000\t60999", RESERVED: "", TW_REUSE: "2"}
    assert ep.changed_keys(desired, runtime) == [RESERVED, TW_REUSE]
    assert ep.changed_keys(desired, {}) == sorted(desired)
    assert ep.changed_keys(desired, dict(desired)) == []


# --- overriding_files --------------------------------------------------------------------------


def test_a_file_sorting_after_the_dropin_overrides_it() -> None:
    sources = {RANGE: winner("/etc/sysctl.d/99-custom.conf", "32768 60999")}
    assert ep.overriding_files(sources, [RANGE], DROPIN) == [
        {"key": RANGE, "file": "/etc/sysctl.d/99-custom.conf", "value": "32768 60999"}
    ]


def test_a_file_sorting_before_the_dropin_does_not() -> None:
    sources = {RANGE: winner("/usr/lib/sysctl.d/50-default.conf", "32768 60999")}
    assert ep.overriding_files(sources, [RANGE], DROPIN) == []


def test_etc_sysctl_conf_is_applied_last_and_always_wins() -> None:
    sources = {TW_REUSE: winner("/etc/sysctl.conf", "0", [DROPIN])}
    assert ep.overriding_files(sources, [TW_REUSE], DROPIN) == [
        {"key": TW_REUSE, "file": "/etc/sysctl.conf", "value": "0"}
    ]
    sources = {TW_REUSE: winner("/etc/sysctl.conf", "0")}  # the drop-in not written yet
    assert len(ep.overriding_files(sources, [TW_REUSE], DROPIN)) == 1


def test_a_winner_that_already_overrode_the_dropin_counts_whatever_its_name() -> None:
    # The agent saw it applied after the drop-in; its name alone would not say so.
    sources = {RANGE: winner("/run/sysctl.d/10-early.conf", "1 2", [DROPIN])}
    assert ep.overriding_files(sources, [RANGE], DROPIN) == [
        {"key": RANGE, "file": "/run/sysctl.d/10-early.conf", "value": "1 2"}
    ]


def test_a_same_named_file_elsewhere_loses_to_the_dropin_in_etc() -> None:
    sources = {RANGE: winner("/usr/lib/sysctl.d/60-netmedic-ephemeral.conf", "1 2")}
    assert ep.overriding_files(sources, [RANGE], DROPIN) == []


def test_the_dropin_itself_unset_keys_and_unasked_keys_are_skipped() -> None:
    sources: Dict[str, Any] = {
        RANGE: winner(DROPIN, "15000 60999"),
        RESERVED: None,  # no file sets it
        TW_REUSE: winner("/etc/sysctl.d/99-tw.conf", "0"),
    }
    assert ep.overriding_files(sources, [RANGE, RESERVED, "net.ipv4.absent"], DROPIN) == []
    assert [o["key"] for o in ep.overriding_files(sources, [TW_REUSE, RANGE], DROPIN)] == [TW_REUSE]


def test_overrides_come_in_the_order_keys_are_asked() -> None:
    sources = {
        RANGE: winner("/etc/sysctl.d/99-a.conf", "1 2"),
        TW_REUSE: winner("/etc/sysctl.conf", "0"),
    }
    found = ep.overriding_files(sources, [TW_REUSE, RANGE], DROPIN)
    assert [o["key"] for o in found] == [TW_REUSE, RANGE]


# --- the plugin's table ------------------------------------------------------------------------


def test_filter_module_exposes_every_filter() -> None:
    assert ep.FilterModule().filters() == {
        "ephemeral_ports_entry_errors": ep.port_entry_errors,
        "ephemeral_ports_list": ep.port_list,
        "ephemeral_ports_dropin_state": ep.dropin_state,
        "ephemeral_ports_sysctl_value": ep.sysctl_value,
        "ephemeral_ports_changed_keys": ep.changed_keys,
        "ephemeral_ports_runtime_values": ep.runtime_values,
        "ephemeral_ports_overriding_files": ep.overriding_files,
        "ephemeral_ports_take_findings": ep.take_findings,
        "ephemeral_ports_finding_ids": ep.finding_ids,
        "ephemeral_ports_finding_errors": ep.finding_errors,
        "ephemeral_ports_plan": ep.plan,
        "ephemeral_ports_audit_records": ep.audit_records,
    }


# --- findings: intake, checks, the plan and its audit records --------------------------------

HANDLES = [{"id": "declared-port-in-ephemeral-range"}, {"id": "ephemeral-port-pressure"}]
EXPOSED = {
    "id": "declared-port-in-ephemeral-range",
    "subject": "33434-34073/tcp",
    "evidence": ["tcp ports 33434-34073 (processes:trippy) lie inside ..."],
    "vars": {"ephemeral_ports_reserved": [[33434, 34073]]},
}
PRESSURE = {
    "id": "ephemeral-port-pressure",
    "subject": RANGE,
    "vars": {
        "ephemeral_ports_range": {"low": 15000, "high": 60999},
        "ephemeral_ports_reserved": [[1900, 1900], [33434, 34073], [61000, 65085]],
    },
}
NARROW = {RANGE: "33400 33500", RESERVED: "", TW_REUSE: "0"}
NO_DROPIN: Dict[str, Any] = {"reserved": {}, "values": {}}
NOBODY: Dict[str, Any] = {"range": {}, "reserved": None, "tcp_tw_reuse": None}


def test_findings_from_the_agent_and_from_the_plan_read_alike() -> None:
    asked = {
        "id": EXPOSED["id"],
        "subject": EXPOSED["subject"],
        "title": "Declared port inside the ephemeral range and not reserved",
        "evidence": EXPOSED["evidence"],
        "remediation": {"role": "ephemeral_ports", "vars": EXPOSED["vars"]},
    }
    handed = dict(EXPOSED, severity="warning", destructive=False, approved=True)
    assert ep.take_findings([asked]) == ep.take_findings([handed]) == [EXPOSED]
    assert ep.finding_ids([handed]) == [{"id": EXPOSED["id"], "subject": EXPOSED["subject"]}]
    assert ep.take_findings(None) == []


def test_finding_errors_name_the_finding_and_the_var() -> None:
    bad = [
        {"id": "declared-port-held-by-other", "subject": "1900/udp", "vars": {}},
        {"id": PRESSURE["id"], "vars": {"ephemeral_ports_range": {"low": 9, "high": 3}}},
        {"id": EXPOSED["id"], "vars": {"ephemeral_ports_reserved": ["x"]}},
    ]
    assert ep.finding_errors(bad, HANDLES, "v") == [
        "v[0].id 'declared-port-held-by-other' is not a finding ephemeral_ports fixes",
        "v[1].vars.ephemeral_ports_range {'low': 9, 'high': 3} needs whole low < high",
        "v[2].vars.ephemeral_ports_reserved: 'x' is neither a port number nor a 'low-high' range",
    ]
    assert ep.finding_errors([EXPOSED, PRESSURE], HANDLES, "v") == []


def test_findings_widen_the_range_and_reserve_what_it_takes_in() -> None:
    planned = ep.plan(NOBODY, [EXPOSED, PRESSURE], NO_DROPIN, NARROW)
    assert planned["desired"] == {RANGE: "15000 60999", RESERVED: "33434-34073"}
    # 1900 and 61000-65085 lie outside the range: reserving them would change nothing.
    assert planned["reserved_by"] == {"operator": "", "findings": "33434-34073"}
    who = [{"id": EXPOSED["id"], "subject": EXPOSED["subject"]}]
    pressure = [{"id": PRESSURE["id"], "subject": RANGE}]
    assert planned["served"] == {RANGE: pressure, RESERVED: who + pressure, TW_REUSE: []}
    assert planned["share"] == round(640 / 46000, 4)


def test_a_finding_range_never_narrows_the_range() -> None:
    wide = {RANGE: "1024 65535", RESERVED: "", TW_REUSE: "2"}
    assert ep.plan(NOBODY, [PRESSURE], NO_DROPIN, wide)["desired"][RANGE] == "1024 65535"


def test_operator_values_win_and_are_applied_without_findings() -> None:
    operator = {
        "range": {"low": 20000, "high": 60999},
        "reserved": ["49152-49155"],
        "tcp_tw_reuse": 1,
    }
    planned = ep.plan(operator, [EXPOSED, PRESSURE], NO_DROPIN, NARROW)
    assert planned["desired"] == {
        RANGE: "20000 60999",
        RESERVED: "33434-34073,49152-49155",
        TW_REUSE: "1",
    }
    assert planned["served"][RANGE] == []  # the operator's range, not the finding's
    alone = ep.plan(operator, [], NO_DROPIN, NARROW)
    assert alone["desired"] == {RANGE: "20000 60999", RESERVED: "49152-49155", TW_REUSE: "1"}
    assert alone["reserved_by"] == {"operator": "49152-49155", "findings": ""}


def test_the_plans_hand_over_is_the_findings_not_the_operators() -> None:
    # apply-remediation.yml sets the findings' merged vars when the inventory leaves them unset.
    handed = {
        "range": PRESSURE["vars"]["ephemeral_ports_range"],
        "reserved": [[33434, 34073], [1900, 1900], [61000, 65085]],
        "tcp_tw_reuse": None,
    }
    planned = ep.plan(handed, [EXPOSED, PRESSURE], NO_DROPIN, NARROW)
    assert planned == ep.plan(NOBODY, [EXPOSED, PRESSURE], NO_DROPIN, NARROW)


def test_unset_inputs_keep_the_dropin_and_older_sources_count_as_findings() -> None:
    dropin = {
        "reserved": {"operator": "49152-49155", "plan": "32400", "probes": "33434-33533"},
        "values": {RANGE: "32768 60999", TW_REUSE: "1"},
    }
    planned = ep.plan(NOBODY, [], dropin, NARROW)
    assert planned["desired"] == {
        RANGE: "32768 60999",
        RESERVED: "32400,33434-33533,49152-49155",
        TW_REUSE: "1",
    }
    assert planned["reserved_by"] == {"operator": "49152-49155", "findings": "32400,33434-33533"}


def test_nothing_declared_nothing_held_nothing_to_do() -> None:
    planned = ep.plan(NOBODY, [], NO_DROPIN, NARROW)
    assert planned["desired"] == {} and planned["share"] == 0


def test_a_whole_trippy_span_is_most_of_the_range() -> None:
    unbounded = dict(EXPOSED, vars={"ephemeral_ports_reserved": [[33434, 65085]]})
    default = {RANGE: "32768 60999", RESERVED: "", TW_REUSE: "2"}
    planned = ep.plan(NOBODY, [unbounded], NO_DROPIN, default)
    assert planned["desired"][RESERVED] == "33434-60999"
    assert planned["share"] == round((60999 - 33434 + 1) / 28232, 4)  # 0.9764


def test_audit_records_one_per_finding_or_one_for_the_operator() -> None:
    served = {RANGE: [{"id": "p", "subject": RANGE}], RESERVED: [], TW_REUSE: []}
    assert ep.audit_records(served, [RESERVED, RANGE]) == [
        {"key": RESERVED, "id": None, "subject": None},
        {"key": RANGE, "id": "p", "subject": RANGE},
    ]
    both = {RANGE: [{"id": "p", "subject": RANGE}], RESERVED: [{"id": "p", "subject": RANGE}]}
    assert ep.audit_records(both, [RESERVED, RANGE], False) == [
        {"key": None, "id": "p", "subject": RANGE}
    ]
    assert ep.audit_records({}, [TW_REUSE], False) == [{"key": None, "id": None, "subject": None}]
