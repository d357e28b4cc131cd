"""fdtables: sockets held only in a thread's own fd table keep their owner, and a socket
without a holder says why, per socket. Real processes and sockets (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
from conftest import as_nobody

from netmedic import fdtables, netlink
from netmedic.collectors import ports
from netmedic.context import Context

# A process whose socket lives only in one thread's fd table: "unshare" has the thread
# call unshare(CLONE_FILES) first; "leader-exit" has the main thread exit (pthread_exit)
# while the thread runs on, so /proc/PID/fd lists nothing.
THREADED = textwrap.dedent(
    """
    import ctypes, os, socket, sys, threading
    libc = ctypes.CDLL(None, use_errno=True)
    ready = threading.Event()

    def worker():
        if sys.argv[1] == "unshare" and libc.unshare(0x400) != 0:  # CLONE_FILES
            raise OSError(ctypes.get_errno(), "unshare")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        print(sock.getsockname()[1], os.fstat(sock.fileno()).st_ino, sock.fileno(), flush=True)
        ready.set()
        sys.stdin.read()  # until the test closes stdin
        os._exit(0)

    threading.Thread(target=worker).start()
    ready.wait()
    if sys.argv[1] == "leader-exit":
        libc.pthread_exit(None)
    threading.Event().wait()
    """
)


@pytest.fixture(params=["unshare", "leader-exit"])
def threaded(
    request: pytest.FixtureRequest,
) -> Iterator[Tuple[subprocess.Popen[str], int, int, int]]:
    """(process, port, socket inode, fd) of a socket only a thread's own fd table holds."""
    child = subprocess.Popen(
        [sys.executable, "-c", THREADED, request.param],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    port, inode, fd = (int(word) for word in child.stdout.readline().split())
    if request.param == "leader-exit":  # wait for the main thread to be gone
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{child.pid}/status").read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the main thread did not exit"
            time.sleep(0.01)
    yield child, port, inode, fd
    child.stdin.close()
    child.wait(timeout=10)


def test_the_process_fd_table_does_not_show_the_threads_socket(
    threaded: Tuple[subprocess.Popen[str], int, int, int],
) -> None:
    """The case itself: what ``ss -p`` reads (``/proc/PID/fd``) lacks the socket."""
    child, _, inode, _ = threaded
    table = f"/proc/{child.pid}/fd"
    links = [os.readlink(f"{table}/{fd}") for fd in os.listdir(table)]
    assert f"socket:[{inode}]" not in links


def test_a_socket_in_a_threads_own_fd_table_has_its_process_as_owner(
    threaded: Tuple[subprocess.Popen[str], int, int, int],
) -> None:
    child, port, inode, fd = threaded
    assert fdtables.scan_socket_holders(Context(), [inode]).holders[inode] == [(child.pid, fd)]
    (entry,) = [s for s in ports.collect(Context())["sockets"] if s["inode"] == inode]
    assert (entry["port"], entry["owner"]["pid"], entry["owner_reason"]) == (port, child.pid, None)
    assert entry["owner"]["name"].startswith("python")


def test_a_socket_closed_during_the_scan_says_so() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    inode = os.fstat(sock.fileno()).st_ino
    (diag,) = [s for s in netlink.bound_sockets() if s.inode == inode]
    sock.close()  # its holder closed it between the dump and the /proc pass
    (entry,) = ports.join_owners(Context(), [diag], netlink.bound_sockets)
    assert (entry["owner"], entry["owner_reason"]) == (None, fdtables.SOCKET_CLOSED)


def test_an_unprivileged_reader_is_told_which_tables_were_denied(
    threaded: Tuple[subprocess.Popen[str], int, int, int],
) -> None:
    """As nobody, a root socket's reason names the denied tables of the socket's uid (0)."""
    _, _, inode, _ = threaded

    def work() -> Dict[str, Any]:
        return next(s for s in ports.collect(Context())["sockets"] if s["inode"] == inode)

    entry = as_nobody(work)
    assert entry["owner"] is None
    assert entry["owner_reason"].startswith("permission denied reading the fd tables of ")
    assert entry["owner_reason"].endswith(" as the socket's uid 0)")


@pytest.mark.parametrize(
    ("uid", "denied", "still_open", "reason"),
    [
        (0, [], False, fdtables.SOCKET_CLOSED),
        (0, [1], False, fdtables.SOCKET_CLOSED),
        (0, [], True, fdtables.NO_HOLDER),
        (0, [1], True, "permission denied reading /proc/1/fd"),
        (115, [1, 812], True, "permission denied reading the fd tables of 2 processes "
                              "(pid 812 runs as the socket's uid 115)"),
        (33, [1, 812], True, "permission denied reading the fd tables of 2 processes (first: 1)"),
        (None, [1, 812], True, "permission denied reading the fd tables of 2 processes (first: 1)"),
    ],
)  # fmt: skip
def test_unheld_reason(uid: Any, denied: Any, still_open: bool, reason: str) -> None:
    uids = {1: 0, 812: 115}  # what /proc/PID's owner says, cached
    assert fdtables.unheld_reason(Context(), uid, denied, still_open, uids) == reason
