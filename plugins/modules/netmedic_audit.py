#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
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
  - The C(remediate) record site.yml writes per applied finding is special; a
    C(failed) one is written as C(refused) when no role recorded a change for that
    finding in this run (O(run_id)), so the loop breaker does not count a run that
    changed nothing (bad input refused before any change).
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
    choices: [ok, failed, refused, rolled-back, restored]
  run_id:
    description: The id of the run that acted (site.yml sets it for every record of a run).
    type: str
  controller_user:
    description: Who ran it on the controller.
    type: str
  awx_job_id:
    description: The AWX / Automation Controller job, when the run is one.
    type: str
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
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - netmedic contributors (@netmedic)
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
    run_id: 20261122T040000Z-ab12
    controller_user: ops
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
from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule

FIELDS = ("role", "finding", "subject", "action", "before", "after", "backup", "result")
RUN_FIELDS = ("run_id", "controller_user", "awx_job_id")  # written when the run sets them
FIX_ACTION = "remediate"


def changed_in_run(path: str, run_id: Optional[str], finding: Optional[str]) -> bool:
    """True when a role (not site.yml) recorded a change for ``finding`` in run ``run_id``.

    A line ``{"run_id": "r1", "role": "unit_ordering", "finding": "x", ...}`` makes
    ``changed_in_run(log, "r1", "x")`` true; without a run id nothing can be told
    apart, so any failed fix counts (True).
    """
    if not run_id:
        return True
    try:
        with open(path, encoding="utf-8") as log:
            lines = log.readlines()
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            record: Dict[str, Any] = json.loads(line)
        except ValueError:
            continue  # a torn line
        if (
            isinstance(record, dict)
            and record.get("run_id") == run_id
            and record.get("finding") == finding
            and record.get("action") != FIX_ACTION
        ):
            return True
    return False


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
                "choices": ["ok", "failed", "refused", "rolled-back", "restored"],
            },
            "run_id": {"type": "str"},
            "controller_user": {"type": "str"},
            "awx_job_id": {"type": "str"},
            "path": {"type": "path", "default": "/var/log/netmedic/actions.jsonl"},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    record.update((key, params[key]) for key in RUN_FIELDS if params[key] is not None)
    record.update((key, params[key]) for key in FIELDS)
    if (
        params["action"] == FIX_ACTION
        and params["result"] == "failed"
        and not changed_in_run(path, params["run_id"], params["finding"])
    ):
        record["result"] = "refused"
    if module.check_mode:
        module.exit_json(changed=False, record=record)
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
