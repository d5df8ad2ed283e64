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
  - Applies the domain-layer remediations of the vmguard catalog named in O(fixes) or O(domain_fixes)
    to the persistent definition of every selected domain - C(DIV-09) virtio-rng, C(RB-01) genid,
    C(RB-12) no transient disks, C(ISO-03) clean-traffic nwfilter on service interfaces, C(ISO-04) no
    C(<seclabel type='none'>), C(ISO-07) / C(ISO-08) / C(ISO-11) removal of host filesystems, passed-through
    devices and inter-VM channels outside the allow-lists, C(LEAK-02) consoles on 127.0.0.1, C(LEAK-03)
    SPICE clipboard and file transfer off, C(LEAK-04) C(dumpCore='off'), C(LEAK-07) no host SMBIOS,
    C(VIS-05) vmguard owner/service/expires metadata.
  - Edits with lxml and changes only the elements and attributes a remediation owns - namespaces,
    metadata and unknown elements are kept. A domain that already complies is not redefined.
  - Only the persistent definition changes. Nothing is applied live, not even what libvirt could change
    on a running domain (a filterref through a device update, for example); a running domain keeps its
    current configuration until it restarts, and the result says so (C(restart_pending)).
  - Backs up the previous definition (with its secrets, mode 0600, written atomically to
    C(<uuid>-<UTC stamp>.xml)) before each redefinition, and does not redefine a domain whose
    backup cannot be written. Running domains keep running; the result marks them C(restart_pending).
  - A domain that cannot be read, remediated, backed up or redefined does not stop the others;
    the module fails at the end, listing every failure in RV(failed_domains), with RV(domains)
    and C(changed) still true for the domains it did redefine.
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
    description:
      - Catalog rule ids whose remediation to apply to every selected domain, each with its default
        parameters (the shipped policy's - empty allow-lists, no management network, no service address).
        C(VIS-05) needs parameters, so it is only available through O(domain_fixes).
      - Give either O(fixes) or O(domain_fixes).
    type: list
    elements: str
  domain_fixes:
    description:
      - Per domain name, the remediations to apply to that domain only (the remediation plan of the
        audit, where a finding waived or passing on one domain must not be "fixed" there) - a list of
        rule ids (default parameters), or a dict of rule id to that fix's parameters, as the audit's
        plan gives them (C(plan.hosts[hypervisor].domain_policy.domains)).
      - "Parameters: C(ISO-03) C(management_networks), C(nwfilters) (the allowed filters), C(filter)
        (default C(clean-traffic)), C(ip) (the guest's IPv4 service address, the filter's IP parameter
        when the domain has one service interface; without it clean-traffic learns the address);
        C(ISO-07) C(allowed_filesystems); C(ISO-08) C(allowed_hostdevs); C(ISO-11) C(allowed_shmem),
        C(allow_vsock); C(VIS-05) C(owner), C(service), C(expires) (YYYY-MM-DD), C(data_class).
        The others take none. An unknown or ill-typed parameter fails the module before anything is read."
      - Only these domains are touched; O(domains) is ignored.
    type: dict
  domains:
    description: Domain names to work on with O(fixes); all domains when empty.
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

- name: DIV-09, RB-01 | ENFORCE | Carry out the audit's plan, domain by domain
  vmguard.hardening.domain_policy:
    domain_fixes: "{{ vmguard_audit.plan.hosts[inventory_hostname].domain_policy.domains }}"

- name: ISO-03, ISO-07, LEAK-02, VIS-05 | ENFORCE | Per-domain fixes with their parameters
  vmguard.hardening.domain_policy:
    domain_fixes:
      web1:
        ISO-03: {management_networks: [vmguard-mgmt], ip: 192.0.2.10}
        ISO-07: {allowed_filesystems: [/srv/www-static]}
        LEAK-02: {}
        VIS-05: {owner: team-web, service: web, expires: "2027-06-30"}
"""

RETURN = r"""
domains:
  description:
    - Per redefined domain (in check mode, per domain that would be), its changes, UUID, backup
      path and whether a restart is pending.
  returned: always
  type: dict
  sample:
    web1:
      changes: ["DIV-09: added <rng model='virtio'> (/dev/urandom)",
                "ISO-03: added <filterref filter='clean-traffic'> with IP 192.0.2.10 on 52:54:00:6b:3c:58 (network svc-web)"]
      uuid: 0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10
      backup: /var/lib/vmguard/backup/domains/0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10-20261126T191500Z.xml
      restart_pending: true
failed_domains:
  description: Per domain that could not be read, remediated, backed up or redefined, why (and its backup if one was written).
  returned: always
  type: dict
  sample:
    mail1:
      error: "not redefined: its backup cannot be written: [Errno 28] No space left on device"
      backup: null
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil, timeutil
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix

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


def backup_path(backup_dir, uuid, stamp):
    """<uuid>-<UTC stamp>.xml (bounded length, whatever the domain's name); -N added when a backup
    of the same second exists, so an earlier backup is never replaced."""
    base = os.path.join(backup_dir, "%s-%s" % (uuid, stamp))
    path, n = base + ".xml", 1
    while os.path.lexists(path):
        path, n = "%s-%d.xml" % (base, n), n + 1
    return path


def write_backup(backup_dir, uuid, stamp, xml):
    """The previous definition (with its secrets) at mode 0600, written atomically; returns its path."""
    if not os.path.isdir(backup_dir):
        os.makedirs(backup_dir, 0o700)
    return fsutil.atomic_write(backup_path(backup_dir, uuid, stamp), xml, 0o600)


def _rule_ids(value):
    """The rule ids of one domain_fixes value (a list of ids or a dict {id: parameters})."""
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def fixes_per_domain(module, p):
    """A function: domain name -> the fixes to apply to it (a list of rule ids or a dict {rule id:
    parameters}; empty: leave it alone). Unknown ids and bad parameters fail the module before
    anything is read, naming the argument (and the domain)."""
    if p["domain_fixes"] is not None:
        plan = dict((str(k), v if v is not None else []) for k, v in p["domain_fixes"].items())
        wanted = sorted(set(str(f) for v in plan.values() for f in _rule_ids(v)))
        arg = "domain_fixes"
    else:
        plan, wanted, arg = None, p["fixes"], "fixes"
    unknown = [f for f in wanted if f not in domfix.FIXERS]
    if unknown:
        module.fail_json(msg="%s: no domain remediation for %s (available: %s)" % (
            arg, ", ".join(unknown), ", ".join(sorted(domfix.FIXERS))))
    checks = sorted(plan.items()) if plan is not None else [(None, p["fixes"])]
    errors = []
    for name, value in checks:
        try:
            domfix.normalize(value)
        except ValueError as e:
            errors.append("%s: %s" % ("fixes" if name is None else "domain_fixes.%s" % name, e))
    if errors:
        module.fail_json(msg="; ".join(errors))
    if plan is not None:
        return lambda name: plan.get(name) or []
    names = set(p["domains"])
    return lambda name: p["fixes"] if (not names or name in names) else []


def fix_domain(module, conn, dom, stamp, fixes):
    """(entry or None when the domain complies or vanished, error message or None) for one domain.

    The entry's ``redefined`` is True once libvirt holds the new definition - whatever fails
    afterwards, it is reported as changed. No backup, no redefinition."""
    p = module.params
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        uuid = dom.UUIDString()
        active = bool(dom.isActive())
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None, None  # vanished since the listing
        return None, "cannot read its definition: %s" % e.get_error_message()
    try:
        new, changes = domfix.apply(xml, fixes, etree)
    except (ValueError, etree.LxmlError) as e:
        return None, "cannot remediate its definition: %s" % e
    if not changes:
        return None, None
    entry = dict(changes=changes, restart_pending=active, backup=None, uuid=uuid)
    if module.check_mode:
        return entry, None
    try:
        entry["backup"] = write_backup(p["backup_dir"], uuid, stamp, xml)
    except (OSError, IOError, ValueError) as e:
        return entry, "not redefined: its backup cannot be written: %s" % e
    try:
        conn.defineXML(new)
    except libvirt.libvirtError as e:
        return entry, "backed up but not redefined: %s" % e.get_error_message()
    entry["redefined"] = True
    return entry, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri=dict(type="str", default="qemu:///system"),
            fixes=dict(type="list", elements="str"),
            domain_fixes=dict(type="dict"),
            domains=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            backup_dir=dict(type="path", default="/var/lib/vmguard/backup/domains"),
        ),
        supports_check_mode=True,
        required_one_of=[("fixes", "domain_fixes")],
        mutually_exclusive=[("fixes", "domain_fixes")],
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"))
    if not HAS_LXML:
        module.fail_json(msg=missing_required_lib("lxml"))
    p = module.params
    per_domain = fixes_per_domain(module, p)
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="cannot connect to %s: %s" % (p["uri"], e.get_error_message()))
    result = dict(changed=False, domains={}, failed_domains={})
    stamp = timeutil.stamp(time.time())
    try:
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
            name = dom.name()
            fixes = per_domain(name)
            if not fixes or name in p["exclude"]:
                continue
            entry, err = fix_domain(module, conn, dom, stamp, fixes)
            if entry is not None and (module.check_mode or entry.pop("redefined", False)):
                result["domains"][name] = entry
                result["changed"] = True
            if err:
                result["failed_domains"][name] = dict(error=err, backup=(entry or {}).get("backup"))
    except libvirt.libvirtError as e:
        module.fail_json(msg="libvirt error: %s" % e.get_error_message(), **result)
    finally:
        conn.close()
    if module._diff and result["changed"]:
        result["diff"] = dict(before="", after="".join("%s: %s\n" % (n, "; ".join(d["changes"]))
                                                       for n, d in sorted(result["domains"].items())))
    if result["failed_domains"]:
        module.fail_json(msg="domain_policy failed for %d domain(s) (%d redefined): %s" % (
            len(result["failed_domains"]), len(result["domains"]),
            "; ".join("%s: %s" % (n, f["error"]) for n, f in sorted(result["failed_domains"].items()))), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
