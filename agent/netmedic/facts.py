"""Run the collectors and assemble the facts document.

The document (schema: ``schema/facts.schema.json``, docs: docs/facts.md)::

    {"schema_version": 2, "agent_version": "0.2.0", "host": "web1",
     "collected_at": "2024-05-01T10:00:00Z", "duration_ms": 12, "ports": {...}, "units": {...},
     ..., "errors": []}

A collector that raises one of :data:`COLLECTOR_ERRORS` (or a SubprocessError)
yields an ``errors`` entry and ``null`` for its family; the others still report.
The config the collectors read is the caller's (``ctx.config``; :func:`netmedic.api.collect`
loads the host's file). Collector modules are imported when their family is
collected, so ``--only ports`` imports nothing the ports path does not need.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)
import sys
import time

from netmedic import SCHEMA_VERSION, __version__
from netmedic.registry import FAMILIES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

    from netmedic.context import Context, Facts

    ErrorEntry = Dict[str, str]
    Collect = Callable[[Context], Dict[str, Any]]

# What a collector may fail with: OS and parse errors, bad config shapes, missing
# optional modules, failed commands (subprocess.SubprocessError: see
# is_collector_error). Anything else is a bug and should surface.
COLLECTOR_ERRORS: Tuple[Type[BaseException], ...] = (
    OSError,
    ValueError,  # includes UnicodeDecodeError and json.JSONDecodeError
    LookupError,
    TypeError,
    ImportError,
    RuntimeError,
)


def is_collector_error(exc: BaseException) -> bool:
    """True for the failures a collector reports as data (see COLLECTOR_ERRORS).

    subprocess.SubprocessError counts too; it is looked up rather than imported:
    if no collector imported subprocess, none can have raised its errors.
    """
    if isinstance(exc, COLLECTOR_ERRORS):
        return True
    subprocess = sys.modules.get("subprocess")
    return subprocess is not None and isinstance(exc, subprocess.SubprocessError)


def error_entry(family: str, exc: BaseException) -> ErrorEntry:
    """The one place a failure becomes data.

    ``("ports", PermissionError(13, "denied"))``
    → ``{"family": "ports", "type": "PermissionError", "message": "[Errno 13] denied"}``
    """
    return {"family": family, "type": type(exc).__name__, "message": str(exc)}


def select_families(only: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """Requested families in collection order: ``["dns", "ports"]`` → ``("ports", "dns")``."""
    if not only:
        return FAMILIES
    unknown = sorted(set(only) - set(FAMILIES))
    if unknown:
        raise ValueError(
            f"unknown fact families: {', '.join(unknown)} (known: {', '.join(FAMILIES)})"
        )
    return tuple(family for family in FAMILIES if family in only)


def _port_owner_units(ports: Any) -> List[str]:
    """Units owning listening sockets.

    ``{"sockets": [{"owner": {"unit": "a.service"}}, {"owner": None}]}`` → ``["a.service"]``
    """
    units = set()
    for sock in (ports or {}).get("sockets", ()):
        owner = sock.get("owner") or {}
        unit = owner.get("unit")
        if unit:
            units.add(unit)
    return sorted(units)


def _context_for(family: str, ctx: Context, doc: Facts) -> Context:
    """Hand a collector what earlier families found, so nothing is collected twice."""
    derived: Dict[str, Any] = {name: doc[name] for name in FAMILIES if doc.get(name) is not None}
    if family == "units":
        return ctx.replace(related_units=_port_owner_units(doc.get("ports")), derived=derived)
    return ctx.replace(derived=derived)


def _default_import(family: str) -> Collect:
    # __import__ rather than importlib, which the ports path would import only for this.
    module = __import__(f"netmedic.collectors.{family}", fromlist=["collect"])
    collect: Collect = module.collect
    return collect


def gather(ctx: Context, load: Callable[[str], Collect] = _default_import) -> Facts:
    """Collect the families in ``ctx.only`` (all when None) into one document.

    ``load`` maps a family name to its ``collect`` function; tests swap it to force
    a collector to raise.
    """
    started = ctx.monotonic()
    doc: Facts = {
        "schema_version": SCHEMA_VERSION,
        "agent_version": __version__,
        "host": posix.uname().nodename,
        # time.strftime, not datetime: keeps the fast path's imports small.
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctx.clock())),
        "duration_ms": 0,
    }
    errors: List[ErrorEntry] = []
    for family in select_families(ctx.only):
        try:
            doc[family] = load(family)(_context_for(family, ctx, doc))
        except Exception as exc:
            if not is_collector_error(exc):
                raise  # a bug, not a host condition: let it surface
            doc[family] = None
            errors.append(error_entry(family, exc))
    doc["duration_ms"] = round((ctx.monotonic() - started) * 1000)
    doc["errors"] = errors
    return doc
