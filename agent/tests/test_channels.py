"""Channels family against a Portmaster-layout fixture tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import FIXTURES, fixture_ctx

from netmedic.collectors import channels

ROOT = FIXTURES / "channels" / "root"
INDEXES = {
    "stable": "updates/stable.json",
    "beta": "updates/beta.json",
    "staging": "updates/staging.json",
}


def _profile(data_dir: str, **extra: Any) -> Dict[str, Any]:
    return {"app": Path(data_dir).name, "data_dir": data_dir, "indexes": INDEXES, **extra}


def _collect(*profiles: Dict[str, Any]) -> Any:
    return channels.collect(fixture_ctx(ROOT, config={"channels": list(profiles)}))["apps"]


def test_portmaster_on_beta() -> None:
    (app,) = _collect(_profile("/opt/safing/portmaster", backup_dir="backups/netmedic"))
    assert app == {
        "app": "portmaster",
        "data_dir": "/opt/safing/portmaster",
        "data_dir_exists": True,
        "error": None,
        "key_path": ["core", "releaseChannel"],
        "channel": "beta",
        "config_file": {"path": "config.json", "exists": True, "error": None},
        "indexes": {
            "stable": {
                "path": "updates/stable.json",
                "exists": True,
                "error": None,
                "signature_exists": True,
            },
            "beta": {
                "path": "updates/beta.json",
                "exists": True,
                "error": None,
                "signature_exists": True,
            },
            "staging": {
                "path": "updates/staging.json",
                "exists": True,
                "error": None,
                "signature_exists": False,
            },
        },
        "effective_channel": "beta",
        "backups": {"path": "backups/netmedic", "entries": ["20240501T100000Z"], "error": None},
    }


def test_unset_channel_with_beta_index_is_effectively_beta() -> None:
    (app,) = _collect(_profile("/opt/unset"))
    assert app["channel"] is None
    assert app["indexes"]["beta"]["exists"] is True
    assert app["effective_channel"] == "beta"
    assert app["backups"] == {"path": None, "entries": [], "error": None}


def test_malformed_json_is_reported_in_the_entry() -> None:
    broken, good = _collect(_profile("/opt/broken"), _profile("/opt/safing/portmaster"))
    assert broken["channel"] is None
    assert broken["error"].startswith(
        "malformed JSON: Expecting property name enclosed in double quotes"
    )
    assert broken["config_file"]["error"] == broken["error"]
    assert good["error"] is None


def test_symlink_escaping_data_dir_is_flagged_not_read() -> None:
    (app,) = _collect(_profile("/opt/escape", backup_dir="../outside"))
    assert app["indexes"]["beta"] == {
        "path": "updates/beta.json",
        "exists": False,
        "error": "'updates/beta.json' resolves outside data_dir",
        "signature_exists": False,
    }
    assert app["effective_channel"] == "stable"
    assert app["backups"]["error"] == "'../outside' resolves outside data_dir"


def test_missing_data_dir_and_relative_data_dir() -> None:
    missing, relative = _collect(_profile("/opt/nowhere"), _profile("opt/safing"))
    assert missing["data_dir_exists"] is False
    assert missing["config_file"] == {"path": "config.json", "exists": False, "error": None}
    assert missing["effective_channel"] == "stable"
    assert relative["error"] == "data_dir must be an absolute path"


def test_key_path_through_a_non_object(tmp_path: Path) -> None:
    (tmp_path / "opt" / "x").mkdir(parents=True)
    (tmp_path / "opt" / "x" / "config.json").write_text('{"core": "beta"}')
    apps = channels.collect(fixture_ctx(tmp_path, config={"channels": [_profile("/opt/x")]}))[
        "apps"
    ]
    assert apps[0]["error"] == "core/releaseChannel: 'releaseChannel' is not inside an object"


@pytest.mark.parametrize(
    ("channel", "beta_present", "effective"),
    [
        ("beta", False, "beta"),
        ("staging", False, "beta"),
        (None, True, "beta"),
        (None, False, "stable"),
        ("stable", True, "stable"),
        ("support", True, "support"),
    ],
)
def test_effective_channel_rule(channel: Any, beta_present: bool, effective: str) -> None:
    assert channels.effective_channel(channel, beta_present) == effective
