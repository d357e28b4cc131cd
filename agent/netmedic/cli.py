"""Command line: ``netmedic facts [--only F,...] [--format json|yaml]``.

Subcommands dispatch through :data:`COMMANDS`; ``diagnose``, ``check ID`` and
``probe-bind`` plug in there. Options are parsed by hand rather than with
argparse: ``netmedic facts --only ports`` is on a latency budget and argparse's
import (gettext, locale machinery) costs more than the rest of the CLI.

The document is written by :mod:`netmedic.output`.

Exit codes: 0 facts printed (even when collectors failed: see ``errors``),
2 usage error.

roles/netmedic_agent's wrapper calls :func:`run`, which is :func:`main` for a
process that ends with it; the console script and ``python -m netmedic`` call
:func:`main`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Callable, Dict, List, Mapping, NoReturn, Optional, Sequence, TextIO, Tuple

    Command = Callable[[Sequence[str], TextIO], int]

USAGE = """\
usage: netmedic <command> [options]

commands:
  facts [--only FAMILY[,FAMILY...]] [--format json|yaml]
        print the host's facts document (families: ports, units, dns,
        processes, ephemeral, channels); exit 0 even when a collector fails
  diagnose [--format table|json] [--facts FILE] [--config FILE]
        match the catalog against this host's facts (or a saved facts
        document); exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
  check ID [--subject S] [--facts FILE] [--config FILE] [--format text|json]
        exit 0 when finding ID is absent, 1 when present, 3 unknown id
  probe-bind tcp|udp PORT [--addr A] [--format text|json]
        bind PORT and classify it: exit 0 free, 1 in use (holder named),
        2 address not available, 3 other error
"""

EXIT_OK = 0
EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad command line; the message names the argument."""


def parse_args(
    args: Sequence[str], positional: Sequence[str], options: Mapping[str, str]
) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Split ``args`` into named positionals and ``--name value`` options.

    ``(["udp", "1900", "--addr=::"], ["proto", "port"], {"addr": "0.0.0.0"})``
    → ``({"proto": "udp", "port": "1900"}, {"addr": "::"})``.
    """
    values = dict(options)
    found: List[str] = []
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        if not arg.startswith("--"):
            found.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
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


def cmd_facts(args: Sequence[str], out: TextIO) -> int:
    """``netmedic facts``: collect and print the facts document."""
    _, options = parse_args(args, (), {"only": "", "format": "json"})
    if options["format"] not in ("json", "yaml"):
        raise UsageError(f"--format must be json or yaml, not {options['format']!r}")
    only: Optional[List[str]] = [f for f in options["only"].split(",") if f] or None

    # Deferred so `--help` and usage errors stay instant.
    from netmedic import output  # noqa: PLC0415
    from netmedic.context import Context  # noqa: PLC0415
    from netmedic.facts import gather, select_families  # noqa: PLC0415

    try:
        select_families(only)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    pretty = out.isatty()
    out.writelines(output.render(gather(Context(only=only)), options["format"], pretty))
    return EXIT_OK


def _catalog_command(name: str) -> Command:
    """A handler from netmedic.commands, imported on use: it loads yaml and the catalog."""

    def run(args: Sequence[str], out: TextIO) -> int:
        from netmedic import commands  # noqa: PLC0415

        return commands.COMMANDS[name](args, out)

    return run


COMMANDS: Dict[str, Command] = {
    "facts": cmd_facts,
    # These report their own usage errors with exit 3 (UNKNOWN): 2 means CRITICAL there.
    **{name: _catalog_command(name) for name in ("diagnose", "check", "probe-bind")},
}


def _split(argv: Sequence[str]) -> Tuple[Optional[Command], Sequence[str]]:
    if not argv or argv[0] in ("-h", "--help", "help"):
        return None, ()
    command = COMMANDS.get(argv[0])
    if command is None:
        raise UsageError(f"unknown command: {argv[0]}")
    return command, argv[1:]


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Entry point of the ``netmedic`` console script and ``python -m netmedic``."""
    args = list(sys.argv[1:] if argv is None else argv)
    stream = sys.stdout if out is None else out
    try:
        if any(arg in ("-h", "--help") for arg in args[1:]):
            stream.write(USAGE)
            return EXIT_OK
        command, rest = _split(args)
        if command is None:
            stream.write(USAGE)
            return EXIT_OK if args else EXIT_USAGE
        return command(rest, stream)
    except UsageError as exc:
        sys.stderr.write(f"netmedic: {exc}\n\n{USAGE}")
        return EXIT_USAGE


def run() -> NoReturn:
    """:func:`main` as a whole process: the entry point of roles/netmedic_agent's wrapper.

    Skips two costs a long-lived interpreter has reasons to pay and a one-shot
    run does not (together ~10% of ``facts --only ports``' instructions): the
    cyclic garbage collector, which re-walks the document again and again while
    it is built (the agent builds trees, and the process is gone within a
    second), and interpreter teardown, which frees every object and collects
    again after the output is written. An exception still ends the process the
    usual way, with its traceback.
    """
    import gc  # noqa: PLC0415 - built in, like posix: free to import here
    import posix  # noqa: PLC0415 - not os: see netmedic.context

    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    posix._exit(code)
