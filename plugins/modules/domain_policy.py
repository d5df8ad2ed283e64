#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: domain_policy
short_description: Apply vmguard domain XML remediations to every domain of a hypervisor in one call
version_added: "0.1.0"
description:
  - Applies the domain-layer remediations of the vmguard catalog named in O(fixes) (for example
    C(DIV-09) virtio-rng, C(RB-01) genid) to the persistent definition of every selected domain.
  - Edits with lxml and changes only the elements a remediation owns - namespaces, metadata and
    unknown elements are kept. A domain that already complies is not redefined.
  - Backs up the previous definition (with its secrets, mode 0600) before each redefinition.
    Running domains keep running; the result marks them C(restart_pending).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - libvirt-python
  - lxml
options:
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  fixes:
    description: Catalog rule ids whose remediation to apply.
    type: list
    elements: str
    required: true
  domains:
    description: Domain names to work on; all domains when empty.
    type: list
    elements: str
    default: []
  exclude:
    description: Domain names to leave alone.
    type: list
    elements: str
    default: []
  backup_dir:
    description: Where previous definitions are kept.
    type: path
    default: /var/lib/vmguard/backup/domains
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the remediations per domain (not the XML, which may hold console passwords).
"""

EXAMPLES = r"""
- name: DIV-09 | ENFORCE | virtio-rng on every domain
  vmguard.hardening.domain_policy:
    fixes: [DIV-09]
"""

RETURN = r"""
domains:
  description: Per changed domain, its changes, backup path and whether a restart is pending.
  returned: always
  type: dict
  sample:
    web1:
      changes: ["DIV-09: added <rng model='virtio'> (/dev/urandom)"]
      backup: /var/lib/vmguard/backup/domains/web1-20261126T191500Z.xml
      restart_pending: true
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils import domfix

try:
    import libvirt
    HAS_LIBVIRT = True
except ImportError:
    HAS_LIBVIRT = False

try:
    from lxml import etree
    HAS_LXML = True
except ImportError:
    HAS_LXML = False


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri=dict(type="str", default="qemu:///system"),
            fixes=dict(type="list", elements="str", required=True),
            domains=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            backup_dir=dict(type="path", default="/var/lib/vmguard/backup/domains"),
        ),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"))
    if not HAS_LXML:
        module.fail_json(msg=missing_required_lib("lxml"))
    p = module.params
    unknown = [f for f in p["fixes"] if f not in domfix.FIXERS]
    if unknown:
        module.fail_json(msg="no domain remediation for %s (available: %s)" % (", ".join(unknown), ", ".join(sorted(domfix.FIXERS))))
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="cannot connect to %s: %s" % (p["uri"], e.get_error_message()))
    result = dict(changed=False, domains={})
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        wanted = set(p["domains"])
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
            name = dom.name()
            if (wanted and name not in wanted) or name in p["exclude"]:
                continue
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            except libvirt.libvirtError:
                continue  # vanished since the listing
            new, changes = domfix.apply(xml, p["fixes"], etree)
            if not changes:
                continue
            entry = dict(changes=changes, restart_pending=bool(dom.isActive()), backup=None)
            if not module.check_mode:
                if not os.path.isdir(p["backup_dir"]):
                    os.makedirs(p["backup_dir"], 0o700)
                backup = os.path.join(p["backup_dir"], "%s-%s.xml" % (name, stamp))
                fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(xml)
                entry["backup"] = backup
                conn.defineXML(new)
            result["domains"][name] = entry
            result["changed"] = True
    except libvirt.libvirtError as e:
        module.fail_json(msg="libvirt error: %s" % e.get_error_message(), **result)
    except ValueError as e:
        module.fail_json(msg=str(e), **result)
    finally:
        conn.close()
    if module._diff and result["changed"]:
        result["diff"] = dict(before="", after="".join("%s: %s\n" % (n, "; ".join(d["changes"]))
                                                       for n, d in sorted(result["domains"].items())))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
