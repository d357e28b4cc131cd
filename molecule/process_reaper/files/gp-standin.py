"""Lab stand-in for a GlobalProtect 2.x process (gpclient, gpservice, gpgui, gpauth ...).

Not the real program: run it through a copy of the python3 binary named like the real
one so the kernel's process name (comm), exe and argv[0] read like the real thing
(INCIDENTS.md §4)::

    cp /usr/bin/python3 /usr/bin/gpclient
    /usr/bin/gpclient gp-standin.py --ignore SIGINT,SIGTERM --daemonize

Once set up it prints its process tree as JSON on stdout, ``{"pid": 812, "children":
[...]}`` (with --daemonize: its parent prints it and exits) and closes stdout, so a
caller can read it and return. Behaviours: ignore signals, hold /dev/net/tun open (an
active tunnel) or own a real tun device and run the real vpnc-script on it as an
openconnect-based client does (``--vpnc``), keep an unreaped child (a zombie), write a
lock file (``PID`` or ``PID:PORT``), detach so it is re-parented (an orphan), start
children as other users (``--children``: GlobalProtect 2.x's GUI tree, the desktop
user's ``gpclient launch-gui`` → root ``gpservice`` → the user's ``gpgui``) and run as
another user itself (``--user``). It exits by itself after --max-life seconds so a
failed test leaves nothing behind for long.
Used by molecule/process_reaper and agent/tests/test_module_reaper.py.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import pwd
import signal
import struct
import subprocess
import sys
import time
from typing import Any, Dict, List

TUNSETIFF = 0x400454CA  # linux/if_tun.h
IFF_TUN_NO_PI = 0x0001 | 0x1000
PR_SET_DUMPABLE = 4


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
    parser.add_argument("--user", help="run as this user once the children are started")
    parser.add_argument("--children", default="[]", help="JSON: [{exe, user, flags, children}]")
    parser.add_argument("--tun-device", metavar="NAME", help="own tun device NAME (TUNSETIFF)")
    parser.add_argument("--vpnc", metavar="JSON", help="run vpnc-script connect: {script, env}")
    parser.add_argument("--max-life", type=float, default=900, help="exit after this many s")
    parser.add_argument("tag", nargs="?", help="free text that shows in the command line")
    return parser.parse_args()


def become(user: str) -> None:
    """Drop to ``user`` for good; /proc/PID stays readable as that user's (dumpable)."""
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def spawn(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Start one child (this script under another program, maybe another user); its tree."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.dup2(write_end, 1)
        if spec.get("user"):
            become(spec["user"])
        argv = [spec["exe"], os.path.abspath(__file__), *spec.get("flags", [])]
        os.execv(spec["exe"], [*argv, "--children", json.dumps(spec.get("children", []))])
    os.close(write_end)
    with os.fdopen(read_end) as tree:
        return json.loads(tree.readline() or "{}")


def own_tun(name: str, vpnc: str) -> List[int]:
    """Create tun ``name`` (gone with this process, as openconnect's); run vpnc-script on it."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN_NO_PI))
    if vpnc:
        config = json.loads(vpnc)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "reason": "connect", "TUNDEV": name,
               "VPNPID": str(os.getpid()), **config["env"]}  # fmt: skip
        subprocess.run([config["script"]], env=env, check=True, stdout=subprocess.DEVNULL)
    return [fd]


def main() -> None:
    args = parse_args()
    ready = None
    if args.daemonize:
        # The first process reports the pid only once we are set up, then exits so the
        # kernel re-parents us; callers (Ansible's command module) stop reading at its exit.
        ready_r, ready = os.pipe()
        if os.fork() > 0:
            os.close(ready)
            line = os.read(ready_r, 65536).decode()
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
    if args.tun_device:
        held += own_tun(args.tun_device, args.vpnc or "")
    children = json.loads(args.children)
    if children:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # a dead child is reaped, never a zombie
    tree = {"pid": os.getpid(), "children": [spawn(spec) for spec in children]}
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
    if args.user:
        become(args.user)
    if ready is None:
        print(json.dumps(tree), flush=True)
    else:
        os.write(ready, f"{json.dumps(tree)}\n".encode())
        os.close(ready)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    deadline = time.monotonic() + args.max_life
    while time.monotonic() < deadline:
        time.sleep(min(1.0, deadline - time.monotonic()))


if __name__ == "__main__":
    main()
