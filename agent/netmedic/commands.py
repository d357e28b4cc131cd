"""Handlers for ``netmedic diagnose``, ``check ID`` and ``probe-bind``.

Each handler has the shape of ``cli.COMMANDS`` values, ``(args, out) -> exit code``,
and parses its own arguments (no argparse: the CLI keeps imports small). This
module imports yaml and the catalog, so cli.py imports it only when one of its
commands runs (``netmedic facts --only ports`` must not pay for it).

Exit codes (Nagios plugin convention, usable by monitoring):

- ``diagnose``: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, facts
  unreadable, an entry not evaluable or a catalog file rejected).
- ``check ID``: 0 the finding is absent, 1 present, 3 unknown id or not evaluable.
- ``probe-bind``: 0 free, 1 in use, 2 address not available, 3 anything else
  (permission denied, other errno, bad arguments).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple

from netmedic import probe
from netmedic.catalog import load_catalog
from netmedic.cli import USAGE, UsageError, parse_args
from netmedic.config import ConfigError, load_config, parse_config
from netmedic.context import Context
from netmedic.diagnose import STATUS_NAMES, Diagnosis, Finding, diagnose
from netmedic.facts import gather

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
PROBE_EXIT = {"free": 0, "in_use": 1, "address_not_available": 2}


def _choice(value: str, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UsageError(f"--{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _usage_error(command: str, exc: Exception) -> int:
    sys.stderr.write(f"netmedic {command}: {exc}\n\n{USAGE}")
    return UNKNOWN


def _read_json(path: str) -> Dict[str, Any]:
    """A saved facts document; unreadable or not an object → UsageError naming the file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--facts {path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"--facts {path}: not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"--facts {path}: expected a facts document (a JSON object)")
    return doc


def _load_config(ctx: Context, path: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """The operator config: ``--config FILE``, else the caller's (``ctx.config``, e.g. the
    netmedic_facts module's ``config``), else ``<etc_root>/netmedic/config.yml``."""
    if not path and ctx.config:
        return dict(ctx.config), None
    if not path:
        config, error = load_config(ctx.etc_root)
        return config, None if error is None else str(error)
    try:
        return parse_config(Path(path).read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: cannot read: {exc}") from exc
    except ConfigError as exc:
        return {}, f"{path}: {exc}"


def evaluate(
    ctx: Context,
    options: Mapping[str, str],
    only: Optional[Sequence[str]] = None,
    facts: Optional[Mapping[str, Any]] = None,
) -> Tuple[Dict[str, Any], Dict[str, Any], Diagnosis]:
    """Facts (given, read from ``--facts`` or collected now), the config and their diagnosis."""
    config, config_error = _load_config(ctx, options.get("config", ""))
    if facts is not None:
        facts = dict(facts)
    elif options.get("facts"):
        facts = _read_json(options["facts"])
    else:
        facts = gather(ctx.replace(config=config))
    if config_error is not None:
        # Entries that need the declared config are then reported as not evaluated.
        facts = dict(facts)
        facts["errors"] = [
            *(facts.get("errors") or []),
            {"family": "config", "type": "ConfigError", "message": config_error},
        ]
    catalog = load_catalog(ctx.etc_root)
    return facts, config, diagnose(facts, catalog, config, only=only)


def _default_context() -> Context:
    return Context()


def cmd_diagnose(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic diagnose``: findings as a table (people) or JSON (machines)."""
    try:
        _, options = parse_args(args, (), {"format": "table", "facts": "", "config": ""})
        output_format = _choice(options["format"], "format", ("table", "json"))
        facts, _, result = evaluate(ctx or _default_context(), options)
    except UsageError as exc:
        return _usage_error("diagnose", exc)
    if output_format == "json":
        doc = {
            "host": facts.get("host"),
            "collected_at": facts.get("collected_at"),
            **result.to_dict(),
            "facts_errors": facts.get("errors") or [],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(render_table(result, str(facts.get("host") or "?")))
    return result.status


def summary_line(result: Diagnosis, host: str) -> str:
    """Nagios first line: ``"NETMEDIC CRITICAL - ws1: 1 critical, 2 warning"``."""
    counts: Dict[str, int] = {}
    for finding in result.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("critical", "warning", "info") if s in counts]
    if result.skipped:
        parts.append(f"{len(result.skipped)} not evaluated")
    if result.catalog_errors:
        parts.append(f"{len(result.catalog_errors)} catalog files rejected")
    return f"NETMEDIC {STATUS_NAMES[result.status]} - {host}: {', '.join(parts) or 'no findings'}"


def render_table(result: Diagnosis, host: str) -> str:
    """Summary line, one row per finding with its evidence and fix below it."""
    lines = [summary_line(result, host)]
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
    for error in result.catalog_errors:
        lines.append(f"catalog file rejected: {error}")
    return "\n".join(lines) + "\n"


def cmd_check(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic check ID``: 0 absent, 1 present, 3 unknown id or not evaluable."""
    from netmedic import api  # noqa: PLC0415 - api imports this module's evaluate

    try:
        positional, options = parse_args(
            args, ("id",), {"subject": "", "facts": "", "config": "", "format": "text"}
        )
        output_format = _choice(options["format"], "format", ("text", "json"))
        context = ctx or _default_context()
        facts = _read_json(options["facts"]) if options["facts"] else None
        result = api.check(
            context, positional["id"], options["subject"] or None, facts, options["config"]
        )
    except UsageError as exc:
        return _usage_error("check", exc)
    if output_format == "json":
        out.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.write(_check_text(result.finding_id, result.state, result.findings, result.diagnosis))
    return result.exit_code


def _check_text(finding_id: str, state: str, findings: List[Finding], result: Diagnosis) -> str:
    lines = [f"{finding_id}: {state}"]
    for finding in findings:
        lines.append(f"  {finding.subject}:")
        lines.extend(f"    - {line}" for line in finding.evidence)
    lines.extend(f"  {s['reason']}" for s in result.skipped if s["id"] == finding_id)
    return "\n".join(lines) + "\n"


def cmd_probe_bind(args: Sequence[str], out: TextIO, ctx: Optional[Context] = None) -> int:
    """``netmedic probe-bind tcp|udp PORT [--addr A]``: exit 0 free, 1 in use, 2 not available."""
    try:
        positional, options = parse_args(
            args, ("proto", "port"), {"addr": "0.0.0.0", "format": "text"}
        )
        proto = probe.parse_proto(positional["proto"])
        port = probe.parse_port(positional["port"])
        address = probe.parse_address(options["addr"])
        output_format = _choice(options["format"], "format", ("text", "json"))
    except ValueError as exc:  # UsageError and the parse_* errors
        return _usage_error("probe-bind", exc)
    result = probe.probe_bind(proto, port, address, ctx)
    if output_format == "json":
        out.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.write(probe.describe(result))
    return PROBE_EXIT.get(result.status, UNKNOWN)


Handler = Callable[[Sequence[str], TextIO], int]

# cli.COMMANDS dispatches to these lazily (they import yaml and the catalog).
COMMANDS: Dict[str, Handler] = {
    "diagnose": cmd_diagnose,
    "check": cmd_check,
    "probe-bind": cmd_probe_bind,
}
