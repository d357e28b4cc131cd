"""Time ``netmedic facts --only ports`` against ss, psutil and listen_ports_facts, same host.

``.venv/bin/python bench/compare_ports.py --preset medium`` starts bench/loadgen.py's
load (listeners first, TIME_WAIT later), then in the same run:

1. flatness: ``netmedic facts --only ports`` at the host's baseline TIME_WAIT
   count and again with the preset's TIME_WAIT sockets alive;
2. whole-process wall time (median of ``--runs``, runs interleaved across
   tools, each round in a rotated order, so background noise hits all
   alike), CPU time and peak RSS (wait4's rusage of each child) of: the
   netmedic CLI run exactly the way targets run it (``PYTHONPATH=<agent>``
   and the command roles/netmedic_agent's wrapper execs, read from its
   template by bench/wrapper_command.py:
   ``/usr/bin/python3 -B -S -c 'from netmedic.cli import run; run()'``;
   ``--python`` picks another interpreter), the same without bytecode on disk,
   each ``--ref``'s agent the same way (a before/after in one run), ``ss -tulpnH``,
   a psutil.net_connections script that maps owners, and
   ``community.general.listen_ports_facts`` (fewer runs: it forks ``ps`` twice
   per socket), plus the full ``netmedic facts``. Before each sample the
   TIME_WAIT keeper refills to the preset's count and is stopped
   (``LoadGen.top_up``), so its connection churn does not run beside the
   sample; ``--busy-keeper`` leaves it running, as earlier rounds did;
3. agreement: the (proto, address, port, pid) sets each tool reports for the
   load's sockets, compared with what the load generator knows it created.

Writes ``bench/results/ports-<preset>-<utc time>.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
# netlink_ms() times this checkout's netlink.py, not the venv's installed netmedic.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))
from loadgen import PRESETS, LoadGen, tw_count
from record import write_result
from wrapper_command import (
    REPO,
    add_python_option,
    checkout,
    compile_agent,
    resolve,
    wrapper_command,
)

VENV = REPO / ".venv" / "bin"
PYTHON = str(VENV / "python")
PORTS = "netmedic facts --only ports"
PORTS_NO_PYC = "netmedic --only ports, no .pyc"
PORTS_ARGS = ("facts", "--only", "ports", "--format", "json")
Pair = Tuple[str, str, int, int]  # proto, address, port, pid

ANSIBLE_ENV = {
    "ANSIBLE_PYTHON_INTERPRETER": str(VENV / "python"),
    "ANSIBLE_LOCALHOST_WARNING": "False",
    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
    "ANSIBLE_LOAD_CALLBACK_PLUGINS": "True",
    "ANSIBLE_STDOUT_CALLBACK": "json",
}


@dataclass
class Tool:
    """A command to time and the parser that turns its stdout into (proto, addr, port, pid)."""

    name: str
    argv: List[str]
    parse: Callable[[str], Set[Pair]]
    runs: int
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system of the child and the children it waited for
    returncode: int


def run_once(argv: List[str], env: Dict[str, str]) -> Tuple[Sample, str]:
    """Spawn ``argv``, wait4 it: wall time, user+sys CPU and peak RSS of it and its children."""
    with tempfile.TemporaryFile() as out:
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1)]
        devnull = os.open(os.devnull, os.O_WRONLY)
        actions.append((os.POSIX_SPAWN_DUP2, devnull, 2))
        started = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, {**os.environ, **env}, file_actions=actions)
        _pid, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        os.close(devnull)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    sample = Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        returncode=os.waitstatus_to_exitcode(status),
    )
    return sample, text


def norm(address: str) -> str:
    """One spelling per address: ``"[::1]"`` / ``"::1%lo"`` → ``"::1"``."""
    address = address.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def parse_netmedic(text: str) -> Set[Pair]:
    doc = json.loads(text)
    family = doc.get("ports", doc)
    pairs = set()
    for entry in family["sockets"]:
        pids = ([entry["owner"]["pid"]] if entry["owner"] else []) + entry["other_pids"]
        for pid in pids:
            pairs.add((entry["proto"], norm(entry["address"]), entry["port"], pid))
    return pairs


SS_LINE = re.compile(r"^(\S+)\s+\S+\s+\d+\s+\d+\s+(\S+)\s+\S+\s*(.*)$")


def parse_ss(text: str) -> Set[Pair]:
    """``tcp LISTEN 0 16 127.0.0.1:20000 0.0.0.0:* users:(("nm-load-0",pid=9,fd=3),...)``."""
    pairs = set()
    for line in text.splitlines():
        match = SS_LINE.match(line)
        if not match:
            continue
        proto, local, users = match.groups()
        address, port = local.rsplit(":", 1)
        for pid in re.findall(r"pid=(\d+)", users):
            pairs.add((proto, norm(address), int(port), int(pid)))
    return pairs


def parse_psutil(text: str) -> Set[Pair]:
    return {
        (row["proto"], norm(row["address"]), row["port"], row["pid"])
        for row in json.loads(text)
        if row["pid"] is not None
    }


def parse_listen_ports_facts(text: str) -> Set[Pair]:
    """The json stdout callback's result for localhost: ansible_facts.{tcp,udp}_listen."""
    doc = json.loads(text[text.index("{") :])
    facts = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    pairs = set()
    for proto in ("tcp", "udp"):
        for row in facts[f"{proto}_listen"]:
            pairs.add((proto, norm(row["address"]), int(row["port"]), int(row["pid"])))
    return pairs


def tools(lpf_runs: int, runs: int, python: str, no_pyc_tree: str) -> List[Tool]:
    agent = {"PYTHONPATH": str(REPO / "agent")}
    ansible = [
        str(VENV / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
        "-m", "community.general.listen_ports_facts", "-a", "command=ss",
    ]  # fmt: skip
    return [
        Tool(PORTS, wrapper_command(python, *PORTS_ARGS), parse_netmedic, runs, agent),
        Tool(
            PORTS_NO_PYC,
            wrapper_command(python, *PORTS_ARGS),
            parse_netmedic,
            runs,
            {"PYTHONPATH": no_pyc_tree},
        ),
        Tool("ss -tulpnH", ["ss", "-tulpnH"], parse_ss, runs, {"LANG": "C"}),
        Tool(
            "psutil script", [PYTHON, str(REPO / "bench" / "psutil_ports.py")], parse_psutil, runs
        ),
        Tool("listen_ports_facts", ansible, parse_listen_ports_facts, lpf_runs, ANSIBLE_ENV),
    ]


def ref_tool(ref: str, into: Path, python: str, runs: int) -> Tool:
    """``facts --only ports`` of ``ref``'s agent, run with that commit's wrapper command.

    Its bytecode is compiled as the role compiles it today (older roles shipped
    sources only: the "no .pyc" row shows what that costs).
    """
    into.mkdir()
    tree = checkout(ref, into)
    compile_agent(python, tree["agent"])
    argv = wrapper_command(python, *PORTS_ARGS, template=tree["template"])
    return Tool(f"{PORTS} at {ref}", argv, parse_netmedic, runs, {"PYTHONPATH": str(tree["agent"])})


def measure(batch: List[Tool], settle: Callable[[], int]) -> Dict[str, Dict[str, Any]]:
    """Interleave runs across tools; keep each tool's samples and last output's pairs.

    Each round starts one tool further along, so that no tool always runs right
    after the same one (the psutil script's second of CPU, say). ``settle()`` runs
    before each sample and returns the TIME_WAIT count the sample starts at.
    """
    samples: Dict[str, List[Sample]] = {t.name: [] for t in batch}
    time_wait: Dict[str, List[int]] = {t.name: [] for t in batch}
    pairs: Dict[str, Set[Pair]] = {}
    for round_ in range(max(t.runs for t in batch)):
        turn = round_ % len(batch)
        for tool in batch[turn:] + batch[:turn]:
            if round_ >= tool.runs:
                continue
            time_wait[tool.name].append(settle())
            sample, text = run_once(tool.argv, tool.env)
            samples[tool.name].append(sample)
            if sample.returncode != 0:
                raise SystemExit(f"{tool.name} failed (rc {sample.returncode}): {text[:500]}")
            pairs[tool.name] = tool.parse(text)
    return {
        tool.name: {**summarize(samples[tool.name]), "pairs": pairs.get(tool.name, set()),
                    "peak_rss_kb": peak_rss_kb(tool),
                    "time_wait_min": min(time_wait[tool.name]),
                    "time_wait_max": max(time_wait[tool.name])}
        for tool in batch
    }  # fmt: skip


def summarize(runs: List[Sample]) -> Dict[str, Any]:
    return {
        "runs": len(runs),
        "wall_median_s": statistics.median(s.wall for s in runs),
        "wall_min_s": min(s.wall for s in runs),
        "cpu_median_s": statistics.median(s.cpu for s in runs),
        "wall_s": [round(s.wall, 6) for s in runs],  # in round order: see paired_ratio
    }


def paired_ratio(tool: Dict[str, Any], other: Dict[str, Any]) -> float:
    """Median over rounds of ``tool``'s wall time over ``other``'s in the same round.

    The VM's speed drifts over seconds, more than the ratio of two medians can
    hide; two samples of one round are at most a round apart, so their ratio
    cancels most of that drift (docs/performance.md, "How it is measured").
    """
    ratios: List[float] = [a / b for a, b in zip(tool["wall_s"], other["wall_s"])]
    return statistics.median(ratios)


def peak_rss_kb(tool: Tool) -> int:
    """Peak RSS from one extra run under /usr/bin/time.

    Not from the timed runs: a child spawned from this process records this
    process's own RSS at exec (vfork shares our mm), so wait4's ru_maxrss
    would never be below ours. /usr/bin/time's children start from a tiny mm.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        run_once(["/usr/bin/time", "-f", "%M", "-o", report.name, *tool.argv], tool.env)
        return int(report.read().split()[-1])


def agreement(results: Dict[str, Dict[str, Any]], expected: Set[Pair]) -> Dict[str, Any]:
    """Per tool: pairs of the load's sockets missing or extra versus what the load created."""
    ports = {(proto, port) for proto, _a, port, _p in expected}
    report = {}
    for name, result in results.items():
        seen = {p for p in result["pairs"] if (p[0], p[2]) in ports}
        report[name] = {
            "pairs": len(seen),
            "missing": sorted(expected - seen)[:20],
            "missing_count": len(expected - seen),
            "extra": sorted(seen - expected)[:20],
            "extra_count": len(seen - expected),
        }
    return report


def netlink_ms(repeat: int = 21) -> float:
    """Median in-process time of the sock_diag dump alone: the part TIME_WAIT could slow."""
    from netmedic.netlink import bound_sockets  # noqa: PLC0415 - only needed here

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        bound_sockets()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def wait_for_time_wait_to_drain(limit: int = 1000, timeout: float = 75.0) -> None:
    """Let an earlier run's TIME_WAIT sockets expire (60 s) so the flatness baseline is low."""
    deadline = time.monotonic() + timeout
    while tw_count() > limit and time.monotonic() < deadline:
        time.sleep(1.0)


def without_pairs(result: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in result.items() if k != "pairs"}


def expected_pairs(load: LoadGen) -> Set[Pair]:
    return {(s.proto, norm(s.address), s.port, pid) for s in load.sockets for pid in s.pids}


def table(rows: List[Tuple[str, Dict[str, Any]]], baseline: Dict[str, Any]) -> str:
    lines = [
        "| tool | runs | median wall (ms) | min wall (ms) | median CPU (ms) | peak RSS (MB) "
        "| wall vs netmedic ports | CPU vs netmedic ports |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        ratio = r["wall_median_s"] / baseline["wall_median_s"]
        cpu_ratio = r["cpu_median_s"] / baseline["cpu_median_s"]
        lines.append(
            f"| {name} | {r['runs']} | {r['wall_median_s'] * 1e3:.1f} | {r['wall_min_s'] * 1e3:.1f}"
            f" | {r['cpu_median_s'] * 1e3:.1f} | {r['peak_rss_kb'] / 1024:.1f} | {ratio:.2f}x"
            f" | {cpu_ratio:.2f}x |"
        )
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="medium")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--lpf-runs", type=int, default=2, help="listen_ports_facts runs")
    parser.add_argument("--no-lpf", action="store_true", help="skip listen_ports_facts")
    parser.add_argument(
        "--busy-keeper", action="store_true",
        help="leave the TIME_WAIT keeper running during samples (rounds before 2026-12-01 night)",
    )  # fmt: skip
    parser.add_argument(
        "--ref", action="append", default=[],
        help="also time `facts --only ports` of this git ref's agent, interleaved (repeat)",
    )  # fmt: skip
    add_python_option(parser)
    args = parser.parse_args(argv)
    if len(set(args.ref)) != len(args.ref):
        parser.error(f"--ref given twice: {args.ref}")  # one row per ref
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # The main rows time the agent with its bytecode compiled as the role compiles
    # it; the "no .pyc" row runs a copy without __pycache__: what a target pays
    # when the bytecode is missing (-B never writes it, so every run compiles).
    compile_agent(args.python, REPO / "agent")
    no_pyc = tempfile.TemporaryDirectory(prefix="netmedic-src-")
    shutil.copytree(
        REPO / "agent" / "netmedic", Path(no_pyc.name) / "netmedic",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )  # fmt: skip
    batch = tools(args.lpf_runs, args.runs, args.python, no_pyc.name)
    refs = tempfile.TemporaryDirectory(prefix="netmedic-refs-")
    ref_tools = [
        ref_tool(ref, Path(refs.name) / str(index), args.python, args.runs)
        for index, ref in enumerate(args.ref)
    ]
    ports_tool, full = batch[0], Tool(
        "netmedic facts (all families)", wrapper_command(args.python, "facts", "--format", "json"),
        lambda _text: set(), max(3, args.runs // 2), {"PYTHONPATH": str(REPO / "agent")},
    )  # fmt: skip
    if args.no_lpf:
        batch = batch[:4]
    batch[1:1] = ref_tools  # next to this tree's row
    wait_for_time_wait_to_drain()
    started, load_at_start = time.time(), os.getloadavg()
    with no_pyc, refs, LoadGen(PRESETS[args.preset]) as load:
        tw_before = tw_count()
        flat_low = measure([ports_tool], load.top_up)[ports_tool.name]
        flat_low["netlink_dump_ms"] = netlink_ms()
        tw_after = load.fill_time_wait(load.preset.time_wait)
        settle = tw_count if args.busy_keeper else load.top_up
        flat_high = measure([ports_tool], settle)[ports_tool.name]
        flat_high["netlink_dump_ms"] = netlink_ms()
        results = measure(batch, settle)
        results[full.name] = measure([full], settle)[full.name]
        tw_end = tw_count()
        expected = expected_pairs(load)
        summary = load.summary()
    by_name = dict(results)
    base = by_name[ports_tool.name]
    ss = by_name["ss -tulpnH"]
    ratios = {
        "netmedic_ports_vs_ss": base["wall_median_s"] / ss["wall_median_s"],
        "netmedic_ports_vs_ss_cpu": base["cpu_median_s"] / ss["cpu_median_s"],
        "netmedic_ports_vs_ss_min_wall": base["wall_min_s"] / ss["wall_min_s"],
        "netmedic_ports_vs_ss_paired": paired_ratio(base, ss),
        "psutil_vs_netmedic_ports": (
            by_name["psutil script"]["wall_median_s"] / base["wall_median_s"]
        ),
        "time_wait_flatness": flat_high["wall_median_s"] / flat_low["wall_median_s"],
    }
    for ref, tool in zip(args.ref, ref_tools):
        ratios[f"netmedic_ports_at_{ref}_vs_ss_paired"] = paired_ratio(by_name[tool.name], ss)
        ratios[f"netmedic_ports_at_{ref}_vs_netmedic_ports_paired"] = paired_ratio(
            by_name[tool.name], base
        )
    if "listen_ports_facts" in by_name:
        lpf = by_name["listen_ports_facts"]
        ratios["listen_ports_facts_vs_netmedic_ports"] = (
            lpf["wall_median_s"] / base["wall_median_s"]
        )
        ratios["listen_ports_facts_vs_netmedic_ports_cpu"] = (
            lpf["cpu_median_s"] / base["cpu_median_s"]
        )
    agree = agreement({k: v for k, v in results.items() if v["pairs"]}, expected)
    record = {
        "preset": args.preset,
        "load": summary | {"time_wait_at_flat_low": tw_before, "time_wait_at_flat_high": tw_after,
                           "time_wait_at_end": tw_end},
        "netmedic_command": " ".join(["PYTHONPATH=agent", *ports_tool.argv]),
        "python": args.python,
        "keeper": "running" if args.busy_keeper else "stopped during samples",
        "refs": {ref: resolve(ref) for ref in args.ref},
        "results": {k: without_pairs(v) for k, v in results.items()},
        "flatness": {"low": without_pairs(flat_low), "high": without_pairs(flat_high)},
        "ratios": ratios,
        "agreement": agree,
    }  # fmt: skip
    out = write_result(f"ports-{args.preset}", record, started, load_at_start)
    print(f"## ports benchmark, preset {args.preset} ({summary})\n")
    print(f"netmedic command: {record['netmedic_command']}; load average at start "
          f"{load_at_start[0]:.2f}, at end {os.getloadavg()[0]:.2f}; TIME_WAIT keeper "
          f"{record['keeper']}, TIME_WAIT at the samples' start "
          f"{min(r['time_wait_min'] for r in results.values())}-"
          f"{max(r['time_wait_max'] for r in results.values())}\n")  # fmt: skip
    print(table(list(results.items()), base))
    print(
        f"\nTIME_WAIT flatness: {flat_low['wall_median_s'] * 1e3:.1f} ms at {tw_before} TIME_WAIT, "
        f"{flat_high['wall_median_s'] * 1e3:.1f} ms at {tw_after} "
        f"({ratios['time_wait_flatness']:.2f}x); sock_diag dump alone, in process: "
        f"{flat_low['netlink_dump_ms']:.2f} ms vs {flat_high['netlink_dump_ms']:.2f} ms"
    )
    print("\nRatios: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    print("\nAgreement with the sockets the load created (pairs of proto, address, port, pid):")
    for name, a in agree.items():
        print(f"- {name}: {a['pairs']} pairs, {a['missing_count']} missing, "
              f"{a['extra_count']} extra")  # fmt: skip
    print(f"\nwritten: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
