# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule registry: one entry per catalog id (docs/CATALOG.md), with its checks.

A check is a pure function ``check(ctx, subject) -> (status, message, evidence)``: evidence in,
verdict out. Each area
has one file (div.py, rb.py, iso.py, leak.py, vis.py) holding its rules' checks, remediation
text and docstrings together; tests/unit/rules/test_<area>.py holds their tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import PASS, FAIL, ERROR, NA  # noqa: F401 (re-exported for the checks)
SUBJECT_KINDS = ("hypervisor", "domain", "guest", "fleet", "vcenter_vm", "image")


# A check returns a plain (status, message, evidence) tuple; these build one. Plain tuples,
# because a fleet audit creates hundreds of thousands of them.
def ok(message, **evidence):
    return (PASS, message, evidence)


def fail(message, **evidence):
    return (FAIL, message, evidence)


def error(message, **evidence):
    return (ERROR, message, evidence)


def na(message, **evidence):
    return (NA, message, evidence)


class Rule(object):
    def __init__(self, rid, area, severity, action, layer, title, remediation):
        self.id = rid
        self.area = area
        self.severity = severity
        self.action = action
        self.layer = layer
        self.title = title
        self.remediation = remediation
        self.checks = OrderedDict()  # subject kind -> function

    def __repr__(self):
        return "Rule(%s)" % self.id


RULES = OrderedDict()


def rule(rid, area, severity, action, layer, title, remediation):
    """Declare a rule (once per id)."""
    if rid in RULES:
        raise ValueError("rule %s declared twice" % rid)
    RULES[rid] = Rule(rid, area, severity, action, layer, title, remediation)
    return RULES[rid]


def check(rid, subject_kind):
    """Register ``fn`` as the check of rule ``rid`` for subjects of ``subject_kind``."""
    if subject_kind not in SUBJECT_KINDS:
        raise ValueError("unknown subject kind %s" % subject_kind)

    def deco(fn):
        RULES[rid].checks[subject_kind] = fn
        fn.rule_id = rid
        return fn
    return deco


# Registration happens on import, in catalogue order.
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import div, rb, iso, leak, vis  # noqa: E402,F401 pylint: disable=wrong-import-position
