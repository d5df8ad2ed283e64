#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: guest_facts
short_description: Collect vmguard evidence inside a guest in one call
version_added: "0.1.0"
description:
  - Returns what the vmguard guest rules read - digests of the machine-id and the systemd random
    seed, SSH host key fingerprints, accounts with their lock state and a digest of their password
    hash, listening sockets with their processes, enabled and masked systemd units (read from the
    unit directories with systemd's own rules, as C(systemctl list-unit-files) reports them; the masks
    in /run apart, as C(masked_runtime) - gone at the next boot), installed
    package versions, the nftables ruleset digest and inbound posture, selected sysctl values,
    the vmguard epoch and the image lineage record.
  - Secrets never leave the guest - raw machine-id, seed and password hashes are reduced to
    SHA-256 digests, which are enough to find duplicates across guests.
  - Needs root (become) for shadow, the random seed, socket owners and nftables.
  - When C(/etc/shadow) exists but cannot be read, C(accounts) is null and C(accounts_error) says why
    (without it every account would look password-locked); a guest without shadow is read from
    C(/etc/passwd) alone.
  - An account name with more than one line in C(/etc/passwd) or C(/etc/shadow) is reported once, from its
    first lines (the ones glibc, and so login and sshd, use), with C(duplicate_lines) counting the later lines
    ignored per file (C(passwd) and C(shadow), each a number of lines).
  - Standard library only; runs under the guest's own Python.
author:
  - vmguard.hardening developers (@vmguard)
options:
  epoch_file:
    description: The guest's own vmguard epoch record.
    type: path
    default: /var/lib/vmguard/epoch.json
  lineage_file:
    description: The image lineage record written by the golden_image role.
    type: path
    default: /etc/vmguard/lineage.json
extends_documentation_fragment:
  - vmguard.hardening.attributes.read_only
"""

EXAMPLES = r"""
- name: Collect guest evidence
  vmguard.hardening.guest_facts:
  become: true
  register: guest
"""

RETURN = r"""
evidence:
  description: Everything the vmguard guest rules read.
  returned: always
  type: dict
  sample:
    machine_id_state: set
    machine_id_digest: 6c5b...
    random_seed_digest: 0f1e...
    ssh_host_keys:
      - type: ssh-ed25519
        fingerprint: SHA256:9pQ...
    accounts:
      - name: root
        locked: true
        hash_digest: null
    accounts_error: null
    listening:
      - proto: tcp
        address: 0.0.0.0
        port: 22
        process: sshd
    services:
      enabled: [ssh.service]
      masked: [apt-daily.timer]
      masked_runtime: []
    firewall:
      digest: 3a4b...
      error: null
      default_deny: true
      open:
        - proto: tcp
          port: 22
          from: any
        - proto: tcp
          port: 443
          from: any
      open_any: []
      input_policy: drop
      input_chains: 1
    sysctl:
      kernel.randomize_va_space: "2"
    epoch: 3
    lineage:
      build_id: 39ba83daa58e5d9a-20261126T183720Z
"""

import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan, nftables, unitfiles


def systemd_units():
    """(the enabled and masked units, None) or (None, why): read from the unit directories with systemd's
    rules (module_utils/evidence/unitfiles.py), not asked of the manager (6-9 s under TCG)."""
    try:
        return unitfiles.unit_states(), None
    except unitfiles.UnitScanError as e:
        return None, str(e)


def nft_ruleset(module):
    """The `firewall` evidence: the live ruleset evaluated by module_utils/nftables.py (errors keep its shape)."""
    nft = module.get_bin_path("nft")
    if not nft:
        return nftables.error_result("nft is not installed")
    rc, out, err = module.run_command([nft, "-j", "list", "ruleset"])
    if rc != 0:
        return nftables.error_result("nft -j list ruleset failed (rc %d): %s" % (rc, err.strip()))
    return guestscan.firewall(out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            epoch_file=dict(type="path", default="/var/lib/vmguard/epoch.json"),
            lineage_file=dict(type="path", default="/etc/vmguard/lineage.json"),
        ),
        supports_check_mode=True,
    )
    start = time.time()
    ev = dict(hostname=socket.gethostname(), root=(os.geteuid() == 0))
    if not ev["root"]:
        module.warn("guest_facts runs without root: shadow, random seed and socket owners are incomplete")
    ev.update(guestscan.machine_id())
    ev.update(guestscan.random_seed())
    ev["ssh_host_keys"], ev["ssh_host_keys_error"] = guestscan.read_ssh_host_keys()
    ev["accounts"], ev["accounts_error"] = guestscan.read_accounts()
    ev["listening"] = guestscan.listening()
    ev["services"], ev["services_error"] = systemd_units()
    ev["packages"] = guestscan.packages()
    ev["firewall"] = nft_ruleset(module)
    ev["sysctl"] = guestscan.sysctls()
    ev["epoch"], ev["epoch_error"] = guestscan.epoch(module.params["epoch_file"])
    ev["lineage"] = guestscan.json_file("/", module.params["lineage_file"])
    ev["vmgenid"] = guestscan.vmgenid()
    ev["seconds"] = round(time.time() - start, 3)
    module.exit_json(changed=False, evidence=ev)


if __name__ == "__main__":
    main()
