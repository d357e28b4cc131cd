"""How ``netmedic diagnose`` scales with the sockets in a facts document.

``.venv/bin/python bench/diagnose_scaling.py [--runs 3] [--ref REF ...]`` writes
synthetic facts documents and times ``netmedic diagnose --facts F --config C
--format json`` on each, run as targets run the agent (the wrapper's command with
/usr/bin/python3, ``--python`` picks another; bytecode compiled), wall time
around the whole process: reading and checking the document, loading the
catalog, matching, writing the findings. Two shapes:

- ``spread``: N sockets over N/4 ports, 40 declared ports, every 4th of them held
  by a program other than its declared owner (1k, 10k, 100k sockets);
- ``one-port``: N sockets on one declared port (0.0.0.0:1900/udp, a
  SO_REUSEPORT group of N worker pids of another program), the declaration
  remapping its owner (1k, 2k, 4k, 10k, 100k sockets): each socket is a holder,
  which the entry's ``not: some: in ports.sockets`` clause joined to every socket.

The record (``bench/results/diagnose-<time>.json``) has each case's median and
minimum wall time, the findings and evidence lines it gave, and the document's
size; ``--ref`` times another commit's agent on the same documents (a before
and after in one run). The document is built by :func:`synthetic_facts`, which
agent/tests/test_diagnose_scaling.py uses too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import write_result
from wrapper_command import (
    add_python_option,
    checkout,
    compile_agent,
    resolve,
    wrapper_command,
)

CASES: List[Tuple[str, int]] = [
    ("spread", 1_000), ("spread", 10_000), ("spread", 100_000),
    ("one-port", 1_000), ("one-port", 2_000), ("one-port", 4_000), ("one-port", 10_000),
    ("one-port", 100_000),
]  # fmt: skip
DECLARED_PORTS = 40
CONFIG = {
    "ports": [
        {"port": 1900, "proto": "udp", "owner": "airupnp.service", "remap": {"port": 1901}},
        *({"port": 20000 + 4 * i, "proto": "tcp", "owner": f"web{i}.service"}
          for i in range(DECLARED_PORTS)),
    ]
}  # fmt: skip


def _socket(proto: str, address: str, port: int, inode: int, owner: Dict[str, Any]) -> Any:
    return {
        "proto": proto, "family": "ipv4", "address": address, "port": port, "inode": inode,
        "uid": 0, "netns": "net:[4026531840]", "owner": owner, "owner_reason": None,
        "other_pids": [], "sharing": {"reuse_addr": False, "reuse_port": True},
    }  # fmt: skip


def _owner(pid: int, unit: str) -> Dict[str, Any]:
    name = unit.split(".", maxsplit=1)[0]
    return {"pid": pid, "name": name, "exe": f"/usr/sbin/{name}",
            "user": "root", "unit": unit, "container_id": None}  # fmt: skip


def synthetic_facts(shape: str, sockets: int) -> Dict[str, Any]:
    """A facts document (``ports`` only) with ``sockets`` sockets of the given shape."""
    found = []
    if shape == "one-port":
        found = [_socket("udp", "0.0.0.0", 1900, 10_000 + i, _owner(1000 + i, "plex.service"))
                 for i in range(sockets)]  # fmt: skip
    else:
        for i in range(sockets):
            port = 20000 + i // 4
            declared = (port - 20000) // 4 if port % 4 == 0 else None
            declared = declared if declared is not None and declared < DECLARED_PORTS else None
            unit = f"web{declared}.service" if declared is not None else f"svc{port}.service"
            if declared is not None and declared % 4 == 0:
                unit = "intruder.service"  # every 4th declared port is held by another program
            found.append(_socket("tcp", f"127.0.{i % 4}.1", port, 10_000 + i,
                                 _owner(1000 + i // 4, unit)))  # fmt: skip
    return {
        "schema_version": 2, "agent_version": "0.0.0+bench", "host": f"{shape}-{sockets}",
        "collected_at": "2026-12-01T00:00:00Z",
        "duration_ms": 1, "ports": {"source": "netlink", "sockets": found}, "errors": [],
    }  # fmt: skip


def time_case(argv: List[str], env: Dict[str, str], runs: int) -> Dict[str, Any]:
    """Wall times of ``argv`` (seconds, in run order) and what its last run printed."""
    walls = []
    printed: Dict[str, Any] = {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode not in (0, 1, 2):
            raise RuntimeError(f"{argv}: exit {done.returncode}: {done.stderr}")
        printed = json.loads(done.stdout)
    findings = printed["findings"]
    return {
        "wall_s": [round(w, 3) for w in walls],
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "findings": len(findings),
        "evidence_lines": sum(len(f["evidence"]) for f in findings),
    }


def agents(refs: List[str], into: Path, python: str) -> List[Tuple[str, Path, Path]]:
    """(label, agent dir, wrapper template) of this tree and each ``--ref``, compiled."""
    found = []
    for ref in [None, *refs]:
        target = into / (ref or "tree").replace("/", "_")
        target.mkdir()
        tree = checkout(ref, target)
        compile_agent(python, tree["agent"])
        found.append((ref or "this tree", tree["agent"], tree["template"]))
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref", action="append", default=[], help="also time this commit")
    parser.add_argument(
        "--ref-max-sockets",
        type=int,
        default=4_000,
        help="time a --ref only up to this many sockets (a quadratic one takes hours at 100k)",
    )
    add_python_option(parser)
    args = parser.parse_args(argv)
    started, load = time.time(), os.getloadavg()
    results: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "config.yml").write_text(json.dumps(CONFIG))
        trees = agents(args.ref, root, args.python)
        for shape, count in CASES:
            facts = root / f"{shape}-{count}.json"
            facts.write_text(json.dumps(synthetic_facts(shape, count)))
            case = results[f"{shape} {count}"] = {"bytes": facts.stat().st_size}
            for label, agent, template in trees:
                if label != "this tree" and count > args.ref_max_sockets:
                    continue
                command = wrapper_command(args.python, "diagnose", "--facts", str(facts),
                                          "--config", str(root / "config.yml"), "--format",
                                          "json", template=template)  # fmt: skip
                case[label] = time_case(command, {"PYTHONPATH": str(agent)}, args.runs)
                print(f"{shape:>8} {count:>7} {label}: {case[label]['median_s']} s", flush=True)
            facts.unlink()
    record = {
        "command": " ".join(["bench/diagnose_scaling.py", *(argv or sys.argv[1:])]),
        "refs": {ref: resolve(ref) for ref in args.ref},
        "python": args.python,
        "python_version": subprocess.run(
            [args.python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "cases": results,
    }
    print(write_result("diagnose", record, started, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
