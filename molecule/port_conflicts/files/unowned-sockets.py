#!/usr/bin/python3
"""netmedic lab fixture (no real program): TCP listeners no process holds.

Each listener's only file descriptor is sent over a socketpair (SCM_RIGHTS) that is
never read, then closed: the kernel keeps the socket listening, but no /proc/PID/fd
points at it, so the agent (like `ss -p`) reports it with `owner: null` and the
reason "no process in this pid namespace holds the socket". Listens on
127.0.0.2:18110 (next to lab-named-hog on 127.0.0.1:18110) and 127.0.0.1:18111.
"""

import array
import signal
import socket
import sys

LISTENERS = [("127.0.0.2", 18110), ("127.0.0.1", 18111)]


def main():
    keep, _unread = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for address in LISTENERS:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(4)
        fds = array.array("i", [listener.fileno()])
        keep.sendmsg([b"fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        listener.close()
    print(f"unowned sockets: listening on {LISTENERS}, held by no process", flush=True)
    signal.pause()


if __name__ == "__main__":
    sys.exit(main())
