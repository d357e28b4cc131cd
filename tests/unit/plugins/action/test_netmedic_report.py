"""The fleet report (plugins/action/netmedic_report.py): every host accounted
for, before/decision/now per finding, counts, and a self-contained HTML page."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netmedic.remediation.plugins.action import netmedic_report as report

RUN: Dict[str, Any] = {
    "id": "20270101T000000Z-1",
    "playbook": "site.yml",
    "started": "20270101T000000Z",
    "user": "ops",
    "check_mode": False,
    "stopped": "",
}


def finding(fid: str, subject: str, severity: str = "warning") -> Dict[str, Any]:
    return {
        "id": fid,
        "subject": subject,
        "severity": severity,
        "evidence": [f"{fid} on {subject}"],
    }


def plan(
    findings: List[Dict[str, Any]],
    decisions: Optional[List[Tuple[str, str]]] = None,
    roles: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """A netmedic_plan result as site.yml registers it."""
    return {
        "agent": "current",
        "decisions": [
            {"id": f["id"], "subject": f["subject"], "decision": d, "reason": "r"}
            for f, (_id, d) in zip(findings, decisions or [])
        ],
        "roles": roles or {},
        "ansible_facts": {
            "netmedic": {
                "collected_at": "2027-01-01T00:00:00Z",
                "errors": [],
                "units": {"systemd": "running"},
            },
            "netmedic_diagnosis": {"findings": findings, "skipped": []},
        },
    }


def after(findings: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "ansible_facts": {
            "netmedic": {},
            "netmedic_diagnosis": {"findings": findings, "skipped": []},
        }
    }


def test_one_fixed_subject_of_a_finding_leaves_the_other_present() -> None:
    before = [finding("held", "1900/udp"), finding("held", "8080/tcp")]
    now = [finding("held", "8080/tcp"), finding("other", "x")]
    decisions = [
        {"id": "held", "subject": "1900/udp", "decision": "apply"},
        {"id": "held", "subject": "8080/tcp", "decision": "approval"},
    ]
    rows = report.finding_rows(before, now, decisions)
    assert [(r["subject"], r["before"], r["decision"], r["now"]) for r in rows] == [
        ("1900/udp", "present", "apply", "fixed"),
        ("8080/tcp", "present", "approval", "present"),
        ("x", "-", "-", "new"),
    ]
    # Check mode (nothing applied): what would be applied reads `planned`.
    planned = report.finding_rows(before, None, decisions)
    assert [r["now"] for r in planned] == ["planned", "present"]


def test_every_host_is_accounted_for_and_none_unreachable_or_failed_reads_healthy() -> None:
    held = finding("held", "1900/udp", "critical")
    hostvars = {
        "healthy": {"netmedic_plan": plan([])},
        "sick": {"netmedic_plan": plan([held], [("held", "approval")])},
        "fixed": {
            "netmedic_plan": plan([held], [("held", "apply")], {"port_conflicts": {}}),
            "netmedic_after": after([]),
        },
        "down": {"netmedic_plan": {"unreachable": True, "msg": "ssh: connect to host x port 22"}},
        "broke": {
            "netmedic_plan": plan([held], [("held", "apply")], {"port_conflicts": {}}),
            "netmedic_failure": {"task": "Run port_conflicts", "msg": "boom"},
        },
        "badpolicy": {
            "netmedic_failure": {"task": "Diagnose and plan", "msg": "netmedic_policy.auto ..."}
        },
        "lost": {"netmedic_plan": plan([held], [("held", "apply")], {"port_conflicts": {}})},
        "later": {},
    }
    records = report.build_records(
        "site", hostvars, hostvars, dict(RUN, stopped="2 of 4 failed"), ["limited"]
    )
    status = {r["host"]: r["status"] for r in records}
    assert status == {
        "healthy": "healthy",
        "sick": "findings",
        "fixed": "healthy",
        "down": "unreachable",
        "broke": "failed",
        "badpolicy": "failed",
        "lost": "unreachable",
        "later": "not run",
        "limited": "skipped",
    }
    by_host = {r["host"]: r for r in records}
    assert by_host["broke"]["task"] == "Run port_conflicts" and by_host["broke"]["reason"] == "boom"
    assert by_host["later"]["reason"] == "2 of 4 failed"
    assert report.severity_of(by_host["sick"]) == "critical"
    assert [r["now"] for r in by_host["fixed"]["rows"]] == ["fixed"]


def test_check_mode_reports_the_plan() -> None:
    held = finding("held", "1900/udp")
    hv = {
        "netmedic_plan": plan([held], [("held", "apply")], {"port_conflicts": {}}),
        "netmedic_after": {"skipped": True},
    }
    record = report.site_record("h", hv, dict(RUN, check_mode=True))
    assert record["status"] == "findings"
    assert [(r["decision"], r["now"]) for r in record["rows"]] == [("apply", "planned")]


def test_facts_runs_read_the_agent_through_facts_d() -> None:
    doc = {
        "collected_at": "t",
        "errors": [],
        "diagnosis": {"findings": [finding("x", "a")], "skipped": []},
    }
    hostvars = {
        "with": {"netmedic_gathered": {"ansible_facts": {"ansible_local": {"netmedic": doc}}}},
        "without": {"netmedic_gathered": {"ansible_facts": {"ansible_local": {}}}},
        "down": {"netmedic_gathered": {"unreachable": True, "msg": "gone"}},
    }
    records = {r["host"]: r for r in report.build_records("facts", hostvars, hostvars, RUN)}
    assert records["with"]["status"] == "findings"
    assert (
        records["without"]["status"] == "not checked"
        and "no netmedic agent" in records["without"]["reason"]
    )
    assert records["down"]["status"] == "unreachable"


class _Page(HTMLParser):
    """Collects ids, external references and the chart's bars of summary.html."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: List[str] = []
        self.external: List[str] = []
        self.bars: Dict[str, str] = {}
        self.open: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        for name in ("src", "href"):
            if values.get(name):
                self.external.append(str(values[name]))
        if tag == "rect" and values.get("class") == "bar":
            self.bars[str(values["data-status"])] = str(values["data-count"])
        if tag not in ("meta", "br", "rect"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "rect":
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()


def test_the_report_files_one_per_host_and_a_self_contained_page(tmp_path: Path) -> None:
    held = finding("held", "1900/udp <&>", "critical")
    hostvars = {
        "a": {"netmedic_plan": plan([held], [("held", "approval")])},
        "b": {"netmedic_plan": {"unreachable": True, "msg": "down"}},
    }
    # An earlier run that saw the same finding on a: "since" goes back to it.
    earlier = tmp_path / "20261231T000000Z"
    earlier.mkdir()
    (earlier / "a.json").write_text(json.dumps({"findings": [held]}))
    run_dir = tmp_path / RUN["started"]
    records = report.build_records("site", hostvars, hostvars, RUN)
    summary = report.write_report(str(run_dir), RUN, records)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "a.json",
        "b.json",
        "summary.html",
        "summary.md",
    ]
    assert json.loads((run_dir / "b.json").read_text())["status"] == "unreachable"
    assert summary["by_status"]["findings"] == 1 and summary["by_status"]["unreachable"] == 1
    assert summary["by_finding"]["held"]["hosts"][0]["since"] == "20261231T000000Z"
    md = (run_dir / "summary.md").read_text()
    assert "| b | unreachable | - | down |" in md and "By status: 1 findings, 1 unreachable." in md
    page = _Page()
    page.feed((run_dir / "summary.html").read_text())
    assert page.open == []
    assert {"chart", "status-counts", "findings", "hosts"} <= set(page.ids)
    assert page.external == [] and page.bars == {"findings": "1", "unreachable": "1"}
    assert "1900/udp &lt;&amp;&gt;" in (run_dir / "summary.html").read_text()


# In a real browser engine (Debian's chromium-headless-shell, which make test installs):
# the page loads no resource, the chart's bars are laid out in the SVG namespace with
# widths that grow with their counts, and every table row renders. The probe script is
# appended to a copy of the page, so the page itself stays script-free.
BROWSER = "chromium-headless-shell"
PROBE = """<script>
const bars = [...document.querySelectorAll('#chart rect.bar')].map(r => ({
  status: r.dataset.status, count: Number(r.dataset.count),
  width: r.getBoundingClientRect().width, svg: r.namespaceURI.endsWith('/svg')}));
const rows = id => [...document.querySelectorAll('#' + id + ' tr')]
  .filter(tr => tr.getBoundingClientRect().height > 0).length;
document.body.insertAdjacentHTML('beforeend', '<pre id="probe"></pre>');
document.getElementById('probe').textContent = JSON.stringify({
  bars, resources: performance.getEntriesByType('resource').length,
  rows: {counts: rows('status-counts'), findings: rows('findings'), hosts: rows('hosts')}});
</script>"""


def test_the_page_renders_in_a_browser_engine(tmp_path: Path) -> None:
    browser = shutil.which(BROWSER)
    assert browser, f"{BROWSER} is not installed (make test installs it: apt-get install {BROWSER})"
    held = finding("held", "1900/udp", "critical")
    hostvars = {
        "a": {"netmedic_plan": plan([held], [("held", "approval")])},
        "b": {"netmedic_plan": plan([held], [("held", "approval")])},
        "c": {"netmedic_plan": {"unreachable": True, "msg": "down"}},
    }
    run_dir = tmp_path / RUN["started"]
    report.write_report(str(run_dir), RUN, report.build_records("site", hostvars, hostvars, RUN))
    page = tmp_path / "probe.html"
    page.write_text((run_dir / "summary.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [browser, "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    # The last <pre id="probe">: the script's own text names it first.
    probe = json.loads(html.unescape(dom.rsplit('<pre id="probe">', 1)[1].split("</pre>")[0]))
    assert probe["resources"] == 0
    widths = {drawn["status"]: drawn["width"] for drawn in probe["bars"] if drawn["svg"]}
    assert set(widths) == {"findings", "unreachable"}
    assert widths["findings"] > widths["unreachable"] > 0
    # Header rows included: two statuses, two hosts' one finding each, three hosts.
    assert probe["rows"] == {"counts": 3, "findings": 3, "hosts": 4}
