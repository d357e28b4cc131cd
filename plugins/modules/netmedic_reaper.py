#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module: signal the lingering processes the agent named, and restore what a
killed VPN client left; the process layer is the installed agent's (netmedic.procs)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_reaper
short_description: Signal the lingering processes the agent named, with guards and a ladder
description:
  - Acts on targets as the agent's C(lingering-client-processes) findings name them
    (PID, start time in seconds after boot, profile). It does not judge again whether
    they linger; that is the agent's call (the C(netmedic.procs) layer this module
    imports from O(agent_path)).
  - Before every signal the PID and start time are re-read, through a pidfd where the
    kernel has them, so a PID the kernel reused is never signalled (guard
    C(start-time-mismatch) is reported as outcome C(pid-reused)).
  - Guards that always hold, even with O(force) - PID 1, kernel threads, this module's
    own ancestry, Ansible's processes, C(sshd) and O(protected_names). The
    active-tunnel guard (an open C(/dev/net/tun) in the process or below it, a
    descriptor table that cannot be read, the live PID of a profile's
    C(tunnel_lock_files)) holds unless O(force=true).
  - Each target gets its profile's C(ladder) (default SIGTERM then SIGKILL, 5 s
    grace each); then the profile's C(lock_files) whose PID is dead, reaped or now
    another program are removed.
  - O(leftovers) restores what a killed vpnc-script client left (C(vpn-client-leftovers)
    findings) - C(/etc/resolv.conf) from C(resolv.conf-backup.PID) while it carries
    C(#@VPNC_GENERATED@), the default route from C(defaultroute.PID) when none exists -
    only while PID is dead; the restored backup files are removed.
  - More than O(max_targets) processes to signal aborts before any signal.
options:
  targets:
    description: The processes to signal, from the findings' C(vars).
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: Process ID.
        type: int
        required: true
      start_time:
        description: Seconds after boot the process started (the agent's C(start_time)).
        type: float
        required: true
      profile:
        description: The declared profile the agent matched it with.
        type: str
        required: true
      name:
        description: The process name the agent saw (informational).
        type: str
  profiles:
    description:
      - The declared profiles the targets name (entries of C(netmedic_agent_config.processes)),
        for their C(ladder), C(lock_files) and C(tunnel_lock_files); other keys are ignored.
    type: list
    elements: dict
    default: []
  leftovers:
    description: Leftovers of dead vpnc-script clients to restore, from the findings' C(vars).
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: The dead client's PID (the files' suffix).
        type: int
        required: true
      state_dir:
        description: Where vpnc-script keeps its backups.
        type: path
        default: /var/run/vpnc
      resolv_conf:
        description: The resolv.conf vpnc-script rewrote.
        type: path
        default: /etc/resolv.conf
  force:
    description: Signal what the active-tunnel guard spares (drops VPNs); other guards hold.
    type: bool
    default: false
  max_targets:
    description: Most processes one run may signal; above it the run aborts unchanged. At least 1.
    type: int
    default: 10
  protected_names:
    description: Process names never signalled, besides the built-in guards.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: [Reports what would be signalled, removed and restored; changes nothing.]
  diff_mode:
    support: none
  platform:
    support: full
    platforms: linux
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - netmedic.remediation.agent
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# Signal the gpclient a finding named, with its declared ladder (SIGINT, SIGTERM, SIGKILL)
- name: Reap the lingering gpclient
  netmedic_reaper:
    targets: [{profile: gpclient-gui, pid: 4242, start_time: 812.5, name: gpclient}]
    profiles:
      - name: gpclient-gui
        match: {name: gpclient, cmdline: launch-gui}
        ladder:
          - {signal: SIGINT, grace: 5}
          - {signal: SIGTERM, grace: 5}
          - {signal: SIGKILL, grace: 3}
        lock_files: [/var/run/gpclient.lock]

# Put back resolv.conf and the default route a killed gpservice (PID 4300) left
- name: Restore the VPN client's leftovers
  netmedic_reaper:
    leftovers: [{pid: 4300}]
"""

RETURN = r"""
targets:
  description: Processes signalled (in check mode, to be), with the signals sent and the outcome
    (C(died), C(survived), C(vanished), C(pid-reused), C(exited), C(would-signal)).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4242, name: gpclient, profile: gpclient-gui, start_time: 812.5, ppid: 1,
            signals: [SIGINT], outcome: died, died_after: SIGINT}]
spared:
  description: Targets a guard protects (C(guard) - C(pid1), C(kernel-thread), C(own-ancestry),
    C(ansible), C(sshd), C(protected-name), C(tunnel), C(tunnel-lock), C(tunnel-unknown)).
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 4300, name: gpclient, profile: gpclient, guard: tunnel,
       detail: "pid 4300: fd 7 is /dev/net/tun"}
gone:
  description: Targets no longer as the agent saw them (C(vanished), C(pid-reused), C(exited)).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4250, profile: gpclient, outcome: pid-reused}]
lock_files:
  description: Stale lock files removed (in check mode, to be).
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/run/gpservice.lock, profile: gpservice, pid: 4243, port: 4123}]
leftovers:
  description: Per dead client, what was restored (C(resolv_conf), C(default_route)), the files
    removed, or why it was skipped.
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 4300, restored: [resolv_conf, default_route],
       removed: [/var/run/vpnc/resolv.conf-backup.4300, /var/run/vpnc/defaultroute.4300],
       route: "default via 192.0.2.1 dev lab0", skipped: null}
reaped:
  description: PIDs that died in this run (empty in check mode).
  returned: always
  type: list
  elements: int
  sample: [4242]
signalled:
  description: How many processes were signalled (in check mode, would be).
  returned: always
  type: int
  sample: 1
check_mode:
  description: Whether this run only planned (a task's C(check_mode) is not ansible_check_mode).
  returned: always
  type: bool
  sample: false
"""

import os
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netmedic.remediation.plugins.module_utils.agent import (
    AGENT_PATH_SPEC,
    import_agent,
)


def run(module: AnsibleModule, procs: Any) -> Dict[str, Any]:
    """Plan, enforce the cap, then (unless check mode) signal, clean locks and restore."""
    from netmedic.procs import reap, vpnc  # noqa: PLC0415 -- imported by main() first
    from netmedic.procs.profiles import build_profile  # noqa: PLC0415

    params, check_mode = module.params, module.check_mode
    if not params["targets"] and not params["leftovers"]:
        raise reap.ReaperError("targets and leftovers are empty: nothing was named to act on")
    if params["max_targets"] < 1:
        raise reap.ReaperError(f"max_targets must be >= 1, got {params['max_targets']}")
    profiles = {}
    for index, raw in enumerate(params["profiles"]):
        profile = build_profile(raw)
        if profile.error is not None:
            raise reap.ReaperError(f"profiles[{index}] ({profile.name}): {profile.error}")
        reap.ladder_of(profile)  # refuse a bad ladder before anything is signalled
        profiles[profile.name] = profile
    table = procs.scan("/proc")
    guards = reap.Guards(table, params["protected_names"], params["force"], os.getpid())
    planned = reap.plan(params["targets"], profiles, guards)
    targets = planned["targets"]
    if len(targets) > params["max_targets"]:
        raise reap.ReaperError(
            f"would signal {len(targets)} processes, above max_targets={params['max_targets']}; "
            f"nothing was signalled (targets: {[t['pid'] for t in targets]})"
        )
    if check_mode:
        for target in targets:
            signals = [name for name, _grace in target["ladder"]]
            target.update(signals=signals, outcome="would-signal")
    else:
        reap.run_ladder(targets)
    acted = [profiles[name] for name in dict.fromkeys(t["profile"] for t in targets)]
    dying = {t["pid"] for t in targets if t["outcome"] in ("died", "would-signal")}
    locks = reap.stale_locks(acted, dying)
    if not check_mode:
        reap.remove_locks(locks)
    restored: List[Dict[str, Any]] = []
    for leftover in params["leftovers"]:
        try:
            restored.append(vpnc.restore(leftover, procs.scan("/proc"), check_mode))
        except vpnc.RestoreError as exc:
            raise reap.ReaperError(str(exc)) from exc
    for target in targets:
        target["ladder"] = [{"signal": s, "grace": g} for s, g in target["ladder"]]
    signalled = sum(1 for t in targets if t["signals"])
    return {
        "changed": bool(signalled or locks or any(r["restored"] for r in restored)),
        "targets": targets,
        "spared": planned["spared"],
        "gone": planned["gone"],
        "lock_files": locks,
        "leftovers": restored,
        "reaped": sorted(t["pid"] for t in targets if t["outcome"] == "died"),
        "signalled": signalled,
        "check_mode": check_mode,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "targets": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "pid": {"type": "int", "required": True},
                    "start_time": {"type": "float", "required": True},
                    "profile": {"type": "str", "required": True},
                    "name": {"type": "str"},
                },
            },
            "profiles": {"type": "list", "elements": "dict", "default": []},
            "leftovers": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "pid": {"type": "int", "required": True},
                    "state_dir": {"type": "path", "default": "/var/run/vpnc"},
                    "resolv_conf": {"type": "path", "default": "/etc/resolv.conf"},
                },
            },
            "force": {"type": "bool", "default": False},
            "max_targets": {"type": "int", "default": 10},
            "protected_names": {"type": "list", "elements": "str", "default": []},
            **AGENT_PATH_SPEC,
        },
        supports_check_mode=True,
    )
    reap, procs = import_agent(module, "procs.reap", "procs.table")
    try:
        result = run(module, procs)
    except reap.ReaperError as exc:
        module.fail_json(msg=str(exc))
    survived = [t["pid"] for t in result["targets"] if t["outcome"] == "survived"]
    if survived:
        module.fail_json(msg=f"processes survived the whole signal ladder: {survived}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
