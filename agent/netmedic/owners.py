"""Who a process is, read from ``/proc`` (``ctx.proc_root``): the owner of a socket.

Two entry points other collectors share (one way to compute each fact):

- :func:`process_identity`: pid, ppid, name, exe, cmdline, user, unit,
  container, netns and start time of one process;
- :func:`owner_identity`: the fields of it a socket's ``owner`` has.

Which process holds a socket is :mod:`netmedic.fdtables`' pass over the fd tables.
Races and permissions follow psutil's rules: a process that exits while we read
it is skipped (the expected race), a file we may not read becomes ``None`` with
the field named in ``denied``. All OS errors are translated by :func:`failure`.
The files' text is parsed by :mod:`netmedic.procfs`.
"""

from __future__ import annotations

import posix  # os's C half: the ports path does not import os (see context.py)

from netmedic.procfs import parse_cmdline, parse_comm, parse_stat, proc_text, unit_of_cgroup

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:  # annotations only: the ports path does not import typing
    from typing import Dict, List, Optional, Tuple, TypedDict

    from .context import Context

    class ProcessIdentity(TypedDict):
        """What :func:`process_identity` returns; see its docstring for units."""

        pid: int
        ppid: Optional[int]
        name: Optional[str]
        exe: Optional[str]
        cmdline: Optional[List[str]]
        user: Optional[str]
        uid: Optional[int]
        unit: Optional[str]
        container_id: Optional[str]
        netns: Optional[str]
        start_time: Optional[float]
        denied: List[str]

    # What _fields_at reads: name (comm), uid, user, exe, cmdline, unit, container_id.
    _Fields = Tuple[
        Optional[str], Optional[int], Optional[str], Optional[str], Optional[List[str]],
        Optional[str], Optional[str],
    ]  # fmt: skip

    class OwnerIdentity(TypedDict):
        """What :func:`owner_identity` returns: the ports family's ``owner``."""

        pid: int
        name: Optional[str]
        exe: Optional[str]
        user: Optional[str]
        unit: Optional[str]
        container_id: Optional[str]


GONE = "gone"  # ENOENT/ESRCH: the process (or this file of it) does not exist
DENIED = "denied"  # EACCES/EPERM: exists, we may not read it
FAILED = "failed"  # any other OSError (EINVAL, EIO, ...): unreadable for another reason

DIR_FLAGS = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC
_FILE_FLAGS = posix.O_RDONLY | posix.O_CLOEXEC
_READ_CHUNK = 1 << 16
_CLOCK_TICKS = posix.sysconf("SC_CLK_TCK") if hasattr(posix, "sysconf") else 100


def failure(exc: OSError) -> str:
    """The one place OS errors become outcomes: PermissionError → ``"denied"``.

    ``FileNotFoundError``/``ProcessLookupError`` → ``"gone"``; anything else
    (EINVAL, EIO, ENOTDIR) → ``"failed"``.
    """
    if isinstance(exc, PermissionError):
        return DENIED
    if isinstance(exc, (FileNotFoundError, ProcessLookupError)):
        return GONE
    return FAILED


def _read_at(dir_fd: int, name: str) -> bytes:
    """Whole content of ``name`` under ``dir_fd`` (proc files report size 0, so loop)."""
    fd = posix.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        data = posix.read(fd, _READ_CHUNK)
        if len(data) < _READ_CHUNK:  # all but the longest cmdlines: one read
            return data
        chunks = [data]
        while len(chunks[-1]) == _READ_CHUNK:
            chunks.append(posix.read(fd, _READ_CHUNK))
    finally:
        posix.close(fd)
    return b"".join(chunks)


class _Users:
    """uid → user name from ``<etc_root>/passwd``, then NSS for the real /etc (cached)."""

    def __init__(self, etc_root: str) -> None:
        self._etc_root = etc_root
        self._names: Optional[Dict[int, str]] = None

    def name(self, uid: int) -> Optional[str]:
        if self._names is None:
            self._names = _parse_passwd(f"{self._etc_root}/passwd")
        if uid not in self._names and self._etc_root == "/etc":
            self._names[uid] = _nss_user(uid)  # LDAP/sssd users are not in /etc/passwd
        return self._names.get(uid) or None


def _parse_passwd(path: str) -> Dict[int, str]:
    """``"gmr:x:115:120::/var/lib/gmr:/usr/sbin/nologin"`` → ``{115: "gmr"}``."""
    names: Dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return names
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), parts[0])
    return names


def _nss_user(uid: int) -> str:
    import pwd  # noqa: PLC0415 - only needed for users /etc/passwd lacks

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


_USERS: Dict[str, _Users] = {}


def user_name(ctx: Context, uid: int) -> Optional[str]:
    """Login name of ``uid`` as ``ctx.etc_root`` knows it, None when unknown."""
    root = ctx.etc_dir
    users = _USERS.get(root)
    if users is None:
        users = _USERS[root] = _Users(root)
    return users.name(uid)


def process_identity(
    ctx: Context, pid: int, netns: bool = True, lineage: bool = True, cmdline: bool = True
) -> Optional[ProcessIdentity]:
    """Identity of ``pid`` from ``<proc_root>/<pid>``, None if it does not exist.

    - ``start_time``: seconds since boot (``/proc/PID/stat`` starttime, which
      the kernel counts on CLOCK_BOOTTIME), comparable with ``/proc/uptime``.
    - ``uid``/``user``: the process's effective uid (owner of ``/proc/PID``).
    - ``unit``/``container_id``: see :func:`unit_of_cgroup`.
    - ``netns``: ``"net:[4026531840]"``, the link ``/proc/PID/ns/net``.

    A field we may not read is None and named in ``denied``; a missing file
    (a kernel thread has no exe) is None without being denied. ``netns=False``
    skips the ``ns/net`` read (None) for callers that know the namespace already.
    ``lineage=False`` leaves ``ppid`` and ``start_time`` None and reads the name
    from ``/proc/PID/comm`` (the same text as stat's, which has 52 fields to split).
    ``cmdline=False`` leaves ``cmdline`` None without reading it (the kernel copies
    it out of the process's memory).
    """
    try:
        dir_fd = posix.open(f"{ctx.proc_dir}/{pid}", DIR_FLAGS)
    except OSError as exc:
        return None if failure(exc) == GONE else _unreadable(pid)
    try:
        return _identity_at(ctx, pid, dir_fd, netns=netns, lineage=lineage, cmdline=cmdline)
    finally:
        posix.close(dir_fd)


def owner_identity(ctx: Context, pid: int) -> Optional[OwnerIdentity]:
    """pid, name, exe, user, unit and container_id of ``pid``: a port owner.

    The fields ``process_identity(ctx, pid, netns=False, lineage=False,
    cmdline=False)`` reads, read the same way (:func:`_fields_at`), in
    registry.OWNER_FIELDS' order. None if the process does not exist; a field
    we may not read is None.
    """
    try:
        dir_fd = posix.open(f"{ctx.proc_dir}/{pid}", DIR_FLAGS)
    except OSError as exc:
        if failure(exc) == GONE:
            return None
        fields: Optional[_Fields] = (None, None, None, None, None, None, None)
    else:
        try:
            fields = _fields_at(ctx, dir_fd, [], comm=True, cmdline=False)
        finally:
            posix.close(dir_fd)
    if fields is None:
        return None
    name, _uid, user, exe, _cmdline, unit, container_id = fields
    return {
        "pid": pid, "name": name, "exe": exe, "user": user, "unit": unit,
        "container_id": container_id,
    }  # fmt: skip


def _unreadable(pid: int) -> ProcessIdentity:
    fields = ["ppid", "name", "exe", "cmdline", "user", "uid", "unit", "container_id", "netns"]
    return {
        "pid": pid, "ppid": None, "name": None, "exe": None, "cmdline": None, "user": None,
        "uid": None, "unit": None, "container_id": None, "netns": None, "start_time": None,
        "denied": [*fields, "start_time"],
    }  # fmt: skip


def _identity_at(
    ctx: Context, pid: int, dir_fd: int, *, netns: bool, lineage: bool, cmdline: bool
) -> Optional[ProcessIdentity]:
    # One try per file: a file we may not read names its fields in `denied`, a
    # missing one (a kernel thread has no exe) is None, a missing name means gone.
    denied: List[str] = []
    name: Optional[str] = None
    ppid: Optional[int] = None
    start_time: Optional[float] = None
    if lineage:
        try:
            name, ppid, start_time = _parse_lineage(_read_at(dir_fd, "stat"))
        except OSError as exc:
            outcome = failure(exc)
            if outcome == GONE:
                return None  # exited between the listing and now
            if outcome == DENIED:
                denied += ["name", "ppid", "start_time"]
    fields = _fields_at(ctx, dir_fd, denied, comm=not lineage, cmdline=cmdline)
    if fields is None:
        return None
    comm, uid, user, exe, args, unit, container_id = fields
    link: Optional[str] = None
    if netns:
        try:
            link = posix.readlink("ns/net", dir_fd=dir_fd)
        except OSError as exc:
            _deny_on_eacces(exc, denied, ("netns",))
    return {
        "pid": pid, "ppid": ppid, "name": name if lineage else comm, "exe": exe,
        "cmdline": args, "user": user, "uid": uid, "unit": unit, "container_id": container_id,
        "netns": link, "start_time": start_time, "denied": denied,
    }  # fmt: skip


def _fields_at(
    ctx: Context, dir_fd: int, denied: List[str], *, comm: bool, cmdline: bool
) -> Optional[_Fields]:
    """The fields a port owner and a process identity share, and cmdline; None if gone.

    The one place they are read (see :func:`_identity_at` for the rules), in the
    order ``denied`` names them.
    """
    name: Optional[str] = None
    if comm:
        try:
            name = parse_comm(_read_at(dir_fd, "comm"))
        except OSError as exc:
            outcome = failure(exc)
            if outcome == GONE:
                return None  # exited between the listing and now
            if outcome == DENIED:
                denied.append("name")
    uid: Optional[int] = None
    user: Optional[str] = None
    try:
        owner_uid = posix.fstat(dir_fd).st_uid
    except OSError:
        denied += ["uid", "user"]
    else:
        uid, user = owner_uid, user_name(ctx, owner_uid)
    exe: Optional[str] = None
    try:
        exe = proc_text(posix.readlink(b"exe", dir_fd=dir_fd))
    except OSError as exc:
        _deny_on_eacces(exc, denied, ("exe",))
    args: Optional[List[str]] = None
    if cmdline:
        try:
            args = parse_cmdline(_read_at(dir_fd, "cmdline"))
        except OSError as exc:
            _deny_on_eacces(exc, denied, ("cmdline",))
    unit: Optional[str] = None
    container_id: Optional[str] = None
    try:
        cgroup = proc_text(_read_at(dir_fd, "cgroup"))
        unit, container_id = unit_of_cgroup(cgroup)
    except OSError as exc:
        _deny_on_eacces(exc, denied, ("unit", "container_id"))
    return name, uid, user, exe, args, unit, container_id


def _parse_lineage(raw: bytes) -> Tuple[Optional[str], Optional[int], Optional[float]]:
    """(name, ppid, start_time) from the text of ``stat``; all None when it is malformed."""
    try:
        name, ppid, ticks = parse_stat(proc_text(raw))
    except (ValueError, IndexError):
        return None, None, None  # malformed stat (fixture or future kernel): null fields
    return name, ppid, round(ticks / _CLOCK_TICKS, 2)


def _deny_on_eacces(exc: OSError, denied: List[str], fields: Tuple[str, ...]) -> None:
    """A file we may not read names its fields in ``denied``; a missing one is just None."""
    if failure(exc) == DENIED:
        denied.extend(fields)
