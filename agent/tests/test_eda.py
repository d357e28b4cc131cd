"""The event-driven mode's parts without a lab: the event source plugin polling a real
agent (`python -m netmedic diagnose --format json` on saved facts that change between
polls), and the rulebook as ansible-rulebook itself validates and parses it."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest
import yaml
from ansible_rulebook import rules_parser
from ansible_rulebook.collection import find_collection
from ansible_rulebook.conf import settings
from ansible_rulebook.validators import Validate

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "extensions" / "eda" / "plugins" / "event_source" / "netmedic_findings.py"
RULEBOOK = ROOT / "extensions" / "eda" / "rulebooks" / "netmedic.yml"
FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"


def load_source() -> ModuleType:
    spec = importlib.util.spec_from_file_location("netmedic_findings", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLUGIN = load_source()


def agent_command(facts_dir: Path) -> List[str]:
    """The real agent diagnosing the saved facts of ``{host}`` with the fixtures' config."""
    return [
        sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from netmedic.cli import main; sys.exit(main())", str(ROOT / "agent"),
        "diagnose", "--format", "json", "--facts", f"{facts_dir}/{{host}}.json",
        "--config", str(FIXTURES / "config.yml"),
    ]  # fmt: skip


def run(coroutine: Any) -> Any:
    """``asyncio.run``, letting the loop finish closing the subprocess transports first."""

    async def settled() -> Any:
        result = await coroutine
        await asyncio.sleep(0.1)
        return result

    return asyncio.run(settled())


def plant(facts_dir: Path, host: str, fixture: str) -> None:
    shutil.copy(FIXTURES / f"{fixture}.json", facts_dir / f"{host}.json")


async def collect(queue: asyncio.Queue[Dict[str, Any]], settle: float) -> List[Dict[str, Any]]:
    """The events put on ``queue`` until none came for ``settle`` seconds."""
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(queue.get(), settle))
        except asyncio.TimeoutError:
            return events


def keys(events: List[Dict[str, Any]]) -> List[tuple]:  # type: ignore[type-arg]
    return sorted((e["netmedic"]["host"], e["netmedic"]["id"], e["netmedic"]["subject"])
                  for e in events)  # fmt: skip


def test_new_findings_are_events_once_and_again_when_they_come_back(tmp_path: Path) -> None:
    plant(tmp_path, "ws1", "healthy")
    plant(tmp_path, "ws2", "incidents")
    expected = PLUGIN.Poller(agent_command(tmp_path), 30)

    async def scenario() -> List[List[Dict[str, Any]]]:
        queue: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
        args = {"hosts": ["ws1", "ws2"], "command": agent_command(tmp_path), "interval": 0.3}
        task = asyncio.create_task(PLUGIN.main(queue, args))
        rounds = [await collect(queue, 3)]  # ws2's findings; ws1 is healthy
        rounds.append(await collect(queue, 2))  # the same findings again: nothing
        plant(tmp_path, "ws1", "incidents")  # ws1 gets them
        rounds.append(await collect(queue, 3))
        plant(tmp_path, "ws2", "healthy")
        rounds.append(await collect(queue, 2))  # gone: nothing
        plant(tmp_path, "ws2", "incidents")  # back: events again
        rounds.append(await collect(queue, 3))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return rounds

    rounds = run(scenario())
    incident_findings = run(expected.poll("ws2"))
    assert len(incident_findings) == 13  # the incident fixture's findings, one event each
    ws2 = keys(incident_findings)
    ws1 = [("ws1", *key[1:]) for key in ws2]
    assert [keys(events) for events in rounds] == [ws2, [], ws1, [], ws2]
    event = next(e for e in rounds[0] if e["netmedic"]["id"] == "declared-port-held-by-other")
    assert event["meta"] == {"hosts": "ws2"}
    assert event["netmedic"] == {
        "host": "ws2", "id": "declared-port-held-by-other", "subject": "1900/udp",
        "severity": "critical", "title": event["netmedic"]["title"], "role": "port_conflicts",
        "destructive": True, "evidence": event["netmedic"]["evidence"],
        "collected_at": "2024-05-01T10:00:00Z",
    }  # fmt: skip
    assert any("gmediarender" in line or "1900" in line for line in event["netmedic"]["evidence"])


def test_a_host_that_cannot_be_diagnosed_is_one_event_per_failure_streak(tmp_path: Path) -> None:
    poller = PLUGIN.Poller(agent_command(tmp_path), 30)  # no facts file for ws9 yet

    async def polls() -> List[List[Dict[str, Any]]]:
        first, second = await poller.poll("ws9"), await poller.poll("ws9")
        plant(tmp_path, "ws9", "healthy")
        third = await poller.poll("ws9")
        (tmp_path / "ws9.json").unlink()
        return [first, second, third, await poller.poll("ws9")]

    first, second, third, fourth = run(polls())
    assert [e["netmedic"]["host"] for e in first] == ["ws9"]
    assert "exit 3" in first[0]["netmedic"]["error"] and "ws9.json" in first[0]["netmedic"]["error"]
    assert (second, third) == ([], [])
    assert len(fourth) == 1 and "error" in fourth[0]["netmedic"]


def test_a_command_that_is_not_there_or_not_the_agent_is_an_error(tmp_path: Path) -> None:
    async def poll(command: List[str]) -> List[Dict[str, Any]]:
        return await PLUGIN.Poller(command, 5).poll("h")  # type: ignore[no-any-return]

    missing = run(poll([str(tmp_path / "no-such-command")]))
    assert "no-such-command" in missing[0]["netmedic"]["error"]
    not_json = run(poll(["echo", "hello"]))
    assert "not JSON" in not_json[0]["netmedic"]["error"]
    slow = run(PLUGIN.Poller(["sleep", "5"], 0.2).poll("h"))
    assert "no answer within 0.2 s" in slow[0]["netmedic"]["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "hosts must be a list of host names"),
        ({"hosts": "ws1"}, "hosts must be a list of host names"),
        ({"hosts": ["ws1"], "command": "netmedic diagnose"}, "command must be an argv list"),
        ({"hosts": ["ws1"], "interval": 0}, "interval and timeout must be > 0"),
    ],
)
def test_bad_arguments_fail_before_any_poll(args: Dict[str, Any], message: str) -> None:
    queue: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
    with pytest.raises(ValueError, match=message):
        run(PLUGIN.main(queue, args))


def test_rulebook_is_valid_and_runs_the_site_flow_for_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ansible-rulebook resolves the FQCN source through `ansible-galaxy collection list`
    # (the venv's, as on PATH in a run), under the checkout's ansible.cfg: this checkout.
    monkeypatch.setattr(
        settings, "ansible_galaxy_path", str(Path(sys.executable).parent / "ansible-galaxy")
    )
    monkeypatch.setenv("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    find_collection.cache_clear()
    data = yaml.safe_load(RULEBOOK.read_text())
    Validate.rulebook(data)  # ansible-rulebook's own JSON schema
    (ruleset,) = rules_parser.parse_rule_sets(data, {"netmedic_eda_hosts": ["ws1"]})
    (source,) = ruleset.sources
    assert source.source_name == "netmedic.remediation.netmedic_findings"
    assert set(source.source_args) == {"hosts", "command", "interval"}
    remediate, error = ruleset.rules
    (action,) = remediate.actions
    assert action.action == "run_playbook"
    assert action.action_args == {
        "name": "netmedic.remediation.site",
        "extra_vars": {"netmedic_hosts": "{{ event.netmedic.host }}",
                       "netmedic_only": ["{{ event.netmedic.id }}"]},
    }  # fmt: skip
    # The collection's own: the source and the playbook its FQCNs name are in this tree.
    assert (ROOT / "playbooks" / "site.yml").is_file()
    assert SOURCE.is_file()
    assert error.actions[0].action == "debug"
