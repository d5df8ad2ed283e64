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
    host's variables, evaluates every enabled catalog rule on every subject with the pure policy
    engine (fleet rules see all hosts), applies waivers, and writes C(report.json),
    C(junit.xml) and C(report.html) into O(report_dir).
  - With O(validate_only=true) only validates the policy (deep-merged over the shipped defaults)
    and fails with every problem named by its key path.
  - Never fails because of findings; the result says whether the gate (O(fail_on)) was hit, so
    the play decides.
author:
  - vmguard.hardening developers (@vmguard)
options:
  policy:
    description: The user's policy document (C(vmguard_policy)), deep-merged over the shipped defaults.
    type: dict
    default: {}
  hypervisors:
    description: Inventory names of the hypervisors whose evidence to read.
    type: list
    elements: str
    default: []
  guests:
    description: Inventory names of the guests whose evidence to read.
    type: list
    elements: str
    default: []
  evidence_var:
    description: Host variable that holds each host's evidence.
    type: str
    default: __vmguard_audit_evidence
  report_dir:
    description: Directory for the reports (created when missing).
    type: path
    default: ./vmguard-report
  fail_on:
    description: Lowest severity at which a failing or erroring finding fails the gate.
    type: str
    choices: [low, medium, high, critical]
    default: high
  validate_only:
    description: Only validate the policy.
    type: bool
    default: false
  now:
    description: Evaluation time (seconds since the epoch); defaults to the current time. For reproducible reports.
    type: float
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
  description: The findings that fail the gate (rule, severity, status, subject id, message).
  returned: unless validate_only
  type: list
  elements: dict
reports:
  description: Paths of report.json, junit.xml and report.html.
  returned: unless validate_only
  type: dict
policy_digest:
  description: SHA-256 of the effective policy.
  returned: always
  type: str
policy:
  description: The effective policy (defaults deep-merged with the user's), for roles that enforce it.
  returned: when validate_only
  type: dict
failing:
  description: Every finding with status fail (rule, subject id, subject kind, evidence), for enforcement.
  returned: unless validate_only
  type: list
  elements: dict
"""
