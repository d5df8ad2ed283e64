# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback ledger: security state a guest reached, kept outside the guest (on the
hypervisor, one file per domain UUID) so a snapshot revert cannot roll it back.

Writes are atomic (temporary file, fsync, rename, fsync of the directory) and the epoch moves in
two phases: ``prepare`` records a pending epoch before the guest is touched, ``commit`` makes it
the epoch after the guest holds it. An interrupted run therefore leaves either the old epoch or
a pending one that the guest may already hold - never a guest that looks rolled back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
import time

SCHEMA = "vmguard.ledger/v1"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _parse(ts):
    return time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def path_for(directory, uuid):
    uuid = (uuid or "").lower()
    if not UUID_RE.match(uuid):
        raise ValueError("not a domain UUID: %r" % uuid)
    return os.path.join(directory, uuid + ".json")


def empty(uuid):
    return {"schema": SCHEMA, "uuid": uuid, "epoch": 0, "epoch_time": None, "pending_epoch": None,
            "last_hardened": None, "retired_fingerprints": [], "disabled_accounts": [], "package_floors": {},
            "masked_services": [], "firewall_digest": None, "events": []}


def load(directory, uuid):
    p = path_for(directory, uuid)
    try:
        with open(p) as f:
            data = json.load(f)
    except (IOError, OSError):
        return empty(uuid.lower())
    out = empty(uuid.lower())
    out.update(data)
    return out


def save(directory, record):
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    p = path_for(directory, record["uuid"])
    tmp = p + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, p)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return p


def apply(record, now, retire=(), epoch=None, hardened=False, event=None):
    """Return (new record, list of changes). ``epoch`` is None, 'prepare' or 'commit'."""
    new = copy.deepcopy(record)
    changes = []
    retired = list(new.get("retired_fingerprints") or [])
    for fp in retire:
        if fp not in retired:
            retired.append(fp)
            changes.append("retired %s" % fp)
    new["retired_fingerprints"] = retired
    if epoch == "prepare" and new.get("pending_epoch") is None:
        new["pending_epoch"] = int(new.get("epoch") or 0) + 1
        changes.append("pending epoch %d" % new["pending_epoch"])
    elif epoch == "commit" and new.get("pending_epoch") is not None:
        new["epoch"] = new["pending_epoch"]
        new["epoch_time"] = int(now)
        new["pending_epoch"] = None
        changes.append("epoch %d" % new["epoch"])
    if hardened:
        # Refreshed when something changed or at most once a day: a harden run that finds nothing
        # to do stays idempotent, and VIS-04 (dormant after 30 days by default) still sees it.
        last = record.get("last_hardened")
        stale = last is None or now - _parse(last) > 86400
        if changes or stale:
            new["last_hardened"] = iso(now)
            changes.append("hardened at %s" % new["last_hardened"])
    if event:
        new.setdefault("events", []).append({"time": iso(now), "event": event})
        changes.append("event %s" % event)
    return new, changes
