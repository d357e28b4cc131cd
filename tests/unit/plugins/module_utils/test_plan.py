"""The policy engine of netmedic_plan (plugins/module_utils/plan.py): decisions per finding,
the loop breaker, the policy check and the variables each role is handed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List

from ansible_collections.netmedic.remediation.plugins.module_utils import plan

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def finding(
    fid: str, role: str = "unit_ordering", destructive: bool = False, **variables: Any
) -> Dict[str, Any]:
    return {
        "id": fid,
        "subject": "multipassd.service",
        "severity": "warning",
        "destructive": destructive,
        "remediation": {"role": role, "vars": variables},
    }


def params(**policy: Any) -> Dict[str, Any]:
    return {"auto": [], "allow_destructive": [], "max_fixes": 3, "window_hours": 24, **policy}


def audit_line(
    fid: str,
    hours_ago: float,
    result: str = "ok",
    action: str = "remediate",
    subject: str = "multipassd.service",
) -> str:
    """An audit record as site.yml (action remediate) or a role writes it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - hours_ago * 3600))
    role = "site" if action == "remediate" else "unit_ordering"
    record = {"time": stamp, "role": role, "action": action, "finding": fid, "result": result}
    return json.dumps({**record, "subject": subject})


def test_policy_decides_per_finding() -> None:
    ordering = finding("unit-missing-network-ordering")
    restart = finding("unit-started-before-dns", destructive=True)
    no_role: Dict[str, Any] = {"id": "x", "remediation": None}
    assert plan.decide(no_role, params(), {}) == ("report", "the catalog names no remediation")
    assert plan.decide(ordering, params(), {})[0] == "approval"
    assert plan.decide(ordering, params(auto=["unit_ordering"]), {}) == (
        "apply",
        "allowed by policy",
    )
    assert plan.decide(ordering, params(auto=["unit-missing-network-ordering"]), {})[0] == "apply"
    # A destructive fix needs its id in allow_destructive even when its role is auto.
    assert plan.decide(restart, params(auto=["unit_ordering"]), {}) == (
        "approval",
        "destructive: not in allow_destructive",
    )
    allowed = params(auto=["unit_ordering"], allow_destructive=["unit-started-before-dns"])
    assert plan.decide(restart, allowed, {})[0] == "apply"


def test_loop_breaker_counts_recent_fix_attempts_once_per_run(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    lines: List[str] = [
        audit_line("unit-started-before-dns", 1),
        # The role's own records of that run: one per action, not one fix each.
        audit_line("unit-started-before-dns", 1, action="write-dropin"),
        audit_line("unit-started-before-dns", 1, action="restart-stale-unit"),
        audit_line("unit-started-before-dns", 5, result="failed"),  # an attempt all the same
        audit_line("unit-started-before-dns", 23),
        audit_line("unit-started-before-dns", 25),  # outside the 24 h window
        audit_line("unit-started-before-dns", 2, subject="other.service"),  # another finding
        '{"time": "2027-01-15T07:00:00Z", "action": "remediate", "finding": "torn',  # a torn write
        json.dumps(
            {"time": "yesterday", "action": "remediate", "finding": "unit-started-before-dns"}
        ),
    ]
    log.write_text("\n".join(lines) + "\n")
    fixes = plan.recent_fixes(str(log), 24, NOW)
    assert fixes == {
        ("unit-started-before-dns", "multipassd.service"): 3,
        ("unit-started-before-dns", "other.service"): 1,
    }
    allowed = params(auto=["unit_ordering"], allow_destructive=["unit-started-before-dns"])
    restart = finding("unit-started-before-dns", destructive=True)
    assert plan.decide(restart, allowed, fixes) == ("escalate", "fixed 3 times in the last 24 h")
    assert plan.decide(restart, dict(allowed, max_fixes=4), fixes)[0] == "apply"
    assert plan.recent_fixes(str(tmp_path / "missing.jsonl"), 24, NOW) == {}


def test_two_findings_about_one_unit_give_the_role_one_entry() -> None:
    roles: Dict[str, Any] = {}
    plan.merge_vars(roles, {"unit_ordering_units": [{"name": "a.service"}]})
    plan.merge_vars(
        roles,
        {
            "unit_ordering_units": [
                {"name": "a.service", "dns_gate_names": ["x.test"], "restart_if_stale": True},
                {"name": "b.service"},
            ]
        },
    )
    plan.merge_vars(
        roles,
        {"unit_ordering_units": [{"name": "b.service"}], "unit_ordering_wait_online": "enable"},
    )
    assert roles == {
        "unit_ordering_units": [
            {"name": "a.service", "dns_gate_names": ["x.test"], "restart_if_stale": True},
            {"name": "b.service"},
        ],
        "unit_ordering_wait_online": "enable",
    }


def test_unnamed_list_items_append_once_and_first_scalar_wins() -> None:
    roles: Dict[str, Any] = {}
    plan.merge_vars(
        roles,
        {"ephemeral_ports_reserved": ["33434-33533"], "ephemeral_ports_range": {"low": 15000}},
    )
    plan.merge_vars(
        roles,
        {
            "ephemeral_ports_reserved": ["33434-33533", "49494-49494"],
            "ephemeral_ports_range": {"low": 1},
        },
    )
    assert roles == {
        "ephemeral_ports_reserved": ["33434-33533", "49494-49494"],
        "ephemeral_ports_range": {"low": 15000},
    }


def test_only_limits_what_is_applied_and_reports_the_rest() -> None:
    ordering = finding("unit-missing-network-ordering")
    other = finding("declared-port-in-ephemeral-range", role="ephemeral_ports")
    policy = params(auto=["unit_ordering", "ephemeral_ports"])
    decisions, roles = plan.plan([ordering, other], policy, {}, only=[ordering["id"]])
    assert [(d["id"], d["decision"]) for d in decisions] == [
        ("unit-missing-network-ordering", "apply"),
        ("declared-port-in-ephemeral-range", "report"),
    ]
    assert "netmedic_only" in decisions[1]["reason"]
    assert list(roles) == ["unit_ordering"]


def test_policy_defaults_fill_missing_keys_and_whole_number_strings_pass() -> None:
    checked, problems = plan.check_policy({"max_fixes": "2"})
    assert problems == []
    assert checked == {"auto": [], "allow_destructive": [], "max_fixes": 2, "window_hours": 24}
    assert plan.check_policy(None) == (plan.POLICY_DEFAULTS, [])


def test_loop_breaker_reads_the_week_logrotate_moved_aside(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    (tmp_path / "actions.jsonl.1").write_text(
        "".join(audit_line("unit-started-before-dns", hours) + "\n" for hours in (30, 200))
    )
    log.write_text(audit_line("unit-started-before-dns", 1) + "\n")
    assert plan.recent_fixes(str(log), 168, NOW) == {
        ("unit-started-before-dns", "multipassd.service"): 2
    }
    log.unlink()  # rotated and nothing appended since
    assert plan.recent_fixes(str(log), 168, NOW) == {
        ("unit-started-before-dns", "multipassd.service"): 1
    }


def test_a_refused_fix_is_no_attempt(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    log.write_text(
        "\n".join(
            [
                audit_line("unit-started-before-dns", 1, result="refused"),
                audit_line("unit-started-before-dns", 2, result="refused"),
                audit_line("unit-started-before-dns", 3, result="failed"),
            ]
        )
        + "\n"
    )
    assert plan.recent_fixes(str(log), 24, NOW) == {
        ("unit-started-before-dns", "multipassd.service"): 1
    }


def test_agent_state_compares_the_bundle_and_the_config(tmp_path: Path) -> None:
    assert plan.agent_state(str(tmp_path), None, None, None)[0] == "unchecked"
    assert plan.agent_state(str(tmp_path), "abc", None, None) == (
        "stale",
        f"no agent installed under {tmp_path}",
    )
    (tmp_path / plan.BUNDLE_STAMP).write_text("abc\n")
    assert plan.agent_state(str(tmp_path), "abc", {"units": ["a"]}, {"units": ["a"]})[0] == (
        "current"
    )
    assert plan.agent_state(str(tmp_path), "abd", None, None)[0] == "stale"
    assert "config.yml differs" in plan.agent_state(str(tmp_path), "abc", {"units": []}, {})[1]
