"""Where every bench script keeps its raw result: ``bench/results/<kind>-<UTC time>.json``.

``write_result("ports-medium", record, started, load_at_start)`` adds when the
run started and what it ran on (CPUs, kernel, load average at its start and
end: wall times here are only comparable within one run) and writes the file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Tuple

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(
    kind: str, record: Dict[str, Any], started: float, load_at_start: Tuple[float, float, float]
) -> Path:
    """Write ``record`` with ``started`` and ``host`` added; return the file's path."""
    stamped = {
        **record,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "host": {
            "cpus": os.cpu_count(),
            "kernel": os.uname().release,
            "loadavg_at_start": load_at_start,
            "loadavg_at_end": os.getloadavg(),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}.json"
    # Keys in the order the script wrote them: instructions' refs in --ref order.
    path.write_text(json.dumps(stamped, indent=2, default=str) + "\n")
    return path
