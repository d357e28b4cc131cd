"""What a socket's address means for who can share its port: devices, scopes, v4 in v6.

Shared by the ports family (a socket's ``device`` and ``scope_id``) and
``probe-bind`` (which holders a bind conflicts with). On the ports path: it
imports only the C module behind ``socket``.
"""

from __future__ import annotations

try:
    import _socket as socket  # the C module behind `socket`: same calls, no enum set-up
except ImportError:  # pragma: no cover - an interpreter without it
    import socket  # type: ignore[no-redef]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

_DEVICES: Dict[int, str] = {}
_MAPPED = "::ffff:"  # an IPv4 address in an IPv6 socket: ::ffff:127.0.0.1


def device_name(ifindex: int) -> str:
    """The interface's name, ``1`` → ``"lo"``; its index as text when it has none any more."""
    name = _DEVICES.get(ifindex)
    if name is None:
        try:
            name = _DEVICES[ifindex] = socket.if_indextoname(ifindex)
        except OSError:
            return str(ifindex)  # the device went away: the socket keeps its index
    return name


def scope_of(address: str, ifindex: int) -> Optional[int]:
    """The IPv6 scope id of ``address`` bound on ``ifindex``: the index when the address is
    link-local (``fe80::/10``) or interface- or link-local multicast (``ff01::``, ``ff02::``),
    else None: ``("fe80::1", 2)`` → ``2``, ``("::1", 2)`` → ``None``."""
    head = address.split(":", 1)[0]
    if ":" not in address or not head:
        return None
    first = int(head, 16)
    return ifindex if (first & 0xFFC0) == 0xFE80 or (first & 0xFF0F) in (0xFF01, 0xFF02) else None


def ipv4_of(address: str) -> Optional[str]:
    """The IPv4 address ``address`` reaches: itself, or the one a v4-mapped IPv6 address
    carries; None for any other IPv6 address. ``"::ffff:127.0.0.1"`` → ``"127.0.0.1"``."""
    if ":" not in address:
        return address
    if address.lower().startswith(_MAPPED) and "." in address:
        return address[len(_MAPPED):]
    return None


def split_scope(address: str) -> Tuple[str, Optional[str]]:
    """``"fe80::1%lo"`` → ``("fe80::1", "lo")``; an address without a zone → ``(address, None)``."""
    plain, sep, zone = address.partition("%")
    return plain, zone if sep else None
