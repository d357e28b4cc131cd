# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How netmedic's modules find and import the agent on the target.

The agent is a plain Python package (``netmedic``) that the netmedic_agent role
copies to ``agent_path`` (no pip on targets). A module imports the parts it needs
from there: ``import_agent(module, "api", "context")`` returns ``netmedic.api`` and
``netmedic.context``, or fails the task naming the path it looked under.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Dict, List

DEFAULT_AGENT_PATH = "/usr/lib/netmedic"

# The option every module that runs the agent takes (doc fragment netmedic.remediation.agent).
AGENT_PATH_SPEC: Dict[str, Dict[str, Any]] = {
    "agent_path": {"type": "path", "default": DEFAULT_AGENT_PATH},
}


class AgentMissing(ImportError):
    """The agent (or one of its modules) is not importable from ``agent_path``."""


def load_agent(agent_path: str, *names: str) -> List[Any]:
    """``netmedic.<name>`` for each name, imported from ``agent_path`` ahead of any other copy.

    ``load_agent("/usr/lib/netmedic", "api")`` → ``[<module 'netmedic.api'>]``; an agent
    that is not there raises :class:`AgentMissing` naming the path and what failed.
    """
    if agent_path not in sys.path:
        sys.path.insert(0, agent_path)
    try:
        return [importlib.import_module(f"netmedic.{name}") for name in names]
    except ImportError as exc:
        raise AgentMissing(f"netmedic agent not found under {agent_path}: {exc}") from exc


def import_agent(module: Any, *names: str) -> List[Any]:
    """:func:`load_agent` with the module's ``agent_path``; a missing agent fails the task."""
    try:
        return load_agent(module.params["agent_path"], *names)
    except AgentMissing as exc:
        module.fail_json(
            msg=f"{exc}; install it with the netmedic.remediation.netmedic_agent role "
            "or set agent_path"
        )
        raise  # fail_json exits; this line is for readers and type checkers
