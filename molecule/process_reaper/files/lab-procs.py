"""Lab helper: the state of the planted stand-ins as JSON (read-only).

``python3 lab-procs.py 812 813`` →
``{"812": {"alive": true, "status": "sleeping", "name": "gpclient", "user": "root",
"ppid": 1, "create_time": 1795000000.5, "tun": false, "zombie_children": [815]},
"813": {"alive": false, "status": "gone"}}``
``alive`` is false for a pid that is gone or a zombie (``status`` tells which).
"""

from __future__ import annotations

import json
import os
import sys

import psutil


def state(pid: int) -> dict:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            fd_dir = f"/proc/{pid}/fd"
            links = []
            if status != psutil.STATUS_ZOMBIE:
                for fd in os.listdir(fd_dir):
                    try:
                        links.append(os.readlink(os.path.join(fd_dir, fd)))
                    except OSError:
                        continue
            return {
                "alive": status != psutil.STATUS_ZOMBIE,
                "status": status,
                "name": proc.name(),
                "user": proc.username(),
                "ppid": proc.ppid(),
                "create_time": proc.create_time(),
                "tun": "/dev/net/tun" in links,
                "zombie_children": [
                    c.pid for c in proc.children() if c.status() == psutil.STATUS_ZOMBIE
                ],
            }
    except psutil.NoSuchProcess:
        return {"alive": False, "status": "gone"}


if __name__ == "__main__":
    print(json.dumps({arg: state(int(arg)) for arg in sys.argv[1:]}, sort_keys=True))
