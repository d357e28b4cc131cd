"""The facts document as text: compact or indented JSON, or YAML.

JSON goes out compact when it is read by programs (facts.d, Ansible, pipes)
and indented on a terminal. Compact JSON is made by the C encoder behind
:mod:`json` without importing :mod:`json` itself (it imports and compiles
``re``, a large share of ``netmedic facts --only ports``' start-up), and is
written in pieces as it is encoded. ``ports.sockets``, most of the output, has
its own encoder (:func:`sockets_json`) that writes each owner once.
"""

from __future__ import annotations

from netmedic.registry import OWNER_FIELDS, SOCKET_FIELDS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple, Type

    from yaml import SafeDumper

    Encode = Callable[[object], str]
    Quote = Callable[[str], str]

# Where the sockets list sits in the document.
_SOCKETS_PATH = ("ports", "sockets")


def render(doc: object, output_format: str, pretty: bool) -> Iterable[str]:
    """The output (``"json"`` or ``"yaml"``, ending in a newline) as pieces to write in order.

    Compact JSON comes as it is encoded: a value JSON cannot encode (a collector's
    bug) ends the process with a traceback after part of the document.
    """
    if output_format == "yaml":
        from netmedic.sitedirs import add_site_dirs  # noqa: PLC0415 - only for --format yaml

        add_site_dirs()
        import yaml  # noqa: PLC0415 - only for --format yaml

        return [str(yaml.dump(doc, Dumper=_plain_dumper(), sort_keys=False,
                              default_flow_style=False))]  # fmt: skip
    if pretty:
        import json  # noqa: PLC0415 - the indented encoder is json's Python one

        return [json.dumps(doc, indent=2), "\n"]
    return _with_newline(json_pieces(doc))


def compact_json(doc: object) -> str:
    """``json.dumps(doc, separators=(",", ":"))``.

    ``{"a": [1, None, "é"]}`` → ``'{"a":[1,null,"\\u00e9"]}'``
    """
    return "".join(json_pieces(doc))


def json_pieces(doc: object) -> Iterator[str]:
    """:func:`compact_json` as pieces whose concatenation is the document.

    Each piece can be written and freed before the next is made, so a large
    document's text is never all in memory.
    """
    try:
        from _json import encode_basestring_ascii, make_encoder  # noqa: PLC0415
    except ImportError:  # an interpreter without the C accelerator
        import json  # noqa: PLC0415

        yield json.dumps(doc, separators=(",", ":"))
        return
    # The arguments json.encoder.JSONEncoder.iterencode passes (Python 3.6-3.14):
    # markers (None: no cycle check; the document shares objects, but none holds
    # itself), default, string encoder, indent, key separator, item separator,
    # sort_keys, skipkeys, allow_nan.
    encoder = make_encoder(
        None, _not_serializable, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def encode(value: object) -> str:
        return "".join(encoder(value, 0))

    yield from _pieces(doc, (), encode, encode_basestring_ascii)


def _with_newline(pieces: Iterable[str]) -> Iterator[str]:
    yield from pieces
    yield "\n"


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _pieces(value: object, path: Tuple[str, ...], encode: Encode, quote: Quote) -> Iterator[str]:
    """``encode(value)``, opening the dicts on the way to ``ports.sockets`` to encode it apart.

    ``path`` is where ``value`` sits: ``()`` for the document, ``("ports",)`` for the family.
    """
    if path == _SOCKETS_PATH and type(value) is list:
        yield from sockets_json(value, encode, quote)
    elif (
        type(value) is dict
        and len(path) < len(_SOCKETS_PATH)
        and path == _SOCKETS_PATH[: len(path)]
        and all(type(key) is str for key in value)
    ):
        yield "{"
        for index, (key, member) in enumerate(value.items()):
            yield f"{',' if index else ''}{encode(key)}:"
            yield from _pieces(member, (*path, key), encode, quote)
        yield "}"
    else:
        yield encode(value)


# The end of a socket's text when it has no owner_reason, no other pids and no sharing read.
_PLAIN_END = ',"owner_reason":null,"other_pids":[],"sharing":{"reuse_addr":null,"reuse_port":null}}'
_UNREAD = [("reuse_addr", None), ("reuse_port", None)]  # a sharing's items when not read


def sockets_json(
    sockets: Iterable[Any], encode: Encode, quote: Quote, chunk: int = 100
) -> Iterator[str]:
    """``encode(sockets)`` as pieces, each owner's text made once rather than once per socket.

    ``encode`` is a compact JSON encoder and ``quote`` its string encoder. An
    entry's text is a head (proto, family, address, port, inode, uid) and a
    tail (netns, owner, and the usual null reason, empty other pids and unread
    sharing) that all sockets of one owner share; the head's first three
    fields are shared by every socket on one address. So the tail is made once
    per owner, the start of the head once per address, and a socket is one
    f-string. Entries as the ports collector writes them take that way; anything
    else (other keys, in another order, a text field that is not a str) is
    ``encode``'d whole, so the text is always ``encode``'s. A value of another
    type in a head's int field (``True`` as a port) is the collector's bug.
    The pieces come ``chunk`` entries at a time: ``"["``, entries, ``","``, ..., ``"]"``.
    """
    starts: Dict[Tuple[object, object, object], str] = {}  # (proto, family, address) → text
    # id(owner) → (owner, netns, tail); holding the owner keeps its id from being reused.
    tails: Dict[int, Tuple[object, object, str]] = {}
    unread: object = None  # the last sharing seen that was not read
    yield "["
    out: List[str] = []
    for entry in sockets:
        if len(out) == chunk:
            yield ",".join(out)
            yield ","
            out.clear()
        if type(entry) is not dict or tuple(entry) != SOCKET_FIELDS:
            out.append(encode(entry))
            continue
        proto, family, address, port, inode, uid, netns, owner, reason, other_pids, sharing = (
            entry.values()
        )
        if type(proto) is not str or type(family) is not str or type(address) is not str:
            out.append(encode(entry))
            continue
        start = starts.get((proto, family, address))
        if start is None:
            start = starts[proto, family, address] = (
                f'{{"proto":{quote(proto)},"family":{quote(family)},"address":{quote(address)}'
            )
        if sharing is not unread and type(sharing) is dict and [*sharing.items()] == _UNREAD:
            unread = sharing  # the collector's entries share one: then `is` will do
        if reason is None and other_pids == [] and sharing is unread:
            cached = tails.get(id(owner))
            if cached is None or cached[1] is not netns:
                tail = f'{encode(netns)},"owner":{owner_json(owner, encode, quote)}{_PLAIN_END}'
                cached = tails[id(owner)] = (owner, netns, tail)
            tail = cached[2]
        else:
            tail = (
                f'{encode(netns)},"owner":{owner_json(owner, encode, quote)},'
                f'"owner_reason":{encode(reason)},"other_pids":{encode(other_pids)},'
                f'"sharing":{encode(sharing)}}}'
            )
        out.append(
            f'{start},"port":{port},"inode":{"null" if inode is None else inode},'
            f'"uid":{"null" if uid is None else uid},"netns":{tail}'
        )
    yield ",".join(out)
    yield "]"


def owner_json(owner: Any, encode: Encode, quote: Quote) -> str:
    """``encode(owner)``; an owner as the ports collector writes it goes through a template.

    Anything else (None, other keys or order, a pid that is not an int, a field
    that is neither text nor None) is ``encode``'d.
    """
    if type(owner) is not dict or tuple(owner) != OWNER_FIELDS or type(owner["pid"]) is not int:
        return encode(owner)
    pid, name, exe, user, unit, container_id = owner.values()
    try:
        return (
            f'{{"pid":{pid},"name":{_text(name, quote)},"exe":{_text(exe, quote)},'
            f'"user":{_text(user, quote)},"unit":{_text(unit, quote)},'
            f'"container_id":{_text(container_id, quote)}}}'
        )
    except TypeError:  # quote() takes str only
        return encode(owner)


def _text(value: Any, quote: Quote) -> str:
    return "null" if value is None else quote(value)


def _plain_dumper() -> Type[SafeDumper]:
    """yaml's SafeDumper, writing a value held in several places out in each of them.

    The document shares objects (one owner dict for all the sockets its process
    holds); SafeDumper would write the first as ``&id001`` and the others as
    ``*id001``, which a reader has to chase. Without aliases it reads like the JSON.
    """
    import yaml  # noqa: PLC0415 - render imported it (from the site directories)

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    return PlainDumper
