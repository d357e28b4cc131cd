#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: set or remove one nested key in a JSON file, keeping everything else."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_json_key
short_description: Set or remove one nested key in a JSON document file
description:
  - Reads the JSON object in O(path), sets (or removes) the key found by
    walking O(key) and writes the document back only when the value differs.
  - Every other key, the key order, the indentation style (compact or the
    indent width the file uses) and the trailing newline are kept. The file is
    replaced atomically (temp file in the same directory + rename) and keeps
    its mode, owner and group.
  - A file that is not valid JSON, or whose path along O(key) holds a
    non-object, fails the task and is left untouched; the message names the file.
  - With O(root), the file must resolve (symlinks followed) to a path under
    that directory, so a symlink leading out of an application's data
    directory is refused.
options:
  path:
    description: The JSON file. It must exist and hold a JSON object.
    type: path
    required: true
  key:
    description: The key path from the top-level object, e.g. V([core, releaseChannel]).
    type: list
    elements: str
    required: true
  value:
    description: The value to set (any JSON value). Required when O(state=present).
    type: raw
  state:
    description: V(present) sets the key (creating missing parent objects); V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  root:
    description: Refuse to read or write when O(path) resolves outside this directory.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# Put Portmaster back on the stable release channel
- name: Set core/releaseChannel to stable
  netmedic_json_key:
    path: /opt/safing/portmaster/config.json
    key: [core, releaseChannel]
    value: stable
    root: /opt/safing/portmaster

# Read the current value without writing (plan step)
- name: Read the release channel
  netmedic_json_key:
    path: /opt/safing/portmaster/config.json
    key: [core, releaseChannel]
    value: stable
  check_mode: true
  register: channel_plan

# Unset a key so the application falls back to its default
- name: Remove core/releaseChannel
  netmedic_json_key:
    path: /opt/safing/portmaster/config.json
    key: [core, releaseChannel]
    state: absent
"""

RETURN = r"""
path:
  description: The file that was read.
  returned: always
  type: str
  sample: /opt/safing/portmaster/config.json
before:
  description: The key's value before the task (null when it was unset).
  returned: always
  type: raw
  sample: beta
after:
  description: The key's value after the task (null when it is unset).
  returned: always
  type: raw
  sample: stable
existed:
  description: Whether the key was set before the task.
  returned: always
  type: bool
  sample: true
diff:
  description: The whole document before and after, for C(--diff).
  returned: when changed and diff mode is on
  type: dict
  sample:
    before: "{\"core\": {\"releaseChannel\": \"beta\"}}\n"
    after: "{\"core\": {\"releaseChannel\": \"stable\"}}\n"
"""

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

_MISSING = object()


def confined(path: str, root: str) -> bool:
    """True when path resolves under root: ('/opt/a/c.json', '/opt/a') -> True."""
    real_root = os.path.realpath(root)
    return os.path.realpath(path).startswith(real_root.rstrip("/") + "/")


def indent_of(text: str) -> int | None:
    """The indent width the document uses: '{\\n    "a": 1\\n}' -> 4; '{"a": 1}' -> None."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            return len(line) - len(stripped)
    return None


def serialize(data: object, original: str) -> str:
    """Write data the way the original text was written (indent, separators, final newline)."""
    indent = indent_of(original)
    if indent is None:
        separators = (",", ":") if '":' in original and '": ' not in original else (", ", ": ")
        text = json.dumps(data, separators=separators, ensure_ascii=False)
    else:
        text = json.dumps(data, indent=indent, ensure_ascii=False)
    return text + "\n" if original.endswith("\n") else text


def load(module: AnsibleModule, path: str, root: str | None) -> tuple[str, dict[str, Any]]:
    """The file's text and its JSON object; fails (naming the file) on anything else."""
    if root and not confined(path, root):
        real = os.path.realpath(path)
        module.fail_json(msg=f"refusing {path}: it resolves to {real}, outside {root}", path=path)
    try:
        with open(path, encoding="utf-8") as handle:
            original = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}", path=path)
    try:
        data = json.loads(original)
    except ValueError as exc:
        module.fail_json(msg=f"{path} is not valid JSON ({exc}); left untouched", path=path)
    if not isinstance(data, dict):
        module.fail_json(msg=f"{path} does not hold a JSON object; left untouched", path=path)
    return original, data


def parent_of(
    module: AnsibleModule, data: dict[str, Any], key: list[str], create: bool
) -> dict[str, Any] | None:
    """The object holding key[-1]: ({'core': {}}, ['core', 'x']) -> {} (None when absent)."""
    parent = data
    for depth, part in enumerate(key[:-1]):
        child = parent.get(part, _MISSING)
        if child is _MISSING:
            if not create:
                return None
            child = parent[part] = {}
        if not isinstance(child, dict):
            where = "/".join(key[: depth + 1])
            path = module.params["path"]
            module.fail_json(msg=f"{path}: {where} is not a JSON object; left untouched")
        parent = child
    return parent


def write(module: AnsibleModule, path: str, text: str) -> None:
    """Temp file in the same directory, then atomic_move (keeps mode, owner and group)."""
    fd, tmp = tempfile.mkstemp(prefix=".netmedic-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        module.atomic_move(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        module.fail_json(msg=f"cannot write {path}: {exc}", path=path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key": {"type": "list", "elements": "str", "required": True, "no_log": False},
            "value": {"type": "raw"},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "root": {"type": "path"},
        },
        required_if=[("state", "present", ("value",))],
        supports_check_mode=True,
    )
    path, key, value, state = (module.params[name] for name in ("path", "key", "value", "state"))
    if not key:
        module.fail_json(msg=f"key must name at least one level for {path}")
    original, data = load(module, path, module.params["root"])
    # Plan on the parsed copy; the file is only written below, outside check mode.
    parent = parent_of(module, data, key, create=state == "present")
    before = _MISSING if parent is None else parent.get(key[-1], _MISSING)
    existed = before is not _MISSING
    if state == "present":
        changed = not existed or before != value
        if changed:
            if parent is None:  # create=True: parent_of made every missing level
                raise AssertionError(f"{path}: no parent for {key} after creating it")
            parent[key[-1]] = value
    else:
        changed = existed
        if changed:
            if parent is None:  # the key existed, so its parent did
                raise AssertionError(f"{path}: {key} existed without a parent")
            del parent[key[-1]]
    result = {
        "changed": changed,
        "path": path,
        "before": before if existed else None,
        "after": value if state == "present" else None,
        "existed": existed,
    }
    if changed:
        text = serialize(data, original)
        if module._diff:
            result["diff"] = {
                "before": original,
                "after": text,
                "before_header": path,
                "after_header": path,
            }
        if not module.check_mode:
            write(module, path, text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
