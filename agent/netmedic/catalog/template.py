"""Fill evidence and remediation templates from the facts; no ``str.format``.

``{path}`` is replaced by the value(s) the path reaches (see paths.py);
``{path|text}`` uses ``text`` when the field is missing or null; ``{{``/``}}``
are literal braces. ``str.format`` is deliberately avoided: its attribute and
index syntax would let catalog text reach into Python objects.

A remediation var whose whole value is one placeholder keeps the value's type:
``"{declared.port}"`` → ``1900`` (an int), so role vars stay typed.

Templates are compiled once into functions of the scope (:func:`compile_text`,
:func:`compile_value`): a finding on a port shared by 100,000 sockets fills the
same few templates 100,000 times, and then only reads the fields.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from netmedic.catalog.paths import Path, PathError, Scope, parse_path

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}|]+)(?:\|([^{}]*))?\}")
UNKNOWN = "unknown"

Text = Callable[[Scope], str]  # a compiled template
Filler = Callable[[Scope], Any]  # a compiled remediation var
_TEXTS: Dict[str, Text] = {}  # a catalog has a few hundred templates


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


def compile_text(template: str) -> Text:
    """``compile_text("{p.port}/{p.proto|tcp}")({"p": {"port": 53}})`` → ``"53/tcp"``."""
    text = _TEXTS.get(template)
    if text is not None:
        return text
    parts: List[Union[str, Text]] = []  # literal text, or a placeholder's filler
    end = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[end : match.start()])
        if match.group(1) is None:
            parts.append(match.group()[0])  # "{{" → "{", "}}" → "}"
        else:
            parts.append(_placeholder(parse_path(match.group(1).strip()), match.group(2)))
        end = match.end()
    parts.append(template[end:])
    parts = [part for part in parts if part != ""]

    def filled(scope: Scope) -> str:
        return "".join([part if isinstance(part, str) else part(scope) for part in parts])

    if len(_TEXTS) < 4096:
        _TEXTS[template] = filled
    return filled


def _placeholder(path: Path, fallback: Optional[str]) -> Text:
    """``{path}`` or ``{path|fallback}`` as text: one value as it reads, several as a list."""
    missing = UNKNOWN if fallback is None else fallback
    one = path.value
    if one is not None:  # a plain path: one value or none

        def single(scope: Scope) -> str:
            found = one(scope)
            return missing if found is None else format_value(found)

        return single

    def every(scope: Scope) -> str:
        found = path.values(scope)
        if not found:
            return missing
        return format_value(found[0] if len(found) == 1 else found)

    return every


def compile_value(value: Any) -> Filler:
    """A vars structure whose strings are templates; a lone placeholder keeps its type.

    ``compile_value({"port": "{d.port}", "note": "port {d.port}"})`` applied to a
    scope where ``d.port = 1900`` → ``{"port": 1900, "note": "port 1900"}``.
    """
    if isinstance(value, str):
        match = _PLACEHOLDER.fullmatch(value)
        if match is None or match.group(1) is None:
            return compile_text(value)
        return _typed(parse_path(match.group(1).strip()), match.group(2))
    if isinstance(value, list):
        items = [compile_value(item) for item in value]
        return lambda scope: [item(scope) for item in items]
    if isinstance(value, Mapping):
        fields = [(str(key), compile_value(item)) for key, item in value.items()]
        return lambda scope: {key: item(scope) for key, item in fields}
    return lambda scope: value


def _typed(path: Path, fallback: Optional[str]) -> Filler:
    """A var that is one placeholder: the value itself (None when missing: an explicit null)."""
    if "[*]" in path.text:  # a wildcard always gives a list, maybe empty
        return path.values
    one = path.value
    if one is not None:

        def single(scope: Scope) -> Any:
            found = one(scope)
            return fallback if found is None else found

        return single

    def first(scope: Scope) -> Any:
        found = path.values(scope)
        return found[0] if found else fallback

    return first


def render(template: str, scope: Scope) -> str:
    """``render("{p.port}/{p.proto}", {"p": {"port": 1900, "proto": "udp"}})`` → ``"1900/udp"``."""
    return compile_text(template)(scope)


def render_value(value: Any, scope: Scope) -> Any:
    """:func:`compile_value` applied once: ``render_value("{d.list[*]}", {"d": {"list": [1]}})``
    → ``[1]``."""
    return compile_value(value)(scope)


__all__ = [
    "PathError",
    "check_template",
    "compile_text",
    "compile_value",
    "format_value",
    "placeholders",
    "render",
    "render_value",
]
