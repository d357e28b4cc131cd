#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: ask the netmedic agent whether findings are present (netmedic check)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_check
short_description: Ask the netmedic agent whether findings are present on the host
description:
  - The one way every netmedic role verifies a fix and, run on its own, learns what
    to fix; the same judgement as C(netmedic check ID --subject S) on the host.
  - With O(state=absent) (verification) it fails, naming each finding still
    present, unless every listed finding is absent, polling the agent for up to
    O(wait) seconds. A finding the agent could not evaluate fails too, as a fix that
    cannot be checked is not verified.
  - With O(state=query) it only reports; a role run without a plan takes the
    present findings it handles from RV(present).
  - Read-only; runs in check mode.
options:
  findings:
    description:
      - The findings to look for. Without O(findings[].subject) every subject of
        the id counts.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: A catalog entry id.
        type: str
        required: true
      subject:
        description: One subject of it (a unit, C(1900/udp), an app).
        type: str
  state:
    description:
      - C(absent) fails unless all are absent (after O(wait)); C(query) reports only.
    type: str
    choices: [absent, query]
    default: absent
  wait:
    description: Seconds to keep polling for O(state=absent) before failing.
    type: int
    default: 0
  delay:
    description: Seconds between polls.
    type: int
    default: 2
  config:
    description:
      - Use this config (the shape of C(/etc/netmedic/config.yml)) instead of the
        host's file. Unset reads the host's file, as the installed agent does.
    type: dict
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
  - netmedic.remediation.agent
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# Verify a fix: the finding the role acted on must be gone within 30 s
- name: Verify with the agent
  netmedic_check:
    findings:
      - {id: declared-port-held-by-other, subject: 1900/udp}
    wait: 30

# A role run on its own: take the present findings it handles
- name: Ask the agent what to fix
  netmedic_check:
    findings: [{id: unit-missing-network-ordering}, {id: unit-started-before-dns}]
    state: query
  register: asked
"""

RETURN = r"""
present:
  description: The listed findings still present, as C(netmedic diagnose) reports them.
  returned: always
  type: list
  elements: dict
  sample:
    - id: unit-started-before-dns
      subject: multipassd.service
      severity: warning
      evidence: ["multipassd.service started at 4100000 us ..."]
      remediation: {role: unit_ordering, vars: {}}
      destructive: true
absent:
  description: The listed (id, subject) pairs that are gone.
  returned: always
  type: list
  elements: dict
  sample: [{id: declared-port-held-by-other, subject: 1900/udp}]
not_evaluated:
  description: Listed ids the agent could not evaluate (a family not collected), with why.
  returned: always
  type: list
  elements: dict
  sample: [{id: unit-started-before-dns, subject: null, reason: "units: not collected"}]
"""

import time
from typing import Any, Dict, List, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netmedic.remediation.plugins.module_utils.agent import (
    AGENT_PATH_SPEC,
    import_agent,
)

Answer = Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]]]


def look(api: Any, context: Any, wanted: List[Dict[str, Any]]) -> Answer:
    """One diagnosis of the wanted ids → (present findings, absent pairs, not evaluated)."""
    ids = sorted({w["id"] for w in wanted})
    diagnosis = api.diagnose_host(context, only=ids).diagnosis
    skipped = {s["id"]: s["reason"] for s in diagnosis.skipped}
    unknown = [i for i in ids if i not in diagnosis.evaluated]
    present: List[Dict[str, Any]] = []
    absent: List[Dict[str, Any]] = []
    not_evaluated: List[Dict[str, Any]] = []
    for want in wanted:
        if want["id"] in unknown:
            reason = "not in the catalog (shipped or /etc/netmedic/catalog.d)"
            not_evaluated.append({**want, "reason": reason})
            continue
        if want["id"] in skipped:
            not_evaluated.append({**want, "reason": skipped[want["id"]]})
            continue
        found = [
            f.to_dict()
            for f in diagnosis.findings
            if f.id == want["id"] and (want["subject"] is None or f.subject == want["subject"])
        ]
        if found:
            present.extend(f for f in found if f not in present)
        else:
            absent.append(dict(want))
    return present, absent, not_evaluated


def describe(present: List[Dict[str, Any]], not_evaluated: List[Dict[str, Any]]) -> str:
    """``"still present: x (1900/udp): held by pid 7; not evaluated: y: units: not collected"``."""
    parts = []
    if present:
        parts.append(
            "still present: "
            + "; ".join(
                f"{f['id']} ({f['subject']}): {(f.get('evidence') or ['no evidence'])[0]}"
                for f in present
            )
        )
    if not_evaluated:
        parts.append(
            "not evaluated: "
            + "; ".join(
                f"{n['id']} ({n['subject'] or 'any'}): {n['reason']}" for n in not_evaluated
            )
        )
    return "; ".join(parts)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "findings": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "id": {"type": "str", "required": True},
                    "subject": {"type": "str"},
                },
            },
            "state": {"type": "str", "choices": ["absent", "query"], "default": "absent"},
            "wait": {"type": "int", "default": 0},
            "delay": {"type": "int", "default": 2},
            "config": {"type": "dict"},
            **AGENT_PATH_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["findings"]:
        module.fail_json(msg="findings is empty: name at least one finding id to check")
    if params["wait"] < 0 or params["delay"] < 1:
        module.fail_json(
            msg=f"wait must be >= 0 and delay >= 1, got {params['wait']}/{params['delay']}"
        )
    api, context_module = import_agent(module, "api", "context")
    wanted = [{"id": f["id"], "subject": f.get("subject")} for f in params["findings"]]
    context = context_module.Context(config=params["config"] or {})
    deadline = time.monotonic() + params["wait"]
    present, absent, not_evaluated = look(api, context, wanted)
    while (
        params["state"] == "absent" and (present or not_evaluated) and time.monotonic() < deadline
    ):
        time.sleep(params["delay"])
        present, absent, not_evaluated = look(api, context, wanted)
    result = {
        "changed": False,
        "present": present,
        "absent": absent,
        "not_evaluated": not_evaluated,
    }
    unknown = [n for n in not_evaluated if n["reason"].startswith("not in the catalog")]
    if unknown:
        module.fail_json(msg=describe([], unknown), **result)
    if params["state"] == "absent" and (present or not_evaluated):
        waited = f" after {params['wait']} s" if params["wait"] else ""
        module.fail_json(
            msg=f"verification failed{waited}: {describe(present, not_evaluated)}", **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
