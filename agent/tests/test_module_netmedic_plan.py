"""plugins/modules/netmedic_plan.py run as Ansible runs it: the policy checked before
anything, the host diagnosed with the real agent, a stale agent reported first.
The policy engine itself: tests/unit/plugins/module_utils/test_plan.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import AGENT, run_agent_module, run_module


def test_module_plans_in_check_mode_and_hands_each_role_its_findings(tmp_path: Path) -> None:
    ordering_vars = {"unit_ordering_units": [{"name": "a.service"}]}
    findings = [
        {
            "id": "unit-missing-network-ordering",
            "subject": "multipassd.service",
            "severity": "warning",
            "destructive": False,
            "remediation": {"role": "unit_ordering", "vars": ordering_vars},
        },
        {
            "id": "release-channel-beta",
            "subject": "portmaster",
            "severity": "warning",
            "destructive": True,
            "remediation": {"role": "release_channel", "vars": {"release_channel_apps": []}},
        },
    ]
    result = run_module(
        "netmedic_plan",
        tmp_path,
        check=True,
        findings=findings,
        policy={"auto": ["unit_ordering", "release_channel"]},
        audit_log=str(tmp_path / "none.jsonl"),
    )
    assert not result["changed"]
    assert [(d["id"], d["decision"]) for d in result["decisions"]] == [
        ("unit-missing-network-ordering", "apply"),
        ("release-channel-beta", "approval"),
    ]
    handed = result["roles"]["unit_ordering"]
    assert list(result["roles"]) == ["unit_ordering"]
    assert handed["vars"] == {"unit_ordering_units": [{"name": "a.service"}]}
    assert handed["findings"] == [
        {
            "id": "unit-missing-network-ordering",
            "subject": "multipassd.service",
            "severity": "warning",
            "evidence": [],
            "vars": {"unit_ordering_units": [{"name": "a.service"}]},
            "destructive": False,
            "approved": True,
        }
    ]
    assert result["policy"] == {
        "auto": ["unit_ordering", "release_channel"],
        "allow_destructive": [],
        "max_fixes": 3,
        "window_hours": 24,
    }


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("yes", "netmedic_policy must be a mapping"),
        ({"allow_destructive": "id"}, "netmedic_policy.allow_destructive must be a list"),
        ({"auto": [""]}, "netmedic_policy.auto must be a list of non-empty strings"),
        ({"max_fixes": 0}, "netmedic_policy.max_fixes must be a whole number >= 1"),
        ({"window_hours": True}, "netmedic_policy.window_hours must be a whole number from 1"),
        # Longer than the week of audit log the loop breaker can read after a rotation.
        ({"window_hours": 169}, "window_hours must be a whole number from 1 to 168, got 169"),
        ({"max_fix": 2}, "netmedic_policy.max_fix: unknown key"),
    ],
)
def test_a_bad_policy_fails_naming_the_variable(
    tmp_path: Path, policy: Any, message: str
) -> None:
    result = run_module("netmedic_plan", tmp_path, findings=[], policy=policy)
    assert result["failed"] and message in result["msg"], result


def test_module_refuses_a_zero_window(tmp_path: Path) -> None:
    result = run_module("netmedic_plan", tmp_path, findings=[], policy={"window_hours": 0})
    assert result["failed"] and "window_hours" in result["msg"]


def test_module_diagnoses_the_host_with_the_real_agent(tmp_path: Path) -> None:
    result = run_agent_module(
        "netmedic_plan", tmp_path, check=True, audit_log=str(tmp_path / "none.jsonl")
    )
    assert not result.get("failed"), result.get("msg")
    assert result["imported_agent"].startswith(str(AGENT))
    assert result["agent"] == "unchecked"
    facts = result["ansible_facts"]
    assert facts["netmedic"]["schema_version"] >= 2
    ids = [f["id"] for f in facts["netmedic_diagnosis"]["findings"]]
    assert [d["id"] for d in result["decisions"]] == ids


def test_a_stale_agent_is_reported_before_anything_is_diagnosed(tmp_path: Path) -> None:
    result = run_agent_module("netmedic_plan", tmp_path, check=True, agent_checksum="0" * 64)
    assert not result.get("failed"), result.get("msg")
    assert result["agent"] == "stale" and "ansible_facts" not in result
    assert "decisions" not in result
    missing = run_agent_module(
        "netmedic_plan", tmp_path, agent_checksum="0" * 64, agent_path=str(tmp_path / "none")
    )
    assert missing["agent"] == "stale" and not missing.get("failed")


def test_netmedic_only_must_name_catalog_ids(tmp_path: Path) -> None:
    result = run_agent_module("netmedic_plan", tmp_path, check=True, only=["no-such-finding"])
    assert result["failed"] and "no-such-finding" in result["msg"]
