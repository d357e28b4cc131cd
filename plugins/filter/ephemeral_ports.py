# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
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


RANGE = "net.ipv4.ip_local_port_range"
RESERVED = "net.ipv4.ip_local_reserved_ports"
TW_REUSE = "net.ipv4.tcp_tw_reuse"


def take_findings(findings: Any) -> List[Dict[str, Any]]:
    """Findings as the plan hands them, or as ``netmedic_check`` reports them, in one form.

    ``[{"id": "x", "subject": "s", "remediation": {"role": "r", "vars": {"v": 1}}}]``
    → ``[{"id": "x", "subject": "s", "vars": {"v": 1}, "evidence": []}]``.
    """
    taken = []
    for finding in findings or []:
        found_vars = finding.get("vars")
        if found_vars is None:
            found_vars = (finding.get("remediation") or {}).get("vars") or {}
        taken.append({
            "id": finding["id"], "subject": finding.get("subject"),
            "vars": found_vars, "evidence": list(finding.get("evidence") or []),
        })  # fmt: skip
    return taken


def finding_ids(findings: Any) -> List[Dict[str, Any]]:
    """What ``netmedic_check`` verifies: ``[{"id": "x", "subject": "s", "vars": {}}]``
    → ``[{"id": "x", "subject": "s"}]``."""
    return [{"id": f["id"], "subject": f["subject"]} for f in take_findings(findings)]


def finding_errors(findings: Any, handles: List[Dict[str, str]], variable: str) -> List[str]:
    """Messages for findings this role cannot act on, each naming where it is.

    An id the role does not handle, a range var without whole ``low < high``, a
    reservation that is not a port or range.
    """
    ids = {handle["id"] for handle in handles}
    errors: List[str] = []
    for index, finding in enumerate(take_findings(findings)):
        where = f"{variable}[{index}]"
        if finding["id"] not in ids:
            errors.append(f"{where}.id {finding['id']!r} is not a finding ephemeral_ports fixes")
        wanted = finding["vars"].get("ephemeral_ports_range")
        if wanted is not None and _range_span(wanted) is None:
            errors.append(f"{where}.vars.ephemeral_ports_range {wanted!r} needs whole low < high")
        errors += port_entry_errors(
            finding["vars"].get("ephemeral_ports_reserved"),
            f"{where}.vars.ephemeral_ports_reserved",
            allow_below_1024=True,  # clipped to the range before use
        )
    return errors


def _range_span(value: Any) -> Optional[Span]:
    """``{"low": 1, "high": 2}`` → ``(1, 2)``; ``"1 2"`` (the sysctl's form) → ``(1, 2)``;
    anything else, or not ``1 <= low < high <= 65535`` → None."""
    if isinstance(value, dict):
        ends = [value.get("low"), value.get("high")]
    else:
        ends = [int(e) if e.isdigit() else None for e in str(value or "").split()]
    whole = [e for e in ends if isinstance(e, int) and not isinstance(e, bool)]
    if len(ends) != 2 or len(whole) != 2:
        return None
    low, high = whole
    return (low, high) if 1 <= low < high <= 65535 else None


def _spans(entries: Any) -> List[Span]:
    text = port_list(entries)
    return [s for s in (_span(part) for part in text.split(",") if part) if s is not None]


def _clip(spans: Iterable[Span], bounds: Span) -> List[Span]:
    """The parts inside ``bounds``: ``([(1, 5), (9, 12)], (4, 10))`` → ``[(4, 5), (9, 10)]``."""
    return [
        (max(a, bounds[0]), min(b, bounds[1]))
        for a, b in spans
        if a <= bounds[1] and b >= bounds[0]
    ]


def plan(
    operator: Dict[str, Any],
    findings: Any,
    dropin: Dict[str, Any],
    runtime: Dict[str, str],
) -> Dict[str, Any]:
    """What the drop-in sets, from the operator's values, the findings' and the drop-in's.

    - range: the operator's exactly; else widened to cover every finding's range
      (never narrower than it runs); else what the drop-in holds.
    - reservations, two sources kept apart in the drop-in: ``operator`` (replaced by
      an explicit value, else kept) and ``findings`` (what the drop-in holds plus
      the findings' spans clipped to the range: ports outside it are never assigned
      automatically, so reserving them changes nothing).
    - tcp_tw_reuse: the operator's, else the drop-in's.

    The plan hands the findings' merged vars as the role variables the inventory
    leaves unset (playbooks/tasks/apply-remediation.yml): a value equal to the
    findings' own is theirs, not the operator's.

    Returns ``desired`` (key → value), ``reserved_by`` (source → kernel list),
    ``served`` (key → the findings a change of it serves) and ``share`` (the
    reserved ports' share of the range).
    """
    taken = take_findings(findings)
    asked_reserved = [f["vars"].get("ephemeral_ports_reserved") or [] for f in taken]
    asked_ranges = [f["vars"].get("ephemeral_ports_range") for f in taken]
    handed_reserved = port_list([e for entries in asked_reserved for e in entries])
    own_reserved = operator.get("reserved")
    if own_reserved is not None and taken and port_list(own_reserved) == handed_reserved:
        own_reserved = None
    own_range = _range_span(operator.get("range"))
    finding_ranges = [r for r in (_range_span(a) for a in asked_ranges) if r is not None]
    if own_range is not None and own_range in finding_ranges:
        own_range = None
    running = _range_span(runtime.get(RANGE))
    values = dropin.get("values", {})
    if own_range is not None:
        new_range: Optional[Span] = own_range
    elif finding_ranges:
        ends = [running] if running else []
        new_range = (
            min(r[0] for r in ends + finding_ranges),
            max(r[1] for r in ends + finding_ranges),
        )
    else:
        new_range = _range_span(values.get(RANGE))
    bounds = new_range or running or (1, 65535)
    kept = dropin.get("reserved", {})
    # Sources other than the operator's are findings' (an older drop-in's "plan" and
    # "probes" lines too): kept, since without them the findings would come back.
    held = ",".join(v for source, v in kept.items() if source != "operator" and v)
    for_findings = _spans(held) + _clip(_spans(handed_reserved), bounds)
    reserved_by = {
        "operator": port_list(own_reserved)
        if own_reserved is not None
        else kept.get("operator", ""),
        "findings": port_list([list(s) for s in for_findings]),
    }
    wanted = {
        RANGE: f"{new_range[0]} {new_range[1]}" if new_range else "",
        RESERVED: port_list(",".join(v for v in reserved_by.values() if v)),
        TW_REUSE: str(operator["tcp_tw_reuse"])
        if operator.get("tcp_tw_reuse") is not None
        else values.get(TW_REUSE, ""),
    }
    desired = {key: value for key, value in wanted.items() if value != ""}
    served: Dict[str, List[Dict[str, Any]]] = {RANGE: [], RESERVED: [], TW_REUSE: []}
    for finding, asked, ranged in zip(taken, asked_reserved, asked_ranges):
        who = {"id": finding["id"], "subject": finding["subject"]}
        if _clip(_spans(asked), bounds):
            served[RESERVED].append(who)
        if own_range is None and _range_span(ranged) is not None:
            served[RANGE].append(who)
    in_range = _clip(_spans(desired.get(RESERVED, "")), bounds)
    size = bounds[1] - bounds[0] + 1
    return {
        "desired": desired,
        "reserved_by": reserved_by,
        "served": served,
        "share": round(sum(b - a + 1 for a, b in in_range) / size, 4),
    }


def audit_records(
    served: Dict[str, List[Dict[str, Any]]], keys: Iterable[str], per_key: bool = True
) -> List[Dict[str, Any]]:
    """One record per finding a change of ``keys`` serves (per key, or once for the whole
    write); one without a finding for a change that only the operator's values asked for.

    ``({"k": [{"id": "x", "subject": "s"}], "t": []}, ["k", "t"])``
    → ``[{"key": "k", "id": "x", "subject": "s"}, {"key": "t", "id": None, "subject": None}]``;
    with ``per_key=False`` → ``[{"key": None, "id": "x", "subject": "s"}]``.
    """
    nobody = {"id": None, "subject": None}
    if not per_key:
        whom = [w for key in keys for w in served.get(key) or []]
        unique = [w for i, w in enumerate(whom) if w not in whom[:i]]
        return [{"key": None, **who} for who in unique or [nobody]]
    return [{"key": key, **who} for key in keys for who in served.get(key) or [nobody]]


class FilterModule:
    """ephemeral_ports filters."""

    def filters(self) -> Dict[str, Any]:
        return {
            "ephemeral_ports_entry_errors": port_entry_errors,
            "ephemeral_ports_list": port_list,
            "ephemeral_ports_dropin_state": dropin_state,
            "ephemeral_ports_sysctl_value": sysctl_value,
            "ephemeral_ports_changed_keys": changed_keys,
            "ephemeral_ports_runtime_values": runtime_values,
            "ephemeral_ports_overriding_files": overriding_files,
            "ephemeral_ports_take_findings": take_findings,
            "ephemeral_ports_finding_errors": finding_errors,
            "ephemeral_ports_finding_ids": finding_ids,
            "ephemeral_ports_plan": plan,
            "ephemeral_ports_audit_records": audit_records,
        }
