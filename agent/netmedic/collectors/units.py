"""Units family: state, ordering and start times of the units that matter.

Relevant units (no discovery scan, so the cost stays one bounded call):

- config ``units`` (operator-declared network-dependent units: plain names or
  mappings ``{name, dns_gate_names, dns_failure_patterns, ...}``; a unit's
  declaration is carried into its entry as ``declared``, keys the agent does not
  use included, so the catalog can hand it to the role),
- ``ctx.related_units`` (owners of listening sockets: a daemon that listens is
  network-dependent by definition),
- the owners config ``ports`` declares (a wanted owner that fails to bind holds no
  socket, and its state is what says so),
- resolver units (systemd-resolved, dnsmasq) for the dns family,
- the network plumbing: network-online.target, nss-lookup.target, each network
  manager and its wait-online service.

All of them come from ONE ``systemctl show --property=... u1 u2 ...`` call. On a
host where systemd is not PID 1 (no ``/run/systemd/system``) the family reports
``{"systemd": "not running"}`` without an error.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from netmedic.context import Context, Facts

PROPERTIES: Tuple[str, ...] = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "FragmentPath",
    "After",
    "Wants",
    "Requires",
    "DropInPaths",
    "ExecMainStartTimestampMonotonic",
    "ActiveEnterTimestampMonotonic",
    "NRestarts",
    "NeedDaemonReload",
)

NETWORK_ONLINE = "network-online.target"
NSS_LOOKUP = "nss-lookup.target"
# Resolver units the dns family asks about (see dns.RESOLVER_UNITS).
RESOLVER_UNITS: Tuple[str, ...] = ("systemd-resolved.service", "dnsmasq.service")
# Network manager → (its service, its wait-online service). Debian's ifupdown
# ships ifupdown-wait-online.service since bookworm.
NETWORK_MANAGERS: Dict[str, Tuple[str, str]] = {
    "systemd-networkd": ("systemd-networkd.service", "systemd-networkd-wait-online.service"),
    "NetworkManager": ("NetworkManager.service", "NetworkManager-wait-online.service"),
    "ifupdown": ("networking.service", "ifupdown-wait-online.service"),
}
PLUMBING_UNITS: Tuple[str, ...] = (
    NETWORK_ONLINE,
    NSS_LOOKUP,
    *(unit for pair in NETWORK_MANAGERS.values() for unit in pair),
)

# systemd unit names: no spaces or slashes, a known suffix. Anything else would
# make systemctl fail the whole batch, so it is refused up front.
_UNIT_NAME = re.compile(
    r"[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path|scope|slice|device|swap|automount)"
)
_SHOW_TIMEOUT_S = 10.0


class CommandFailed(RuntimeError):
    """A command the collector depends on failed; the message carries its stderr."""


def systemd_running(ctx: Context) -> bool:
    """sd_booted(): systemd is PID 1 when ``/run/systemd/system`` exists."""
    return (ctx.run_root / "systemd" / "system").is_dir()


def parse_show(text: str) -> List[Dict[str, str]]:
    """Split ``systemctl show`` output into one dict per unit block.

    ``"Id=a.service\\nActiveState=active\\n\\nId=b.service\\n"``
    → ``[{"Id": "a.service", "ActiveState": "active"}, {"Id": "b.service"}]``
    """
    blocks: List[Dict[str, str]] = []
    current: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


def _monotonic_us(value: Optional[str]) -> Optional[int]:
    """``"1005736381"`` → ``1005736381``; ``"0"``/missing (never happened) → ``None``."""
    if not value or not value.isdigit() or int(value) == 0:
        return None
    return int(value)


def _words(value: Optional[str]) -> List[str]:
    """``"a.target b.socket"`` → ``["a.target", "b.socket"]``."""
    return value.split() if value else []


def unit_state(block: Dict[str, str]) -> Facts:
    """One parsed block → the unit's facts entry (without ``reasons``)."""
    after = _words(block.get("After"))
    wants = _words(block.get("Wants"))
    requires = _words(block.get("Requires"))
    restarts = block.get("NRestarts", "")
    reload_flag = block.get("NeedDaemonReload")
    return {
        "id": block.get("Id"),
        "load_state": block.get("LoadState") or None,
        "active_state": block.get("ActiveState") or None,
        "sub_state": block.get("SubState") or None,
        "unit_file_state": block.get("UnitFileState") or None,
        "fragment_path": block.get("FragmentPath") or None,
        "after": after,
        "wants": wants,
        "requires": requires,
        "drop_in_paths": _words(block.get("DropInPaths")),
        "exec_main_start_monotonic_us": _monotonic_us(block.get("ExecMainStartTimestampMonotonic")),
        "active_enter_monotonic_us": _monotonic_us(block.get("ActiveEnterTimestampMonotonic")),
        "n_restarts": int(restarts) if restarts.isdigit() else None,
        "need_daemon_reload": None if reload_flag is None else reload_flag == "yes",
        "after_network_online": NETWORK_ONLINE in after,
        "wants_network_online": NETWORK_ONLINE in wants or NETWORK_ONLINE in requires,
        "after_nss_lookup": NSS_LOOKUP in after,
    }


def show_units(ctx: Context, names: Sequence[str]) -> Dict[str, Facts]:
    """Query ``names`` in one ``systemctl show`` call → ``{name: unit_state}``.

    Blocks come back in argument order; they are keyed by the requested name
    (an alias such as ``dbus-org.freedesktop.resolve1.service`` keeps the name
    it was asked by; ``id`` holds the real one).
    """
    if not names:
        return {}
    argv = ["systemctl", "show", "--no-pager", "--property=" + ",".join(PROPERTIES), "--", *names]
    result = ctx.run(argv, _SHOW_TIMEOUT_S)
    if result.returncode != 0:
        raise CommandFailed(
            f"systemctl show exited {result.returncode}: {result.stderr.strip()[:500]}"
        )
    blocks = parse_show(result.stdout)
    if len(blocks) != len(names):
        raise CommandFailed(f"systemctl show returned {len(blocks)} blocks for {len(names)} units")
    return {name: unit_state(block) for name, block in zip(names, blocks)}


def declared_units(ctx: Context) -> Tuple[Dict[str, Facts], List[str]]:
    """config ``units`` → ``({name: declaration}, [refused])``; a plain name reads ``{name}``.

    ``["a.service", {"name": "b.service", "dns_gate_names": ["x"]}, "bad name"]``
    → ``({"a.service": {"name": "a.service"}, "b.service": {...}}, ["bad name"])``.
    """
    declared: Dict[str, Facts] = {}
    refused: List[str] = []
    for entry in ctx.setting("units", []) or []:
        item: Any = {"name": entry} if isinstance(entry, str) else entry
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and _UNIT_NAME.fullmatch(name):
            declared.setdefault(name, dict(item))
        else:
            refused.append(str(name if isinstance(item, dict) else entry))
    return declared, refused


def _relevant(ctx: Context) -> Tuple[Dict[str, List[str]], List[str]]:
    """``{unit: [reasons]}`` in first-seen order, plus names refused as invalid."""
    reasons: Dict[str, List[str]] = {}
    declared, invalid = declared_units(ctx)

    def add(names: Iterable[object], reason: str) -> None:
        for name in names:
            if not isinstance(name, str) or not _UNIT_NAME.fullmatch(name):
                invalid.append(str(name))
                continue
            reasons.setdefault(name, [])
            if reason not in reasons[name]:
                reasons[name].append(reason)

    add(declared, "config")
    add(ctx.related_units, "port_owner")
    # A container owner ({container: NAME}) is no unit: the ports family reads its state.
    owners = [p.get("owner") for p in ctx.setting("ports", []) or () if isinstance(p, dict)]
    add([o for o in owners if isinstance(o, str)], "port_declared")
    add(RESOLVER_UNITS, "resolver")
    add(PLUMBING_UNITS, "network")
    return reasons, invalid


def _is_active(units: Dict[str, Facts], name: str) -> bool:
    return bool(units.get(name, {}).get("active_state") == "active")


def network_summary(units: Dict[str, Facts]) -> Facts:
    """network-online.target state, enabled wait-online services, active managers."""
    online = units.get(NETWORK_ONLINE, {})
    return {
        "network_online_state": online.get("active_state"),
        "network_online_active_enter_monotonic_us": online.get("active_enter_monotonic_us"),
        "wait_online_enabled": [
            wait
            for _service, wait in NETWORK_MANAGERS.values()
            if units.get(wait, {}).get("unit_file_state") == "enabled"
        ],
        "network_managers_active": [
            manager
            for manager, (service, _wait) in NETWORK_MANAGERS.items()
            if _is_active(units, service)
        ],
        # What a fix may enable: the active managers' wait-online services systemd knows.
        "wait_online_available": [
            wait
            for service, wait in NETWORK_MANAGERS.values()
            if _is_active(units, service) and units.get(wait, {}).get("load_state") == "loaded"
        ],
    }


def collect(ctx: Context) -> Facts:
    """The units family: ``{"systemd": "running", "units": {...}, "network": {...}}``."""
    reasons, invalid = _relevant(ctx)
    if not systemd_running(ctx):
        return {
            "systemd": "not running",
            "requested": list(reasons),
            "invalid_names": invalid,
            "units": {},
            "network": None,
        }
    units = show_units(ctx, list(reasons))
    declared = declared_units(ctx)[0]
    for name, unit in units.items():
        unit["reasons"] = reasons[name]
        unit["declared"] = declared.get(name)
    return {
        "systemd": "running",
        "requested": list(reasons),
        "invalid_names": invalid,
        "units": units,
        "network": network_summary(units),
    }
