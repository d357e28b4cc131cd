"""plugins/lookup/agent_source.py: the agent directory of the collection it is part of."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.netmedic.remediation.plugins.lookup import agent_source


def test_it_names_the_collection_s_agent_directory() -> None:
    (found,) = agent_source.LookupModule().run([])
    collection = os.path.dirname(os.path.dirname(os.path.dirname(agent_source.__file__)))
    assert found == os.path.join(os.path.abspath(collection), "agent")
    assert os.path.isfile(os.path.join(found, "netmedic", "__init__.py"))


def test_terms_are_refused() -> None:
    with pytest.raises(AnsibleLookupError, match="takes no terms"):
        agent_source.LookupModule().run(["x"])


def test_a_collection_without_its_agent_fails_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(agent_source, "AGENT_DIR", str(tmp_path))
    missing = r"not in the collection: no .*netmedic/__init__\.py"
    with pytest.raises(AnsibleLookupError, match=missing):
        agent_source.LookupModule().run([])
