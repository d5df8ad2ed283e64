# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot pruning (RB-02, RB-03, RB-04, RB-13): what the snapshot_policy module decides and does.

Which snapshots go is decided by audit/plan.choose_snapshots, the function the planner uses, on what
libvirt says now: never the current snapshot, never a pinned one, never a parent whose children
stay (children are deleted first, parents after), and never an external snapshot where libvirt
cannot delete one (before 9.7 it would drop the metadata only and leave the overlay chain behind).
Deletion uses no flag: never VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN (which would take snapshots
nobody chose) nor _METADATA_ONLY (which would lose track of data).

The libvirt objects are used through their methods only (listAllSnapshots, getXMLDesc, isCurrent,
delete), so the logic runs on any driver, the test driver included.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.plan import choose_snapshots
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import CLOCK_SKEW_SECONDS, ahead, iso
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml

# libvirt deletes external snapshots (merging their overlays) from 9.7.0 on.
EXTERNAL_DELETE_VERSION = 9007000
MEMORY_KINDS = ("internal", "external")


def version_text(version):
    return "%d.%d.%d" % (version // 1000000, version // 1000 % 1000, version % 1000)


def is_external(xml_text):
    """Whether a snapshot's XML keeps its memory or any disk outside the image (snapshot='external')."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise domxml.DomainXMLError("malformed snapshot XML: %s" % e)
    mem = root.find("memory")
    if mem is not None and mem.get("snapshot") == "external":
        return True
    return any(d.get("snapshot") == "external" for d in root.findall("disks/disk"))


def snapshot_view(dom):
    """[{name, creation_time, state, memory, parent, current, external, handle}] for the snapshots of
    libvirt domain ``dom``, as libvirt reports them now (current from snapshot.isCurrent())."""
    out = []
    for s in dom.listAllSnapshots(0):
        xml = s.getXMLDesc(0)
        snap = domxml.parse_snapshot(xml)
        snap.update(current=bool(s.isCurrent()), external=is_external(xml), handle=s)
        out.append(snap)
    return sorted(out, key=lambda s: (s["creation_time"] is None, s["creation_time"] or 0, s["name"]))


def external_refusal(version):
    """A refuse(snapshot) function for choose_snapshots: external snapshots stay before libvirt 9.7."""
    if version >= EXTERNAL_DELETE_VERSION:
        return None

    def refuse(snap):
        if snap.get("external"):
            return "cannot prune an external snapshot with this libvirt (%s; needs %s): it would delete the " \
                   "metadata only" % (version_text(version), version_text(EXTERNAL_DELETE_VERSION))
        return None
    return refuse


def age_unknown(view, now):
    """{name: why} of the snapshots RB-02 and RB-04 cannot judge: no creation time, or one more than
    CLOCK_SKEW_SECONDS ahead of ``now`` (the audit reports both as errors). They are never flagged by age."""
    out = {}
    for s in view:
        ct = s.get("creation_time")
        if ct is None:
            out[s["name"]] = "no creation time: its age cannot be judged (RB-02, RB-04)"
        elif ahead(ct, now):
            out[s["name"]] = "creation time %s is %.0fh in the future (more than %ds of clock skew): its age cannot " \
                             "be judged (RB-02, RB-04)" % (iso(ct), ahead(ct, now) / 3600.0, CLOCK_SKEW_SECONDS)
    return out


def flag_by_rules(view, now, max_age_hours=None, epoch_time=None, allow_memory=None, epoch=None):
    """{name: [why]} of what RB-02 (older than ``max_age_hours``), RB-04 (created before the ledger's
    ``epoch_time``) and RB-13 (memory state, unless ``allow_memory``) want gone; None disables a rule.
    A snapshot without a creation time, or with one in the future (age_unknown), is not judged by age
    (the audit reports it as an error)."""
    flagged = {}
    unknown = age_unknown(view, now)
    for s in view:
        ct, why = (None if s["name"] in unknown else s.get("creation_time")), []
        if max_age_hours is not None and ct is not None and (now - ct) / 3600.0 > max_age_hours:
            why.append("RB-02 older than %dh (%.0fh)" % (max_age_hours, (now - ct) / 3600.0))
        if epoch_time is not None and ct is not None and ct < epoch_time:
            why.append("RB-04 older than security epoch %s" % (epoch if epoch is not None else "of the ledger"))
        if allow_memory is False and s.get("memory") in MEMORY_KINDS:
            why.append("RB-13 memory-state snapshot")
        if why:
            flagged[s["name"]] = why
    return flagged


def flag_planned(delete, why):
    """{name: [why]} for the snapshots a plan entry names (``delete`` list, ``why`` map)."""
    return dict((n, [(why or {}).get(n) or "planned"]) for n in delete or [])


def not_as_planned(entry, uuid, view):
    """{name: why} of the snapshots a plan entry names that are no longer the ones the audit judged, so they
    stay: every one when the domain's ``uuid`` is not the entry's (the domain was undefined and another defined
    under its name), else each whose creation time differs from the entry's ``created`` (deleted and taken
    again under the same name, as a rotating 'nightly' is). A plan entry without ``uuid`` or a snapshot without
    ``created`` is not compared (a caller that names snapshots by hand)."""
    delete = entry.get("delete") or []
    want = entry.get("uuid")
    if want and str(want).lower() != uuid.lower():
        return dict((n, "not deleted: the domain now has UUID %s, not %s as audited (it was replaced since the "
                        "audit)" % (uuid, want)) for n in delete)
    created = entry.get("created") or {}
    now_ct = dict((s["name"], s.get("creation_time")) for s in view)
    out = {}
    for n in delete:
        if n in created and n in now_ct and now_ct[n] != created[n]:
            out[n] = "not deleted: re-created since the audit (created %s; the audit judged the one created %s)" % (
                _when(now_ct[n]), _when(created[n]))
    return out


def _when(ct):
    return iso(ct) if isinstance(ct, (int, float)) and not isinstance(ct, bool) else "at an unknown time"


def leaves_first(names, view):
    """``names`` ordered so that every snapshot comes before its parent (deepest first, then by name)."""
    parent = dict((s["name"], s.get("parent")) for s in view)

    def depth(n):
        d, seen = 0, set()
        while parent.get(n) and n not in seen:
            seen.add(n)
            n, d = parent[n], d + 1
        return d
    return sorted(names, key=lambda n: (-depth(n), n))


def decide(domain, view, flagged, version, max_count=None, pinned=()):
    """(delete {name: why}, refused {name: reason}) for one domain on a libvirt of ``version``."""
    return choose_snapshots(domain, view, flagged, max_count=max_count, pinned=pinned,
                            refuse=external_refusal(version))


def prune(view, delete, error_class):
    """Delete the snapshots named in ``delete`` (leaves first). Returns (deleted names, {name: error}).

    A snapshot whose deletion fails keeps its parents: those are not tried (they would have a child
    that stays)."""
    by_name = dict((s["name"], s) for s in view)
    deleted, failed, blocked = [], {}, set()
    for name in leaves_first(delete, view):
        if name in blocked:
            failed[name] = "not deleted: a child snapshot could not be deleted"
        else:
            try:
                by_name[name]["handle"].delete(0)
                deleted.append(name)
                continue
            except error_class as e:
                failed[name] = "libvirt could not delete it: %s" % (e.get_error_message() if hasattr(e, "get_error_message") else e)
        p = by_name[name].get("parent")
        while p:
            blocked.add(p)
            p = (by_name.get(p) or {}).get("parent")
    return deleted, failed


def listing(names):
    return ", ".join(sorted(names)) if names else "(none)"
