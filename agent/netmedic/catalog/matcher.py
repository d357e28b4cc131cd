"""Evaluate declarative match conditions against facts; nothing is eval'd.

A condition is one of (YAML as written in catalog files)::

    {all: [cond, ...]}      every one holds            {any: [cond, ...]}  one holds
    {not: cond}             it does not hold
    {path: P, op: OP, value: V | ref: P2 | param: NAME}    a comparison
    {some|every|none: {in: P, as: NAME, key_as: NAME?, where: cond?}}

Comparisons look at every non-null value the path reaches and hold when *one* of
them satisfies the operator (see :data:`OPERATORS`); a missing or null field
satisfies nothing except ``exists: false``. ``ref`` compares two fields of the
facts (``{path: unit.start_us, op: lt, ref: dns.resolver.usable_since_us}`` is
time ordering). ``param`` takes the value from the entry's ``params`` so
operators can tune a threshold without rewriting the entry.

Conditions are compiled once, when the catalog loads: a bad path or regex is a
load error that names the field, not a surprise at diagnosis time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

from netmedic.catalog.paths import Path, PathError, Scope, items, parse_path, resolve


class CompileError(ValueError):
    """A condition cannot be compiled; ``field`` is where in the entry it sits."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_kind(a: Any, b: Any) -> bool:
    """True/1 and "1"/1 are different values in facts; 1 and 1.0 are the same."""
    if _is_number(a) and _is_number(b):
        return True
    return type(a) is type(b)


def _eq(a: Any, b: Any) -> bool:
    return _same_kind(a, b) and bool(a == b)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def op(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return compare(a, b)
        return False  # "3" < 4 is a question the facts cannot answer

    return op


def _members(b: Any) -> List[Any]:
    return list(b) if isinstance(b, list) else [b]


def _in(a: Any, b: Any) -> bool:
    return any(_eq(a, member) for member in _members(b))


def _contains(a: Any, b: Any) -> bool:
    return isinstance(a, list) and any(_eq(member, b) for member in a)


def _contains_any(a: Any, b: Any) -> bool:
    return isinstance(a, list) and any(_in(member, b) for member in a)


def _regex(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, re.Pattern) and b.search(a) is not None


Binary = Callable[[Any, Any], bool]

# Binary operators: (value found at path, operand) → bool.
OPERATORS: Dict[str, Binary] = {
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered(lambda a, b: bool(a < b)),
    "le": _ordered(lambda a, b: bool(a <= b)),
    "gt": _ordered(lambda a, b: bool(a > b)),
    "ge": _ordered(lambda a, b: bool(a >= b)),
    "in": _in,
    "not_in": lambda a, b: not _in(a, b),
    "contains": _contains,
    "not_contains": lambda a, b: isinstance(a, list) and not _contains(a, b),
    "contains_any": _contains_any,
    "contains_none": lambda a, b: isinstance(a, list) and not _contains_any(a, b),
    "regex": _regex,
}
# Unary operators take a boolean ``value``: exists (reached and not null), empty
# (an empty list, mapping or string).
UNARY = ("exists", "empty")
# Operators whose operand is compared as a whole list rather than element-wise.
_SET_OPERATORS = frozenset({"in", "not_in", "contains_any", "contains_none"})


@dataclass(frozen=True)
class Compare:
    path: Path
    op: str
    value: Any = None
    ref: Optional[Path] = None
    param: Optional[str] = None


@dataclass(frozen=True)
class AllOf:
    conditions: Tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: Tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class Loop:
    """Bind ``name`` (and ``key_name``) to each item of ``over``; ``where`` filters."""

    over: Path
    name: str
    key_name: Optional[str]
    where: Optional[Condition]


@dataclass(frozen=True)
class Quantified:
    kind: str  # some | every | none
    loop: Loop


Condition = Union[Compare, AllOf, AnyOf, Not, Quantified]

QUANTIFIERS = ("some", "every", "none")


class Narrowing(Protocol):
    """Finds the items a loop may bind without testing them all (catalog.index.JoinIndex)."""

    def candidates(
        self, loop: Loop, scope: Scope, params: Mapping[str, Any]
    ) -> Optional[List[Tuple[Any, Any]]]:
        """The (key, item) pairs that may pass ``loop.where``, in order; None: every item."""


def _path(raw: Any, field: str) -> Path:
    try:
        return parse_path(str(raw))
    except PathError as exc:
        raise CompileError(field, str(exc)) from exc


def compile_condition(raw: Mapping[str, Any], field: str, params: Mapping[str, Any]) -> Condition:
    """``{"path": "ports.source", "op": "eq", "value": "psutil"}`` → ``Compare(...)``.

    ``raw`` has passed the schema; this checks what the schema cannot (path
    grammar, regex syntax, that a ``param`` is declared) and names ``field``.
    """
    if "all" in raw or "any" in raw:
        key = "all" if "all" in raw else "any"
        parts = tuple(
            compile_condition(part, f"{field}.{key}[{i}]", params)
            for i, part in enumerate(raw[key])
        )
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if "not" in raw:
        return Not(compile_condition(raw["not"], f"{field}.not", params))
    for kind in QUANTIFIERS:
        if kind in raw:
            return Quantified(kind, compile_loop(raw[kind], f"{field}.{kind}", params))
    return _compile_compare(raw, field, params)


def _compile_compare(raw: Mapping[str, Any], field: str, params: Mapping[str, Any]) -> Compare:
    op = str(raw["op"])
    path = _path(raw["path"], f"{field}.path")
    if "ref" in raw:
        return Compare(path, op, ref=_path(raw["ref"], f"{field}.ref"))
    if "param" in raw:
        name = str(raw["param"])
        if name not in params:
            raise CompileError(f"{field}.param", f"{name!r} is not declared in the entry's params")
        return Compare(path, op, param=name)
    value = raw.get("value")
    if op == "regex":
        try:
            value = re.compile(str(value))
        except re.error as exc:
            raise CompileError(f"{field}.value", f"invalid regex {value!r}: {exc}") from exc
    return Compare(path, op, value=value)


def compile_loop(raw: Mapping[str, Any], field: str, params: Mapping[str, Any]) -> Loop:
    """``{"in": "ports.sockets", "as": "sock"}`` → ``Loop(over=<ports.sockets>, name="sock")``."""
    where = raw.get("where")
    return Loop(
        over=_path(raw["in"], f"{field}.in"),
        name=str(raw["as"]),
        key_name=str(raw["key_as"]) if raw.get("key_as") else None,
        where=compile_condition(where, f"{field}.where", params) if where else None,
    )


def _operands(cond: Compare, scope: Scope, params: Mapping[str, Any]) -> List[Any]:
    if cond.ref is not None:
        found = resolve(cond.ref, scope)
        if cond.op in _SET_OPERATORS:  # compare against the set of everything found
            return [[member for value in found for member in _members(value)]] if found else []
        return found
    if cond.param is not None:
        return [params[cond.param]]
    return [cond.value]


def _compare(cond: Compare, scope: Scope, params: Mapping[str, Any]) -> bool:
    values = resolve(cond.path, scope)
    if cond.op == "exists":
        return bool(values) == bool(cond.value)
    if cond.op == "empty":
        sized = [v for v in values if isinstance(v, (list, dict, str))]
        return any((len(v) == 0) == bool(cond.value) for v in sized)
    if not values:
        return False  # a missing field satisfies no comparison
    operator = OPERATORS[cond.op]
    operands = _operands(cond, scope, params)
    if len(values) == 1 and len(operands) == 1:  # most comparisons: one field, one operand
        return operator(values[0], operands[0])
    return any(operator(value, operand) for value in values for operand in operands)


def evaluate(
    cond: Condition, scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing] = None
) -> bool:
    """Does ``cond`` hold in ``scope`` (facts roots plus bindings)?

    ``evaluate(compile_condition({"path": "a", "op": "gt", "value": 1}, "m", {}), {"a": 2}, {})``
    → ``True``. ``index`` (one per diagnosis) finds a loop's items by lookup
    where its ``where`` allows (:mod:`netmedic.catalog.index`); the answer is the same.
    """
    if isinstance(cond, Compare):
        return _compare(cond, scope, params)
    if isinstance(cond, (AllOf, AnyOf)):  # stops at the first part that decides it
        wanted = isinstance(cond, AnyOf)
        for part in cond.conditions:
            if evaluate(part, scope, params, index) == wanted:
                return wanted
        return not wanted
    if isinstance(cond, Not):
        return not evaluate(cond.condition, scope, params, index)
    matched = (True for _binding in bind(cond.loop, scope, params, index))
    if cond.kind == "some":
        return any(matched)
    if cond.kind == "none":
        return not any(matched)
    # every: no item fails the filter (vacuously true over an empty list)
    total = len(items(cond.loop.over, scope))
    return sum(1 for _found in matched) == total


def bind(
    loop: Loop, scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing] = None
) -> Iterator[Dict[str, Any]]:
    """Scopes extended with each item of ``loop.over`` that passes ``loop.where``."""
    pairs = index.candidates(loop, scope, params) if index is not None else None
    for key, item in items(loop.over, scope) if pairs is None else pairs:
        extended = dict(scope)
        extended[loop.name] = item
        if loop.key_name:
            extended[loop.key_name] = key
        if loop.where is None or evaluate(loop.where, extended, params, index):
            yield extended


def bindings(
    loops: Sequence[Loop],
    scope: Scope,
    params: Mapping[str, Any],
    index: Optional[Narrowing] = None,
) -> Iterator[Dict[str, Any]]:
    """Nested loops (a join): every combination of items that passes each ``where``.

    ``config.ports → declared`` then ``ports.sockets → sock`` (where the ports are
    equal) yields one scope per (declared port, socket holding it).
    """
    if not loops:
        yield dict(scope)
        return
    for extended in bind(loops[0], scope, params, index):
        yield from bindings(loops[1:], extended, params, index)
