#!/usr/bin/python3
"""A named stand-in for the Portmaster 1.x core (NOT Portmaster): replays safing/portmaster#1565.

No Portmaster package is reachable here, so this plays the parts of portmaster-start
and the core that the incident touches, as upstream's code does them (v1.6.11 and
portbase v0.19.5; /work/notes/research-19.md section 1):

- Launcher (cmds/portmaster-start, SetIndexes with channel ""): the core version
  comes from updates/beta.json when core/releaseChannel is beta or staging, or when
  it is unset and beta.json exists; from updates/stable.json otherwise.
- Core (SetIndexes with the channel, default stable): a core not on beta/staging
  deletes beta.json and its .sig itself at start.
- API on 127.0.0.1:817: /api/v1/ping ("Pong.") and /api/v1/ready ("Portmaster is
  ready.") need no auth and answer 425 while the modules start; /api/database/v1
  (the UI's websocket, PermitAdmin) authenticates the calling process by its
  loopback connection (/proc/net/tcp → socket inode → pid → exe, up to two parents)
  against the trusted root <data>/updates/:
  * trusted: past auth; a plain GET then fails the websocket upgrade (400);
  * identified but elsewhere (any other program, netmedic included): 403 "The
    requesting process is not authorized ... Checked process paths: ...";
  * core 1.6.11, the beta whose driver could not attribute loopback connections:
    5 tries 500 ms apart, each logging "filter: denying api access: failed to
    identify process", then "api: denying api access from <addr>" and 403
    "Failed to identify the requesting process. Reload to try again.".
- Log lines on stdout (the journal of portmaster.service) in portbase's format,
  with its colour codes: "<YYMMDD HH:MM:SS.mmm> <file>:<line> ▶ WARN <n> <msg>".
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = sys.argv[1] if len(sys.argv) > 1 else "/opt/safing/portmaster"
UPDATES = os.path.join(DATA, "updates")
TRUSTED_ROOT = os.path.realpath(UPDATES) + os.sep
CORE = "linux_amd64/core/portmaster-core"
BROKEN_CORES = {"1.6.11"}  # the #1565 beta: loopback callers cannot be attributed
STARTING_S = 1.0  # ping/ready answer 425 this long after start
API = ("127.0.0.1", 817)
COLOURS = {"INFO": "\033[34m", "WARN": "\033[33m"}
_counter = [0]
_log_lock = threading.Lock()

UNIDENTIFIED = "Failed to identify the requesting process. Reload to try again."
UNAUTHORIZED = """The requesting process is not authorized to access the Portmaster API.
Checked process paths:
{paths}

The authorized root path is {root}.
You can enable the Development Mode to disable API authentication for development purposes.
For production use please create an API key in the settings."""
NO_UPGRADE = (
    "could not upgrade: websocket: the client is not using the websocket protocol: "
    "'upgrade' token not found in 'Connection' header"
)
NOT_READY = "portmaster is not ready, reload (F5) to try again"


def log(level: str, source: str, line: int, msg: str) -> None:
    """portbase log/formatting.go: the last 10 characters of the source file, no .go."""
    with _log_lock:
        _counter[0] = _counter[0] % 999 + 1
        now = time.time()
        stamp = time.strftime("%y%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        print(f"{COLOURS[level]}{stamp} {source[-10:]}:{line:03d} \u25b6 {level} {_counter[0]:03d}"
              f"\033[0m {msg}", flush=True)


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def channel_setting() -> "str | None":
    config = read_json(os.path.join(DATA, "config.json"))
    if "core/releaseChannel" in config:  # portbase also accepts the flat key on load
        return config["core/releaseChannel"]
    return config.get("core", {}).get("releaseChannel")


def start() -> str:
    """The launcher's pick of the core version, then the core's index clean-up."""
    channel = channel_setting()
    beta = os.path.join(UPDATES, "beta.json")
    use_beta = channel in ("beta", "staging") or (channel is None and os.path.exists(beta))
    version = read_json(beta if use_beta else os.path.join(UPDATES, "stable.json"))["Releases"][CORE]
    if (channel or "stable") not in ("beta", "staging"):
        for path in (beta, beta + ".sig"):
            if os.path.exists(path):
                os.remove(path)
                log("INFO", "updates/helper/indexes", 130, f"updates: removed unused index {path}")
    return version


def socket_inode(client: "tuple[str, int]") -> "str | None":
    """The inode of the caller's end of the loopback connection, from /proc/net/tcp."""
    local = "0100007F:%04X" % client[1]  # 127.0.0.1, little-endian hex as the kernel prints it
    remote = "0100007F:%04X" % API[1]
    with open("/proc/net/tcp", encoding="ascii") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == local and fields[2] == remote:
                return fields[9]
    return None


def pid_of(inode: str) -> "int | None":
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue  # gone, or a kernel thread
    return None


def process_chain(pid: int) -> "list[tuple[int, str]]":
    """(pid, exe) of the caller and up to two parents, as the core checks them."""
    chain = []
    for _ in range(3):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        chain.append((pid, exe))
        if ppid in (0, pid):
            break
        pid = ppid
    return chain


class Core(BaseHTTPRequestHandler):
    version = "?"
    started = time.monotonic()

    def reply(self, status: int, body: str) -> None:
        """Go's http.Error: text/plain, nosniff, the message and a newline."""
        data = (body + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        starting = time.monotonic() - self.started < STARTING_S
        if self.path in ("/api/v1/ping", "/api/v1/ready"):
            if starting:
                self.reply(425, NOT_READY)
            else:
                self.reply(200, "Pong." if self.path.endswith("ping") else "Portmaster is ready.")
        elif self.path == "/api/database/v1":
            denied = self.authenticate()
            if denied:
                log("WARN", "portbase/api/authentication", 291,
                    "api: denying api access from %s:%d" % self.client_address)
                self.reply(403, denied)
            else:
                self.reply(400, NO_UPGRADE)
        else:
            self.reply(404, "404 page not found")

    def authenticate(self) -> "str | None":
        """None when the caller is trusted, else the 403 body (service/firewall/api.go)."""
        for _ in range(5):
            chain = [] if self.version in BROKEN_CORES else self.identify()
            if chain:
                break
            log("WARN", "service/firewall/api", 210, "filter: denying api access: failed to identify process")
            time.sleep(0.5)
        else:
            return UNIDENTIFIED
        paths = [exe for _, exe in chain]
        if any(os.path.realpath(exe).startswith(TRUSTED_ROOT) for exe in paths):
            return None
        log("WARN", "service/firewall/api", 218,
            f"filter: denying api access to {paths[0]} - also checked {' '.join(paths[1:])} "
            f"(trusted root is {DATA})")
        return UNAUTHORIZED.format(paths="\n".join(paths), root=TRUSTED_ROOT)

    def identify(self) -> "list[tuple[int, str]]":
        inode = socket_inode(self.client_address)
        pid = pid_of(inode) if inode else None
        return process_chain(pid) if pid else []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    Core.version = start()
    server = ThreadingHTTPServer(API, Core)
    with open(os.path.join(DATA, "core-lock.pid"), "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    log("INFO", "portmaster/service/core", 77, f"core: started stand-in core {Core.version}, API on 127.0.0.1:817")
    server.serve_forever()


if __name__ == "__main__":
    main()
