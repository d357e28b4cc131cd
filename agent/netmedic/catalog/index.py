"""Joins by lookup: the items of a loop whose ``where`` needs a field equal to a known value.

``{in: ports.sockets, as: sock, where: {all: [{path: sock.port, op: eq, ref:
declared.port}, ...]}}`` would test every socket for every declared port (and a
``some: in ports.sockets`` inside it every socket again for each of those): a
match quadratic in the sockets. A :class:`JoinIndex`, made once per diagnosis,
maps the sockets by ``port`` the first time a loop asks, so each declared port
finds its sockets in one dictionary lookup.

The index only narrows: the candidates are the items whose field *could* be
equal (by the matcher's ``eq``: numbers by value, ``1`` never ``"1"`` or
``True``), and the loop still tests each against its whole ``where``, in the
container's order. So a loop's bindings are the same with or without it.

A conjunct of ``where`` narrows when it is an ``eq`` (or an ``any`` of ``eq``\\ s)
from a path under the loop's item, without ``[$...]`` steps, to a ``value``,
``param`` or ``ref`` that does not read the item; of several, the one with the
fewest candidates is used.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Set, Tuple

from netmedic.catalog.matcher import AllOf, AnyOf, Compare, Condition, Loop
from netmedic.catalog.paths import Dynamic, Path, Scope, resolve

Pairs = List[Tuple[Any, Any]]
# Per container and path: positions by value key, and positions whose value has no key.
_Table = Tuple[Dict[Hashable, List[int]], List[int]]


def value_key(value: Any) -> Optional[Hashable]:
    """What equal values share under the matcher's ``eq``; None when none is equal to it.

    ``1`` and ``1.0`` → ``("number", 1)``; ``True`` → ``("boolean", True)``;
    ``"1"`` → ``("string", "1")``; NaN → None (equal to nothing). A list or a
    mapping raises TypeError: it has no key (the index falls back to testing it).
    """
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else ("number", value)
    if isinstance(value, str):
        return ("string", value)
    raise TypeError(f"no index key for a {type(value).__name__}")


class JoinIndex:
    """The tables of one diagnosis: a container's items by a field, built on first use.

    Facts do not change during a diagnosis, so a table is keyed by the
    container's identity (and held with it, so the identity stays its own).
    """

    def __init__(self) -> None:
        self._tables: Dict[Tuple[int, Tuple[Any, ...]], Tuple[Any, _Table]] = {}
        self._probes: Dict[int, Tuple[Loop, List[List[Compare]]]] = {}

    def candidates(self, loop: Loop, scope: Scope, params: Mapping[str, Any]) -> Optional[Pairs]:
        """The (key, item) pairs of ``loop.over`` that may pass its ``where``, in order.

        None when nothing in ``where`` narrows (the caller takes every item).
        """
        probes = self._probes_of(loop)
        if not probes:
            return None
        containers = resolve(loop.over.without_trailing_wildcard(), scope)
        pairs: Pairs = []
        for container in containers:
            if not isinstance(container, (list, Mapping)):
                continue
            found = self._narrowest(container, loop, probes, scope, params)
            if found is None:
                return None
            keys = range(len(container)) if isinstance(container, list) else list(container)
            pairs += [(keys[at], container[keys[at]]) for at in found]
        return pairs

    def _narrowest(
        self,
        container: Any,
        loop: Loop,
        probes: Sequence[List[Compare]],
        scope: Scope,
        params: Mapping[str, Any],
    ) -> Optional[List[int]]:
        """Positions in ``container`` of the probe with the fewest, sorted; None: no probe."""
        best: Optional[Set[int]] = None
        for probe in probes:
            found: Set[int] = set()
            for compare in probe:
                positions = self._lookup(container, loop, compare, scope, params)
                if positions is None:
                    break
                found.update(positions)
            else:
                if not found:  # no item can pass this conjunct: the other probes cannot add one
                    return []
                if best is None or len(found) < len(best):
                    best = found
        return None if best is None else sorted(best)

    def _lookup(
        self, container: Any, loop: Loop, compare: Compare, scope: Scope, params: Mapping[str, Any]
    ) -> Optional[List[int]]:
        """Positions whose field may equal an operand of ``compare``; None when one has no key."""
        buckets, keyless = self._table(container, loop, compare.path)
        if compare.ref is not None:
            operands = resolve(compare.ref, scope)
        else:
            operands = [params[compare.param] if compare.param is not None else compare.value]
        positions = list(keyless)
        for operand in operands:
            try:
                key = value_key(operand)
            except TypeError:
                return None
            positions += buckets.get(key, ()) if key is not None else ()
        return positions

    def _table(self, container: Any, loop: Loop, path: Path) -> _Table:
        cache_key = (id(container), path.steps)
        cached = self._tables.get(cache_key)
        if cached is not None:
            return cached[1]
        buckets: Dict[Hashable, List[int]] = {}
        keyless: List[int] = []
        items = container if isinstance(container, list) else list(container.values())
        for position, item in enumerate(items):
            for value in resolve(path, {loop.name: item}):
                try:
                    key = value_key(value)
                except TypeError:
                    keyless.append(position)
                    break
                if key is not None:
                    buckets.setdefault(key, []).append(position)
        self._tables[cache_key] = (container, (buckets, keyless))
        return buckets, keyless

    def _probes_of(self, loop: Loop) -> List[List[Compare]]:
        cached = self._probes.get(id(loop))
        if cached is None:
            cached = self._probes[id(loop)] = (loop, probes(loop))
        return cached[1]


def probes(loop: Loop) -> List[List[Compare]]:
    """The conjuncts of ``loop.where`` that narrow, each as the ``eq``\\ s any of which holds."""
    where: Optional[Condition] = loop.where
    conjuncts = where.conditions if isinstance(where, AllOf) else (where,) if where else ()
    found = []
    for part in conjuncts:
        alternatives = part.conditions if isinstance(part, AnyOf) else (part,)
        compares = [alt for alt in alternatives if isinstance(alt, Compare) and _narrows(alt, loop)]
        if compares and len(compares) == len(alternatives):
            found.append(compares)
    return found


def _narrows(cond: Compare, loop: Loop) -> bool:
    """An ``eq`` from the item's own field to something that does not read the item."""
    if cond.op != "eq" or cond.path.root != loop.name:
        return False
    if any(isinstance(step, Dynamic) for step in cond.path.steps):
        return False
    return cond.ref is None or not _reads(cond.ref, {loop.name, loop.key_name})


def _reads(path: Path, names: Set[Optional[str]]) -> bool:
    """Does ``path`` (or a ``[$...]`` inside it) start from one of ``names``?"""
    return path.root in names or any(
        isinstance(step, Dynamic) and _reads(step.path, names) for step in path.steps
    )
