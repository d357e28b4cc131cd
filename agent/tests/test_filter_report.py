"""The fleet report's rows (playbooks/filter_plugins/netmedic_report.py): before, decision, now."""

from __future__ import annotations

from typing import Any, Dict

from conftest import load_plugin

report = load_plugin("playbooks/filter_plugins/netmedic_report.py")


def finding(fid: str, subject: str, severity: str = "warning") -> Dict[str, Any]:
    return {
        "id": fid,
        "subject": subject,
        "severity": severity,
        "evidence": [f"{fid} on {subject}"],
    }


def test_one_fixed_subject_of_a_finding_leaves_the_other_present() -> None:
    before = [
        finding("declared-port-held-by-other", "1900/udp"),
        finding("declared-port-held-by-other", "8080/tcp"),
    ]
    now = [finding("declared-port-held-by-other", "8080/tcp")]
    decisions = [
        {"id": "declared-port-held-by-other", "subject": "1900/udp", "decision": "apply"},
        {"id": "declared-port-held-by-other", "subject": "8080/tcp", "decision": "needs-approval"},
    ]
    rows = report.report_rows(before, now, decisions)
    assert [(r["subject"], r["before"], r["decision"], r["now"]) for r in rows] == [
        ("1900/udp", "present", "apply", "fixed"),
        ("8080/tcp", "present", "needs-approval", "present"),
    ]
    assert rows[0]["evidence"] == ["declared-port-held-by-other on 1900/udp"]


def test_a_finding_only_after_the_run_is_listed_as_new() -> None:
    rows = report.report_rows([], [finding("lingering-client-processes", "gpclient", "critical")])
    assert rows == [
        dict(
            finding("lingering-client-processes", "gpclient", "critical"),
            before="-",
            now="new",
            decision="-",
        )
    ]


def test_without_a_run_every_finding_is_present_and_undecided() -> None:
    findings = [finding("release-channel-beta", "portmaster")]
    rows = report.report_rows(findings, findings)
    assert [(r["before"], r["decision"], r["now"]) for r in rows] == [("present", "-", "present")]


def test_the_filter_is_registered_under_its_report_name() -> None:
    assert report.FilterModule().filters() == {"netmedic_report_rows": report.report_rows}
