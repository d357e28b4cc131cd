#!/usr/bin/python
"""Ansible module: diagnose a host and turn its findings and the operator's policy into a plan."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_plan
short_description: Diagnose the host and decide, per finding, whether netmedic may fix it
description:
  - The one policy engine of netmedic. In one call per host it validates the
    operator's policy, checks that the installed agent and its config are the ones
    the controller would install, gathers the facts, diagnoses them, reads the
    host's audit log and returns one decision per finding, C(apply), C(approval)
    (the policy does not allow it unattended), C(escalate) (fixed too often: the
    loop breaker) or C(report) (no remediation, or outside O(only)), plus what each
    role needs to act on the findings decided C(apply).
  - With O(findings) it plans those findings instead of diagnosing the host.
  - Read-only; runs in check mode.
options:
  policy:
    description:
      - The inventory's C(netmedic_policy). Keys C(auto) (roles or finding ids that
        may be applied without approval), C(allow_destructive) (finding ids whose
        destructive fix is approved for this host), C(max_fixes) and
        C(window_hours) (the loop breaker, at most 168: the audit log it reads
        rotates weekly). Missing keys take the defaults
        C(auto=[]), C(allow_destructive=[]), C(max_fixes=3), C(window_hours=24).
      - Validated strictly; a wrong key or type fails naming C(netmedic_policy.<key>).
    type: raw
    default: {}
  only:
    description:
      - Finding ids this run may act on (an incident playbook's entry); the others
        are reported. Empty means every finding.
    type: list
    elements: str
    default: []
  findings:
    description:
      - Plan these findings (the C(findings) list of a diagnosis) instead of diagnosing.
    type: list
    elements: dict
  agent_path:
    description: Directory that holds the agent's C(netmedic) package.
    type: path
    default: /usr/lib/netmedic
  agent_checksum:
    description:
      - The checksum of the agent bundle the controller would install (the
        C(netmedic_agent) role's C(bundle.yml)). When the installed one differs, or
        O(config) differs from C(/etc/netmedic/config.yml), nothing is diagnosed and
        RV(agent) says C(stale): install the agent, then plan again.
    type: str
  config:
    description: The agent config the controller would install (C(netmedic_agent_config)).
    type: raw
  diagnose_with_config:
    description:
      - Diagnose with O(config) instead of the host's C(/etc/netmedic/config.yml), and do
        not compare the agent (a check-mode run diagnosing with a scratch copy of the
        agent an install would write).
    type: bool
    default: false
  audit_log:
    description:
      - The audit log netmedic roles and site.yml append to. The loop breaker reads it
        and the previous week's C(<audit_log>.1) that logrotate keeps beside it.
    type: path
    default: /var/log/netmedic/actions.jsonl
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
author:
  - netmedic
"""

EXAMPLES = r"""
# Diagnose and plan per the inventory's policy (site.yml)
- name: Plan remediations
  netmedic_plan:
    policy: "{{ netmedic_policy | default({}) }}"
  register: plan

# An incident entry point: act on the DNS race only
- name: Plan the DNS race fix
  netmedic_plan:
    policy: "{{ netmedic_policy | default({}) }}"
    only: [unit-started-before-dns, unit-missing-network-ordering]
"""

RETURN = r"""
agent:
  description:
    - C(current), C(stale) (install it, then plan again), or C(unchecked) (no checksum given).
  returned: always
  type: str
  sample: current
decisions:
  description: One decision per finding.
  returned: when the host was planned
  type: list
  elements: dict
  sample:
    - id: unit-started-before-dns
      subject: multipassd.service
      severity: warning
      role: unit_ordering
      decision: escalate
      reason: fixed 3 times in the last 24 h
roles:
  description:
    - Role name → the findings it is to act on (each with C(vars), C(destructive) and
      C(approved)) and their variables merged (lists appended).
  returned: when the host was planned
  type: dict
  sample:
    unit_ordering:
      findings:
        - id: unit-started-before-dns
          subject: multipassd.service
          approved: true
          destructive: true
      vars: {unit_ordering_units: [{name: multipassd.service}]}
ansible_facts:
  description: C(netmedic) (the facts document) and C(netmedic_diagnosis), when diagnosed.
  returned: when the host was diagnosed
  type: dict
  sample: {netmedic: {schema_version: 2}, netmedic_diagnosis: {status: OK, findings: []}}
"""

import calendar
import copy
import hashlib
import json
import os
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

FIX_ACTION = "remediate"  # the audit action site.yml records per applied finding and run
# A remediate record whose role changed nothing (refused before any change) is no attempt.
NOT_AN_ATTEMPT = "refused"

# The policy's keys and defaults: the one place they are defined.
POLICY_DEFAULTS: Dict[str, Any] = {
    "auto": [],
    "allow_destructive": [],
    "max_fixes": 3,
    "window_hours": 24,
}
BUNDLE_STAMP = "netmedic-bundle.sha256"  # written by the netmedic_agent role beside the package

# The audit log rotates weekly and the previous week stays readable beside it
# (netmedic_agent's logrotate config): the loop breaker can look back one week.
MAX_WINDOW_HOURS = 7 * 24

# Fix attempts per (finding id, subject) within the window.
Fixes = Dict[Tuple[str, Optional[str]], int]


def check_policy(policy: Any) -> Tuple[Dict[str, Any], List[str]]:
    """The policy with its defaults filled in, and what is wrong with it.

    ``{"allow_destructive": "x"}`` → ``(..., ["netmedic_policy.allow_destructive must be a
    list of finding ids, got the string 'x'"])``: a string is not silently a list.
    """
    if policy is None:
        policy = {}
    if not isinstance(policy, Mapping):
        return dict(POLICY_DEFAULTS), [
            f"netmedic_policy must be a mapping of {', '.join(POLICY_DEFAULTS)}, "
            f"got {type(policy).__name__} {policy!r}"
        ]
    problems = [
        f"netmedic_policy.{key}: unknown key (known: {', '.join(POLICY_DEFAULTS)})"
        for key in policy
        if key not in POLICY_DEFAULTS
    ]
    checked = dict(POLICY_DEFAULTS)
    for key in ("auto", "allow_destructive"):
        value = policy.get(key, [])
        if value is None:
            value = []
        if isinstance(value, str):
            problems.append(
                f"netmedic_policy.{key} must be a list of {'roles or ' if key == 'auto' else ''}"
                f"finding ids, got the string {value!r}"
            )
        elif not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append(
                f"netmedic_policy.{key} must be a list of non-empty strings, got {value!r}"
            )
        else:
            checked[key] = list(value)
    for key, most in (("max_fixes", None), ("window_hours", MAX_WINDOW_HOURS)):
        value = policy.get(key, POLICY_DEFAULTS[key])
        number = _whole_number(value)
        if number is None or number < 1 or (most is not None and number > most):
            bounds = ">= 1" if most is None else f"from 1 to {most}"
            problems.append(f"netmedic_policy.{key} must be a whole number {bounds}, got {value!r}")
        else:
            checked[key] = number
    return checked, problems


def _whole_number(value: Any) -> Optional[int]:
    """``3`` → 3, ``"3"`` → 3; ``True``, ``2.5``, ``"x"`` → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def recent_fixes(path: str, window_hours: int, now: float) -> Fixes:
    """Count site.yml's fix attempts per (finding id, subject) within the window.

    site.yml appends one ``remediate`` record per applied finding and run:
    ``{"time": "2026-11-22T04:00:00Z", "role": "site", "action": "remediate",
    "finding": "x", "subject": "a.service", "result": "failed"}`` counts one attempt
    at ``("x", "a.service")`` when it is younger than ``window_hours``; a
    ``refused`` one (the role changed nothing) does not; ``path.1``, the week
    logrotate moved aside, counts like the current log. The roles' own records
    (one per action) are not counted: a rollback writes five of them.
    """
    counts: Fixes = {}
    since = now - window_hours * 3600
    lines: List[str] = []
    for part in (path + ".1", path):  # the week logrotate moved aside, then the current one
        try:
            with open(part, encoding="utf-8") as log:
                lines.extend(log.readlines())
        except FileNotFoundError:
            continue
    for line in lines:
        try:
            record = json.loads(line)
            stamp = calendar.timegm(time.strptime(record["time"], "%Y-%m-%dT%H:%M:%SZ"))
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line is not a fix
        if (
            record.get("action") == FIX_ACTION
            and record.get("finding")
            and record.get("result") != NOT_AN_ATTEMPT
            and stamp >= since
        ):
            key = (record["finding"], record.get("subject"))
            counts[key] = counts.get(key, 0) + 1
    return counts


def merge_vars(into: Dict[str, Any], more: Mapping[str, Any]) -> None:
    """Lists append, dicts merge, scalars: the first finding wins.

    ``{"u": [{"name": "a.service"}]}`` merged with
    ``{"u": [{"name": "a.service", "dns_gate_names": ["x"]}, {"name": "b.service"}]}``
    → ``{"u": [{"name": "a.service", "dns_gate_names": ["x"]}, {"name": "b.service"}]}``:
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


def decide(
    finding: Mapping[str, Any],
    policy: Mapping[str, Any],
    fixes: Fixes,
    only: Optional[List[str]] = None,
) -> Tuple[str, str]:
    """``(decision, reason)`` for one finding under the policy."""
    role = (finding.get("remediation") or {}).get("role")
    if not role:
        return "report", "the catalog names no remediation"
    if only and finding["id"] not in only:
        return "report", f"outside this run (netmedic_only: {', '.join(only)})"
    attempts = fixes.get((finding["id"], finding.get("subject")), 0)
    if attempts >= policy["max_fixes"]:
        return "escalate", f"fixed {attempts} times in the last {policy['window_hours']} h"
    if role not in policy["auto"] and finding["id"] not in policy["auto"]:
        return "approval", f"policy does not allow {role} unattended"
    if finding.get("destructive") and finding["id"] not in policy["allow_destructive"]:
        return "approval", "destructive: not in allow_destructive"
    return "apply", "allowed by policy"


def plan(
    findings: List[Mapping[str, Any]],
    policy: Mapping[str, Any],
    fixes: Fixes,
    only: Optional[List[str]] = None,
) -> Tuple[List[Dict[str, Any]], Dict[str, Dict[str, Any]]]:
    """Decisions for every finding, and per role what to act on (the ``apply`` ones)."""
    decisions: List[Dict[str, Any]] = []
    roles: Dict[str, Dict[str, Any]] = {}
    for finding in findings:
        decision, reason = decide(finding, policy, fixes, only)
        remediation = finding.get("remediation") or {}
        decisions.append({
            "id": finding["id"],
            "subject": finding.get("subject"),
            "severity": finding.get("severity"),
            "role": remediation.get("role"),
            "decision": decision,
            "reason": reason,
        })  # fmt: skip
        if decision != "apply":
            continue
        handed = roles.setdefault(remediation["role"], {"findings": [], "vars": {}})
        role_vars = remediation.get("vars") or {}
        handed["findings"].append({
            "id": finding["id"],
            "subject": finding.get("subject"),
            "severity": finding.get("severity"),
            "evidence": list(finding.get("evidence") or []),
            "vars": copy.deepcopy(role_vars),
            "destructive": bool(finding.get("destructive")),
            # The policy allowed it: apply implies a destructive fix is in allow_destructive.
            "approved": True,
        })  # fmt: skip
        merge_vars(handed["vars"], role_vars)
    return decisions, roles


def agent_state(
    agent_path: str, checksum: Optional[str], config: Any, installed_config: Any
) -> Tuple[str, str]:
    """``("current" | "stale" | "unchecked", why)``: is the installed agent the one wanted?"""
    if checksum is None:
        return "unchecked", "no agent_checksum given"
    try:
        with open(os.path.join(agent_path, BUNDLE_STAMP), encoding="utf-8") as stamp:
            installed = stamp.read().strip()
    except OSError:
        return "stale", f"no agent installed under {agent_path}"
    if installed != checksum:
        return "stale", f"the installed agent is {installed[:12]}, not {checksum[:12]}"
    if config is not None and _canonical(config or {}) != _canonical(installed_config or {}):
        return "stale", "/etc/netmedic/config.yml differs from netmedic_agent_config"
    return "current", "the installed agent and config are the ones wanted"


def _canonical(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "policy": {"type": "raw", "default": {}},
            "only": {"type": "list", "elements": "str", "default": []},
            "findings": {"type": "list", "elements": "dict"},
            "agent_path": {"type": "path", "default": "/usr/lib/netmedic"},
            "agent_checksum": {"type": "str"},
            "config": {"type": "raw"},
            "diagnose_with_config": {"type": "bool", "default": False},
            "audit_log": {"type": "path", "default": "/var/log/netmedic/actions.jsonl"},
        },
        supports_check_mode=True,
    )
    params = module.params
    policy, problems = check_policy(params["policy"])
    if problems:
        module.fail_json(msg="; ".join(problems))
    result: Dict[str, Any] = {"changed": False}
    findings = params["findings"]
    if findings is None:
        sys.path.insert(0, params["agent_path"])
        try:
            from netmedic import api  # noqa: PLC0415 -- the path is known only now
            from netmedic.context import Context  # noqa: PLC0415
        except ImportError as exc:
            if params["agent_checksum"] is not None:
                module.exit_json(agent="stale", reason=f"no agent: {exc}", **result)
            module.fail_json(
                msg=f"netmedic agent not found under {params['agent_path']}: {exc}; "
                "install it with the netmedic_agent role or set agent_path"
            )
        if params["diagnose_with_config"]:
            context = Context(config=params["config"] or {})
            state, why = "unchecked", "a scratch copy, with the config an install would write"
        else:
            context = Context()
            installed_config = None
            if params["config"] is not None:
                installed_config, _ = api.installed_config(context)
            state, why = agent_state(
                params["agent_path"], params["agent_checksum"], params["config"], installed_config
            )
        result.update(agent=state, reason=why)
        if state == "stale":
            module.exit_json(**result)
        host = api.diagnose_host(context)
        diagnosis = host.diagnosis.to_dict()
        result["ansible_facts"] = {"netmedic": host.facts, "netmedic_diagnosis": diagnosis}
        findings = diagnosis["findings"]
        known = set(host.diagnosis.evaluated)
        unknown = [i for i in params["only"] if i not in known]
        if unknown:
            module.fail_json(
                msg=f"netmedic_only names finding ids the catalog does not have: {unknown}"
            )
    else:
        result.update(agent="unchecked", reason="findings given")
    for finding in findings:
        if "id" not in finding:
            module.fail_json(msg=f"findings: an entry has no id: {finding!r}")
    try:
        fixes = recent_fixes(params["audit_log"], policy["window_hours"], time.time())
    except OSError as exc:
        module.fail_json(msg=f"cannot read audit log {params['audit_log']}: {exc}")
    decisions, roles = plan(findings, policy, fixes, params["only"])
    result.update(decisions=decisions, roles=roles, policy=policy)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
