"""Evaluate declarative match conditions against facts; nothing is eval'd.

A condition is one of (YAML as written in catalog files)::

    {all: [cond, ...]}      every one holds            {any: [cond, ...]}  one holds
    {not: cond}             it does not hold
    {path: P, op: OP, value: V | ref: P2 | param: NAME}    a comparison
    {some|every|none: {in: P, as: NAME, key_as: NAME?, where: cond?}}

Comparisons look at every non-null value the path reaches and hold when *one* of
them satisfies the operator (see :mod:`netmedic.catalog.operators`); a missing or null field
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

from netmedic.catalog.operators import OPERATORS, SET_OPERATORS, UNARY, members
from netmedic.catalog.paths import Path, PathError, Scope, items, parse_path, resolve


class CompileError(ValueError):
    """A condition cannot be compiled; ``field`` is where in the entry it sits."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# A compiled condition: does it hold in this scope, with these params (and this index)?
Test = Callable[[Scope, Mapping[str, Any], "Optional[Narrowing]"], bool]


class _Compiled:
    """A condition that carries its :data:`Test`, made once when it is built.

    The fields stay readable (the join index inspects comparisons); ``test`` is
    what the matcher runs for each binding, without re-reading the fields.
    """

    test: Test

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", self._make_test())

    def _make_test(self) -> Test:
        raise NotImplementedError


@dataclass(frozen=True)
class Compare(_Compiled):
    path: Path
    op: str
    value: Any = None
    ref: Optional[Path] = None
    param: Optional[str] = None

    def _make_test(self) -> Test:
        return _compare_test(self)


@dataclass(frozen=True)
class AllOf(_Compiled):
    conditions: Tuple[Condition, ...]

    def _make_test(self) -> Test:
        tests = tuple(part.test for part in self.conditions)

        def all_of(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
            # A plain loop: cheaper per binding than all() over a generator. Stops at the
            # first part that fails.
            for test in tests:  # noqa: SIM110
                if not test(scope, params, index):
                    return False
            return True

        return all_of


@dataclass(frozen=True)
class AnyOf(_Compiled):
    conditions: Tuple[Condition, ...]

    def _make_test(self) -> Test:
        tests = tuple(part.test for part in self.conditions)

        def any_of(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
            for test in tests:  # noqa: SIM110 - as all_of; stops at the first part that holds
                if test(scope, params, index):
                    return True
            return False

        return any_of


@dataclass(frozen=True)
class Not(_Compiled):
    condition: Condition

    def _make_test(self) -> Test:
        test = self.condition.test
        return lambda scope, params, index: not test(scope, params, index)


@dataclass(frozen=True)
class Loop:
    """Bind ``name`` (and ``key_name``) to each item of ``over``; ``where`` filters."""

    over: Path
    name: str
    key_name: Optional[str]
    where: Optional[Condition]


@dataclass(frozen=True)
class Quantified(_Compiled):
    kind: str  # some | every | none
    loop: Loop

    def _make_test(self) -> Test:
        loop, kind = self.loop, self.kind

        def quantified(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
            matched = (True for _binding in bind(loop, scope, params, index))
            if kind == "some":
                return any(matched)
            if kind == "none":
                return not any(matched)
            # every: no item fails the filter (vacuously true over an empty list)
            return sum(1 for _found in matched) == len(items(loop.over, scope))

        return quantified


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
        if cond.op in SET_OPERATORS:  # compare against the set of everything found
            return [[member for value in found for member in members(value)]] if found else []
        return found
    if cond.param is not None:
        return [params[cond.param]]
    return [cond.value]


def _compare_test(cond: Compare) -> Test:
    """The test of one comparison, specialised to its operator and operand."""
    values, one = cond.path.values, cond.path.value
    if cond.op in UNARY:
        return _unary_test(cond.op, bool(cond.value), values, one)
    operator = OPERATORS[cond.op]
    if one is not None and cond.param is None and cond.op not in SET_OPERATORS:
        # The usual comparisons: one field against a literal or against one other field.
        if cond.ref is None:
            operand = cond.value

            def literal(
                scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]
            ) -> bool:
                found = one(scope)
                return found is not None and operator(found, operand)

            return literal
        other = cond.ref.value
        if other is not None:

            def field(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
                found = one(scope)
                if found is None:
                    return False
                operand = other(scope)
                return operand is not None and operator(found, operand)

            return field

    def general(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
        found = values(scope)
        if not found:
            return False  # a missing field satisfies no comparison
        operands = _operands(cond, scope, params)
        return any(operator(value, operand) for value in found for operand in operands)

    return general


def _unary_test(
    op: str,
    wanted: bool,
    values: Callable[[Scope], List[Any]],
    one: Optional[Callable[[Scope], Optional[Any]]],
) -> Test:
    """``exists`` (reached and not null) and ``empty`` (an empty list, mapping or string)."""
    if op == "exists":
        if one is not None:
            return lambda scope, params, index: (one(scope) is not None) == wanted
        return lambda scope, params, index: bool(values(scope)) == wanted

    def empty(scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing]) -> bool:
        sized = [v for v in values(scope) if isinstance(v, (list, dict, str))]
        return any((len(v) == 0) == wanted for v in sized)

    return empty


def evaluate(
    cond: Condition, scope: Scope, params: Mapping[str, Any], index: Optional[Narrowing] = None
) -> bool:
    """Does ``cond`` hold in ``scope`` (facts roots plus bindings)?

    ``evaluate(compile_condition({"path": "a", "op": "gt", "value": 1}, "m", {}), {"a": 2}, {})``
    → ``True``. ``index`` (one per diagnosis) finds a loop's items by lookup
    where its ``where`` allows (:mod:`netmedic.catalog.index`); the answer is the same.
    """
    return cond.test(scope, params, index)


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
