#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ledger
short_description: Update a domain's rollback ledger record on its hypervisor
version_added: "0.1.0"
description:
  - The ledger keeps the security state a guest reached outside the guest, one JSON file per
    domain UUID (mode 0600, root) on the hypervisor, so a snapshot revert cannot roll it back.
    The audit reads it (RB-04..RB-10, VIS-04).
  - Adds retired SSH host key fingerprints, records the security state a hardening reached (package
    floors, disabled accounts, masked services, firewall digest), moves the epoch in two phases
    (V(prepare) before the guest is changed, V(commit) after), and records the last successful hardening.
  - Writes are atomic (a private temporary file in the ledger directory, fsync, rename). Changes
    nothing when there is nothing new.
  - The read-modify-write holds the record's lock (C(<dir>/<uuid>.lock), an exclusive flock the revert
    watcher and the quarantine module take too), so an event the watcher records meanwhile is never lost.
    Fails, writing nothing, when the lock is a symbolic link or another writer holds it for 30 seconds.
  - A V(commit) after the revert watcher recorded a snapshot revert or a restore of the domain since the
    V(prepare), or one the caller's audit did not see (O(seen_reverts)), commits the epoch (so the next audit
    compares the guest with it, and RB-05 fails a guest at that epoch) but does not record the hardening; it records
    a C(revert_during_run) event and fails.
  - Fails, and leaves the file alone, when the existing ledger is not a regular file (a symbolic
    link, a FIFO), is larger than 1 MiB, is not JSON, or does not have the shape of a record.
author:
  - vmguard.hardening developers (@vmguard)
options:
  uuid:
    description: Domain UUID.
    type: str
    required: true
  dir:
    description: Ledger directory.
    type: path
    default: /var/lib/vmguard/ledger
  retire_fingerprints:
    description: SSH host key fingerprints taken out of use (RB-06 reports them if they come back).
    type: list
    elements: str
    default: []
  epoch:
    description:
      - V(prepare) records a new pending epoch, V(commit) makes the pending epoch current.
      - A V(prepare) that finds the pending epoch of an earlier, interrupted run abandons it and records the next
        number with a new C(pending_since) - an epoch number is never reused, since the guest (or a snapshot taken
        since) may hold the abandoned one with that run's partial state.
    type: str
    choices: [prepare, commit]
  record:
    description:
      - The security state the guest reached, merged into the record (RB-07..RB-10 compare the guest with it).
        Every key is optional; an unknown key or a value of the wrong shape fails before anything is read.
      - C(package_floors) (object package -> installed version) - floors only move up (Debian version order);
        a package not named keeps its floor.
      - C(disabled_accounts), C(masked_services) (lists of names) replace the recorded lists.
      - C(firewall_digest) (SHA-256 hex of the ruleset, or null) replaces the recorded digest; null keeps it.
    type: dict
  seen_reverts:
    description:
      - With O(epoch=commit), the times (C(YYYY-MM-DDTHH:MM:SSZ)) of the revert and restore events in the ledger
        record the caller's audit read (the plan's C(ledger.seen_reverts)); V([]) when it held none. A revert or
        restore event the record holds beyond these happened after that audit, so the run acted on a guest the
        audit did not see - the commit fails as for a revert after the V(prepare).
      - Not given, only the reverts since the V(prepare) count.
    type: list
    elements: str
  hardened:
    description: Record a successful hardening run now (refreshed at most daily when nothing else changes).
    type: bool
    default: false
  event:
    description: Append an event (for example C(reconverge)) with the current time.
    type: str
  detail:
    description: The event's detail object (with O(event)).
    type: dict
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
"""

EXAMPLES = r"""
- name: RB-05 | ENFORCE | Record the state reached and a pending epoch
  vmguard.hardening.ledger:
    uuid: "{{ domain_uuid }}"
    epoch: prepare
    record:
      package_floors: {openssl: "3.0.15-1~deb12u1"}
      disabled_accounts: [games]
      masked_services: [telnet.socket]
      firewall_digest: null
  delegate_to: "{{ vmguard_hypervisor }}"
  register: ledger_prepared

- name: DIV-02 | ENFORCE | Retire the rotated host keys in the ledger
  vmguard.hardening.ledger:
    uuid: "{{ domain_uuid }}"
    retire_fingerprints: "{{ reseal.retired_fingerprints }}"
    hardened: true
  delegate_to: "{{ vmguard_hypervisor }}"
"""

RETURN = r"""
record:
  description: The ledger record after the update (in check mode, as it would be).
  returned: always
  type: dict
changes:
  description: What changed.
  returned: always
  type: list
  elements: str
path:
  description: The ledger file.
  returned: always
  type: str
pending_epoch:
  description: The pending epoch after the update (what the guest's epoch file gets between V(prepare) and V(commit)), or null.
  returned: always
  type: int
epoch:
  description: The ledger's epoch after the update.
  returned: always
  type: int
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger


PAST = {"revert": "reverted", "restore": "restored"}


def update(module, path):
    """Load, change and save the record (the caller holds its lock); the module's result."""
    p = module.params
    try:
        before = ledger.load(p["dir"], p["uuid"])
    except ValueError as e:  # a ledger file that cannot be trusted: never overwritten
        module.fail_json(msg="ledger not updated: %s" % e)
    hardened, event, detail = p["hardened"], p["event"], p["detail"]
    reverts = reverts_in_run(before, p.get("seen_reverts")) if p["epoch"] == "commit" else []
    if reverts and before.get("pending_epoch") is not None:
        # A snapshot revert or restore landed after this run's audit or its prepare: the guest may be the
        # reverted one. The epoch is committed (the next audit compares the guest with it: RB-05 fails a guest
        # behind it, and one at it because of this event), the hardening is not recorded, and the run fails.
        hardened, event = False, "revert_during_run"
        detail = {"epoch": before["pending_epoch"], "prepared": before.get("pending_since"),
                  "reverts": [dict(time=e["time"], event=e["event"]) for e in reverts]}
    try:
        after, changes = ledger.apply(before, time.time(), retire=p["retire_fingerprints"], epoch=p["epoch"],
                                      hardened=hardened, event=event, detail=detail, update=p["record"],
                                      compare=debversion.compare)
    except ValueError as e:  # a floor that is no Debian version: nothing written
        module.fail_json(msg="ledger not updated: %s" % e)
    result = dict(changed=bool(changes), changes=changes, record=after, path=path,
                  epoch=after["epoch"], pending_epoch=after["pending_epoch"])
    if module._diff and changes:
        result["diff"] = dict(before=json.dumps(before, indent=2, sort_keys=True) + "\n",
                              after=json.dumps(after, indent=2, sort_keys=True) + "\n",
                              before_header=path, after_header=path)
    if changes and not module.check_mode:
        try:
            ledger.save(p["dir"], after)
        except (OSError, IOError, ValueError) as e:
            module.fail_json(msg="cannot write the ledger %s: %s" % (path, e), changes=changes)
    if reverts and event == "revert_during_run":
        what = " and ".join(sorted(set(PAST[e["event"]] for e in reverts)))
        module.fail_json(msg="epoch %d committed but the hardening is not recorded: the domain was %s at %s, after "
                         "the audit this run acted on or after it prepared the epoch (%s); the next audit compares the "
                         "guest with the ledger (RB-05) - run harden again" % (
                             detail["epoch"], what, ", ".join(e["time"] for e in reverts), detail["prepared"]),
                         **result)
    return result


def reverts_in_run(record, seen):
    """The revert/restore events since the pending epoch's prepare and, with ``seen`` (the caller's audit saw
    those), the ones that audit did not see; in the record's order."""
    found = ledger.reverts_since(record, record.get("pending_since"))
    if seen is not None:
        found = found + ledger.unseen_reverts(record, seen)
    ids = set(id(e) for e in found)
    return [e for e in record.get("events") or [] if id(e) in ids]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uuid=dict(type="str", required=True),
            dir=dict(type="path", default="/var/lib/vmguard/ledger"),
            retire_fingerprints=dict(type="list", elements="str", default=[]),
            epoch=dict(type="str", choices=["prepare", "commit"]),
            record=dict(type="dict"),
            seen_reverts=dict(type="list", elements="str"),
            hardened=dict(type="bool", default=False),
            event=dict(type="str"),
            detail=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        path = ledger.path_for(p["dir"], p["uuid"])
    except ValueError as e:
        module.fail_json(msg="uuid: %s" % e)
    bad = [t for t in p["seen_reverts"] or [] if not ledger.is_iso(t)]
    if bad:
        module.fail_json(msg="ledger not updated: seen_reverts: %r is not a UTC time YYYY-MM-DDTHH:MM:SSZ" % bad[0])
    if p["record"] is not None:
        why = ledger.check_record(p["record"])
        if why:
            module.fail_json(msg="ledger not updated: %s" % why)
    if module.check_mode:  # reads only: no lock file (nor ledger directory) is created
        module.exit_json(**update(module, path))
    try:
        with ledger.locked(p["dir"], p["uuid"]):  # the watcher may record an event meanwhile: nothing is lost
            result = update(module, path)
    except ValueError as e:  # LedgerError: the lock is a link, or held too long by another writer
        module.fail_json(msg="ledger not updated: %s" % e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
