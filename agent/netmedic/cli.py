"""Command line: ``netmedic facts [--only F,...] [--format json|yaml]``, and the dispatch.

``diagnose``, ``check ID`` and ``probe-bind`` live in :mod:`netmedic.commands`,
imported when one of them runs. The facts document comes from
:func:`netmedic.api.collect` and is written by :mod:`netmedic.output`.

Exit codes: 0 facts printed (even when collectors failed: see ``errors``),
2 usage error.

roles/netmedic_agent's wrapper calls :func:`run`, which is :func:`main` for a
process that ends with it; the console script and ``python -m netmedic`` call
:func:`main`.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)
import sys

from netmedic import __version__
from netmedic.args import COMMAND_USAGE, USAGE, UsageError, choice, command_usage, parse_args

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, NoReturn, Optional, Sequence, TextIO, Tuple

    Command = Callable[[Sequence[str], TextIO], int]

EXIT_OK = 0
EXIT_USAGE = 2


def cmd_facts(args: Sequence[str], out: TextIO) -> int:
    """``netmedic facts``: collect and print the facts document."""
    _positional, options = parse_args(args, (), {"only": "", "format": "json"}, flags=("diagnose",))
    output_format = choice(options["format"], "format", ("json", "yaml"))
    only: Optional[List[str]] = [f for f in options["only"].split(",") if f] or None
    if options["diagnose"] and only:
        raise UsageError("--diagnose needs every family: leave --only out")

    # Deferred so `--help` and usage errors stay instant.
    from netmedic import api, output  # noqa: PLC0415
    from netmedic.context import Context  # noqa: PLC0415
    from netmedic.facts import select_families  # noqa: PLC0415
    from netmedic.registry import DIAGNOSIS_KEY  # noqa: PLC0415

    try:
        select_families(only)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if options["diagnose"]:
        # One collection for both: Ansible's setup reads this through facts.d.
        host = api.diagnose_host(Context())
        document = {**host.facts, DIAGNOSIS_KEY: host.diagnosis.to_dict()}
    else:
        document = api.collect(Context(only=only))
    out.writelines(output.render(document, output_format, pretty=out.isatty()))
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


class _Output:
    """Standard output as commands write to it: a reader that went away (``netmedic facts |
    head -c 10``) ends the output quietly. What follows goes nowhere (``/dev/null`` takes
    the stream's descriptor, so the interpreter's last flush succeeds too) and the
    command's exit code stands: 0 for ``facts``, the status for the others."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._discard()
        return len(text)

    def writelines(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.write(piece)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._discard()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _discard(self) -> None:
        self.gone = True
        null = posix.open("/dev/null", posix.O_WRONLY)
        posix.dup2(null, self._stream.fileno())
        posix.close(null)


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Entry point of the ``netmedic`` console script and ``python -m netmedic``."""
    args = list(sys.argv[1:] if argv is None else argv)
    stream = _Output(sys.stdout) if out is None else out
    try:
        if args[:1] in (["--version"], ["-V"]):
            stream.write(f"netmedic {__version__}\n")
            return EXIT_OK
        if any(arg in ("-h", "--help") for arg in args[1:]):
            stream.write(command_usage(args[0]) if args[0] in COMMAND_USAGE else USAGE)
            return EXIT_OK
        command, rest = _split(args)
        if command is None:
            stream.write(USAGE)
            return EXIT_OK if args else EXIT_USAGE
        code = command(rest, stream)  # type: ignore[arg-type]  # _Output writes as a TextIO
        stream.flush()
        return code
    except UsageError as exc:
        sys.stderr.write(f"netmedic: {exc}\n\n{USAGE}")
        return EXIT_USAGE


def run() -> NoReturn:
    """:func:`main` as a whole process: the entry point of roles/netmedic_agent's wrapper.

    Skips what a one-shot process has no use for: the cyclic garbage collector
    (the agent builds trees, and the process is gone within a second) and the
    interpreter's teardown, which frees every object after the output is
    written. An exception still ends the process the usual way, with its traceback.
    """
    import gc  # noqa: PLC0415 - built in: free to import here
    import posix  # noqa: PLC0415 - not os: see netmedic.context

    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    posix._exit(code)
