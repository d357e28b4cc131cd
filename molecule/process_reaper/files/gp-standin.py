"""Lab stand-in for a GlobalProtect 2.x process (gpclient, gpservice, gpgui, gpauth ...).

Not the real program: run it through a copy of the python3 binary named like the real
one so the kernel's process name (comm), exe and argv[0] read like the real thing
(INCIDENTS.md §4)::

    cp /usr/bin/python3 /usr/bin/gpclient
    /usr/bin/gpclient gp-standin.py --ignore SIGINT,SIGTERM --daemonize

Once set up it prints its pid on stdout (with --daemonize: its parent prints it and
exits) and closes stdout, so a caller can read the pid and return. Behaviours: ignore
signals, hold /dev/net/tun open (an active tunnel), keep an unreaped child (a zombie),
reap children only from the Nth SIGCHLD on, write a lock file (``PID`` or ``PID:PORT``),
detach so it is re-parented (an orphan). It exits by itself after --max-life seconds so
a failed test leaves nothing behind for long.
Used by molecule/process_reaper and agent/tests/test_module_reaper.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def wait_zombie(pid: int, timeout: float = 10.0) -> None:
    """Block until ``pid`` (our child) is a zombie: state Z in /proc/PID/stat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            if fh.read().rpartition(")")[2].split()[0] == "Z":
                return
        time.sleep(0.01)
    sys.exit(f"child {pid} did not exit")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ignore", default="", help="comma-separated signals to ignore")
    parser.add_argument("--tun", action="store_true", help="hold /dev/net/tun open")
    parser.add_argument("--zombie", metavar="EXE", help="leave an unreaped child exec'd as EXE")
    parser.add_argument(
        "--reap-after",
        type=int,
        default=0,
        metavar="N",
        help="reap children from the Nth SIGCHLD on (0: never)",
    )
    parser.add_argument("--lock", metavar="PATH", help="write our pid to this lock file")
    parser.add_argument("--lock-port", type=int, help="write PID:PORT instead of PID")
    parser.add_argument("--daemonize", action="store_true", help="detach: become an orphan")
    parser.add_argument("--max-life", type=float, default=900, help="exit after this many s")
    parser.add_argument("tag", nargs="?", help="free text that shows in the command line")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ready = None
    if args.daemonize:
        # The first process reports the pid only once we are set up, then exits so the
        # kernel re-parents us; callers (Ansible's command module) stop reading at its exit.
        ready_r, ready = os.pipe()
        if os.fork() > 0:
            os.close(ready)
            line = os.read(ready_r, 64).decode()
            print(line, end="", flush=True)
            os._exit(0 if line else 1)
        os.close(ready_r)
        os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # die on SIGINT like a C program, no traceback
    for name in filter(None, args.ignore.split(",")):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    held = []
    if args.tun:
        held.append(os.open("/dev/net/tun", os.O_RDWR))  # no TUNSETIFF: no interface is made
    if args.reap_after:
        seen = [0]

        def on_sigchld(_signum: int, _frame: object) -> None:
            seen[0] += 1
            if seen[0] >= args.reap_after:
                try:
                    while os.waitpid(-1, os.WNOHANG)[0] > 0:
                        pass
                except ChildProcessError:
                    pass

        signal.signal(signal.SIGCHLD, on_sigchld)
    if args.zombie:
        child = os.fork()
        if child == 0:
            os.execv(args.zombie, [args.zombie, "-c", "pass"])
        wait_zombie(child)
    if args.lock:
        text = f"{os.getpid()}:{args.lock_port}" if args.lock_port else str(os.getpid())
        with open(args.lock, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if ready is None:
        print(os.getpid(), flush=True)
    else:
        os.write(ready, f"{os.getpid()}\n".encode())
        os.close(ready)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    deadline = time.monotonic() + args.max_life
    while time.monotonic() < deadline:
        time.sleep(min(1.0, deadline - time.monotonic()))


if __name__ == "__main__":
    main()
