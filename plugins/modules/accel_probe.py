#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: accel_probe
short_description: Find out whether KVM really runs guests on a host, else use TCG
version_added: "0.1.0"
description:
  - Boots a throwaway test guest under KVM and reports whether it finished. A present and
    openable C(/dev/kvm) is not enough - in nested set-ups guests hang or QEMU aborts right after
    the firmware - so this module decides by running something.
  - With O(kernel), boots that kernel without a root file system until its panic (the real test).
    Without it, boots a 512-byte boot sector that exits through QEMU's isa-debug-exit device
    (only proves QEMU and the firmware run).
  - Falls back to TCG (libvirt domain type C(qemu)) when KVM fails, and fails only when QEMU
    cannot run the test guest at all.
  - Changes nothing on the host, except its own cache file when O(cache) is given.
author:
  - vmguard.hardening developers (@vmguard)
options:
  kernel:
    description: Kernel image to boot as the test guest (for example the golden image's vmlinuz).
    type: path
  emulator:
    description: QEMU system emulator. Found on the PATH when omitted.
    type: path
  prefer:
    description:
      - V(auto) uses KVM when the test passes, else TCG. V(kvm) fails when KVM does not pass.
        V(tcg) skips the KVM test.
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  timeout:
    description: Seconds the KVM test guest may take (the TCG test gets four times as long).
    type: float
    default: 20
  cache:
    description:
      - File that keeps the decision for the rest of this boot of the host (written atomically, mode 0600, never
        through a symbolic link; not written in check mode). It is reused only when the host's boot id, the
        emulator and test kernel (path, size, modification time), O(prefer), O(timeout) and the presence of
        C(/dev/kvm) are the same as when it was made; anything else runs the test again.
      - Omitted, the test runs every time.
    type: path
extends_documentation_fragment:
  - vmguard.hardening.attributes.read_only
"""

EXAMPLES = r"""
- name: Decide the accelerator for lab guests
  vmguard.hardening.accel_probe:
    kernel: /var/lib/vmguard/images/1a2b3c/vmlinuz
  register: accel

- name: Use it in a domain definition
  ansible.builtin.debug:
    msg: "<domain type='{{ accel.domain_type }}'>"
"""

RETURN = r"""
accelerator:
  description: The accelerator to use.
  returned: success
  type: str
  sample: tcg
domain_type:
  description: The libvirt domain type that goes with it.
  returned: success
  type: str
  sample: qemu
cached:
  description: Whether the decision came from O(cache) (made earlier in this boot) rather than a test run now.
  returned: success
  type: bool
kvm_usable:
  description: Whether the KVM test guest finished in time.
  returned: success
  type: bool
kvm_device_present:
  description: Whether the KVM device node exists.
  returned: success
  type: bool
probe:
  description: Which test guest was used.
  returned: success
  type: str
  sample: kernel
probes:
  description: Every test run, with accelerator, outcome, seconds and detail.
  returned: success
  type: list
  elements: dict
reason:
  description: One line that explains the decision.
  returned: success
  type: str
emulator:
  description: The QEMU binary used.
  returned: success
  type: str
"""

import errno

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.lab.accel import cache_key, cached, detect, find_emulator, to_cache

CACHE_LIMIT = 1 << 16


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kernel=dict(type="path"),
            emulator=dict(type="path"),
            prefer=dict(type="str", choices=["auto", "kvm", "tcg"], default="auto"),
            timeout=dict(type="float", default=20.0),
            cache=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %s" % p["timeout"])
    key = None
    if p["cache"]:
        key = cache_key(p["emulator"] or find_emulator(), p["kernel"], p["prefer"], p["timeout"])
        try:
            text = fsutil.read_regular(p["cache"], CACHE_LIMIT, missing_ok=True)
        except (OSError, IOError, fsutil.UnsafePathError) as e:
            module.fail_json(msg="cannot read the cache %s: %s" % (p["cache"], e))
        kept = cached(text.decode("utf-8", "replace"), key) if text is not None else None
        if kept is not None:
            module.exit_json(changed=False, cached=True, **kept)
    try:
        result = detect(lambda argv: module.run_command(argv, errors="surrogate_or_replace"),
                        emulator=p["emulator"], timeout=p["timeout"], prefer=p["prefer"],
                        kernel=p["kernel"])
    except (RuntimeError, OSError) as e:
        module.fail_json(msg=str(e))
    if key is not None and not module.check_mode:
        try:
            fsutil.atomic_write(p["cache"], to_cache(key, result))
        except (OSError, IOError, fsutil.UnsafePathError) as e:
            if getattr(e, "errno", None) != errno.ENOENT:
                module.fail_json(msg="cannot write the cache %s: %s" % (p["cache"], e))
            module.warn("cache %s not written: its directory does not exist" % p["cache"])
    module.exit_json(changed=False, cached=False, **result)


if __name__ == "__main__":
    main()
