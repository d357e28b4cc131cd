"""Loopback load for the ``ports`` benchmark: many listeners, many processes, TIME_WAIT.

``with LoadGen(PRESETS["medium"]) as load: ...`` forks worker processes that
bind TCP listeners and UDP sockets on 127.0.0.0/8 and ::1 (never a wildcard
address, never another interface), some shared with a forked sibling (the
prefork-server case: one socket, two pids). ``load.fill_time_wait(20000)``
starts a child that keeps that many TIME_WAIT sockets alive by
connect + accept + close (the client closes first, so the client side enters
TIME_WAIT), spread over several 127.0.0.x destinations so no 4-tuple space
runs out. Everything is killed on exit, on SIGTERM/SIGINT, and (PDEATHSIG)
if this process dies.

Keeping 60,000 TIME_WAIT sockets means ~1,000 new connections a second, in
bursts, on the same two CPUs as whatever is being timed. ``load.top_up()``
lets the keeper refill to its target and then stops it (SIGSTOP) until the
next ``top_up()``: a benchmark calls it before each sample, so the sample runs
against the full TIME_WAIT table without the keeper's churn beside it.

Command line: ``python bench/loadgen.py --preset medium --time-wait`` holds the
load until Ctrl-C and prints what it created.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import resource
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Dict, Iterator, List, Optional, Tuple, Type

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
LISTEN_ADDRESSES = ("127.0.0.1", "::1", "127.0.0.2", "127.0.1.1")
TIME_WAIT_PORT = 19990
TIME_WAIT_PER_DESTINATION = 8000  # well under the 28k ephemeral ports per 4-tuple space
SHARED_EVERY = 10  # every 10th worker forks a sibling that holds the same sockets


@dataclass(frozen=True)
class Preset:
    """How much load: listeners, processes holding them, TIME_WAIT sockets."""

    tcp: int
    udp: int
    processes: int
    time_wait: int


PRESETS: Dict[str, Preset] = {
    "small": Preset(tcp=50, udp=20, processes=20, time_wait=2000),
    "medium": Preset(tcp=500, udp=200, processes=200, time_wait=20000),
    "large": Preset(tcp=2000, udp=500, processes=500, time_wait=60000),
}


@dataclass
class BoundSocket:
    """One socket the load created and every pid that holds it."""

    proto: str
    address: str
    port: int
    pids: List[int] = field(default_factory=list)


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)


def _set_name(name: str) -> None:
    """comm as ``ss -p`` and /proc/PID/stat show it (15 bytes max)."""
    buffer = ctypes.create_string_buffer(name.encode()[:15])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, buffer, 0, 0, 0)


def _child_setup(name: str) -> None:
    """In a fresh child: die with the parent, own a process group, default signals."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    _set_name(name)


def raise_nofile(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, limit), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tw_count() -> int:
    """TIME_WAIT sockets in this network namespace: ``tw`` in /proc/net/sockstat."""
    with open("/proc/net/sockstat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("tw") + 1])
    return 0


def _bind(proto: str, address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.bind((address, port))
    if proto == "tcp":
        sock.listen(16)
    return sock


def _worker(index: int, plan: List[Tuple[str, str, int]], report: int) -> None:
    """Child body: bind ``plan``, report each socket, maybe fork a sibling, sleep forever."""
    _child_setup(f"nm-load-{index}")
    os.setpgid(0, 0)
    held = []
    lines = []
    failed = 0
    for proto, address, port in plan:
        try:
            held.append(_bind(proto, address, port))
        except OSError:
            failed += 1  # port taken by something else: counted, reported, skipped
            continue
        lines.append({"proto": proto, "address": address, "port": port})
    pids = [os.getpid()]
    if index % SHARED_EVERY == 0:
        sibling = os.fork()
        if sibling == 0:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # not inherited across fork
            _set_name(f"nm-load-{index}s")
            os.close(report)
            signal.pause()
            os._exit(0)
        pids.append(sibling)
    for line in lines:
        os.write(report, (json.dumps({**line, "pids": pids}) + "\n").encode())
    os.write(report, (json.dumps({"done": 1, "failed": failed}) + "\n").encode())
    os.close(report)
    signal.signal(signal.SIGTERM, lambda *_: _stop_worker(pids[1:]))
    while True:
        signal.pause()


def _stop_worker(siblings: List[int]) -> None:
    for pid in siblings:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    os._exit(0)


def _time_wait_keeper(target: int) -> None:
    """Child body: keep ``target`` TIME_WAIT sockets alive (each lives 60 s)."""
    _child_setup("nm-load-tw")
    destinations = max(1, -(-target // TIME_WAIT_PER_DESTINATION))
    listeners = [_bind("tcp", f"127.0.0.{10 + k}", TIME_WAIT_PORT) for k in range(destinations)]
    for listener in listeners:
        listener.listen(512)
    # SIGUSR1 (top_up) ends the idle wait at once; fill_time_wait forks this child
    # with it blocked, so it is only ever waited for, never a kill.
    turn = 0
    while True:
        missing = target - tw_count()
        if missing <= 0:
            signal.sigtimedwait({signal.SIGUSR1}, 0.5)
            continue
        for _ in range(min(missing, 5000)):  # bounded batch, then re-read the count
            listener = listeners[turn % destinations]
            turn += 1
            _one_time_wait(listener)


def _one_time_wait(listener: socket.socket) -> None:
    """connect, accept, close client first: the client socket enters TIME_WAIT."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(listener.getsockname())
    except OSError as exc:
        client.close()
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
            time.sleep(0.01)  # this destination's ports are spent; another turn will do
            return
        raise
    server, _ = listener.accept()
    client.close()
    server.close()


class LoadGen:
    """Start the load on ``__enter__``, remove every process on ``__exit__``."""

    def __init__(self, preset: Preset, port_base: int = 20000) -> None:
        self.preset = preset
        self.port_base = port_base
        self.sockets: List[BoundSocket] = []
        self.workers: List[int] = []
        self.failed = 0  # planned sockets whose bind failed (port already taken)
        self._keeper: Optional[int] = None
        self._keeper_target = 0
        self._old_handlers: Dict[int, object] = {}

    def __enter__(self) -> LoadGen:
        raise_nofile(4096)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, _raise_exit)
        try:
            self._start_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def plan(self) -> List[List[Tuple[str, str, int]]]:
        """Sockets per worker: listener i goes to worker i mod processes."""
        per_worker: List[List[Tuple[str, str, int]]] = [[] for _ in range(self.preset.processes)]
        specs = [("tcp", i) for i in range(self.preset.tcp)]
        specs += [("udp", i) for i in range(self.preset.udp)]
        for n, (proto, i) in enumerate(specs):
            address = LISTEN_ADDRESSES[i % len(LISTEN_ADDRESSES)]
            per_worker[n % self.preset.processes].append((proto, address, self.port_base + i))
        return per_worker

    def _start_workers(self) -> None:
        read_end, write_end = os.pipe()
        for index, plan in enumerate(self.plan()):
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                try:
                    _worker(index, plan, write_end)
                finally:
                    os._exit(1)
            self.workers.append(pid)
        os.close(write_end)
        self._read_reports(read_end)

    def _read_reports(self, read_end: int) -> None:
        done = 0
        with os.fdopen(read_end, encoding="utf-8") as reports:
            for line in reports:
                record = json.loads(line)
                if "done" in record:
                    done += 1
                    self.failed += record["failed"]
                    if done == len(self.workers):
                        break  # do not wait for EOF: a stray inherited write end would hang us
                    continue
                self.sockets.append(BoundSocket(**record))
        if done != len(self.workers):
            raise RuntimeError(f"only {done} of {len(self.workers)} load workers started")

    def fill_time_wait(self, target: int, timeout: float = 60.0) -> int:
        """Start the TIME_WAIT keeper and wait until the count reaches ~``target``."""
        self.stop_time_wait()
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    _time_wait_keeper(target)
                finally:
                    os._exit(1)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)  # the child keeps it blocked
        self._keeper, self._keeper_target = pid, target
        deadline = time.monotonic() + timeout
        while tw_count() < target * 0.98 and time.monotonic() < deadline:
            time.sleep(0.2)
        return tw_count()

    def top_up(self, timeout: float = 5.0) -> int:
        """Let the keeper refill to its target, then stop it; the TIME_WAIT count then.

        The count then only falls, by the sockets that expire (~1,000 a second
        at 60,000), until the next call. Below the target if the keeper could
        not reach it within ``timeout``. Without a keeper, just the count.
        """
        if self._keeper is None:
            return tw_count()
        os.kill(self._keeper, signal.SIGCONT)
        os.kill(self._keeper, signal.SIGUSR1)  # wake it from its idle wait
        deadline = time.monotonic() + timeout
        while tw_count() < self._keeper_target and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(self._keeper, signal.SIGSTOP)
        # The signal is only queued: wait until the keeper has stopped (it may be on
        # the other CPU, mid-connection), so that the sample starts without it.
        _pid, status = os.waitpid(self._keeper, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            self._keeper = None
            raise RuntimeError(f"the TIME_WAIT keeper ended (wait status {status})")
        return tw_count()  # read once it has stopped: what the next sample starts with

    def stop_time_wait(self) -> None:
        """Stop topping up; the existing TIME_WAIT sockets expire within 60 s."""
        if self._keeper is not None:
            _kill_and_reap(self._keeper, group=False)  # SIGKILL ends a stopped process too
            self._keeper = None

    def close(self) -> None:
        self.stop_time_wait()
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        for pid in self.workers:
            _reap(pid, timeout=5.0, group=True)
        self.workers = []
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._old_handlers = {}

    def summary(self) -> Dict[str, object]:
        pids = {pid for s in self.sockets for pid in s.pids}
        return {
            "tcp": sum(s.proto == "tcp" for s in self.sockets),
            "udp": sum(s.proto == "udp" for s in self.sockets),
            "processes": len(pids),
            "failed_binds": self.failed,
            "time_wait": tw_count(),
        }


def _raise_exit(signum: int, frame: Optional[FrameType]) -> None:
    raise SystemExit(128 + signum)


def _kill_and_reap(pid: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)
    _reap(pid, timeout=5.0, group=group)


def _reap(pid: int, timeout: float, group: bool) -> None:
    """waitpid with a deadline, then SIGKILL (the whole group for workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def loaded(preset_name: str, time_wait: bool = True) -> Iterator[LoadGen]:
    """``with loaded("medium") as load:`` — listeners plus the preset's TIME_WAIT."""
    with LoadGen(PRESETS[preset_name]) as load:
        if time_wait:
            load.fill_time_wait(load.preset.time_wait)
        yield load


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--time-wait", action="store_true", help="also keep TIME_WAIT sockets")
    parser.add_argument("--hold", type=float, default=None, help="seconds (default: until ^C)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with loaded(args.preset, time_wait=args.time_wait) as load:
        summary = {**load.summary(), "seconds_to_start": round(time.monotonic() - started, 2)}
        print(json.dumps(summary), flush=True)
        deadline = None if args.hold is None else time.monotonic() + args.hold
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
