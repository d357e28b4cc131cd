"""Shared test helpers: fixture roots and a recording fake command runner."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import pytest

from netmedic.collectors.units import parse_show
from netmedic.context import CommandResult, Context

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
# The collection netmedic.remediation is the repository; its modules run as scripts here,
# importing their module_utils through the .ansible/collections link (scripts/venv.sh).
MODULES = ROOT / "plugins" / "modules"
COLLECTIONS = ROOT / ".ansible/collections"
RECORDED_SHOW = FIXTURES / "units" / "systemctl-show.txt"
NOBODY = 65534


def as_nobody(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a forked child with uid/gid 65534 and return its JSON result.

    Forked, not exec'd: the interpreter lives under /root, which nobody cannot read.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        data = reader.read()
    os.waitpid(pid, 0)
    return json.loads(data)


# What real systemctl prints for a unit it does not know (captured in the lab).
_NOT_FOUND = """\
NRestarts=0
ExecMainStartTimestampMonotonic=0
Id={name}
Requires=
Wants=
After=
LoadState=not-found
ActiveState=inactive
SubState=dead
FragmentPath=
DropInPaths=
UnitFileState=
ActiveEnterTimestampMonotonic=0
NeedDaemonReload=no
"""


class FakeSystemctl:
    """Answers ``systemctl show ... -- u1 u2`` from recorded blocks, in argument order.

    Units absent from the recording get systemd's own not-found block.
    """

    def __init__(self, recorded: str, overrides: Dict[str, Dict[str, str]] | None = None) -> None:
        self.blocks = {b["Id"]: b for b in parse_show(recorded)}
        for unit, props in (overrides or {}).items():
            self.blocks.setdefault(unit, {"Id": unit}).update(props)
        self.calls: List[List[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        self.calls.append(list(argv))
        assert argv[:2] == ["systemctl", "show"], argv
        names = list(argv[argv.index("--") + 1 :])
        out = []
        for name in names:
            block = self.blocks.get(name)
            if block is None:
                out.append(_NOT_FOUND.format(name=name))
            else:
                out.append("".join(f"{k}={v}\n" for k, v in block.items()))
        return CommandResult(0, "\n".join(out), "")


@pytest.fixture
def systemd_run(tmp_path: Path) -> Path:
    """A run_root where systemd looks booted (``/run/systemd/system`` exists)."""
    run = tmp_path / "run"
    (run / "systemd" / "system").mkdir(parents=True)
    return run


@pytest.fixture
def recorded_systemctl() -> FakeSystemctl:
    return FakeSystemctl(RECORDED_SHOW.read_text())


def document_paths(node: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    """Every (key or index) path into a JSON document (a list's first two items), to change
    one of them: ``{"a": [1, 2, 3]}`` → ``[("a",), ("a", 0), ("a", 1)]``."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += document_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:2]):
            found += document_paths(value, (*prefix, index))
    return found


def replaced(document: Any, path: Tuple[Any, ...], value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced by ``value``."""
    changed = copy.deepcopy(document)
    node = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def fixture_ctx(root: Path, **kwargs: object) -> Context:
    """A Context whose /etc, /run, /proc, /sys all live under ``root``."""
    roots: Dict[str, object] = {
        "proc_root": root / "proc",
        "sys_root": root / "sys",
        "etc_root": root / "etc",
        "run_root": root / "run",
    }
    roots.update(kwargs)
    return Context(**roots)  # type: ignore[arg-type]


def run_module(
    module: str,
    tmp_path: Path,
    check: bool = False,
    diff: bool = False,
    prefix: Sequence[str] = (),
    **args: Any,
) -> Dict[str, Any]:
    """Run ``plugins/modules/<module>.py`` as Ansible does (args in a file); return its JSON
    result. Its module_utils import as Ansible bundles them: ``ansible_collections.netmedic...``.

    ``prefix`` wraps the interpreter (``["setpriv", "--bounding-set=-sys_ptrace", "--"]``).
    """
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    args_file = tmp_path / f"args-{module}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run(
        [*prefix, sys.executable, str(MODULES / f"{module}.py"), str(args_file)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(COLLECTIONS)},
    )
    result: Dict[str, Any] = json.loads(proc.stdout)
    return result


AGENT = ROOT / "agent"  # the agent of this tree, as modules take it in agent_path

# Run as ``python launcher.py <python> <module.py> <args.json>`` (run_module's ``prefix``).
# The test venv has the agent installed too (``pip install -e .``, maybe from another
# checkout), which would answer for any ``agent_path``: the launcher hides every other
# copy from ``sys.path`` and records which ``netmedic`` package the module imported.
_LAUNCHER = """\
import atexit, os, runpy, sys

sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "netmedic"))]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]


def _record():
    agent = sys.modules.get("netmedic")
    with open({record!r}, "w") as out:
        out.write(getattr(agent, "__file__", None) or "")


atexit.register(_record)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_agent_module(
    module: str, tmp_path: Path, check: bool = False, **args: Any
) -> Dict[str, Any]:
    """Run a module that imports the agent, with this tree's agent unless ``agent_path`` says
    otherwise; ``imported_agent`` in the result names the package it imported."""
    record = tmp_path / f"imported-agent-{module}"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(_LAUNCHER.format(record=str(record)))
    args.setdefault("agent_path", str(AGENT))
    result = run_module(
        module, tmp_path, check=check, prefix=[sys.executable, str(launcher)], **args
    )
    result["imported_agent"] = record.read_text() if record.exists() else ""
    return result
