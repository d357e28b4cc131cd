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
from functools import partial
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

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
        low, _dash, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def parse_sockstat(text: str) -> Dict[str, Dict[str, int]]:
    """``"TCP: inuse 5 orphan 0 tw 274 alloc 7 mem 1\\n"``
    → ``{"tcp": {"inuse": 5, "orphan": 0, "tw": 274, "alloc": 7, "mem": 1}}``
    """
    counts: Dict[str, Dict[str, int]] = {}
    for line in text.splitlines():
        proto, _colon, rest = line.partition(":")
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


# Trippy (trippy-core strategy.rs): a round starts below MAX_SEQUENCE = 65535 - 512,
# else the sequence wraps to the initial one; so a round's last port is at most
# 65022 + per_round - 1 (65533 with the hard per-round maximum of 512).
LAST_ROUND_START = 65022
MAX_PER_ROUND = 512
MAX_INITIAL_SEQUENCE = 64511  # 65535 - 2 * 512: Trippy's builder refuses more
DEFAULT_CHECK = 8  # probe ports test-bound per span: enough to see a held run
MAX_CHECK = 64


def sequence_span(initial: int, per_round: int, rounds: Optional[int]) -> PortRange:
    """Source ports a tracer whose TCP source port is its sequence number binds.

    Sequences advance by one per probe, never reset per round, and wrap to
    ``initial`` only between rounds: ``(33434, 64, 10)`` → ``(33434, 34073)``;
    unbounded rounds ``(33434, 64, None)`` → ``(33434, 65085)``.
    """
    top = LAST_ROUND_START + per_round - 1
    if rounds is None:
        return (initial, top)
    return (initial, min(initial + rounds * per_round - 1, top))


def _whole(value: Any, low: int, high: int, what: str) -> int:
    """``8`` → ``8``; ``True``, ``"8"`` or a value outside [low, high] → ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _sequence(profile: Dict[str, Any], where: str) -> Optional[Dict[str, Any]]:
    spec = profile.get("probe_sequence")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"{where}.probe_sequence must be a mapping, got {spec!r}")
    key = f"{where}.probe_sequence"
    rounds = spec.get("rounds")  # null: unbounded (Trippy's TUI)
    return {
        "initial": _whole(spec.get("initial"), 1, MAX_INITIAL_SEQUENCE, f"{key}.initial"),
        "per_round": _whole(spec.get("per_round"), 1, MAX_PER_ROUND, f"{key}.per_round"),
        "rounds": None if rounds is None else _whole(rounds, 1, 1 << 31, f"{key}.rounds"),
    }


def _declared(ctx: Context) -> Iterable[Dict[str, Any]]:
    """Declared spans: config ports (and their remap targets), profiles' probe ports.

    A profile's ``probe_ports`` are ranges as given; its ``probe_sequence``
    ``{initial, per_round, rounds}`` becomes :func:`sequence_span`. Probe spans
    carry what the bind check needs (``address``, ``check``); ports do not.
    """
    for entry in ctx.setting("ports", []) or []:
        targets = [int(entry["port"])]
        if isinstance(entry.get("remap"), dict) and entry["remap"].get("port") is not None:
            targets.append(int(entry["remap"]["port"]))  # where the owner moves to
        for port in targets:
            yield {"source": "ports", "proto": str(entry.get("proto", "tcp")), "span": (port, port)}
    for profile in ctx.setting("processes", []) or []:
        where = f"processes[{profile.get('name', '?')}]"
        probe = {
            "source": f"processes:{profile.get('name', '?')}",
            "proto": str(profile.get("probe_proto", "tcp")),
            "address": str(profile.get("probe_address", "0.0.0.0")),
            "check": _whole(
                profile.get("probe_check", DEFAULT_CHECK), 0, MAX_CHECK, f"{where}.probe_check"
            ),
        }
        for spec in profile.get("probe_ports") or ():
            ((low, high),) = parse_port_ranges(str(spec))
            yield {**probe, "span": (low, high), "sequence": None}
        sequence = _sequence(profile, where)
        if sequence is not None:
            span = sequence_span(sequence["initial"], sequence["per_round"], sequence["rounds"])
            yield {**probe, "span": span, "sequence": sequence}


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


def _sequence_facts(sequence: Optional[Dict[str, Any]], high: int) -> Optional[Facts]:
    """The declared sequence plus ``above_range``: the first initial sequence whose whole
    span lies above the range (null when the tool cannot start that high)."""
    if sequence is None:
        return None
    above = high + 1 if high + 1 <= MAX_INITIAL_SEQUENCE else None
    return {**sequence, "above_range": above}


def probe_holders(ctx: Context, proto: str, address: str, ports: Set[int]) -> Dict[int, List[str]]:
    """Who holds each of ``ports``, as sentences: listening, bound and connected sockets.

    An outgoing connection holds its source port too, and a TIME_WAIT one holds it
    with no process at all, so every state is asked (the whole TCP table: called only
    when a probe port failed with EADDRINUSE).
    """
    from netmedic import addresses, netlink  # noqa: PLC0415 - only when a probe port is in use
    from netmedic.collectors import ports as ports_family  # noqa: PLC0415
    from netmedic.probe import conflicts, describe_holder  # noqa: PLC0415

    every = [state for state in netlink.TCP_STATES if state != 12]  # NEW_SYN_RECV: a request
    tcp, udp = (every, ()) if proto == "tcp" else ((), (netlink.TCP_ESTABLISHED, netlink.TCP_CLOSE))
    relist = partial(netlink.bound_sockets, tcp_states=tcp, udp_states=udp)
    try:
        found = relist()
    except netlink.NetlinkError as exc:
        return {port: [f"a socket that could not be listed ({exc})"] for port in ports}
    found = [
        s for s in found
        if s.proto == proto and s.port in ports and conflicts(
            address, s.address, addresses.device_name(s.ifindex) if s.ifindex else None, s.v6only)
    ]  # fmt: skip
    said: Dict[int, List[str]] = {port: [] for port in ports}
    for sock in found:
        if sock.state == "TIME_WAIT":  # no inode, no process: the kernel keeps it 60 s
            text = f"a TIME_WAIT socket on {sock.address} (no process; freed within 60 s)"
            if text not in said[sock.port]:
                said[sock.port].append(text)
    live = [sock for sock in found if sock.state != "TIME_WAIT"]
    states: Dict[Any, str] = {(sock.address, sock.port, sock.inode): sock.state for sock in live}
    for entry in ports_family.join_owners(ctx, live, relist) if live else []:
        state = states.get((entry["address"], entry["port"], entry["inode"]), "?")
        text = f"{describe_holder(dict(entry))}, {state}"
        if text not in said[entry["port"]]:
            said[entry["port"]].append(text)
    return said


def check_binds(ctx: Context, item: Dict[str, Any], port_range: PortRange) -> Optional[Facts]:
    """Bind the first ``check`` ports of a probe span inside the range as the tool does
    (SO_REUSEPORT, no SO_REUSEADDR; closed at once, no traffic) and classify failures
    with probe-bind's rules. None when nothing of the span is in the range."""
    low, high = max(item["span"][0], port_range[0]), min(item["span"][1], port_range[1])
    if item["check"] == 0 or low > high:
        return None
    from netmedic import probe  # noqa: PLC0415 - only for declared probe spans

    try:
        address = probe.parse_address(item["address"])
    except ValueError as exc:
        raise ValueError(f"{item['source']}: probe_address: {exc}") from exc
    last = min(high, low + item["check"] - 1)
    proto = item["proto"]
    results = [
        probe.classify(
            probe.BindProbe(proto=proto, address=address, port=port, status=probe.ERROR),
            probe.try_bind(proto, address, port, reuse_addr=False, reuse_port=True),
        )
        for port in range(low, last + 1)
    ]
    failed = [r for r in results if r.status != probe.FREE]
    in_use = {r.port for r in failed if r.status == probe.IN_USE}
    held = probe_holders(ctx, proto, address, in_use) if in_use else {}
    failures = [
        {
            "port": r.port, "status": r.status, "errno": r.errno_name, "message": r.message,
            "holders": held.get(r.port) or [], "notes": r.notes,
        }
        for r in failed
    ]  # fmt: skip
    return {
        "source": item["source"], "proto": proto, "address": address,
        "ports": list(item["span"]), "checked": [low, last], "failures": failures,
        "summary": summarize(failures, proto, address),
    }  # fmt: skip


def summarize(failures: List[Dict[str, Any]], proto: str, address: str) -> str:
    """One sentence per run of adjacent ports that failed the same way.

    Two TIME_WAIT-held ports 33434 and 33435 →
    ``"33434-33435/tcp EADDRINUSE on 0.0.0.0: held by a TIME_WAIT socket on ..."``.
    """
    runs: List[List[Any]] = []  # [first, last, errno, what]
    for failure in failures:
        if failure["holders"]:
            what = "held by " + "; ".join(failure["holders"])
        elif failure["status"] == "in_use":
            what = "no holder found (released since?)"
        else:
            what = failure["message"]
        if runs and runs[-1][1] == failure["port"] - 1 and runs[-1][2:] == [failure["errno"], what]:
            runs[-1][1] = failure["port"]
        else:
            runs.append([failure["port"], failure["port"], failure["errno"], what])
    return "; ".join(
        f"{first}{f'-{last}' if last > first else ''}/{proto} {code} on {address}: {what}"
        for first, last, code, what in runs
    )


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
    unreserved: List[Dict[str, Any]] = []
    binds: List[Facts] = []
    for item in _declared(ctx):
        entry = {"source": item["source"], "proto": item["proto"], "ports": list(item["span"])}
        if "sequence" in item:
            entry["sequence"] = _sequence_facts(item["sequence"], high)
            checked = check_binds(ctx, item, (low, high))
            if checked is not None:
                binds.append(checked)
        declared.append(entry)
        pieces = exposed(item["span"], (low, high), reserved)
        if pieces:
            unreserved.append({**entry, "unreserved_in_range": [list(p) for p in pieces]})
    return {
        "port_range": {"low": low, "high": high, "size": size},
        "reserved_ports": [list(r) for r in reserved],
        "tcp_tw_reuse": tw_reuse,
        "sockstat": sockstat,
        "pressure": {"used": used, "ratio": round(used / size, 4) if size > 0 else None},
        "declared": declared,
        "declared_unreserved": unreserved,
        "probe_binds": binds,
        "sysctl_sources": winners,
        "sysctl_unreadable": unreadable,
    }
