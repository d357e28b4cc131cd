"""Load the operator's ``/etc/netmedic/config.yml``.

A missing file is an empty config; a malformed one is reported (naming the file)
and treated as empty, so collection still runs. yaml is imported only when the
file exists: ``netmedic facts --only ports`` must not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from netmedic.registry import CONFIG_KEYS

CONFIG_RELPATH = "netmedic/config.yml"
HOST_CONFIG_PATH = "/etc/" + CONFIG_RELPATH


class ConfigError(ValueError):
    """The config file exists but cannot be used; the message names the file."""


def load_config(etc_root: Path) -> Tuple[Dict[str, Any], Optional[ConfigError]]:
    """Return ``(config, error)``; on error the config is ``{}``.

    ``ports: [{port: 1900, proto: udp}]`` → ``({"ports": [{"port": 1900, "proto": "udp"}]}, None)``;
    ``ports: {`` → ``({}, ConfigError("/etc/netmedic/config.yml: ..."))``.
    """
    path = etc_root / CONFIG_RELPATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, ConfigError(f"{HOST_CONFIG_PATH}: cannot read: {exc}")
    try:
        return parse_config(text), None
    except ConfigError as exc:
        return {}, ConfigError(f"{HOST_CONFIG_PATH}: {exc}")


def parse_config(text: str) -> Dict[str, Any]:
    """Parse and shape-check config text.

    ``"units: [a.service]"`` → ``{"units": ["a.service"]}``
    """
    from netmedic.sitedirs import add_site_dirs  # noqa: PLC0415 - with the yaml import

    add_site_dirs()
    import yaml  # noqa: PLC0415 - lazily: only hosts with a config file pay for it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a SafeLoader (C one when built)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"top level must be a mapping, got {type(data).__name__}")
    for key, expected in CONFIG_KEYS.items():
        if key in data and data[key] is not None and not isinstance(data[key], expected):
            raise ConfigError(
                f"key {key!r} must be a {expected.__name__}, got {type(data[key]).__name__}"
            )
    return {key: value for key, value in data.items() if value is not None}
