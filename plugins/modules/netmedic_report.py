#!/usr/bin/python
# Copyright: (c) netmedic contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Documentation of the netmedic_report action (plugins/action/netmedic_report.py runs it)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netmedic_report
short_description: Write the fleet report of one netmedic run on the controller
description:
  - Reads what each targeted host left in C(hostvars) (the plan, the closing diagnosis,
    a recorded failure, or the facts C(setup) read) and writes C(<report_dir>/<host>.json)
    for every host, C(summary.md) and a self-contained C(summary.html).
  - Each host is accounted for - C(findings) (with severity), C(healthy), C(unreachable),
    C(failed) (task and message), C(not run) (the rollout stopped before its batch),
    C(not checked) (no agent answer) or C(skipped) (outside C(--limit)).
  - The report is the run's output on the controller, not a change to any host; it is
    written in check mode too and C(changed) is always false.
  - Runs on the controller only (an action plugin); C(playbooks/plays/report.yml) runs it
    once after every batch of C(site.yml) or C(facts.yml).
options:
  kind:
    description:
      - V(site) reads each host's C(netmedic_plan) and closing diagnosis; V(facts) reads
        the C(ansible_local.netmedic) document the facts.d hook returned to C(setup).
    type: str
    choices: [site, facts]
    default: site
  hosts:
    description: The hosts the run targeted (C(ansible_play_hosts_all)).
    type: list
    elements: str
    default: []
  skipped:
    description: Hosts of the playbook's pattern that C(--limit) left out.
    type: list
    elements: str
    default: []
  run:
    description:
      - The run's record (C(netmedic_run) of C(plays/start-run.yml)) - C(report_dir) is
        required; C(id), C(playbook), C(check_mode), C(started) and C(stopped) are
        written into the report.
    type: dict
    required: true
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The report is written in check mode too; no host is changed.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
author:
  - netmedic contributors (@netmedic)
"""

EXAMPLES = r"""
# The last-but-one play of site.yml: one report for every targeted host
- name: Write the report of every targeted host
  netmedic.remediation.netmedic_report:
    kind: site
    hosts: "{{ ansible_play_hosts_all }}"
    run: "{{ hostvars['localhost'].netmedic_run }}"
  run_once: true
  delegate_to: localhost
  check_mode: false
"""

RETURN = r"""
report_dir:
  description: The directory the report was written to.
  returned: success
  type: str
  sample: /srv/netmedic/reports/20261122T040000Z
summary_md:
  description: The path of C(summary.md).
  returned: success
  type: str
  sample: /srv/netmedic/reports/20261122T040000Z/summary.md
stats:
  description: The run's counts, as C(set_stats) hands them to AWX workflows.
  returned: success
  type: dict
  sample:
    run_id: 20261122T040000Z-4711
    report_dir: /srv/netmedic/reports/20261122T040000Z
    check_mode: false
    hosts: 3
    by_status: {findings: 1, healthy: 1, unreachable: 1}
    by_finding: {unit-started-before-dns: 1}
failed_hosts:
  description: Hosts that failed, were unreachable or were not run.
  returned: success
  type: list
  elements: str
  sample: [db-02]
reasons:
  description: Why each of RV(failed_hosts) is there, one line per host.
  returned: success
  type: dict
  sample: {db-02: "unreachable: ssh: connect to host db-02 port 22: No route to host"}
seconds:
  description: How long writing the report took.
  returned: success
  type: float
  sample: 0.042
"""
