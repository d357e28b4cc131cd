"""Filters of the fleet report (playbooks/tasks/report.yml): one row per finding and subject."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple


def _key(finding: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
    return finding["id"], finding.get("subject")


def report_rows(
    before: Sequence[Mapping[str, Any]],
    now: Sequence[Mapping[str, Any]],
    decisions: Sequence[Mapping[str, Any]] = (),
) -> List[Dict[str, Any]]:
    """Every (finding, subject) present before the run or after it, with the plan's decision.

    A finding is matched by id *and* subject: fixing one of two ports a finding names
    leaves the other ``present``, not the whole finding. ``now`` is ``fixed`` when it is
    gone, ``present`` when still there, and ``new`` for a finding only the run's last
    diagnosis shows (``before`` is then ``-``). Without a run (facts.yml) pass the same
    findings as ``before`` and ``now``.
    """
    now_by_key = {_key(f): f for f in now}
    decision_by_key = {_key(d): d.get("decision", "-") for d in decisions}
    rows = []
    for finding in before:
        key = _key(finding)
        state = "present" if key in now_by_key else "fixed"
        rows.append(
            dict(finding, before="present", now=state, decision=decision_by_key.get(key, "-"))
        )
    seen = {_key(f) for f in before}
    for finding in now:
        if _key(finding) not in seen:
            rows.append(
                dict(
                    finding, before="-", now="new", decision=decision_by_key.get(_key(finding), "-")
                )
            )
    return rows


class FilterModule:
    """Jinja2 filters of the fleet report."""

    def filters(self) -> Dict[str, Any]:
        return {"netmedic_report_rows": report_rows}
