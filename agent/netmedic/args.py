"""The command line's usage text and its ``--name value`` parsing, shared by every command.

By hand rather than with argparse, whose imports (gettext, locale) would be
most of the CLI's start-up on ``netmedic facts --only ports``.
"""

from __future__ import annotations

from netmedic.registry import FAMILIES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Sequence, Tuple

# Per command: its synopsis (after ``netmedic``) and what it does, the exit codes included.
COMMAND_USAGE: Dict[str, Tuple[str, str]] = {
    "facts": (
        "facts [--only FAMILY[,FAMILY...]] [--format json|yaml] [--diagnose]",
        "print the host's facts document; exit 0 even when a collector fails\n"
        f"(families: {', '.join(FAMILIES)})\n"
        "--diagnose adds the findings (`diagnosis`), as the facts.d hook does",
    ),
    "diagnose": (
        "diagnose [--format table|json|prometheus] [--facts FILE] [--config FILE]\n"
        "           [--output FILE]",
        "match the catalog against this host's facts (or a saved facts\n"
        "document); exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; --output\n"
        "replaces FILE atomically (a node_exporter textfile)",
    ),
    "check": (
        "check ID [--subject S] [--facts FILE] [--config FILE] [--format text|json]",
        "exit 0 when finding ID is absent, 1 when present, 3 unknown id",
    ),
    "probe-bind": (
        "probe-bind tcp|udp PORT [--addr A] [--format text|json]",
        "bind PORT and classify it: exit 0 free, 1 in use (holder named),\n"
        "2 address not available, 3 other error",
    ),
}


def _indent(text: str, prefix: str) -> str:
    return "".join(f"{prefix}{line}\n" for line in text.splitlines())


USAGE = (
    "usage: netmedic <command> [options]\n"
    "       netmedic --version\n"
    "       netmedic <command> --help\n\ncommands:\n"
    + "".join(
        f"  {synopsis}\n{_indent(what, '        ')}" for synopsis, what in COMMAND_USAGE.values()
    )
)


def command_usage(name: str) -> str:
    """``netmedic NAME --help``: ``"usage: netmedic check ID [--subject S] ...\n\nexit 0 ..."``."""
    synopsis, what = COMMAND_USAGE[name]
    return f"usage: netmedic {synopsis}\n\n{what}\n"


class UsageError(ValueError):
    """Bad command line; the message names the argument."""


def parse_args(
    args: Sequence[str],
    positional: Sequence[str],
    options: Mapping[str, str],
    flags: Sequence[str] = (),
) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Split ``args`` into named positionals, ``--name value`` options and ``--flag`` flags.

    ``(["udp", "1900", "--addr=::"], ["proto", "port"], {"addr": "0.0.0.0"})``
    → ``({"proto": "udp", "port": "1900"}, {"addr": "::"})``; a flag given reads
    ``"yes"``, one not given ``""``.
    """
    values = dict(options)
    values.update((flag, "") for flag in flags)
    found: List[str] = []
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        if not arg.startswith("--"):
            found.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
        if name in flags and not sep:
            values[name] = "yes"
            continue
        if name not in options:
            raise UsageError(f"unknown option: --{name}")
        if not sep:
            if not pending:
                raise UsageError(f"option --{name} needs a value")
            value = pending.pop(0)
        values[name] = value
    if len(found) != len(positional):
        wanted = " ".join(name.upper() for name in positional) or "no arguments"
        raise UsageError(f"expected {wanted}, got {' '.join(found) or 'nothing'}")
    return dict(zip(positional, found)), values


def choice(value: str, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a UsageError naming ``--name``."""
    if value not in choices:
        raise UsageError(f"--{name} must be one of {', '.join(choices)}, not {value!r}")
    return value
