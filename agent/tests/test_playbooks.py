"""The playbooks as an operator runs them: the incident playbooks the role READMEs show
reach the example fleet's hosts, and the fleet playbooks refuse an inventory without hosts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

def incident_playbooks() -> Dict[str, str]:
    """Each incident playbook (one importing site.yml) and the example group it targets.

    Found rather than listed: ``netmedic_hosts: "{{ netmedic_targets | default('desktops') }}"``
    in ``playbooks/multipass_dns_race.yml`` → ``{"multipass_dns_race.yml": "desktops"}``.
    """
    found = {}
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        plays = yaml.safe_load(path.read_text())
        (play,) = plays if len(plays) == 1 else [{}]
        if play.get("ansible.builtin.import_playbook") == "site.yml":
            hosts = play["vars"]["netmedic_hosts"]
            match = re.search(r"default\('([^']+)'\)", hosts)
            assert match, f"{path.name}: netmedic_hosts names no default group: {hosts}"
            found[path.name] = match.group(1)
    return found


INCIDENT_PLAYBOOKS = incident_playbooks()


def test_the_incident_playbooks_are_found() -> None:
    assert len(INCIDENT_PLAYBOOKS) >= 5, INCIDENT_PLAYBOOKS


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


def play_hosts(output: str, play: str) -> List[str]:
    """The hosts `--list-hosts` prints for the play named ``play``."""
    blocks = output.split("\n\n")
    block = next(b for b in blocks if f"): {play}\t" in b or b.rstrip().endswith(f"): {play}"))
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("hosts ("))
    return sorted(line.strip() for line in lines[start + 1 :] if line.strip())


@pytest.mark.parametrize("playbook,group", sorted(INCIDENT_PLAYBOOKS.items()))
def test_incident_playbook_runs_the_site_flow_on_its_example_group(
    playbook: str, group: str
) -> None:
    out = ansible_playbook("-i", "inventories/example", f"playbooks/{playbook}", "--list-hosts")
    assert out.returncode == 0, out.stdout + out.stderr
    site = ansible_playbook(
        "-i", "inventories/example", "playbooks/site.yml", "--list-hosts", "--limit", group
    )
    assert site.returncode == 0, site.stdout + site.stderr
    hosts = play_hosts(out.stdout, "Diagnose, plan and remediate")
    assert hosts, f"{playbook} targets no host of inventories/example:\n{out.stdout}"
    assert hosts == play_hosts(site.stdout, "Diagnose, plan and remediate")
    # The same plays as site.yml: the plan, the report and the failed hosts' play.
    for play in ("Start the run", "Write the fleet report", "Fail the hosts that failed"):
        assert f"): {play}" in out.stdout, play


def test_incident_playbooks_are_thin_entries_to_site_yml() -> None:
    for playbook in INCIDENT_PLAYBOOKS:
        text = (ROOT / "playbooks" / playbook).read_text()
        assert "ansible.builtin.import_playbook: site.yml" in text, playbook
        assert "netmedic_only:" in text and "netmedic_hosts:" in text, playbook
        assert "include_role" not in text and "roles:" not in text, playbook


@pytest.mark.parametrize("playbook", ["site.yml", "facts.yml"])
def test_fleet_playbook_refuses_an_inventory_without_hosts(playbook: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("---\nall:\n  hosts: {}\n")
    out = ansible_playbook("-i", str(empty), f"playbooks/{playbook}", "--check")
    assert out.returncode != 0, out.stdout
    assert f"the inventory {empty} has no hosts: nothing to target" in out.stdout
