#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: gather netmedic facts on the target."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_facts
short_description: Gather netmedic host facts (port owners, units, DNS, processes, ports, channels)
description:
  - Runs the netmedic agent's collectors on the target and returns their document
    as C(ansible_facts.netmedic), the same document C(netmedic facts) prints and
    C(/etc/ansible/facts.d/netmedic.fact) exposes as C(ansible_local.netmedic).
  - Gathering is read-only, so it runs in check mode too.
  - The agent must be on the target, installed by the
    P(netmedic.remediation.netmedic_agent#role) role or present in a checkout named by
    O(agent_path).
options:
  only:
    description: Fact families to gather; all when empty.
    type: list
    elements: str
    choices: [ports, units, dns, processes, ephemeral, channels]
    default: []
  diagnose:
    description:
      - Also match the catalog (shipped entries plus C(/etc/netmedic/catalog.d))
        against the facts and return the findings as C(ansible_facts.netmedic_diagnosis),
        the same document C(netmedic diagnose --format json) prints.
      - Needs every family, so O(only) must be empty.
    type: bool
    default: false
  config:
    description:
      - Use this config (the shape of C(/etc/netmedic/config.yml), docs/facts.md) instead
        of the host's file, e.g. a role's port plan as C(ports), so that the C(ports)
        family reads SO_REUSEADDR of those UDP ports even with O(only=[ports]).
      - Unset reads C(/etc/netmedic/config.yml) when a requested family needs it.
    type: dict
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
# Gather every family with the installed agent
- name: Gather netmedic facts
  netmedic_facts:

# Gather only port owners, from an agent in a checkout
- name: Gather port owners
  netmedic_facts:
    only: [ports]
    agent_path: /srv/netmedic/agent

# Read who holds 1900/udp and whether it lets others share it (SO_REUSEADDR)
- name: Gather the owners of a port the caller declares
  netmedic_facts:
    only: [ports]
    config:
      ports:
        - {port: 1900, proto: udp, owner: airupnp.service}

# Gather and diagnose; findings carry the role and vars that fix them
- name: Diagnose this host
  netmedic_facts:
    diagnose: true

# Use the result
- name: Show who holds 1900/udp
  ansible.builtin.debug:
    msg: "{{ ansible_facts.netmedic.ports.sockets | selectattr('port', 'equalto', 1900) | list }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: complex
  contains:
    netmedic:
      description: The agent's facts document (schema in docs/facts.md).
      returned: always
      type: dict
      sample:
        schema_version: 2
        host: web-01
        collected_at: "2026-11-22T04:00:00Z"
        duration_ms: 41
        ports: {source: netlink, sockets: []}
        errors: []
    netmedic_diagnosis:
      description: Findings, when O(diagnose=true).
      returned: when diagnose is true
      type: dict
      sample:
        status: CRITICAL
        exit_code: 2
        findings:
          - id: port-held-by-other-program
            severity: critical
            subject: 1900/udp
            destructive: true
            remediation: {role: port_conflicts, vars: {}}
        skipped: []
        catalog_errors: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netmedic.remediation.plugins.module_utils.agent import (
    AGENT_PATH_SPEC,
    import_agent,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "only": {
                "type": "list",
                "elements": "str",
                "default": [],
                "choices": ["ports", "units", "dns", "processes", "ephemeral", "channels"],
            },
            **AGENT_PATH_SPEC,
            "config": {"type": "dict"},
            "diagnose": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    # Not mutually_exclusive: that counts an explicit `only: []` as set.
    if module.params["diagnose"] and module.params["only"]:
        module.fail_json(
            msg=f"only={module.params['only']} with diagnose=true: the diagnosis needs "
            "every family, so leave only empty"
        )
    api, context_module = import_agent(module, "api", "context")
    # An empty config makes the collectors and the diagnosis read the host's file.
    context = context_module.Context(
        only=module.params["only"] or None, config=module.params["config"] or {}
    )
    if not module.params["diagnose"]:
        module.exit_json(changed=False, ansible_facts={"netmedic": api.collect(context)})

    host = api.diagnose_host(context)
    module.exit_json(
        changed=False,
        ansible_facts={"netmedic": host.facts, "netmedic_diagnosis": host.diagnosis.to_dict()},
    )


if __name__ == "__main__":
    main()
