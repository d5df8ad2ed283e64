# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one definition of the audit's vocabulary: finding statuses, severities and areas.

Every other module (rules, engine, policy, reports, the action) imports these names; none spells
the strings out again (tests/unit/test_layers.py keeps it so)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PASS, FAIL, ERROR, WAIVED, NA = "pass", "fail", "error", "waived", "not_applicable"
# In report order: what passed, what failed, what could not be evaluated, what a waiver covers, what
# had nothing to compare.
STATUSES = (PASS, FAIL, ERROR, WAIVED, NA)
# Statuses that the gate counts (at or above vmguard_fail_on) and that remediation acts on (FAIL).
BAD = (FAIL, ERROR)
# Findings a report lists as skipped (JUnit) rather than failed.
SKIPPED = (WAIVED, NA)
SEVERITIES = ("low", "medium", "high", "critical")
AREAS = ("diversity", "rollback", "isolation", "leakage", "visibility")
