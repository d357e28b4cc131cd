"""Read units' own journal lines, bounded, through the context's command runner.

``journalctl -o json`` with ``_SYSTEMD_UNIT=`` matches (the unit's processes'
lines, not systemd's lines about it), this boot, from a monotonic time on: the
time is passed as ``--since @epoch`` a second early and every line is then kept
or dropped on its own ``__MONOTONIC_TIMESTAMP``, the clock systemd's unit
timestamps use. Tests hand the context a fake runner and a fixture ``/run``.
"""

from __future__ import annotations

import json
from typing import List, Optional, Sequence, Tuple

from netmedic.context import Context

JOURNAL_TIMEOUT_S = 5.0
# (unit, monotonic_us, message)
Line = Tuple[str, int, str]


class JournalError(RuntimeError):
    """journalctl failed; the message carries its exit code and stderr."""


def journal_available(ctx: Context) -> bool:
    """journald runs when its socket exists (``/run/systemd/journal/socket``)."""
    return (ctx.run_root / "systemd" / "journal" / "socket").exists()


def epoch_arg(ctx: Context, monotonic_us: int) -> str:
    """A monotonic time as journalctl's ``@epoch``, a second early:
    ``5000000`` at uptime 10 s and epoch 1000 → ``"@994"``."""
    return f"@{int(ctx.clock() - (ctx.monotonic() - monotonic_us / 1e6)) - 1}"


def parse_journal(text: str) -> List[Line]:
    """``journalctl -o json`` lines → ``(unit, monotonic_us, message)``.

    ``'{"_SYSTEMD_UNIT":"a.service","__MONOTONIC_TIMESTAMP":"7","MESSAGE":[104,105]}'``
    → ``[("a.service", 7, "hi")]`` (a non-UTF-8 message is a list of bytes).
    """
    lines: List[Line] = []
    for raw in filter(str.strip, text.splitlines()):
        entry = json.loads(raw)
        message, stamp = entry.get("MESSAGE"), str(entry.get("__MONOTONIC_TIMESTAMP", ""))
        if isinstance(message, list):
            message = bytes(message).decode("utf-8", "replace")
        if isinstance(message, str) and stamp.isdigit():
            lines.append((str(entry.get("_SYSTEMD_UNIT", "")), int(stamp), message))
    return lines


def read_journal(
    ctx: Context, units: Sequence[str], since_us: int, limit: int, until_us: Optional[int] = None
) -> List[Line]:
    """The units' own lines this boot from ``since_us`` (to ``until_us``): the newest ``limit``."""
    argv = ["journalctl", "--no-pager", "-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT"]
    argv += ["-b", "-n", str(limit), "--since", epoch_arg(ctx, since_us)]
    if until_us is not None:
        argv += ["--until", epoch_arg(ctx, until_us + 2_000_000)]
    result = ctx.run(argv + [f"_SYSTEMD_UNIT={unit}" for unit in units], JOURNAL_TIMEOUT_S)
    # journalctl may exit 1 without a word when nothing matched: that is no lines.
    if result.returncode != 0 and (result.stdout.strip() or result.stderr.strip()):
        raise JournalError(f"journalctl exited {result.returncode}: {result.stderr.strip()[:300]}")
    last = until_us if until_us is not None else float("inf")
    return [line for line in parse_journal(result.stdout) if since_us <= line[1] <= last]
