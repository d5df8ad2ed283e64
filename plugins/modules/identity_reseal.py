#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: identity_reseal
short_description: Regenerate the identity a cloned guest shares with others (DIV-01, DIV-02, DIV-04)
version_added: "0.1.0"
description:
  - Regenerates, inside a guest, what a careless clone shares with its siblings - the machine-id
    (and its D-Bus copy, which becomes a link to it), the SSH host keys, and the systemd random
    seed - but only the items whose current value is the duplicated one given (as digests and
    fingerprints from the audit), or the items in O(force).
  - Idempotent - after a reseal the current values differ from the duplicated ones, so a second
    run with the same input changes nothing.
  - New SSH host keys are validated with C(sshd -t) before the SSH server is reloaded; on
    failure the old keys are put back. A reload keeps established sessions (the one in use too).
  - Returns the old and new fingerprints; the old ones belong on the ledger's retired list.
  - A rotation that stops part way (ssh-keygen failing for one key type) keeps the keys already rotated,
    removes their old copies as a complete rotation does (an old key is the secret the clones share) and
    fails with C(changed=true), naming the keys rotated and those still old; RV(resealed) and
    RV(retired_fingerprints) hold the rotated ones. Nothing after the host keys is resealed then.
author:
  - vmguard.hardening developers (@vmguard)
options:
  machine_id_digest:
    description:
      - SHA-256 digest of the duplicated machine-id (as reported by guest_facts).
      - Also matched against a D-Bus copy (C(/var/lib/dbus/machine-id)) that is a file of its own (libdbus
        reads it first); either match regenerates the machine-id and makes the copy a link to it.
    type: str
  ssh_fingerprints:
    description: Duplicated SSH host key fingerprints (C(SHA256:...)); the matching keys are regenerated.
    type: list
    elements: str
    default: []
  random_seed_digest:
    description: SHA-256 digest of the duplicated systemd random seed.
    type: str
  force:
    description:
      - Items to regenerate whatever their value; V(all) for every item.
      - V(ssh_host_keys) on a guest without host keys (no SSH server) rotates nothing and reports no change.
    type: list
    elements: str
    choices: [machine_id, ssh_host_keys, random_seed, all]
    default: []
  reload_sshd:
    description: Reload the SSH server after rotating host keys (established sessions stay).
    type: bool
    default: true
  root:
    description: Root of the file system to work on (tests and offline images).
    type: path
    default: /
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
"""

EXAMPLES = r"""
- name: DIV-02 | ENFORCE | Rotate the host keys this guest shares with others
  vmguard.hardening.identity_reseal:
    ssh_fingerprints:
      - SHA256:9pQw0rJ1Q2JrM8hX3k9qv7l0PpZ5QbM1QyM3b3q0Jk8
  become: true
  register: reseal

- name: Reseal everything (a fresh clone)
  vmguard.hardening.identity_reseal:
    force: [all]
  become: true
"""

RETURN = r"""
resealed:
  description: What was (or, in check mode, would be) regenerated.
  returned: always
  type: dict
  contains:
    machine_id:
      description: Old and new machine-id digests.
      type: dict
    ssh_host_keys:
      description:
        - One entry per rotated key with type, file, old and new fingerprint, the new public key and the old
          one (old_public_key, for unpinning it from known_hosts).
        - The new key keeps the old one's type and size (ECDSA curve; RSA modulus, at least 3072 bits).
        - In check mode the same entries with new_fingerprint and new_public_key null and would_regenerate true.
      type: list
      elements: dict
    random_seed:
      description: New random seed digest.
      type: dict
  sample:
    ssh_host_keys:
      - type: ssh-ed25519
        file: /etc/ssh/ssh_host_ed25519_key.pub
        old_fingerprint: SHA256:9pQw0rJ1Q2JrM8hX3k9qv7l0PpZ5QbM1QyM3b3q0Jk8
        new_fingerprint: SHA256:Xc2l1m0Qk4q0bZr0cP9yq8t1sJv6nW3oE5aR7uD2fG4
reboot_required:
  description:
    - True when the machine-id of the running system (O(root) C(/)) was (or, in check mode, would be) resealed -
      PID 1, journald, D-Bus and the network daemons keep the identity they read at boot until the guest restarts,
      so the clones still share it in memory until then (the module also warns). False for an image tree and when
      the machine-id was not resealed.
  returned: always
  type: bool
retired_fingerprints:
  description: Fingerprints taken out of use (for the ledger's retired list); after a rotation that stopped part way, those of the keys rotated.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import reseal


def reboot_required(root, todo):
    """Whether resealing ``todo`` under ``root`` needs a restart to take effect: a new machine-id of the running
    system is read by PID 1 and the daemons only at boot."""
    return "machine_id" in todo and os.path.realpath(root) == "/"


def _would(keys):
    """Check mode: the keys that would be rotated, in the shape of a real run's result (no new key yet)."""
    return [dict(type=k["type"], file=k["file"], old_fingerprint=k["fingerprint"], new_fingerprint=None,
                 new_public_key=None, would_regenerate=True) for k in keys]


def _rotate_host_keys(module, root, keys, result, run):
    """Rotate ``keys``; validate (sshd -t on /), drop the old shared keys, reload the SSH server.

    A rotation that stops part way keeps the keys already rotated (valid new pairs) and removes
    their old copies like a complete one - an old key is the secret the clones share, never left
    behind in *.vmguard-old - then raises, naming what was rotated and what is still the old key."""
    p = module.params
    rotated = []
    try:
        reseal.reseal_host_keys(root, keys, run, rotated)
        failure = None
    except (OSError, ValueError, RuntimeError) as e:
        if not rotated:
            raise
        failure = e
    if root == "/":
        sshd = module.get_bin_path("sshd") or "/usr/sbin/sshd"
        rc, out, err = module.run_command([sshd, "-t"])
        if rc != 0:
            reseal.rollback_host_keys(root, rotated)
            module.fail_json(msg="sshd -t rejected the new host keys, old keys restored: %s%s" % (
                err.strip(), "" if failure is None else " (the rotation had stopped: %s)" % failure))
    reseal.commit_host_keys(root, rotated)
    result["resealed"]["ssh_host_keys"] = rotated
    result["retired_fingerprints"] = sorted(r["old_fingerprint"] for r in rotated)
    if p["reload_sshd"] and root == "/":
        systemctl = module.get_bin_path("systemctl")
        if systemctl:
            rc, out, err = module.run_command([systemctl, "reload-or-restart", "ssh.service"])
            if rc != 0:
                module.fail_json(msg="host keys rotated but the SSH server did not reload: %s" % err.strip(),
                                 **result)
    if failure is not None:
        done = set(r["file"] for r in rotated)
        raise RuntimeError("%s; rotated (old keys removed): %s; not rotated, still the old key: %s" % (
            failure, ", ".join(sorted(done)), ", ".join(sorted(k["file"] for k in keys if k["file"] not in done))))


def _apply(module, root, todo, result, run):
    if todo.get("ssh_host_keys"):  # never sshd -t or a reload when no key was rotated
        _rotate_host_keys(module, root, todo["ssh_host_keys"], result, run)
    if "machine_id" in todo:
        result["resealed"]["machine_id"] = reseal.reseal_machine_id(root)
    if "random_seed" in todo:
        result["resealed"]["random_seed"] = reseal.reseal_random_seed(root)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            machine_id_digest=dict(type="str"),
            ssh_fingerprints=dict(type="list", elements="str", default=[]),
            random_seed_digest=dict(type="str"),
            force=dict(type="list", elements="str", default=[],
                       choices=["machine_id", "ssh_host_keys", "random_seed", "all"]),
            reload_sshd=dict(type="bool", default=True),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    root = p["root"]
    try:
        todo = reseal.plan(root, {"machine_id_digest": p["machine_id_digest"], "ssh_fingerprints": p["ssh_fingerprints"],
                                  "random_seed_digest": p["random_seed_digest"]}, p["force"])
    except (OSError, ValueError, RuntimeError) as e:  # an unreadable identity: a clear failure, nothing changed
        module.fail_json(msg="reseal not planned: %s" % e, changed=False)
    result = dict(changed=bool(todo), resealed={}, retired_fingerprints=[], reboot_required=reboot_required(root, todo))
    if "ssh_host_keys" in todo:
        result["retired_fingerprints"] = sorted(k["fingerprint"] for k in todo["ssh_host_keys"])
    if module._diff and todo:
        before = []
        for item, what in sorted(todo.items()):
            if item == "ssh_host_keys":
                before.extend("%s %s" % (k["type"], k["fingerprint"]) for k in what)
            else:
                before.append("%s (%s)" % (item, what))
        result["diff"] = dict(before="\n".join(before) + "\n", after="regenerated: %s\n" % ", ".join(sorted(todo)))
    if module.check_mode or not todo:
        result["resealed"] = dict((k, _would(v) if k == "ssh_host_keys" else {"would_regenerate": True})
                                  for k, v in todo.items())
        module.exit_json(**result)

    def run(argv):
        return module.run_command(argv)

    try:
        _apply(module, root, todo, result, run)
    except (OSError, ValueError, RuntimeError) as e:
        # A target that is a symbolic link or not a regular file is refused (fsutil), never written through;
        # changed says whether anything was resealed before the stop.
        result["changed"] = bool(result["resealed"])
        if "ssh_host_keys" not in result["resealed"]:
            result["retired_fingerprints"] = []  # no key was rotated: none is retired
        module.fail_json(msg="reseal stopped: %s" % e, **result)
    if result["reboot_required"]:
        module.warn("the machine-id was resealed on the running system: it takes effect at the next boot (PID 1, journald, "
                    "D-Bus and the network daemons keep the old one until then); restart the guest")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
