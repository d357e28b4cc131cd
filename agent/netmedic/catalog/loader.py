"""Read catalog files: shipped entries, then operator files that add or override.

Order: ``netmedic/catalog/*.yml`` (shipped, one entry per file), then
``<etc_root>/netmedic/catalog.d/*.yml`` in name order. An operator file whose
``id`` is a shipped one replaces it when it has a ``match``, or *patches* it
when it has none (``{id: ephemeral-port-pressure, params: {max_pressure: 0.6}}``
changes one threshold; ``{id: X, enabled: false}`` turns an entry off).

Operator files are read bounded (:mod:`netmedic.inputs`) and checked against
the schema; shipped ones are only compiled (agent/tests checks each against the
schema). A file that fails is rejected alone, with a message naming the file and
the field (``/etc/netmedic/catalog.d/x.yml: match.when.op: 'equals' is not one
of: eq, ne, ...``); the others still load, and callers report the rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from netmedic.catalog.matcher import CompileError, Condition, Loop, compile_condition, compile_loop
from netmedic.catalog.paths import PathError
from netmedic.catalog.template import check_template
from netmedic.inputs import (
    MAX_YAML_BYTES,
    InputError,
    decode,
    parse_shipped_yaml,
    parse_yaml,
    read_limited,
)
from netmedic.registry import SCOPE_ROOTS
from netmedic.validate import schema_validator

SHIPPED_DIR = Path(__file__).resolve().parent
OPERATOR_RELDIR = "netmedic/catalog.d"
# Roots of the match scope; a binding with one of these names would hide facts.
RESERVED_NAMES = frozenset(SCOPE_ROOTS)


class CatalogError(ValueError):
    """A catalog file was rejected; ``str()`` names the file and the field."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{source}: {field + ': ' if field else ''}{message}")
        self.source = source
        self.field = field


@dataclass(frozen=True)
class Evidence:
    text: str
    when: Optional[Condition] = None


@dataclass(frozen=True)
class Entry:
    """A compiled catalog entry, ready to match (see docs/catalog.md)."""

    id: str
    title: str
    severity: str
    subject: str
    loops: Tuple[Loop, ...]
    when: Optional[Condition]
    evidence: Tuple[Evidence, ...]
    role: str
    role_vars: Mapping[str, Any]
    destructive: bool
    params: Mapping[str, Any]
    requires: Tuple[str, ...]
    enabled: bool
    source: str
    description: str = ""
    references: Tuple[str, ...] = ()


@dataclass
class Catalog:
    """Entries by id in load order, and the files that were rejected."""

    entries: Dict[str, Entry] = field(default_factory=dict)
    rejected: List[CatalogError] = field(default_factory=list)

    def active(self) -> List[Entry]:
        return [entry for entry in self.entries.values() if entry.enabled]


def read_yaml(path: Path, source: str) -> Any:
    """Parse one file, bounded as :mod:`netmedic.inputs` reads; failure → CatalogError naming it."""
    try:
        return parse_yaml(decode(read_limited(str(path), MAX_YAML_BYTES)))
    except OSError as exc:
        raise CatalogError(source, "", f"cannot read: {exc}") from exc
    except InputError as exc:
        raise CatalogError(source, "", str(exc)) from exc


def read_shipped(path: Path, source: str) -> Dict[str, Any]:
    """A shipped entry, trusted as :func:`netmedic.inputs.parse_shipped_yaml` says.

    The bounded parse and the schema check operator files get would be paid again on
    every run of every host for files that cannot differ from the tested ones.
    """
    try:
        raw = parse_shipped_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, InputError) as exc:
        raise CatalogError(source, "", f"cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(source, "", "is not a mapping")
    return raw


def check_raw(raw: Any, source: str) -> Dict[str, Any]:
    """Schema-validate one parsed file; the first issue becomes the error."""
    issues = schema_validator("catalog").validate(raw)
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise CatalogError(source, issues[0].field, issues[0].message + more)
    checked: Dict[str, Any] = raw
    return checked


def compile_entry(raw: Mapping[str, Any], source: str) -> Entry:
    """A schema-valid full entry → :class:`Entry`; semantic errors name the field."""
    params: Dict[str, Any] = dict(raw.get("params") or {})
    try:
        match = raw["match"]
        loops = tuple(
            compile_loop(loop, f"match.for_each[{i}]", params)
            for i, loop in enumerate(match.get("for_each") or ())
        )
        when = compile_condition(match["when"], "match.when", params) if match.get("when") else None
        evidence = tuple(
            _compile_evidence(item, i, params) for i, item in enumerate(raw["evidence"])
        )
        _check_bindings(match)
        _check_templates(raw)
        _check_no_grant(raw["remediation"]["vars"])
    except CompileError as exc:
        raise CatalogError(source, exc.field, str(exc).split(": ", 1)[1]) from exc
    return Entry(
        id=raw["id"],
        title=raw["title"],
        severity=raw["severity"],
        subject=raw["subject"],
        loops=loops,
        when=when,
        evidence=evidence,
        role=raw["remediation"]["role"],
        role_vars=raw["remediation"]["vars"],
        destructive=raw["destructive"],
        params=params,
        requires=tuple(raw.get("requires") or ()),
        enabled=raw.get("enabled", True),
        source=source,
        description=raw.get("description", ""),
        references=tuple(raw.get("references") or ()),
    )


def _compile_evidence(item: Any, index: int, params: Mapping[str, Any]) -> Evidence:
    if isinstance(item, str):
        return Evidence(item)
    when = item.get("when")
    cond = compile_condition(when, f"evidence[{index}].when", params) if when else None
    return Evidence(item["text"], cond)


def _check_bindings(match: Mapping[str, Any]) -> None:
    """Binding names must not shadow facts roots: ``as: ports`` would hide the family."""

    def visit(node: Any, field_name: str) -> None:
        if isinstance(node, dict):
            for key in ("as", "key_as"):
                if key in node and isinstance(node[key], str) and node[key] in RESERVED_NAMES:
                    raise CompileError(
                        f"{field_name}.{key}", f"{node[key]!r} is reserved (a facts root)"
                    )
            for key, child in node.items():
                visit(child, f"{field_name}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                visit(child, f"{field_name}[{i}]")

    visit(match, "match")


def _check_no_grant(role_vars: Mapping[str, Any]) -> None:
    """An entry describes a fix; whether a destructive one runs is the operator's policy."""
    for name in role_vars:
        if str(name).endswith("_allow_destructive"):
            raise CompileError(
                f"remediation.vars.{name}",
                "a catalog entry cannot approve destructive steps; netmedic_plan decides"
                " them from netmedic_policy (and the inventory's role variables)",
            )


def _check_templates(raw: Mapping[str, Any]) -> None:
    """Every ``{path}`` in subject, evidence and vars must parse."""

    def check(text: str, field_name: str) -> None:
        try:
            check_template(text)
        except PathError as exc:
            raise CompileError(field_name, str(exc)) from exc

    def visit(node: Any, field_name: str) -> None:
        if isinstance(node, str):
            check(node, field_name)
        elif isinstance(node, dict):
            for key, child in node.items():
                visit(child, f"{field_name}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                visit(child, f"{field_name}[{i}]")

    check(raw["subject"], "subject")
    for i, item in enumerate(raw["evidence"]):
        check(item if isinstance(item, str) else item["text"], f"evidence[{i}]")
    visit(raw["remediation"]["vars"], "remediation.vars")


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> Dict[str, Any]:
    """Apply an operator patch: top-level keys replace, ``params`` merge key by key.

    ``({"params": {"a": 1, "b": 2}}, {"params": {"b": 3}})`` → ``{"params": {"a": 1, "b": 3}}``.
    """
    merged = dict(base)
    for key, value in patch.items():
        if key == "params":
            merged["params"] = {**(base.get("params") or {}), **value}
        else:
            merged[key] = value
    return merged


def _load_dir(directory: Path, label: str) -> List[Tuple[str, Path]]:
    """(source label, path) per ``*.yml`` file, in name order."""
    if not directory.is_dir():
        return []
    return [(f"{label}/{path.name}", path) for path in sorted(directory.glob("*.yml"))]


def load_catalog(
    etc_root: Optional[Path] = Path("/etc"), shipped_dir: Path = SHIPPED_DIR
) -> Catalog:
    """Shipped entries plus ``<etc_root>/netmedic/catalog.d/*.yml``.

    ``etc_root=None`` loads the shipped entries only.
    """
    catalog = Catalog()
    raws: Dict[str, Dict[str, Any]] = {}
    for source, path in _load_dir(shipped_dir, "netmedic/catalog"):
        _add(catalog, raws, source, path, operator=False)
    if etc_root is not None:
        for source, path in _load_dir(etc_root / OPERATOR_RELDIR, "/etc/" + OPERATOR_RELDIR):
            _add(catalog, raws, source, path, operator=True)
    return catalog


def _add(
    catalog: Catalog, raws: Dict[str, Dict[str, Any]], source: str, path: Path, operator: bool
) -> None:
    try:
        raw = check_raw(read_yaml(path, source), source) if operator else read_shipped(path, source)
        entry_id = raw["id"]
        if "match" not in raw:
            if entry_id not in raws:
                raise CatalogError(
                    source,
                    "match",
                    f"is required: no entry {entry_id!r} to patch (a new entry needs "
                    "title, severity, match, subject, evidence, remediation, destructive)",
                )
            raw = merge_patch(raws[entry_id], raw)
        elif entry_id in catalog.entries and not operator:
            first = catalog.entries[entry_id].source
            raise CatalogError(source, "id", f"{entry_id!r} is already defined in {first}")
        entry = compile_entry(raw, source)
    except CatalogError as exc:
        catalog.rejected.append(exc)
        return
    raws[entry_id] = raw
    catalog.entries[entry_id] = entry
