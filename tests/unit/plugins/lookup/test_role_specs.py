"""plugins/lookup/role_specs.py: every role's main argument specs, found in the collection."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.netmedic.remediation.plugins.lookup import role_specs


def test_every_role_with_specs_is_found_with_its_options() -> None:
    (specs,) = role_specs.LookupModule().run([])
    found = Path(role_specs.ROLES_DIR).glob("*/meta/argument_specs.yml")
    assert sorted(specs) == sorted(path.parent.parent.name for path in found)
    assert "port_conflicts_plan" in specs["port_conflicts"]


def test_terms_are_refused() -> None:
    with pytest.raises(AnsibleLookupError, match="takes no terms"):
        role_specs.LookupModule().run(["x"])


def test_a_spec_without_main_fails_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "broken" / "meta").mkdir(parents=True)
    (tmp_path / "broken" / "meta" / "argument_specs.yml").write_text("argument_specs: {}\n")
    monkeypatch.setattr(role_specs, "ROLES_DIR", str(tmp_path))
    with pytest.raises(AnsibleLookupError, match=r"broken/meta/argument_specs\.yml: no readable"):
        role_specs.LookupModule().run([])
