"""``netmedic diagnose``, ``check ID`` and ``probe-bind``: arguments in, api, text out.

Each handler has the shape of ``cli.COMMANDS`` values, ``(args, out) -> exit code``.
cli.py imports this module only when one of its commands runs: its imports
(the catalog, yaml) are not ``netmedic facts``' to pay.

Exit codes (Nagios plugin convention, usable by monitoring):

- ``diagnose``: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, facts
  unreadable, an entry not evaluable or a catalog file rejected).
- ``check ID``: 0 the finding is absent, 1 present, 3 unknown id or not evaluable.
- ``probe-bind``: 0 free, 1 in use, 2 address not available, 3 anything else
  (permission denied, other errno, bad arguments).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, TextIO

from netmedic import api, metrics, output, probe
from netmedic.args import UsageError, choice, command_usage, parse_args
from netmedic.context import Context
from netmedic.diagnose import STATUS_NAMES, UNKNOWN, Diagnosis

PROBE_EXIT = {"free": 0, "in_use": 1, "address_not_available": 2}


def _usage_error(command: str, exc: Exception) -> int:
    sys.stderr.write(f"netmedic {command}: {exc}\n\n{command_usage(command)}")
    return UNKNOWN


def _unusable(command: str, exc: Exception) -> int:
    """An input named on the command line cannot be used: its message, exit 3 (UNKNOWN)."""
    sys.stderr.write(f"netmedic {command}: {exc}\n")
    return UNKNOWN


def _read_facts(path: str) -> Optional[Dict[str, Any]]:
    """``--facts FILE``: a saved facts document (:func:`netmedic.api.load_facts`), None without."""
    if not path:
        return None
    try:
        return api.load_facts(path)
    except api.FactsUnusable as exc:
        raise api.FactsUnusable(f"--facts {exc}") from exc


def cmd_diagnose(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic diagnose``: findings as a table (people), JSON or Prometheus metrics (machines).

    ``--output FILE`` writes the text to FILE atomically instead of ``out`` (a
    node_exporter textfile); a file that cannot be written is UNKNOWN.
    """
    try:
        _positional, options = parse_args(
            args, (), {"format": "table", "facts": "", "config": "", "output": ""}
        )
        output_format = choice(options["format"], "format", ("table", "json", "prometheus"))
        host = api.diagnose_host(
            ctx or Context(), facts=_read_facts(options["facts"]), config_path=options["config"]
        )
    except api.ConfigUnreadable as exc:
        return _usage_error("diagnose", UsageError(f"--config {exc}"))
    except api.FactsUnusable as exc:
        return _unusable("diagnose", exc)
    except UsageError as exc:
        return _usage_error("diagnose", exc)
    facts, result = host.facts, host.diagnosis
    if output_format == "json":
        doc = {
            "host": facts.get("host"),
            "collected_at": facts.get("collected_at"),
            **result.to_dict(),
            "facts_errors": facts.get("errors") or [],
        }
        text = _json(doc, pretty=out.isatty() and not options["output"])
    elif output_format == "prometheus":
        text = metrics.exposition(metrics.host_metrics(facts, result))
    else:
        text = render_table(result, facts)
    if not options["output"]:
        out.write(text)
        return result.status
    try:
        metrics.write_atomically(options["output"], text)
    except OSError as exc:
        sys.stderr.write(f"netmedic diagnose: --output {options['output']}: {exc}\n")
        return UNKNOWN
    return result.status


def _json(doc: object, pretty: bool) -> str:
    """JSON as ``netmedic facts`` writes it: indented on a terminal, compact for programs.

    The indented encoder is json's pure-Python one, slow on a large answer whose
    indentation a program reading it has no use for.
    """
    return "".join(output.render(doc, "json", pretty))


def summary_line(result: Diagnosis, facts: Mapping[str, Any]) -> str:
    """Nagios first line, performance data after ``|``.

    ``"NETMEDIC CRITICAL - ws1: 1 critical, 2 warning | findings_critical=1;;;0 ..."``
    """
    host = str(facts.get("host") or "?")
    counts: Dict[str, int] = {}
    for finding in result.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("critical", "warning", "info") if s in counts]
    if result.skipped:
        parts.append(f"{len(result.skipped)} not evaluated")
    if result.catalog_errors:
        parts.append(f"{len(result.catalog_errors)} catalog files rejected")
    return (
        f"NETMEDIC {STATUS_NAMES[result.status]} - {host}: {', '.join(parts) or 'no findings'}"
        f" | {metrics.perfdata(metrics.host_metrics(facts, result))}"
    )


def render_table(result: Diagnosis, facts: Mapping[str, Any]) -> str:
    """Summary line, one row per finding with its evidence and fix below it, then what
    was not evaluated and what of the config or catalog could not be used."""
    lines = [summary_line(result, facts)]
    if result.findings:
        id_width = max(len(f.id) for f in result.findings)
        subject_width = max(len(f.subject) for f in result.findings)
        lines.append("")
        lines.append(f"{'SEVERITY':<9} {'ID':<{id_width}} {'SUBJECT':<{subject_width}} TITLE")
        for finding in result.findings:
            lines.append(
                f"{finding.severity:<9} {finding.id:<{id_width}} "
                f"{finding.subject:<{subject_width}} {finding.title}"
            )
            lines.extend(f"{'':<9}   - {line}" for line in finding.evidence)
            destructive = ", destructive: needs approval" if finding.destructive else ""
            lines.append(f"{'':<9}   fix: role {finding.role}{destructive}")
    for skipped in result.skipped:
        lines.append(f"not evaluated: {skipped['id']}: {skipped['reason']}")
    lines.extend(
        f"config: {e['message']}" for e in facts.get("errors") or () if e.get("family") == "config"
    )
    for error in result.catalog_errors:
        lines.append(f"catalog file rejected: {error}")
    return "\n".join(lines) + "\n"


def cmd_check(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic check ID``: 0 absent, 1 present, 3 unknown id or not evaluable."""
    try:
        positional, options = parse_args(
            args, ("id",), {"subject": "", "facts": "", "config": "", "format": "text"}
        )
        output_format = choice(options["format"], "format", ("text", "json"))
        result = api.check(
            ctx or Context(),
            positional["id"],
            options["subject"] or None,
            facts=_read_facts(options["facts"]),
            config_path=options["config"],
        )
    except api.ConfigUnreadable as exc:
        return _usage_error("check", UsageError(f"--config {exc}"))
    except api.FactsUnusable as exc:
        return _unusable("check", exc)
    except UsageError as exc:
        return _usage_error("check", exc)
    if output_format == "json":
        out.write(_json(result.to_dict(), pretty=out.isatty()))
    else:
        out.write(check_text(result))
    return result.exit_code


def check_text(result: api.CheckResult) -> str:
    """``"declared-port-held-by-other: present"``, then each subject and its evidence."""
    lines = [f"{result.finding_id}: {result.state}"]
    for finding in result.findings:
        lines.append(f"  {finding.subject}:")
        lines.extend(f"    - {line}" for line in finding.evidence)
    skipped = result.diagnosis.skipped
    lines.extend(f"  {s['reason']}" for s in skipped if s["id"] == result.finding_id)
    return "\n".join(lines) + "\n"


def cmd_probe_bind(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic probe-bind tcp|udp PORT [--addr A]``: exit 0 free, 1 in use, 2 not available."""
    try:
        positional, options = parse_args(
            args, ("proto", "port"), {"addr": "0.0.0.0", "format": "text"}
        )
        output_format = choice(options["format"], "format", ("text", "json"))
        proto, port = probe.parse_proto(positional["proto"]), probe.parse_port(positional["port"])
        result = api.probe_bind(ctx or Context(), proto, port, options["addr"])
    except ValueError as exc:  # UsageError and the bad proto, port or address
        return _usage_error("probe-bind", exc)
    if output_format == "json":
        out.write(_json(result.to_dict(), pretty=out.isatty()))
    else:
        out.write(probe.describe(result))
    return PROBE_EXIT.get(result.status, UNKNOWN)


Handler = Callable[[Sequence[str], TextIO], int]

COMMANDS: Dict[str, Handler] = {
    "diagnose": cmd_diagnose,
    "check": cmd_check,
    "probe-bind": cmd_probe_bind,
}
