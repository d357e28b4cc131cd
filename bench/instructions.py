"""Instructions (callgrind) of the command the agent wrapper execs, this tree against git refs.

``.venv/bin/python bench/instructions.py --preset medium --ref fd175f2`` starts
bench/loadgen.py's listeners (no TIME_WAIT: the kernel filters those out of
the dump), then runs ``facts --only ports --format json`` under
``valgrind --tool=callgrind`` for each agent: the working tree's and each
``--ref``'s (``git archive``), each with the wrapper command of its own
template (bench/wrapper_command.py) and its bytecode compiled the way the role
compiles it (checked-hash). Runs are interleaved so that drift in the host's
process and fd count hits every agent alike; medians are reported.

Callgrind counts user-space instructions only: a measure of the agent's own
work that background load does not move, blind to the kernel's share (the
/proc reads), which the whole-process timings of compare_ports.py include.
Writes ``bench/results/instructions-<preset>-<utc time>.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import PRESETS, LoadGen
from record import write_result
from wrapper_command import REPO, checkout, compile_agent, resolve, wrapper_command

_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(argv: List[str], agent: Path) -> int:
    """User-space instructions callgrind counts for one run of ``argv``."""
    # A fixed hash seed: str hashes decide dict layouts and so collisions, which
    # move a run's count by up to ~1% from one seed to the next.
    env = {**os.environ, "PYTHONPATH": str(agent), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{argv} failed (rc {done.returncode}): {done.stderr[-500:]}")
    return int(match.group(1))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="medium")
    parser.add_argument("--ref", action="append", default=[], help="git ref to compare (repeat)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default="/usr/bin/python3", help="the targets' interpreter")
    parser.add_argument("--args", default="facts --only ports --format json")
    args = parser.parse_args(argv)
    names = ["working tree", *args.ref]
    counts: Dict[str, List[int]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="netmedic-refs-") as scratch:
        trees = {}
        for index, name in enumerate(names):
            into = Path(scratch) / str(index)
            into.mkdir()
            trees[name] = checkout(None if index == 0 else name, into)
            compile_agent(args.python, trees[name]["agent"])
        commands = {
            name: wrapper_command(args.python, *args.args.split(), template=tree["template"])
            for name, tree in trees.items()
        }
        started, load_at_start = time.time(), os.getloadavg()
        with LoadGen(PRESETS[args.preset]) as load:
            for _ in range(args.runs):
                for name in names:
                    counts[name].append(instructions(commands[name], trees[name]["agent"]))
            summary = load.summary()
    medians = {name: statistics.median(values) for name, values in counts.items()}
    record: Dict[str, Any] = {
        "preset": args.preset,
        "load": summary,
        "refs": {ref: resolve(ref) for ref in args.ref},
        "commands": commands,
        "instructions": counts,
        "median": medians,
    }
    out = write_result(f"instructions-{args.preset}", record, started, load_at_start)
    print(f"## callgrind instructions, preset {args.preset} ({summary}), `{args.args}`\n")
    print("| agent | command | median (M) | min (M) | max (M) | vs working tree |")
    print("|---|---|---:|---:|---:|---:|")
    base = medians[names[0]]
    for name in names:
        values = counts[name]
        flags = commands[name][1 : commands[name].index("-c") + 2]
        print(
            f"| {name} | `{shlex.join(flags)}` | {medians[name] / 1e6:.1f}"
            f" | {min(values) / 1e6:.1f} | {max(values) / 1e6:.1f} | {medians[name] / base:.2f}x |"
        )
    print(f"\nwritten: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
