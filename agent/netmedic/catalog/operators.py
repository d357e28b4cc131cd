"""The comparison operators of catalog conditions: (value found at a path, operand) → bool.

Facts keep their kinds: ``True``/``1`` and ``"1"``/``1`` are different values, ``1`` and
``1.0`` the same; ordering holds between two numbers or two strings only.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_kind(a: Any, b: Any) -> bool:
    """True/1 and "1"/1 are different values in facts; 1 and 1.0 are the same."""
    if _is_number(a) and _is_number(b):
        return True
    return type(a) is type(b)


def _eq(a: Any, b: Any) -> bool:
    if type(a) is type(b):  # the usual case, a port against a port: no kind rules to apply
        return bool(a == b)
    return _same_kind(a, b) and bool(a == b)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def op(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return compare(a, b)
        return False  # "3" < 4 is a question the facts cannot answer

    return op


def members(b: Any) -> List[Any]:
    return list(b) if isinstance(b, list) else [b]


def _in(a: Any, b: Any) -> bool:
    return any(_eq(a, member) for member in members(b))


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
SET_OPERATORS = frozenset({"in", "not_in", "contains_any", "contains_none"})
