"""Channels family: per app profile, the release channel in use.

A profile (``config.channels``)::

    {app: portmaster, data_dir: /opt/safing/portmaster, config_file: config.json,
     key_path: [core, releaseChannel],
     indexes: {stable: updates/stable.json, beta: updates/beta.json},
     backup_dir: backups/netmedic}

Every path is relative to ``data_dir`` and must resolve (symlinks followed) inside
it; one that escapes is flagged and never read. The effective channel follows the
Portmaster updater (safing/portmaster#1565): the beta index is loaded when the
channel is beta/staging OR when it is unset and the beta index exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from netmedic.context import Context, Facts
from netmedic.hostpaths import host_path

DEFAULT_CONFIG_FILE = "config.json"
DEFAULT_KEY_PATH = ("core", "releaseChannel")
BETA_CHANNELS = frozenset({"beta", "staging"})
SIGNATURE_SUFFIX = ".sig"


class EscapingPath(ValueError):
    """A profile path resolves outside the app's data_dir."""


def inside(data_dir: Path, relpath: str) -> Path:
    """Resolve ``relpath`` under ``data_dir``; raise :class:`EscapingPath` when it leaves it.

    ``(Path("/opt/pm"), "updates/beta.json")`` → ``/opt/pm/updates/beta.json``;
    ``"../etc/shadow"`` → EscapingPath.
    """
    root = data_dir.resolve()
    candidate = (root / relpath).resolve()
    if candidate != root and root not in candidate.parents:
        raise EscapingPath(f"{relpath!r} resolves outside data_dir")
    return candidate


def read_channel(text: str, key_path: Sequence[str]) -> Optional[str]:
    """``('{"core": {"releaseChannel": "beta"}}', ["core", "releaseChannel"])`` → ``"beta"``.

    A missing key is unset (None); a non-object on the way or a non-string value is a ValueError.
    """
    node: Any = json.loads(text)
    for key in key_path:
        if not isinstance(node, dict):
            raise ValueError(f"{'/'.join(key_path)}: {key!r} is not inside an object")
        if key not in node:
            return None
        node = node[key]
    if node is None or isinstance(node, str):
        return node
    raise ValueError(f"{'/'.join(key_path)}: expected a string, got {type(node).__name__}")


def effective_channel(channel: Optional[str], beta_index_present: bool) -> str:
    """Portmaster's rule.

    ``(None, True)`` → ``"beta"``; ``("staging", False)`` → ``"beta"``;
    ``(None, False)`` → ``"stable"``; ``("stable", True)`` → ``"stable"``.
    """
    if channel in BETA_CHANNELS or (channel is None and beta_index_present):
        return "beta"
    return channel or "stable"


def _file_facts(data_dir: Path, relpath: str) -> Facts:
    facts: Facts = {"path": relpath, "exists": False, "error": None}
    try:
        facts["exists"] = inside(data_dir, relpath).is_file()
    except EscapingPath as exc:
        facts["error"] = str(exc)
    return facts


def _index_facts(data_dir: Path, relpath: str) -> Facts:
    facts = _file_facts(data_dir, relpath)
    signature = _file_facts(data_dir, relpath + SIGNATURE_SUFFIX)
    facts["signature_exists"] = signature["exists"]
    return facts


def _backups(data_dir: Path, relpath: Optional[str]) -> Facts:
    facts: Facts = {"path": relpath, "entries": [], "error": None}
    if not relpath:
        return facts
    try:
        directory = inside(data_dir, relpath)
        facts["entries"] = sorted(os.listdir(directory))
    except EscapingPath as exc:
        facts["error"] = str(exc)
    except FileNotFoundError:
        pass  # no backup taken yet
    except OSError as exc:
        facts["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return facts


def _channel_setting(data_dir: Path, config_file: str, key_path: Sequence[str]) -> Facts:
    """``{channel, config_file: {path, exists, error}}``; problems land in ``error``."""
    facts = _file_facts(data_dir, config_file)
    channel: Optional[str] = None
    if facts["exists"]:
        try:
            text = inside(data_dir, config_file).read_text(encoding="utf-8")
            channel = read_channel(text, key_path)
        except json.JSONDecodeError as exc:
            facts["error"] = f"malformed JSON: {exc}"
        except (OSError, ValueError) as exc:
            facts["error"] = str(exc)
    return {"channel": channel, "config_file": facts}


def app_facts(ctx: Context, profile: Mapping[str, Any]) -> Facts:
    """One app profile → its channel facts; errors stay inside the entry."""
    app = str(profile.get("app", "?"))
    data_dir_text = str(profile.get("data_dir", ""))
    facts: Facts = {"app": app, "data_dir": data_dir_text, "data_dir_exists": False, "error": None}
    if not data_dir_text.startswith("/"):
        facts["error"] = "data_dir must be an absolute path"
        return facts
    data_dir = host_path(ctx, data_dir_text)
    facts["data_dir_exists"] = data_dir.is_dir()
    key_path: List[str] = [str(k) for k in profile.get("key_path") or DEFAULT_KEY_PATH]
    setting = _channel_setting(
        data_dir, str(profile.get("config_file") or DEFAULT_CONFIG_FILE), key_path
    )
    indexes = {
        str(name): _index_facts(data_dir, str(rel))
        for name, rel in (profile.get("indexes") or {}).items()
    }
    beta_present = bool(indexes.get("beta", {}).get("exists"))
    facts.update(
        key_path=key_path,
        channel=setting["channel"],
        config_file=setting["config_file"],
        indexes=indexes,
        effective_channel=effective_channel(setting["channel"], beta_present),
        backups=_backups(data_dir, profile.get("backup_dir")),
        error=setting["config_file"]["error"],
    )
    return facts


def collect(ctx: Context) -> Facts:
    """The channels family: ``{"apps": [...]}``, one entry per configured profile."""
    return {
        "apps": [
            app_facts(ctx, profile if isinstance(profile, dict) else {})
            for profile in ctx.setting("channels", []) or []
        ]
    }
