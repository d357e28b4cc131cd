"""Contract: every catalog remediation names a real role that handles its id, and only
variables that role accepts.

A finding's `remediation.vars` are handed to the role by playbooks/site.yml; a
name the role's meta/argument_specs.yml does not know would be dropped or
rejected on a real host, so it is caught here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from netmedic.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"


def role_options(role: str) -> Dict[str, Any]:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return dict(spec["argument_specs"]["main"]["options"])


def unknown_keys(value: Any, option: Dict[str, Any], where: str) -> list:
    """Names in `value` that the option's nested `options` do not declare."""
    nested = option.get("options")
    if not nested:
        return []
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, sub in item.items():
            if key not in nested:
                found.append(f"{where}.{key}")
            else:
                found.extend(unknown_keys(sub, nested[key], f"{where}.{key}"))
    return found


CATALOG = load_catalog(etc_root=None)  # the shipped entries only


@pytest.mark.parametrize("entry_id", sorted(CATALOG.entries))
def test_remediation_vars_are_options_of_the_role(entry_id: str) -> None:
    entry = CATALOG.entries[entry_id]
    role = entry.role
    assert (ROLES / role / "meta" / "argument_specs.yml").is_file(), f"{entry_id}: no role {role}"
    options = role_options(role)
    problems = []
    for name, value in entry.role_vars.items():
        if name not in options:
            problems.append(name)
            continue
        problems.extend(unknown_keys(value, options[name], name))
    assert not problems, f"{entry_id}: {role} does not accept {problems}"


@pytest.mark.parametrize("entry_id", sorted(CATALOG.entries))
def test_the_role_handles_the_entry(entry_id: str) -> None:
    # A role acts only on the ids it lists (and asks the agent for them when run on its
    # own): an entry its role does not list would be planned, then dropped or refused.
    role = CATALOG.entries[entry_id].role
    role_vars = yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())
    handles = [item["id"] for item in role_vars[f"__{role}_handles"]]
    assert entry_id in handles, f"{entry_id}: add it to roles/{role}/vars/main.yml __{role}_handles"
