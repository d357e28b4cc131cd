"""What a vpnc-script client killed mid-connection leaves, and putting it back.

vpnc-script (Debian's ``vpnc-scripts``, used by openconnect and GlobalProtect)
saves the host's state on connect under files named after the controlling
process (``VPNPID``) and restores them on disconnect. A KILL skips the
disconnect, leaving (research-19 §2c):

- ``<state_dir>/resolv.conf-backup.<PID>``: the resolv.conf before the VPN, while
  ``/etc/resolv.conf`` still carries the VPN's servers under ``#@VPNC_GENERATED@``;
- ``<state_dir>/defaultroute.<PID>``: the default route before the VPN (one
  token per line), while the tun default vanished with the device: maybe no
  default route at all.

A file named after a PID that no longer runs is the proof that the client died
without its teardown; only what that proof covers is put back.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any, Dict, List, Mapping, Optional, Sequence

from netmedic.procs.table import ProcStat, alive

MARKER = "#@VPNC_GENERATED@"
RESOLV_CONF = "/etc/resolv.conf"
_FILES = {"resolv.conf-backup": "resolv_conf_backup", "defaultroute": "defaultroute"}
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/@%-]+$")


def generated(text: str) -> bool:
    """Whether a resolv.conf still carries vpnc-script's marker (its own test: ``^#@VPNC...``)."""
    return any(line.startswith(MARKER) for line in text.splitlines())


def default_route_present(route_table: str) -> Optional[bool]:
    """An IPv4 default route in ``/proc/net/route`` text (destination and mask 0)."""
    rows = [line.split() for line in route_table.splitlines()[1:]]
    rows = [row for row in rows if len(row) >= 8]
    return any(row[1] == "00000000" and row[7] == "00000000" for row in rows)


def route_tokens(text: str) -> Optional[List[str]]:
    """A saved default route → ``ip route`` arguments; None unless it is one.

    ``"default\\nvia\\n192.0.2.1\\ndev\\nlab0\\n"``
    → ``["default", "via", "192.0.2.1", "dev", "lab0"]``.
    """
    tokens = text.split()
    if not tokens or tokens[0] != "default" or not all(_TOKEN.match(t) for t in tokens):
        return None
    return tokens


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def scan(
    state_dir: str,
    table: Dict[int, ProcStat],
    resolv_text: Optional[str],
    route_table: Optional[str],
    shown_dir: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Leftovers by PID in ``state_dir`` (read there, reported as ``shown_dir``), with what
    can be restored: ``restorable`` names ``resolv_conf`` and/or ``default_route``."""
    shown = shown_dir or state_dir
    try:
        names = sorted(os.listdir(state_dir))
    except OSError:
        return []
    by_pid: Dict[int, Dict[str, Any]] = {}
    for name in names:
        kind, _dot, pid_text = name.rpartition(".")
        if kind not in _FILES or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        entry = by_pid.setdefault(
            pid, {"pid": pid, "state_dir": shown, "resolv_conf_backup": None, "defaultroute": None}
        )
        entry[_FILES[kind]] = f"{shown}/{name}"
    marked = None if resolv_text is None else generated(resolv_text)
    has_default = None if route_table is None else default_route_present(route_table)
    leftovers = []
    for pid, entry in sorted(by_pid.items()):
        saved = _read(f"{state_dir}/defaultroute.{pid}") if entry["defaultroute"] else None
        tokens = route_tokens(saved or "")
        restorable = []
        if not alive(pid, table):
            if entry["resolv_conf_backup"] and marked:
                restorable.append("resolv_conf")
            if tokens and has_default is False:
                restorable.append("default_route")
        entry.update(
            pid_alive=alive(pid, table),
            saved_default_route=" ".join(tokens) if tokens else None,
            resolv_conf=RESOLV_CONF,
            resolv_conf_generated=marked,
            default_route_present=has_default,
            restorable=restorable,
        )
        leftovers.append(entry)
    return leftovers


def collect(
    ctx: Any, raw_profiles: Sequence[Mapping[str, Any]], table: Dict[int, ProcStat]
) -> List[Dict[str, Any]]:
    """Leftovers in every ``vpnc_state_dir`` the profiles declare (each directory once)."""
    from netmedic.hostpaths import host_path  # noqa: PLC0415 - the module side never maps paths

    dirs: List[str] = []
    for raw in raw_profiles:
        state_dir = raw.get("vpnc_state_dir")
        if isinstance(state_dir, str) and state_dir and state_dir not in dirs:
            dirs.append(state_dir)
    if not dirs:
        return []
    resolv_text = _read(str(host_path(ctx, RESOLV_CONF)))
    route_table = _read(f"{ctx.proc_dir}/net/route")
    found: List[Dict[str, Any]] = []
    for state_dir in dirs:
        real = str(host_path(ctx, state_dir))
        found += scan(real, table, resolv_text, route_table, shown_dir=state_dir)
    return found


class RestoreError(Exception):
    """A restore step failed; the message names the file or command."""


def restore(
    leftover: Mapping[str, Any],
    table: Dict[int, ProcStat],
    check_mode: bool,
    proc_dir: str = "/proc",
) -> Dict[str, Any]:
    """Put back what the dead client's files prove it changed; re-read everything first.

    Refused (``skipped``) while the PID runs: its client may still tear down itself.
    resolv.conf is written in place (a symlink is followed, as vpnc-script's ``cat >``
    does), only while the marker is there; the default route only when none exists.
    The leftover files of what was restored are removed (the role backed them up).
    """
    pid = int(leftover["pid"])
    state_dir = str(leftover.get("state_dir") or "/var/run/vpnc")
    result: Dict[str, Any] = {"pid": pid, "restored": [], "removed": [], "skipped": None}
    if alive(pid, table):
        result["skipped"] = f"PID {pid} is running: its client owns these files"
        return result
    resolv_path = str(leftover.get("resolv_conf") or RESOLV_CONF)
    current = scan(state_dir, table, _read(resolv_path), _read(f"{proc_dir}/net/route"))
    entry = next((e for e in current if e["pid"] == pid), None)
    if entry is None:
        return result
    if "resolv_conf" in entry["restorable"]:
        backup = f"{state_dir}/resolv.conf-backup.{pid}"
        text = _read(backup)
        if text is None:
            raise RestoreError(f"cannot read {backup}")
        if not check_mode:
            try:
                with open(resolv_path, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.unlink(backup)
            except OSError as exc:
                raise RestoreError(f"cannot restore {resolv_path} from {backup}: {exc}") from exc
        result["restored"].append("resolv_conf")
        result["removed"].append(backup)
    if "default_route" in entry["restorable"]:
        saved = f"{state_dir}/defaultroute.{pid}"
        argv = ["ip", "route", "add", *entry["saved_default_route"].split()]
        if not check_mode:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RestoreError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
            os.unlink(saved)
        result["restored"].append("default_route")
        result["removed"].append(saved)
        result["route"] = entry["saved_default_route"]
    return result
