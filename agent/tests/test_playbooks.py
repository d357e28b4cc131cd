"""The playbooks as an operator runs them: the incident playbooks the role READMEs show
reach the example fleet's hosts, and the fleet playbooks refuse an inventory without hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# Each incident playbook and the example inventory's group it is written for.
INCIDENT_PLAYBOOKS = {
    "multipass-dns-race.yml": "desktops",
    "airconnect-port-conflict.yml": "media_servers",
    "portmaster-rollback.yml": "security_gateways",
    "globalprotect-reap.yml": "vpn_laptops",
    "trippy-ephemeral.yml": "tracing_hosts",
}


def ansible_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing (scripts/venv.sh test)"
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def listed_hosts(output: str) -> List[str]:
    """The host names `--list-hosts` prints under "hosts (N):"."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("hosts ("))
    return [line.strip() for line in lines[start + 1 :] if line.strip()]


@pytest.mark.parametrize("playbook,group", sorted(INCIDENT_PLAYBOOKS.items()))
def test_incident_playbook_targets_its_example_group(playbook: str, group: str) -> None:
    out = ansible_playbook("-i", "inventories/example", f"playbooks/{playbook}", "--list-hosts")
    assert out.returncode == 0, out.stdout + out.stderr
    inventory = ansible_playbook(
        "-i", "inventories/example", "playbooks/site.yml", "--list-hosts", "--limit", group
    )
    assert inventory.returncode == 0, inventory.stdout + inventory.stderr
    hosts = listed_hosts(out.stdout)
    assert hosts, f"{playbook} targets no host of inventories/example:\n{out.stdout}"
    assert sorted(hosts) == sorted(listed_hosts(inventory.stdout.split("play #2")[1]))


@pytest.mark.parametrize("playbook", ["site.yml", "facts.yml"])
def test_fleet_playbook_refuses_an_inventory_without_hosts(playbook: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("---\nall:\n  hosts: {}\n")
    out = ansible_playbook("-i", str(empty), f"playbooks/{playbook}", "--check")
    assert out.returncode != 0, out.stdout
    assert f"the inventory {empty} has no hosts: nothing to target" in out.stdout
