#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vsphere_facts
short_description: Collect vmguard evidence for every VM of a vCenter in one retrieval
version_added: "0.2.0"
description:
  - Connects to a vCenter (or an ESXi host) with pyVmomi and reads, for every virtual machine and
    template, the advanced settings the rules audit (C(config.extraConfig), only those keys; every
    other value, C(guestinfo.*) cloud-init user data and OVF properties among them, stays out of
    the evidence), the devices the policy judges (serial, parallel, floppy, CD/DVD, USB, PCI
    passthrough - an SR-IOV NIC's host function too, with their connection state and backing), disks
    (mode, file, encryption key C(backing.keyId)), network adapters (MAC address and address type),
    the snapshot tree (names, creation times, current snapshot, memory state), the VM's encryption key
    (C(config.keyId)), custom attributes, BIOS and instance UUIDs, power state and boot time.
  - All VMs are read with ONE PropertyCollector retrieval over a ContainerView
    (C(RetrievePropertiesEx), continued while the server pages), never one call per VM.
  - A property the collector could not read (the object's C(missingSet)) is never taken for an empty
    one - the VM's C(missing) names it with the fault, the evidence fields it feeds (C(extra_config),
    C(devices), C(disks), C(nics), C(snapshots), C(key_id), C(custom_values)) are left out, so the rules
    report them as not collected; any other unread property makes the VM's C(error).
  - The credentials are only module parameters (the password is C(no_log)); the evidence holds no
    credential. A vCenter that cannot be reached or refuses the login is not a module failure -
    the result carries C(evidence.error) so the audit reports error findings for this vCenter.
  - Certificates are verified against the system trust store; set the C(SSL_CERT_FILE)
    environment variable to trust a private CA (as for the vmware.vmware modules).
author:
  - vmguard.hardening developers (@vmguard)
notes:
  - Supports check mode (it changes nothing).
extends_documentation_fragment:
  - vmguard.hardening.vsphere
  - vmguard.hardening.attributes.read_only
  - vmguard.hardening.publish
"""

EXAMPLES = r"""
- name: Read every VM of a vCenter
  vmguard.hardening.vsphere_facts:
    hostname: vcenter.example.org
    username: "{{ vcenter_username }}"
    password: "{{ vcenter_password }}"
  register: vc
  delegate_to: localhost
"""

RETURN = r"""
published:
  description: The name of the host variable that holds the evidence (O(publish) given, ansible-core 2.21 or later).
  returned: when the evidence was published
  type: str
  sample: vc_evidence
evidence:
  description: >-
    The vCenter's evidence. C(error) is null when it was collected, else why not (and C(vms) is
    empty). C(retrievals) counts the PropertyCollector calls used for all VMs. In the variable
    O(publish) names when given.
  returned: unless published
  type: dict
  sample:
    error: null
    about: {name: VMware vCenter Server, version: "6.5", api_type: VirtualCenter}
    retrievals: 1
    vms:
      - name: web1
        moid: vm-42
        power_state: poweredOn
        extra_config: {"isolation.tools.copy.disable": "TRUE"}
        devices: [{kind: serial, label: Serial port 1, connected: true, start_connected: true}]
        snapshots: [{name: before-upgrade, creation_time: 1764240000.0, current: true}]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere_session
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere


def _error_text(e, password):
    """The reason a connection failed, without the password should a library ever echo it."""
    text = "%s: %s" % (type(e).__name__, getattr(e, "msg", None) or e)
    return text.replace(password, "********") if password else text


def main():
    module = AnsibleModule(
        argument_spec=vsphere_session.connection_spec(
            publish=dict(type="str"),  # handled by the action plugin on the controller
        ),
        supports_check_mode=True,
    )
    if not vsphere.HAS_PYVMOMI or not vsphere_session.HAS_PYVIM:
        module.fail_json(msg=missing_required_lib("pyVmomi"))
    p = module.params
    missing = vsphere_session.missing(p)
    if missing:
        module.fail_json(msg="missing connection parameter(s): %s" % ", ".join(missing))
    try:
        si = vsphere_session.connect(p)
    except Exception as e:  # unreachable, TLS or login failure: an error finding, not a failed task
        module.exit_json(changed=False, evidence={"error": "cannot connect to %s:%s: %s" % (
            p["hostname"], p["port"], _error_text(e, p["password"])), "vms": []})
    try:
        evidence = vsphere.collect(si)
    except Exception as e:
        evidence = {"error": "cannot read the VMs of %s: %s" % (p["hostname"], _error_text(e, p["password"])), "vms": []}
    finally:
        vsphere_session.disconnect(si)
    module.exit_json(changed=False, evidence=evidence)


if __name__ == "__main__":
    main()
