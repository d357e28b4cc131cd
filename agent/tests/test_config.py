"""config.load_config: missing, good, malformed, wrong types."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES

from netmedic.config import load_config

CONFIG = FIXTURES / "config"


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_config(tmp_path) == ({}, None)


def test_good_file() -> None:
    config, error = load_config(CONFIG / "good" / "etc")
    assert error is None
    assert config["ports"][0] == {"port": 1900, "proto": "udp", "owner": "airupnp.service"}
    assert config["processes"][0]["match"] == {"name": "gp(client|service)"}
    assert config["channels"][0]["key_path"] == ["core", "releaseChannel"]


def test_malformed_names_the_file() -> None:
    config, error = load_config(CONFIG / "malformed" / "etc")
    assert config == {}
    assert error is not None
    assert str(error).startswith("/etc/netmedic/config.yml: invalid YAML")


def test_wrong_type() -> None:
    config, error = load_config(CONFIG / "wrongtype" / "etc")
    assert config == {}
    assert str(error) == "/etc/netmedic/config.yml: key 'ports' must be a list, got dict"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "netmedic").mkdir()
    (tmp_path / "netmedic" / "config.yml").write_text("# nothing yet\n")
    assert load_config(tmp_path) == ({}, None)
