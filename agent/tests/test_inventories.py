"""The shipped inventories load through the flow's own check (site.yml's first play,
playbooks/plays/check-inventory.yml: the roles' argument specs, the declared ports' plans,
netmedic_policy, the run's settings) and the agent's config schema: a shipped example can
never fail on its group's variables again, and a bad variable stops a run naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from netmedic.config import checked

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
ANSIBLE = Path(sys.executable).parent / "ansible"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
# Every role with argument specs, found rather than listed: its variables' prefix.
ROLE_PREFIXES = tuple(
    f"{p.parent.parent.name}_" for p in ROOT.glob("roles/*/meta/argument_specs.yml")
)
PLAYBOOK = ROOT / "playbooks" / "plays" / "check-inventory.yml"
SITE = ROOT / "playbooks" / "site.yml"


def validate(inventory: str, playbook: Path = PLAYBOOK) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", inventory, str(playbook)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("inventory", ["example", "lab", "local"])
def test_every_host_of_a_shipped_inventory_validates(inventory: str) -> None:
    out = validate(f"inventories/{inventory}")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "failed=0" in out.stdout and "failed=1" not in out.stdout
    # The specs check looked at every host that sets a role variable (a loop over nothing
    # would pass vacuously).
    hostvars = json.loads(
        subprocess.run(
            [str(ANSIBLE_INVENTORY), "-i", f"inventories/{inventory}", "--list"],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
        ).stdout
    )["_meta"]["hostvars"]  # fmt: skip
    setting = [h for h, v in hostvars.items() if any(k.startswith(ROLE_PREFIXES) for k in v)]
    assert setting or inventory == "local", f"{inventory}: no host sets a role variable"
    assert all(f"(item={host}: " in out.stdout for host in setting), out.stdout[-3000:]


@pytest.mark.parametrize(
    ("host_vars", "named"),
    [
        ("netmedic_policy: {allow_destructive: some-id}",
         "netmedic_policy.allow_destructive must be a list of finding ids, got the string"),
        ('netmedic_policy: "yes"', "netmedic_policy must be a mapping"),
        ("netmedic_agent_facts_d: maybe", "netmedic_agent_facts_d"),
        ("netmedic_serial: lots", "netmedic_serial a count or a percentage"),
        ("netmedic_only: declared-port-held-by-other", "netmedic_only a list of finding ids"),
    ],
)  # fmt: skip
def test_a_bad_variable_stops_the_run_naming_it(tmp_path: Path, host_vars: str, named: str) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n"
        f"      {host_vars}\n    h2:\n      ansible_connection: local\n"
    )
    out = validate(str(inventory), SITE)  # the real run: it must stop before any host
    assert out.returncode != 0
    assert named in out.stdout, out.stdout[-3000:]
    # Neither host was diagnosed, planned or changed: the run stopped at its check.
    assert "PLAY [Diagnose, plan and remediate]" not in out.stdout, out.stdout[-3000:]
    assert "PLAY [Start the run]" not in out.stdout, out.stdout[-3000:]


def agent_configs(inventory: str) -> Dict[str, Any]:
    """Each host's netmedic_agent_config as a play would template it (ansible's debug)."""
    out = subprocess.run(
        [str(ANSIBLE), "-i", inventory, "all", "-m", "ansible.builtin.debug",
         "-a", "var=netmedic_agent_config"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
        env={**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"},
    )  # fmt: skip
    (task,) = json.loads(out.stdout)["plays"][0]["tasks"]
    return {host: result["netmedic_agent_config"] for host, result in task["hosts"].items()}


@pytest.mark.parametrize("inventory", ["example", "lab", "local"])
def test_every_hosts_agent_config_passes_the_agents_schema(inventory: str) -> None:
    configs = agent_configs(f"inventories/{inventory}")
    declared = {h: c for h, c in configs.items() if isinstance(c, dict)}  # else: not set
    assert declared or inventory == "local", f"{inventory}: no host declares netmedic_agent_config"
    for host, config in declared.items():
        _used, errors = checked(config, f"{inventory}/{host}: netmedic_agent_config")
        assert errors == [], [str(e) for e in errors]


def test_a_declared_port_with_an_unknown_holder_profile_fails_naming_it(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n"
        "      netmedic_agent_config:\n        ports:\n"
        "          - {port: 1900, proto: udp, owner: {container: airconnect},"
        " on_conflict: reconfigure, holders: [plexmediaserver.service], profile: plex}\n"
    )
    out = validate(str(inventory))
    assert out.returncode != 0
    assert (
        "netmedic_agent_config.ports[0].profile: 'plex' is not in port_conflicts_holder_profiles"
        in out.stdout
    )
