"""Fill evidence and remediation templates from the facts; no ``str.format``.

``{path}`` is replaced by the value(s) the path reaches (see paths.py);
``{path|text}`` uses ``text`` when the field is missing or null; ``{{``/``}}``
are literal braces. ``str.format`` is deliberately avoided: its attribute and
index syntax would let catalog text reach into Python objects.

A remediation var whose whole value is one placeholder keeps the value's type:
``"{declared.port}"`` → ``1900`` (an int), so role vars stay typed.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from netmedic.catalog.paths import Path, PathError, Scope, parse_path, resolve

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}|]+)(?:\|([^{}]*))?\}")
UNKNOWN = "unknown"

# A template cut into literal text and placeholders (path, fallback or None).
Piece = Union[str, Tuple[Path, Optional[str]]]
_CUT: Dict[str, Tuple[Piece, ...]] = {}  # a catalog has a few hundred templates, each
# rendered once per finding or holder (100,000 times on a port shared by 100,000 sockets)


def placeholders(template: str) -> List[str]:
    """Paths a template refers to: ``"pid {s.owner.pid|?}"`` → ``["s.owner.pid"]``."""
    return [m.group(1).strip() for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def check_template(template: str) -> None:
    """Raise PathError when a placeholder's path does not parse."""
    for text in placeholders(template):
        parse_path(text)


def format_value(value: Any) -> str:
    """How a fact reads in a sentence: ``0.8312`` → ``"0.831"``, ``1714557000.5`` →
    ``"1714557000"``, ``[1, 2]`` → ``"1, 2"``,
    ``True`` → ``"yes"``, ``[]`` → ``"none"``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        # Ratios read as 0.831; epoch seconds and byte counts keep their digits.
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(_nested(v) for v in value) if value else "none"
    return str(value)


def _nested(value: Any) -> str:
    """An inner list keeps its brackets: ``[[1, 5]]`` reads ``"[1, 5]"``, not ``"1, 5"``."""
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return format_value(value)


def cut(template: str) -> Tuple[Piece, ...]:
    """``"{p.port}/{p.proto|tcp}"`` → ``((Path p.port, None), "/", (Path p.proto, "tcp"))``.

    Cut once per template and kept: rendering then only resolves the paths.
    """
    pieces = _CUT.get(template)
    if pieces is not None:
        return pieces
    found: List[Piece] = []
    end = 0
    for match in _PLACEHOLDER.finditer(template):
        found.append(template[end : match.start()])
        if match.group(1) is None:
            found.append(match.group()[0])  # "{{" → "{", "}}" → "}"
        else:
            found.append((parse_path(match.group(1).strip()), match.group(2)))
        end = match.end()
    found.append(template[end:])
    pieces = tuple(piece for piece in found if piece != "")
    if len(_CUT) < 4096:
        _CUT[template] = pieces
    return pieces


def render(template: str, scope: Scope) -> str:
    """``render("{p.port}/{p.proto}", {"p": {"port": 1900, "proto": "udp"}})`` → ``"1900/udp"``."""
    text: List[str] = []
    for piece in cut(template):
        if isinstance(piece, str):
            text.append(piece)
            continue
        path, fallback = piece
        values = resolve(path, scope)
        if not values:
            text.append(UNKNOWN if fallback is None else fallback)
        else:
            text.append(format_value(values[0] if len(values) == 1 else values))
    return "".join(text)


def render_value(value: Any, scope: Scope) -> Any:
    """Render every string inside a vars structure; a lone placeholder keeps its type.

    ``{"port": "{d.port}", "note": "port {d.port}"}`` with ``d.port = 1900``
    → ``{"port": 1900, "note": "port 1900"}``.
    """
    if isinstance(value, str):
        pieces = cut(value)
        if len(pieces) == 1 and not isinstance(pieces[0], str):
            path, fallback = pieces[0]
            found = resolve(path, scope)
            if "[*]" in path.text:  # a wildcard always gives a list, maybe empty
                return found
            if not found:
                return fallback  # None when no fallback: an explicit null
            return found[0]
        return render(value, scope)
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    if isinstance(value, Mapping):
        return {str(k): render_value(v, scope) for k, v in value.items()}
    return value


__all__ = ["PathError", "check_template", "format_value", "placeholders", "render", "render_value"]
