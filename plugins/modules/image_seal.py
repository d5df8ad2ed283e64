#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_seal
short_description: Seal a golden image root file system, or verify its seal (DIV-06)
version_added: "0.1.0"
description:
  - Finds everything in an unpacked guest root file system that would make clones of the image
    share an identity or leak the build (catalog rule C(DIV-06)) - a non-empty C(/etc/machine-id),
    the D-Bus machine-id copy, SSH host keys, the systemd random seed and credential secret,
    builder SSH keys and private TLS keys, shell histories, logs and journals, DHCP leases, and
    temporary files.
  - With O(state=sealed) it removes, empties or truncates them; with O(state=verified) it changes
    nothing and fails when anything is left, listing every item.
  - Never follows a symbolic link inside the tree. A link where the seal looks (a file, or a
    directory on the way to one, such as C(root/.ssh) or C(var/log)) is itself a finding and is
    removed as a link; nothing outside the tree is read, emptied or deleted.
  - A seal that stops part way (an item that cannot be removed, a directory replaced by a link since it was
    checked) fails with C(changed=true) when it had already removed, emptied or truncated something, and
    RV(findings) lists what it did.
  - Operates on a directory tree (the build stage of the P(vmguard.hardening.golden_image#role) role),
    or - with O(state=verified) only - on an image file (qcow2 or raw, holding an ext4 file
    system without a partition table, as the golden_image role builds them), offline, without
    booting or mounting it - C(qemu-img) converts qcow2 to a temporary sparse raw file and
    C(debugfs) copies out just the paths the seal covers (with C(rdump), so a symbolic link in the image
    is recreated as a link, never as the empty file C(dump) would write, and never followed on
    the host). Any error C(debugfs) reports, other than a seal path the image does not have, fails
    the check (C(debugfs -f) itself always exits 0).
author:
  - vmguard.hardening developers (@vmguard)
options:
  path:
    description: Root directory of the unpacked guest file system, or an image file (O(state=verified) only).
    type: path
    required: true
  state:
    description:
      - V(sealed) removes every item found; V(verified) only checks and fails on findings.
    type: str
    choices: [sealed, verified]
    default: verified
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: With O(state=sealed) in check mode, reports what would be removed and changes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the paths that are (or would be) removed, emptied or truncated.
"""

EXAMPLES = r"""
- name: DIV-06 | ENFORCE | Seal the image tree before packing it
  vmguard.hardening.image_seal:
    path: /var/lib/vmguard/images/build/rootfs
    state: sealed

- name: DIV-06 | AUDIT | Fail when anything identifying is left
  vmguard.hardening.image_seal:
    path: /var/lib/vmguard/images/build/rootfs
    state: verified

- name: DIV-06 | AUDIT | Check a golden image file offline
  vmguard.hardening.image_seal:
    path: /var/lib/libvirt/images/golden.qcow2
    state: verified
"""

RETURN = r"""
findings:
  description: Items that break the seal (before sealing, for O(state=sealed); when a seal fails part way, the
    items it sealed before the stop).
  returned: always
  type: list
  elements: dict
  contains:
    category:
      description: machine-id, ssh-host-key, random-seed, builder-key, history, lease, log, secret or temp.
      type: str
    path:
      description: Path inside the image.
      type: str
    action:
      description: What sealing does about it (remove, empty, create-empty, truncate).
      type: str
    reason:
      description: Why the item breaks the seal.
      type: str
  sample:
    - category: ssh-host-key
      path: /etc/ssh/ssh_host_ed25519_key
      action: remove
      reason: SSH host keys baked into an image are shared by every clone (DIV-02)
sealed:
  description: Whether the tree is sealed at the end of the run (in check mode, whether it would be).
  returned: always
  type: bool
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence.image_seal import ImageError, check_tree
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation.image_seal import seal_tree
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence.image_seal import extract_image as offline_extract


def extract_image(module, image, work):
    """Copy the seal-relevant paths of an image file into work/tree; returns the tree."""
    qemu_img = module.get_bin_path("qemu-img", required=True)
    debugfs = module.get_bin_path("debugfs", required=True)
    try:
        return offline_extract(image, work, module.run_command, qemu_img=qemu_img, debugfs=debugfs)
    except ImageError as e:
        module.fail_json(msg="DIV-06: %s" % e)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["sealed", "verified"], default="verified"),
        ),
        supports_check_mode=True,
    )
    root = module.params["path"]
    work = None
    if not os.path.lexists(root):
        module.fail_json(msg="path: %s does not exist (expected an image file or an unpacked root tree)" % root)
    if os.path.islink(root) or not (os.path.isfile(root) or os.path.isdir(root)):
        module.fail_json(msg="path: %s is not a regular image file or a directory (symbolic links are not followed)" % root)
    if os.path.isfile(root):
        if module.params["state"] != "verified":
            module.fail_json(msg="DIV-06: an image file can only be verified offline; seal the unpacked tree")
        work = tempfile.mkdtemp(prefix="vmguard-seal-")
        try:
            tree = extract_image(module, root, work)
            findings = check_tree(tree)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if findings:
            module.fail_json(msg="DIV-06: image %s is not sealed: %s" % (root, ", ".join(sorted(f["path"] for f in findings))),
                             findings=findings, sealed=False)
        module.exit_json(changed=False, findings=[], sealed=True)
    done = []  # what a seal carried out before it stopped: a partial seal is a change
    try:
        if module.params["state"] == "verified":
            findings = check_tree(root)
            if findings:
                module.fail_json(
                    msg="DIV-06: image at %s is not sealed: %s" % (
                        root, ", ".join(sorted(f["path"] for f in findings))),
                    findings=findings, sealed=False)
            module.exit_json(changed=False, findings=[], sealed=True)
        findings = seal_tree(root, check_mode=module.check_mode, done=done)
    except (OSError, ValueError) as e:
        module.fail_json(msg="DIV-06: cannot seal %s: %s%s" % (root, e, "; sealed before the stop: %s" % ", ".join(
            f["path"] for f in done) if done else ""), changed=bool(done), findings=done, sealed=False)
    result = dict(changed=bool(findings), findings=findings, sealed=True)
    if module._diff and findings:
        result["diff"] = dict(
            before="".join("%s\n" % f["path"] for f in findings),
            after="".join("%s (%s)\n" % (f["path"], f["action"]) for f in findings),
            before_header="identifying items in " + root,
            after_header="after seal",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
