# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin: write the fleet report of one run, on the controller, once.

``playbooks/plays/report.yml`` runs it once after every batch of site.yml (or
facts.yml): it reads what each targeted host left in ``hostvars`` and writes
``<report_dir>/<host>.json`` for every host, ``summary.md`` and a self-contained
``summary.html``. Each host is accounted for: ``findings`` (with severity),
``healthy``, ``unreachable``, ``failed`` (task and message), ``not run`` (the
rollout stopped before its batch), ``not checked`` (no agent answer) or
``skipped`` (outside ``--limit``). It runs in check mode too: the report is the
run's output on the controller, not a change to any host (``changed`` is false).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible.plugins.action import ActionBase

STATUSES = ("findings", "healthy", "unreachable", "failed", "not run", "not checked", "skipped")
SEVERITIES = ("critical", "warning", "info")
COLORS = {
    "findings": "#d9822b", "healthy": "#3a8a3a", "unreachable": "#8a3ab9", "failed": "#c23030",
    "not run": "#888888", "not checked": "#b0a030", "skipped": "#bbbbbb",
}  # fmt: skip
PREVIOUS_RUNS = 50  # how many earlier reports "since" looks back through


def _key(finding: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
    return str(finding["id"]), finding.get("subject")


def finding_rows(
    before: Sequence[Mapping[str, Any]],
    now: Optional[Sequence[Mapping[str, Any]]],
    decisions: Sequence[Mapping[str, Any]] = (),
) -> List[Dict[str, Any]]:
    """Every (finding, subject) present before the run or after it, with the plan's decision.

    A finding is matched by id *and* subject: fixing one of two ports a finding names
    leaves the other ``present``. ``now`` is ``fixed`` when it is gone, ``present``
    when still there, ``new`` for one only the closing diagnosis shows, and
    ``planned`` for one decided ``apply`` when nothing was applied (check mode:
    ``now`` is None). Without a run (facts.yml) pass the same findings twice.
    """
    decision_by_key = {_key(d): d for d in decisions}
    rows: List[Dict[str, Any]] = []
    now_keys = None if now is None else {_key(f) for f in now}
    for finding in before:
        plan = decision_by_key.get(_key(finding), {})
        decision = plan.get("decision", "-")
        if now_keys is None:
            state = "planned" if decision == "apply" else "present"
        else:
            state = "present" if _key(finding) in now_keys else "fixed"
        rows.append(
            dict(finding, before="present", now=state, decision=decision,
                 reason=plan.get("reason", ""))
        )  # fmt: skip
    seen = {_key(f) for f in before}
    for finding in now or ():
        if _key(finding) not in seen:
            plan = decision_by_key.get(_key(finding), {})
            rows.append(
                dict(finding, before="-", now="new", decision=plan.get("decision", "-"),
                     reason=plan.get("reason", ""))
            )  # fmt: skip
    return rows


def _get(mapping: Any, *path: str) -> Any:
    """``_get(hv, "netmedic_plan", "decisions")`` or None when any step is missing."""
    for step in path:
        if not isinstance(mapping, Mapping) or step not in mapping:
            return None
        mapping = mapping[step]
    return mapping


def _not_checked(facts: Any, diagnosis: Any) -> List[str]:
    """What the agent could not check: collector errors and entries not evaluated."""
    lines = [f"{e.get('family')}: {e.get('message')}" for e in _get(facts, "errors") or []]
    lines += [f"{s.get('id')}: {s.get('reason')}" for s in _get(diagnosis, "skipped") or []]
    if _get(facts, "units", "systemd") not in (None, "running"):
        lines.append(
            f"systemd is {facts['units']['systemd']}: unit ordering and the DNS boot race "
            "were not checked"
        )
    return lines


def site_record(name: str, hv: Mapping[str, Any], run: Mapping[str, Any]) -> Dict[str, Any]:
    """One host of a site.yml run, from what the run left in its hostvars.

    ``netmedic_plan`` (the planning module's result), ``netmedic_after`` (the closing
    diagnosis, when something was applied) and ``netmedic_failure`` (what failed).
    """
    plan = hv.get("netmedic_plan")
    failure = hv.get("netmedic_failure")
    record: Dict[str, Any] = {"host": name}
    if isinstance(plan, Mapping) and plan.get("unreachable"):
        return dict(record, status="unreachable", reason=str(plan.get("msg", "unreachable")))
    diagnosis = _get(plan, "ansible_facts", "netmedic_diagnosis")
    facts = _get(plan, "ansible_facts", "netmedic")
    if diagnosis is None:  # nothing diagnosed: failed before (bad policy), or never reached
        if failure:
            return dict(
                record, status="failed", task=failure.get("task"), reason=failure.get("msg")
            )
        return dict(record, status="not run", reason=run.get("stopped") or "never reached")
    if not isinstance(plan, Mapping):  # a diagnosis comes only with a plan
        raise AssertionError(f"{name}: a closing diagnosis without a plan")
    before = list(diagnosis.get("findings") or [])
    now: Optional[List[Any]] = before
    status = None
    if plan.get("roles") and run.get("check_mode"):
        now = None  # the plan only: what would be applied reads `planned`
    elif plan.get("roles"):
        after = _get(hv.get("netmedic_after"), "ansible_facts")
        if after and after.get("netmedic_diagnosis") is not None:
            facts, diagnosis = after.get("netmedic", facts), after["netmedic_diagnosis"]
            now = list(diagnosis.get("findings") or [])
        elif not failure:
            status = "unreachable"  # planned, then gone before the closing diagnosis
            record["reason"] = "lost during the run, after planning"
    rows = finding_rows(before, now, plan.get("decisions") or [])
    if failure:
        status = "failed"
        record.update(task=failure.get("task"), reason=failure.get("msg"))
    record.update(
        status=status or _status_of(rows),
        collected_at=_get(facts, "collected_at"),
        findings_before=before,
        decisions=list(plan.get("decisions") or []),
        findings=before if now is None else now,
        rows=rows,
        not_checked=_not_checked(facts, diagnosis),
        facts=facts,
    )
    return record


def facts_record(name: str, hv: Mapping[str, Any]) -> Dict[str, Any]:
    """One host of a facts.yml run: the agent's document as setup read it from facts.d."""
    gathered = hv.get("netmedic_gathered")
    record: Dict[str, Any] = {"host": name}
    if isinstance(gathered, Mapping) and gathered.get("unreachable"):
        return dict(record, status="unreachable", reason=str(gathered.get("msg", "unreachable")))
    if not isinstance(gathered, Mapping):
        return dict(record, status="not run", reason="the run ended before this host")
    if gathered.get("failed"):
        return dict(record, status="failed", task="Gather facts", reason=gathered.get("msg"))
    facts = _get(gathered, "ansible_facts", "ansible_local", "netmedic")
    if not isinstance(facts, Mapping):
        why = (
            "no netmedic agent on the host (no facts.d hook): install it with site.yml "
            "or the netmedic_agent role"
            if facts is None
            else f"the facts.d hook failed: {str(facts)[:300]}"
        )
        return dict(record, status="not checked", reason=why)
    diagnosis = facts.get("diagnosis")
    if not isinstance(diagnosis, Mapping):
        return dict(
            record, status="not checked", facts=facts,
            reason="the installed agent's facts carry no diagnosis: refresh it with site.yml",
        )  # fmt: skip
    findings = list(diagnosis.get("findings") or [])
    rows = finding_rows(findings, findings)
    return dict(
        record, collected_at=facts.get("collected_at"), findings_before=findings,
        decisions=[], findings=findings, rows=rows,
        not_checked=_not_checked(facts, diagnosis), facts=facts, status=_status_of(rows),
    )  # fmt: skip


def reason_of(record: Mapping[str, Any]) -> str:
    """``"failed: Apply the remediations: boom"``: a host's status and why, on one line."""
    task = f"{record['task']}: " if record.get("task") else ""
    return f"{record['status']}: {task}{record.get('reason', '')}"


def _status_of(rows: Sequence[Mapping[str, Any]]) -> str:
    return "findings" if any(r["now"] in ("present", "new", "planned") for r in rows) else "healthy"


def severity_of(record: Mapping[str, Any]) -> Optional[str]:
    """The worst severity of a host's findings still there (or planned)."""
    found = {r.get("severity") for r in record.get("rows") or () if r["now"] != "fixed"}
    return next((s for s in SEVERITIES if s in found), None)


def since(report_root: str, current: str, host: str, key: Tuple[str, Optional[str]]) -> str:
    """The start of the earliest run in an unbroken line of earlier reports that showed
    ``key`` on ``host``; the current run's when none did."""
    try:
        runs = sorted(d for d in os.listdir(report_root) if d < current)
    except OSError:
        return current
    first = current
    for run in reversed(runs[-PREVIOUS_RUNS:]):
        try:
            with open(os.path.join(report_root, run, f"{host}.json"), encoding="utf-8") as f:
                earlier = json.load(f)
        except (OSError, ValueError):
            break
        if not any(_key(r) == key for r in earlier.get("findings") or []):
            break
        first = run
    return first


def summarize(
    records: Sequence[Mapping[str, Any]], report_root: Optional[str], run_dir: str
) -> Dict[str, Any]:
    """Counts per status and per finding (hosts, since when, decisions)."""
    by_status = {status: 0 for status in STATUSES}
    per_finding: Dict[str, Dict[str, Any]] = {}
    for record in records:
        by_status[record["status"]] += 1
        for row in record.get("rows") or ():
            entry = per_finding.setdefault(
                row["id"],
                {"severity": row.get("severity"), "hosts": [], "decisions": {}, "now": {}},
            )
            first = since(report_root, run_dir, record["host"], _key(row)) if report_root else "-"
            entry["hosts"].append(
                {"host": record["host"], "subject": row.get("subject"), "since": first,
                 "decision": row["decision"], "now": row["now"]}
            )  # fmt: skip
            entry["decisions"][row["decision"]] = entry["decisions"].get(row["decision"], 0) + 1
            entry["now"][row["now"]] = entry["now"].get(row["now"], 0) + 1
    return {"hosts": len(records), "by_status": by_status, "by_finding": per_finding}


def chart_bars(by_status: Mapping[str, int]) -> List[Dict[str, Any]]:
    """Hosts per status as bar geometry for the HTML page's inline SVG chart."""
    shown = [(status, n) for status, n in by_status.items() if n]
    most = max((n for _status, n in shown), default=1)
    return [
        {"status": status, "count": n, "y": 6 + i * 24, "width": max(2, round(300 * n / most)),
         "color": COLORS[status]}
        for i, (status, n) in enumerate(shown)
    ]  # fmt: skip


def render(name: str, context: Mapping[str, Any]) -> str:
    """The collection's playbooks/templates/<name>.j2 with the report's data (HTML escaped,
    Markdown not)."""
    import jinja2  # noqa: PLC0415 - ansible's own dependency, only needed here

    # plugins/action/ → the collection root → playbooks/templates
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(root, "playbooks", "templates")),
        autoescape=name.endswith(".html"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env.get_template(f"{name}.j2").render(**context)


def write_report(
    report_dir: str, run: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
) -> Dict[str, Any]:
    """Write every host's JSON and the two summaries; return the summary counts."""
    os.makedirs(report_dir, exist_ok=True)
    root, name = os.path.split(os.path.normpath(report_dir))
    summary = summarize(records, root, name)
    for record in records:
        body = {k: v for k, v in record.items() if k != "rows"}
        body["run"] = {k: run.get(k) for k in ("id", "playbook", "check_mode", "started")}
        _write(
            os.path.join(report_dir, f"{record['host']}.json"),
            json.dumps(body, indent=2, sort_keys=True, default=str) + "\n",
        )
    context = {
        "run": run,
        "records": records,
        "summary": summary,
        "bars": chart_bars(summary["by_status"]),
    }
    for name in ("summary.md", "summary.html"):
        _write(os.path.join(report_dir, name), render(name, context))
    return summary


def _write(path: str, text: str) -> None:
    """Whole files only: a reader never sees half a report."""
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temp, path)


def build_records(
    kind: str, hosts: Iterable[str], hostvars: Mapping[str, Any], run: Mapping[str, Any],
    skipped: Iterable[str] = (),
) -> List[Dict[str, Any]]:  # fmt: skip
    records = []
    for name in sorted(hosts):
        hv = hostvars[name]
        records.append(facts_record(name, hv) if kind == "facts" else site_record(name, hv, run))
    records += [
        {"host": name, "status": "skipped", "reason": "outside --limit"} for name in sorted(skipped)
    ]
    return records


class ActionModule(ActionBase):
    """``netmedic_report: {kind: site|facts, hosts: [...], skipped: [...], run: {...}}``."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("kind", "hosts", "skipped", "run"))

    def run(self, tmp: Any = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        kind = args.get("kind", "site")
        run = dict(args.get("run") or {})
        if kind not in ("site", "facts") or not run.get("report_dir"):
            return dict(
                result, failed=True, msg="netmedic_report needs kind site|facts and run.report_dir"
            )
        started = time.monotonic()
        records = build_records(
            kind,
            args.get("hosts") or [],
            (task_vars or {})["hostvars"],
            run,
            args.get("skipped") or (),
        )
        summary = write_report(run["report_dir"], run, records)
        failed = [r["host"] for r in records if r["status"] in ("failed", "unreachable", "not run")]
        result.update(
            changed=False,
            report_dir=run["report_dir"],
            stats={
                "run_id": run.get("id"),
                "report_dir": run["report_dir"],
                "check_mode": bool(run.get("check_mode")),
                "hosts": summary["hosts"],
                "by_status": summary["by_status"],
                "by_finding": {k: len(v["hosts"]) for k, v in summary["by_finding"].items()},
            },
            failed_hosts=failed,
            reasons={r["host"]: reason_of(r) for r in records if r["host"] in failed},
            summary_md=os.path.join(run["report_dir"], "summary.md"),
            seconds=round(time.monotonic() - started, 3),
        )
        return dict(result)
