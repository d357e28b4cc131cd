"""Contract: a role's meta/argument_specs.yml states the defaults its defaults/main.yml sets.

ansible-doc and the role's README show the spec's `default`; a value that differs from
defaults/main.yml (or a default left out) documents a role that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ALL_ROLES = sorted(path.parent.parent.name for path in ROLES.glob("*/meta/argument_specs.yml"))


def spec_options(role: str) -> Dict[str, Any]:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return dict(spec["argument_specs"]["main"]["options"])


def role_defaults(role: str) -> Dict[str, Any]:
    return dict(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {})


@pytest.mark.parametrize("role", ALL_ROLES)
def test_declared_defaults_match_defaults_main(role: str) -> None:
    defaults = role_defaults(role)
    differ = {
        name: (option["default"], defaults.get(name, "<not in defaults/main.yml>"))
        for name, option in spec_options(role).items()
        if "default" in option and option["default"] != defaults.get(name, object())
    }
    assert not differ, f"{role}: argument_specs default vs defaults/main.yml: {differ}"


def test_ephemeral_ports_declares_every_default() -> None:
    # Its null defaults mean "keep what the drop-in holds"; the spec says so with default: null.
    options = spec_options("ephemeral_ports")
    missing = [
        name for name in role_defaults("ephemeral_ports") if "default" not in options.get(name, {})
    ]
    assert not missing, f"ephemeral_ports: no default in argument_specs for {missing}"
