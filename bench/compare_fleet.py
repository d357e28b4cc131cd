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
   scheduled run). One untimed site.yml run heals the fleet first.

Wall time is measured around each whole command; CPU is the controller's
(user + system of ansible and its workers, from wait4), not the containers'.
Per-host cost is wall time / hosts. The ratios to ``setup`` are paired (the median
over rounds of each round's ratio, as bench/compare_ports.py pairs them), and
checked against the targets (site.yml ≤ 1.5x, facts.yml ≤ 1.2x). ``--profile``
then runs each playbook once more with the ``ansible.posix.profile_tasks``
callback and keeps its per-task times. The projection: the controller's CPU per
host over its cores, and the wall per host over ``--project-forks``, whichever
allows fewer hosts per hour. Writes ``bench/results/fleet-<utc time>.json`` and
prints a markdown table.
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
from compare_ports import Sample, paired_ratio, run_once, summarize
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
        (SETUP, setup),
        (FACTS, [*playbook, str(REPO / "playbooks/facts.yml")]),
        (SITE, [*playbook, str(REPO / "playbooks/site.yml")]),
    ]


def heal(cmds: List[Tuple[str, List[str]]], env: Dict[str, str]) -> float:
    """One untimed site.yml first: the rounds time the steady state, not the fix of
    whatever the lab left planted (make lab ends with the VPN incident planted again)."""
    sample, text = run_once(dict(cmds)[SITE], env)
    if sample.returncode != 0:
        raise SystemExit(f"the healing site.yml failed (rc {sample.returncode}): {text[-2000:]}")
    return round(sample.wall, 3)


def measure(cmds: List[Tuple[str, List[str]]], runs: int, env: Dict[str, str]) -> Dict[str, Any]:
    samples: Dict[str, List[Sample]] = {name: [] for name, _ in cmds}
    for _ in range(runs):
        for name, argv in cmds:
            sample, text = run_once(argv, env)
            if sample.returncode != 0:
                raise SystemExit(f"{name} failed (rc {sample.returncode}): {text[-2000:]}")
            samples[name].append(sample)
    return {name: summarize(samples[name]) for name, _ in cmds}


SETUP, FACTS, SITE = "ansible -m setup", "facts.yml", "site.yml (nothing to fix)"
TARGETS = {FACTS: 1.2, SITE: 1.5}  # paired wall-time ratio to `ansible -m setup`, at most


def profile(
    cmds: List[Tuple[str, List[str]]], env: Dict[str, str]
) -> Dict[str, List[Dict[str, Any]]]:
    """Each playbook's per-task times from one run under ansible.posix.profile_tasks.

    Its summary lines read ``Diagnose and plan ---- 1.23s``; the slowest come first.
    """
    env = dict(
        env,
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
    )
    tasks: Dict[str, List[Dict[str, Any]]] = {}
    for name, argv in cmds:
        if name == SETUP:
            continue
        sample, text = run_once(argv, env)
        if sample.returncode != 0:
            raise SystemExit(
                f"{name} failed under profile_tasks ({sample.returncode}): {text[-2000:]}"
            )
        rows = []
        for line in text.splitlines():
            task, _, seconds = line.rpartition(" ")
            if seconds.endswith("s") and " ---" in task:
                rows.append({"task": task.split(" ---")[0].strip(), "seconds": float(seconds[:-1])})
        tasks[name] = rows
    return tasks


def projection(results: Dict[str, Any], hosts: int, forks: int, at_forks: int) -> Dict[str, Any]:
    """Hosts per hour one controller runs site.yml on in the steady state, and what bounds it.

    CPU-bound: cores * 3600 s / controller CPU seconds per host. Latency-bound:
    ``at_forks`` * 3600 s / the seconds one fork spends per host, which the run measured
    as wall * min(forks, hosts) / hosts (each fork works through one host at a time).
    The smaller of the two is the projection.
    """
    site = results[SITE]
    cores = os.cpu_count() or 1
    cpu_per_host = site["cpu_median_s"] / hosts
    fork_seconds_per_host = site["wall_median_s"] * min(forks, hosts) / hosts
    cpu_bound = cores * 3600 / cpu_per_host
    latency_bound = at_forks * 3600 / fork_seconds_per_host
    return {
        "cores": cores,
        "forks": at_forks,
        "cpu_s_per_host": round(cpu_per_host, 3),
        "fork_s_per_host": round(fork_seconds_per_host, 3),
        "cpu_bound_hosts_per_hour": round(cpu_bound),
        "latency_bound_hosts_per_hour": round(latency_bound),
        "hosts_per_hour": round(min(cpu_bound, latency_bound)),
    }


def table(results: Dict[str, Any], hosts: int) -> str:
    baseline = results[SETUP]
    lines = [
        "| command | runs | median wall (s) | min wall (s) | per host (s) | controller CPU (s)"
        " | wall vs setup (paired) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ratio = paired_ratio(r, baseline)
        target = (
            f"≤ {TARGETS[name]}x: {'met' if ratio <= TARGETS[name] else 'MISSED'}"
            if name in TARGETS
            else "-"
        )
        lines.append(
            f"| {name} | {r['runs']} | {r['wall_median_s']:.1f} | {r['wall_min_s']:.1f}"
            f" | {r['wall_median_s'] / hosts:.2f} | {r['cpu_median_s']:.1f}"
            f" | {ratio:.2f}x | {target} |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs every command once)")
    parser.add_argument("--limit", default="lab", help="an ansible --limit pattern in the lab")
    parser.add_argument("--forks", type=int, default=12, help="ansible forks (make lab uses 12)")
    parser.add_argument("--profile", action="store_true", help="also one profile_tasks run each")
    parser.add_argument("--project-forks", type=int, default=50, help="forks of the projection")
    args = parser.parse_args(argv)
    hosts = lab_hosts(args.limit)
    env = {"ANSIBLE_FORKS": str(args.forks), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal"}
    started, load_start = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="netmedic-bench-reports.") as reports:
        cmds = commands(args.limit, reports)
        warmup = heal(cmds, env)
        results = measure(cmds, args.runs, env)
        tasks = profile(cmds, env) if args.profile else {}
    ratios = {name: round(paired_ratio(results[name], results[SETUP]), 3) for name in TARGETS}
    record = {
        "command": " ".join(["bench/compare_fleet.py", *(sys.argv[1:] if argv is None else argv)]),
        "hosts": hosts,
        "forks": args.forks,
        "healing_site_wall_s": warmup,
        "results": results,
        "ratios_to_setup_paired": ratios,
        "targets": TARGETS,
        "targets_met": {name: ratios[name] <= limit for name, limit in TARGETS.items()},
        "projection": projection(results, len(hosts), args.forks, args.project_forks),
        "profile_tasks": tasks,
    }
    path = write_result("fleet", record, started, load_start)
    load_end = os.getloadavg()[0]
    print(f"{len(hosts)} lab hosts, forks {args.forks}, load {load_start[0]:.1f} → {load_end:.1f}")
    print(table(results, len(hosts)))
    print(f"projection: {record['projection']}")
    print(f"raw: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
