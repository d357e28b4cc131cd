"""Facts + catalog → findings, and the Nagios status they add up to.

The match scope is the facts document's families (``ports``, ``units``, ...),
``config`` (the operator's declared ports, units, profiles) and ``params`` (the
entry's tunables). Each combination of ``for_each`` bindings that satisfies
``when`` yields a finding; findings with the same id and subject merge, so a
port held on both 0.0.0.0 and :: is one finding with two lines of evidence.

Exit status (Nagios plugin convention): 2 CRITICAL when a critical finding
exists, else 1 WARNING for a warning finding, else 3 UNKNOWN when an entry
could not be evaluated (its facts family failed) or a catalog file was
rejected, else 0 OK. ``info`` findings never raise the status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from netmedic.catalog import Catalog, Entry
from netmedic.catalog.index import JoinIndex
from netmedic.catalog.matcher import bindings
from netmedic.catalog.template import compile_text, compile_value

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class Finding:
    """One issue on this host, as roles and people consume it."""

    id: str
    title: str
    severity: str
    subject: str
    evidence: List[str]
    role: str
    role_vars: Dict[str, Any]
    destructive: bool

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "subject": self.subject,
            "evidence": list(self.evidence),
            "remediation": {"role": self.role, "vars": self.role_vars},
            "destructive": self.destructive,
        }


@dataclass
class Diagnosis:
    """Everything ``netmedic diagnose`` reports."""

    findings: List[Finding] = field(default_factory=list)
    # Entries not evaluated: [{"id": ..., "reason": "ports: not collected (...)"}]
    skipped: List[Dict[str, str]] = field(default_factory=list)
    catalog_errors: List[str] = field(default_factory=list)
    # Ids of the entries that were run (found or not) or skipped.
    evaluated: List[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        severities = {finding.severity for finding in self.findings}
        if "critical" in severities:
            return CRITICAL
        if "warning" in severities:
            return WARNING
        if self.skipped or self.catalog_errors:
            return UNKNOWN
        return OK

    def to_dict(self) -> Dict[str, Any]:
        return {
            "status": STATUS_NAMES[self.status],
            "exit_code": self.status,
            "findings": [finding.to_dict() for finding in self.findings],
            "skipped": list(self.skipped),
            "catalog_errors": list(self.catalog_errors),
        }


def scope_for(facts: Mapping[str, Any], config: Mapping[str, Any]) -> Dict[str, Any]:
    """The roots paths start from: the facts document plus ``config``."""
    scope = dict(facts)
    scope["config"] = dict(config)
    return scope


def _missing_family(entry: Entry, facts: Mapping[str, Any]) -> Optional[str]:
    """Why ``entry`` cannot be evaluated on these facts, or None when it can."""
    # A config value left out for breaking the schema (ConfigInvalid) leaves the rest usable.
    errors = {
        e.get("family"): e.get("message", "")
        for e in facts.get("errors") or ()
        if isinstance(e, dict) and e.get("type") != "ConfigInvalid"
    }
    for family in entry.requires:
        if family == "config":
            if "config" in errors:
                return f"config: unusable ({errors['config']})"
            continue
        if facts.get(family) is None:
            detail = errors.get(family)
            return f"{family}: not collected" + (f" ({detail})" if detail else "")
    return None


def run_entry(
    entry: Entry, scope: Mapping[str, Any], index: Optional[JoinIndex] = None
) -> List[Finding]:
    """All findings of one entry, merged by subject, in the order first seen.

    ``index`` (one per diagnosis) finds the loops' items by lookup: see
    :mod:`netmedic.catalog.index`.
    """
    params = dict(entry.params)
    by_subject: Dict[str, _Merged] = {}
    base = dict(scope)
    base["params"] = params
    subject_of = compile_text(entry.subject)
    evidence_of = [(compile_text(item.text), item.when) for item in entry.evidence]
    role_vars_of = compile_value(dict(entry.role_vars))
    for bound in bindings(entry.loops, base, params, index):
        if entry.when is not None and not entry.when.test(bound, params, index):
            continue
        subject = subject_of(bound)
        evidence = [
            text(bound)
            for text, when in evidence_of
            if when is None or when.test(bound, params, index)
        ]
        role_vars = role_vars_of(bound)
        found = by_subject.get(subject)
        if found is None:
            by_subject[subject] = _Merged(
                Finding(
                    id=entry.id,
                    title=entry.title,
                    severity=entry.severity,
                    subject=subject,
                    evidence=[],
                    role=entry.role,
                    role_vars={},
                    destructive=entry.destructive,
                )
            )
            found = by_subject[subject]
        found.add(evidence, role_vars)
    return [merged.finding for merged in by_subject.values()]


class _Merged:
    """One subject's finding as its bindings add to it, in time linear in the bindings.

    Each evidence line once; role vars: a list gains the items it lacks
    (``{"t": [{"pid": 1}]}`` + ``{"t": [{"pid": 2}]}`` → ``{"t": [{"pid": 1}, {"pid": 2}]}``),
    any other var keeps its first value.
    """

    def __init__(self, finding: Finding) -> None:
        self.finding = finding
        self._lines: Set[str] = set()
        self._items: Dict[str, Set[str]] = {}  # list var → its items' canonical JSON
        # Items added, by identity: a var that is one placeholder (``["{declared}"]``) gives
        # the same object for every binding. They stay in the finding, so no id is reused.
        self._added: Set[int] = set()

    def add(self, evidence: List[str], role_vars: Mapping[str, Any]) -> None:
        for line in evidence:
            if line not in self._lines:
                self._lines.add(line)
                self.finding.evidence.append(line)
        merged = self.finding.role_vars
        for key, value in role_vars.items():
            if key not in merged:
                merged[key] = [] if isinstance(value, list) else value
                self._items[key] = set()
            current = merged[key]
            if isinstance(current, list) and isinstance(value, list):
                seen = self._items[key]
                for item in value:
                    if id(item) in self._added:
                        continue
                    text = _canonical(item)
                    if text not in seen:
                        seen.add(text)
                        self._added.add(id(item))
                        current.append(item)


# Equal JSON values, equal text: ``{"b": 1, "a": 2}`` → ``'{"a": 2, "b": 1}'``
# (one encoder, not one per call as json.dumps with options makes).
_canonical = json.JSONEncoder(sort_keys=True, default=str).encode


def diagnose(
    facts: Mapping[str, Any],
    catalog: Catalog,
    config: Mapping[str, Any],
    only: Optional[Sequence[str]] = None,
) -> Diagnosis:
    """Run the enabled entries over one facts document.

    ``only`` names the ids to run, enabled or not (``netmedic check`` asks for
    one entry explicitly).
    """
    result = Diagnosis(catalog_errors=[str(err) for err in catalog.rejected])
    scope = scope_for(facts, config)
    if only is None:
        entries = catalog.active()
    else:
        entries = [entry for entry in catalog.entries.values() if entry.id in only]
    index = JoinIndex()  # the facts do not change while the entries run
    for entry in entries:
        result.evaluated.append(entry.id)
        missing = _missing_family(entry, facts)
        if missing is not None:
            result.skipped.append({"id": entry.id, "reason": missing})
            continue
        result.findings.extend(run_entry(entry, scope, index))
    result.findings.sort(key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
    return result
