"""Ephemeral-port family: range, reservations, TIME_WAIT reuse, socket counts,
pressure, declared ports exposed to automatic assignment, and which sysctl file
sets each value.

Counts come from ``/proc/net/sockstat`` (kernel counters): constant cost however
many TIME_WAIT sockets exist — no socket is listed.

Pressure is an estimate: ``used = TCP inuse + TCP6 inuse + TIME_WAIT`` over the
range size. It over-counts (listening sockets and fixed-port connections are
included) and the kernel may reuse one local port towards different
destinations, so ``ratio >= 1`` is not proof of exhaustion; with few
destinations, a ratio near 1 means connect()/bind() will hit EADDRNOTAVAIL.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from netmedic.context import Context, Facts
from netmedic.hostpaths import host_path

KEYS: Tuple[str, ...] = (
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_tw_reuse",
)
# systemd-sysctl's search path, highest precedence first: for one file name the
# first directory wins; files then apply in file-name order, later wins.
SYSCTL_DIRS: Tuple[str, ...] = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
# procps `sysctl --system` reads it last; Debian also links it as 99-sysctl.conf.
SYSCTL_CONF = "/etc/sysctl.conf"

PortRange = Tuple[int, int]


def parse_port_ranges(text: str) -> List[PortRange]:
    """``"1900,32400-32410\\n"`` → ``[(1900, 1900), (32400, 32410)]``; ``""`` → ``[]``."""
    ranges: List[PortRange] = []
    for part in text.replace(",", " ").split():
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def parse_sockstat(text: str) -> Dict[str, Dict[str, int]]:
    """``"TCP: inuse 5 orphan 0 tw 274 alloc 7 mem 1\\n"``
    → ``{"tcp": {"inuse": 5, "orphan": 0, "tw": 274, "alloc": 7, "mem": 1}}``
    """
    counts: Dict[str, Dict[str, int]] = {}
    for line in text.splitlines():
        proto, _, rest = line.partition(":")
        words = rest.split()
        counts[proto.strip().lower()] = {
            words[i]: int(words[i + 1])
            for i in range(0, len(words) - 1, 2)
            if words[i + 1].isdigit()
        }
    return counts


def parse_sysctl_file(text: str) -> Dict[str, str]:
    """``"net/ipv4/tcp_tw_reuse = 1\\n# x\\n-net.ipv4.ip_local_port_range=1 2"``
    → ``{"net.ipv4.tcp_tw_reuse": "1", "net.ipv4.ip_local_port_range": "1 2"}``
    """
    values: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lstrip("-").replace("/", ".")  # "-" only silences errors
        values[key] = " ".join(value.split())
    return values


def sysctl_files(ctx: Context) -> List[str]:
    """Host paths of the sysctl files in the order they apply (last one wins)."""
    chosen: Dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        try:
            names = os.listdir(host_path(ctx, directory))
        except OSError:
            continue  # absent directory: nothing from it
        for name in names:
            if name.endswith(".conf"):
                chosen.setdefault(name, f"{directory}/{name}")
    ordered = [chosen[name] for name in sorted(chosen)]
    conf = host_path(ctx, SYSCTL_CONF)
    already = any(
        os.path.realpath(host_path(ctx, path)) == os.path.realpath(conf) for path in ordered
    )
    if conf.exists() and not already:
        ordered.append(SYSCTL_CONF)
    return ordered


def sysctl_sources(ctx: Context) -> Tuple[Dict[str, Optional[Facts]], List[Facts]]:
    """Per key the winning file and value, plus files that could not be read."""
    winners: Dict[str, Optional[Facts]] = {key: None for key in KEYS}
    unreadable: List[Facts] = []
    for path in sysctl_files(ctx):
        try:
            text = host_path(ctx, path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            unreadable.append(
                {"path": path, "error": f"{type(exc).__name__}: {exc.strerror or exc}"}
            )
            continue
        for key, value in parse_sysctl_file(text).items():
            if key in winners:
                previous = winners[key]
                overridden = [] if previous is None else [*previous["overrides"], previous["file"]]
                winners[key] = {"file": path, "value": value, "overrides": overridden}
    return winners, unreadable


def _declared(ctx: Context) -> Iterable[Tuple[str, str, PortRange]]:
    """(source, proto, range) for config ports and profiles' ``probe_ports``."""
    for entry in ctx.setting("ports", []) or []:
        port = int(entry["port"])
        yield "ports", str(entry.get("proto", "tcp")), (port, port)
    for profile in ctx.setting("processes", []) or []:
        for spec in profile.get("probe_ports") or ():
            ((low, high),) = parse_port_ranges(str(spec))
            yield (
                f"processes:{profile.get('name', '?')}",
                str(profile.get("probe_proto", "tcp")),
                (low, high),
            )


def exposed(span: PortRange, port_range: PortRange, reserved: List[PortRange]) -> List[PortRange]:
    """Parts of ``span`` inside the ephemeral range and not reserved.

    ``((33434, 33440), (32768, 60999), [(33434, 33436)])`` → ``[(33437, 33440)]``
    """
    low, high = max(span[0], port_range[0]), min(span[1], port_range[1])
    pieces: List[PortRange] = []
    port = low
    while port <= high:
        cover = next((r for r in reserved if r[0] <= port <= r[1]), None)
        if cover is not None:
            port = cover[1] + 1
            continue
        nxt = min([r[0] for r in reserved if r[0] > port] + [high + 1])
        pieces.append((port, min(high, nxt - 1)))
        port = nxt
    return pieces


def _read_proc(ctx: Context, relpath: str) -> str:
    return (ctx.proc_root / relpath).read_text(encoding="utf-8")


def _optional(ctx: Context, relpath: str) -> Optional[str]:
    """sockstat6 is absent when IPv6 is disabled."""
    try:
        return _read_proc(ctx, relpath)
    except FileNotFoundError:
        return None


def collect(ctx: Context) -> Facts:
    """The ephemeral family (see docs/facts.md)."""
    low, high = (int(v) for v in _read_proc(ctx, "sys/net/ipv4/ip_local_port_range").split())
    reserved = parse_port_ranges(_read_proc(ctx, "sys/net/ipv4/ip_local_reserved_ports"))
    tw_reuse = int(_read_proc(ctx, "sys/net/ipv4/tcp_tw_reuse").strip())
    sockstat = parse_sockstat(_read_proc(ctx, "net/sockstat"))
    sockstat.update(parse_sockstat(_optional(ctx, "net/sockstat6") or ""))
    size = high - low + 1
    tcp: Dict[str, int] = sockstat.get("tcp", {})
    used = tcp.get("inuse", 0) + tcp.get("tw", 0) + sockstat.get("tcp6", {}).get("inuse", 0)
    winners, unreadable = sysctl_sources(ctx)
    declared: List[Dict[str, Any]] = []
    for source, proto, span in _declared(ctx):
        pieces = exposed(span, (low, high), reserved)
        if pieces:
            declared.append(
                {
                    "source": source,
                    "proto": proto,
                    "ports": list(span),
                    "unreserved_in_range": [list(p) for p in pieces],
                }
            )
    return {
        "port_range": {"low": low, "high": high, "size": size},
        "reserved_ports": [list(r) for r in reserved],
        "tcp_tw_reuse": tw_reuse,
        "sockstat": sockstat,
        "pressure": {"used": used, "ratio": round(used / size, 4) if size > 0 else None},
        "declared_unreserved": declared,
        "sysctl_sources": winners,
        "sysctl_unreadable": unreadable,
    }
