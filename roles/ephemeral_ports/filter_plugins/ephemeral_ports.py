"""Filters of the ephemeral_ports role: port lists in, kernel's list format out.

The kernel prints ``ip_local_reserved_ports`` as sorted, merged ``low-high`` runs
joined by commas; the role writes the same form so runtime and file compare as text.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

Span = Tuple[int, int]

_ENTRY = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_SOURCE_LINE = re.compile(r"^# netmedic-reserved-(\w+): ?(.*)$", re.MULTILINE)
_KEY_LINE = re.compile(r"^(net\.ipv4\.[a-z_]+) = ?(.*)$", re.MULTILINE)


def _span(entry: Any) -> Optional[Span]:
    """``33434`` → ``(33434, 33434)``; ``"33434-33533"`` → ``(33434, 33533)``; ``"x"`` → None."""
    if isinstance(entry, bool):
        return None
    if isinstance(entry, int):
        return (entry, entry)
    if isinstance(entry, (list, tuple)) and len(entry) == 2:  # the agent's [low, high]
        # Whole numbers only: int() would take "a" (ValueError), 1.5 (as 1) and True (as 1).
        if all(isinstance(end, int) and not isinstance(end, bool) for end in entry):
            return (entry[0], entry[1])
        return None
    match = _ENTRY.match(str(entry))
    if not match:
        return None
    low = int(match.group(1))
    return (low, int(match.group(2) or low))


def port_entry_errors(entries: Any, variable: str, allow_below_1024: bool = False) -> List[str]:
    """Messages for malformed entries, each naming the variable and the value.

    ``([80, "70000", "9-3"], "v")`` → three messages; ``([33434, "40000-40010"], "v")`` → ``[]``.
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [f"{variable} must be a list of ports or 'low-high' ranges, got {entries!r}"]
    errors: List[str] = []
    for entry in entries:
        span = _span(entry)
        if span is None:
            errors.append(f"{variable}: {entry!r} is neither a port number nor a 'low-high' range")
        elif not (1 <= span[0] <= 65535 and 1 <= span[1] <= 65535):
            errors.append(f"{variable}: {entry!r} is outside 1-65535")
        elif span[0] > span[1]:
            errors.append(f"{variable}: {entry!r} has its low end above its high end")
        elif span[0] < 1024 and not allow_below_1024:
            errors.append(
                f"{variable}: {entry!r} is below 1024;"
                " set ephemeral_ports_allow_below_1024: true to allow it"
            )
    return errors


def merge_spans(spans: Iterable[Span]) -> List[Span]:
    """``[(5, 7), (1, 2), (3, 4), (9, 9)]`` → ``[(1, 7), (9, 9)]`` (adjacent runs join)."""
    merged: List[Span] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def port_list(entries: Any) -> str:
    """Kernel list format: ``[33533, "33434-33532", 40050]`` → ``"33434-33533,40050"``.

    A string is split at commas first: ``"1-2,5"`` → ``"1-2,5"``; ``[[1, 2]]`` → ``"1-2"``.
    """
    if isinstance(entries, str):
        entries = [part for part in entries.split(",") if part.strip()]
    spans = [span for span in (_span(e) for e in (entries or [])) if span is not None]
    return ",".join(f"{low}-{high}" if high > low else str(low) for low, high in merge_spans(spans))


def port_count(entries: Any) -> int:
    """Ports covered: ``["33434-33533", 33434]`` → ``100``."""
    spans = [span for span in (_span(e) for e in (entries or [])) if span is not None]
    return sum(high - low + 1 for low, high in merge_spans(spans))


def dropin_state(text: Optional[str]) -> Dict[str, Any]:
    """What a netmedic ephemeral drop-in holds (``{}`` parts when absent).

    ``"# netmedic-reserved-probes: 33434-33533\\nnet.ipv4.tcp_tw_reuse = 1\\n"``
    → ``{"reserved": {"probes": "33434-33533"}, "values": {"net.ipv4.tcp_tw_reuse": "1"}}``
    """
    text = text or ""
    return {
        "reserved": {source: value.strip() for source, value in _SOURCE_LINE.findall(text)},
        "values": {key: " ".join(value.split()) for key, value in _KEY_LINE.findall(text)},
    }


def sysctl_value(text: Any) -> str:
    """Runtime value as the file writes it: ``"40000\\t40100\\n"`` → ``"40000 40100"``."""
    return " ".join(str(text).split())


def runtime_values(ephemeral: Dict[str, Any]) -> Dict[str, str]:
    """The agent's ``ephemeral`` facts in the drop-in's form.

    ``{"port_range": {"low": 1, "high": 2}, "reserved_ports": [[5, 6]], "tcp_tw_reuse": 2}``
    → ``{"net.ipv4.ip_local_port_range": "1 2",
         "net.ipv4.ip_local_reserved_ports": "5-6", "net.ipv4.tcp_tw_reuse": "2"}``
    """
    port_range = ephemeral["port_range"]
    return {
        "net.ipv4.ip_local_port_range": f"{port_range['low']} {port_range['high']}",
        "net.ipv4.ip_local_reserved_ports": port_list(ephemeral["reserved_ports"]),
        "net.ipv4.tcp_tw_reuse": str(ephemeral["tcp_tw_reuse"]),
    }


def changed_keys(desired: Dict[str, str], runtime: Dict[str, str]) -> List[str]:
    """Keys whose runtime value differs: ``({"k": "1 2"}, {"k": "1  2"})`` → ``[]``."""
    return sorted(
        key
        for key, value in desired.items()
        if sysctl_value(runtime.get(key, "")) != sysctl_value(value)
    )


def overriding_files(
    sources: Dict[str, Any], keys: Iterable[str], dropin: str
) -> List[Dict[str, str]]:
    """Files that win over ``dropin`` for ``keys``, from the agent's ``sysctl_sources``.

    A winner overrides the drop-in when it already overrode it (the drop-in exists),
    or when it sorts after it by file name (systemd-sysctl's order), or is
    /etc/sysctl.conf (applied last). A same-named file elsewhere loses to /etc.
    """
    name = dropin.rsplit("/", 1)[-1]
    found: List[Dict[str, str]] = []
    for key in keys:
        winner = sources.get(key)
        if not winner or winner["file"] == dropin:
            continue
        later = winner["file"] == "/etc/sysctl.conf" or winner["file"].rsplit("/", 1)[-1] > name
        if dropin in winner.get("overrides", []) or later:
            found.append({"key": key, "file": winner["file"], "value": winner["value"]})
    return found


class FilterModule:
    """ephemeral_ports filters."""

    def filters(self) -> Dict[str, Any]:
        return {
            "ephemeral_ports_entry_errors": port_entry_errors,
            "ephemeral_ports_list": port_list,
            "ephemeral_ports_count": port_count,
            "ephemeral_ports_dropin_state": dropin_state,
            "ephemeral_ports_sysctl_value": sysctl_value,
            "ephemeral_ports_changed_keys": changed_keys,
            "ephemeral_ports_runtime_values": runtime_values,
            "ephemeral_ports_overriding_files": overriding_files,
        }
