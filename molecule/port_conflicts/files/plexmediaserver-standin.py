#!/usr/bin/python3
"""Stand-in for Plex Media Server (not Plex): what matters for INCIDENTS §5.

Reads DlnaEnabled from Preferences.xml like Plex does at start. Always listens on
32400/tcp (the web app, so it "still runs" with DLNA off); with DLNA on it also
binds 0.0.0.0:1900/udp WITHOUT SO_REUSEADDR (SSDP) and 32469/tcp, which makes
every libupnp program (AirConnect, gmediarender) fail with UPNP_E_SOCKET_BIND (-203).
"""

import re
import selectors
import socket
import sys

PREFS = ("/var/lib/plexmediaserver/Library/Application Support/"
         "Plex Media Server/Preferences.xml")


def dlna_enabled(text):
    """'<Preferences DlnaEnabled="0" .../>' -> False; a missing attribute -> True (Plex's default)."""
    match = re.search(r'\bDlnaEnabled="([^"]*)"', text)
    return match is None or match.group(1) == "1"


def tcp_listener(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(16)
    return sock


def main():
    with open(PREFS, encoding="utf-8") as handle:
        dlna = dlna_enabled(handle.read())
    sockets = [tcp_listener(32400)]
    if dlna:
        ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # no SO_REUSEADDR: the bug
        ssdp.bind(("0.0.0.0", 1900))
        sockets += [ssdp, tcp_listener(32469)]
    print(f"plexmediaserver stand-in: DLNA {'on' if dlna else 'off'}", flush=True)
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock.type == socket.SOCK_STREAM:
                conn, _ = sock.accept()
                conn.close()
            else:
                sock.recvfrom(2048)


if __name__ == "__main__":
    sys.exit(main())
