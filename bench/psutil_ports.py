"""The psutil way to list listening ports with their owners, for bench/compare_ports.py.

Prints a JSON list: one ``{"proto", "address", "port", "pid", "name", "exe",
"user"}`` per listening TCP / unconnected UDP socket, owners mapped
with one ``psutil.Process`` per pid (cached), as a typical script would.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, List, Optional

import psutil


def owner(pid: Optional[int], cache: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
    if pid is None:
        return {}
    if pid not in cache:
        try:
            proc = psutil.Process(pid)
            cache[pid] = proc.as_dict(["name", "exe", "username"], ad_value=None)
        except psutil.NoSuchProcess:
            cache[pid] = {}
    return cache[pid]


def main() -> None:
    rows: List[Dict[str, Any]] = []
    cache: Dict[int, Dict[str, Any]] = {}
    for conn in psutil.net_connections(kind="inet"):
        tcp = conn.type == socket.SOCK_STREAM
        listening = conn.status == psutil.CONN_LISTEN if tcp else not conn.raddr
        if not conn.laddr or not listening:
            continue
        rows.append(
            {
                "proto": "tcp" if tcp else "udp",
                "address": conn.laddr.ip,
                "port": conn.laddr.port,
                "pid": conn.pid,
                **owner(conn.pid, cache),
            }
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
