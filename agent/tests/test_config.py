"""config: the host's file (missing, good, malformed, too large, too deep) and the schema
check that leaves out only the values that break it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from conftest import FIXTURES, ROOT

from netmedic.config import ConfigError, ConfigInvalid, checked, load_config
from netmedic.inputs import MAX_YAML_BYTES

CONFIG = FIXTURES / "config"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "netmedic").mkdir(exist_ok=True)
    (tmp_path / "netmedic" / "config.yml").write_text(text)
    return tmp_path


def messages(errors: List[ConfigError]) -> List[str]:
    return [str(error) for error in errors]


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_config(tmp_path) == ({}, [])


def test_good_file() -> None:
    config, errors = load_config(CONFIG / "good" / "etc")
    assert errors == []
    assert config["ports"][0] == {"port": 1900, "proto": "udp", "owner": "airupnp.service"}
    assert config["processes"][0]["match"] == {"name": "gp(client|service)"}
    assert config["channels"][0]["key_path"] == ["core", "releaseChannel"]


def test_malformed_names_the_file() -> None:
    config, (error,) = load_config(CONFIG / "malformed" / "etc")
    assert config == {}
    assert isinstance(error, ConfigError) and not isinstance(error, ConfigInvalid)
    assert str(error).startswith("/etc/netmedic/config.yml: invalid YAML")


def test_wrong_type_is_left_out_naming_its_path() -> None:
    config, (error,) = load_config(CONFIG / "wrongtype" / "etc")
    assert config == {}
    assert isinstance(error, ConfigInvalid)
    assert str(error) == (
        "/etc/netmedic/config.yml: ports: must be an array, got object (left out: ports)"
    )


def test_empty_file(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing yet\n")) == ({}, [])


def test_a_port_out_of_range_is_reported_and_the_rest_is_used(tmp_path: Path) -> None:
    text = (
        "ports:\n  - {port: 70000, proto: udp, owner: a.service}\n"
        "  - {port: 1900, proto: udp, owner: b.service}\n"
        "  - {port: 22, proto: sctp}\n"
        "units: [a.service]\ndns: {timeout_s: fast, probe_names: [x]}\nbogus: 1\n"
    )
    config, errors = load_config(write(tmp_path, text))
    assert config == {
        "ports": [{"port": 1900, "proto": "udp", "owner": "b.service"}],
        "units": ["a.service"],
        "dns": {"probe_names": ["x"]},
    }
    assert all(isinstance(error, ConfigInvalid) for error in errors)
    assert messages(errors) == [
        "/etc/netmedic/config.yml: ports[0].port: must be <= 65535 (left out: ports[0])",
        "/etc/netmedic/config.yml: ports[2].proto: 'sctp' is not one of: tcp, udp"
        " (left out: ports[2])",
        "/etc/netmedic/config.yml: dns.timeout_s: must be a number, got string"
        " (left out: dns.timeout_s)",
        "/etc/netmedic/config.yml: bogus: unknown key (known: ports, units, dns, processes,"
        " channels) (left out: bogus)",
    ]


def test_a_top_level_that_is_not_a_mapping_is_unusable(tmp_path: Path) -> None:
    config, (error,) = load_config(write(tmp_path, "- ports\n"))
    assert (config, str(error)) == (
        {}, "/etc/netmedic/config.yml: top level must be a mapping, got list",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 50_000 + "]" * 50_000, "nested deeper than 64 levels"),
        ("".join("  " * i + "- \n" for i in range(200)), "nested deeper than 64 levels"),
        ("a: &a [*a]\n", "alias *a refers to a value that contains it"),
        ("units: [{name: a.service, since: 2024-05-01}]\n",
         "units[0].since: a date is not a JSON value (quote it)"),
        ("dns: {timeout_s: .nan}\n", "dns.timeout_s: nan is not a JSON number"),
        ("ports: [{1900: udp}]\n", "ports[0]: key 1900 is not a string (quote it)"),
        ("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)),
         "more than 1000000 values once its aliases are expanded"),
        ("ports: []\n" + "#" * MAX_YAML_BYTES, f"larger than {MAX_YAML_BYTES} bytes"),
    ],
)  # fmt: skip
def test_hostile_files_are_one_error_naming_the_file(
    tmp_path: Path, text: str, fragment: str
) -> None:
    config, (error,) = load_config(write(tmp_path, text))
    assert config == {}
    assert str(error).startswith("/etc/netmedic/config.yml: ")
    assert fragment in str(error)


def test_a_caller_config_is_checked_the_same_way() -> None:
    config, errors = checked({"ports": [{"port": 0}], "units": None}, "config")
    assert config == {"ports": []}
    assert messages(errors) == ["config: ports[0].port: must be >= 1 (left out: ports[0])"]


def agent_configs() -> List[Any]:
    """Every ``netmedic_agent_config`` the inventories and molecule scenarios declare."""
    found = []
    for path in sorted([*ROOT.glob("inventories/**/*.yml"), *ROOT.glob("molecule/**/*.yml")]):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found += [(path, value) for value in _agent_configs(document)]
    return found


def _agent_configs(node: Any) -> List[Dict[str, Any]]:
    if isinstance(node, dict):
        own = [node["netmedic_agent_config"]] if isinstance(
            node.get("netmedic_agent_config"), dict) else []  # fmt: skip
        return own + [found for value in node.values() for found in _agent_configs(value)]
    if isinstance(node, list):
        return [found for item in node for found in _agent_configs(item)]
    return []


def test_every_declared_config_in_the_tree_is_valid() -> None:
    configs = agent_configs()
    assert len(configs) >= 5
    for path, declared in configs:
        if any("{{" in str(value) for value in declared.values()):
            continue  # templated by Ansible: checked where it is rendered
        assert checked(declared, str(path))[1] == [], path
