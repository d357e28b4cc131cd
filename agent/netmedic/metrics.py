"""A diagnosis as numbers: Prometheus' text format, and Nagios performance data.

One list of :class:`Metric` is made from the facts and their diagnosis
(:func:`host_metrics`); ``netmedic diagnose --format prometheus`` writes all of
it (:func:`exposition`), the table's first line carries the unlabelled and
per-severity ones after a ``|`` (:func:`perfdata`). The textfile a node_exporter
reads is written whole or not at all (:func:`write_atomically`).
"""

from __future__ import annotations

import calendar
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

from netmedic.diagnose import Diagnosis
from netmedic.registry import ERROR_SOURCES

Labels = Tuple[Tuple[str, str], ...]
SEVERITIES = ("critical", "warning", "info")


@dataclass
class Metric:
    """One metric family (all gauges): its name, help text and samples."""

    name: str
    help: str
    samples: List[Tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))


def host_metrics(facts: Mapping[str, Any], result: Diagnosis) -> List[Metric]:
    """The metrics of one diagnosis; a family the facts lack has no samples.

    A finding ``{"id": "x", "subject": "a.service", "severity": "warning"}`` →
    ``netmedic_finding{id="x",subject="a.service",severity="warning",role="r"} 1``.
    """
    status = Metric("netmedic_status", "Diagnosis status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    status.add(result.status)
    finding = Metric("netmedic_finding", "A finding present on this host (1 per id and subject).")
    per_severity = Metric("netmedic_findings", "Findings present, by severity.")
    counts = dict.fromkeys(SEVERITIES, 0)
    for found in result.findings:
        finding.add(1, id=found.id, subject=found.subject, severity=found.severity, role=found.role)
        counts[found.severity] = counts.get(found.severity, 0) + 1
    for severity, count in counts.items():
        per_severity.add(count, severity=severity)
    skipped = Metric("netmedic_entries_not_evaluated", "Catalog entries whose facts are missing.")
    skipped.add(len(result.skipped))
    rejected = Metric("netmedic_catalog_files_rejected", "Catalog files that failed validation.")
    rejected.add(len(result.catalog_errors))
    duration = Metric("netmedic_collection_duration_seconds", "Wall time of the fact collection.")
    duration.add(float(facts.get("duration_ms") or 0) / 1000)
    collected = Metric("netmedic_collected_timestamp_seconds", "When the facts were collected.")
    if facts.get("collected_at"):
        collected.add(calendar.timegm(time.strptime(facts["collected_at"], "%Y-%m-%dT%H:%M:%SZ")))
    errors = Metric("netmedic_collection_errors", "Collection errors, by family (or config).")
    per_family = dict.fromkeys(ERROR_SOURCES, 0)
    for error in facts.get("errors") or ():
        source = str(error.get("family")) if isinstance(error, dict) else "?"
        per_family[source] = per_family.get(source, 0) + 1
    for source, count in per_family.items():
        errors.add(count, family=source)
    return [status, finding, per_severity, skipped, rejected, duration, collected, errors,
            *_ephemeral(facts.get("ephemeral")), *_sockets(facts.get("ports"))]  # fmt: skip


def _ephemeral(family: Any) -> List[Metric]:
    """The ephemeral port range, how much of it is in use, and TIME_WAIT."""
    size = Metric("netmedic_ephemeral_port_range_size", "Ports in ip_local_port_range.")
    used = Metric("netmedic_ephemeral_ports_used", "TCP sockets in use plus TIME_WAIT (estimate).")
    ratio = Metric("netmedic_ephemeral_port_pressure_ratio", "Used / range size (upper bound).")
    time_wait = Metric("netmedic_tcp_time_wait_sockets", "TCP sockets in TIME_WAIT (sockstat).")
    if isinstance(family, dict):
        size.add(family["port_range"]["size"])
        used.add(family["pressure"]["used"])
        ratio.add(family["pressure"]["ratio"])
        time_wait.add(family["sockstat"].get("tcp", {}).get("tw", 0))
    return [size, used, ratio, time_wait]


def _sockets(family: Any) -> List[Metric]:
    """Listening sockets and those whose owner could not be read, by protocol."""
    total = Metric("netmedic_listening_sockets", "Listening TCP and bound UDP sockets.")
    unreadable = Metric("netmedic_sockets_owner_unreadable", "Sockets whose owner is unknown.")
    if isinstance(family, dict):
        for proto in ("tcp", "udp"):
            sockets = [s for s in family["sockets"] if s["proto"] == proto]
            total.add(len(sockets), proto=proto)
            unreadable.add(sum(1 for s in sockets if s["owner"] is None), proto=proto)
    return [total, unreadable]


def _label_value(value: str) -> str:
    r"""Escaped for a label: ``a"b\c`` + newline → ``a\"b\\c\n``."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """``1.0`` → ``1``, ``0.25`` → ``0.25``: integers without a fraction."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(metrics: List[Metric]) -> str:
    """Prometheus text format 0.0.4: HELP and TYPE, then each sample, no timestamps."""
    lines: List[str] = []
    for metric in metrics:
        help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines += [f"# HELP {metric.name} {help_text}", f"# TYPE {metric.name} gauge"]
        for labels, value in metric.samples:
            text = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels)
            lines.append(f"{metric.name}{{{text}}} {_number(value)}" if text
                         else f"{metric.name} {_number(value)}")  # fmt: skip
    return "\n".join(lines) + "\n"


# Nagios performance data: the metrics a status line carries, under a short label.
PERFDATA: Dict[str, Tuple[str, str]] = {  # metric → (label, unit of measure)
    "netmedic_findings": ("findings", ""),
    "netmedic_entries_not_evaluated": ("not_evaluated", ""),
    "netmedic_collection_duration_seconds": ("duration", "s"),
    "netmedic_ephemeral_port_pressure_ratio": ("ephemeral_pressure", ""),
    "netmedic_sockets_owner_unreadable": ("owner_unreadable", ""),
}


def perfdata(metrics: List[Metric]) -> str:
    """``findings_critical=1;;;0 ... duration=0.04s;;;0``: one ``label=value[UOM];;;0`` each.

    A labelled sample's label values join its label: ``findings{severity="info"}`` →
    ``findings_info``.
    """
    parts: List[str] = []
    for metric in metrics:
        if metric.name not in PERFDATA:
            continue
        label, unit = PERFDATA[metric.name]
        for labels, value in metric.samples:
            name = "_".join([label, *(val for _label, val in labels)])
            parts.append(f"{name}={_number(value)}{unit};;;0")
    return " ".join(parts)


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its directory and a rename.

    A reader (node_exporter's textfile collector) sees the old file or the new
    one, never a part; the temporary name does not end in ``.prom``, so it is
    never read. Raises OSError naming the path.
    """
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".netmedic.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
