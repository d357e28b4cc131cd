#!/usr/bin/python3
"""A stand-in for the Portmaster 1.x core (not Portmaster): enough to replay safing/portmaster#1565.

At start it picks its update index the way Portmaster's updater does: beta.json
when core/releaseChannel is beta or staging, or when the channel is unset and
updates/beta.json exists; stable.json otherwise. While it runs the beta index,
the UI's authenticated API calls get 403 and the journal shows
"api: denying api access from 127.0.0.1:<port>", as with the 1.6.11 beta.
/api/v1/ping ("Pong.") and /api/v1/ready need no auth and always answer.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

DATA = sys.argv[1] if len(sys.argv) > 1 else "/opt/safing/portmaster"
UI_TOKEN_HEADER = "Authorization"


def loaded_index() -> str:
    with open(os.path.join(DATA, "config.json"), encoding="utf-8") as handle:
        channel = json.load(handle).get("core", {}).get("releaseChannel")
    beta_present = os.path.exists(os.path.join(DATA, "updates", "beta.json"))
    if channel in ("beta", "staging") or (channel is None and beta_present):
        return "beta"
    return "stable"


INDEX = loaded_index()


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/api/v1/ping":
            self.reply(200, "Pong.")
        elif self.path == "/api/v1/ready":
            self.reply(200, "ready")
        elif self.path == "/api/v1/index":
            self.reply(200, INDEX)
        elif not self.headers.get(UI_TOKEN_HEADER, "").startswith("Bearer "):
            self.reply(401, "missing api token")
        elif INDEX == "beta":
            # The beta driver cannot attribute loopback connections to the UI process.
            print(f"api: denying api access from {self.client_address[0]}:{self.client_address[1]}", flush=True)
            self.reply(403, "Forbidden")
        else:
            self.reply(200, json.dumps({"modules": "online", "index": INDEX}))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    server = HTTPServer(("127.0.0.1", 817), Handler)
    with open(os.path.join(DATA, "core-lock.pid"), "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    print(f"stand-in core: loaded updates/{INDEX}.json, API on 127.0.0.1:817", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
