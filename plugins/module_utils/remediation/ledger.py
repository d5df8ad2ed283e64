# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback ledger: security state a guest reached, kept outside the guest (on the
hypervisor, one file per domain UUID) so a snapshot revert cannot roll it back.

Writes are atomic (a private temporary file in the ledger directory, fsync, rename, fsync of the
directory: fsutil.atomic_write) and the epoch moves in two phases: ``prepare`` records a pending
epoch before the guest is touched, ``commit`` makes it the epoch after the guest holds it. An interrupted run therefore leaves either the old epoch or
a pending one that the guest may already hold - never a guest that looks rolled back.

Reads never trust the file: a ledger that is not a regular file (a link, a FIFO), larger than
1 MiB, not JSON or of the wrong shape is an error naming the file - never a hang, a traceback,
"never hardened", or a record an update would silently overwrite.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso, parse_iso

SCHEMA = "vmguard.ledger/v1"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def path_for(directory, uuid):
    uuid = (uuid or "").lower()
    if not UUID_RE.match(uuid):
        raise ValueError("not a domain UUID: %r" % uuid)
    return os.path.join(directory, uuid + ".json")


def empty(uuid):
    return {"schema": SCHEMA, "uuid": uuid, "epoch": 0, "epoch_time": None, "pending_epoch": None,
            "last_hardened": None, "retired_fingerprints": [], "disabled_accounts": [], "package_floors": {},
            "masked_services": [], "firewall_digest": None, "events": []}


MAX_BYTES = 1024 * 1024  # a ledger record is a few KiB; anything larger is not one
MAX_EVENTS = 200  # events older than the last MAX_EVENTS are dropped (the file stays bounded)


class LedgerError(ValueError):
    """A ledger file that cannot be trusted; ``str()`` is "<path>: <why>"."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _iso_or_none(v):
    if v is None:
        return True
    if not isinstance(v, str):
        return False
    try:
        parse_iso(v)
    except ValueError:
        return False
    return True


def _event_ok(e):
    """{"time": ISO, "event": str, "detail": object (optional)}."""
    return (isinstance(e, dict) and isinstance(e.get("event"), str) and e.get("time") is not None
            and _iso_or_none(e.get("time")) and isinstance(e.get("detail", {}), dict))


def _quarantine_ok(q):
    """null, or {"since": ISO, "reason": str, "interfaces": [mac], "pending_start": bool}."""
    if q is None:
        return True
    return (isinstance(q, dict) and q.get("since") is not None and _iso_or_none(q.get("since"))
            and isinstance(q.get("reason"), str) and _str_list(q.get("interfaces"))
            and isinstance(q.get("pending_start"), bool))


# key -> (test, what it must be)
SHAPE = (
    ("schema", lambda v: v == SCHEMA, "the string %s" % SCHEMA),
    ("uuid", lambda v: isinstance(v, str) and bool(UUID_RE.match(v.lower())), "a domain UUID"),
    ("epoch", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("epoch_time", lambda v: v is None or ((_is_int(v) or isinstance(v, float)) and v >= 0),
     "null or a time in seconds since the epoch"),
    ("pending_epoch", lambda v: v is None or (_is_int(v) and v >= 0), "null or a non-negative integer"),
    ("last_hardened", _iso_or_none, "null or a UTC time YYYY-MM-DDTHH:MM:SSZ"),
    ("retired_fingerprints", _str_list, "a list of strings"),
    ("disabled_accounts", _str_list, "a list of strings"),
    ("package_floors", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items()), "an object of package: version strings"),
    ("masked_services", _str_list, "a list of strings"),
    ("firewall_digest", lambda v: v is None or isinstance(v, str), "null or a string"),
    ("events", lambda v: isinstance(v, list) and all(_event_ok(e) for e in v),
     'a list of {"time": "YYYY-MM-DDTHH:MM:SSZ", "event": string, "detail": object (optional)}'),
    ("quarantine", _quarantine_ok,
     'null or {"since": "YYYY-MM-DDTHH:MM:SSZ", "reason": string, "interfaces": [mac strings], '
     '"pending_start": true|false}'),
)


def validate(data, uuid):
    """The reason ``data`` (parsed JSON) is not a ledger record of domain ``uuid``, or None."""
    if not isinstance(data, dict):
        return "holds %s, not a JSON object" % type(data).__name__
    for key, test, what in SHAPE:
        if key in data and not test(data[key]):
            return "%s is %s, must be %s" % (key, json.dumps(data[key])[:80], what)
    if "uuid" in data and data["uuid"].lower() != uuid.lower():
        return "records domain %s, not %s" % (data["uuid"], uuid)
    return None


def _read(directory, uuid):
    """The validated record (defaults filled in) or None when there is none; LedgerError else."""
    p = path_for(directory, uuid)
    try:
        raw = fsutil.read_regular(p, MAX_BYTES, missing_ok=True)
    except fsutil.UnsafePathError as e:
        raise LedgerError("%s: unreadable ledger: %s" % (p, e.why))
    except (IOError, OSError) as e:
        raise LedgerError("%s: unreadable ledger: %s" % (p, e.strerror or e))
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError is one
        raise LedgerError("%s: unreadable ledger: not valid JSON (%s)" % (p, e))
    except RecursionError:
        raise LedgerError("%s: unreadable ledger: JSON nested too deeply" % p)
    why = validate(data, uuid)
    if why:
        raise LedgerError("%s: unreadable ledger: not a ledger record: %s" % (p, why))
    out = empty(uuid.lower())
    out.update(data)
    return out


def read_record(directory, uuid):
    """For the audit: None (no record: never hardened), the record, or {"error": "<path>: <why>"}
    for a ledger that is not a regular file, larger than MAX_BYTES, not JSON or of the wrong shape."""
    try:
        return _read(directory, uuid)
    except ValueError as e:  # LedgerError, or a bad UUID from path_for
        return {"error": str(e)}


def load(directory, uuid):
    """For an update: the record, a fresh one when there is none; LedgerError (or ValueError for a
    bad UUID) when the file cannot be trusted - it is never silently replaced."""
    rec = _read(directory, uuid)
    return empty(uuid.lower()) if rec is None else rec


def save(directory, record):
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    p = path_for(directory, record["uuid"])
    return fsutil.atomic_write(p, json.dumps(record, indent=2, sort_keys=True) + "\n", 0o600)


KEEP = object()  # apply(quarantine=KEEP): leave the quarantine field as it is


def add_event(record, now, event, detail=None):
    """Append ``event`` (with its ``detail`` object) to ``record`` in place, keeping the last MAX_EVENTS."""
    entry = {"time": iso(now), "event": event}
    if detail is not None:
        entry["detail"] = detail
    events = list(record.get("events") or []) + [entry]
    record["events"] = events[-MAX_EVENTS:]


def quarantine_state(now, reason, interfaces, pending_start, since=None):
    """A quarantine field value (see the ledger contract)."""
    return {"since": since or iso(now), "reason": reason, "interfaces": list(interfaces),
            "pending_start": bool(pending_start)}


def apply(record, now, retire=(), epoch=None, hardened=False, event=None, detail=None, quarantine=KEEP):
    """Return (new record, list of changes). ``epoch`` is None, 'prepare' or 'commit'; ``event`` is
    appended with ``detail`` (the events stay bounded to MAX_EVENTS); ``quarantine`` (None or a value
    of quarantine_state()) replaces the quarantine field, KEEP leaves it."""
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
        stale = last is None or now - parse_iso(last) > 86400
        if changes or stale:
            new["last_hardened"] = iso(now)
            changes.append("hardened at %s" % new["last_hardened"])
    if quarantine is not KEEP and quarantine != new.get("quarantine"):
        new["quarantine"] = quarantine
        changes.append("quarantine %s" % ("lifted" if quarantine is None else "set on %s%s" % (
            ", ".join(quarantine["interfaces"]) or "no interface",
            " (from the next start)" if quarantine["pending_start"] else "")))
    if event:
        add_event(new, now, event, detail)
        changes.append("event %s" % event)
    return new, changes
