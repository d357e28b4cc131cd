#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
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
    (the policy does not allow it unattended), C(escalate) (fixed too often, the
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
        C(window_hours) (the loop breaker, at most 168 as the audit log it reads
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
  agent_checksum:
    description:
      - The checksum of the agent bundle the controller would install (the
        C(netmedic_agent) role's C(bundle.yml)). When the installed one differs, or
        O(config) differs from C(/etc/netmedic/config.yml), nothing is diagnosed and
        RV(agent) says C(stale); install the agent, then plan again.
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
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - netmedic.remediation.agent
author:
  - netmedic contributors (@netmedic)
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

import time
from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netmedic.remediation.plugins.module_utils.agent import (
    AGENT_PATH_SPEC,
    AgentMissing,
    load_agent,
)
from ansible_collections.netmedic.remediation.plugins.module_utils.plan import (
    agent_state,
    check_policy,
    plan,
    recent_fixes,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "policy": {"type": "raw", "default": {}},
            "only": {"type": "list", "elements": "str", "default": []},
            "findings": {"type": "list", "elements": "dict"},
            **AGENT_PATH_SPEC,
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
        try:
            api, context_module = load_agent(params["agent_path"], "api", "context")
        except AgentMissing as exc:
            if params["agent_checksum"] is not None:
                module.exit_json(agent="stale", reason=f"no agent: {exc}", **result)
            module.fail_json(
                msg=f"{exc}; install it with the netmedic.remediation.netmedic_agent role "
                "or set agent_path"
            )
        if params["diagnose_with_config"]:
            context = context_module.Context(config=params["config"] or {})
            state, why = "unchecked", "a scratch copy, with the config an install would write"
        else:
            context = context_module.Context()
            installed_config = None
            if params["config"] is not None:
                installed_config, _error = api.installed_config(context)
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
