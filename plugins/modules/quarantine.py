#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: quarantine
short_description: Put a libvirt domain in network quarantine, or lift the quarantine the revert watcher put it in
version_added: "0.1.0"
description:
  - A quarantined domain has link state down on its interfaces that are not on a management network,
    in the live definition (when it runs) and in the persistent one (when it has one). The revert
    watcher (RB-11) quarantines a domain that libvirt reverted to a snapshot or restored from a save
    file, and records it in the domain's ledger record (field C(quarantine)).
  - The ledger's quarantine records, per interface, the definitions (C(live), C(config)) in which the
    quarantine changed the link from up to down (C(links)); a link that was down already (set down by an
    operator, or down in the reverted-to definition) is not recorded.
  - O(state=lifted) brings back up exactly the links the quarantine took down, in the definitions it took
    them down in (the live ones only while the domain runs; a domain started from the quarantine's persistent
    definition counts its live links too), clears the ledger's quarantine and records a C(lift) event. A link
    that was down before the quarantine stays down. A quarantine recorded before vmguard.hardening 0.2.4 (no
    C(links)) brings up its C(interfaces) in both definitions. The guest role uses it once the guest is back at
    the security state of the ledger. A domain without a quarantine in its ledger is left alone
    (C(changed=false)), whatever its link states.
  - O(state=present) quarantines the domain now (link down on every interface not on O(mgmt_networks))
    and records it as the watcher does; a domain that is not running gets a quarantine that takes effect
    from its next start (C(pending_start)).
  - A C(hostdev) (SR-IOV) interface is never touched - libvirt cannot change its link state - and is not
    among the quarantined interfaces.
  - Links are set one interface and one definition at a time, live first. When libvirt refuses one part way,
    the module fails with C(changed=true) and RV(changes) naming the links already set; with O(state=present)
    the ledger records the links taken down so far, with O(state=lifted) the quarantine stays in the ledger
    (running the lift again finishes it).
  - The ledger record is written atomically; a ledger file that cannot be trusted (a link, too large,
    not a record) fails the module and is never replaced.
  - The record's lock (C(<ledger_dir>/<uuid>.lock), an exclusive flock the revert watcher and the ledger module
    take too) is held from reading the record to writing it, so an event the watcher records meanwhile is not lost.
    A lock that is a symbolic link, or held by another writer for 30 seconds, fails the module before any link is touched.
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - libvirt-python
options:
  state:
    description: V(lifted) lifts the recorded quarantine, V(present) quarantines the domain.
    type: str
    choices: [lifted, present]
    default: lifted
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  domain:
    description: Name of the libvirt domain.
    type: str
    required: true
  uuid:
    description:
      - The domain UUID the caller expects (the plan's ledger record). When given and O(domain) now has another
        UUID (the domain was undefined and defined again meanwhile), the module fails and touches nothing.
    type: str
  since:
    description:
      - With O(state=lifted), the start time (ISO 8601, the ledger's C(quarantine.since)) of the quarantine the
        caller decided to lift, as its audit saw it. When the ledger now holds a quarantine that started at
        another time, or records a revert or restore after that time (the domain was reverted or restored
        again after that audit; the revert watcher gives every new revert's quarantine a new start time), the
        module fails and the links stay down.
    type: str
  ledger_dir:
    description: Ledger directory (one record per domain UUID).
    type: path
    default: /var/lib/vmguard/ledger
  mgmt_networks:
    description:
      - Management networks (libvirt network names or host bridge names) whose interfaces are never
        quarantined (with O(state=present)).
      - With O(state=lifted) the links the ledger records as taken down are the ones brought up, wherever they are.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
"""

EXAMPLES = r"""
- name: RB-05, RB-06, RB-07, RB-08, RB-09, RB-10 | ENFORCE | Lift the revert quarantine once the guest is reconverged
  vmguard.hardening.quarantine:
    domain: "{{ vmguard_domain }}"
    state: lifted
  delegate_to: "{{ vmguard_hypervisor }}"

- name: RB-11 | ENFORCE | Quarantine a domain by hand, keeping its management link
  vmguard.hardening.quarantine:
    domain: web1
    state: present
    mgmt_networks: [mgmt]
"""

RETURN = r"""
uuid:
  description: The domain's UUID (the ledger record's name).
  returned: success
  type: str
  sample: 0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10
interfaces:
  description:
    - The interfaces acted on, by MAC address, with their link state before and after.
    - C(null) where the definition was not touched, for example the live one of a domain that is not running.
  returned: success
  type: dict
  sample:
    "52:54:00:12:34:56": {before: {live: down, config: down}, after: {live: up, config: up}}
quarantine:
  description:
    - The ledger's quarantine after the run (C(null) when none) - C(since), C(reason), C(interfaces), C(pending_start)
      and C(links), the definitions in which it took each link down.
  returned: success
  type: dict
  sample: {since: "2026-11-18T10:00:00Z", reason: "revert (STARTED/FROM_SNAPSHOT)", interfaces: ["52:54:00:12:34:56"],
           pending_start: false, links: {"52:54:00:12:34:56": [live, config]}}
changes:
  description:
    - What changed (link states and ledger updates); on a failure part way, what was changed before it
      (C(changed) is then true).
  returned: always
  type: list
  elements: str
path:
  description: The ledger file.
  returned: success
  type: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import quarantine as qr

try:
    import libvirt
    HAS_LIBVIRT = True
except ImportError:
    HAS_LIBVIRT = False


class NewerQuarantine(Exception):
    """The ledger's quarantine is not the one the caller decided to lift (a newer revert meanwhile)."""


PAST = {"revert": "reverted", "restore": "restored"}


def reverts_after(rec, since):
    """The revert/restore events strictly later than ``since`` (None: none are looked for). The watcher gives a
    new revert's quarantine a new since; a record written by an older watcher kept the first one, so a later
    revert shows only here."""
    if not since:
        return []
    t0 = parse_iso(since)
    return [e for e in rec.get("events") or [] if e.get("event") in ledger.REVERT_EVENTS and parse_iso(e["time"]) > t0]


def set_each(dom, state, targets, check):
    """Set link ``state`` on each (scope, mac) of ``targets`` in turn (live ones first, as given): one interface
    and one definition per libvirt call, so a failure part way still tells what was changed before it. Returns
    ({"live": [mac], "config": [mac]} changed - in check mode, what would be -, the error that stopped it or None)."""
    done = {"live": [], "config": []}
    for scope, mac in targets:
        try:
            result = qr.set_links(dom, [], state, live=scope == "live", config=scope == "config", macs=[mac],
                                  check=check)
        except libvirt.libvirtError as e:
            why = e.get_error_message() or str(e)
            return done, "%s link of %s: %s" % ("live" if scope == "live" else "persistent", mac, why)
        done[scope].extend(result[scope])
    return done, None


def _changes(word, done):
    return ["link %s %s on %s" % (word, scope, mac) for scope in qr.SCOPES for mac in done[scope]]


def lift(dom, rec, check, since=None):
    """(ledger update arguments or None, changes, MACs acted on, error or None) for state=lifted. With ``since``,
    only the quarantine that started then is lifted: one the watcher put after the audit is kept. Only the links
    the quarantine took down come up, in the definitions it took them down in (quarantine.taken_down); a link
    that was down before stays down. After a failure part way the quarantine stays in the ledger."""
    q = rec.get("quarantine")
    if not q:
        return None, [], [], None
    if since and q.get("since") != since:
        raise NewerQuarantine("the ledger's quarantine started at %s (%s), not at %s as in the audit this run "
                              "acted on: a revert or restore after that audit; the links stay down, run harden again"
                              % (q.get("since"), q.get("reason"), since))
    later = reverts_after(rec, since)
    if later:
        raise NewerQuarantine("the domain was %s at %s, after the quarantine this run acted on started (%s); the links "
                              "stay down, run harden again" % (
                                  " and ".join(sorted(set(PAST.get(e["event"], e["event"]) for e in later))),
                                  ", ".join(e["time"] for e in later), since))
    active, persistent = bool(dom.isActive()), bool(dom.isPersistent())
    held = qr.held_links(q)
    if active and q.get("pending_start"):
        # Started while no watcher recorded it: its live links came from the quarantine's persistent definition.
        held = dict((m, s | {"live"} if "config" in s else s) for m, s in held.items())
    targets = [(scope, mac) for scope, wanted in (("live", active), ("config", persistent)) if wanted
               for mac in sorted(held) if scope in held[mac]]
    done, error = set_each(dom, qr.UP, targets, check)
    macs = sorted(held)
    if error:
        return None, _changes("up", done), macs, error
    scopes = set(s for s, _m in targets)
    detail = {"interfaces": macs, "live": "live" in scopes, "config": "config" in scopes}
    return dict(event="lift", detail=detail, quarantine=None), _changes("up", done), macs, None


def put(dom, rec, mgmt, now, check):
    """(ledger update arguments or None, changes, MACs acted on, error or None) for state=present. The ledger
    records the links changed from up to down (also those changed before a failure part way)."""
    active, persistent = bool(dom.isActive()), bool(dom.isPersistent())
    targets, chosen = [], {"live": [], "config": []}
    for scope, wanted, flags in (("live", active, 0), ("config", persistent, qr.XML_INACTIVE)):
        if wanted:
            todo, chosen[scope], _unusable = qr.plan(dom.XMLDesc(flags), mgmt, qr.DOWN)
            targets.extend((scope, mac) for mac, _xml in todo)
    done, error = set_each(dom, qr.DOWN, targets, check)
    macs = sorted(set(chosen["live"]) | set(chosen["config"]))
    changes = _changes("down", done)
    prev = rec.get("quarantine") or {}
    links = qr.taken_down(prev, done)
    q = ledger.quarantine_state(now, prev.get("reason") or "quarantined by vmguard.hardening.quarantine", sorted(links),
                                not active, since=prev.get("since"), links=links)
    if not changes and prev == q:
        return None, [], macs, error
    detail = {"interfaces": macs, "live": bool(chosen["live"]), "config": bool(chosen["config"])}
    return dict(event="quarantine", detail=detail, quarantine=q), changes, macs, error


def run(module, conn):
    p = module.params
    try:
        dom = conn.lookupByName(p["domain"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="domain: %s: %s" % (p["domain"], e.get_error_message()), changes=[])
    uuid = dom.UUIDString()
    if p["uuid"] and p["uuid"].lower() != uuid.lower():
        module.fail_json(msg="domain %s has UUID %s, not %s: it was replaced since the audit; nothing touched" % (
            p["domain"], uuid, p["uuid"]), changes=[])
    path = ledger.path_for(p["ledger_dir"], uuid)
    if module.check_mode:  # reads only: no lock file (nor ledger directory) is created
        return change(module, dom, uuid, path)
    try:
        # Held from the read to the write, link changes included: the revert watcher recording an event
        # on this record meanwhile waits, and neither update is lost.
        with ledger.locked(p["ledger_dir"], uuid):
            return change(module, dom, uuid, path)
    except ledger.LedgerError as e:  # the lock is a link, or another writer held it too long
        module.fail_json(msg="ledger not updated, no link touched: %s" % e, changes=[])


def change(module, dom, uuid, path):
    """Read the record, set the links, write the record (the caller holds the lock, but in check mode)."""
    p = module.params
    try:
        before = ledger.load(p["ledger_dir"], uuid)
    except ValueError as e:
        module.fail_json(msg="ledger not updated, no link touched: %s" % e, changes=[])
    now = time.time()
    try:
        if p["state"] == "lifted":
            update, changes, macs, error = lift(dom, before, module.check_mode, p["since"])
        else:
            update, changes, macs, error = put(dom, before, p["mgmt_networks"], now, module.check_mode)
    except libvirt.libvirtError as e:  # reading the domain's definitions: nothing changed yet
        module.fail_json(msg="domain %s: cannot set its link states: %s" % (p["domain"], e.get_error_message()),
                         changes=[])
    except NewerQuarantine as e:
        module.fail_json(msg="domain %s: not lifted: %s" % (p["domain"], e), changes=[])
    after = before
    if update is not None:
        after, ledger_changes = ledger.apply(before, now, **update)
        changes = changes + ["ledger: %s" % c for c in ledger_changes]
    if update is not None and not module.check_mode:
        try:
            ledger.save(p["ledger_dir"], after)
        except (OSError, IOError, ValueError) as e:
            module.fail_json(msg="links set but the ledger %s cannot be written: %s" % (path, e), changes=changes,
                             changed=bool(changes))
    if error:
        # What was changed before the failure is reported as changed: a half-set domain must not show as unchanged.
        module.fail_json(msg="domain %s: cannot set its link states: %s; %s" % (
            p["domain"], error, partial_outcome(p["state"], changes, after.get("quarantine"))),
            changes=changes, changed=bool(changes), quarantine=after.get("quarantine"))
    try:
        states = qr.link_states(dom, macs, bool(dom.isActive()), bool(dom.isPersistent()))
    except libvirt.libvirtError as e:
        module.fail_json(msg="domain %s: links set but their states cannot be read back: %s" % (
            p["domain"], e.get_error_message()), changes=changes, changed=bool(changes))
    return dict(changed=bool(changes), changes=changes, uuid=uuid, path=path, quarantine=after.get("quarantine"),
                interfaces=interfaces_report(states, p["state"], module.check_mode, changes)), before, after


def partial_outcome(state, changes, quarantine):
    """What a failure part way left: the links changed before it and the ledger's quarantine."""
    links = [c for c in changes if not c.startswith("ledger: ")]
    done = "changed before the failure: %s" % ", ".join(links) if links else "no link was changed"
    if state == "lifted":
        return done + "; the ledger keeps the quarantine (run the lift again)"
    return done + ("; the ledger records the quarantine of the links taken down" if quarantine else "")


def interfaces_report(states, state, check, changes):
    """{mac: {before, after}}: ``states`` is read after the run (in check mode: the state before)."""
    want = qr.UP if state == "lifted" else qr.DOWN
    out = {}
    for mac, now in states.items():
        changed = dict((s, "link %s %s on %s" % ("up" if want == qr.UP else "down", s, mac) in changes)
                       for s in ("live", "config"))
        other = qr.DOWN if want == qr.UP else qr.UP
        if check:
            after = dict((s, want if changed[s] else now[s]) for s in now)
            before = now
        else:
            after = now
            before = dict((s, other if changed[s] else now[s]) for s in now)
        out[mac] = dict(before=before, after=after)
    return out


def diff_view(record, interfaces, key):
    return json.dumps(dict(quarantine=record.get("quarantine"), links=dict(
        (mac, v[key]) for mac, v in interfaces.items())), indent=2, sort_keys=True) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["lifted", "present"], default="lifted"),
            uri=dict(type="str", default="qemu:///system"),
            domain=dict(type="str", required=True),
            uuid=dict(type="str"),
            since=dict(type="str"),
            ledger_dir=dict(type="path", default="/var/lib/vmguard/ledger"),
            mgmt_networks=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"))
    try:
        conn = libvirt.open(module.params["uri"])
    except libvirt.libvirtError as e:
        module.fail_json(msg="uri: cannot connect to %s: %s" % (module.params["uri"], e.get_error_message()))
    try:
        result, before, after = run(module, conn)
    finally:
        conn.close()
    if module._diff and result["changed"]:
        result["diff"] = dict(before=diff_view(before, result["interfaces"], "before"),
                              after=diff_view(after, result["interfaces"], "after"),
                              before_header=result["path"], after_header=result["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
