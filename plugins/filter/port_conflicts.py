# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the port_conflicts role: from the agent's findings to what to do per port.

Whether a port is in conflict is the catalog's call (declared-port-held-by-other,
declared-port-owner-not-listening, declared-port-holder-unreadable); these filters
only read the findings' vars and apply the plan entry's guards.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.netmedic.remediation.plugins.module_utils.port_plan import (
    declaration_problems,
    owner_label,
    plan_problems,
)

HELD = "declared-port-held-by-other"
NOT_LISTENING = "declared-port-owner-not-listening"
UNREADABLE = "declared-port-holder-unreadable"


def intake(
    findings: Sequence[Mapping[str, Any]], handed: bool, allow: Optional[bool]
) -> List[Dict[str, Any]]:
    """The findings in the handed shape, each with the approval this run gives it.

    ``handed``: netmedic_plan's findings (``vars``, ``approved``); else netmedic_check's
    ``present`` (``remediation.vars``), approved only when ``allow`` is true. An explicit
    ``allow`` false approves nothing. ``{"id": "x", "subject": "1900/udp",
    "remediation": {"vars": {"v": 1}}, "destructive": True}`` with allow None →
    ``{"id": "x", "subject": "1900/udp", ..., "vars": {"v": 1}, "approved": False}``.
    """
    taken = []
    for finding in findings:
        role_vars = (
            finding.get("vars") if handed else (finding.get("remediation") or {}).get("vars")
        )
        approved = bool(finding.get("approved")) if handed else allow is True
        taken.append({
            "id": finding["id"],
            "subject": finding["subject"],
            "severity": finding.get("severity"),
            "evidence": list(finding.get("evidence") or []),
            "vars": dict(role_vars or {}),
            "destructive": bool(finding.get("destructive", True)),
            "approved": approved and allow is not False,
        })  # fmt: skip
    return taken


def parse_subject(subject: str) -> Tuple[Optional[int], Optional[str]]:
    """``"1900/udp"`` → ``(1900, "udp")``; anything else → ``(None, None)``."""
    port, _slash, proto = str(subject).partition("/")
    return (int(port), proto) if port.isdigit() and proto in ("tcp", "udp") else (None, None)


def _matches(entry: Any, port: Optional[int], proto: Optional[str]) -> bool:
    return (
        isinstance(entry, Mapping)
        and entry.get("port") == port
        and entry.get("proto") in (None, proto)
    )


def entry_for(
    port: Optional[int],
    proto: Optional[str],
    plan: Sequence[Any],
    group: Sequence[Mapping[str, Any]],
) -> Optional[Mapping[str, Any]]:
    """The plan entry of a port: the role's ``port_conflicts_plan`` (the inventory's
    explicit one, or the findings' merged), else the entry the finding handed over."""
    handed = [e for f in group for e in (f["vars"].get("port_conflicts_plan") or [])]
    return next((e for e in list(plan) + handed if _matches(e, port, proto)), None)


def decide(
    findings: Sequence[Mapping[str, Any]],
    plan: Sequence[Any],
    profiles: Mapping[str, Any],
    max_holders: int,
) -> List[Dict[str, Any]]:
    """One item per subject of the findings: what the role does there and why.

    Findings ``[held-by-other 1900/udp (approved, holder plexmediaserver.service),
    owner-not-listening 1900/udp]`` with the entry ``{port: 1900, proto: udp, owner:
    gmediarender.service, on_conflict: reconfigure, holders: [plexmediaserver.service]}``
    → ``[{"subject": "1900/udp", "decision": "reconfigure", "finding":
    "declared-port-held-by-other", "holder_units": ["plexmediaserver.service"], ...}]``.
    ``decision``: report, needs-approval, refused, or the action (reconfigure,
    stop_holder, mask_holder, remap, restart_owner). Owner restarts come last: a
    conflict's fix restarts the owner, which may clear its other ports too.
    """
    groups: Dict[str, List[Mapping[str, Any]]] = {}
    for finding in findings:
        groups.setdefault(str(finding["subject"]), []).append(finding)
    items = []
    for subject, group in groups.items():
        port, proto = parse_subject(subject)
        entry = entry_for(port, proto, plan, group) or {}
        owner = entry.get("owner")
        holders = [
            h for f in group if f["id"] == HELD
            for h in f["vars"].get("port_conflicts_holders_found") or []
            if h.get("port") in (None, port) and h.get("proto") in (None, proto)
        ]  # fmt: skip
        units = sorted({h["unit"] for h in holders if h.get("unit")})
        item: Dict[str, Any] = {
            "subject": subject, "port": port, "proto": proto, "entry": dict(entry),
            "owner": owner_label(owner) or "an undeclared owner",
            "owner_unit": owner if isinstance(owner, str) else None,
            "owner_container": owner.get("container") if isinstance(owner, Mapping) else None,
            "on_conflict": entry.get("on_conflict") or "report",
            "findings": [f["id"] for f in group], "holders_found": holders,
            "holder_units": units, "remap": entry.get("remap") or {},
            "profile": _profile_for(entry, units, profiles),
        }  # fmt: skip
        item["decision"], item["reason"], item["finding"] = _decide(item, group, max_holders)
        items.append(item)
    return sorted(items, key=lambda i: i["decision"] == "restart_owner")


def _profile_for(
    entry: Mapping[str, Any], units: Sequence[str], profiles: Mapping[str, Any]
) -> Optional[str]:
    if entry.get("profile"):
        return str(entry["profile"])
    return next(
        (name for name, p in profiles.items() if units and units[0] in (p.get("units") or [])), None
    )


def describe(holder: Mapping[str, Any]) -> str:
    """``{"pid": 7, "name": "nc", "unit": "a.service"}`` → ``"pid 7 nc (unit a.service)"``."""
    where = (
        f"container {holder['container']}"
        if holder.get("container")
        else f"unit {holder.get('unit') or 'none'}"
    )
    return f"pid {holder.get('pid')} {holder.get('name') or 'unknown process'} ({where})"


def _decide(
    item: Mapping[str, Any], group: Sequence[Mapping[str, Any]], max_holders: int
) -> Tuple[str, str, str]:
    """(decision, reason, the finding id the decision remedies) for one subject."""
    by_id = {f["id"]: f for f in group}
    where = item["subject"]
    if not item["entry"] or not {HELD, UNREADABLE, NOT_LISTENING} & set(by_id):
        why = f"{where}: no plan entry for it in the findings or port_conflicts_plan"
        return "refused", why, group[0]["id"]
    if HELD in by_id:
        return _decide_conflict(item, by_id, max_holders)
    if UNREADABLE in by_id:
        said = (by_id[UNREADABLE]["evidence"] or ["no evidence"])[0]
        return "report", f"{where}: {said}; nothing is done while the holder is unknown", UNREADABLE
    approved = by_id[NOT_LISTENING]["approved"]
    if item["owner_container"]:
        return (
            "report",
            (
                f"{where}: {item['owner']} does not hold it; the role restarts units only: its"
                f" restart policy or `docker restart {item['owner_container']}` brings it back"
            ),
            NOT_LISTENING,
        )
    if not approved:
        return (
            "needs-approval",
            f"{where}: restarting {item['owner']}, which does not hold it, needs approval",
            NOT_LISTENING,
        )
    return (
        "restart_owner",
        f"{where}: {item['owner']} does not hold it; restarting it",
        NOT_LISTENING,
    )


def _decide_conflict(
    item: Mapping[str, Any], by_id: Mapping[str, Any], max_holders: int
) -> Tuple[str, str, str]:
    where, action, holders = item["subject"], item["on_conflict"], item["holders_found"]
    names = ", ".join(describe(h) for h in holders) or "a holder the finding does not describe"
    approved = by_id[HELD]["approved"]
    if action == "report":
        return "report", f"{where} held by {names}; the plan says report", HELD
    if action == "remap":
        if not approved:
            return (
                "needs-approval",
                f"{where} held by {names}; moving {item['owner']} needs approval",
                HELD,
            )
        return (
            "remap",
            f"{where} held by {names}; moving {item['owner']} to {item['remap'].get('port')}",
            HELD,
        )
    allowed = item["entry"].get("holders") or []
    refusal = _holder_refusal(item, by_id, names, allowed, max_holders)
    if refusal is not None:
        return refusal[0], refusal[1], HELD
    if not approved:
        return (
            "needs-approval",
            f"{where} held by {names}; {action} is destructive and not approved",
            HELD,
        )
    return action, f"{where} held by {names}; the plan says {action}", HELD


def _holder_refusal(
    item: Mapping[str, Any],
    by_id: Mapping[str, Any],
    names: str,
    allowed: Sequence[str],
    max_holders: int,
) -> Optional[Tuple[str, str]]:
    """Why a holder action must not run (the plan entry's guards), or None."""
    where, action, holders = item["subject"], item["on_conflict"], item["holders_found"]
    if UNREADABLE in by_id:
        said = (by_id[UNREADABLE]["evidence"] or ["no evidence"])[0]
        return "refused", (
            f"{where} held by {names} and by a socket whose owner could not be read ({said});"
            f" {action} is refused while the port has an unknown holder"
        )
    if not holders:
        return "refused", f"{where}: the finding names no holder; {action} needs one"
    unnamed = [
        h for h in holders if not {h.get("unit"), h.get("name"), h.get("container")} & set(allowed)
    ]
    if unnamed:
        return "needs-approval", (
            f"{where} held by {names}; the plan's holders {list(allowed)} do not name "
            + ", ".join(describe(h) for h in unnamed)
        )
    in_container = [h for h in holders if h.get("container")]
    if in_container:
        return "refused", (
            f"{where} held by {names}: Docker container {in_container[0]['container']} holds it;"
            f" {action} acts on systemd services only: stop or reconfigure it with Docker"
        )
    if any(not str(h.get("unit") or "").endswith(".service") for h in holders):
        return (
            "refused",
            f"{where} held by {names}: {action} needs every holder to be a systemd service",
        )
    if len(item["holder_units"]) > max_holders:
        return "refused", (
            f"{where} held by {len(item['holder_units'])} units (port_conflicts_max_holders is"
            f" {max_holders}): {item['holder_units']}"
        )
    if action == "reconfigure" and not item["profile"]:
        return "refused", f"{where}: no holder profile lists {item['holder_units'][0]}"
    return None


def refuse_unmaskable(
    items: Sequence[Mapping[str, Any]], unit_files: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    """Refuse ``mask_holder`` for a holder whose unit file sits where the mask would go.

    ``systemctl mask`` writes a /dev/null link at /etc/systemd/system/UNIT and fails
    ("File ... already exists") when a unit file or a link to one is already there.
    ``unit_files`` are ansible.builtin.stat results (``item`` = unit) of that path:
    masking ``lab-hog.service`` whose ``stat`` reads ``{"exists": True, "islnk": False,
    "path": "/etc/systemd/system/lab-hog.service"}`` → ``{..., "decision": "refused",
    "reason": "18090/tcp: mask_holder cannot mask lab-hog.service: ..."}``. An existing
    /dev/null link (already masked) is fine.
    """
    blocking = {
        r["item"]: r["stat"]
        for r in unit_files
        if r["stat"]["exists"]
        and not (r["stat"].get("islnk") and r["stat"].get("lnk_target") == "/dev/null")
    }
    result = []
    for entry in items:
        item = dict(entry)
        units = [u for u in entry.get("holder_units") or [] if u in blocking]
        if entry.get("decision") == "mask_holder" and units:
            why = "; ".join(
                f"{unit}: {_in_the_way(blocking[unit])} is where systemctl mask would write "
                "its /dev/null link, and systemctl refuses to replace it"
                for unit in units
            )
            item["decision"] = "refused"
            item["reason"] = (
                f"{entry['subject']}: mask_holder cannot mask {why}; nothing was changed. Use"
                " stop_holder, or install the unit outside /etc/systemd/system (e.g."
                " /usr/local/lib/systemd/system) so a mask can override it"
            )
        result.append(item)
    return result


def _in_the_way(stat: Mapping[str, Any]) -> str:
    """``{"path": "/etc/systemd/system/a.service", "islnk": True, "lnk_target": "/opt/a.service"}``
    → "its unit file /etc/systemd/system/a.service (a link to /opt/a.service)"."""
    if stat.get("islnk"):
        return f"its unit file {stat['path']} (a link to {stat.get('lnk_target')})"
    return f"its unit file {stat['path']}"


class FilterModule:
    """Jinja2 filters of the port_conflicts role."""

    def filters(self) -> Dict[str, Any]:
        return {
            "port_conflicts_intake": intake,
            "port_conflicts_problems": plan_problems,
            "port_conflicts_declaration_problems": declaration_problems,
            "port_conflicts_decide": decide,
            "port_conflicts_refuse_unmaskable": refuse_unmaskable,
        }
