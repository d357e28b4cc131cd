"""site.yml and facts.yml as an operator runs them on a fleet with a host that cannot be
reached: serial batches from the inventory, one report for the whole run, every host
accounted for (the unreachable one never healthy), check mode writing the plan."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@pytest.fixture()
def held_port() -> Iterator[int]:
    """A port this test holds inside the ephemeral range, for the hosts to declare."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def inventory(tmp_path: Path, port: int) -> Path:
    """Two hosts on this machine (local connection, the agent of this checkout) and one
    whose SSH port on loopback is closed: unreachable. Batches of one host."""
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "netmedic_agent_path": str(ROOT / "agent"),
        "netmedic_install_agent": False,
        # A port this machine's agent sees held by another program than its owner.
        "netmedic_agent_config": {
            "ports": [{"port": port, "proto": "tcp", "owner": "netmedic-test-owner.service"}]
        },
        "netmedic_policy": {"auto": []},
    }
    hosts = {
        "nm-local-a": local,
        "nm-local-b": local,
        "nm-gone": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh"},
    }
    path = tmp_path / "fleet.yml"
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"netmedic_serial": 1}}}))
    return path


def run(playbook: str, hosts: Path, reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(hosts), f"playbooks/{playbook}",
         "-e", f"netmedic_report_root={reports}", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip


def the_report(reports: Path) -> Dict[str, Dict[str, Any]]:
    (run_dir,) = list(reports.iterdir())  # one directory for the whole run, whatever the batches
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "nm-gone.json",
        "nm-local-a.json",
        "nm-local-b.json",
        "summary.html",
        "summary.md",
    ]
    return {p.stem: json.loads(p.read_text()) for p in run_dir.glob("nm-*.json")}


def batches(output: str) -> List[str]:
    return [
        line
        for line in output.splitlines()
        if line.startswith("PLAY [Diagnose, plan and remediate]")
    ]


def test_site_check_mode_in_batches_reports_every_host_and_the_plan(
    tmp_path: Path, held_port: int
) -> None:
    reports = tmp_path / "reports"
    out = run("site.yml", inventory(tmp_path, held_port), reports, "--check")
    # The unreachable host fails the run, last, after the report; the others went on.
    assert out.returncode != 0, out.stdout[-3000:]
    assert len(batches(out.stdout)) == 3, (
        "netmedic_serial: 1 from the inventory gives three batches"
    )
    report = the_report(reports)
    assert report["nm-gone"]["status"] == "unreachable"
    for host in ("nm-local-a", "nm-local-b"):
        assert report[host]["status"] == "findings", report[host]
        assert report[host]["run"]["check_mode"] is True
        (decision,) = [d for d in report[host]["decisions"] if d["subject"] == f"{held_port}/tcp"]
        assert decision["decision"] == "approval" and "unattended" in decision["reason"]
    summary = (next(reports.iterdir()) / "summary.md").read_text()
    assert "| nm-gone | unreachable |" in summary and "nm-gone | healthy" not in summary
    assert "check mode: the plan, nothing changed" in summary
    recap = out.stdout[out.stdout.index("PLAY RECAP") :]
    assert "nm-gone" in recap and "nm-local-a                 : ok=" in recap


def test_facts_reports_every_host_read_only(tmp_path: Path, held_port: int) -> None:
    reports = tmp_path / "reports"
    out = run("facts.yml", inventory(tmp_path, held_port), reports, "--check")
    assert out.returncode != 0, out.stdout[-3000:]
    report = the_report(reports)
    assert report["nm-gone"]["status"] == "unreachable"
    # No facts.d hook on this machine: not checked, never healthy.
    assert {report[h]["status"] for h in ("nm-local-a", "nm-local-b")} == {"not checked"}
