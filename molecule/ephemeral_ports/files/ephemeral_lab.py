#!/usr/bin/env python3
"""netmedic lab: outgoing TCP connections on loopback only, bounded in count and time.

usage: ephemeral_lab.py exhaust|churn --port P --probe Q [--count N] [--seconds S]
       ephemeral_lab.py hold --port P --from-port F --count N --seconds S --ready FILE
       ephemeral_lab.py on-change --watch FILE --sha SHA [--seconds S] -- COMMAND...

  exhaust  connect+close to 127.0.0.1:P until connect() fails; with a narrow range
           and tcp_tw_reuse=0 the TIME_WAIT sockets use up the range (errno 99,
           EADDRNOTAVAIL). Then bind 127.0.0.1:Q, a port inside the range: a
           TIME_WAIT left by an outgoing connection holds it (errno 98, EADDRINUSE).
  churn    the same loop for S seconds; every 25 connections bind 127.0.0.1:Q while
           the loop runs. Reports connect errors, probe binds, and the TCP sockets
           whose local port sits in the ephemeral range (pressure).
  hold     keep N established connections to 127.0.0.1:P open, their source ports
           bound from F upwards (ports a TIME_WAIT still holds are skipped), so a
           test knows where they sit; write the report to FILE once all are up, then
           hold them for S seconds or until SIGTERM (systemctl stop).
  on-change  another writer racing the role: wait until FILE's sha256 is no longer SHA
           (the role wrote it), then run COMMAND at once; exits with its status, or 1
           when FILE did not change within S seconds.
Prints one JSON object (hold: into FILE; on-change: nothing). exhaust, churn and hold
exit 0 whatever they found: the playbook asserts.
"""

import argparse
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def listener(port):
    """Accept on 127.0.0.1:port; close each connection after the client did (client gets TIME_WAIT)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(512)

    def serve():
        while True:
            conn, _ = server.accept()
            try:
                conn.settimeout(2)
                while conn.recv(64):
                    pass
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def connect_once(port):
    """One short connection: connect, then close first. Returns the errno, or 0."""
    client = socket.socket()
    try:
        client.connect(("127.0.0.1", port))
        return 0
    except OSError as exc:
        return exc.errno or -1
    finally:
        client.close()


def bind_probe(port):
    """Bind 127.0.0.1:port without SO_REUSEADDR, as a tracer binding its probe port does."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
        return 0
    except OSError as exc:
        return exc.errno or -1
    finally:
        probe.close()


def read(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def sockets_in_range():
    """TCP sockets (v4+v6, any state) whose local port is inside ip_local_port_range."""
    low, high = (int(v) for v in read("/proc/sys/net/ipv4/ip_local_port_range").split())
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = read(table).splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            port = int(line.split()[1].rsplit(":", 1)[1], 16)
            count += low <= port <= high
    return {"low": low, "high": high, "size": high - low + 1, "sockets": count}


def hold(args):
    """Open args.count connections from source ports args.from_port.. and keep both ends."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(args.count + 16)
    clients, accepted, skipped = [], [], 0
    port = args.from_port
    while len(clients) < args.count and port <= 65535:
        client = socket.socket()
        try:
            client.bind(("127.0.0.1", port))
            client.connect(("127.0.0.1", args.port))
            clients.append(client)
        except OSError:
            client.close()
            skipped += 1
        port += 1
    for _ in clients:
        accepted.append(server.accept()[0])
    ports = [client.getsockname()[1] for client in clients]
    report = {"mode": "hold", "held": len(ports), "ports": ports, "skipped": skipped}
    with open(args.ready + ".tmp", "w", encoding="ascii") as handle:
        json.dump(report, handle, sort_keys=True)
    os.replace(args.ready + ".tmp", args.ready)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(args.seconds)
    for sock in clients + accepted + [server]:
        sock.close()


def on_change(args):
    """Poll args.watch every 20 ms; run args.command as soon as its content changed."""
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            with open(args.watch, "rb") as handle:
                current = hashlib.sha256(handle.read()).hexdigest()
        except FileNotFoundError:
            current = ""
        if current != args.sha:
            return subprocess.call(args.command)
        time.sleep(0.02)
    return 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["exhaust", "churn", "hold", "on-change"])
    parser.add_argument("--port", type=int, help="exhaust, churn, hold: the listener's port")
    parser.add_argument("--probe", type=int, help="exhaust, churn: the probe port to bind")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--from-port", type=int, help="hold: the first source port")
    parser.add_argument("--ready", help="hold: the report's path, written once all are up")
    parser.add_argument("--watch", help="on-change: the file to watch")
    parser.add_argument("--sha", help="on-change: its sha256 before the change")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]  # on-change: what to run
    if args.mode == "on-change":
        if not (args.watch and args.sha and args.command):
            parser.error("on-change needs --watch, --sha and a command after --")
        sys.exit(on_change(args))
    if args.port is None:
        parser.error(f"{args.mode} needs --port")
    if args.mode == "hold":
        if args.from_port is None or args.ready is None:
            parser.error("hold needs --from-port and --ready")
        hold(args)
        return
    if args.probe is None:
        parser.error(f"{args.mode} needs --probe")

    server = listener(args.port)
    deadline = time.monotonic() + args.seconds
    report = {"mode": args.mode, "connections": 0, "errors": {}, "probe_binds": {}}
    while report["connections"] < args.count and time.monotonic() < deadline:
        err = connect_once(args.port)
        if err:
            name = errno.errorcode.get(err, str(err))
            report["errors"][name] = report["errors"].get(name, 0) + 1
            if args.mode == "exhaust":
                report["first_error"] = {"errno": err, "name": name}
                break
        else:
            report["connections"] += 1
        if args.mode == "churn" and report["connections"] % 25 == 0:
            name = errno.errorcode.get(bind_probe(args.probe), "ok")
            report["probe_binds"][name] = report["probe_binds"].get(name, 0) + 1
    if args.mode == "exhaust":
        err = bind_probe(args.probe)
        report["probe_bind"] = {"errno": err, "name": errno.errorcode.get(err, "ok")}
    report["range"] = sockets_in_range()
    server.close()
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
