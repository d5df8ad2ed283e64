# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the vsphere role: its plan from the audit's findings, and the power-cycle marker."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.errors import AnsibleFilterError
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import vsphere


def _plain(obj):
    if isinstance(obj, dict):
        return dict((str(k), _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def vsphere_plan(audit, vcenter, exclude=None):
    """{{ vmguard_audit | vmguard.hardening.vsphere_plan(inventory_hostname, vmguard_vsphere_exclude_vms) }}"""
    if not isinstance(audit, dict) or "policy" not in audit or "findings" not in audit:
        raise AnsibleFilterError("vsphere_plan needs the audit's published result (vmguard_audit with policy and findings)")
    return vsphere.plan_vcenter(_plain(audit["policy"]), _plain(audit["findings"]), str(vcenter),
                                [str(p) for p in exclude or []])


def vsphere_pending_marker(current, rules):
    """{{ current_marker | vmguard.hardening.vsphere_pending_marker(['LEAK-02']) }}"""
    return vsphere.pending_marker(current or "", [str(r) for r in rules or []], time.time())


class FilterModule(object):
    def filters(self):
        return {"vsphere_plan": vsphere_plan, "vsphere_pending_marker": vsphere_pending_marker}
