"""The shipped inventories load through the flow's own validation: a shipped example can
never fail on its group's variables again (the roles' argument specs, netmedic_policy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOK = ROOT / "agent" / "tests" / "playbooks" / "validate-inventory.yml"
# Every role with argument specs, found rather than listed.
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def validate(inventory: str) -> subprocess.CompletedProcess[str]:
    roles = json.dumps({"validate_roles": ROLES})
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", inventory, str(PLAYBOOK), "-e", roles],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("inventory", ["example", "lab", "local"])
def test_every_host_of_a_shipped_inventory_validates(inventory: str) -> None:
    out = validate(f"inventories/{inventory}")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "failed=0" in out.stdout and "failed=1" not in out.stdout
    # Every role's specs ran for every host (a loop over nothing would pass vacuously).
    assert ROLES and all(f"(item={role})" in out.stdout for role in ROLES), out.stdout[-3000:]


def test_a_bad_variable_fails_naming_it(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n"
        "      netmedic_policy: {allow_destructive: some-id}\n"
        "      netmedic_agent_facts_d: maybe\n"
    )
    out = validate(str(inventory))
    assert out.returncode != 0
    assert "netmedic_agent_facts_d" in out.stdout
