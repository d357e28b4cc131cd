"""The code's shape: no import circle in the agent, every agent module importable alone, and
short files, the agent's and every other Python file outside tests and bench."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

from netmedic.registry import FAMILIES

PACKAGE = Path(__file__).resolve().parents[1] / "netmedic"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: Dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> Set[str]:
    """The package's modules ``name`` imports anywhere in its file (in functions too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .. import netlink
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from netmedic import probe` imports the module netmedic.probe
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            found.update(submodules & MODULES.keys() or {base})
    if name == "netmedic.facts":  # collectors are imported by name: __import__(f"...{family}")
        found.update(f"netmedic.collectors.{family}" for family in FAMILIES)
    return found & MODULES.keys() - {name}


def test_the_import_graph_has_no_circle() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    assert graph["netmedic.cli"] >= {"netmedic.args", "netmedic.api", "netmedic.commands"}
    done: Set[str] = set()

    def visit(name: str, path: List[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in MODULES:
        visit(name, [])


def test_function_level_imports_are_edges() -> None:
    """The walk sees imports inside functions, like cli's of commands: circles hide there."""
    assert "netmedic.commands" in imports_of("netmedic.cli")  # imported inside a function


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_alone_in_a_fresh_interpreter(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


ROOT = PACKAGE.parents[1]
# The project's Python outside tests and bench: the agent, the plugins, scripts, extensions.
SOURCES = sorted(
    path.relative_to(ROOT)
    for top in ("agent/netmedic", "plugins", "scripts", "extensions")
    for path in (ROOT / top).rglob("*.py")
)


@pytest.mark.parametrize("path", SOURCES, ids=str)
def test_no_source_file_is_longer_than_400_lines(path: Path) -> None:
    lines = (ROOT / path).read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path}: {lines} lines"
