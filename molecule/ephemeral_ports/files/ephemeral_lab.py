#!/usr/bin/env python3
"""netmedic lab: outgoing TCP connections on loopback only, bounded in count and time,
and a stand-in for Trippy's TCP probes (no Debian package ships Trippy).

usage: ephemeral_lab.py clients --port P [--rate R] [--seconds S]
       ephemeral_lab.py connect --port P
       ephemeral_lab.py trace --initial I --per-round N --rounds R [--dest-port D]
       ephemeral_lab.py churn --port P --probe Q [--probe-count K] [--count N] [--seconds S]
       ephemeral_lab.py hold --port P --from-port F --count N --seconds S --ready FILE
       ephemeral_lab.py on-change --watch FILE --sha SHA [--seconds S] -- COMMAND...

  clients  a busy client: listen on 127.0.0.1:P and connect+close to it R times a second
           for S seconds or until SIGTERM (systemctl stop). The client closes first, so
           each connection leaves a TIME_WAIT on its automatically chosen source port:
           with a narrow range and tcp_tw_reuse=0 they hold every port of the range.
  connect  one automatic connect to 127.0.0.1:P: prints its errno (99, EADDRNOTAVAIL,
           once the range is used up).
  trace    Trippy's TCP mode as it binds (trippy-core, 0.11.0): each probe's source
           port is its sequence number, from I, N per round, R rounds; each probe
           socket sets SO_REUSEPORT, binds 127.0.0.1:<sequence> and connects (non-
           blocking) to 127.0.0.1:D, where nothing listens. Counts the bind outcomes.
  churn    the clients loop for S seconds (at most N connections); every 25
           connections bind 127.0.0.1:Q..Q+K-1 as trace does, while the loop runs.
           Reports connect errors, probe binds, and the TCP sockets whose local port
           sits in the ephemeral range (pressure).
  hold     keep N established connections to 127.0.0.1:P open, their source ports
           bound from F upwards (ports a TIME_WAIT still holds are skipped), so a
           test knows where they sit; write the report to FILE once all are up, then
           hold them for S seconds or until SIGTERM (systemctl stop).
  on-change  another writer racing the role: wait until FILE's sha256 is no longer SHA
           (the role wrote it), then run COMMAND at once; exits with its status, or 1
           when FILE did not change within S seconds.
Prints one JSON object (hold: into FILE; clients, on-change: nothing). They exit 0
whatever they found: the playbook asserts.
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
    """Accept on 127.0.0.1:port; close each connection after the client did (its TIME_WAIT)."""
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


def bind_probe(port, dest_port=None):
    """Bind 127.0.0.1:port as Trippy's TCP probe socket does (SO_REUSEPORT, no
    SO_REUSEADDR), then connect without waiting when dest_port is given.
    Returns the bind's errno, or 0."""
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(("127.0.0.1", port))
        if dest_port:
            probe.setblocking(False)
            probe.connect_ex(("127.0.0.1", dest_port))  # nothing listens: a RST, no TIME_WAIT
        return 0
    except OSError as exc:
        return exc.errno or -1
    finally:
        probe.close()


def count(report, err):
    name = errno.errorcode.get(err, "ok")
    report[name] = report.get(name, 0) + 1


def clients(args):
    """Connect+close args.rate times a second until args.seconds pass or SIGTERM."""
    server = listener(args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.seconds
    while not stop.is_set() and time.monotonic() < deadline:
        connect_once(args.port)
        stop.wait(1.0 / args.rate)
    server.close()


def trace(args):
    """Bind every sequence's source port in turn, round after round, as Trippy does."""
    report = {"mode": "trace", "binds": {}, "first_failure": None}
    sequence = args.initial
    for _ in range(args.rounds):
        for _ in range(args.per_round):
            err = bind_probe(sequence, args.dest_port)
            count(report["binds"], err)
            if err and report["first_failure"] is None:
                name = errno.errorcode.get(err)
                report["first_failure"] = {"port": sequence, "errno": err, "name": name}
            sequence += 1
    print(json.dumps(report, sort_keys=True))


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


def churn(args):
    """Short connections while the probe ports are bound now and then; one JSON report."""
    server = listener(args.port)
    deadline = time.monotonic() + args.seconds
    report = {"mode": args.mode, "connections": 0, "errors": {}, "probe_binds": {}}
    while report["connections"] < args.count and time.monotonic() < deadline:
        err = connect_once(args.port)
        if err:
            count(report["errors"], err)
        else:
            report["connections"] += 1
        if report["connections"] % 25 == 0:
            for port in range(args.probe, args.probe + args.probe_count):
                count(report["probe_binds"], bind_probe(port))
    report["range"] = sockets_in_range()
    server.close()
    print(json.dumps(report, sort_keys=True))


def main():
    parser = argparse.ArgumentParser()
    modes = ["clients", "connect", "trace", "churn", "hold", "on-change"]
    parser.add_argument("mode", choices=modes)
    parser.add_argument("--port", type=int, help="clients, connect, churn, hold: the listener")
    parser.add_argument("--rate", type=float, default=100.0, help="clients: connections a second")
    parser.add_argument("--initial", type=int, default=33434, help="trace: the first sequence")
    parser.add_argument("--per-round", type=int, default=8, help="trace: probes per round")
    parser.add_argument("--rounds", type=int, default=1, help="trace: rounds")
    parser.add_argument("--dest-port", type=int, default=18299, help="trace: where probes go")
    parser.add_argument("--probe", type=int, help="churn: the first probe port to bind")
    parser.add_argument("--probe-count", type=int, default=1, help="churn: probe ports to bind")
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
    if args.mode == "trace":
        trace(args)
        return
    if args.port is None:
        parser.error(f"{args.mode} needs --port")
    if args.mode == "clients":
        clients(args)
        return
    if args.mode == "connect":
        err = connect_once(args.port)
        print(json.dumps({"mode": "connect", "errno": err, "name": errno.errorcode.get(err, "ok")}))
        return
    if args.mode == "hold":
        if args.from_port is None or args.ready is None:
            parser.error("hold needs --from-port and --ready")
        hold(args)
        return
    if args.probe is None:
        parser.error(f"{args.mode} needs --probe")
    churn(args)


if __name__ == "__main__":
    main()
