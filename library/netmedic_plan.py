#!/usr/bin/python
"""Ansible module: turn a host's findings and the operator's policy into a remediation plan."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_plan
short_description: Decide, per finding, whether netmedic may fix it on this host
description:
  - Takes the findings of C(netmedic_facts diagnose=true) and the operator's
    policy, reads the host's audit log, and returns one decision per finding
    C(apply), C(approval) (the policy does not allow it unattended) or
    C(escalate) (already fixed too often: the loop breaker), plus the merged
    role variables of everything that may be applied.
  - Read-only; runs in check mode.
options:
  findings:
    description: The C(findings) list of a diagnosis.
    type: list
    elements: dict
    required: true
  auto:
    description:
      - Roles or finding ids that may be applied without approval.
    type: list
    elements: str
    default: []
  allow_destructive:
    description:
      - Finding ids whose destructive remediation (stopping another program,
        killing processes, switching channels, restarting a running unit) the
        operator approved for this host. Destructive findings not listed here
        need approval even when their role is in O(auto).
    type: list
    elements: str
    default: []
  max_fixes:
    description:
      - How often a fix of one finding may be attempted within O(window_hours) before
        escalation. Attempts are the C(remediate) records site.yml appends to
        O(audit_log), one per applied finding and run, whether the fix held or not.
    type: int
    default: 3
  window_hours:
    description: The loop breaker's window.
    type: int
    default: 24
  audit_log:
    description: The audit log netmedic roles and site.yml append to.
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
# Decide what may run on this host
- name: Plan remediations
  netmedic_plan:
    findings: "{{ ansible_facts.netmedic_diagnosis.findings }}"
    auto: [ephemeral_ports, unit_ordering]
    allow_destructive: [unit-started-before-dns]
  register: plan
"""

RETURN = r"""
decisions:
  description: One decision per finding.
  returned: always
  type: list
  elements: dict
  sample:
    - id: unit-started-before-dns
      subject: multipassd.service
      role: unit_ordering
      decision: escalate
      reason: fixed 3 times in the last 24 h
roles:
  description: Role name → merged variables of the findings decided C(apply) (lists appended).
  returned: always
  type: dict
  sample: {unit_ordering: {unit_ordering_units: [{name: multipassd.service}]}}
"""

import calendar
import copy
import json
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

FIX_ACTION = "remediate"  # the audit action site.yml records per applied finding and run

# Fix attempts per (finding id, subject) within the window.
Fixes = Dict[Tuple[str, Optional[str]], int]


def recent_fixes(path: str, window_hours: int, now: float) -> Fixes:
    """Count site.yml's fix attempts per (finding id, subject) within the window.

    site.yml appends one ``remediate`` record per applied finding and run, held
    or not: ``{"time": "2026-11-22T04:00:00Z", "role": "site", "action": "remediate",
    "finding": "x", "subject": "a.service", "result": "failed"}`` counts one attempt
    at ``("x", "a.service")`` when it is younger than ``window_hours``. The roles' own
    records (one per action) are not counted: a rollback writes five of them.
    """
    counts: Fixes = {}
    since = now - window_hours * 3600
    try:
        with open(path, encoding="utf-8") as log:
            lines = log.readlines()
    except FileNotFoundError:
        return counts
    for line in lines:
        try:
            record = json.loads(line)
            stamp = calendar.timegm(time.strptime(record["time"], "%Y-%m-%dT%H:%M:%SZ"))
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line is not a fix
        if record.get("action") == FIX_ACTION and record.get("finding") and stamp >= since:
            key = (record["finding"], record.get("subject"))
            counts[key] = counts.get(key, 0) + 1
    return counts


def merge_vars(into: Dict[str, Any], more: Mapping[str, Any]) -> None:
    """Lists append, dicts merge, scalars: the first finding wins.

    ``{"u": [{"name": "a.service"}]}`` merged with
    ``{"u": [{"name": "a.service", "restart_if_stale": True}, {"name": "b.service"}]}``
    → ``{"u": [{"name": "a.service", "restart_if_stale": True}, {"name": "b.service"}]}``:
    two findings about one unit give the role one entry for it, not two.
    """
    for key, value in more.items():
        if key not in into:
            into[key] = copy.deepcopy(value)
        elif isinstance(into[key], list) and isinstance(value, list):
            merge_list(into[key], value)
        elif isinstance(into[key], dict) and isinstance(value, dict):
            merge_vars(into[key], value)


def merge_list(into: List[Any], more: List[Any]) -> None:
    """Append the new items; a mapping with the ``name`` of one already there merges into it."""
    for item in more:
        same = next(
            (have for have in into if isinstance(have, dict) and isinstance(item, dict)
             and "name" in item and have.get("name") == item["name"]),
            None,
        )  # fmt: skip
        if same is not None:
            merge_vars(same, item)
        elif item not in into:
            into.append(copy.deepcopy(item))


def decide(finding: Mapping[str, Any], params: Mapping[str, Any], fixes: Fixes) -> Tuple[str, str]:
    role = (finding.get("remediation") or {}).get("role")
    if not role:
        return "report", "the catalog names no remediation"
    attempts = fixes.get((finding["id"], finding.get("subject")), 0)
    if attempts >= params["max_fixes"]:
        return "escalate", f"fixed {attempts} times in the last {params['window_hours']} h"
    if role not in params["auto"] and finding["id"] not in params["auto"]:
        return "approval", f"policy does not allow {role} unattended"
    if finding.get("destructive") and finding["id"] not in params["allow_destructive"]:
        return "approval", "destructive: not in allow_destructive"
    return "apply", "allowed by policy"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "findings": {"type": "list", "elements": "dict", "required": True},
            "auto": {"type": "list", "elements": "str", "default": []},
            "allow_destructive": {"type": "list", "elements": "str", "default": []},
            "max_fixes": {"type": "int", "default": 3},
            "window_hours": {"type": "int", "default": 24},
            "audit_log": {"type": "path", "default": "/var/log/netmedic/actions.jsonl"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["max_fixes"] < 1 or params["window_hours"] < 1:
        module.fail_json(msg="max_fixes and window_hours must be at least 1")
    try:
        fixes = recent_fixes(params["audit_log"], params["window_hours"], time.time())
    except OSError as exc:
        module.fail_json(msg=f"cannot read audit log {params['audit_log']}: {exc}")
    decisions: List[Dict[str, Any]] = []
    roles: Dict[str, Dict[str, Any]] = {}
    for finding in params["findings"]:
        if "id" not in finding:
            module.fail_json(msg=f"findings: an entry has no id: {finding!r}")
        decision, reason = decide(finding, params, fixes)
        remediation = finding.get("remediation") or {}
        decisions.append({
            "id": finding["id"],
            "subject": finding.get("subject"),
            "severity": finding.get("severity"),
            "role": remediation.get("role"),
            "decision": decision,
            "reason": reason,
        })
        if decision == "apply":
            merge_vars(roles.setdefault(remediation["role"], {}), remediation.get("vars") or {})
    module.exit_json(changed=False, decisions=decisions, roles=roles)


if __name__ == "__main__":
    main()
