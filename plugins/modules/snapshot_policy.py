#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: snapshot_policy
short_description: Report, and with prune delete, the libvirt snapshots the vmguard snapshot rules reject
version_added: "0.1.0"
description:
  - Carries out the C(snapshot_policy) step of the vmguard remediation plan (rules C(RB-02) snapshot
    age, C(RB-03) snapshot count, C(RB-04) snapshots older than the ledger's security epoch, C(RB-13)
    memory-state snapshots), or applies those rules by itself from O(max_age_hours), O(max_count),
    O(ledger_dir) and O(allow_memory).
  - Deletes nothing unless O(prune=true); without it the module reports what it would delete.
  - Checks every snapshot again against what libvirt says at run time. Never deletes the current
    snapshot, a snapshot matching O(pinned), or a snapshot with children that stay (children are
    deleted first, their parents after; no snapshot is deleted together with its children by flag).
  - A plan entry is carried out only on what the audit judged - when the domain's UUID is no longer the
    entry's C(uuid) (the domain was replaced under its name) none of its snapshots is deleted, and a
    snapshot whose creation time is not the entry's C(created) one (deleted and taken again under the same
    name since the audit) stays; both are reported in C(refused) with the reason, not as a failure.
  - With the rule parameters, a snapshot without a creation time or with one more than 5 seconds in the
    future has no age to judge (the audit reports it as an error for C(RB-02) and C(RB-04)); it is not
    deleted by age and C(refused) says why.
  - An external snapshot (memory or a disk with C(snapshot='external')) is refused on libvirt before
    9.7, which cannot delete one without losing track of its overlay files (it would drop the
    metadata only). It is reported, never deleted.
  - A domain that cannot be read (or whose ledger cannot be trusted) does not stop the others; the
    module fails at the end, listing it in RV(failed_domains).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - libvirt-python
options:
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  domains:
    description:
      - The plan's C(snapshot_policy.domains) - per domain name, C(delete) (the snapshot names to delete),
        C(why) (per snapshot, the rule and reason), C(uuid) (the domain's UUID the audit saw) and C(created)
        (per snapshot, the creation time the audit saw, seconds since the epoch). C(uuid) and C(created) are
        optional; without them the snapshots are taken by name.
      - Only these domains are touched and only the named snapshots are considered. Mutually
        exclusive with the rule parameters O(max_age_hours), O(max_count), O(ledger_dir) and
        O(allow_memory).
    type: dict
  max_age_hours:
    description: Rule C(RB-02) on every domain - snapshots older than this many hours go.
    type: int
  max_count:
    description:
      - Rule C(RB-03) on every domain - besides the snapshots other rules delete, the oldest that can
        go are deleted until at most this many stay.
    type: int
  ledger_dir:
    description:
      - Rule C(RB-04) on every domain - snapshots created before the C(epoch_time) of the domain's
        ledger record in this directory go. A domain without a record (or without an epoch time)
        is not judged by this rule; an unreadable ledger fails that domain.
    type: path
  allow_memory:
    description: Rule C(RB-13) on every domain - V(false) deletes memory-state snapshots.
    type: bool
  pinned:
    description: Glob patterns over C(<domain>/<snapshot>) of snapshots never to delete.
    type: list
    elements: str
    default: []
  prune:
    description: Delete the snapshots. V(false) only reports them (C(would_delete) per domain in RV(domains)).
    type: bool
    default: false
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
notes:
  - The diff lists the snapshot names per domain before and after.
  - C(changed) is true only when a snapshot is deleted (in check mode, when one would be with O(prune=true)).
"""

EXAMPLES = r"""
- name: RB-02, RB-03, RB-04, RB-13 | ENFORCE | Carry out the audit's snapshot plan
  vmguard.hardening.snapshot_policy:
    uri: qemu:///system
    domains: "{{ vmguard_audit.plan.hosts[inventory_hostname].snapshot_policy.domains }}"
    prune: "{{ vmguard_audit.plan.hosts[inventory_hostname].snapshot_policy.prune }}"

- name: RB-02, RB-03 | AUDIT | Which snapshots are older than 72 hours or beyond 3 per domain (deletes nothing)
  vmguard.hardening.snapshot_policy:
    max_age_hours: 72
    max_count: 3
    pinned: ["*/golden-*"]

- name: RB-04, RB-13 | ENFORCE | Delete snapshots older than the security epoch and memory-state ones
  vmguard.hardening.snapshot_policy:
    ledger_dir: /var/lib/vmguard/ledger
    allow_memory: false
    prune: true
"""

RETURN = r"""
domains:
  description:
    - Per domain considered, C(kept) lists the snapshots that stay after the run (in check mode or
      without O(prune), those that would stay), C(deleted) the deleted ones, and C(would_delete) the
      chosen ones not deleted (O(prune=false) or check mode), leaves first.
    - C(why) gives the rules per chosen snapshot; C(refused), per snapshot a rule or the plan wanted
      gone, why it stays (also a planned snapshot that is not the one the audit judged, and, with the
      rule parameters, a snapshot whose age cannot be judged).
  returned: always
  type: dict
  sample:
    web1:
      kept: [golden-base, nightly]
      deleted: [mem1, pre-upgrade]
      would_delete: []
      why:
        mem1: RB-13 memory-state snapshot
        pre-upgrade: RB-02 older than 72h (100h); RB-04 older than security epoch 3
      refused:
        golden-base: pinned (*/golden-*)
failed_domains:
  description: Per domain that could not be read (or whose ledger cannot be trusted, or a deletion failed), why.
  returned: always
  type: dict
  sample:
    mail1: "domain not found"
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger, snapshots

try:
    import libvirt
    HAS_LIBVIRT = True
except ImportError:
    HAS_LIBVIRT = False

RULE_PARAMS = ("max_age_hours", "max_count", "ledger_dir", "allow_memory")
PLAN_KEYS = ("created", "delete", "uuid", "why")


def check_params(module, p):
    """Fail, naming the argument, on a plan entry of the wrong shape or a negative limit."""
    for key in ("max_age_hours", "max_count"):
        if p[key] is not None and p[key] < 0:
            module.fail_json(msg="%s: must not be negative, got %d" % (key, p[key]))
    for name, entry in (p["domains"] or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("delete", []), list) \
                or not isinstance(entry.get("why", {}) or {}, dict):
            module.fail_json(msg="domains.%s: expected {delete: [snapshot names], why: {snapshot: text}}, got %r"
                             % (name, entry))
        unknown = sorted(set(entry) - set(PLAN_KEYS))
        if unknown:
            module.fail_json(msg="domains.%s: unknown key(s) %s (expected %s)" % (
                name, ", ".join(unknown), ", ".join(PLAN_KEYS)))
        if not isinstance(entry.get("created", {}) or {}, dict) or not isinstance(entry.get("uuid", "") or "", str):
            module.fail_json(msg="domains.%s: expected created: {snapshot: creation time} and uuid: a domain UUID, "
                             "got %r" % (name, entry))


def flagged_for(p, dom, view, now):
    """({name: [why]}, max_count, {name: why it stays}) of one domain: from the plan (minus the snapshots
    that are not the ones the audit judged: not_as_planned), or from the rule parameters (minus the
    snapshots whose age cannot be judged, when RB-02 or RB-04 is asked for: age_unknown)."""
    if p["domains"] is not None:
        entry = p["domains"][dom.name()] or {}
        stale = snapshots.not_as_planned(entry, dom.UUIDString(), view)
        delete = [n for n in entry.get("delete") or [] if n not in stale]
        return snapshots.flag_planned(delete, entry.get("why")), None, stale
    epoch_time = epoch = None
    if p["ledger_dir"]:
        rec = ledger.read_record(p["ledger_dir"], dom.UUIDString())
        if rec and rec.get("error"):
            raise ValueError("cannot compare with the security epoch: %s" % rec["error"])
        epoch_time, epoch = (rec or {}).get("epoch_time"), (rec or {}).get("epoch")
    unjudged = snapshots.age_unknown(view, now) if p["max_age_hours"] is not None or epoch_time is not None else {}
    flagged = snapshots.flag_by_rules(view, now, p["max_age_hours"], epoch_time, p["allow_memory"], epoch)
    return flagged, p["max_count"], dict((n, why) for n, why in unjudged.items() if n not in flagged)


def work_on(module, dom, version, now):
    """The result entry of one domain, and an error message or None."""
    p = module.params
    view = snapshots.snapshot_view(dom)
    flagged, max_count, stays = flagged_for(p, dom, view, now)
    delete, refused = snapshots.decide(dom.name(), view, flagged, version, max_count, p["pinned"])
    refused.update((n, why) for n, why in stays.items() if n not in delete)
    entry = dict(kept=[], deleted=[], would_delete=[], why=delete, refused=refused)
    err = None
    if p["prune"] and not module.check_mode and delete:
        entry["deleted"], failed = snapshots.prune(view, delete, libvirt.libvirtError)
        entry["refused"].update(failed)
        errors = ["%s: %s" % (n, why) for n, why in sorted(failed.items())]
        try:
            view = snapshots.snapshot_view(dom)  # what stays, as libvirt says after the deletions
        except (libvirt.libvirtError, ValueError, domxml.DomainXMLError) as e:
            # The deletions are made: they are reported (changed) with the error, never lost with the entry.
            view = [s for s in view if s["name"] not in entry["deleted"]]
            errors.append("cannot list its snapshots after the deletion: %s" % (
                e.get_error_message() if hasattr(e, "get_error_message") else e))
        entry["kept"] = sorted(s["name"] for s in view)
        err = "; ".join(errors) or None
    else:
        entry["would_delete"] = snapshots.leaves_first(delete, view)
        entry["kept"] = sorted(s["name"] for s in view if s["name"] not in delete)
    return entry, err


def selected_domains(conn, p, failed):
    if p["domains"] is None:
        return conn.listAllDomains(0)
    out = []
    for name in sorted(p["domains"]):
        try:
            out.append(conn.lookupByName(name))
        except libvirt.libvirtError as e:
            failed[name] = "domain not found" if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN else e.get_error_message()
    return out


def diff_of(result, before):
    lines_before, lines_after = [], []
    for name in sorted(result["domains"]):
        lines_before.append("%s: %s\n" % (name, snapshots.listing(before[name])))
        lines_after.append("%s: %s\n" % (name, snapshots.listing(result["domains"][name]["kept"])))
    return dict(before="".join(lines_before), after="".join(lines_after))


def run(module, conn):
    p = module.params
    result = dict(changed=False, domains={}, failed_domains={})
    version = conn.getLibVersion()
    now = time.time()
    before = {}
    for dom in selected_domains(conn, p, result["failed_domains"]):
        name = dom.name()
        try:
            entry, err = work_on(module, dom, version, now)
        except libvirt.libvirtError as e:
            result["failed_domains"][name] = ("domain vanished while it was read" if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
                                              else e.get_error_message())
            continue
        except (ValueError, domxml.DomainXMLError) as e:
            result["failed_domains"][name] = str(e)
            continue
        before[name] = sorted(set(entry["kept"]) | set(entry["deleted"]) | set(entry["would_delete"]))
        result["domains"][name] = entry
        if err:
            result["failed_domains"][name] = err
        if entry["deleted"] or (module.check_mode and p["prune"] and entry["would_delete"]):
            result["changed"] = True
    if module._diff:
        result["diff"] = diff_of(result, before)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri=dict(type="str", default="qemu:///system"),
            domains=dict(type="dict"),
            max_age_hours=dict(type="int"),
            max_count=dict(type="int"),
            ledger_dir=dict(type="path"),
            allow_memory=dict(type="bool"),
            pinned=dict(type="list", elements="str", default=[]),
            prune=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
        required_one_of=[("domains",) + RULE_PARAMS],
        mutually_exclusive=[("domains", key) for key in RULE_PARAMS],
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"))
    p = module.params
    check_params(module, p)
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="cannot connect to %s: %s" % (p["uri"], e.get_error_message()))
    try:
        result = run(module, conn)
    except libvirt.libvirtError as e:
        module.fail_json(msg="libvirt error: %s" % e.get_error_message(), changed=False)
    finally:
        conn.close()
    if result["failed_domains"]:
        module.fail_json(msg="snapshot_policy failed for %d domain(s): %s" % (
            len(result["failed_domains"]),
            "; ".join("%s: %s" % (n, why) for n, why in sorted(result["failed_domains"].items()))), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
