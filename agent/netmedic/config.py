"""Read and check the operator's config (``/etc/netmedic/config.yml``, or one a caller names).

A missing file is an empty config. A file that cannot be used at all (unreadable,
too large, not YAML, nested too deep, not a mapping) is one :class:`ConfigError`
naming the file, and the config is empty. Otherwise the config is checked
against ``schema/config.schema.json``: each value that breaks it is a
:class:`ConfigInvalid` naming the file and the value's path, and is left out
(the list item or key holding it); the rest is used. yaml is imported only
when a file is read: ``netmedic facts --only ports`` never pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from netmedic.inputs import MAX_YAML_BYTES, InputError, decode, parse_yaml, read_limited
from netmedic.validate import SchemaIssue, schema_validator

CONFIG_RELPATH = "netmedic/config.yml"
HOST_CONFIG_PATH = "/etc/" + CONFIG_RELPATH


class ConfigError(ValueError):
    """The config file exists but cannot be used; the message names the file."""


class ConfigInvalid(ConfigError):
    """One value of the config breaks its schema and was left out; the message names it."""


def load_config(etc_root: Path) -> Tuple[Dict[str, Any], List[ConfigError]]:
    """``(config, errors)`` of ``<etc_root>/netmedic/config.yml``, as :func:`checked` makes it.

    ``ports: [{port: 1900, proto: udp}]`` → ``({"ports": [{"port": 1900, "proto": "udp"}]}, [])``;
    ``ports: {`` → ``({}, [ConfigError("/etc/netmedic/config.yml: invalid YAML: ...")])``.
    """
    raw, error = read_host_config(etc_root)
    if error is not None:
        return {}, [error]
    return checked(raw, HOST_CONFIG_PATH)


def read_host_config(etc_root: Path) -> Tuple[Dict[str, Any], Optional[ConfigError]]:
    """``(mapping as written, None)``; ``({}, None)`` when absent, ``({}, error)`` when unusable."""
    try:
        return read_config(str(etc_root / CONFIG_RELPATH), HOST_CONFIG_PATH), None
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, ConfigError(f"{HOST_CONFIG_PATH}: cannot read: {exc}")
    except ConfigError as exc:
        return {}, exc


def read_config(path: str, source: str) -> Dict[str, Any]:
    """The file's mapping as written (nothing left out); ConfigError naming ``source``.

    ``"units: [a.service]"`` → ``{"units": ["a.service"]}``; an empty file → ``{}``.
    An OSError (missing, unreadable) is raised as it is.
    """
    try:
        data = parse_yaml(decode(read_limited(path, MAX_YAML_BYTES)))
    except InputError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    return data


def checked(raw: Mapping[str, Any], source: str) -> Tuple[Dict[str, Any], List[ConfigError]]:
    """``raw`` without the values that break the schema, and one ConfigInvalid per issue.

    ``{"ports": [{"port": 70000}, {"port": 1900}]}`` →
    ``({"ports": [{"port": 1900}]}, [ConfigInvalid("...: ports[0].port: must be <= 65535
    (the list item or key holding it is left out)")])``. A top-level key set to
    null is absent.
    """
    config = {key: value for key, value in raw.items() if value is not None}
    issues = schema_validator("config").validate(config)
    errors: List[ConfigError] = [
        ConfigInvalid(f"{source}: {issue} (left out: {_render(_held_by(issue))})")
        for issue in issues
    ]
    return _without(config, [_held_by(issue) for issue in issues]), errors


def _held_by(issue: SchemaIssue) -> Tuple[Any, ...]:
    """What is left out for an issue: the top-level key, or the item of it holding the issue.

    ``ports[0].port`` → ``("ports", 0)``; ``dns.timeout_s`` → ``("dns", "timeout_s")``.
    """
    return issue.location[:2]


def _render(location: Sequence[Any]) -> str:
    return SchemaIssue(tuple(location), "").field


def _without(config: Dict[str, Any], dropped: List[Tuple[Any, ...]]) -> Dict[str, Any]:
    """``config`` less the top-level keys and second-level items named in ``dropped``."""
    result = dict(config)
    for key in {location[0] for location in dropped if len(location) == 1}:
        result.pop(key, None)
    inner: Dict[Any, Set[Any]] = {}
    for location in dropped:
        if len(location) == 2 and location[0] in result:
            inner.setdefault(location[0], set()).add(location[1])
    for key, gone in inner.items():
        value = result[key]
        if isinstance(value, list):
            result[key] = [item for index, item in enumerate(value) if index not in gone]
        elif isinstance(value, dict):
            result[key] = {name: item for name, item in value.items() if name not in gone}
    return result
