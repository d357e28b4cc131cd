"""Every path a shipped catalog entry reads is one a collector writes.

"Written" is the facts schema (test_schema holds it to exactly what the
collectors write); ``config.*`` is described by the registry's config keys
(below them the operator's data is free-form), ``params.*`` by the entry's own
params. Paths are checked where they appear: ``for_each`` and quantifier
``in:`` (which bind names for the paths after them), ``path:`` and ``ref:``
of conditions, and the ``{...}`` fields of subject, evidence and remediation
vars. No allowlist: an entry that reads what no collector writes fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import pytest

from netmedic.catalog.loader import SHIPPED_DIR, read_yaml
from netmedic.catalog.paths import Dynamic, Wildcard, parse_path
from netmedic.catalog.template import placeholders
from netmedic.registry import CONFIG_KEYS
from netmedic.validate import SCHEMA_DIR

FACTS_SCHEMA = json.loads((SCHEMA_DIR / "facts.schema.json").read_text())
SHIPPED = sorted(SHIPPED_DIR.glob("*.yml"))

# What a name in scope stands for: a facts schema node, free-form data, or a key (a string).
FREE = "free-form"
KEY = "a mapping key"
Shape = Union[Dict[str, Any], str]


# What the facts schema calls an entry of config.yml echoed back: free-form, as config.* is.
CONFIG_ENTRY = "#/$defs/config_entry"


def alternatives(node: Dict[str, Any]) -> List[Shape]:
    """``{"oneOf": [null, {...}]}`` → the non-null alternatives, dereferenced."""
    if node.get("$ref") == CONFIG_ENTRY:
        return [FREE]
    if "$ref" in node:
        return alternatives(FACTS_SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]])
    if "oneOf" in node or "allOf" in node:
        parts = node.get("oneOf") or node["allOf"]
        return [alt for option in parts for alt in alternatives(option)]
    return [node] if node.get("type") != "null" else []


def step(shape: Shape, key: Any, where: str) -> List[Shape]:
    """What one step of a path reaches from ``shape``; raises naming ``where`` when nothing."""
    if shape == FREE:
        return [FREE]
    if shape == KEY:
        raise AssertionError(f"{where}: a mapping key (key_as) has no fields")
    reached: List[Shape] = []
    for node in alternatives(shape):  # type: ignore[arg-type]
        if node == FREE:
            reached.append(FREE)
            continue
        assert isinstance(node, dict)
        values = node.get("additionalProperties")
        if isinstance(key, (Wildcard, int)) and "items" in node:
            reached.append(node["items"])
        elif isinstance(key, (Wildcard, Dynamic)) and isinstance(values, dict):
            reached.append(values)
        elif isinstance(key, Dynamic) and "properties" in node:
            reached.extend(node["properties"].values())
        elif isinstance(key, str) and key in node.get("properties", {}):
            reached.append(node["properties"][key])
        elif isinstance(key, str) and isinstance(values, dict):
            reached.append(values)
    if not reached:
        raise AssertionError(f"{where}: no collector writes {key!r} there")
    return reached


class Scope:
    """The names a path may start from, and what each stands for."""

    def __init__(self, params: Mapping[str, Any], checked: Optional[List[str]] = None) -> None:
        self.params = params
        self.bound: Dict[str, List[Shape]] = {}
        self.checked: List[str] = [] if checked is None else checked  # shared with inner scopes

    def bind(self, name: str, shapes: List[Shape]) -> Scope:
        inner = Scope(self.params, self.checked)
        inner.bound = {**self.bound, name: shapes}
        return inner

    def resolve(self, text: str, where: str) -> List[Shape]:
        self.checked.append(text)
        path = parse_path(text)
        where = f"{where}: {text}"
        steps = list(path.steps)
        for dynamic in (s for s in steps if isinstance(s, Dynamic)):
            self.resolve(dynamic.path.text, where)
        if path.root in self.bound:
            shapes = self.bound[path.root]
        elif path.root == "config":
            assert steps and steps[0] in CONFIG_KEYS, f"{where}: not a config key"
            return [FREE]
        elif path.root == "params":
            assert steps and steps[0] in self.params, f"{where}: not one of the entry's params"
            return [FREE]
        else:
            shapes = step(FACTS_SCHEMA, path.root, where)
        for key in steps:
            shapes = [found for shape in shapes for found in step(shape, key, where)]
        return shapes


def check_condition(raw: Any, scope: Scope, where: str) -> None:
    if "all" in raw or "any" in raw:
        key = "all" if "all" in raw else "any"
        for index, part in enumerate(raw[key]):
            check_condition(part, scope, f"{where}.{key}[{index}]")
    elif "not" in raw:
        check_condition(raw["not"], scope, f"{where}.not")
    elif any(kind in raw for kind in ("some", "every", "none")):
        kind = next(kind for kind in ("some", "every", "none") if kind in raw)
        check_loop(raw[kind], scope, f"{where}.{kind}")
    else:
        scope.resolve(raw["path"], f"{where}.path")
        if "ref" in raw:
            scope.resolve(raw["ref"], f"{where}.ref")


def check_loop(raw: Mapping[str, Any], scope: Scope, where: str) -> Scope:
    """Check ``in:`` and ``where:``; the scope with ``as`` (and ``key_as``) bound."""
    items = scope.resolve(raw["in"], f"{where}.in")
    each = [found for shape in items for found in step(shape, Wildcard(), f"{where}.in")]
    inner = scope.bind(raw["as"], each)
    if raw.get("key_as"):
        inner = inner.bind(raw["key_as"], [KEY])
    if raw.get("where"):
        check_condition(raw["where"], inner, f"{where}.where")
    return inner


def templates(value: Any, where: str) -> Iterator[Tuple[str, str]]:
    """(template, where) of every string in a vars structure."""
    if isinstance(value, str):
        yield value, where
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from templates(child, f"{where}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from templates(child, f"{where}[{index}]")


def check_entry(raw: Mapping[str, Any]) -> List[str]:
    """Check every path of one entry; return the paths checked."""
    scope = Scope(raw.get("params") or {})
    match = raw["match"]
    for index, loop in enumerate(match.get("for_each") or ()):
        scope = check_loop(loop, scope, f"match.for_each[{index}]")
    if match.get("when"):
        check_condition(match["when"], scope, "match.when")
    texts = [(raw["subject"], "subject")]
    for index, item in enumerate(raw["evidence"]):
        text = item if isinstance(item, str) else item["text"]
        texts.append((text, f"evidence[{index}]"))
        if isinstance(item, dict) and item.get("when"):
            check_condition(item["when"], scope, f"evidence[{index}].when")
    texts += templates(raw["remediation"]["vars"], "remediation.vars")
    for text, where in texts:
        for field in placeholders(text):
            scope.resolve(field, where)
    return scope.checked


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_entry_reads_only_what_collectors_write(path: Path) -> None:
    checked = check_entry(read_yaml(path, path.name))
    assert checked, "no path found: the walk missed the entry's shape"


def entry(match: Dict[str, Any], evidence: Optional[List[Any]] = None) -> Dict[str, Any]:
    return {"match": match, "subject": "s", "evidence": evidence or ["e"],
            "remediation": {"role": "r", "vars": {}}, "params": {"limit": 1}}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # the path this test was written for: release-channel-beta read it before the
        # channels family had an API probe; the probe has no `denied`
        (entry({"for_each": [{"in": "channels.apps", "as": "app",
                              "where": {"path": "app.api.denied", "op": "eq", "value": False}}]}),
         "no collector writes 'denied'"),
        (entry({"when": {"path": "units.units[*].nope", "op": "exists", "value": True}}),
         "no collector writes 'nope'"),
        (entry({"when": {"path": "ports.sockets[*].owner.cmdline", "op": "exists",
                         "value": True}}), "no collector writes 'cmdline'"),
        (entry({"for_each": [{"in": "units.units", "as": "u", "key_as": "n"}]}, ["{n.id}"]),
         "a mapping key"),
        (entry({"when": {"path": "config.nope", "op": "exists", "value": True}}),
         "not a config key"),
        (entry({"when": {"path": "ephemeral.pressure.ratio", "op": "gt", "ref": "params.x"}}),
         "not one of the entry's params"),
        (entry({"when": {"path": "units.units[$nobody.x].after", "op": "exists",
                         "value": True}}), "no collector writes 'nobody'"),
        (entry({"when": {"some": {"in": "processes.profiles[*].processes", "as": "p",
                                  "where": {"path": "p.port", "op": "eq", "value": 1}}}}),
         "no collector writes 'port'"),
    ],
)  # fmt: skip
def test_a_path_no_collector_writes_is_refused(raw: Dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_entry(raw)


def test_config_entries_echoed_in_the_facts_are_free_form_as_config_is() -> None:
    """The schema's config_entry (a declaration carried into the facts) is the operator's data."""
    raw = entry({"when": {"path": "units.units[*].declared.restart_if_stale", "op": "exists",
                          "value": True}}, ["{processes.profiles[0].declared.ladder}"])  # fmt: skip
    checked = ["units.units[*].declared.restart_if_stale", "processes.profiles[0].declared.ladder"]
    assert check_entry(raw) == checked
