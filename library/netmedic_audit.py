#!/usr/bin/python
"""Ansible module: append one netmedic audit record (a JSON line) per action."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_audit
short_description: Record a netmedic remediation action in the host's audit log
description:
  - Appends one JSON line to O(path) describing an action a netmedic role took
    (time, role, finding, action, before, after, backup, result).
  - Every netmedic role calls it right after a task that changed something, so
    the log holds exactly the changes made, and a second run adds nothing.
  - In check mode nothing is written; the record that would be written is returned.
options:
  role:
    description: The role that acted.
    type: str
    required: true
  action:
    description: What was done, e.g. C(set-channel), C(remove-index), C(write-dropin).
    type: str
    required: true
  finding:
    description: The catalog finding id the action remedies, when there is one.
    type: str
  subject:
    description: What the action was about (a unit, a port, a path, an app).
    type: str
  before:
    description: The state before the action.
    type: raw
  after:
    description: The state after the action.
    type: raw
  backup:
    description: Where the previous state was saved.
    type: str
  result:
    description: How the action ended.
    type: str
    default: ok
    choices: [ok, failed, rolled-back, restored]
  path:
    description: The audit log.
    type: path
    default: /var/log/netmedic/actions.jsonl
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - netmedic
"""

EXAMPLES = r"""
# Record a drop-in the role just wrote
- name: Audit the drop-in
  netmedic_audit:
    role: unit_ordering
    finding: unit-started-before-dns
    subject: multipassd.service
    action: write-dropin
    after: /etc/systemd/system/multipassd.service.d/50-netmedic-network.conf
  when: __unit_ordering_dropin is changed
"""

RETURN = r"""
record:
  description: The record written (or, in check mode, that would be written).
  returned: always
  type: dict
  sample:
    time: "2026-11-22T04:00:00Z"
    role: release_channel
    action: set-channel
    subject: portmaster
    before: beta
    after: stable
    backup: /var/backups/netmedic/release_channel/portmaster/20261122T040000Z
    result: ok
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "role": {"type": "str", "required": True},
            "action": {"type": "str", "required": True},
            "finding": {"type": "str"},
            "subject": {"type": "str"},
            "before": {"type": "raw"},
            "after": {"type": "raw"},
            "backup": {"type": "str"},
            "result": {
                "type": "str",
                "default": "ok",
                "choices": ["ok", "failed", "rolled-back", "restored"],
            },
            "path": {"type": "path", "default": "/var/log/netmedic/actions.jsonl"},
        },
        supports_check_mode=True,
    )
    params = module.params
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    record.update(
        (key, params[key])
        for key in ("role", "finding", "subject", "action", "before", "after", "backup", "result")
    )
    if module.check_mode:
        module.exit_json(changed=False, record=record)
    path = params["path"]
    try:
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        # O_APPEND keeps concurrent writers' lines whole (one write per record).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
    except OSError as exc:
        module.fail_json(msg=f"cannot append to audit log {path}: {exc}", record=record)
    module.exit_json(changed=True, record=record)


if __name__ == "__main__":
    main()
