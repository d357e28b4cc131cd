"""Files the agent parses, read bounded: saved facts (JSON), the config and catalog (YAML).

Every file is read with a size limit (without reading past it, so ``/dev/zero``
costs the limit, not the disk) and its nesting depth is measured before a parser
recurses into it (a YAML document 50,000 levels deep overflows libyaml's C stack):

- :data:`MAX_FACTS_BYTES` for a facts document, :data:`MAX_YAML_BYTES` for a
  config or catalog file; :data:`MAX_DEPTH` levels of lists and mappings;
- JSON: NaN and Infinity are refused (they are not JSON numbers);
- YAML: at most :data:`MAX_YAML_NODES` values once aliases are expanded (a
  "billion laughs" file is refused, not expanded), and only what JSON can hold:
  string keys, finite numbers, no dates or binary.

What fails raises :class:`InputError`, whose message says what and where:
``parse_json(b"[NaN]")`` → ``InputError("NaN is not a JSON number")``.
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any, Dict, List, Optional, Tuple, Union

from netmedic.validate import render_location

MAX_FACTS_BYTES = 128 * 1024 * 1024  # a facts document of 100,000 sockets is ~35 MB
MAX_YAML_BYTES = 1024 * 1024  # a config or catalog file: a real one is a few KiB
MAX_DEPTH = 64  # a facts document nests 8 levels, a config 6
MAX_YAML_NODES = 1_000_000  # values once aliases are expanded
_CHUNK = 1 << 20

# What json_depth deletes: every byte but brackets and quotes.
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class InputError(ValueError):
    """A file the agent parses is too large, too deep, or not valid; the message says which."""


def read_limited(path: str, limit: int) -> bytes:
    """The bytes of ``path``; InputError when it has more than ``limit``. OSError as raised.

    Reads ``limit + 1`` bytes at most, whatever the file claims to be (a device, a pipe).
    """
    chunks: List[bytes] = []
    size = 0
    with open(path, "rb") as handle:
        while size <= limit:
            chunk = handle.read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:
        raise InputError(f"larger than {limit} bytes (the limit for this kind of file)")
    return b"".join(chunks)


def decode(data: bytes) -> str:
    """UTF-8 text; InputError naming the first bad byte's offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})") from exc


def json_depth(data: bytes) -> int:
    """How deep lists and objects nest: ``b'{"a": [1, "]]"]}'`` → ``2``.

    Counts brackets outside strings in C-speed passes, without parsing: escapes
    go first (``\\\\`` before ``\\"``, as a left-to-right reader pairs them), so
    every quote left opens or closes a string; then only brackets and quotes are
    kept, and two quotes in a row, which leave every bracket on its side, go too.
    What remains between quotes is a string's brackets.
    """
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = unescaped.translate(None, _NOT_MARKS).replace(b'""', b"")
    brackets = b"".join(marks.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _refuse_constant(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number as a float; ``1e999`` (infinite as a float) is refused."""
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"{text} is too large for a number")
    return value


def parse_json(data: Union[bytes, str]) -> Any:
    """A JSON value, its depth checked first; InputError when it is not JSON."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = json_depth(raw)
    if depth > MAX_DEPTH:
        raise InputError(f"nested {depth} levels deep (the limit is {MAX_DEPTH})")
    import json  # noqa: PLC0415 - not on the ports path

    try:
        return json.loads(decode(raw), parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc}") from exc


def _yaml() -> Tuple[Any, Any]:
    """PyYAML and its fastest safe loader (libyaml's when present)."""
    from netmedic.sitedirs import add_site_dirs  # noqa: PLC0415 - with the yaml import

    add_site_dirs()  # under the wrapper's -S, PyYAML is not importable before this
    import yaml  # noqa: PLC0415 - only where YAML is read

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_shipped_yaml(text: str) -> Any:
    """YAML the agent ships (its catalog entries), parsed without :func:`parse_yaml`'s bounds.

    Those bounds guard against hostile input; a shipped file is part of the bundle the
    role installs by checksum, and agent/tests check each one against the schema.
    """
    yaml, loader = _yaml()
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}") from exc


def parse_yaml(text: str) -> Any:
    """A YAML document as JSON data, after :func:`yaml_shape` allowed it; InputError if not."""
    yaml, loader = _yaml()
    try:
        yaml_shape(yaml.parse(text, Loader=loader))
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}") from exc
    problem = not_json(data)
    if problem is not None:
        raise InputError(problem)
    return data


def yaml_shape(events: Any) -> None:
    """Walk a YAML event stream, before anything is built from it.

    InputError when it nests deeper than :data:`MAX_DEPTH` or holds more than
    :data:`MAX_YAML_NODES` values with its aliases expanded (each alias counts the
    values of what its anchor names). Stops at the first excess.
    """
    import yaml  # noqa: PLC0415 - parse_yaml imported it

    sizes: Dict[str, int] = {}  # anchor → values under it, aliases expanded
    open_nodes: List[List[Any]] = [[0, None]]  # per open collection: [values, its anchor]
    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append([1, event.anchor])
            if len(open_nodes) - 1 > MAX_DEPTH:
                raise InputError(f"nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            size, anchor = open_nodes.pop()
        elif isinstance(event, yaml.AliasEvent):
            if any(node[1] == event.anchor for node in open_nodes):
                raise InputError(f"alias *{event.anchor} refers to a value that contains it")
            size, anchor = sizes.get(event.anchor or "", 1), None
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        open_nodes[-1][0] += size
        if open_nodes[0][0] + sum(node[0] for node in open_nodes[1:]) > MAX_YAML_NODES:
            raise InputError(f"more than {MAX_YAML_NODES} values once its aliases are expanded")


def not_json(value: Any, location: Tuple[Union[str, int], ...] = ()) -> Optional[str]:
    """Why ``value`` (from YAML) is not JSON data, naming where; None when it is.

    ``{"ports": [{"since": date(2024, 5, 1)}]}`` → ``"ports[0].since: a date is not a
    JSON value (quote it)"``. Keys must be strings, numbers finite.
    """
    where = render_location(location) or "(top level)"
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: {value} is not a JSON number"
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = not_json(item, (*location, index))
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string (quote it)"
            problem = not_json(item, (*location, key))
            if problem is not None:
                return problem
        return None
    return f"{where}: a {type(value).__name__} is not a JSON value (quote it)"
