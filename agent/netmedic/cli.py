"""Command line: ``netmedic facts [--only F,...] [--format json|yaml]``.

Subcommands dispatch through :data:`COMMANDS`; ``diagnose``, ``check ID`` and
``probe-bind`` plug in there. Options are parsed by hand rather than with
argparse: ``netmedic facts --only ports`` is on a latency budget and argparse's
import (gettext, locale machinery) costs more than the rest of the CLI.

JSON goes out indented on a terminal and compact otherwise (facts.d, ansible,
pipes): compact output is encoded in C, indented output by the pure-Python
encoder (before Python 3.14), about three times slower on a busy host.

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
    from typing import (
        Callable,
        Dict,
        Iterable,
        Iterator,
        List,
        Mapping,
        NoReturn,
        Optional,
        Sequence,
        TextIO,
        Tuple,
        Type,
    )

    from yaml import SafeDumper

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


def _render(doc: object, output_format: str, pretty: bool) -> Iterable[str]:
    """The output as pieces to write in order: compact JSON is written as it is encoded.

    So a value JSON cannot encode (a collector's bug) ends the process with a
    traceback and exit 1 after part of the document, not before it.
    """
    if output_format == "yaml":
        from netmedic.sitedirs import add_site_dirs  # noqa: PLC0415 - only for --format yaml

        add_site_dirs()
        import yaml  # noqa: PLC0415 - only for --format yaml

        return [str(yaml.dump(doc, Dumper=_plain_dumper(), sort_keys=False,
                              default_flow_style=False))]  # fmt: skip
    if pretty:
        import json  # noqa: PLC0415 - not needed for usage errors

        return [json.dumps(doc, indent=2), "\n"]
    return _lines(_compact_json_pieces(doc))


def _plain_dumper() -> Type[SafeDumper]:
    """yaml's SafeDumper, writing a value held in several places out in each of them.

    The document shares objects (one owner dict for all the sockets its process
    holds); SafeDumper would write the first as ``&id001`` and the others as
    ``*id001``, which a reader has to chase. Without aliases it reads like the JSON.
    Called once _render has imported yaml (from the site directories).
    """
    import yaml  # noqa: PLC0415 - already imported by _render: a lookup

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    return PlainDumper


def _lines(pieces: Iterable[str]) -> Iterator[str]:
    yield from pieces
    yield "\n"


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Lists longer than this are encoded a slice at a time; dicts are looked into down
# to _SLICE_DEPTH levels for them (the document, then a family: ports.sockets).
_SLICE = 100
_SLICE_DEPTH = 2


def compact_json(doc: object) -> str:
    """``json.dumps(doc, separators=(",", ":"))``, without importing :mod:`json`.

    ``{"a": [1, None, "é"]}`` → ``'{"a":[1,null,"\\u00e9"]}'``. The json package
    imports and compiles ``re`` (a third of this command's start-up on a loaded
    host); its C encoder, ``_json.make_encoder``, needs none of that and is what
    ``json.dumps`` itself calls. Falls back to json where ``_json`` is missing.
    """
    return "".join(_compact_json_pieces(doc))


def _compact_json_pieces(doc: object) -> Iterator[str]:
    """:func:`compact_json` as pieces whose concatenation is the document.

    A generator: each piece can be written and freed before the next is made, so
    a large document's text is never all in memory (first-touch page faults are
    ~3 us each on this VM: ~300 of them for the large preset's 1.3 MB).
    """
    try:
        from _json import encode_basestring_ascii, make_encoder  # noqa: PLC0415
    except ImportError:  # an interpreter without the C accelerator
        import json  # noqa: PLC0415

        yield json.dumps(doc, separators=(",", ":"))
        return
    # The arguments json.encoder.JSONEncoder.iterencode passes (Python 3.6-3.14):
    # markers (None: no cycle check; a facts document shares objects, but none holds
    # itself), default, string encoder, indent, key separator, item separator,
    # sort_keys, skipkeys, allow_nan.
    encoder = make_encoder(
        None, _not_serializable, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def encode(value: object) -> str:
        return "".join(encoder(value, 0))

    def encode_list(path: Tuple[str, ...], items: List[object]) -> Optional[Iterator[str]]:
        if path == ("ports", "sockets"):  # most of the output, each owner once per socket
            from netmedic.collectors.ports import sockets_json  # noqa: PLC0415 - the ports family imported it

            return sockets_json(items, encode, encode_basestring_ascii, _SLICE)
        return None

    yield from _encode_in_slices(doc, encode, encode_list, ())


def _encode_in_slices(
    value: object,
    encode: Callable[[object], str],
    encode_list: Callable[[Tuple[str, ...], List[object]], Optional[Iterator[str]]],
    path: Tuple[str, ...],
) -> Iterator[str]:
    """``encode(value)`` in pieces, long lists encoded ``_SLICE`` items at a time.

    Python 3.11's C encoder keeps a string per key and value until it returns:
    the medium preset's 700 sockets are ~50,000 of them, ~2.5 MB touched once,
    and in a fresh process those page faults are a third of the encoding time.
    Slices reuse the same memory. With slices of 2, ``[1, 2, 3]`` becomes the
    pieces ``"[", "1,2", ",", "3", "]"``, and ``{"a": 1, "b": 2}`` (less than
    ``_SLICE_DEPTH`` deep) ``"{", '"a":', "1", ',"b":', "2", "}"``. ``path`` is
    where ``value`` sits (``("ports", "sockets")``); ``encode_list(path, items)``
    returns a list's pieces when it has a faster way to the same bytes, else None.
    """
    own_way = encode_list(path, value) if type(value) is list else None
    if own_way is not None:
        yield from own_way
    elif type(value) is list and len(value) > _SLICE:
        yield "["
        for start in range(0, len(value), _SLICE):
            if start:
                yield ","
            yield encode(value[start : start + _SLICE])[1:-1]
        yield "]"
    elif type(value) is dict and len(path) < _SLICE_DEPTH and all(type(k) is str for k in value):
        yield "{"
        for index, (key, member) in enumerate(value.items()):
            yield f"{',' if index else ''}{encode(key)}:"
            yield from _encode_in_slices(member, encode, encode_list, (*path, key))
        yield "}"
    else:
        yield encode(value)


def cmd_facts(args: Sequence[str], out: TextIO) -> int:
    """``netmedic facts``: collect and print the facts document."""
    _, options = parse_args(args, (), {"only": "", "format": "json"})
    if options["format"] not in ("json", "yaml"):
        raise UsageError(f"--format must be json or yaml, not {options['format']!r}")
    only: Optional[List[str]] = [f for f in options["only"].split(",") if f] or None

    # Deferred so `--help` and usage errors stay instant.
    from netmedic.context import Context  # noqa: PLC0415
    from netmedic.facts import gather, select_families  # noqa: PLC0415

    try:
        select_families(only)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    pretty = out.isatty()
    out.writelines(_render(gather(Context(only=only)), options["format"], pretty))
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
