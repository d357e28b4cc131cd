# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lookup plugin: where this collection keeps the agent it installs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: agent_source
short_description: The directory of the netmedic agent shipped in this collection
description:
  - Returns the directory on the controller that holds the agent's C(netmedic) Python
    package inside the installed collection (its C(agent/) directory), the one copy the
    P(netmedic.remediation.netmedic_agent#role) role packs and installs on hosts.
  - Fails when the package is not there (a collection built without its agent).
  - The value suits the modules' C(agent_path) for a play on the controller itself,
    where the agent can run straight from the collection.
options: {}
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# The agent's source directory, as the netmedic_agent role packs it
- name: Show where the agent comes from
  ansible.builtin.debug:
    msg: "{{ lookup('netmedic.remediation.agent_source') }}"

# Gather facts on the controller with the agent of the collection, nothing installed
- name: Gather netmedic facts on localhost
  netmedic.remediation.netmedic_facts:
    agent_path: "{{ lookup('netmedic.remediation.agent_source') }}"
  delegate_to: localhost
"""

RETURN = r"""
_raw:
  description: One path, the directory that holds the C(netmedic) package.
  type: list
  elements: path
"""

import os
from typing import Any, List

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# plugins/lookup/ → the collection's root → agent/
AGENT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "agent"
)


class LookupModule(LookupBase):
    """``lookup('netmedic.remediation.agent_source')`` → ``.../netmedic/remediation/agent``."""

    def run(self, terms: List[Any], variables: Any = None, **kwargs: Any) -> List[str]:
        if terms:
            raise AnsibleLookupError(f"agent_source takes no terms, got {terms!r}")
        package = os.path.join(AGENT_DIR, "netmedic", "__init__.py")
        if not os.path.isfile(package):
            raise AnsibleLookupError(f"the netmedic agent is not in the collection: no {package}")
        return [AGENT_DIR]
