"""Context: defaults, replace(), immutability, roots as Path and as str."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmedic.context import CommandResult, Context, run_command


def test_defaults_are_the_real_host() -> None:
    ctx = Context()
    assert ctx.proc_root == Path("/proc")
    assert (ctx.sys_root, ctx.etc_root, ctx.run_root) == (Path("/sys"), Path("/etc"), Path("/run"))
    assert (ctx.proc_dir, ctx.etc_dir) == ("/proc", "/etc")
    assert ctx.config == {}
    assert ctx.only is None
    assert ctx.related_units == ()
    assert ctx.derived == {}


def test_roots_accept_str_and_path(tmp_path: Path) -> None:
    ctx = Context(proc_root=str(tmp_path / "proc"), etc_root=tmp_path / "etc")
    assert ctx.proc_root == tmp_path / "proc"
    assert isinstance(ctx.proc_root, Path)
    assert ctx.proc_dir == str(tmp_path / "proc")
    assert ctx.etc_dir == str(tmp_path / "etc")


def test_replace_copies_and_changes_only_what_is_named(tmp_path: Path) -> None:
    ctx = Context(proc_root=tmp_path, config={"ports": [1900]}, only=["ports"])
    derived = ctx.replace(derived={"ports": {}}, related_units=["a.service"])
    assert derived is not ctx
    assert derived.proc_root == tmp_path
    assert derived.config == {"ports": [1900]}
    assert derived.only == ["ports"]
    assert derived.derived == {"ports": {}}
    assert derived.related_units == ["a.service"]
    assert ctx.derived == {}
    assert ctx.replace() == ctx
    with pytest.raises(TypeError, match="no field"):
        ctx.replace(proc=tmp_path)


def test_context_is_immutable_and_compared_by_value() -> None:
    ctx = Context(config={"a": 1})
    with pytest.raises(AttributeError, match="replace"):
        ctx.config = {}  # type: ignore[misc]
    assert ctx == Context(config={"a": 1})
    assert ctx != Context(config={"a": 2})
    assert ctx == Context(proc_root=Path("/proc"), config={"a": 1})  # str and Path roots alike
    assert "config={'a': 1}" in repr(ctx)


def test_command_result_is_a_value() -> None:
    result = CommandResult(0, "out", "")
    assert result == CommandResult(0, "out", "")
    assert result != CommandResult(1, "out", "")
    assert repr(result) == "CommandResult(returncode=0, stdout='out', stderr='')"
    with pytest.raises(AttributeError):
        result.returncode = 1  # type: ignore[misc]


def test_run_command_missing_program_is_127() -> None:
    assert run_command(["/nonexistent/netmedic-test"]).returncode == 127
