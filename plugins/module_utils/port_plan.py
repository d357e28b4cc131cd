# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A port's plan entry (``netmedic_agent_config.ports[i]``, ``port_conflicts_plan[i]``) checked
before any change: what the port_conflicts role's filters refuse, one message per problem.

Pure functions over plain data, used by the role's filters (``port_conflicts_problems``,
``port_conflicts_declaration_problems``).
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

ACTIONS = ("report", "reconfigure", "stop_holder", "mask_holder", "remap")
# Actions on the holder: the holder must be named in the entry and be a systemd service.
HOLDER_ACTIONS = ("reconfigure", "stop_holder", "mask_holder")


def plan_problems(
    entries: Sequence[Any],
    fixed: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
    labels: Optional[Sequence[str]] = None,
) -> List[str]:
    """Input errors of plan entries, one message naming the entry each (by ``labels``,
    else ``port_conflicts_plan[i]``).

    ``[{"port": 0, "owner": "a.service"}]`` → ``["port_conflicts_plan[0].port: 0 is not a
    port (1-65535)"]``.
    """
    problems: List[str] = []
    fixed_by_key = {(f["port"], f["proto"]): f["why"] for f in fixed}
    for index, entry in enumerate(entries):
        name = labels[index] if labels else f"port_conflicts_plan[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{name}: a mapping {{port, proto, owner, ...}}, got {entry!r}")
            continue
        problems.extend(_entry_problems(name, entry, fixed_by_key, profiles))
    return problems


def declaration_problems(
    configs: Mapping[str, Any],
    fixed: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Mapping[str, Any]],
) -> List[str]:
    """The problems of the ports each host declares, each named by host and place.

    ``{"h1": {"ports": [{"port": 0}]}}`` → ``["h1: netmedic_agent_config.ports[0].port: 0
    is not a port (1-65535)"]``; ``profiles`` holds each host's holder profiles.
    """
    problems: List[str] = []
    for host, config in configs.items():
        ports = config.get("ports") if isinstance(config, Mapping) else None
        if ports is None:
            continue
        if not isinstance(ports, list):
            problems.append(f"{host}: netmedic_agent_config.ports must be a list, got {ports!r}")
            continue
        labels = [f"{host}: netmedic_agent_config.ports[{i}]" for i in range(len(ports))]
        problems.extend(plan_problems(ports, fixed, profiles.get(host) or {}, labels))
    return problems


def _entry_problems(
    name: str,
    entry: Mapping[str, Any],
    fixed: Mapping[Tuple[Any, Any], str],
    profiles: Mapping[str, Any],
) -> List[str]:
    problems = []
    port = entry.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append(f"{name}.port: {port!r} is not a port (1-65535)")
    if entry.get("proto") not in (None, "tcp", "udp"):
        problems.append(f"{name}.proto: {entry['proto']!r} is not tcp or udp")
    owner = entry.get("owner")
    if owner is not None and owner_label(owner) is None:
        problems.append(f"{name}.owner: {owner!r} is neither a unit name nor {{container: NAME}}")
    action = entry.get("on_conflict") or "report"
    if action not in ACTIONS:
        problems.append(f"{name}.on_conflict: {action!r} is not one of {', '.join(ACTIONS)}")
    holders = entry.get("holders") or []
    if not isinstance(holders, list) or not all(isinstance(h, str) for h in holders):
        problems.append(f"{name}.holders: a list of unit or process names, got {holders!r}")
    elif action in HOLDER_ACTIONS and not holders:
        problems.append(
            f"{name}.holders: empty; on_conflict {action} acts only on holders it names"
        )
    if entry.get("profile") and entry["profile"] not in profiles:
        problems.append(
            f"{name}.profile: {entry['profile']!r} is not in port_conflicts_holder_profiles"
            f" ({', '.join(sorted(profiles)) or 'none defined'})"
        )
    if action == "remap":
        problems.extend(_remap_problems(name, entry, fixed))
    return problems


def _remap_problems(
    name: str, entry: Mapping[str, Any], fixed: Mapping[Tuple[Any, Any], str]
) -> List[str]:
    remap = entry.get("remap") or {}
    key = (entry.get("port"), entry.get("proto"))
    if key in fixed:
        return [f"{name}: {key[0]}/{key[1]} cannot be remapped: {fixed[key]}"]
    if isinstance(entry.get("owner"), Mapping):
        return [f"{name}.remap: a container owner is remapped by its run options, not here"]
    if not isinstance(remap, Mapping) or not remap:
        return [f"{name}.remap: required with on_conflict remap"]
    new = remap.get("port")
    if not isinstance(new, int) or isinstance(new, bool) or not 1 <= new <= 65535:
        return [f"{name}.remap.port: {new!r} is not a port (1-65535)"]
    if bool(remap.get("environment")) == bool(remap.get("file")):
        return [f"{name}.remap: set exactly one of environment or file"]
    if remap.get("file") and not (remap.get("regexp") and remap.get("line")):
        return [f"{name}.remap: file needs regexp and line"]
    return []


def owner_label(owner: Any) -> Optional[str]:
    """``"a.service"`` → itself; ``{"container": "airconnect"}`` → ``"container airconnect"``."""
    if isinstance(owner, str) and owner.strip():
        return owner
    name = owner.get("container") if isinstance(owner, Mapping) and len(owner) == 1 else None
    return f"container {name}" if isinstance(name, str) and name else None
