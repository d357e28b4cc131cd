"""plugins/modules/netmedic_facts.py: the real agent in this tree, found only at ``agent_path``.

The module imports the agent in-process from ``agent_path``; conftest's
``run_agent_module`` hides every other copy, so each run uses ``agent_path`` or fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import AGENT, run_agent_module

from netmedic.catalog import load_catalog
from netmedic.config import load_config
from netmedic.context import Context
from netmedic.diagnose import diagnose
from netmedic.registry import FAMILIES

ENVELOPE = {"schema_version", "agent_version", "host", "collected_at", "duration_ms", "errors"}


def facts_module(tmp_path: Path, check: bool = False, **args: Any) -> Dict[str, Any]:
    """Run netmedic_facts with this tree's agent (unless ``agent_path`` says otherwise)."""
    return run_agent_module("netmedic_facts", tmp_path, check=check, **args)


def families(document: Dict[str, Any]) -> List[str]:
    assert set(document) >= ENVELOPE, sorted(document)
    return sorted(set(document) - ENVELOPE)


@pytest.mark.parametrize("check", [False, True])
def test_only_limits_the_families_and_nothing_changes(tmp_path: Path, check: bool) -> None:
    result = facts_module(tmp_path, check=check, only=["dns", "ephemeral"])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["imported_agent"] == str(AGENT / "netmedic" / "__init__.py")
    document = result["ansible_facts"]["netmedic"]
    assert families(document) == ["dns", "ephemeral"]
    assert "netmedic_diagnosis" not in result["ansible_facts"]


def test_no_only_gathers_every_family(tmp_path: Path) -> None:
    result = facts_module(tmp_path, check=True)
    assert result["changed"] is False
    assert families(result["ansible_facts"]["netmedic"]) == sorted(FAMILIES)


@pytest.mark.parametrize("check", [False, True])
def test_diagnose_returns_the_diagnosis_of_the_facts_it_returns(
    tmp_path: Path, check: bool
) -> None:
    result = facts_module(tmp_path, check=check, diagnose=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    document = result["ansible_facts"]["netmedic"]
    assert families(document) == sorted(FAMILIES)  # diagnosis needs every family
    diagnosis = result["ansible_facts"]["netmedic_diagnosis"]
    assert set(diagnosis) == {"status", "exit_code", "findings", "skipped", "catalog_errors"}
    # The same diagnosis this tree's agent makes of that document.
    host = Context()
    expected = diagnose(document, load_catalog(host.etc_root), load_config(host.etc_root)[0])
    assert diagnosis == expected.to_dict()


def test_diagnose_with_families_named_in_only_is_refused(tmp_path: Path) -> None:
    result = facts_module(tmp_path, diagnose=True, only=["dns"])
    assert result["failed"]
    assert "only=['dns'] with diagnose=true" in result["msg"]


def test_diagnose_accepts_an_explicitly_empty_only(tmp_path: Path) -> None:
    result = facts_module(tmp_path, diagnose=True, only=[])
    assert not result.get("failed"), result.get("msg")
    assert families(result["ansible_facts"]["netmedic"]) == sorted(FAMILIES)


def test_diagnose_uses_the_config_it_is_given(tmp_path: Path) -> None:
    """A config passed to the module is what both the facts and the diagnosis use."""
    unit = "netmedic-test-no-such-unit.service"
    result = facts_module(tmp_path, diagnose=True, config={"units": [unit]})
    assert not result.get("failed"), result.get("msg")
    document = result["ansible_facts"]["netmedic"]
    assert unit in repr(document["units"]), "the configured unit is missing from the facts"
    host = Context()
    expected = diagnose(document, load_catalog(host.etc_root), {"units": [unit]})
    assert result["ansible_facts"]["netmedic_diagnosis"] == expected.to_dict()


@pytest.mark.parametrize("check", [False, True])
def test_a_bad_agent_path_fails_naming_the_path(tmp_path: Path, check: bool) -> None:
    missing = tmp_path / "no-agent-here"
    result = facts_module(tmp_path, check=check, agent_path=str(missing), only=["dns"])
    assert result["failed"]
    assert result.get("changed", False) is False
    assert f"netmedic agent not found under {missing}" in result["msg"]
    assert "ansible_facts" not in result
    assert result["imported_agent"] == ""
