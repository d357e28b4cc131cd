# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The agent_path option of every netmedic module that runs the agent."""

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by netmedic_facts, netmedic_check, netmedic_plan and netmedic_reaper."""

    DOCUMENTATION = r"""
options:
  agent_path:
    description:
      - Directory that holds the agent's C(netmedic) package on the target, where the
        P(netmedic.remediation.netmedic_agent#role) role installs it (its C(netmedic_agent_path)).
      - The collection ships the agent in its C(agent/) directory; a controller can point
        here at a copy of it (lookup P(netmedic.remediation.agent_source#lookup)).
    type: path
    default: /usr/lib/netmedic
"""
