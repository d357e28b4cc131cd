"""Time site.yml and facts.yml on the lab fleet against a bare ``ansible -m setup``, same hosts.

``.venv/bin/python bench/compare_fleet.py`` (``make bench-fleet``) needs the lab
fleet up and healed (``make lab``). In one run, interleaved round by round so
background noise hits every command alike, it times on the same hosts:

1. ``ansible lab -m ansible.builtin.setup``: Ansible's own fact gathering, the
   least any playbook run pays;
2. ``playbooks/facts.yml``: refresh the agent, gather its facts, diagnose, write
   the fleet report;
3. ``playbooks/site.yml`` on the healed fleet: the same plus the policy plan and
   the verification steps, with nothing left to fix (the steady state of a
   scheduled run).

Wall time is measured around each whole command; CPU is the controller's
(user + system of ansible and its workers, from wait4), not the containers'.
Per-host cost is wall time / hosts. Writes ``bench/results/fleet-<utc time>.json``
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_ports import Sample, run_once, summarize
from record import write_result

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv" / "bin"
INVENTORY = str(REPO / "inventories" / "lab")


def lab_hosts(limit: str) -> List[str]:
    """The fleet's hosts under ``limit``, as ansible resolves them (fails when none is up)."""
    sample, text = run_once(
        [str(VENV / "ansible"), "-i", INVENTORY, "lab", "--limit", limit, "--list-hosts"], {}
    )
    if sample.returncode != 0:
        raise SystemExit(f"cannot list the lab hosts: {text}")
    return [line.strip() for line in text.splitlines()[1:] if line.strip()]


def commands(limit: str, reports: str) -> List[Tuple[str, List[str]]]:
    common = ["-i", INVENTORY, "--limit", limit]
    setup = [str(VENV / "ansible"), *common, "lab", "-m", "ansible.builtin.setup"]
    report = ["-e", f"netmedic_report_root={reports}"]
    playbook = [str(VENV / "ansible-playbook"), *common, *report]
    return [
        ("ansible -m setup", setup),
        ("facts.yml", [*playbook, str(REPO / "playbooks/facts.yml")]),
        ("site.yml (nothing to fix)", [*playbook, str(REPO / "playbooks/site.yml")]),
    ]


def measure(cmds: List[Tuple[str, List[str]]], runs: int, env: Dict[str, str]) -> Dict[str, Any]:
    samples: Dict[str, List[Sample]] = {name: [] for name, _ in cmds}
    for _ in range(runs):
        for name, argv in cmds:
            sample, text = run_once(argv, env)
            if sample.returncode != 0:
                raise SystemExit(f"{name} failed (rc {sample.returncode}): {text[-2000:]}")
            samples[name].append(sample)
    return {name: summarize(samples[name]) for name, _ in cmds}


def table(results: Dict[str, Any], hosts: int) -> str:
    baseline = results["ansible -m setup"]
    lines = [
        "| command | runs | median wall (s) | min wall (s) | per host (s) | controller CPU (s)"
        " | wall vs setup |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['runs']} | {r['wall_median_s']:.1f} | {r['wall_min_s']:.1f}"
            f" | {r['wall_median_s'] / hosts:.2f} | {r['cpu_median_s']:.1f}"
            f" | {r['wall_median_s'] / baseline['wall_median_s']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs every command once)")
    parser.add_argument("--limit", default="lab", help="an ansible --limit pattern in the lab")
    parser.add_argument("--forks", type=int, default=12, help="ansible forks (make lab uses 12)")
    args = parser.parse_args(argv)
    hosts = lab_hosts(args.limit)
    env = {"ANSIBLE_FORKS": str(args.forks), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal"}
    started, load_start = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="netmedic-bench-reports.") as reports:
        results = measure(commands(args.limit, reports), args.runs, env)
    record = {
        "command": " ".join(["bench/compare_fleet.py", *(sys.argv[1:] if argv is None else argv)]),
        "hosts": hosts,
        "forks": args.forks,
        "results": results,
    }
    path = write_result("fleet", record, started, load_start)
    load_end = os.getloadavg()[0]
    print(f"{len(hosts)} lab hosts, forks {args.forks}, load {load_start[0]:.1f} → {load_end:.1f}")
    print(table(results, len(hosts)))
    print(f"raw: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
