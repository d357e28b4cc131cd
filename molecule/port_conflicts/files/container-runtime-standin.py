#!/usr/bin/python3
"""Stand-in for dockerd running one container (not Docker): what the agent reads of one.

The lab containers cannot run Docker, so this plays the part dockerd has for
AirConnect in Docker (philippe44/AirConnect#549, host networking): started by
`systemd-run --scope --unit docker-<id>.scope` it puts the container's process in
the cgroup runc's systemd driver makes (`/system.slice/docker-<64 hex>.scope`,
moby daemon/oci_linux.go), and it keeps `<data-root>/containers/<id>/config.v2.json`
(`ID`, `Name` with its leading slash, `State`) and `hostconfig.json` as dockerd
writes them, restarting the command when it exits like `--restart unless-stopped`.

usage: container-runtime-standin.py ID NAME COMMAND [ARG...]
"""

import json
import os
import signal
import subprocess
import sys
import time

DATA_ROOT = "/var/lib/docker"
RESTART_DELAY = 2  # seconds; dockerd's first restart waits 100 ms, then doubles


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def write(path, data):
    """Whole-file replace (dockerd's ioutils.AtomicWriteFile), so a reader never sees half."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def main():
    cid, name, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    folder = os.path.join(DATA_ROOT, "containers", cid)
    os.makedirs(folder, mode=0o710, exist_ok=True)
    write(os.path.join(folder, "hostconfig.json"),
          {"NetworkMode": "host", "RestartPolicy": {"Name": "unless-stopped"}, "PortBindings": {}})
    config = {"ID": cid, "Name": "/" + name, "Path": command[0], "Args": command[1:],
              "Config": {"Image": "netmedic-lab/airconnect-standin"}, "State": {}}
    state = config["State"]
    stopping = []

    def stop(_signum, _frame):
        # Only signal here: the main loop is inside child.wait(), whose lock this must not take.
        stopping.append(True)
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        child = subprocess.Popen(command)
        state.update(Running=True, Restarting=False, Pid=child.pid, ExitCode=0, StartedAt=now())
        write(os.path.join(folder, "config.v2.json"), config)
        code = child.wait()
        if stopping:
            break
        state.update(Running=True, Restarting=True, Pid=0, ExitCode=code, FinishedAt=now())
        write(os.path.join(folder, "config.v2.json"), config)
        print(f"{name}: exited {code}, restarting in {RESTART_DELAY} s", flush=True)
        time.sleep(RESTART_DELAY)
    # `docker stop`: exited, not restarted.
    state.update(Running=False, Restarting=False, Pid=0, ExitCode=code, FinishedAt=now())
    write(os.path.join(folder, "config.v2.json"), config)
    return 0

if __name__ == "__main__":
    sys.exit(main())
