# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lookup plugin: the argument specs of every role in this collection."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: role_specs
short_description: The main argument specs of every role of this collection
description:
  - Returns one mapping, each role of the collection that has C(meta/argument_specs.yml)
    to the options of its C(main) entry point, read from the installed collection.
  - site.yml checks the role variables an inventory sets against them before any host
    is touched (C(playbooks/plays/check-inventory.yml)); roles are found, not listed.
options: {}
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
- name: Show which roles' variables an inventory may set
  ansible.builtin.debug:
    msg: "{{ lookup('netmedic.remediation.role_specs') | list }}"
"""

RETURN = r"""
_raw:
  description: One mapping of role name to the options of its main entry point.
  type: list
  elements: dict
"""

import os
from typing import Any, Dict, List

import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# plugins/lookup/ → the collection's root → roles/
ROLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles"
)


class LookupModule(LookupBase):
    """``lookup('netmedic.remediation.role_specs')`` → ``{"port_conflicts": {...}, ...}``."""

    def run(self, terms: List[Any], variables: Any = None, **kwargs: Any) -> List[Dict[str, Any]]:
        if terms:
            raise AnsibleLookupError(f"role_specs takes no terms, got {terms!r}")
        specs: Dict[str, Any] = {}
        for role in sorted(os.listdir(ROLES_DIR)):
            path = os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")
            if not os.path.isfile(path):
                continue
            try:
                with open(path, encoding="utf-8") as handle:
                    specs[role] = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
            except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
                raise AnsibleLookupError(f"{path}: no readable main entry point: {exc}") from exc
        return [specs]
