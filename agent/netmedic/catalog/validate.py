"""A small JSON Schema validator for the subset ``schema/catalog.schema.json`` uses.

Targets have python3-yaml and python3-psutil only, not ``jsonschema``; the test
suite checks that this validator and ``jsonschema`` agree on the shipped schema.

Supported keywords: type, enum, const, pattern, minLength, minimum, maximum,
properties, required, additionalProperties, items, minItems, minProperties,
maxProperties, anyOf, if/then, $ref (``#/$defs/NAME``). A schema using anything
else is refused outright rather than half-checked.

Errors carry the field path: ``validate({"id": 3}, schema)`` →
``[SchemaIssue("id", "must be a string, got integer")]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_SUPPORTED = frozenset(
    {
        "type",
        "enum",
        "const",
        "pattern",
        "minLength",
        "minimum",
        "maximum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "minProperties",
        "maxProperties",
        "anyOf",
        "if",
        "then",
        "$ref",
    }
)


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this validator does not implement."""


@dataclass(frozen=True)
class SchemaIssue:
    """One violation: ``field`` like ``match.for_each[0].as``, empty for the document."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '(top level)'}: {self.message}"


def json_type(value: Any) -> str:
    """JSON's name for a Python value: ``True`` → ``"boolean"``, ``3`` → ``"integer"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_ok(value: Any, expected: str) -> bool:
    actual = json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _child(field: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{field}[{key}]"
    return f"{field}.{key}" if field else str(key)


class Validator:
    """Validate instances against one root schema (whose ``$defs`` ``$ref`` points into)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._check_supported(schema, "")

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
            elif key in ("items", "additionalProperties", "anyOf", "if", "then"):
                self._check_supported(sub, f"{where}.{key}")

    def validate(self, instance: Any) -> List[SchemaIssue]:
        """All violations, outermost first; ``[]`` when valid."""
        return self._validate(instance, self.schema, "")

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            raise UnsupportedSchema(f"only local $ref {prefix}NAME is supported, not {ref!r}")
        target: Mapping[str, Any] = self.schema["$defs"][ref[len(prefix) :]]
        return target

    def _validate(self, value: Any, schema: Mapping[str, Any], field: str) -> List[SchemaIssue]:
        if "$ref" in schema:
            return self._validate(value, self._resolve(schema["$ref"]), field)
        issues = self._check_scalar(value, schema, field)
        if issues:
            return issues  # a wrong type makes the rest noise
        if isinstance(value, dict):
            issues.extend(self._check_object(value, schema, field))
        if isinstance(value, list):
            issues.extend(self._check_array(value, schema, field))
        if "anyOf" in schema:
            issues.extend(self._check_any_of(value, schema["anyOf"], field))
        if "if" in schema and not self._validate(value, schema["if"], field):
            issues.extend(self._validate(value, schema.get("then", {}), field))
        return issues

    def _check_scalar(self, value: Any, schema: Mapping[str, Any], field: str) -> List[SchemaIssue]:
        issues: List[SchemaIssue] = []
        expected = schema.get("type")
        if expected is not None:
            types = [expected] if isinstance(expected, str) else list(expected)
            if not any(_type_ok(value, t) for t in types):
                wanted = " or ".join(types)
                return [SchemaIssue(field, f"must be {_article(wanted)}, got {json_type(value)}")]
        if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
            options = ", ".join(str(option) for option in schema["enum"])
            issues.append(SchemaIssue(field, f"{value!r} is not one of: {options}"))
        if "const" in schema and not _same(value, schema["const"]):
            issues.append(SchemaIssue(field, f"must be {schema['const']!r}"))
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                issues.append(
                    SchemaIssue(field, "must not be empty" if not value else "is too short")
                )
            if "pattern" in schema and not re.search(schema["pattern"], value):
                issues.append(SchemaIssue(field, f"{value!r} does not match {schema['pattern']}"))
        if json_type(value) in ("integer", "number"):
            if "minimum" in schema and value < schema["minimum"]:
                issues.append(SchemaIssue(field, f"must be >= {schema['minimum']}"))
            if "maximum" in schema and value > schema["maximum"]:
                issues.append(SchemaIssue(field, f"must be <= {schema['maximum']}"))
        return issues

    def _check_object(
        self, value: Dict[str, Any], schema: Mapping[str, Any], field: str
    ) -> List[SchemaIssue]:
        issues = [
            SchemaIssue(_child(field, name), "is required")
            for name in schema.get("required", ())
            if name not in value
        ]
        if len(value) < schema.get("minProperties", 0):
            issues.append(SchemaIssue(field, f"needs at least {schema['minProperties']} keys"))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            limit = schema["maxProperties"]
            issues.append(SchemaIssue(field, f"takes at most {limit} keys, got {sorted(value)}"))
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                issues.extend(self._validate(item, properties[name], _child(field, name)))
            elif extra is False:
                known = ", ".join(properties) or "none"
                issues.append(SchemaIssue(_child(field, name), f"unknown key (known: {known})"))
            elif isinstance(extra, Mapping):
                issues.extend(self._validate(item, extra, _child(field, name)))
        return issues

    def _check_array(
        self, value: List[Any], schema: Mapping[str, Any], field: str
    ) -> List[SchemaIssue]:
        issues: List[SchemaIssue] = []
        if len(value) < schema.get("minItems", 0):
            issues.append(SchemaIssue(field, f"needs at least {schema['minItems']} items"))
        if "items" in schema:
            for i, item in enumerate(value):
                issues.extend(self._validate(item, schema["items"], _child(field, i)))
        return issues

    def _check_any_of(
        self, value: Any, branches: List[Mapping[str, Any]], field: str
    ) -> List[SchemaIssue]:
        """Valid if one branch is; otherwise report the branch the value was aiming at.

        A branch is "aimed at" when the value has its type and its required keys
        (``{"all": ...}`` aims at the ``all`` branch); with exactly one such branch
        its own errors are precise, otherwise a summary names the shapes.
        """
        results: List[Tuple[Mapping[str, Any], List[SchemaIssue]]] = []
        for branch in branches:
            resolved = self._resolve(branch["$ref"]) if "$ref" in branch else branch
            errors = self._validate(value, resolved, field)
            if not errors:
                return []
            results.append((resolved, errors))
        aimed = [errors for resolved, errors in results if self._aims_at(value, resolved)]
        if len(aimed) == 1:
            return aimed[0]
        return [SchemaIssue(field, f"matches none of the allowed forms: {_describe(results)}")]

    @staticmethod
    def _aims_at(value: Any, schema: Mapping[str, Any]) -> bool:
        expected = schema.get("type")
        if isinstance(expected, str) and not _type_ok(value, expected):
            return False
        required = schema.get("required", ())
        return not required or (isinstance(value, dict) and all(k in value for k in required))


def _same(a: Any, b: Any) -> bool:
    return json_type(a) == json_type(b) and bool(a == b)


def _article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _describe(results: List[Tuple[Mapping[str, Any], List[SchemaIssue]]]) -> str:
    forms = []
    for schema, _issues in results:
        required = schema.get("required")
        shape = "{" + ", ".join(required) + ", ...}" if required else schema.get("type", "any")
        forms.append(str(shape))
    return "; ".join(forms)
