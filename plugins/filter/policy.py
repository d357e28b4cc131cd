# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The operators' policies checked on the controller, as netmedic_plan checks one on a host.

site.yml checks every targeted host's ``netmedic_policy`` with it, once, before any host
is touched (playbooks/plays/check-inventory.yml); the rules are module_utils/plan.py's.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from ansible_collections.netmedic.remediation.plugins.module_utils.plan import check_policy


def policy_problems(policies: Mapping[str, Any]) -> List[str]:
    """Each host's policy checked: ``{"h1": {"allow_destructive": "x"}}`` → ``["h1:
    netmedic_policy.allow_destructive must be a list of finding ids, got the string 'x'"]``;
    usable policies → ``[]``."""
    return [
        f"{host}: {problem}"
        for host, policy in policies.items()
        for problem in check_policy(policy)[1]
    ]


class FilterModule:
    """Jinja2 filters of the policy engine."""

    def filters(self) -> Dict[str, Any]:
        return {"policy_problems": policy_problems}
