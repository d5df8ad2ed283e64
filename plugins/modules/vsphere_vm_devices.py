#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vsphere_vm_devices
short_description: Disconnect or remove devices of a vSphere VM (ISO-08)
version_added: "0.2.0"
description:
  - Disconnects (connected and start connected off) or removes the devices of one VM given by
    their device keys, in one reconfiguration, for ISO-08 (connected serial, parallel, floppy, USB,
    host CD/DVD and PCI passthrough devices). One VM per call - the vsphere role carries out a whole
    vCenter's plan (devices included) in one session with M(vmguard.hardening.vsphere_enforce).
  - A moid vCenter does not know, or a VM without a readable configuration (orphaned, inaccessible),
    fails the module with that message.
  - Idempotent - a device that is already disconnected (or already gone, with O(state=absent)) is
    left alone; a key the VM does not have is an error with O(state=disconnected), and so is a device
    without a connect switch (PCI passthrough, attached while the VM runs) - it can only be removed
    (O(state=absent)).
  - Never powers the VM off. Removing some devices from a running VM is refused by vSphere; the
    error names the VM and the devices.
  - Supports check mode and diff.
author:
  - vmguard.hardening developers (@vmguard)
options:
  moid:
    description: Managed object id of the VM (C(vm-42)).
    type: str
    required: true
  devices:
    description: Device keys (C(config.hardware.device[].key)) to disconnect or remove.
    type: list
    elements: int
    required: true
  state:
    description: C(disconnected) keeps the device, disconnected now and at power on; C(absent) removes it.
    type: str
    choices: [disconnected, absent]
    default: disconnected
extends_documentation_fragment:
  - vmguard.hardening.vsphere
  - vmguard.hardening.attributes.changes
seealso:
  - module: vmguard.hardening.vsphere_enforce
"""

EXAMPLES = r"""
- name: Disconnect a VM's serial port and CD drive
  vmguard.hardening.vsphere_vm_devices:
    hostname: vcenter.example.org
    username: "{{ vcenter_username }}"
    password: "{{ vcenter_password }}"
    moid: vm-42
    devices: [9000, 3002]
  delegate_to: localhost
"""

RETURN = r"""
changed_devices:
  description: The devices changed (or that would be, in check mode), with their label.
  returned: always
  type: list
  elements: dict
  sample: [{key: 9000, label: Serial port 1}]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere_session
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import vsphere_config as vc


def main():
    module = AnsibleModule(
        argument_spec=vsphere_session.connection_spec(
            moid=dict(type="str", required=True),
            devices=dict(type="list", elements="int", required=True),
            state=dict(type="str", choices=["disconnected", "absent"], default="disconnected"),
        ),
        supports_check_mode=True,
    )
    if not vc.HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyVmomi"))
    p = module.params
    si = vsphere_session.connect_or_fail(module)
    try:
        vm = vc.vim.VirtualMachine(p["moid"], si._stub)
        try:
            name, config = vm.name, vm.config
        except vc.vmodl.fault.ManagedObjectNotFound:  # a vmodl fault (not vim.fault): the moid is unknown
            module.fail_json(msg="no VM with moid %s" % p["moid"])
        if config is None:  # orphaned or inaccessible: no device list to change
            module.fail_json(msg="VM %s (%s) has no readable configuration (orphaned or inaccessible VM)" % (name, p["moid"]))
        specs, changed, absent, refused = vc.device_specs(config.hardware.device, p["devices"], p["state"])
        if absent:
            module.fail_json(msg="VM %s (%s) has no device with key(s) %s" % (name, p["moid"], ", ".join(str(k) for k in absent)))
        if refused:
            module.fail_json(msg="VM %s (%s): %s" % (name, p["moid"], vc.refused_text(refused, "state absent")))
        diff = {"before": {"devices": [c["label"] for c in changed]}, "after": {"devices": []}} if changed else None
        if specs and not module.check_mode:
            try:
                vc.reconfigure(vm, device_specs_=specs)
            except Exception as e:
                module.fail_json(msg="VM %s: cannot %s %s: %s" % (name, "remove" if p["state"] == "absent" else "disconnect",
                                                                  ", ".join(c["label"] for c in changed), vc.fault_text(e)))
        result = dict(changed=bool(specs), changed_devices=changed, vm=name)
        if diff and module._diff:
            result["diff"] = diff
        module.exit_json(**result)
    finally:
        vsphere_session.disconnect(si)


if __name__ == "__main__":
    main()
