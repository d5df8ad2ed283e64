#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vsphere_enforce
short_description: Carry out the vsphere role's plan on the VMs of a vCenter in one session
version_added: "0.2.3"
description:
  - Takes the whole plan of one vCenter (the C(vms) of the vmguard.hardening.vsphere_plan filter) and
    carries it out in ONE login - no call per VM to log in, no Ansible loop.
  - The VMs' current state is read with one PropertyCollector retrieval over the planned moids
    (extraConfig, devices, snapshot tree, power state, boot time, template flag).
  - Per VM, ONE reconfiguration (ReconfigVM_Task) sets the advanced settings not yet at their planned
    value (LEAK-02, LEAK-03, ISO-11), records on a running VM whose settings change that they wait for a
    power cycle (advanced setting C(vmguard.powerCyclePending) = C(<epoch> <rule ids>), the rule ids it
    already named kept unless the VM has booted since that marker was written - their settings are then in
    effect) and disconnects or removes the
    flagged devices (ISO-08). Only when that reconfiguration fails are the settings and the devices tried
    apart, so what vCenter accepts is applied.
  - Then the flagged snapshots are deleted (RB-02, RB-03; each consolidated into its child) when
    O(prune_snapshots) is true - never one matching O(pinned_snapshots), never one whose name the VM
    carries twice (the plan names snapshots, so which one is flagged would be unknown), never one whose moid
    is not the one the audit judged (the plan's C(snapshot_ids); a snapshot re-created under its name since
    the audit is kept, with an error asking for a new audit).
  - Idempotent - settings already at their value (compared case-insensitively, as VMX booleans are),
    devices already disconnected (or gone with O(device_action=absent)) and snapshots already gone are
    left alone, so a second run changes nothing. Never powers a VM off.
  - A VM that fails (unknown moid, unreadable configuration, a refused reconfiguration, a device key the
    VM lacks with O(device_action=disconnected), a flagged device without a connect switch - PCI
    passthrough - with O(device_action=disconnected), which can only be removed, a pinned or ambiguous
    snapshot) does not stop the others -
    every VM is carried out, then the module fails naming each failed VM and why, with the full result.
  - A template given in O(vms) is left alone and reported (C(skipped)), never a failure - vCenter refuses
    to reconfigure a template; the vsphere_plan filter never plans one.
  - The password is a no_log parameter. Of extraConfig only the planned keys' values and the marker are
    returned (the plan may only name the advanced settings of the vSphere rules).
author:
  - vmguard.hardening developers (@vmguard)
options:
  vms:
    description:
      - The plan, by VM (the subject id's VM part - the name, or C(<name>#<moid>) for a name vCenter's VMs carry
        more than once) - C(__vmguard_vsphere_plan.vms) of the vsphere role. Per VM C(moid) (required),
        C(settings) ({advanced setting - value}, only the settings of the vSphere rules), C(devices) (a list
        of C({key, kind, label}) or of device keys), C(snapshots) (names), C(snapshot_ids) (name to snapshot moid, optional).
        Other keys of the plan
        (C(datacenter), C(power_state), C(marker), C(setting_rules), C(rules)) are accepted and not needed -
        the power state and the marker are read from vCenter in the same session.
      - An entry that cannot be carried out (no moid, a setting that is not one of the rules', a moid planned
        twice) is that VM's failure; the others are still carried out.
    type: dict
    required: true
  device_action:
    description: C(disconnected) keeps a flagged device, disconnected now and at power on; C(absent) removes it.
    type: str
    choices: [disconnected, absent]
    default: disconnected
  prune_snapshots:
    description: Delete the plan's snapshots (the policy's C(params.rollback.prune_snapshots)); false ignores them.
    type: bool
    default: false
  pinned_snapshots:
    description: Globs over C(<vm>/<snapshot>) never deleted (the policy's C(params.rollback.pinned_snapshots)).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - vmguard.hardening.vsphere
  - vmguard.hardening.attributes.changes
notes:
  - Removing some devices from a running VM is refused by vSphere; that VM's failure names the devices,
    and its settings are still applied.
seealso:
  - module: vmguard.hardening.vsphere_vm_devices
  - module: vmguard.hardening.vsphere_facts
"""

EXAMPLES = r"""
- name: Carry out the plan of this vCenter
  vmguard.hardening.vsphere_enforce:
    hostname: vcenter.example.org
    username: "{{ vcenter_username }}"
    password: "{{ vcenter_password }}"
    vms: "{{ __vmguard_vsphere_plan.vms }}"
    device_action: disconnected
    prune_snapshots: "{{ vmguard_audit.policy.params.rollback.prune_snapshots }}"
    pinned_snapshots: "{{ vmguard_audit.policy.params.rollback.pinned_snapshots }}"
  delegate_to: localhost
  register: enforced

- name: One VM, by hand
  vmguard.hardening.vsphere_enforce:
    hostname: vcenter.example.org
    username: "{{ vcenter_username }}"
    password: "{{ vcenter_password }}"
    vms:
      web1:
        moid: vm-42
        settings: {isolation.tools.copy.disable: "TRUE", RemoteDisplay.maxConnections: "1"}
        devices: [{key: 9000}]
  delegate_to: localhost
"""

RETURN = r"""
vms:
  description: Per planned VM what changed (or would, in check mode) and its errors.
  returned: always
  type: dict
  contains:
    moid:
      description: The VM's managed object id.
      type: str
    vm:
      description: The VM's name in vCenter.
      type: str
    changed:
      description: Whether anything changed on this VM.
      type: bool
    settings:
      description: The advanced settings set, each with its value before (null when absent) and after.
      type: dict
    marker:
      description: The vmguard.powerCyclePending value written (a running VM whose settings changed), or null.
      type: str
    marker_before:
      description: The marker's value before, or null.
      type: str
    pending_power_cycle:
      description: Whether this VM's new settings wait for a power cycle.
      type: bool
    devices:
      description: The devices disconnected or removed, C({key, label}).
      type: list
      elements: dict
    snapshots:
      description: The snapshots deleted.
      type: list
      elements: str
    errors:
      description: What failed on this VM (empty when nothing did).
      type: list
      elements: str
    skipped:
      description: Why the VM was left alone, without failing - a template (vCenter refuses to reconfigure one;
        the plan never lists templates). Absent for a VM that was carried out.
      type: str
  sample:
    web1: {moid: vm-42, vm: web1, changed: true, marker: "1767225600 LEAK-03", marker_before: null, pending_power_cycle: true,
           settings: {isolation.tools.copy.disable: {before: "FALSE", after: "TRUE"}}, devices: [], snapshots: [], errors: []}
pending_power_cycle:
  description: The VMs (plan names) whose settings this run changed while they ran - they wait for a power cycle.
  returned: always
  type: list
  elements: str
  sample: [web1]
failed_vms:
  description: The VMs (plan names) with an error.
  returned: always
  type: list
  elements: str
calls:
  description: The vCenter calls made - one login, the retrievals, the reconfigurations and snapshot removals.
  returned: always
  type: dict
  sample: {logins: 1, retrievals: 1, reconfigurations: 2, snapshot_removals: 1}
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere_session
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import vsphere_config as vc


def argument_spec():
    return vsphere_session.connection_spec(
        vms=dict(type="dict", required=True),
        device_action=dict(type="str", choices=list(vc.DEVICE_STATES), default="disconnected"),
        prune_snapshots=dict(type="bool", default=False),
        pinned_snapshots=dict(type="list", elements="str", default=[]),
    )


def _moid_of(vms, name):
    entry = vms.get(name)
    return entry.get("moid") if isinstance(entry, dict) else None


def failure_message(results):
    failed = [(name, res) for name, res in sorted(results.items()) if res.get("errors")]
    return "%d of %d VM(s) failed: %s" % (len(failed), len(results), "; ".join(
        "%s (%s): %s" % (name, res.get("moid"), ", ".join(res["errors"])) for name, res in failed))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not vc.HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyVmomi"))
    p = module.params
    try:
        steps, invalid = vc.check_plan(p["vms"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    results = dict((name, {"moid": _moid_of(p["vms"], name), "changed": False, "errors": [msg]}) for name, msg in invalid.items())
    session = None
    if steps:
        si = vsphere_session.connect_or_fail(module)
        try:
            session = vc.Session(si, p["device_action"], p["prune_snapshots"], p["pinned_snapshots"], module.check_mode)
            results.update(session.enforce(steps, time.time()))
        except Exception as e:
            module.fail_json(msg="vCenter %s: cannot read the planned VMs: %s" % (p["hostname"], vc.fault_text(e)))
        finally:
            vsphere_session.disconnect(si)
    result = dict(
        changed=any(r.get("changed") for r in results.values()),
        vms=results,
        pending_power_cycle=sorted(n for n, r in results.items() if r.get("pending_power_cycle")),
        failed_vms=sorted(n for n, r in results.items() if r.get("errors")),
        calls=session.calls if session else {"logins": 0, "retrievals": 0, "reconfigurations": 0, "snapshot_removals": 0},
    )
    if module._diff:
        result["diff"] = [d for d in (vc.diff_of(n, results[n], p["device_action"]) for n in sorted(results)) if d]
    if result["failed_vms"]:
        module.fail_json(msg=failure_message(results), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
