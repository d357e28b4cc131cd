# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The policy engine of netmedic_plan: the operator's policy checked, the audit log's fix
attempts counted, one decision per finding and the variables each role is handed.

Pure functions over plain data (no AnsibleModule): the module reads the host and calls them.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

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
