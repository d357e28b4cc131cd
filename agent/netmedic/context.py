"""What a collector may touch on the host, injected so tests can point it at fixtures.

Collectors read the system only through a :class:`Context`: its roots
(``/proc``, ``/sys``, ``/etc``, ``/run``), its command runner and its clock. A
test builds ``Context(proc_root=tmp / "proc", run=fake_runner)`` the way
prometheus_client's ``ProcessCollector(proc=...)`` takes its ``/proc``, and
derives another with ``ctx.replace(config={...})``.

This module is on ``netmedic facts --only ports``' path, which imports only
what it uses: here ``posix`` and ``time``, built into the interpreter. Not
``dataclasses``, ``typing``, ``subprocess`` or ``pathlib`` (they import
``inspect``, ``re``, ``urllib``), and not even ``os``: under the wrapper's
``-S`` nothing has imported it yet, and the functions the path needs are
``posix``'s own (``os.readlink is posix.readlink``). The ports path's modules
(here, facts.py, netlink.py, owners.py, procfs.py, collectors/ports.py,
output.py, cli.py) therefore call ``posix`` directly; ``os`` stays the module
for everything else, and ``posix.environ`` (bytes) is never a stand-in for
``os.environ``. Roots are :class:`pathlib.Path` objects built on first use;
the ``*_dir`` twins give the same root as a ``str`` for ``posix`` calls.
"""

from __future__ import annotations

import posix  # os's C half: see the module docstring
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    import os
    from pathlib import Path
    from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

    Runner = Callable[[Sequence[str], float], "CommandResult"]
    Root = Union[str, "os.PathLike[str]"]
    Facts = Dict[str, Any]
else:
    Facts = dict  # the alias other modules import, without importing typing at run time

# Commands are parsed, so their output language is fixed.
_C_LOCALE = {"LANG": "C", "LC_ALL": "C"}


class CommandResult:
    """What a command printed and how it ended (``returncode`` 127: not installed).

    ``CommandResult(0, "Id=ssh.service\\n", "")``; immutable, compared by value.
    """

    __slots__ = ("returncode", "stderr", "stdout")

    returncode: int
    stdout: str
    stderr: str

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        object.__setattr__(self, "returncode", returncode)
        object.__setattr__(self, "stdout", stdout)
        object.__setattr__(self, "stderr", stderr)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CommandResult is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CommandResult):
            return NotImplemented
        return (self.returncode, self.stdout, self.stderr) == (
            other.returncode, other.stdout, other.stderr,
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.returncode, self.stdout, self.stderr))

    def __repr__(self) -> str:
        return (
            f"CommandResult(returncode={self.returncode!r}, stdout={self.stdout!r}, "
            f"stderr={self.stderr!r})"
        )


def run_command(argv: Sequence[str], timeout: float = 5.0) -> CommandResult:
    """Run ``argv`` (never a shell string) with LANG=C; a missing program is rc 127."""
    import os  # noqa: PLC0415 - subprocess imports it anyway; the ports path needs neither
    import subprocess  # noqa: PLC0415 - not on the ports path

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


# The constructor's keywords; roots are stored as given (str or Path) in "_"-slots.
_FIELDS = (
    "proc_root", "sys_root", "etc_root", "run_root", "run", "clock", "monotonic",
    "config", "only", "related_units", "derived",
)  # fmt: skip
_SLOTS = tuple(f"_{name}" if name.endswith("_root") else name for name in _FIELDS)


class Context:
    """The host as collectors see it; immutable, derive changes with :meth:`replace`.

    ``config`` is the parsed ``/etc/netmedic/config.yml`` (see docs/facts.md):
    declared ports, process profiles, channel profiles, DNS probe names, extra
    units. Collectors treat a missing key as "nothing declared".

    ``only``: set by the CLI, the families the caller asked for (None: all).
    ``related_units``/``derived``: filled in by facts.py from families already
    collected (e.g. the units that own listening ports), so no collector
    re-collects another's family.
    """

    __slots__ = _SLOTS

    _proc_root: Root
    _sys_root: Root
    _etc_root: Root
    _run_root: Root
    run: Runner
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    config: Mapping[str, Any]
    only: Optional[Sequence[str]]
    related_units: Sequence[str]
    derived: Mapping[str, Any]

    def __init__(
        self,
        *,
        proc_root: Root = "/proc",
        sys_root: Root = "/sys",
        etc_root: Root = "/etc",
        run_root: Root = "/run",
        run: Runner = run_command,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        config: Optional[Mapping[str, Any]] = None,
        only: Optional[Sequence[str]] = None,
        related_units: Sequence[str] = (),
        derived: Optional[Mapping[str, Any]] = None,
    ) -> None:
        values = (
            proc_root, sys_root, etc_root, run_root, run, clock, monotonic,
            {} if config is None else config, only, related_units,
            {} if derived is None else derived,
        )  # fmt: skip
        for slot, value in zip(_SLOTS, values):
            object.__setattr__(self, slot, value)

    def replace(self, **changes: Any) -> Context:
        """A copy with ``changes`` applied: ``ctx.replace(config={"ports": []})``."""
        unknown = set(changes).difference(_FIELDS)
        if unknown:
            raise TypeError(f"Context has no field(s): {', '.join(sorted(unknown))}")
        values = {name: getattr(self, slot) for name, slot in zip(_FIELDS, _SLOTS)}
        values.update(changes)
        return Context(**values)

    def setting(self, key: str, default: Any = None) -> Any:
        """One top-level config value, e.g. ``ctx.setting("ports", [])``."""
        return self.config.get(key, default)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Context is immutable: use ctx.replace({name}=...)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None  # type: ignore[assignment]  # config is a dict: not hashable

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(_FIELDS, self._astuple()))
        return f"Context({fields})"

    def _astuple(self) -> tuple[Any, ...]:
        roots = (self.proc_dir, self.sys_dir, self.etc_dir, self.run_dir)
        return roots + tuple(getattr(self, slot) for slot in _SLOTS[4:])

    def _path(self, slot: str) -> Path:
        # Built on first use: the ports path never imports pathlib (re, fnmatch, urllib).
        from pathlib import Path  # noqa: PLC0415

        value = getattr(self, slot)
        if not isinstance(value, Path):
            value = Path(value)
            object.__setattr__(self, slot, value)
        return value

    @property
    def proc_root(self) -> Path:
        return self._path("_proc_root")

    @property
    def sys_root(self) -> Path:
        return self._path("_sys_root")

    @property
    def etc_root(self) -> Path:
        return self._path("_etc_root")

    @property
    def run_root(self) -> Path:
        return self._path("_run_root")

    @property
    def proc_dir(self) -> str:
        """``proc_root`` as a string (``"/proc"``), without importing pathlib."""
        return posix.fspath(self._proc_root)

    @property
    def sys_dir(self) -> str:
        return posix.fspath(self._sys_root)

    @property
    def etc_dir(self) -> str:
        return posix.fspath(self._etc_root)

    @property
    def run_dir(self) -> str:
        return posix.fspath(self._run_root)
