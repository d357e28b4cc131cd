"""``probe-bind``: try a real bind on a port and say what it means.

Outcomes:

- ``free``: the bind succeeded (the socket is closed again at once; binding
  sends no traffic).
- ``in_use`` (EADDRINUSE): the holders come from the ports collector, the same
  owner lookup ``netmedic facts`` uses, never a second implementation. For UDP
  the probe retries with SO_REUSEADDR and reports whether the port could be
  shared (INCIDENTS §5: libupnp shares 1900/udp only with SO_REUSEADDR holders).
- ``address_not_available`` (EADDRNOTAVAIL): the address is not local to this
  network namespace. Not, by itself, proof of ephemeral-port exhaustion
  (INCIDENTS §3): that errno also means a non-local address or a fixed
  source-port 4-tuple collision.
- ``permission_denied`` (EACCES): a privileged port without
  CAP_NET_BIND_SERVICE; whether the port is free is unknown.
- ``error``: any other errno, named.

TCP probes set SO_REUSEADDR as servers do, so sockets lingering in TIME_WAIT do
not read as "in use"; a listener on the port still refuses the bind.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from netmedic import addresses
from netmedic.context import Context

FREE = "free"
IN_USE = "in_use"
ADDRESS_NOT_AVAILABLE = "address_not_available"
PERMISSION_DENIED = "permission_denied"
ERROR = "error"

NOT_EXHAUSTION_NOTE = (
    "EADDRNOTAVAIL alone is not proof of ephemeral-port exhaustion: it also means "
    "the address is not local to this host's network namespace, or a fixed source "
    "port collides on the same 4-tuple"
)
_PROTOCOLS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


@dataclass
class BindProbe:
    """What one bind attempt found; ``holders`` are ``ports.sockets`` entries."""

    proto: str
    address: str
    port: int
    status: str
    errno_name: Optional[str] = None
    message: str = ""
    shareable: Optional[bool] = None
    holders: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "proto": self.proto,
            "address": self.address,
            "port": self.port,
            "status": self.status,
            "errno": self.errno_name,
            "message": self.message,
            "shareable": self.shareable,
            "holders": self.holders,
            "notes": self.notes,
        }


def parse_port(text: str) -> int:
    """``"1900"`` → ``1900``; ``"0"``, ``"70000"``, ``"http"`` → ValueError quoting the input."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"PORT must be a number from 1 to 65535, got {text!r}")
    return int(text)


def parse_proto(text: str) -> str:
    """``"udp"`` → ``"udp"``; anything but tcp/udp → ValueError quoting it."""
    if text not in _PROTOCOLS:
        raise ValueError(f"protocol must be tcp or udp, got {text!r}")
    return text


def parse_address(text: str) -> str:
    """A literal IPv4/IPv6 address as the kernel prints it: ``"::1"`` → ``"::1"``,
    ``"::FFFF:7f00:1"`` → ``"::ffff:127.0.0.1"``; a link-local one keeps its zone, an
    interface name or index (``"fe80::1%lo"``). ``"myhost"`` → ValueError.

    Names are refused, not resolved: a probe must not cause a DNS lookup.
    """
    plain, zone = addresses.split_scope(text)
    try:
        address = ipaddress.ip_address(plain)
    except ValueError as exc:
        raise ValueError(f"--addr must be an IP address, got {text!r}") from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    if zone is None:
        return str(address)
    if addresses.scope_of(str(address), 1) is None:
        raise ValueError(f"--addr {text!r}: a zone applies to a link-local IPv6 address only")
    _scope_id(zone, text)
    return f"{address}%{zone}"


def _scope_id(zone: str, text: str) -> int:
    """The interface index a zone names: ``"lo"`` → ``1``, ``"1"`` → ``1``; ValueError if none."""
    try:
        return int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
    except OSError as exc:
        raise ValueError(f"--addr {text!r}: no network interface {zone!r} here") from exc


def _sockaddr(address: str, port: int) -> Tuple[Any, ...]:
    """What ``bind`` takes: ``("fe80::1%lo", 80)`` → ``("fe80::1", 80, 0, 1)`` (a scoped
    address needs its scope id passed apart: a zone in the text is EINVAL)."""
    plain, zone = addresses.split_scope(address)
    return (plain, port) if zone is None else (plain, port, 0, _scope_id(zone, address))


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def try_bind(
    proto: str, address: str, port: int, reuse_addr: bool, reuse_port: bool = False
) -> Optional[OSError]:
    """Bind and close at once; the OSError the kernel returned, or None when it bound.

    ``reuse_port`` binds as a tracer's probe socket does (Trippy sets SO_REUSEPORT
    and not SO_REUSEADDR): it shares a port with its own kind, not with others.
    ``address`` is as :func:`parse_address` gives it (a zone for a link-local one).
    """
    sock = socket.socket(_family(address), _PROTOCOLS[proto])
    try:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(_sockaddr(address, port))
    except OSError as exc:
        return exc
    finally:
        sock.close()
    return None


def holders_of(ctx: Context, proto: str, address: str, port: int) -> List[Dict[str, Any]]:
    """``ports.sockets`` entries that conflict with binding ``address:port``.

    The ports collector is asked with the port declared, so it also reads the
    holder's SO_REUSEADDR for UDP. A wildcard probe conflicts with every
    address; a specific one with the same address or a wildcard holder.
    """
    from netmedic.collectors import ports  # noqa: PLC0415 - only when something holds the port

    config = dict(ctx.config)
    config["ports"] = [{"port": port, "proto": proto}]
    found = ports.collect(Context(proc_root=ctx.proc_root, etc_root=ctx.etc_root, config=config))
    return [
        dict(sock)
        for sock in found.get("sockets", [])
        if sock.get("proto") == proto and sock.get("port") == port
        and conflicts(address, str(sock.get("address")), sock.get("device"), sock.get("v6only"))
    ]  # fmt: skip


def conflicts(
    address: str, holder: str, device: Optional[str], v6only: Optional[bool]
) -> bool:
    """Does a socket on ``holder`` (bound to ``device``, IPV6_V6ONLY ``v6only``) stand
    where a bind of ``address`` on its port goes, sharing options aside? The kernel's rules:

    - a holder bound to another device than a scoped (``%zone``) probe is apart;
    - ``::`` (the probe binds dual-stack) meets every holder;
    - an IPv4 address, or one v4-mapped, meets an IPv4 holder on it or on 0.0.0.0, a
      v4-mapped holder of it, and a ``::`` holder that is not v6only (dual-stack);
      0.0.0.0 meets every one of those;
    - any other IPv6 address meets a holder on it or on ``::``.
    """
    plain, zone = addresses.split_scope(address)
    if zone is not None and device is not None:
        wanted = addresses.device_name(int(zone)) if zone.isdigit() else zone
        if device != wanted:
            return False
    if plain == "::":
        return True
    probe_v4, holder_v4 = addresses.ipv4_of(plain), addresses.ipv4_of(holder)
    if probe_v4 is None:  # an IPv6 address
        return holder_v4 is None and holder in ("::", plain)
    if holder == "::":
        return v6only is not True
    return holder_v4 is not None and (probe_v4 == "0.0.0.0" or holder_v4 in ("0.0.0.0", probe_v4))


def probe_bind(
    proto: str, port: int, address: str = "0.0.0.0", ctx: Optional[Context] = None
) -> BindProbe:
    """Classify ``address:port/proto`` by binding it.

    ``("udp", 1900)`` with Plex holding it → ``BindProbe(status="in_use",
    errno_name="EADDRINUSE", shareable=False, holders=[{..., "owner": {"pid": 812, ...}}])``.
    """
    ctx = ctx or Context()
    address = parse_address(address)  # refuse names before bind() could resolve one
    result = classify(
        BindProbe(proto=proto, address=address, port=port, status=ERROR),
        try_bind(proto, address, port, reuse_addr=proto == "tcp"),
    )
    if result.status == IN_USE:
        if proto == "udp":
            result.shareable = try_bind(proto, address, port, reuse_addr=True) is None
        result.holders = holders_of(ctx, proto, address, port)
        if not result.holders:
            result.notes.append(
                "no listening or bound socket on this port was found: a connected socket "
                "(an outgoing connection using it as its source port) may hold it"
            )
    return result


def classify(result: BindProbe, failure: Optional[OSError]) -> BindProbe:
    """Fill ``result``'s status, errno and notes from what bind() returned; no holders.

    ``None`` → ``free``; ``OSError(98, ...)`` → ``in_use`` / ``EADDRINUSE``;
    ``OSError(99, ...)`` → ``address_not_available`` with the not-exhaustion note.
    The ephemeral family classifies its probe-port binds with it too.
    """
    if failure is None:
        result.status, result.message = FREE, "bind succeeded: the port is free"
        return result
    code = failure.errno or 0
    result.errno_name = errno.errorcode.get(code, str(code))
    result.message = failure.strerror or str(failure)
    if code == errno.EADDRINUSE:
        result.status = IN_USE
    elif code == errno.EADDRNOTAVAIL:
        result.status = ADDRESS_NOT_AVAILABLE
        result.notes.append(NOT_EXHAUSTION_NOTE)
    elif code in (errno.EACCES, errno.EPERM):
        result.status = PERMISSION_DENIED
        result.notes.append(
            "binding ports below net.ipv4.ip_unprivileged_port_start needs "
            "CAP_NET_BIND_SERVICE; whether the port is free is unknown"
        )
    return result


def describe_holder(sock: Dict[str, Any]) -> str:
    """``{"address": "0.0.0.0", "owner": {"pid": 812, "name": "plex", "user": "plex",
    "unit": "p.service"}}`` → ``"pid 812 (plex, user plex, unit p.service) on 0.0.0.0"``."""
    owner = sock.get("owner")
    where = f"on {sock.get('address')}"
    if not owner:
        reason = sock.get("owner_reason") or "owner unknown"
        return f"a socket whose owner could not be read ({reason}) {where}"
    parts = [
        owner.get("name") or "unknown process",
        f"user {owner.get('user') or 'unknown'}",
        f"unit {owner.get('unit') or 'none'}",
    ]
    if owner.get("container_id"):
        parts.append(f"container {str(owner['container_id'])[:12]}")
    return f"pid {owner.get('pid')} ({', '.join(parts)}) {where}"


def describe(result: BindProbe) -> str:
    """The human-readable report: one headline, then holders and notes."""
    target = f"{result.port}/{result.proto} on {result.address}"
    if result.status == FREE:
        lines = [f"{target}: free"]
    elif result.status == IN_USE:
        lines = [f"{target}: in use ({result.errno_name})"]
        lines += [f"  held by {describe_holder(sock)}" for sock in result.holders]
        if result.shareable is not None:
            verdict = "yes" if result.shareable else "no"
            lines.append(f"  a SO_REUSEADDR socket can share it: {verdict}")
    elif result.status == ADDRESS_NOT_AVAILABLE:
        lines = [f"{target}: address not available ({result.errno_name}: {result.message})"]
    else:
        lines = [
            f"{target}: {result.status.replace('_', ' ')} ({result.errno_name}: {result.message})"
        ]
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"
