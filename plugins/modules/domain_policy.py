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
    to the persistent definition of every selected domain (a transient domain gets only the live ones, see
    below) - C(DIV-09) virtio-rng, C(RB-01) genid,
    C(RB-12) no transient disks, C(ISO-02) service interfaces moved off segments shared with other services
    to the service's own network, C(ISO-03) clean-traffic nwfilter on service interfaces, C(ISO-04) no
    C(<seclabel type='none'>), C(ISO-06) removal of disks shared with other services (never the boot disk),
    C(ISO-07) / C(ISO-08) / C(ISO-11) removal of host filesystems, passed-through
    devices and inter-VM channels outside the allow-lists, C(LEAK-02) consoles on 127.0.0.1, C(LEAK-03)
    SPICE clipboard and file transfer and qemu-vdagent clipboard off, C(LEAK-04) C(dumpCore='off'), C(LEAK-07) no host SMBIOS,
    C(VIS-05) vmguard owner/service/expires metadata.
  - Edits with lxml and changes only the elements and attributes a remediation owns - namespaces,
    metadata and unknown elements are kept. A domain that already complies is not redefined.
  - The persistent definition changes for every remediation. C(ISO-02), C(ISO-03) and C(ISO-06) are also
    applied to a running domain - the interface's new network and its filter through libvirt's device
    update (C(updateDeviceFlags), live), the shared disk's removal through a live detach
    (C(detachDeviceFlags)) - and checked on the live XML afterwards (even when the persistent definition
    was fixed by an earlier run); what did not take effect live (a guest that did not release a disk, a
    bus that cannot unplug) and every other remediation waits for the next start, and the result says so
    (C(restart_pending)).
  - A transient domain (no persistent definition) is never defined - that would make it persistent. Only
    C(ISO-02), C(ISO-03) and C(ISO-06) reach it, live; every other remediation it needs is named in its
    RV(domains) C(not_enforced) ("cannot be enforced on a transient domain", as the audit's plan lists it)
    and in a warning, and its entry says C(transient).
  - Every domain named in O(domain_fixes) (with a remediation to apply) or O(domains) and not excluded
    must exist - one libvirt does not have is a failure of that domain (RV(failed_domains)), never skipped.
  - Before any domain is touched, the C(ISO-02) target networks that libvirt does not have are defined
    as isolated networks (no C(<ip>), no C(<forward>), so guest-to-guest only, no host address), started
    and set to autostart; an existing inactive one is started (RV(networks)).
  - Backs up the previous definition (with its secrets, mode 0600, written atomically to
    C(<uuid>-<UTC stamp>.xml)) before each redefinition, and does not redefine a domain whose
    backup cannot be written. Running domains keep running; the result marks them C(restart_pending).
  - A fixer never removes a boot disk (a disk with a C(<boot order>), or the first disk) - asked to
    (C(ISO-06) C(detach) naming it; the audit's plan lists such a disk under C(not_enforced) instead), it
    leaves that disk, names it in the domain's RV(domains) C(not_enforced) (and a warning), and the
    domain's other remediations are applied.
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
        C(ISO-02) C(network) (required: the service's own libvirt network), C(move) (the segments shared
        with another service, C(network:NAME) or C(bridge:NAME)), C(management_networks);
        C(ISO-06) C(detach) (disk sources as the audit spells them: a normalised host path, C(protocol:name)
        or C(pool/volume));
        C(ISO-07) C(allowed_filesystems); C(ISO-08) C(allowed_hostdevs); C(ISO-11) C(allowed_shmem),
        C(allow_vsock); C(VIS-05) C(owner), C(service), C(expires) (YYYY-MM-DD), C(data_class).
        The others take none. An unknown or ill-typed parameter fails the module before anything is read."
      - Only these domains are touched; O(domains) is ignored. A domain named here with a remediation to apply
        that libvirt does not have fails the module (for that domain, the others are still fixed).
    type: dict
  domains:
    description:
      - Domain names to work on with O(fixes); all domains (persistent and transient) when empty.
      - A name libvirt does not have fails the module (for that domain, the others are still fixed).
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
      path, the changes that took effect on the running domain (C(live)) and whether a restart is still
      pending for the rest.
    - C(not_enforced) lists what was asked but deliberately not done, each as the rule id and why (a boot
      disk C(ISO-06) does not detach, a remediation a transient domain cannot take); a domain with such an
      item is listed even when nothing else changed.
    - C(transient) is true for a transient domain - nothing redefined, no restart pending, its C(live)
      changes are all it gets.
  returned: always
  type: dict
  sample:
    web1:
      changes: ["DIV-09: added <rng model='virtio'> (/dev/urandom)",
                "ISO-03: added <filterref filter='clean-traffic'> with IP 192.0.2.10 on 52:54:00:6b:3c:58 (network svc-web)"]
      uuid: 0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10
      backup: /var/lib/vmguard/backup/domains/0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10-20261126T191500Z.xml
      restart_pending: true
      live: []
      not_enforced:
        - "ISO-06: not detaching boot disk vdb (/srv/shared/boot.img): boot disk shared: give the domain its own image"
    mail1:
      changes: ["ISO-02: moved 52:54:00:6b:3c:59 from network svc-web to network svc-mail"]
      uuid: 5f3e0c1a-6b2d-4c8e-8a71-2d9c4e6b1f03
      backup: /var/lib/vmguard/backup/domains/5f3e0c1a-6b2d-4c8e-8a71-2d9c4e6b1f03-20261126T191500Z.xml
      restart_pending: false
      live: ["ISO-02: moved 52:54:00:6b:3c:59 from network svc-web to network svc-mail"]
      not_enforced: []
    build7:
      changes: []
      uuid: 9a4e1f2b-7c3d-4e5f-8a6b-1c2d3e4f5a6b
      backup: null
      restart_pending: false
      live: ["ISO-06: detached disk(s) shared with other services: vdb (/srv/shared/cache.img)"]
      not_enforced:
        - "LEAK-02: cannot be enforced on a transient domain: it has no persistent definition to change and libvirt
          cannot make this change on the running domain (define it persistently, or fix it where it is created);
          needed: vnc console listen attribute 0.0.0.0 -> 127.0.0.1"
      transient: true
networks:
  description: The C(ISO-02) target networks defined (isolated) or started by this run (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [svc-mail]
failed_domains:
  description:
    - Per domain that could not be read, remediated, backed up or redefined, or that was named but does not exist,
      why (and its backup if one was written).
  returned: always
  type: dict
  sample:
    mail1:
      error: "not redefined: its backup cannot be written: [Errno 28] No space left on device"
      backup: null
    ghost1:
      error: "no such domain on qemu:///system"
      backup: null
"""

import os
import time
from xml.sax.saxutils import escape

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.plan import TRANSIENT_DOMAIN
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


def requested_domains(p):
    """The domains the task names (those of domain_fixes with a fix to apply, or domains with fixes), less the
    excluded: each must exist - one libvirt does not have is a failure of that domain, never skipped in silence."""
    if p["domain_fixes"] is not None:
        names = [str(k) for k, v in p["domain_fixes"].items() if _rule_ids(v)]
    else:
        names = p["domains"] if p["fixes"] else []
    return sorted(set(names) - set(p["exclude"]))


ISOLATED_NETWORK = "<network><name>%s</name></network>"  # no <ip>, no <forward>: libvirt picks the bridge name


def _network_xml(name):
    return ISOLATED_NETWORK % escape(name)


def service_networks(fixes_of, names):
    """The ISO-02 target networks of the domains ``names`` (fixes_of(name): that domain's fixes)."""
    out = set()
    for name in names:
        for rid, params in domfix.normalize(fixes_of(name)):
            if rid == "ISO-02":
                out.add(params["network"])
    return sorted(out)


def ensure_networks(module, conn, names):
    """Define (isolated) and start the networks of ``names`` libvirt lacks, start inactive ones, autostart
    both. Returns the names acted on; fails the module naming the network libvirt refuses."""
    acted, changed = [], False  # changed: a network defined or started before a failure is a change
    for name in names:
        try:
            net = conn.networkLookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                module.fail_json(msg="ISO-02: cannot look up network %s: %s" % (name, e.get_error_message()),
                                 networks=acted, changed=changed)
            net = None
        if net is not None and net.isActive():
            continue
        acted.append(name)
        if module.check_mode:
            continue
        try:
            if net is None:
                net = conn.networkDefineXML(_network_xml(name))
                changed = True
            net.create()
            changed = True
            net.setAutostart(1)
        except libvirt.libvirtError as e:
            module.fail_json(msg="ISO-02: cannot define or start the isolated network %s: %s" % (name, e.get_error_message()),
                             networks=acted, changed=changed)
    return acted


def apply_live(dom, fixes):
    """Carry the LIVE fixes (ISO-02, ISO-06) out on the running domain: (changes that took effect live,
    why not all did or None). Re-reads the live XML afterwards: a detach libvirt accepted but the guest
    has not completed still shows there, and is reported."""
    ops, changes = domfix.live_operations(dom.XMLDesc(0), fixes, etree, [])  # refusals: already in fix_domain's entry
    if not ops:
        return [], None
    problems = []
    for op, device, rid in ops:
        try:
            if op == "update":
                dom.updateDeviceFlags(device, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            else:
                dom.detachDeviceFlags(device, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as e:
            problems.append("%s: live %s refused: %s" % (rid, op, e.get_error_message()))
    left_ops, left = domfix.live_operations(dom.XMLDesc(0), fixes, etree, [])
    if left_ops and not problems:
        problems.append("not yet in effect on the running domain (the guest has not released the device): %s" % "; ".join(left))
    return [c for c in changes if c not in left], "; ".join(problems) or None


VANISHED = "no longer exists (undefined, or a transient domain stopped, since the listing)"


def fix_transient(module, dom, fixes):
    """(entry or None when nothing applies, error message or None) for a transient domain. It has no persistent
    definition, and defineXML would make it persistent (not a hardening's decision): only the LIVE fixes are
    carried out, on the running domain; every other fix that would change it is named in the entry's
    ``not_enforced`` (TRANSIENT_DOMAIN, the planner's reason too). A restart would end the domain: none is
    pending."""
    try:
        xml = dom.XMLDesc(0)
        uuid = dom.UUIDString()
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None, VANISHED
        return None, "cannot read its live definition: %s" % e.get_error_message()
    refused = []
    try:
        others = dict((rid, params) for rid, params in domfix.normalize(fixes) if rid not in domfix.LIVE)
        live_ops = domfix.live_operations(xml, fixes, etree, refused)[1]
        needed = domfix.apply(xml, others, etree, refused)[1] if others else []
    except (ValueError, etree.LxmlError) as e:
        return None, "cannot remediate its live definition: %s" % e
    refused += ["%s: %s; needed: %s" % (c.split(":")[0], TRANSIENT_DOMAIN, c.split(": ", 1)[1]) for c in needed]
    if not live_ops and not refused:
        return None, None
    entry = dict(changes=[], restart_pending=False, backup=None, uuid=uuid, live=[], not_enforced=refused,
                 transient=True)
    if module.check_mode:
        entry["live"] = live_ops
        return entry, None
    if live_ops:
        entry = _live_part(dom, fixes, [], entry)[0]
        entry["restart_pending"] = False
    return entry, None


def fix_domain(module, conn, dom, stamp, fixes):
    """(entry or None when the domain complies, error message or None) for one domain (VANISHED: gone since the
    listing); a transient domain: fix_transient.

    The entry's ``redefined`` is True once libvirt holds the new definition - whatever fails
    afterwards, it is reported as changed. No backup, no redefinition. An item a fixer refuses (a
    boot disk ISO-06 was asked to detach) is named in the entry's ``not_enforced``; the rest is applied."""
    p = module.params
    try:
        if not dom.isPersistent():
            return fix_transient(module, dom, fixes)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        uuid = dom.UUIDString()
        active = bool(dom.isActive())
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None, VANISHED
        return None, "cannot read its definition: %s" % e.get_error_message()
    refused = []
    try:
        new, changes = domfix.apply(xml, fixes, etree, refused)
        live_ops = domfix.live_operations(dom.XMLDesc(0), fixes, etree, refused)[1] if active else []
    except (ValueError, etree.LxmlError) as e:
        return None, "cannot remediate its definition: %s" % e
    except libvirt.libvirtError as e:
        return None, "cannot read its live definition: %s" % e.get_error_message()
    if not changes and not live_ops and not refused:
        return None, None
    entry = dict(changes=changes, restart_pending=active, backup=None, uuid=uuid, live=[], not_enforced=refused)
    if module.check_mode:
        entry["live"] = live_ops
        entry["restart_pending"] = active and any(c.split(":")[0] not in domfix.LIVE for c in changes)
        return entry, None
    if changes:
        try:
            entry["backup"] = write_backup(p["backup_dir"], uuid, stamp, xml)
        except (OSError, IOError, ValueError) as e:
            return entry, "not redefined: its backup cannot be written: %s" % e
        try:
            conn.defineXML(new)
        except libvirt.libvirtError as e:
            return entry, "backed up but not redefined: %s" % e.get_error_message()
        entry["redefined"] = True
    if not active:
        return entry, None
    return _live_part(dom, fixes, changes, entry)


def _live_part(dom, fixes, changes, entry):
    """The live half of fix_domain for a running domain: ISO-02/ISO-06 applied live; restart_pending stays
    true while another remediation changed the definition or a live change did not take."""
    try:
        entry["live"], problem = apply_live(dom, fixes)
    except (ValueError, etree.LxmlError) as e:
        problem = "cannot remediate its live definition: %s" % e
    except libvirt.libvirtError as e:
        problem = "live changes not applied: %s" % e.get_error_message()
    entry["redefined"] = entry.get("redefined") or bool(entry["live"])
    entry["restart_pending"] = bool(problem) or any(c.split(":")[0] not in domfix.LIVE for c in changes)
    if problem:
        entry["live_pending"] = problem
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
    requested = requested_domains(p)
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="cannot connect to %s: %s" % (p["uri"], e.get_error_message()))
    result = dict(changed=False, domains={}, failed_domains={}, networks=[])
    stamp = timeutil.stamp(time.time())
    try:
        listed = dict((d.name(), d) for d in conn.listAllDomains(0))  # persistent and transient
        for name in requested:
            if name not in listed:
                result["failed_domains"][name] = dict(error="no such domain on %s" % p["uri"], backup=None)
        doms = [(name, dom) for name, dom in sorted(listed.items()) if per_domain(name) and name not in p["exclude"]]
        result["networks"] = ensure_networks(module, conn, service_networks(per_domain, [name for name, _dom in doms]))
        result["changed"] = bool(result["networks"])
        for name, dom in doms:
            fixes = per_domain(name)
            entry, err = fix_domain(module, conn, dom, stamp, fixes)
            if err == VANISHED and name not in requested:
                err = None  # not named by the task: gone is as good as left alone
            changed = entry is not None and (bool(entry["changes"] or entry["live"]) if module.check_mode
                                             else entry.pop("redefined", False))
            if changed or (entry is not None and (entry.get("live_pending") or entry["not_enforced"])):
                result["domains"][name] = entry  # a pending live change, a refused fix: shown even if nothing changed
                result["changed"] = result["changed"] or changed
            for why in (entry or {}).get("not_enforced") or []:
                module.warn("domain %s: %s" % (name, why))
            if err:
                result["failed_domains"][name] = dict(error=err, backup=(entry or {}).get("backup"))
    except libvirt.libvirtError as e:
        module.fail_json(msg="libvirt error: %s" % e.get_error_message(), **result)
    finally:
        conn.close()
    if module._diff and result["changed"]:
        result["diff"] = dict(before="", after="".join("%s: %s\n" % (n, "; ".join(d["changes"] or d["live"]))
                                                       for n, d in sorted(result["domains"].items())))
    if result["failed_domains"]:
        module.fail_json(msg="domain_policy failed for %d domain(s) (%d redefined): %s" % (
            len(result["failed_domains"]), len(result["domains"]),
            "; ".join("%s: %s" % (n, f["error"]) for n, f in sorted(result["failed_domains"].items()))), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
