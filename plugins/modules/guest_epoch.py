#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: guest_epoch
short_description: Write the guest's security epoch file (the guest side of the rollback ledger)
version_added: "0.1.0"
description:
  - Writes the epoch the hypervisor's ledger prepared for this hardening into the guest's epoch file (a JSON object
    with the key C(epoch)), which M(vmguard.hardening.guest_facts) reports and RB-05 compares with the ledger, so a guest reverted to a
    snapshot taken before this hardening is seen to be behind.
  - One call creates the file's directory when missing (0755, root) and replaces the file atomically (a private
    temporary file in the same directory, fsync, rename; mode 0644, root), so an interrupted write never leaves a
    truncated epoch behind. Changes nothing when the file already holds the epoch.
  - Refuses, changing nothing, when the file or its directory is a symbolic link or not of its kind.
  - The guest role calls it once per hardening that moves the epoch (under TCG every module call costs seconds of
    guest CPU; it replaces a directory task and a copy, which made three Python runs in the guest).
author:
  - vmguard.hardening developers (@vmguard)
options:
  epoch:
    description: The epoch number (the ledger's C(pending_epoch) of this run); not negative.
    type: int
    required: true
  path:
    description: The guest's epoch file.
    type: path
    default: /var/lib/vmguard/epoch.json
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
notes:
  - Needs root in the guest (become).
seealso:
  - module: vmguard.hardening.ledger
  - module: vmguard.hardening.guest_facts
"""

EXAMPLES = r"""
- name: RB-05 | Record the pending epoch of this run in the guest
  vmguard.hardening.guest_epoch:
    epoch: "{{ prepared.pending_epoch }}"
  become: true
"""

RETURN = r"""
epoch:
  description: The epoch the file holds after the call (in check mode, would hold).
  returned: always
  type: int
  sample: 3
previous:
  description: The epoch the file held before, null when it was missing or held no epoch number.
  returned: always
  type: int
  sample: 2
path:
  description: The epoch file.
  returned: always
  type: str
  sample: /var/lib/vmguard/epoch.json
"""

import json
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

LIMIT = 64 * 1024


def render(epoch):
    """The file's text for ``epoch`` (what guest_facts reads; the role's copy wrote the same)."""
    return json.dumps({"epoch": epoch}) + "\n"


def previous_epoch(text):
    """The epoch number ``text`` holds, None when it is missing or not such a document."""
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    value = doc.get("epoch") if isinstance(doc, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _directory(module, parent):
    """Whether ``parent`` exists as a real directory; refuses a link or anything else."""
    try:
        st = os.lstat(parent)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg="%s is not a directory (a symbolic link or a file): the epoch file is not written" % parent)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            epoch=dict(type="int", required=True),
            path=dict(type="path", default="/var/lib/vmguard/epoch.json"),
        ),
        supports_check_mode=True,
    )
    epoch, path = module.params["epoch"], module.params["path"]
    if epoch < 0:
        module.fail_json(msg="epoch: %d is negative" % epoch)
    if not os.path.isabs(path):
        module.fail_json(msg="path: %r is not absolute" % path)
    parent = os.path.dirname(path)
    have_parent = _directory(module, parent)
    try:
        data = fsutil.read_regular(path, LIMIT, missing_ok=True) if have_parent else None
    except (fsutil.UnsafePathError, OSError) as e:
        module.fail_json(msg="%s: %s" % (path, e))
    before = None if data is None else data.decode("utf-8", "replace")
    after = render(epoch)
    result = dict(changed=before != after, epoch=epoch, previous=previous_epoch(before), path=path)
    if result["changed"]:
        result["diff"] = dict(before_header=path, before=before or "", after_header=path, after=after)
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)
    try:
        if not have_parent:
            os.makedirs(parent, 0o755)
        fsutil.atomic_write(path, after, mode=0o644)
    except (fsutil.UnsafePathError, OSError) as e:
        module.fail_json(msg="%s: %s" % (path, e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
