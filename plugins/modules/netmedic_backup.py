#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: netmedic's one backup mechanism (timestamped, sha256-verified)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_backup
short_description: Back up files to a new timestamped, sha256-checked directory, or restore them
description:
  - V(state=backup) copies O(paths) into a B(new) directory C(<dest>/<id>) with
    C(manifest.json) (path, sha256, size, mode, owner, group, mtime per file) and
    C(SHA256SUMS) (C(cd <dest>/<id> && sha256sum -c SHA256SUMS) checks it).
    An existing backup is never overwritten; the directory is built under a
    hidden temporary name, every copy is re-hashed, and only then renamed
    into place. Each call makes a new backup, so call it only when a change follows.
  - V(state=restored) puts the files of one backup (O(id), default the latest
    complete one) back byte-exactly with their mode, owner, group and mtime.
    Every stored copy is checked against the manifest before any file is
    written; a mismatch fails the task and writes nothing. Files that already
    match are left alone, so a second run reports no change.
  - With O(root), every path backed up or restored must resolve (symlinks
    followed) under that directory; a symlink leading out is refused.
  - Used by every netmedic role that changes a file it did not create.
options:
  state:
    description: V(backup) makes a new backup; V(restored) restores one.
    type: str
    default: backup
    choices: [backup, restored]
  dest:
    description: The directory holding this subject's backups, one sub-directory per backup.
    type: path
    required: true
  paths:
    description: Absolute paths of the regular files to back up. Required when O(state=backup).
    type: list
    elements: path
  missing:
    description: What to do with a path in O(paths) that does not exist.
    type: str
    default: fail
    choices: [fail, skip]
  id:
    description:
      - With V(state=backup), the new backup's name (default the UTC time, C(20261122T040000Z)).
        An existing name fails the task.
      - With V(state=restored), the backup to restore; V(latest) picks the newest complete one.
    type: str
  root:
    description: Refuse any path that resolves outside this directory.
    type: path
  note:
    description: Free text stored in the manifest (why the backup was made).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# Back up Portmaster's config and beta index before rolling back the channel
- name: Back up the files the rollback touches
  netmedic_backup:
    dest: /var/backups/netmedic/release_channel/portmaster
    root: /opt/safing/portmaster
    paths:
      - /opt/safing/portmaster/config.json
      - /opt/safing/portmaster/updates/beta.json
      - /opt/safing/portmaster/updates/beta.json.sig
    note: release_channel rollback to stable
  register: backup

# Put the newest backup back
- name: Restore the latest backup
  netmedic_backup:
    state: restored
    dest: /var/backups/netmedic/release_channel/portmaster
    root: /opt/safing/portmaster

# Put one chosen backup back
- name: Restore a named backup
  netmedic_backup:
    state: restored
    dest: /var/backups/netmedic/release_channel/portmaster
    id: 20261122T040000Z
"""

RETURN = r"""
backup_dir:
  description: The backup written (or that would be written, or that was restored).
  returned: always
  type: str
  sample: /var/backups/netmedic/release_channel/portmaster/20261122T040000Z
id:
  description: The backup's name.
  returned: always
  type: str
  sample: 20261122T040000Z
files:
  description: The manifest entries (backed up, or restored from).
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /opt/safing/portmaster/config.json, stored: files/opt/safing/portmaster/config.json,
       sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, size: 42,
       mode: "0640", uid: 0, gid: 0, mtime: 1795000000.0}
skipped:
  description: Paths not backed up because they did not exist (O(missing=skip)).
  returned: when O(state=backup)
  type: list
  elements: str
  sample: [/opt/safing/portmaster/updates/beta.json.sig]
restored:
  description: Paths that were (or in check mode would be) written back.
  returned: when O(state=restored)
  type: list
  elements: str
  sample: [/opt/safing/portmaster/updates/beta.json]
"""

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from typing import TypedDict

from ansible.module_utils.basic import AnsibleModule

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


class Entry(TypedDict):
    """One backed-up file, as the manifest (and the module's ``files``) lists it."""

    path: str
    stored: str
    sha256: str
    size: int
    mode: str  # "0644"
    uid: int
    gid: int
    mtime: float


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def confined(path: str, root: str) -> bool:
    """True when path resolves under root: ('/opt/a/c.json', '/opt/a') -> True."""
    return os.path.realpath(path).startswith(os.path.realpath(root).rstrip("/") + "/")


def stored_name(path: str) -> str:
    """Where a file lives inside a backup: '/opt/a/c.json' -> 'files/opt/a/c.json'."""
    return os.path.join("files", os.path.normpath(path).lstrip("/"))


def complete_backups(dest: str) -> list[tuple[float, str]]:
    """(created, id) of every finished backup in dest, oldest first."""
    found: list[tuple[float, str]] = []
    if not os.path.isdir(dest):
        return found
    for name in os.listdir(dest):
        manifest = os.path.join(dest, name, MANIFEST)
        if name.startswith(".") or not os.path.isfile(manifest):
            continue
        try:
            with open(manifest, encoding="utf-8") as handle:
                found.append((float(json.load(handle)["created"]), name))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found)


def backup(module: AnsibleModule) -> None:
    params = module.params
    dest, root = params["dest"], params["root"]
    if not params["paths"]:
        module.fail_json(msg="paths is required (and must not be empty) with state=backup")
    entries: list[Entry] = []
    skipped: list[str] = []
    for path in params["paths"]:
        if not os.path.isabs(path):
            module.fail_json(msg=f"paths: {path} is not absolute")
        if root and not confined(path, root):
            real = os.path.realpath(path)
            module.fail_json(msg=f"refusing {path}: it resolves to {real}, outside {root}")
        if not os.path.lexists(path):
            if params["missing"] == "skip":
                skipped.append(path)
                continue
            module.fail_json(msg=f"cannot back up {path}: it does not exist")
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            module.fail_json(msg=f"cannot back up {path}: not a regular file")
        entries.append(
            {
                "path": path,
                "stored": stored_name(path),
                "sha256": sha256_of(path),
                "size": info.st_size,
                "mode": f"{stat.S_IMODE(info.st_mode):04o}",
                "uid": info.st_uid,
                "gid": info.st_gid,
                "mtime": info.st_mtime,
            }
        )
    backup_id = params["id"] or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if params["id"] is None:
        # Two backups within one second: add a counter rather than overwrite.
        base, counter = backup_id, 1
        while os.path.lexists(os.path.join(dest, backup_id)):
            counter += 1
            backup_id = f"{base}-{counter}"
    final = os.path.join(dest, backup_id)
    if os.path.lexists(final):
        module.fail_json(msg=f"backup {final} already exists; backups are never overwritten")
    result = {
        "changed": bool(entries),
        "backup_dir": final,
        "id": backup_id,
        "files": entries,
        "skipped": skipped,
    }
    if not module.check_mode and entries:
        write_backup(module, dest, final, entries)
    module.exit_json(**result)


def write_backup(module: AnsibleModule, dest: str, final: str, entries: list[Entry]) -> None:
    """Copy, re-hash, write the manifest, then rename the hidden work dir into place."""
    backup_id = os.path.basename(final)
    work = None
    try:
        os.makedirs(dest, mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".{backup_id}.", dir=dest)
        for entry in entries:
            target = os.path.join(work, entry["stored"])
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            shutil.copy2(entry["path"], target)
            if sha256_of(target) != entry["sha256"]:
                raise OSError(f"{entry['path']} changed while it was being copied")
        manifest = {
            "created": time.time(),
            "id": backup_id,
            "note": module.params["note"],
            "root": module.params["root"],
            "files": entries,
        }
        with open(os.path.join(work, MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
        with open(os.path.join(work, SUMS), "w", encoding="utf-8") as handle:
            handle.writelines(f"{entry['sha256']}  {entry['stored']}\n" for entry in entries)
        os.chmod(work, 0o700)
        os.rename(work, final)
    except OSError as exc:
        if work and os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
        module.fail_json(msg=f"cannot write backup {final}: {exc}")


def matches(path: str, entry: Entry) -> bool:
    """True when path already holds the entry's bytes, mode and ownership."""
    if not os.path.isfile(path) or os.path.islink(path):
        return False
    info = os.stat(path)
    mode = f"{stat.S_IMODE(info.st_mode):04o}"
    return (
        sha256_of(path) == entry["sha256"]
        and mode == entry["mode"]
        and info.st_uid == entry["uid"]
        and info.st_gid == entry["gid"]
    )


def restore(module: AnsibleModule) -> None:
    params = module.params
    dest, root = params["dest"], params["root"]
    backup_id = params["id"] or "latest"
    if backup_id == "latest":
        found = complete_backups(dest)
        if not found:
            module.fail_json(msg=f"no complete backup in {dest} to restore")
        backup_id = found[-1][1]
    source = os.path.join(dest, backup_id)
    try:
        with open(os.path.join(source, MANIFEST), encoding="utf-8") as handle:
            entries = json.load(handle)["files"]
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"cannot read the manifest of backup {source}: {exc}")
    # Verify every stored copy and every target before writing anything.
    for entry in entries:
        stored = os.path.join(source, entry["stored"])
        if not os.path.isfile(stored) or sha256_of(stored) != entry["sha256"]:
            module.fail_json(
                msg=f"backup {source} is damaged: {stored} does not match its sha256; "
                "nothing restored"
            )
        if root and not confined(entry["path"], root):
            module.fail_json(msg=f"refusing to restore {entry['path']}: it resolves outside {root}")
    pending = [entry for entry in entries if not matches(entry["path"], entry)]
    result = {
        "changed": bool(pending),
        "backup_dir": source,
        "id": backup_id,
        "files": entries,
        "restored": [entry["path"] for entry in pending],
    }
    if module.check_mode:
        module.exit_json(**result)
    for entry in pending:
        path = entry["path"]
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".netmedic-", dir=os.path.dirname(path))
            os.close(fd)
            shutil.copyfile(os.path.join(source, entry["stored"]), tmp)
            module.atomic_move(tmp, path, keep_dest_attrs=False)
            os.chown(path, entry["uid"], entry["gid"])
            os.chmod(path, int(entry["mode"], 8))
            os.utime(path, (entry["mtime"], entry["mtime"]))
        except OSError as exc:
            module.fail_json(msg=f"cannot restore {path} from {source}: {exc}", **result)
        if sha256_of(path) != entry["sha256"]:
            module.fail_json(msg=f"restored {path} does not match its sha256 in {source}", **result)
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "default": "backup", "choices": ["backup", "restored"]},
            "dest": {"type": "path", "required": True},
            "paths": {"type": "list", "elements": "path"},
            "missing": {"type": "str", "default": "fail", "choices": ["fail", "skip"]},
            "id": {"type": "str"},
            "root": {"type": "path"},
            "note": {"type": "str"},
        },
        required_if=[("state", "backup", ("paths",))],
        supports_check_mode=True,
    )
    if module.params["id"] and ("/" in module.params["id"] or module.params["id"].startswith(".")):
        module.fail_json(msg=f"id {module.params['id']!r} must be a plain directory name")
    if module.params["state"] == "backup":
        backup(module)
    else:
        restore(module)


if __name__ == "__main__":
    main()
