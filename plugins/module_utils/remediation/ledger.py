# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback ledger: security state a guest reached, kept outside the guest (on the
hypervisor, one file per domain UUID) so a snapshot revert cannot roll it back.

Writes are atomic (a private temporary file in the ledger directory, fsync, rename, fsync of the
directory: fsutil.atomic_write) and the epoch moves in two phases: ``prepare`` records a pending
epoch before the guest is touched, ``commit`` makes it the epoch after the guest holds it. An interrupted
run therefore leaves either the old epoch or a pending one that the guest may already hold - never a guest
that looks rolled back. Every prepare takes a new number (a pending epoch of an interrupted run is
abandoned, never reused), so a guest that holds an abandoned one is behind once a later run commits.

Reads never trust the file: a ledger that is not a regular file (a link, a FIFO), larger than
1 MiB, not JSON or of the wrong shape is an error naming the file - never a hang, a traceback,
"never hardened", or a record an update would silently overwrite.

Every read-modify-write of a record (the ledger and quarantine modules, the revert watcher, the start
gate's hook) holds the record's lock, ``with locked(directory, uuid):``, an exclusive flock on
``<directory>/<uuid>.lock``: a watcher event landing during a harden is never lost. Readers do not lock
(the rename makes every read see a whole record).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import copy
import errno
import fcntl
import json
import os
import re
import stat
import time

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


def is_iso(v):
    """Whether ``v`` is a UTC time as the ledger writes them (YYYY-MM-DDTHH:MM:SSZ)."""
    try:
        parse_iso(v)
    except ValueError:
        return False
    return True


def _iso_or_none(v):
    return v is None or is_iso(v)


def _event_ok(e):
    """{"time": ISO, "event": str, "detail": object (optional)}."""
    return (isinstance(e, dict) and isinstance(e.get("event"), str) and e.get("time") is not None
            and _iso_or_none(e.get("time")) and isinstance(e.get("detail", {}), dict))


LINK_SCOPES = ("live", "config")


def _links_ok(v):
    """{mac: ["live" and/or "config"]}: the definitions in which the quarantine took each link down."""
    return isinstance(v, dict) and all(isinstance(k, str) and _str_list(s) and s and set(s) <= set(LINK_SCOPES)
                                       and len(set(s)) == len(s) for k, s in v.items())


def _quarantine_ok(q):
    """null, or {"since": ISO, "reason": str, "interfaces": [mac], "pending_start": bool, "links" (optional):
    {mac: [scope]}}; a record from before 0.2.4 has no links."""
    if q is None:
        return True
    return (isinstance(q, dict) and q.get("since") is not None and _iso_or_none(q.get("since"))
            and isinstance(q.get("reason"), str) and _str_list(q.get("interfaces"))
            and isinstance(q.get("pending_start"), bool) and ("links" not in q or _links_ok(q["links"])))


# key -> (test, what it must be)
SHAPE = (
    ("schema", lambda v: v == SCHEMA, "the string %s" % SCHEMA),
    ("uuid", lambda v: isinstance(v, str) and bool(UUID_RE.match(v.lower())), "a domain UUID"),
    ("epoch", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("epoch_time", lambda v: v is None or ((_is_int(v) or isinstance(v, float)) and v >= 0),
     "null or a time in seconds since the epoch"),
    ("pending_epoch", lambda v: v is None or (_is_int(v) and v >= 0), "null or a non-negative integer"),
    ("pending_since", _iso_or_none, "null or a UTC time YYYY-MM-DDTHH:MM:SSZ"),
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
     '"pending_start": true|false, "links": {mac: ["live" and/or "config"]} (optional)}'),
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


LOCK_TIMEOUT = 30.0  # seconds a writer waits for a record's lock (a writer holds it for milliseconds to seconds)


class LockTimeout(LedgerError):
    """The record's lock was not obtained in time; ``str()`` is "<lock path>: <why>"."""


def lock_path_for(directory, uuid):
    return path_for(directory, uuid)[:-len(".json")] + ".lock"


def _open_lock(p):
    """A descriptor of the lock file ``p``: created 0600 without following a link, a regular file of ours."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(p, flags, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LedgerError("%s: the ledger lock is a symbolic link, refusing to use it" % p)
        raise LedgerError("%s: cannot open the ledger lock: %s" % (p, e.strerror or e))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LedgerError("%s: the ledger lock is not a regular file, refusing to use it" % p)
    return fd


@contextlib.contextmanager
def locked(directory, uuid, timeout=LOCK_TIMEOUT, poll=0.02):
    """Hold the exclusive lock of ``uuid``'s record for the block: fcntl.flock on ``<directory>/<uuid>.lock``
    (created mode 0600 with O_NOFOLLOW; a symbolic link or anything but a regular file is refused). Waits at
    most ``timeout`` seconds, then raises LockTimeout naming the lock; other failures raise LedgerError. The
    directory is created (0700) when missing. flock locks belong to the open file description: two threads
    or two processes taking the lock exclude each other alike."""
    p = lock_path_for(directory, uuid)
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, 0o700)
        except OSError as e:
            if not os.path.isdir(directory):
                raise LedgerError("%s: cannot create the ledger directory: %s" % (directory, e.strerror or e))
    fd = _open_lock(p)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LedgerError("%s: cannot lock the ledger record: %s" % (p, e.strerror or e))
            if time.time() >= deadline:
                raise LockTimeout("%s: the ledger record is locked by another writer (waited %.1fs); nothing was "
                                  "written - retry when it is done" % (p, timeout))
            time.sleep(poll)
        yield p
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


REVERT_EVENTS = ("revert", "restore")


def reverts_since(record, since):
    """The revert/restore events the watcher recorded at or after ``since`` (an ISO time, or None: none).

    A commit whose pending epoch was prepared before such an event would record a guest that a snapshot
    revert or a restore changed under the run: the caller commits the epoch (so the next audit compares the
    guest with it, RB-05) but does not record the hardening. Times have a one-second resolution, so an
    event in the same second as ``since`` counts (the safe side)."""
    if not since:
        return []
    t0 = parse_iso(since)
    return [e for e in record.get("events") or [] if e.get("event") in REVERT_EVENTS and parse_iso(e["time"]) >= t0]


def unseen_reverts(record, seen):
    """The revert/restore events of ``record`` that are not among ``seen``: the times (ISO) of the revert/restore
    events in the record an audit read (the plan's ledger.seen_reverts). What is left happened after that audit
    read the record: the run that acts on the audit's findings worked on a guest the audit did not see. A
    multiset difference (two events of one second count as two); events the record dropped since (MAX_EVENTS)
    are simply not matched."""
    left = {}
    for t in seen or ():
        left[t] = left.get(t, 0) + 1
    out = []
    for e in record.get("events") or []:
        if e.get("event") not in REVERT_EVENTS:
            continue
        if left.get(e["time"], 0) > 0:
            left[e["time"]] -= 1
        else:
            out.append(e)
    return out


KEEP = object()  # apply(quarantine=KEEP): leave the quarantine field as it is

# The security state a harden run reached (apply(record=...)): key -> (test, what it must be).
RECORD_KEYS = ("package_floors", "disabled_accounts", "masked_services", "firewall_digest")


def _name_list(v):
    return _str_list(v) and all(x and x == x.strip() for x in v)


RECORD_SHAPE = (
    ("package_floors", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and k and isinstance(x, str) and x for k, x in v.items()),
     "an object of package: version (non-empty strings)"),
    ("disabled_accounts", _name_list, "a list of account names"),
    ("masked_services", _name_list, "a list of systemd unit names"),
    ("firewall_digest", lambda v: v is None or (isinstance(v, str) and bool(re.match(r"^[0-9a-f]{64}$", v))),
     "null or a SHA-256 hex digest"),
)


def check_record(update):
    """The reason ``update`` (the security state a harden run reached) cannot be recorded, or None.
    Every key is optional; an unknown key is refused (it would be silently dropped)."""
    if not isinstance(update, dict):
        return "record must be an object, not %s" % type(update).__name__
    unknown = sorted(k for k in update if k not in RECORD_KEYS)
    if unknown:
        return "record.%s: unknown key (expected one of: %s)" % (unknown[0], ", ".join(RECORD_KEYS))
    for key, test, what in RECORD_SHAPE:
        if key in update and not test(update[key]):
            return "record.%s is %s, must be %s" % (key, json.dumps(update[key])[:80], what)
    return None


def merge_record(record, update, compare):
    """Merge ``update`` (check_record() passed) into ``record`` in place; the list of changes.

    Floors only move up: a package's floor becomes the update's version only when there is none
    yet or ``compare(new, recorded) > 0`` (Debian version order); packages the update does not name
    keep theirs. Lists replace (sorted, without duplicates). A firewall digest replaces the recorded
    one; null records nothing new and keeps the recorded digest (a run whose firewall is not worth
    keeping must not erase what RB-10 compares with)."""
    changes = []
    floors = dict(record.get("package_floors") or {})
    for pkg in sorted(update.get("package_floors") or {}):
        version, had = update["package_floors"][pkg], floors.get(pkg)
        try:
            higher = had is None or compare(version, had) > 0
        except ValueError as e:
            raise ValueError("record.package_floors.%s: cannot compare %r with the recorded floor %r: %s" % (pkg, version, had, e))
        if higher:
            floors[pkg] = version
            changes.append("floor %s %s" % (pkg, version) + (" (was %s)" % had if had is not None else ""))
    record["package_floors"] = floors
    for key, what in (("disabled_accounts", "disabled accounts"), ("masked_services", "masked services")):
        if key in update:
            names = sorted(set(update[key]))
            if names != list(record.get(key) or []):
                record[key] = names
                changes.append("%s: %s" % (what, ", ".join(names) or "none"))
    digest = update.get("firewall_digest")
    if digest is not None and digest != record.get("firewall_digest"):
        record["firewall_digest"] = digest
        changes.append("firewall digest %s" % digest)
    return changes


def add_event(record, now, event, detail=None):
    """Append ``event`` (with its ``detail`` object) to ``record`` in place, keeping the last MAX_EVENTS."""
    entry = {"time": iso(now), "event": event}
    if detail is not None:
        entry["detail"] = detail
    events = list(record.get("events") or []) + [entry]
    record["events"] = events[-MAX_EVENTS:]


def quarantine_state(now, reason, interfaces, pending_start, since=None, links=None):
    """A quarantine field value (see the ledger contract). ``links`` ({mac: [scope]}, the definitions in which
    the quarantine took each link down: what a lift may bring up) is kept sorted; None leaves it out."""
    q = {"since": since or iso(now), "reason": reason, "interfaces": list(interfaces),
         "pending_start": bool(pending_start)}
    if links is not None:
        q["links"] = dict((mac, [s for s in LINK_SCOPES if s in scopes]) for mac, scopes in links.items() if scopes)
    return q


def _prepare(record, now):
    """Record a new pending epoch in ``record`` (in place); the change. Always a number no run used before:
    a pending epoch left by an interrupted run is abandoned, not reused, since the guest (and any snapshot
    taken since) may already hold it with that run's partial state - two security states must never share
    one epoch number (RB-05 would pass a revert to the older one). pending_since is this prepare's time:
    the commit's revert check (reverts_since) covers this run only from here."""
    stale = record.get("pending_epoch")
    record["pending_epoch"] = max(int(record.get("epoch") or 0), int(stale or 0)) + 1
    was = record.get("pending_since")
    record["pending_since"] = iso(now)
    if stale is None:
        return "pending epoch %d" % record["pending_epoch"]
    return "pending epoch %d (epoch %d of an unfinished run%s abandoned)" % (
        record["pending_epoch"], stale, " prepared at %s" % was if was else "")


def apply(record, now, retire=(), epoch=None, hardened=False, event=None, detail=None, quarantine=KEEP,
          update=None, compare=None):
    """Return (new record, list of changes). ``epoch`` is None, 'prepare' (a new pending epoch, see _prepare)
    or 'commit'; ``event`` is
    appended with ``detail`` (the events stay bounded to MAX_EVENTS); ``quarantine`` (None or a value
    of quarantine_state()) replaces the quarantine field, KEEP leaves it. ``update`` (None or the
    security state a harden run reached, see check_record) is merged by merge_record with ``compare``
    (a version comparison, audit/debversion.compare); a bad one raises ValueError naming the key."""
    new = copy.deepcopy(record)
    changes = []
    if update is not None:
        why = check_record(update)
        if why:
            raise ValueError(why)
        if compare is None and update.get("package_floors"):
            raise ValueError("record.package_floors: no version comparison given to merge floors with")
        changes.extend(merge_record(new, update, compare))
    retired = list(new.get("retired_fingerprints") or [])
    for fp in retire:
        if fp not in retired:
            retired.append(fp)
            changes.append("retired %s" % fp)
    new["retired_fingerprints"] = retired
    if epoch == "prepare":
        changes.append(_prepare(new, now))
    elif epoch == "commit" and new.get("pending_epoch") is not None:
        new["epoch"] = new["pending_epoch"]
        new["epoch_time"] = int(now)
        new["pending_epoch"] = None
        new.pop("pending_since", None)  # set by prepare (records from before it have none)
        changes.append("epoch %d" % new["epoch"])
    if hardened:
        # Refreshed when something changed or at most once a day: a harden run that finds nothing
        # to do stays idempotent, and VIS-04 (dormant after 30 days by default) still sees it.
        last = record.get("last_hardened")
        stale = last is None or not 0 <= now - parse_iso(last) <= 86400  # in the future: a wrong clock wrote it
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
