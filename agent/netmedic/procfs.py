"""Parsers for the text of ``/proc/PID`` files: ``stat``, ``comm``, ``cmdline``, ``cgroup``,
and :func:`proc_text`, how their bytes become text.

Pure functions of the text (no I/O), shared by :mod:`netmedic.owners`, which
reads the files, and by the tests that feed them malformed input.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

_UNIT_SUFFIXES = (".service", ".scope")
_CONTAINER_SCOPES = ("docker-", "libpod-", "cri-containerd-", "crio-")
_HEX = frozenset("0123456789abcdef")
# Substrings of every container cgroup path we recognise: most texts skip the id search.
_CONTAINER_MARKERS = ("docker", "libpod", "containerd", "crio", "kubepods")


def proc_text(raw: bytes) -> str:
    """The one way bytes from ``/proc`` (a name, exe, cmdline, cgroup) become text.

    UTF-8, and each byte that is not part of valid UTF-8 written as ``\\xNN``:
    ``b"sl\\xffeep"`` → ``"sl\\\\xffeep"`` (Python's ``backslashreplace``). The
    text is for people and matching; a path with a literal ``\\x`` reads alike.
    """
    return raw.decode("utf-8", "backslashreplace")


def stat_fields(text: str) -> Tuple[str, List[str]]:
    """``/proc/PID/stat`` split: (comm, the fields after it, from field 3, state, on).

    comm may itself hold spaces and ``)``, so the split is at the last ``)``:
    ``"812 (my (odd) name) S 1 812 ..."`` → ``("my (odd) name", ["S", "1", "812", ...])``.
    Raises ValueError when there is no comm in parentheses.
    """
    open_paren = text.index("(")
    close_paren = text.rindex(")")
    return text[open_paren + 1 : close_paren], text[close_paren + 1 :].split()


def parse_stat(text: str) -> Tuple[str, int, int]:
    """(comm, ppid, start ticks) from ``/proc/PID/stat``.

    ``"812 (my (odd) name) S 1 812 812 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 ..."``
    → ``("my (odd) name", 1, 4242)``. Raises ValueError or IndexError when malformed.
    """
    comm, fields = stat_fields(text)
    # fields[0] is field 3 (state): ppid is field 4, starttime field 22.
    return comm, int(fields[1]), int(fields[19])


def parse_comm(raw: bytes) -> str:
    """``b"gmr (worker) 2\\n"`` → ``"gmr (worker) 2"``: ``/proc/PID/comm`` ends in one newline."""
    return proc_text(raw[:-1] if raw.endswith(b"\n") else raw)


def parse_cmdline(raw: bytes) -> List[str]:
    """``b"/usr/bin/gmediarender\\x00-f\\x00Living room\\x00"`` → three arguments."""
    if not raw:
        return []
    return proc_text(raw.rstrip(b"\x00")).split("\x00")


def _cgroup_entries(text: str) -> List[Tuple[str, str, str]]:
    """(hierarchy id, controllers, path) of each well-formed ``/proc/PID/cgroup`` line."""
    entries = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[2].startswith("/"):
            entries.append((parts[0], parts[1], parts[2]))
    return entries


def _innermost_unit(path: str) -> Optional[str]:
    """The last ``.service``/``.scope`` component of a cgroup path (see unit_of_cgroup)."""
    parts = path.split("/")
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if part.endswith(_UNIT_SUFFIXES):
            # A user manager's own process sits in user@UID.service/init.scope.
            if part == "init.scope" and index > 0 and parts[index - 1].startswith("user@"):
                return parts[index - 1]
            return part
    return None


def _container_of(path: str) -> Optional[str]:
    """The outermost container id in a path: the one the host's runtime manages."""
    for part in path.split("/"):
        if _is_container_id(part):
            return part
        if part.endswith(".scope"):
            for prefix in _CONTAINER_SCOPES:
                candidate = part[len(prefix) : -len(".scope")]
                if part.startswith(prefix) and _is_container_id(candidate):
                    return candidate
    return None


def _is_container_id(text: str) -> bool:
    return len(text) == 64 and _HEX.issuperset(text)


# Processes of one unit share the same text; a dict, not functools.lru_cache, whose
# import (collections, ...) the ports path would otherwise not need.
_UNIT_CACHE: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
_UNIT_CACHE_SIZE = 1024


def unit_of_cgroup(text: str) -> Tuple[Optional[str], Optional[str]]:
    """(systemd unit, container id) from the text of ``/proc/PID/cgroup``.

    The unit is the innermost ``.service``/``.scope`` of the cgroup v2 line
    (``0::``), else of the v1 ``name=systemd`` line (hybrid hosts have both).
    A process of a user manager reports its user unit. The container id is the
    outermost 64-hex id (docker, podman, containerd, CRI-O) on any line.

    >>> unit_of_cgroup("0::/system.slice/gmediarender.service\\n")
    ('gmediarender.service', None)
    >>> cid = "0123456789abcdef" * 4  # a 64-hex container id
    >>> unit_of_cgroup(f"0::/docker/{cid}/system.slice/foo.service\\n") == ("foo.service", cid)
    True
    >>> unit_of_cgroup(f"0::/system.slice/docker-{cid}.scope\\n") == (f"docker-{cid}.scope", cid)
    True
    >>> unit_of_cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
    ...                "pipewire.service\\n")
    ('pipewire.service', None)
    >>> unit_of_cgroup("0::/user.slice/user-1000.slice/user@1000.service/init.scope\\n")
    ('user@1000.service', None)
    >>> unit_of_cgroup("12:pids:/system.slice/ssh.service\\n"
    ...                "1:name=systemd:/system.slice/ssh.service\\n")
    ('ssh.service', None)
    >>> unit_of_cgroup("0::/\\n")  # a container's own cgroup namespace, or no systemd
    (None, None)
    >>> unit_of_cgroup("garbage\\n1:cpu\\n")
    (None, None)
    """
    cached = _UNIT_CACHE.get(text)
    if cached is not None:
        return cached
    if len(_UNIT_CACHE) >= _UNIT_CACHE_SIZE:
        _UNIT_CACHE.clear()
    result = _UNIT_CACHE[text] = _unit_of_cgroup(text)
    return result


def _unit_of_cgroup(text: str) -> Tuple[Optional[str], Optional[str]]:
    unified: Optional[str] = None
    named: Optional[str] = None
    container: Optional[str] = None
    in_container = any(marker in text for marker in _CONTAINER_MARKERS)
    for hierarchy, controllers, path in _cgroup_entries(text):
        if hierarchy == "0" and controllers == "":
            unified = path
        elif "name=systemd" in controllers.split(","):
            named = path
        if in_container and container is None:
            container = _container_of(path)
    unit = (_innermost_unit(unified) if unified else None) or (
        _innermost_unit(named) if named else None
    )
    return unit, container
