#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The implementation is the action plugin plugins/action/audit_evaluate.py (runs on the controller).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: audit_evaluate
short_description: Evaluate the vmguard policy over the evidence of every host and write the reports
version_added: "0.1.0"
description:
  - Runs on the controller, once per play. Reads the evidence that
    M(vmguard.hardening.hypervisor_facts) and M(vmguard.hardening.guest_facts) left in each
    host's variables (a host in both lists, a nested hypervisor, is read from both variables),
    evaluates every enabled catalog rule on every subject with the pure policy engine (fleet rules
    see all hosts), applies waivers, and writes C(report.json), C(junit.xml), C(report.html),
    C(report.sarif) and C(report.oscal.json) into O(report_dir) as one set - each rendered into a
    private temp file there (report.sarif and report.oscal.json by a forked child meanwhile), and
    all renamed only when all are written; on a failure no temp file is left and the previous set
    is unchanged.
  - The previous C(report.json) (for C(since_previous)) is parsed by a forked child while the rules
    run; no child is forked while another thread runs in the process.
  - Fails when there is nothing to audit (O(hypervisors), O(guests) and O(vcenters) all empty; the
    message names O(hypervisor_group), O(guest_group) and O(vcenter_group)), when O(report_dir) is
    empty or O(report_mode) is not an octal string, and when C(--tags) or C(--skip-tags) name something that is neither a
    rule id, an area, one of Ansible's special tags nor one of O(known_tags) (a typo such as
    C(DIV-2) must not turn into a full audit). C(--tags) selects rules by id or area,
    C(--skip-tags) leaves them out. The rollback guards RB-05..RB-10 a selection leaves out are still
    evaluated for the planner alone (not reported) - a revert quarantine is lifted, and a guest's epoch
    moves, only when they settle (pass, not applicable, or remediated in this run).
  - A host of the lists that Ansible removed from the play (failed or unreachable earlier in the run, so in
    C(ansible_play_hosts_all) and not in C(ansible_play_hosts)) ran none of its evidence tasks, and what its
    variables hold is an earlier audit's. Its evidence is an error naming that (error findings), never judged.
  - Guest data in the console messages (RV(msg), RV(gate)), in C(junit.xml) and in
    C(report.html) is shown with control characters, terminal escapes and other invisible code
    points escaped as text (C(\x1b[31m)); C(report.json) keeps it as collected.
  - With O(validate_only=true) only validates the policy (deep-merged over the shipped defaults)
    and fails with every problem named by its key path; with O(run_checks=true) as well it also
    checks the hosts, the tags, O(report_dir) and O(report_mode) (the audit role's first task).
  - Never fails because of findings; the result says whether the gate (O(fail_on)) was hit, so
    the play decides.
author:
  - vmguard.hardening developers (@vmguard)
options:
  policy:
    description:
      - The user's policy document (C(vmguard_policy)), a mapping deep-merged over the shipped defaults.
      - Taken as given, whatever its type; a value that is not a mapping is rejected by the policy
        validation, which names what is wrong.
    type: raw
    default: {}
  hypervisors:
    description: Inventory names of the hypervisors whose evidence to read. Required (may be empty) unless O(validate_only).
    type: list
    elements: str
  guests:
    description: Inventory names of the guests whose evidence to read. Required (may be empty) unless O(validate_only).
    type: list
    elements: str
  hypervisor_group:
    description: Name of the hypervisor group, for the message when there is nothing to audit.
    type: str
    default: vmguard_hypervisors
  guest_group:
    description: Name of the guest group, for the message when there is nothing to audit.
    type: str
    default: vmguard_guests
  hypervisor_evidence_var:
    description:
      - Host variable that holds a hypervisor's evidence - the result the audit role registered from
        M(vmguard.hardening.hypervisor_facts) (read in place, not copied through a fact), or an evidence
        dictionary. An unreachable, failed or skipped result becomes an error for that hypervisor.
      - A result that says C(published) (hypervisor_facts O(vmguard.hardening.hypervisor_facts#module:publish))
        is followed to the variable it names. Variables that hold a dictionary are read as stored, not
        templated again.
    type: str
    default: __vmguard_audit_hv_evidence
  vcenters:
    description:
      - Inventory names of the vCenters to audit (their VMs are subjects C(<vcenter>/<vm>)).
      - Default - the hosts of O(vcenter_group).
    type: list
    elements: str
  vcenter_group:
    description: Name of the vCenter group, the default of O(vcenters).
    type: str
    default: vmguard_vcenters
  vcenter_evidence_var:
    description:
      - Host variable that holds a vCenter's evidence - the result the audit role registered from
        M(vmguard.hardening.vsphere_facts) (C(published) is followed to the variable it names), or an
        evidence dictionary. An unreachable, failed or skipped result becomes an error for that vCenter.
      - The VMs the vCenter declares are the value's C(inventory) when it has one, else the vCenter's
        C(vmguard_vcenter_vms).
    type: str
    default: __vmguard_audit_vc
  guest_evidence_var:
    description:
      - Host variable that holds a guest's evidence - the result the audit role registered from
        M(vmguard.hardening.guest_facts), or a dictionary C({error, facts}). An unreachable, failed or
        skipped result becomes an error for that guest.
    type: str
    default: __vmguard_audit_guest
  report_dir:
    description:
      - Directory for the reports (created when missing, with the search bits matching O(report_mode),
        so C(0750) for C(0640)). Must not be empty. Relative to the controller's working directory.
      - Defaults to C(./vmguard-report) when evaluating.
    type: str
  report_mode:
    description:
      - Permissions of the report files, a quoted octal string. Defaults to C(0640) (not world-readable).
      - A mode with the others' write bit (C(0666)) is refused before anything runs, since any user could then
        rewrite the verdict in the reports.
    type: raw
  previous_report:
    description:
      - The C(report.json) of an earlier run that "since the previous run" (new failures, fixed, still
        failing, gone) compares with, in every report. Relative to the controller's working directory.
      - Empty or not given, the C(report.json) already in O(report_dir), if any (one that cannot be read
        is named in the reports, not an error). A file given here must be a readable vmguard report.
    type: str
  fail_on:
    description: Lowest severity at which a failing or erroring finding fails the gate.
    type: str
    choices: [low, medium, high, critical]
    default: high
  known_tags:
    description: Task tags of the calling playbook that C(--tags) / C(--skip-tags) may name besides rule ids and areas.
    type: list
    elements: str
    default: []
  sarif_sources:
    description:
      - Files that declare the subjects, for the anchors of report.sarif's results (O(sarif_sources.inventory),
        O(sarif_sources.policy)). Paths inside the current directory are written relative to it, others as
        their base name.
      - Not given, the inventory sources Ansible used that exist.
    type: dict
    suboptions:
      inventory:
        description:
          - Paths of the inventory files; hosts, domains and images are anchored on the first.
          - Not given, the inventory sources Ansible used that exist (a host list such as C(localhost,) is none).
        type: list
        elements: str
      policy:
        description:
          - Path of the policy file; fleet-wide findings and expired waivers are anchored on it.
          - Not given, they are anchored on the first inventory file, if any.
        type: str
  validate_only:
    description: Only validate the policy (and with O(run_checks) the run's settings); evaluate nothing.
    type: bool
    default: false
  run_checks:
    description: With O(validate_only), also check the hosts, the tags, O(report_dir) and O(report_mode).
    type: bool
    default: false
  now:
    description: Evaluation time (seconds since the epoch); defaults to the current time. For reproducible reports.
    type: float
  publish:
    description:
      - Name of a variable to set, for every host the task runs for (with C(run_once), every host of the
        play), as M(ansible.builtin.set_fact) would, to a dictionary of RV(summary), RV(gate_failed), RV(gate),
        RV(reports), RV(policy_digest), RV(policy), RV(findings) and RV(plan). RV(findings), RV(policy) and
        RV(plan) then leave the result with RV(gate) (its length stays as RV(gate_count)), and the result carries
        RV(published) instead.
      - A set_fact of 25,000 findings templates every one of them again (seconds); this does not.
      - Needs ansible-core 2.21 or later (an action setting host variables); on older cores it is ignored,
        the result keeps everything and RV(published) is absent. The audit role publishes C(vmguard_audit)
        this way, and with M(ansible.builtin.set_fact) where the core is older.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Managed hosts are never changed; the reports are written on the controller in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Evaluate and report
  vmguard.hardening.audit_evaluate:
    policy: "{{ vmguard_policy | default({}) }}"
    hypervisors: "{{ groups['vmguard_hypervisors'] | default([]) }}"
    guests: "{{ groups['vmguard_guests'] | default([]) }}"
    report_dir: ./vmguard-report
    report_mode: "0640"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
summary:
  description: Counts per status, per area and per severity.
  returned: unless validate_only
  type: dict
gate_failed:
  description: Whether a finding with status fail or error is at or above fail_on.
  returned: unless validate_only
  type: bool
gate:
  description:
    - The findings that fail the gate (rule, severity, status, subject id, message, definition, pending_restart).
    - Subject and message are escaped for the console (control characters as text).
  returned: unless validate_only or published
  type: list
  elements: dict
gate_count:
  description: How many findings fail the gate (the length of RV(gate)).
  returned: unless validate_only
  type: int
  sample: 3
reports:
  description: Paths of report.json, junit.xml, report.html, report.sarif and report.oscal.json (keys json, junit, html,
    sarif, oscal).
  returned: unless validate_only
  type: dict
since_previous:
  description: Counts of new, fixed, still_failing and gone findings since the previous report, or null without one.
  returned: unless validate_only
  type: dict
policy_digest:
  description: SHA-256 of the effective policy.
  returned: always
  type: str
rules_selected:
  description: The rule ids C(--tags) / C(--skip-tags) select, or C(all).
  returned: when run_checks
  type: raw
rules_not_evaluated:
  description:
    - The rules this run has no finding for, each with C(rule), C(area), C(severity) and C(reason) (disabled by the
      policy, or not selected by C(--tags) / C(--skip-tags)); empty when every rule was evaluated.
    - Every report says so too (report.json C(rules_not_evaluated), a skipped testcase in junit.xml, a NOT
      EVALUATED line in report.html, a disabled rule configuration in report.sarif, left out of report.oscal.json's
      reviewed controls), and RV(msg) counts them, so that no finding is never read as a pass.
  returned: unless validate_only
  type: list
  elements: dict
msg:
  description: One line with the counts and the path of report.html (escaped for the console), or why the audit cannot run.
  returned: always
  type: str
policy:
  description: The effective policy (defaults deep-merged with the user's).
  returned: unless published
  type: dict
published:
  description: The variable O(publish) set (then RV(findings), RV(policy), RV(plan) and RV(gate) are in it, not here).
  returned: when published
  type: str
  sample: vmguard_audit
findings:
  description: Every finding (rule, area, severity, status, subject, message, remediation, evidence, and for
    running domains definition and pending_restart), as in report.json.
  returned: unless validate_only or published
  type: list
  elements: dict
plan:
  description:
    - What enforcement carries out, planned by the pure planner (plugins/module_utils/audit/plan.py) from the
      policy, the evidence and the findings - the only input of the hypervisor and guest roles.
    - C(hosts) maps each inventory host to its remediations (on a hypervisor C(host_config), C(domain_policy),
      C(snapshot_policy) and C(revert_watcher); on a guest C(identity_reseal), C(sysctl), C(expire_passwords),
      C(reconverge), C(service_lockdown), C(guest_firewall) and C(ledger)), each with the rules and subjects it
      fixes and its parameters;
      C(pending_restart) and C(not_enforced) list the failing findings no step fixes now, with the reason;
      a C(not_enforced) entry's C(by_choice) is true when the policy or the design leaves it (audit mode, no
      remediation, the vsphere role's) and false when the finding is enforceable but not here (a value of the
      wrong shape, a host that cannot), which harden prints as C(cannot_enforce_here);
      C(steps) counts the remediations.
    - An C(identity_reseal) entry carries C(force) (items identity_reseal regenerates whatever their value);
      C([machine_id]) when DIV-01 fails on an empty or uninitialized machine-id, which has no digest to match.
  returned: unless validate_only or published
  type: dict
  sample:
    hosts:
      kvm01:
        domain_policy: {rules: [DIV-09], subjects: [kvm01/web1], fixes: [DIV-09], domains: {web1: {DIV-09: {}}}}
      web1:
        identity_reseal: {rules: [DIV-02], subjects: [web1], machine_id_digest: null, random_seed_digest: null,
                          ssh_fingerprints: ["SHA256:..."], force: []}
        ledger: {rules: [], subjects: [web1], hypervisor: kvm01, uuid: 6f1c...-..., retire_fingerprints: ["SHA256:..."]}
    pending_restart: []
    not_enforced: [{rule: ISO-04, subject: kvm01/web1, reason: "cannot be enforced on this host: no AppArmor or SELinux", by_choice: false}]
    steps: 2
"""
