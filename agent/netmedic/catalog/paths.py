"""Field paths into the facts: parse once, resolve against a scope of bindings.

Grammar (no eval; a tiny hand-written parser)::

    path  := name step*
    step  := "." name | "[" index "]"
    index := "*" | integer | 'quoted key' | "quoted key" | "$" path
    name  := [A-Za-z_][A-Za-z0-9_-]*

``ports.sockets[*].port`` → every socket's port; ``units.units["dnsmasq.service"]``
→ one unit (quote keys that contain dots); ``units.units[$name]`` → the unit
whose key is the value of the binding ``name`` (a join).

Resolution returns *all* values found, with ``null`` and missing fields left out:
``ports.sockets[*].owner`` over two sockets, one with ``owner: null``, yields a
single owner. Unknown is never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"-?[0-9]+")


class PathError(ValueError):
    """A path does not parse; the message quotes it and the offending position."""


@dataclass(frozen=True)
class Wildcard:
    """``[*]``: every element of a list, every value of a mapping."""


@dataclass(frozen=True)
class Dynamic:
    """``[$other.path]``: the key is looked up in the scope at match time."""

    path: Path


Step = Union[str, int, Wildcard, Dynamic]


@dataclass(frozen=True)
class Path:
    """A parsed path: ``ports.sockets[*].port`` → root ``ports``, steps
    ``("sockets", Wildcard(), "port")``."""

    text: str
    root: str
    steps: Tuple[Step, ...]
    # Only names and fixed keys or indexes: one value at most.
    plain: bool = field(init=False, compare=False, repr=False)
    # What the path reaches in a scope (see resolve): one function made per path, so the
    # matcher does not re-examine the steps for each of 100,000 bindings.
    values: Callable[[Scope], List[Any]] = field(init=False, compare=False, repr=False)
    # A plain path's one value or None: ``value(scope)``; None for other paths.
    value: Optional[Callable[[Scope], Optional[Any]]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        plain = all(isinstance(s, (str, int)) for s in self.steps)
        object.__setattr__(self, "plain", plain)
        one = _value_reader(self.root, self.steps) if plain else None
        object.__setattr__(self, "value", one)
        object.__setattr__(self, "values", _values_reader(self, one))

    def __str__(self) -> str:
        return self.text

    @property
    def ends_with_wildcard(self) -> bool:
        return bool(self.steps) and isinstance(self.steps[-1], Wildcard)

    def without_trailing_wildcard(self) -> Path:
        """``ports.sockets[*]`` → ``ports.sockets`` (used where a list is iterated)."""
        if not self.ends_with_wildcard:
            return self
        return Path(self.text[: self.text.rfind("[")], self.root, self.steps[:-1])


_PARSED: Dict[str, Path] = {}  # a catalog's templates name a few hundred paths, each many times


def parse_path(text: str) -> Path:
    """``'units.units["a.service"].after'``
    → ``Path(root="units", steps=("units", "a.service", "after"))``.
    """
    path = _PARSED.get(text)
    if path is not None:
        return path
    path, end = _parse(text, 0)
    if end != len(text):
        raise PathError(f"path {text!r}: unexpected {text[end]!r} at position {end}")
    if len(_PARSED) < 4096:
        _PARSED[text] = path
    return path


def _parse(text: str, pos: int) -> Tuple[Path, int]:
    start = pos
    match = _NAME.match(text, pos)
    if not match:
        raise PathError(f"path {text!r}: expected a name at position {pos}")
    root = match.group()
    pos = match.end()
    steps: List[Step] = []
    while pos < len(text) and text[pos] in ".[":
        if text[pos] == ".":
            match = _NAME.match(text, pos + 1)
            if not match:
                raise PathError(f"path {text!r}: expected a name at position {pos + 1}")
            steps.append(match.group())
            pos = match.end()
            continue
        step, pos = _parse_index(text, pos + 1)
        steps.append(step)
    return Path(text[start:pos], root, tuple(steps)), pos


def _parse_index(text: str, pos: int) -> Tuple[Step, int]:
    """Parse what follows ``[`` up to and including ``]``."""
    step: Step
    if text.startswith("*", pos):
        step, pos = Wildcard(), pos + 1
    elif text.startswith("$", pos):
        inner, pos = _parse(text, pos + 1)
        step = Dynamic(inner)
    elif pos < len(text) and text[pos] in "'\"":
        quote = text[pos]
        close = text.find(quote, pos + 1)
        if close < 0:
            raise PathError(f"path {text!r}: unterminated quote at position {pos}")
        step, pos = text[pos + 1 : close], close + 1
    else:
        match = _INT.match(text, pos)
        if not match:
            raise PathError(
                f"path {text!r}: expected *, a number, a quoted key or $path at position {pos}"
            )
        step, pos = int(match.group()), match.end()
    if not text.startswith("]", pos):
        raise PathError(f"path {text!r}: expected ']' at position {pos}")
    return step, pos + 1


Scope = Mapping[str, Any]


def resolve(path: Path, scope: Scope) -> List[Any]:
    """Every non-null value ``path`` reaches in ``scope`` (bindings and facts roots).

    ``resolve(parse_path("a[*].b"), {"a": [{"b": 1}, {"b": None}, {}]})`` → ``[1]``.
    """
    return path.values(scope)


def _value_reader(root: str, steps: Tuple[Step, ...]) -> Callable[[Scope], Optional[Any]]:
    """A plain path's reader: names and fixed keys only, so one value or None."""
    if not all(isinstance(step, str) for step in steps):

        def indexed(scope: Scope) -> Optional[Any]:
            found = scope.get(root)
            for step in steps:
                if found is None:
                    return None
                found = _index(found, step)
            return found

        return indexed

    def named(scope: Scope) -> Optional[Any]:  # the usual path: names all the way down
        found = scope.get(root)
        for step in steps:
            if isinstance(found, dict):  # facts are dicts: no Mapping ABC check on this step
                found = found.get(step)
            elif found is None:
                return None
            else:
                found = _index(found, step)
        return found

    return named


def _values_reader(
    path: Path, one: Optional[Callable[[Scope], Optional[Any]]]
) -> Callable[[Scope], List[Any]]:
    if one is not None:

        def plain(scope: Scope) -> List[Any]:
            found = one(scope)
            return [] if found is None else [found]

        return plain

    def walked(scope: Scope) -> List[Any]:
        if path.root not in scope:
            return []
        return [value for value in _walk(scope[path.root], path.steps, scope) if value is not None]

    return walked


def resolve_one(path: Path, scope: Scope) -> Optional[Any]:
    """The single value of a path without wildcards, or None when unknown."""
    values = resolve(path, scope)
    return values[0] if len(values) == 1 else None


def _walk(value: Any, steps: Tuple[Step, ...], scope: Scope) -> Iterator[Any]:
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if isinstance(step, Wildcard):
        children: List[Any] = []
        if isinstance(value, list):
            children = value
        elif isinstance(value, (dict, Mapping)):
            children = list(value.values())
        for child in children:
            yield from _walk(child, rest, scope)
        return
    key: Any = resolve_one(step.path, scope) if isinstance(step, Dynamic) else step
    child = _index(value, key)
    if child is not None:
        yield from _walk(child, rest, scope)


def _index(value: Any, key: Any) -> Optional[Any]:
    """One step down: mapping by str key, list by int position; anything else → None."""
    if isinstance(value, (dict, Mapping)) and isinstance(key, str):  # dict first: no ABC check
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int) and not isinstance(key, bool):
        return value[key] if -len(value) <= key < len(value) else None
    return None


def items(path: Path, scope: Scope) -> List[Tuple[Any, Any]]:
    """(key, item) pairs of the list(s) or mapping(s) ``path`` reaches.

    ``items(parse_path("u"), {"u": {"a.service": {...}}})`` → ``[("a.service", {...})]``;
    a list yields ``(index, element)``. ``ports.sockets[*]`` means ``ports.sockets``.
    """
    pairs: List[Tuple[Any, Any]] = []
    for container in resolve(path.without_trailing_wildcard(), scope):
        if isinstance(container, list):
            pairs.extend(enumerate(container))
        elif isinstance(container, Mapping):
            pairs.extend(container.items())
    return pairs
