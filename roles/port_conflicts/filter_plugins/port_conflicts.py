"""Filters of the port_conflicts role: match a port plan against the agent's port owners."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple


def plan_problems(
    plan: Sequence[Mapping[str, Any]],
    fixed: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
) -> List[str]:
    """Input errors argument_specs cannot express, one message naming the input each.

    ``[{"port": 0, "proto": "tcp", "owner": "a.service", "on_conflict": "report"}]``
    → ``["port_conflicts_plan[0].port: 0 is not a port (1-65535)"]``.
    """
    problems = []
    fixed_by_key = {(f["port"], f["proto"]): f["why"] for f in fixed}
    for index, entry in enumerate(plan):
        name = f"port_conflicts_plan[{index}]"
        if not 1 <= entry["port"] <= 65535:
            problems.append(f"{name}.port: {entry['port']} is not a port (1-65535)")
        if not entry["owner"].strip():
            problems.append(f"{name}.owner: empty; name the unit that should hold the port")
        action = entry.get("on_conflict") or "report"
        remap = entry.get("remap") or {}
        if action in ("reconfigure", "stop_holder", "mask_holder") and not _allowed(entry):
            problems.append(
                f"{name}.holders: empty; on_conflict {action} acts only on holders the plan names"
            )
        if entry.get("profile") and entry["profile"] not in profiles:
            problems.append(
                f"{name}.profile: {entry['profile']} is not in port_conflicts_holder_profiles"
            )
        if action != "remap":
            continue
        key = (entry["port"], entry["proto"])
        if key in fixed_by_key:
            problems.append(
                f"{name}: {entry['port']}/{entry['proto']} cannot be remapped: {fixed_by_key[key]}"
            )
        elif not remap:
            problems.append(f"{name}.remap: required with on_conflict remap")
        elif not 1 <= remap["port"] <= 65535:
            problems.append(f"{name}.remap.port: {remap['port']} is not a port (1-65535)")
        elif bool(remap.get("environment")) == bool(remap.get("file")):
            problems.append(f"{name}.remap: set exactly one of environment or file")
        elif remap.get("file") and not (remap.get("regexp") and remap.get("line")):
            problems.append(f"{name}.remap: file needs regexp and line")
    return problems


def port_conflicts_declared(plan: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The agent config ``ports`` for a plan: each port and each remap target with its owner.

    ``[{"port": 18080, "proto": "tcp", "owner": "w.service", "remap": {"port": 18081}}]``
    → ``[{"port": 18080, "proto": "tcp", "owner": "w.service"},
    {"port": 18081, "proto": "tcp", "owner": "w.service"}]``.
    """
    declared = []
    for entry in plan:
        declared.append({"port": entry["port"], "proto": entry["proto"], "owner": entry["owner"]})
        if entry.get("remap"):
            declared.append(
                {"port": entry["remap"]["port"], "proto": entry["proto"], "owner": entry["owner"]}
            )
    return declared


def _allowed(entry: Mapping[str, Any]) -> List[str]:
    """The holders an entry may act on: ``holders`` plus the catalog's ``holder_unit``."""
    allowed = list(entry.get("holders") or [])
    if entry.get("holder_unit"):
        allowed.append(str(entry["holder_unit"]))
    return allowed


def _holder(sock: Mapping[str, Any], allowed: Sequence[str]) -> Dict[str, Any]:
    owner = sock["owner"]
    return {
        "pid": owner.get("pid"),
        "name": owner.get("name"),
        "unit": owner.get("unit"),
        "user": owner.get("user"),
        "container_id": owner.get("container_id"),
        "address": sock.get("address"),
        "reuse_addr": (sock.get("sharing") or {}).get("reuse_addr"),
        "named": owner.get("unit") in allowed or owner.get("name") in allowed,
    }


def _held_by(
    sockets: Sequence[Mapping[str, Any]], port: Optional[int], proto: str, unit: str
) -> bool:
    return any(
        s["port"] == port and s["proto"] == proto and (s.get("owner") or {}).get("unit") == unit
        for s in sockets
    )


def _profile_for(
    entry: Mapping[str, Any], unit: Optional[str], profiles: Mapping[str, Any]
) -> Optional[str]:
    if entry.get("profile"):
        return str(entry["profile"])
    for name, profile in profiles.items():
        if unit and unit in (profile.get("units") or []):
            return str(name)
    return None


def port_conflicts_classify(
    plan: Sequence[Mapping[str, Any]],
    sockets: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
    max_holders: int,
) -> List[Dict[str, Any]]:
    """Each plan entry with who holds its port and what the role will do.

    A 1900/udp entry owned by ``gmediarender.service`` while pid 7 of
    ``plexmediaserver.service`` holds 0.0.0.0:1900 without SO_REUSEADDR →
    ``{..., "state": "conflict", "holders_found": [{"unit": "plexmediaserver.service",
    "reuse_addr": False, "named": True, ...}], "decision": "reconfigure", "reason": ...}``.

    ``state``: ``held`` (the owner holds it), ``conflict``, ``unreadable`` (a holder
    whose owner the agent could not read), ``shared`` (only SO_REUSEADDR UDP holders),
    ``free``. ``decision``: ``none``, ``report``, ``needs-approval``, ``refused`` or
    the entry's action. A conflict that also has a socket with an unreadable owner is
    ``refused`` for reconfigure, stop_holder and mask_holder: acting on the named holder
    would not prove the port free.
    """
    result = []
    for entry in plan:
        port, proto, owner = entry["port"], entry["proto"], entry["owner"]
        action = entry.get("on_conflict") or "report"
        allowed = _allowed(entry)
        mine = [s for s in sockets if s["port"] == port and s["proto"] == proto]
        conflicting, sharing, unreadable = [], [], []
        owned = False
        for sock in mine:
            if sock.get("owner") is None:
                unreadable.append(
                    {
                        "address": sock.get("address"),
                        "inode": sock.get("inode"),
                        "uid": sock.get("uid"),
                        "reason": sock.get("owner_reason"),
                    }
                )
            elif sock["owner"].get("unit") == owner:
                owned = True
            elif proto == "udp" and (sock.get("sharing") or {}).get("reuse_addr") is True:
                sharing.append(_holder(sock, allowed))
            else:
                conflicting.append(_holder(sock, allowed))
        units = sorted({h["unit"] for h in conflicting if h["unit"]})
        remap = entry.get("remap") or {}
        item = dict(
            entry,
            on_conflict=action,
            holders=allowed,
            holders_found=conflicting,
            sharing=sharing,
            unreadable=unreadable,
            holder_units=units,
            remap_held=bool(remap) and _held_by(sockets, remap.get("port"), proto, owner),
        )
        if conflicting:
            item["state"] = "conflict"
        elif unreadable:
            item["state"] = "unreadable"
        else:
            item["state"] = "held" if owned else ("shared" if sharing else "free")
        item["decision"], item["reason"] = _decide(item, profiles, max_holders)
        item["profile"] = _profile_for(entry, units[0] if units else None, profiles)
        result.append(item)
    return result


def _decide(
    item: Mapping[str, Any], profiles: Mapping[str, Any], max_holders: int
) -> Tuple[str, str]:
    """(decision, reason) for one classified entry."""
    action, where = item["on_conflict"], f"{item['port']}/{item['proto']}"
    if item["on_conflict"] == "remap" and item["remap_held"]:
        # Already moved: keep the remap in place (the role re-checks it, changes nothing).
        return "remap", f"{item['owner']} holds its remapped port {item['remap']['port']}"
    if item["state"] == "unreadable":
        return (
            "report",
            f"{where} is held by a socket whose owner could not be read: {item['unreadable']}",
        )
    if item["state"] != "conflict":
        return "none", f"{where} is {item['state']}: nothing to do"
    names = ", ".join(
        f"pid {h['pid']} {h['name']} (unit {h['unit'] or 'none'})" for h in item["holders_found"]
    )
    if action == "report":
        return "report", f"{where} held by {names}; the plan says report"
    if action == "remap":
        return (
            "remap",
            f"{where} held by {names}; moving {item['owner']} to {item['remap']['port']}",
        )
    if item["unreadable"]:
        # Freeing the port would not be proven: an unknown process would still hold it.
        return "refused", (
            f"{where} held by {names} and by a socket whose owner could not be read: "
            f"{item['unreadable']}; {action} is refused while the port has an unknown holder"
        )
    unnamed = [h for h in item["holders_found"] if not h["named"]]
    if unnamed:
        return "needs-approval", (
            f"{where} held by {names}; the plan's holders {item['holders']} do not name "
            + ", ".join(f"{h['name']} (unit {h['unit'] or 'none'})" for h in unnamed)
        )
    if any(not h["unit"] for h in item["holders_found"]):
        return (
            "refused",
            f"{where} held by {names}: {action} needs every holder to be a systemd unit",
        )
    if len(item["holder_units"]) > max_holders:
        return (
            "refused",
            f"{where} held by {len(item['holder_units'])} units (port_conflicts_max_holders "
            f"is {max_holders}): {item['holder_units']}",
        )
    if action == "reconfigure" and not _profile_for(item, item["holder_units"][0], profiles):
        return "refused", f"{where}: no holder profile lists {item['holder_units'][0]}"
    return action, f"{where} held by {names}; the plan says {action}"


def port_conflicts_refuse_unmaskable(
    entries: Sequence[Mapping[str, Any]], unit_files: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    """Refuse ``mask_holder`` for a holder whose unit file sits where the mask would go.

    ``systemctl mask`` writes a /dev/null link at /etc/systemd/system/UNIT and fails
    ("File ... already exists") when a unit file or a link to one is already there.
    ``unit_files`` are ansible.builtin.stat results (``item`` = unit) of that path:
    an entry masking ``lab-hog.service`` whose ``stat`` reads ``{"exists": True,
    "islnk": False, "path": "/etc/systemd/system/lab-hog.service"}`` →
    ``{..., "decision": "refused", "reason": "18090/tcp: mask_holder cannot mask
    lab-hog.service: ..."}``. An existing /dev/null link (already masked) is fine.
    """
    blocking = {
        r["item"]: r["stat"]
        for r in unit_files
        if r["stat"]["exists"]
        and not (r["stat"].get("islnk") and r["stat"].get("lnk_target") == "/dev/null")
    }
    result = []
    for entry in entries:
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
                f"{entry['port']}/{entry['proto']}: mask_holder cannot mask {why}; nothing was "
                "changed. Use stop_holder, or install the unit outside /etc/systemd/system "
                "(e.g. /usr/local/lib/systemd/system) so a mask can override it"
            )
        result.append(item)
    return result


def _in_the_way(stat: Mapping[str, Any]) -> str:
    """``{"path": "/etc/systemd/system/a.service", "islnk": True, "lnk_target": "/opt/a.service"}``
    → "its unit file /etc/systemd/system/a.service (a link to /opt/a.service)"."""
    if stat.get("islnk"):
        return f"its unit file {stat['path']} (a link to {stat.get('lnk_target')})"
    return f"its unit file {stat['path']}"


def port_conflicts_owner_holds(
    sockets: Sequence[Mapping[str, Any]], port: int, proto: str, unit: str
) -> bool:
    """True when a socket on port/proto belongs to ``unit`` (the verification)."""
    return _held_by(sockets, port, proto, unit)


class FilterModule:
    """Jinja2 filters of the port_conflicts role."""

    def filters(self) -> Dict[str, Any]:
        return {
            "port_conflicts_problems": plan_problems,
            "port_conflicts_declared": port_conflicts_declared,
            "port_conflicts_classify": port_conflicts_classify,
            "port_conflicts_owner_holds": port_conflicts_owner_holds,
            "port_conflicts_refuse_unmaskable": port_conflicts_refuse_unmaskable,
        }
