"""plugins/module_utils/agent.py: the agent imported from agent_path, ahead of other copies,
or a failure that names the path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import yaml
from ansible_collections.netmedic.remediation.plugins.doc_fragments.agent import ModuleDocFragment
from ansible_collections.netmedic.remediation.plugins.module_utils import agent


@pytest.fixture
def fake_agent(tmp_path: Path) -> Iterator[Path]:
    """An agent_path whose netmedic package says where it is; sys.modules restored after."""
    package = tmp_path / "netmedic"
    package.mkdir()
    (package / "__init__.py").write_text("WHERE = 'fake'\n")
    (package / "api.py").write_text("def collect():\n    return 'fake facts'\n")
    saved = {k: v for k, v in sys.modules.items() if k == "netmedic" or k.startswith("netmedic.")}
    for name in saved:
        del sys.modules[name]
    yield tmp_path
    for name in [k for k in sys.modules if k == "netmedic" or k.startswith("netmedic.")]:
        del sys.modules[name]
    sys.modules.update(saved)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_the_agent_under_agent_path_is_imported(fake_agent: Path) -> None:
    (api,) = agent.load_agent(str(fake_agent), "api")
    assert api.collect() == "fake facts"
    assert sys.path[0] == str(fake_agent)


def test_a_missing_agent_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    saved = {k: v for k, v in sys.modules.items() if k == "netmedic" or k.startswith("netmedic.")}
    for name in saved:
        del sys.modules[name]
    try:
        with pytest.raises(agent.AgentMissing, match=f"netmedic agent not found under {missing}"):
            agent.load_agent(str(missing), "no_such_module")
    finally:
        sys.modules.update(saved)
        sys.path.remove(str(missing))


class FailingModule:
    """What import_agent uses of AnsibleModule: params and fail_json (which exits)."""

    def __init__(self, agent_path: str) -> None:
        self.params: Dict[str, Any] = {"agent_path": agent_path}
        self.failed: Dict[str, Any] = {}

    def fail_json(self, **result: Any) -> None:
        self.failed = result
        raise SystemExit(1)


def test_import_agent_fails_the_task_saying_how_to_install_it(fake_agent: Path) -> None:
    module = FailingModule(str(fake_agent))
    with pytest.raises(SystemExit):
        agent.import_agent(module, "no_such_module")
    assert module.failed["msg"].startswith(f"netmedic agent not found under {fake_agent}")
    assert "netmedic.remediation.netmedic_agent role or set agent_path" in module.failed["msg"]


def test_the_agent_path_default_is_one_value_everywhere() -> None:
    # The install location every role and playbook reads is netmedic_agent_path (the
    # netmedic_agent role's default); the modules' fallback and the docs must say the same.
    root = Path(__file__).resolve().parents[4]
    role = root / "roles" / "netmedic_agent"
    role_default = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["agent_path"]
    assert {
        role_default["netmedic_agent_path"],
        spec["argument_specs"]["main"]["options"]["netmedic_agent_path"]["default"],
        documented["default"],
    } == {agent.DEFAULT_AGENT_PATH}
