"""What a collector may touch on the host, injected so tests can point it at fixtures.

Collectors read the system only through a :class:`Context`: its roots
(``/proc``, ``/sys``, ``/etc``, ``/run``), its command runner and its clock. A
test builds ``Context(proc_root=tmp / "proc", run=fake_runner)`` the way
prometheus_client's ``ProcessCollector(proc=...)`` takes its ``/proc``.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

# Commands are parsed, so their output language is fixed.
_C_LOCALE = {"LANG": "C", "LC_ALL": "C"}


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it ended (``returncode`` 127: not installed)."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], float], CommandResult]


def run_command(argv: Sequence[str], timeout: float = 5.0) -> CommandResult:
    """Run ``argv`` (never a shell string) with LANG=C; a missing program is rc 127."""
    env = dict(os.environ, **_C_LOCALE)
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError as exc:
        return CommandResult(127, "", str(exc))
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]}: timed out after {timeout}s")
    return CommandResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Context:
    """The host as collectors see it.

    ``config`` is the parsed ``/etc/netmedic/config.yml`` (see docs/facts.md):
    declared ports, process profiles, channel profiles, DNS probe names, extra
    units. Collectors treat a missing key as "nothing declared".
    """

    proc_root: Path = Path("/proc")
    sys_root: Path = Path("/sys")
    etc_root: Path = Path("/etc")
    run_root: Path = Path("/run")
    run: Runner = run_command
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    config: Mapping[str, Any] = field(default_factory=dict)
    # Set by the CLI: the families the caller asked for (None: all).
    only: Optional[Sequence[str]] = None
    # Filled in by facts.py from families already collected (e.g. the units that
    # own listening ports), so no collector re-collects another's family.
    related_units: Sequence[str] = ()
    derived: Mapping[str, Any] = field(default_factory=dict)

    def setting(self, key: str, default: Any = None) -> Any:
        """One top-level config value, e.g. ``ctx.setting("ports", [])``."""
        return self.config.get(key, default)


Facts = Dict[str, Any]
