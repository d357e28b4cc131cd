"""Where ``facts --only ports`` spends its CPU, phase by phase, in one process.

``.venv/bin/python bench/phases.py --preset medium`` starts bench/loadgen.py's
listeners and times each phase of the ports path with ``time.process_time``
(user + system CPU of this process, so background load moves it less than
wall time), median of ``--runs``, with the cyclic garbage collector off as in
``netmedic.cli.run``:

- ``dump``: the sock_diag dump (``netlink.bound_sockets``);
- ``scan``: the ``/proc/*/fd`` pass (``fdtables.scan_socket_holders``);
- ``identities``: one owner identity per holding pid, as the ports family reads it;
- ``join``: ``collectors.ports.join_owners``, i.e. scan + identities + assembly;
- ``json``: the compact encoding of the document (``output.compact_json``).

Run it with the targets' interpreter (``/usr/bin/python3 bench/phases.py``) to
time the agent as they run it; ``--agent DIR`` times another agent tree (a
directory holding ``netmedic/`` with ``output.py`` and ``procfs.py``: a
``git archive`` of this round's commits or later; older ones had neither).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import PRESETS, LoadGen

BENCH = Path(__file__).resolve().parent


def cpu_ms(work: Callable[[], object], runs: int) -> float:
    """Median CPU time of ``work()`` in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.process_time()
        work()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1e3


def phases(runs: int) -> Dict[str, float]:
    """CPU per phase; imports netmedic from wherever main() put it on sys.path."""
    from netmedic import netlink, output, owners, procfs  # noqa: PLC0415 - after --agent is on sys.path
    from netmedic.collectors import ports  # noqa: PLC0415
    from netmedic.context import Context  # noqa: PLC0415

    try:
        from netmedic.fdtables import scan_socket_holders  # noqa: PLC0415
    except ImportError:  # an agent from before fdtables.py: the scan was owners'
        scan_socket_holders = owners.scan_socket_holders  # type: ignore[attr-defined]

    def fresh_caches() -> None:
        # What an earlier run cached (users, units): a new process starts without them.
        owners._USERS.clear()
        procfs._UNIT_CACHE.clear()

    ctx = Context(only=["ports"])
    found = netlink.bound_sockets()
    scan = scan_socket_holders(ctx, [s.inode for s in found])
    pids = sorted({holders[0][0] for holders in scan.holders.values()})

    def identities() -> None:
        fresh_caches()
        cache = ports._IdentityCache(ctx)  # the owner reads join_owners makes, one per pid
        for pid in pids:
            cache[pid]

    def join() -> object:
        fresh_caches()
        return ports.join_owners(ctx, found)

    doc = {"ports": {"source": "netlink", "sockets": join()}}
    return {
        "dump": cpu_ms(netlink.bound_sockets, runs),
        "scan": cpu_ms(lambda: scan_socket_holders(ctx, [s.inode for s in found]), runs),
        "identities": cpu_ms(identities, runs),
        "join": cpu_ms(join, runs),
        "json": cpu_ms(lambda: output.compact_json(doc), runs),
        "sockets": len(found),
        "owners": len(pids),
        "processes": scan.processes,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="medium")
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--agent", default=str(BENCH.parent / "agent"), help="agent tree")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.agent)  # ahead of any installed netmedic (the venv's is editable)
    gc.disable()
    with LoadGen(PRESETS[args.preset]):
        result = phases(args.runs)
    print(f"preset {args.preset}, agent {args.agent}, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(", ".join(f"{name} {value:.2f} ms" if isinstance(value, float) else f"{name} {value}"
                    for name, value in result.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
