"""The netmedic_agent role's `timer` entry point (the metrics textfile's and ansible-pull's
units), in check mode on this machine: bad input fails naming the key before anything,
and the service's command line is quoted and %-escaped the way systemd reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run_timer(tmp_path: Path, timer: Dict[str, Any]) -> subprocess.CompletedProcess[str]:
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Install the timer",
            "ansible.builtin.include_role": {
                "name": "netmedic.remediation.netmedic_agent", "tasks_from": "timer",
            },
            "vars": {"netmedic_agent_timer": timer},
        }],
    }]  # fmt: skip
    playbook = tmp_path / "timer.yml"
    playbook.write_text(yaml.safe_dump(play))
    return subprocess.run(
        [str(PLAYBOOK), "-i", "localhost,", "-c", "local", "--check", "--diff", str(playbook)],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": f"{PLAYBOOK.parent}:/usr/bin:/bin",
             "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".ansible" / "collections"),
             "ANSIBLE_NOCOLOR": "1", "HOME": str(tmp_path)},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("timer", "message"),
    [
        ({"description": "x"}, "missing required arguments: name found in netmedic_agent_timer"),
        (
            {"name": "x", "description": "x", "state": "sideways"},
            "value of state must be one of: present, absent, got: sideways",
        ),
        ({"name": "x", "description": "x"}, "netmedic_agent_timer.command is required"),
    ],
)
def test_bad_timer_input_fails_naming_it(
    tmp_path: Path, timer: Dict[str, Any], message: str
) -> None:
    out = run_timer(tmp_path, timer)
    assert out.returncode != 0
    assert message in out.stdout, out.stdout[-2000:]
    assert "Write the service unit" not in out.stdout


def test_command_is_quoted_and_percent_escaped_for_systemd(tmp_path: Path) -> None:
    timer = {
        "name": "netmedic-test",
        "description": "a test",
        "command": ["/usr/bin/ansible-pull", "--url=file:///srv/a%20b.git", "two words"],
        "success_exit_status": [1, 2],
        "every": "2h",
        "randomized_delay": "5min",
    }
    out = run_timer(tmp_path, timer)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (
        "+ExecStart=/usr/bin/ansible-pull --url=file:///srv/a%%20b.git 'two words'\n" in out.stdout
    )
    assert "+SuccessExitStatus=1 2\n" in out.stdout
    assert "+Type=oneshot\n" in out.stdout
    assert "+OnUnitInactiveSec=2h\n" in out.stdout and "+RandomizedDelaySec=5min\n" in out.stdout
    assert not Path("/etc/systemd/system/netmedic-test.service").exists()
