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
    unit directories with systemd's own rules, as C(systemctl list-unit-files) reports them; C(enabled) is what
    the next boot starts, the links and masks only in /run apart, as C(enabled_runtime) and C(masked_runtime) -
    gone at the next boot), installed
    package versions, the nftables ruleset digest and inbound posture, selected sysctl values,
    the inbound posture of the ruleset the next boot loads (C(firewall_boot) - the files the C(nft -f) of the
    C(ExecStartPre), C(ExecStart) and C(ExecStartPost) of the units the next boot starts load, in systemd's boot
    order (a ruleset that depends on an order the units leave open is an error), loaded into a scratch network
    namespace of its own with C(unshare --net), never into the live ruleset),
    the vmguard epoch and the image lineage record.
  - Secrets never leave the guest - raw machine-id, seed and password hashes are reduced to
    SHA-256 digests, which are enough to find duplicates across guests. Every crypt string is digested (C($id$)
    hashes, traditional and extended DES, bigcrypt), never an empty field, C(x) or a lock marker; the hash behind
    a C(!) lock is digested apart, as C(locked_hash_digest) (unlocking the account restores it).
  - SSH host keys are the C(/etc/ssh/ssh_host_*_key.pub) files and those of every C(HostKey) that C(sshd_config) (and
    the files it C(Include)s) names, wherever it is; a served key without its C(.pub), or a configuration file that
    cannot be read, is an error (C(ssh_host_keys_error)), never fewer keys.
  - Needs root (become) for shadow, the random seed, socket owners and nftables.
  - When C(/etc/shadow) exists but cannot be read, C(accounts) is null and C(accounts_error) says why
    (without it every account would look password-locked); a guest without shadow is read from
    C(/etc/passwd) alone.
  - An account name with more than one line in C(/etc/passwd) or C(/etc/shadow) is reported once, from its
    first lines (the ones glibc, and so login and sshd, use), with C(duplicate_lines) counting the later lines
    ignored per file (C(passwd) and C(shadow), each a number of lines).
  - Standard library only; runs under the guest's own Python.
  - The result says which way it ran (C(piped)).
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
  piped:
    description:
      - Read the evidence through one Python process that the action plugin feeds on its standard input (the
        collector and the files it imports, standard library only), instead of an AnsiballZ payload.
      - A payload imports C(ansible.module_utils.basic), compiled from its zip on every run - 4-6 s of CPU in a guest
        emulated without hardware acceleration, more than the evidence costs.
      - Used when the connection pipelines (C(pipelining) on, a become method that needs no terminal) and the task
        is not async; otherwise, or with C(piped=false), the module is sent as usual. Both give the same evidence.
    type: bool
    default: true
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
piped:
  description: Whether the evidence was read piped (see the option C(piped)) rather than by the module sent as usual.
  returned: always
  type: bool
  sample: true
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
      enabled_runtime: []
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
    firewall_boot:
      digest: 3a4b...
      error: null
      default_deny: true
      open: [{proto: tcp, port: 22, from: any}, {proto: tcp, port: 443, from: any}]
      open_any: []
      loaders:
        - unit: vmguard-firewall.service
          files: [/etc/nftables.d/vmguard.nft]
      others: []
    sysctl:
      kernel.randomize_va_space: "2"
    epoch: 3
    lineage:
      build_id: 39ba83daa58e5d9a-20261126T183720Z
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestcollect


def main():
    module = AnsibleModule(argument_spec=guestcollect.ARGUMENT_SPEC, supports_check_mode=True)
    evidence = guestcollect.gather(module.params, module.run_command, module.get_bin_path, module.warn)
    module.exit_json(changed=False, evidence=evidence, piped=False)


if __name__ == "__main__":
    main()
