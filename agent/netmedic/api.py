"""The agent's interface for every caller: the CLI, the Ansible modules, tests.

One entry per question a caller asks of a host:

- :func:`collect`: the facts document (``netmedic facts``);
- :func:`diagnose_host`: facts plus their diagnosis, the config loaded once
  (``netmedic diagnose``, the ``netmedic_facts``/``netmedic_plan`` modules);
- :func:`check`: whether one finding (optionally one subject of it) is present
  (``netmedic check ID``, every role's verification).

Callers never reach past this module into the CLI layer; ``cli.py`` and the
Ansible modules both call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from netmedic.context import Context, Facts
from netmedic.diagnose import Diagnosis, Finding


@dataclass
class HostDiagnosis:
    """A host's facts and what the catalog found in them."""

    facts: Facts
    diagnosis: Diagnosis
    config: Dict[str, Any]


@dataclass
class CheckResult:
    """``netmedic check ID [--subject S]``: exit 0 absent, 1 present, 3 unknown/not evaluated."""

    finding_id: str
    subject: Optional[str]
    state: str  # "absent" | "present" | "not evaluated" | "unknown id"
    exit_code: int
    findings: List[Finding]
    diagnosis: Diagnosis

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.finding_id,
            "subject": self.subject,
            "state": self.state,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "skipped": self.diagnosis.skipped,
            "catalog_errors": self.diagnosis.catalog_errors,
        }


def collect(ctx: Context) -> Facts:
    """The facts document of the families in ``ctx.only`` (all when None)."""
    from netmedic.facts import gather  # noqa: PLC0415 - the ports path imports nothing else

    return gather(ctx)


def installed_config(ctx: Context) -> Tuple[Dict[str, Any], Optional[str]]:
    """``(config, error)`` of ``<etc_root>/netmedic/config.yml``: ``({}, None)`` when absent."""
    from netmedic.config import load_config  # noqa: PLC0415 - yaml only when asked

    config, error = load_config(ctx.etc_root)
    return config, None if error is None else str(error)


def diagnose_host(
    ctx: Context,
    only: Optional[Sequence[str]] = None,
    facts: Optional[Mapping[str, Any]] = None,
    config_path: str = "",
) -> HostDiagnosis:
    """Facts (``facts`` when given, else collected now) and their diagnosis.

    The operator config is read once: ``config_path`` when given, else the
    caller's ``ctx.config`` (a module's ``config`` option), else
    ``<etc_root>/netmedic/config.yml``. ``only`` names the finding ids to run
    (all enabled entries when None).
    """
    from netmedic.commands import evaluate  # noqa: PLC0415 - yaml and the catalog: only here

    options = {"config": config_path, "facts": ""}
    document, config, diagnosis = evaluate(ctx, options, only=only, facts=facts)
    return HostDiagnosis(facts=document, diagnosis=diagnosis, config=config)


def check(
    ctx: Context,
    finding_id: str,
    subject: Optional[str] = None,
    facts: Optional[Mapping[str, Any]] = None,
    config_path: str = "",
) -> CheckResult:
    """Whether ``finding_id`` (for ``subject``, or any subject) is present on the host."""
    host = diagnose_host(ctx, only=[finding_id], facts=facts, config_path=config_path)
    result = host.diagnosis
    findings = [f for f in result.findings if not subject or f.subject == subject]
    if findings:
        exit_code, state = 1, "present"
    elif any(s["id"] == finding_id for s in result.skipped):
        exit_code, state = 3, "not evaluated"
    elif finding_id in result.evaluated:
        exit_code, state = 0, "absent"
    else:  # diagnose() records every id it ran: one it never saw is not in the catalog
        exit_code, state = 3, "unknown id"
    return CheckResult(finding_id, subject or None, state, exit_code, findings, result)
