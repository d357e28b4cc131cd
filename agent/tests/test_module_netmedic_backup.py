"""plugins/modules/netmedic_backup.py and plugins/modules/netmedic_json_key.py, run as Ansible
runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import run_module as run


def app(tmp_path: Path) -> Path:
    data = tmp_path / "opt" / "app"
    (data / "updates").mkdir(parents=True)
    (data / "config.json").write_text(
        '{\n  "core": {\n    "releaseChannel": "beta",\n    "x": 1\n  },\n  "y": [1]\n}\n'
    )
    (data / "config.json").chmod(0o640)
    (data / "updates" / "beta.json").write_bytes(b'{"beta": true}\n')
    return data


def test_json_key_sets_channel_and_keeps_the_rest(tmp_path: Path) -> None:
    data = app(tmp_path)
    config = data / "config.json"
    result = run(
        "netmedic_json_key",
        tmp_path,
        diff=True,
        path=str(config),
        key=["core", "releaseChannel"],
        value="stable",
        root=str(data),
    )
    assert result["changed"] and result["before"] == "beta" and result["after"] == "stable"
    assert "beta" in result["diff"]["before"] and "stable" in result["diff"]["after"]
    assert json.loads(config.read_text()) == {
        "core": {"releaseChannel": "stable", "x": 1},
        "y": [1],
    }
    assert config.read_text().startswith('{\n  "core"') and config.read_text().endswith("}\n")
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    again = run(
        "netmedic_json_key",
        tmp_path,
        path=str(config),
        key=["core", "releaseChannel"],
        value="stable",
    )
    assert not again["changed"]


def test_json_key_check_mode_writes_nothing(tmp_path: Path) -> None:
    config = app(tmp_path) / "config.json"
    before = config.read_bytes()
    result = run(
        "netmedic_json_key",
        tmp_path,
        check=True,
        path=str(config),
        key=["core", "releaseChannel"],
        value="stable",
    )
    assert result["changed"] and config.read_bytes() == before


def test_json_key_malformed_fails_naming_the_file(tmp_path: Path) -> None:
    config = app(tmp_path) / "config.json"
    config.write_text('{"core": ')
    result = run(
        "netmedic_json_key",
        tmp_path,
        path=str(config),
        key=["core", "releaseChannel"],
        value="stable",
    )
    assert result["failed"] and str(config) in result["msg"] and "not valid JSON" in result["msg"]
    assert config.read_text() == '{"core": '


def test_json_key_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    data = app(tmp_path)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (data / "link.json").symlink_to(outside)
    result = run(
        "netmedic_json_key",
        tmp_path,
        path=str(data / "link.json"),
        key=["a"],
        value=1,
        root=str(data),
    )
    assert result["failed"] and "outside" in result["msg"] and outside.read_text() == "{}"


def test_backup_then_restore_is_byte_exact(tmp_path: Path) -> None:
    data = app(tmp_path)
    dest = tmp_path / "backups"
    files = [str(data / "config.json"), str(data / "updates" / "beta.json")]
    originals = {path: Path(path).read_bytes() for path in files}
    check = run(
        "netmedic_backup", tmp_path, check=True, dest=str(dest), paths=files, root=str(data)
    )
    assert check["changed"] and not dest.exists()
    made = run("netmedic_backup", tmp_path, dest=str(dest), paths=files, root=str(data))
    assert made["changed"] and Path(made["backup_dir"], "SHA256SUMS").exists()
    subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"],
        cwd=made["backup_dir"],
        check=True,
        capture_output=True,
    )
    second = run("netmedic_backup", tmp_path, dest=str(dest), paths=files, root=str(data))
    assert second["backup_dir"] != made["backup_dir"]  # never overwritten
    os.unlink(files[1])
    Path(files[0]).write_text("{}")
    restored = run(
        "netmedic_backup", tmp_path, state="restored", dest=str(dest), id=made["id"], root=str(data)
    )
    assert restored["changed"] and sorted(restored["restored"]) == sorted(files)
    assert {path: Path(path).read_bytes() for path in files} == originals
    assert oct(Path(files[0]).stat().st_mode & 0o777) == "0o640"
    assert not run("netmedic_backup", tmp_path, state="restored", dest=str(dest), root=str(data))[
        "changed"
    ]


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    data = app(tmp_path)
    dest = tmp_path / "backups"
    config = data / "config.json"
    made = run("netmedic_backup", tmp_path, dest=str(dest), paths=[str(config)])
    stored = Path(made["backup_dir"], made["files"][0]["stored"])
    stored.chmod(0o600)
    stored.write_text("tampered")
    config.write_text("{}")
    result = run("netmedic_backup", tmp_path, state="restored", dest=str(dest))
    assert result["failed"] and "damaged" in result["msg"] and config.read_text() == "{}"


def test_backup_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    data = app(tmp_path)
    (data / "updates" / "evil.json").symlink_to("/etc/hostname")
    result = run(
        "netmedic_backup",
        tmp_path,
        dest=str(tmp_path / "b"),
        root=str(data),
        paths=[str(data / "updates" / "evil.json")],
    )
    assert result["failed"] and "outside" in result["msg"] and not (tmp_path / "b").exists()
