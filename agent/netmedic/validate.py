"""A small JSON Schema validator for the subset the agent's schemas use.

Targets have python3-yaml and python3-psutil only, not ``jsonschema``; the test
suite checks that this validator and ``jsonschema`` agree on the shipped
schemas (``schema/catalog.schema.json``, ``facts.schema.json``, ``config.schema.json``).

Supported keywords: type, enum, const, pattern, minLength, minimum, maximum,
properties, required, additionalProperties, items, minItems, maxItems,
minProperties, maxProperties, anyOf, oneOf, allOf, if/then, $ref
(``#/$defs/NAME``); ``format`` is an annotation, as in jsonschema without a
format checker. A schema using anything else is refused outright rather than
half-checked. A float that is not finite (NaN, Infinity) is no JSON number, and
a float is never an integer (``1.0`` is to jsonschema): a field the agent counts
with is an int.

Each schema is compiled once into a check function, so a facts document of
100,000 sockets is checked in one pass of plain calls. Errors carry where they
are: ``Validator(schema).validate({"id": 3})`` →
``[SchemaIssue(("id",), "must be a string, got integer")]``, whose ``field``
is ``"id"``; a key that is not a plain name is quoted (``units["a.service"]``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
     "format"}
)  # fmt: skip
_SUPPORTED = frozenset(
    {"type", "enum", "const", "pattern", "minLength", "minimum", "maximum", "properties",
     "required", "additionalProperties", "items", "minItems", "maxItems", "minProperties",
     "maxProperties", "anyOf", "oneOf", "allOf", "if", "then", "$ref"}
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

Location = Tuple[Union[str, int], ...]


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this validator does not implement."""


@dataclass
class SchemaIssue:
    """One violation: ``location`` is the keys and indexes from the document down to it."""

    location: Location
    message: str

    @property
    def field(self) -> str:
        """``("ports", 0, "port")`` → ``"ports[0].port"``; empty for the document itself."""
        return render_location(self.location)

    def __str__(self) -> str:
        return f"{self.field or '(top level)'}: {self.message}"


def render_location(location: Sequence[Union[str, int]]) -> str:
    """``("units", "a.service", 0)`` → ``'units["a.service"][0]'``."""
    text = ""
    for step in location:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _NAME.fullmatch(step):
            text += f".{step}" if text else step
        else:
            text += '["' + step.replace('"', '\\"') + '"]'
    return text


_JSON_TYPES: Dict[type, str] = {
    type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
    list: "array", dict: "object",
}  # fmt: skip


def json_type(value: Any) -> str:
    """JSON's name for a Python value: ``True`` → ``"boolean"``, ``3`` → ``"integer"``.

    A float that is not finite has no JSON type: ``float("nan")`` → ``"NaN"``.
    """
    name = _JSON_TYPES.get(type(value)) or next(
        (name for kind, name in _JSON_TYPES.items() if isinstance(value, kind)), None
    )
    if name is None:
        return type(value).__name__
    if name == "number" and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity"
    return name


def _article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


Issues = List[SchemaIssue]
Check = Callable[[Any, str], Issues]  # (value, its json_type) → issues, located from the value


def _within(step: Union[str, int], issues: Issues) -> Issues:
    """Issues found under ``step`` of a value, located from the value."""
    for issue in issues:
        issue.location = (step, *issue.location)
    return issues


_VALIDATORS: Dict[str, Validator] = {}


def schema_validator(name: str) -> Validator:
    """The validator of the shipped ``schema/<name>.schema.json`` (catalog, config, facts),
    built once."""
    found = _VALIDATORS.get(name)
    if found is None:
        path = SCHEMA_DIR / f"{name}.schema.json"
        found = _VALIDATORS[name] = Validator(json.loads(path.read_text(encoding="utf-8")))
    return found


class Validator:
    """Validate instances against one root schema (whose ``$defs`` ``$ref`` points into)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._check_supported(schema, "")
        self._compiled: Dict[int, Check] = {}
        self._root = self._compile(schema)

    def _check_supported(self, schema: Any, where: str) -> None:
        if isinstance(schema, list):
            for i, sub in enumerate(schema):
                self._check_supported(sub, f"{where}[{i}]")
            return
        if not isinstance(schema, Mapping):
            return
        unknown = set(schema) - _SUPPORTED - _ANNOTATIONS
        if unknown:
            raise UnsupportedSchema(f"schema{where}: unsupported keywords {sorted(unknown)}")
        for key, sub in schema.items():
            if key in ("properties", "$defs"):
                for name, prop in sub.items():
                    self._check_supported(prop, f"{where}.{key}.{name}")
            elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "if", "then"):
                self._check_supported(sub, f"{where}.{key}")

    def validate(self, instance: Any) -> Issues:
        """All violations, outermost first; ``[]`` when valid."""
        return self._root(instance, json_type(instance))

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            raise UnsupportedSchema(f"only local $ref {prefix}NAME is supported, not {ref!r}")
        target: Mapping[str, Any] = self.schema["$defs"][ref[len(prefix):]]
        return target

    def _compile(self, schema: Mapping[str, Any]) -> Check:
        """The check of ``schema``, made once per schema object."""
        found = self._compiled.get(id(schema))
        if found is not None:
            return found
        if "$ref" in schema:
            target = self._resolve(schema["$ref"])

            def follow(value: Any, kind: str) -> Issues:  # compiled on first use: refs recurse
                return self._compile(target)(value, kind)

            self._compiled[id(schema)] = follow
            return follow
        self._compiled[id(schema)] = self._checker(schema)
        return self._compiled[id(schema)]

    def _checker(self, schema: Mapping[str, Any]) -> Check:
        parts = [part for part in self._parts(schema) if part is not None]
        expected = schema.get("type")
        allowed = _admitted(schema)
        wanted = _article(expected if isinstance(expected, str) else " or ".join(expected or ()))

        def check(value: Any, kind: str) -> Issues:
            if allowed is not None and kind not in allowed:
                return [SchemaIssue((), f"must be {wanted}, got {kind}")]
            issues: Issues = []
            for part in parts:
                issues += part(value, kind)
            return issues

        return check

    def _parts(self, schema: Mapping[str, Any]) -> List[Optional[Check]]:
        return [
            _enum(schema),
            _string(schema),
            _number(schema),
            self._object(schema),
            self._array(schema),
            self._any_of(schema, "anyOf"),
            self._any_of(schema, "oneOf"),
            *[self._compile(branch) for branch in schema.get("allOf", ())],  # each must hold
            self._if_then(schema),
        ]

    def _object(self, schema: Mapping[str, Any]) -> Optional[Check]:
        keys = ("required", "properties", "additionalProperties", "minProperties",
                "maxProperties")  # fmt: skip
        if not any(key in schema for key in keys):
            return None
        required = tuple(schema.get("required", ()))
        properties = {
            name: self._compile(sub) for name, sub in schema.get("properties", {}).items()
        }
        extra = schema.get("additionalProperties", True)
        extra_check = self._compile(extra) if isinstance(extra, Mapping) else None
        known = ", ".join(properties) or "none"
        least, most = schema.get("minProperties", 0), schema.get("maxProperties")

        def check(value: Any, kind: str) -> Issues:
            if kind != "object":
                return []
            issues = [SchemaIssue((name,), "is required") for name in required if name not in value]
            if len(value) < least:
                issues.append(SchemaIssue((), f"needs at least {least} keys"))
            if most is not None and len(value) > most:
                issues.append(SchemaIssue((), f"takes at most {most} keys, got {sorted(value)}"))
            for name, item in value.items():
                sub = properties.get(name, extra_check)
                if sub is not None:
                    found = sub(item, json_type(item))
                    if found:
                        issues += _within(name, found)
                elif extra is False:
                    issues.append(SchemaIssue((name,), f"unknown key (known: {known})"))
            return issues

        return check

    def _array(self, schema: Mapping[str, Any]) -> Optional[Check]:
        if not any(key in schema for key in ("items", "minItems", "maxItems")):
            return None
        items = self._compile(schema["items"]) if "items" in schema else None
        least, most = schema.get("minItems", 0), schema.get("maxItems")

        def check(value: Any, kind: str) -> Issues:
            if kind != "array":
                return []
            issues: Issues = []
            if len(value) < least:
                issues.append(SchemaIssue((), f"needs at least {least} items"))
            if most is not None and len(value) > most:
                issues.append(SchemaIssue((), f"takes at most {most} items"))
            if items is not None:
                for index, item in enumerate(value):
                    found = items(item, json_type(item))
                    if found:
                        issues += _within(index, found)
            return issues

        return check

    def _any_of(self, schema: Mapping[str, Any], keyword: str) -> Optional[Check]:
        """Valid if one branch is (``oneOf``: exactly one); else the branch it aimed at.

        A branch is "aimed at" when the value has its type and its required keys
        (``{"all": ...}`` aims at the ``all`` branch); with exactly one such branch
        its own errors are precise, otherwise a summary names the shapes.
        """
        if keyword not in schema:
            return None
        branches = [self._resolve(b["$ref"]) if "$ref" in b else b for b in schema[keyword]]
        checks = [self._compile(branch) for branch in branches]
        exactly_one = keyword == "oneOf"

        # The branches a value of each JSON type can match (a branch without a type: any).
        admits = [_admitted(branch) for branch in branches]
        typed = None if None in admits else [t for kinds in admits for t in sorted(kinds or ())]

        def check(value: Any, kind: str) -> Issues:
            valid = 0
            for sub, kinds in zip(checks, admits):
                if (kinds is None or kind in kinds) and not sub(value, kind):
                    valid += 1
                    if not exactly_one:
                        return []
            if valid == 1:
                return []
            if typed is not None and kind not in typed:
                wanted = " or ".join(dict.fromkeys(typed))
                return [SchemaIssue((), f"must be {_article(wanted)}, got {kind}")]
            results = [(branch, sub(value, kind)) for branch, sub in zip(branches, checks)]
            if valid:
                return [SchemaIssue((), f"matches more than one of: {_describe(results)}")]
            aimed = [errors for branch, errors in results if _aims_at(value, kind, branch)]
            if len(aimed) == 1:
                return aimed[0]
            return [SchemaIssue((), f"matches none of the allowed forms: {_describe(results)}")]

        return check

    def _if_then(self, schema: Mapping[str, Any]) -> Optional[Check]:
        if "if" not in schema:
            return None
        condition, then = self._compile(schema["if"]), self._compile(schema.get("then", {}))

        def check(value: Any, kind: str) -> Issues:
            return [] if condition(value, kind) else then(value, kind)

        return check


def _enum(schema: Mapping[str, Any]) -> Optional[Check]:
    """``enum``, and ``const`` (an enum of one value)."""
    if "enum" not in schema and "const" not in schema:
        return None
    options = schema["enum"] if "enum" in schema else [schema.get("const")]
    listed = ", ".join(str(option) for option in options)
    const = "must be " + repr(options[0]) if "const" in schema else None

    def check(value: Any, kind: str) -> Issues:
        if any(_same(value, kind, option) for option in options):
            return []
        return [SchemaIssue((), const or f"{value!r} is not one of: {listed}")]

    return check


def _string(schema: Mapping[str, Any]) -> Optional[Check]:
    if "minLength" not in schema and "pattern" not in schema:
        return None
    least = schema.get("minLength", 0)
    text = schema.get("pattern")
    pattern = None if text is None else re.compile(text)

    def check(value: Any, kind: str) -> Issues:
        if kind != "string":
            return []
        issues: Issues = []
        if len(value) < least:
            issues.append(SchemaIssue((), "must not be empty" if not value else "is too short"))
        if pattern is not None and not pattern.search(value):
            issues.append(SchemaIssue((), f"{value!r} does not match {text}"))
        return issues

    return check


def _number(schema: Mapping[str, Any]) -> Optional[Check]:
    if "minimum" not in schema and "maximum" not in schema:
        return None
    least, most = schema.get("minimum"), schema.get("maximum")

    def check(value: Any, kind: str) -> Issues:
        if kind not in ("integer", "number"):
            return []
        if least is not None and value < least:
            return [SchemaIssue((), f"must be >= {least}")]
        if most is not None and value > most:
            return [SchemaIssue((), f"must be <= {most}")]
        return []

    return check


def _admitted(schema: Mapping[str, Any]) -> Optional[frozenset[str]]:
    """The JSON types a value matching ``schema`` can have; None when it names none."""
    expected = schema.get("type")
    if expected is None:
        return None
    types = {expected} if isinstance(expected, str) else set(expected)
    return frozenset(types | ({"integer"} if "number" in types else set()))


def _aims_at(value: Any, kind: str, schema: Mapping[str, Any]) -> bool:
    kinds = _admitted(schema)
    if kinds is not None and kind not in kinds:
        return False
    required = schema.get("required", ())
    return not required or (kind == "object" and all(k in value for k in required))


def _same(value: Any, kind: str, option: Any) -> bool:
    return kind == json_type(option) and bool(value == option)


def _describe(results: List[Tuple[Mapping[str, Any], Issues]]) -> str:
    """The shapes of anyOf branches: ``"{all, ...}; {path, op, ...}; string"``."""
    return "; ".join(
        "{" + ", ".join(schema["required"]) + ", ...}"
        if schema.get("required") else str(schema.get("type", "any"))
        for schema, _issues in results
    )  # fmt: skip
