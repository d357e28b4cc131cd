"""ansible-rulebook event source: each new netmedic finding on a host, as one event.

Polls ``netmedic diagnose --format json`` on every host in ``hosts`` every
``interval`` seconds, through ``command`` (an argv list; ``{host}`` is replaced
by the host's name: ``[ssh, "{host}", netmedic, diagnose, --format, json]``, or
``docker exec`` in the lab). A finding is an event when it appears: present
now, and not at the host's previous poll (by id and subject); a finding that
stays is not sent again, one that goes and comes back is. The first poll sends
every finding present. A host whose diagnosis cannot be read is an event too,
once per failure streak.

Why polling and not a spool the agent writes: the agent is a command, not a
daemon, and its JSON is the contract every other consumer reads; polling needs
nothing new on the host, no file to rotate or to read half-written, and a host
that stops answering shows up as an event. It costs one diagnosis per host and
interval on the host (tens of milliseconds of CPU, docs/performance.md).

Event: ``{"netmedic": {"host", "id", "subject", "severity", "title", "role",
"destructive", "evidence", "collected_at"}, "meta": {"hosts": host}}``;
``meta.hosts`` limits a ``run_playbook`` action to that host. A failed poll:
``{"netmedic": {"host", "error"}, "meta": {"hosts": host}}``.

Arguments: ``hosts`` (list, required), ``command`` (argv list, default
``[netmedic, diagnose, --format, json]``, for ``hosts: [localhost]``),
``interval`` (seconds, default 60), ``timeout`` (seconds per poll, default 30).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

DEFAULT_COMMAND = ["netmedic", "diagnose", "--format", "json"]
# diagnose exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, each with its JSON on stdout.
DIAGNOSE_EXIT_CODES = (0, 1, 2, 3)

Key = Tuple[str, str]


async def diagnose(command: Sequence[str], host: str, timeout: float) -> Dict[str, Any]:
    """The diagnosis document of ``host``; ValueError saying why it could not be read."""
    argv = [part.replace("{host}", host) for part in command]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise ValueError(f"{argv[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        await _end(process)
        raise ValueError(f"no answer within {timeout} s") from None
    except asyncio.CancelledError:  # ansible-rulebook shutting down: leave no process behind
        await _end(process)
        raise
    # The agent's message is stderr's first line (its usage text follows).
    first_line = next(iter(err.decode(errors="replace").strip().splitlines()), "")
    said = f"exit {process.returncode}: {first_line[:300]}"
    if process.returncode not in DIAGNOSE_EXIT_CODES or not out.strip():
        raise ValueError(said)  # a usage error is exit 3 too, with nothing on stdout
    try:
        doc = json.loads(out)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc}): {out[:200]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise ValueError(f"not a diagnosis: {out[:200]!r}")
    return doc


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


def finding_event(host: str, doc: Dict[str, Any], finding: Dict[str, Any]) -> Dict[str, Any]:
    """The event for one finding of ``host``'s diagnosis ``doc``."""
    return {
        "netmedic": {
            "host": host,
            "id": finding["id"],
            "subject": finding.get("subject"),
            "severity": finding.get("severity"),
            "title": finding.get("title"),
            "role": (finding.get("remediation") or {}).get("role"),
            "destructive": bool(finding.get("destructive")),
            "evidence": list(finding.get("evidence") or []),
            "collected_at": doc.get("collected_at"),
        },
        "meta": {"hosts": host},
    }


class Poller:
    """What each host reported last: the findings present, or that it failed."""

    def __init__(self, command: Sequence[str], timeout: float) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.present: Dict[str, Set[Key]] = {}
        self.failing: Set[str] = set()

    async def poll(self, host: str) -> List[Dict[str, Any]]:
        """The events of one poll of ``host``: its new findings, or its failure."""
        try:
            doc = await diagnose(self.command, host, self.timeout)
        except ValueError as exc:
            if host in self.failing:
                return []
            self.failing.add(host)
            return [{"netmedic": {"host": host, "error": str(exc)}, "meta": {"hosts": host}}]
        self.failing.discard(host)
        before = self.present.get(host, set())
        now: Set[Key] = set()
        events = []
        for finding in doc["findings"]:
            key = (finding["id"], str(finding.get("subject")))
            if key not in before and key not in now:
                events.append(finding_event(host, doc, finding))
            now.add(key)
        self.present[host] = now
        return events


def _arguments(args: Dict[str, Any]) -> Tuple[List[str], List[str], float, float]:
    hosts = args.get("hosts")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"netmedic_findings: hosts must be a list of host names, got {hosts!r}")
    command = args.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise ValueError(f"netmedic_findings: command must be an argv list, got {command!r}")
    interval, timeout = float(args.get("interval", 60)), float(args.get("timeout", 30))
    if interval <= 0 or timeout <= 0:
        raise ValueError("netmedic_findings: interval and timeout must be > 0")
    return hosts, command, interval, timeout


async def main(queue: asyncio.Queue, args: Dict[str, Any]) -> None:  # type: ignore[type-arg]
    """ansible-rulebook's entry point: poll for ever, putting each event on ``queue``."""
    hosts, command, interval, timeout = _arguments(args)
    poller = Poller(command, timeout)
    while True:
        results = await asyncio.gather(*(poller.poll(host) for host in hosts))
        for events in results:
            for event in events:
                await queue.put(event)
        await asyncio.sleep(interval)


if __name__ == "__main__":
    # One poll of this host, printed: `python3 netmedic_findings.py`.
    class _Printer:
        async def put(self, event: Optional[Dict[str, Any]]) -> None:
            print(json.dumps(event))

    async def _once() -> None:
        poller = Poller(DEFAULT_COMMAND, 30)
        for event in await poller.poll("localhost"):
            await _Printer().put(event)

    asyncio.run(_once())
