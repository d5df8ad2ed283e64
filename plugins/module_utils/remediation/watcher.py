# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revert watcher (RB-11): a daemon that quarantines a domain as soon as libvirt reverts it to
a snapshot or restores it from a save file (libvirt's hooks never see snapshot reverts).

    python3 -m ansible_collections.vmguard.hardening.plugins.module_utils.remediation.watcher \\
        --config /etc/vmguard/watcher.json [--detach --log FILE [--replace]] [--status]

It listens to libvirt's domain lifecycle events (libvirt-python's default event loop) and, for a
revert or restore, sets link state down on every interface not on a management network - in the
live definition first, then in the persistent one - then records the event and the quarantine in
the domain's ledger record (remediation/ledger.py), then logs one line. A domain reverted to
shut-off gets its links down in the persistent definition, a quarantine with pending_start, and
its live links checked when it starts. An interface whose link libvirt cannot change (hostdev,
SR-IOV: never tried) or refuses to change does not stop the others nor the record: the quarantine
names it ({"mac", "type", "scope", "reason"} in its "not_down", and in the quarantine event's
detail) and the log line says "error=not_down".

It proves it is alive (RB-11) by the flock it holds on its lock file for its whole life and by a
heartbeat file it rewrites atomically ({"pid", "time", "connected", "uri", "mgmt_networks"}); after a libvirtd
restart it reconnects with a backoff and registers its callback again. A failed iteration of
libvirt's event loop is retried with a back-off; the heartbeat is written only while the event
loop and worker threads live - when one has ended the watcher stops itself (exit status 1), so
RB-11 fails and systemd restarts it. SIGTERM/SIGINT end it cleanly: the lock goes with the
process, the heartbeat file is left to age.

Python standard library plus libvirt-python; the decision table, the configuration and the
ledger update are pure functions (unit-tested without libvirt).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import copy
import errno
import fcntl
import json
import os
import signal
import sys
import threading
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import quarantine as qr

try:
    import queue
except ImportError:  # Python 2 never runs the watcher; the import keeps sanity's compile test quiet
    queue = None

MODULE = "ansible_collections.vmguard.hardening.plugins.module_utils.remediation.watcher"

# --- the decision table (pure) ---------------------------------------------------------------------
# libvirt's virDomainEventType and detail values (ABI: they never change; test_watcher checks them
# against libvirt-python's constants).
DEFINED, STARTED, SUSPENDED, RESUMED, STOPPED = 0, 2, 3, 4, 5
EVENT_NAMES = {0: "DEFINED", 1: "UNDEFINED", 2: "STARTED", 3: "SUSPENDED", 4: "RESUMED", 5: "STOPPED",
               6: "SHUTDOWN", 7: "PMSUSPENDED", 8: "CRASHED"}
DETAIL_NAMES = {
    DEFINED: {0: "ADDED", 1: "UPDATED", 2: "RENAMED", 3: "FROM_SNAPSHOT"},
    STARTED: {0: "BOOTED", 1: "MIGRATED", 2: "RESTORED", 3: "FROM_SNAPSHOT", 4: "WAKEUP"},
    SUSPENDED: {0: "PAUSED", 1: "MIGRATED", 2: "IOERROR", 3: "WATCHDOG", 4: "RESTORED", 5: "FROM_SNAPSHOT",
                6: "API_ERROR", 7: "POSTCOPY", 8: "POSTCOPY_FAILED"},
    RESUMED: {0: "UNPAUSED", 1: "MIGRATED", 2: "FROM_SNAPSHOT", 3: "POSTCOPY", 4: "POSTCOPY_FAILED"},
    STOPPED: {0: "SHUTDOWN", 1: "DESTROYED", 2: "CRASHED", 3: "MIGRATED", 4: "SAVED", 5: "FAILED",
              6: "FROM_SNAPSHOT"},
}

IGNORE, LIVE, CONFIG, PENDING_START = "ignore", "quarantine", "quarantine_config", "check_pending_start"

# (event, detail) -> (action when the domain is active, action when it is not, ledger event)
TABLE = {
    (STARTED, 3): (LIVE, LIVE, "revert"),          # STARTED_FROM_SNAPSHOT
    (RESUMED, 2): (LIVE, LIVE, "revert"),          # RESUMED_FROM_SNAPSHOT (also follows a restore)
    (SUSPENDED, 5): (LIVE, LIVE, "revert"),        # SUSPENDED_FROM_SNAPSHOT (reverted to paused)
    (STARTED, 2): (LIVE, LIVE, "restore"),         # STARTED_RESTORED
    (SUSPENDED, 4): (LIVE, LIVE, "restore"),       # SUSPENDED_RESTORED (restored paused)
    # Reverted to shut-off. While a running domain is reverted these come too (libvirt may restart
    # QEMU within the revert, and a device update blocks until the revert ends): when the domain is
    # active the STARTED/RESUMED/SUSPENDED_FROM_SNAPSHOT event that follows is the one to act on.
    (STOPPED, 6): (IGNORE, CONFIG, "revert"),      # STOPPED_FROM_SNAPSHOT
    (DEFINED, 3): (IGNORE, CONFIG, "revert"),      # DEFINED_FROM_SNAPSHOT
    (STARTED, 0): (PENDING_START, IGNORE, None),   # STARTED_BOOTED: a pending quarantine takes effect
}


def decide(event, detail, active):
    """(action, ledger event or None) for a lifecycle event of a domain that is ``active`` now."""
    row = TABLE.get((event, detail))
    if row is None:
        return IGNORE, None
    return (row[0] if active else row[1]), row[2]


def event_label(event, detail):
    """STARTED/FROM_SNAPSHOT."""
    return "%s/%s" % (EVENT_NAMES.get(event, str(event)), DETAIL_NAMES.get(event, {}).get(detail, str(detail)))


# --- configuration (pure) --------------------------------------------------------------------------
DEFAULTS = {"uri": "qemu:///system", "ledger_dir": "/var/lib/vmguard/ledger", "mgmt_networks": [],
            "heartbeat_seconds": 5, "lock": "/run/vmguard/watcher.lock",
            "heartbeat": "/run/vmguard/watcher.heartbeat", "domains": ["*"]}


def _is_str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


CONFIG_SHAPE = (
    ("uri", lambda v: isinstance(v, str) and v != "", "a libvirt URI"),
    ("ledger_dir", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path"),
    ("mgmt_networks", _is_str_list, "a list of network or bridge names"),
    ("heartbeat_seconds", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.1 <= v <= 300,
     "a number of seconds between 0.1 and 300"),
    ("lock", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path"),
    ("heartbeat", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path"),
    ("domains", _is_str_list, "a list of domain name patterns (fnmatch), [\"*\"] for all"),
)


class ConfigError(ValueError):
    pass


def parse_config(data, source="the configuration"):
    """The configuration with defaults filled in; ConfigError naming every bad key of ``source``."""
    if not isinstance(data, dict):
        raise ConfigError("%s: must be a JSON object, not %s" % (source, type(data).__name__))
    errors = ["%s: unknown key %s (known: %s)" % (source, k, ", ".join(sorted(DEFAULTS)))
              for k in sorted(data) if k not in DEFAULTS]
    for key, test, what in CONFIG_SHAPE:
        if key in data and not test(data[key]):
            errors.append("%s: %s is %s, must be %s" % (source, key, json.dumps(data[key])[:80], what))
    if errors:
        raise ConfigError("; ".join(errors))
    cfg = dict(DEFAULTS)
    cfg.update(data)
    return cfg


def load_config(path):
    try:
        raw = fsutil.read_regular(path, 65536)
    except (OSError, ValueError) as e:
        raise ConfigError("%s: cannot read the configuration: %s" % (path, getattr(e, "strerror", None) or e))
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e))
    return parse_config(data, path)


def wanted(name, patterns):
    import fnmatch
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# --- the ledger update (pure) ----------------------------------------------------------------------
def ledger_update(record, now, kind, label, result, pending_start, new_group, snapshot=None, reason=None):
    """(new record, changes) after a quarantine action: the revert/restore event when this is the
    first event of a revert (``new_group``), the quarantine event and the quarantine field.

    A new revert or restore starts a new quarantine: its ``since`` and ``reason`` are this event's, so a
    lift decided on an earlier audit (quarantine module option since) refuses it. A later event of the
    same revert (a start of a domain reverted to shut-off) keeps them. ``links``/``interfaces`` name only
    the links set_links changed from up to down (quarantine.taken_down), per definition.

    ``result`` is quarantine.set_links()'s: the interfaces chosen and changed live and in config."""
    chosen = sorted(set(result["chosen"]["live"]) | set(result["chosen"]["config"]))
    prev = record.get("quarantine")
    new = dict(record)
    changes = []
    fresh = bool(new_group and kind)
    if fresh:
        detail = {"libvirt_event": label.split("/")[0], "libvirt_detail": label.split("/")[1]}
        if snapshot:
            detail["snapshot"] = snapshot
        new, ch = ledger.apply(new, now, event=kind, detail=detail)
        changes += ch
    # The links this quarantine took down, per definition: what a lift may bring up (never a link that was down
    # already). A new revert or restore put back the link states of the definitions it replaced.
    links = qr.taken_down(prev, result, replaced=qr.REPLACED_BY.get(kind, qr.SCOPES) if fresh else (),
                          started=bool((prev or {}).get("pending_start")) and not pending_start)
    kept = (prev or {}) if not fresh else {}
    why = kept.get("reason") or reason or "%s (%s)" % (kind or "revert", label)
    q = ledger.quarantine_state(now, why, sorted(links), pending_start, since=kept.get("since"), links=links)
    detail = {"interfaces": chosen, "live": bool(result["chosen"]["live"]), "config": bool(result["chosen"]["config"])}
    if new_group or result["live"] or result["config"] or (prev or {}).get("pending_start") != pending_start:
        new, ch = ledger.apply(new, now, event="quarantine", detail=detail, quarantine=q)
        changes += ch
    return new, changes


def not_down(result):
    """The interfaces set_links() could not take down: skipped (hostdev, no MAC address) or refused by libvirt,
    as [{"mac", "type", "scope", "reason"}] sorted by MAC address and definition."""
    return sorted(list(result.get("skipped") or []) + list(result.get("failed") or []),
                  key=lambda e: (e["mac"] or "", e["scope"], e["type"] or ""))


def naming_not_down(record, update, result):
    """``update`` ((new record, changes) of ledger_update on ``record``) with the quarantine field naming the
    interfaces still up (``not_down``: this action's for the definitions it acted on, the previous ones for the
    others) and the quarantine event it appended naming this action's; a quarantine whose interfaces all went
    down has no ``not_down``."""
    new, changes = update
    q = new.get("quarantine")
    if not q:
        return new, changes
    acted = set(result.get("scopes") or ())
    before = (record.get("quarantine") or {}).get("not_down") or []
    now = not_down(result)
    names = sorted([e for e in before if e.get("scope") not in acted] + now,
                   key=lambda e: (e.get("mac") or "", e.get("scope") or "", e.get("type") or ""))
    if names == (q.get("not_down") or []) and names == before:
        return new, changes
    new = copy.deepcopy(new)
    if names:
        new["quarantine"]["not_down"] = names
    else:
        new["quarantine"].pop("not_down", None)
    events = new.get("events") or []
    if "event quarantine" in changes and events and events[-1]["event"] == "quarantine" and now:
        events[-1].setdefault("detail", {})["not_down"] = now
    if names != before:
        changes = changes + ["quarantine: not down %s" % (", ".join(
            "%s (%s, %s)" % (e.get("mac") or "no MAC", e.get("type"), e.get("scope")) for e in names) or "none")]
    return new, changes


# --- process plumbing ------------------------------------------------------------------------------
class AlreadyRunning(Exception):
    def __init__(self, pid):
        Exception.__init__(self, "another watcher holds the lock%s" % (" (pid %s)" % pid if pid else ""))
        self.pid = pid


def _makedirs(directory, mode):
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode)


def lock_pid(path):
    """The pid a watcher wrote into its lock file, or None."""
    try:
        data = fsutil.read_regular(path, 64, missing_ok=True)
    except (OSError, ValueError):
        return None
    try:
        pid = int((data or b"").decode("ascii").strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def lock_is_held(path):
    """True when some process holds the flock on ``path`` (never created here)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def acquire_lock(path):
    """The descriptor holding an exclusive flock on ``path`` (created 0644, never through a link),
    with our pid written in it; AlreadyRunning when another process holds it."""
    _makedirs(os.path.dirname(path), 0o755)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise AlreadyRunning(lock_pid(path))
        raise
    os.ftruncate(fd, 0)
    os.write(fd, ("%d\n" % os.getpid()).encode("ascii"))
    return fd


def write_heartbeat(path, connected, uri, now=None, mgmt_networks=()):
    """The heartbeat also says what the watcher watches (its URI and management networks): RB-11 compares them
    with the audited URI and the policy's management networks, so a watcher left on an old configuration fails."""
    body = {"pid": os.getpid(), "time": time.time() if now is None else now, "connected": bool(connected), "uri": uri,
            "mgmt_networks": sorted(set(mgmt_networks))}
    fsutil.atomic_write(path, json.dumps(body, sort_keys=True) + "\n", 0o644)


def say(text):
    """A line on stdout (the command's answer: --status, --detach)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def log(msg, now=None):
    now = time.time() if now is None else now
    sys.stdout.write("%s t=%.3f %s\n" % (iso(now), now, msg))
    sys.stdout.flush()


# --- the daemon ------------------------------------------------------------------------------------
# The events of one revert (STOPPED, STARTED, RESUMED/SUSPENDED, DEFINED..._FROM_SNAPSHOT) or restore
# (STARTED_RESTORED, RESUMED/SUSPENDED) form a group: one "revert"/"restore" ledger event per group.
# DEFINED_FROM_SNAPSHOT closes a group (libvirt 9.0 sends it last in a revert; were it sent first, it
# would close the previous revert's group), STARTED_RESTORED opens one, and a pause of GROUP_SECONDS
# ends one whatever comes.
GROUP_SECONDS = 5.0
EVENT_LOOP_BACKOFF = (0.1, 5.0)  # first and longest pause (seconds) before a failed event loop iteration is retried


class Watcher(object):
    def __init__(self, cfg, libvirt):
        self.cfg = cfg
        self.lv = libvirt
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.connected = False
        self.conn = None
        self.cb_id = None
        self.events = queue.Queue()
        self.groups = {}  # uuid -> {"last": time of its last event, "kind": ledger event} (see GROUP_SECONDS)
        self.threads = {}  # name -> the threads the watcher cannot work without (event loop, worker), see beat()
        self.failed = None  # why the watcher stopped itself (a vital thread ended)

    # heartbeat -------------------------------------------------------------------------------------
    def beat(self):
        """Write the heartbeat - only while the event loop and the worker threads live: without them no event
        is delivered or handled, and a heartbeat would prove a watcher that sees nothing (RB-11 would pass).
        When one has ended, the heartbeat stops and the watcher stops itself (exit status 1): the lock goes,
        RB-11 fails, systemd restarts it."""
        dead = sorted(name for name, t in self.threads.items() if not t.is_alive())
        if dead and not self.stop.is_set():
            self.fail("thread(s) %s ended" % ",".join(dead))
        if self.failed:
            return
        try:
            write_heartbeat(self.cfg["heartbeat"], self.connected, self.cfg["uri"],
                            mgmt_networks=self.cfg["mgmt_networks"])
        except (OSError, ValueError) as e:
            log("error=heartbeat %s: %s" % (self.cfg["heartbeat"], e))

    def fail(self, why):
        self.failed = why
        log("error=%s; heartbeat stopped, the watcher stops (RB-11 fails until it runs again)" % why)
        self.request_stop(None, None)

    def heartbeat_loop(self):
        while not self.stop.is_set():
            self.beat()
            self.stop.wait(self.cfg["heartbeat_seconds"])

    # libvirt event loop and connection ---------------------------------------------------------------
    def event_loop(self):
        """Run libvirt's default event loop for good. libvirt-python raises libvirtError where the C call
        returns -1 (a failed poll): the iteration is retried with a back-off, the thread never ends on it."""
        backoff = EVENT_LOOP_BACKOFF[0]
        while True:
            try:
                if self.lv.virEventRunDefaultImpl() >= 0:
                    backoff = EVENT_LOOP_BACKOFF[0]
                    continue
                why = "returned -1"
            except self.lv.libvirtError as e:
                why = e.get_error_message() or str(e)
            except Exception as e:  # pylint: disable=broad-except  # one bad iteration must not end the loop
                why = "%s: %s" % (type(e).__name__, e)
            log("error=event_loop retry_in=%.1fs %s" % (backoff, why))
            time.sleep(backoff)
            backoff = min(backoff * 2, EVENT_LOOP_BACKOFF[1])

    def on_event(self, conn, dom, event, detail, opaque):
        # Runs in the event loop thread: no remote call here, the worker does the work.
        self.events.put((dom, event, detail, time.time()))

    def on_close(self, conn, reason, opaque):
        self.connected = False
        self.wake.set()

    def connect(self):
        conn = self.lv.open(self.cfg["uri"])
        try:
            conn.registerCloseCallback(self.on_close, None)
            conn.setKeepAlive(5, 3)
            self.cb_id = conn.domainEventRegisterAny(None, self.lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self.on_event, None)
        except self.lv.libvirtError:
            conn.close()
            raise
        self.conn = conn
        self.connected = True
        self.beat()
        log("connected uri=%s" % self.cfg["uri"])

    def disconnect(self):
        conn, self.conn, self.connected = self.conn, None, False
        if conn is None:
            return
        for call in (lambda: conn.domainEventDeregisterAny(self.cb_id), conn.unregisterCloseCallback, conn.close):
            try:
                call()
            except self.lv.libvirtError:
                pass

    def connection_loop(self):
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self.connect()
                backoff = 0.5
            except self.lv.libvirtError as e:
                log("error=connect uri=%s retry_in=%.1fs %s" % (self.cfg["uri"], backoff, e.get_error_message()))
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            while not self.stop.is_set() and self.connected and self.conn.isAlive():
                self.wake.wait(1.0)
                self.wake.clear()
            was = self.connected
            self.disconnect()
            if not self.stop.is_set():  # on a stop the heartbeat is left to age
                self.beat()
                log("disconnected uri=%s%s; reconnecting" % (self.cfg["uri"], "" if was else " (closed by libvirt)"))

    # the work ----------------------------------------------------------------------------------------
    def worker(self):
        while True:
            item = self.events.get()
            if item is None:
                return
            try:
                self.handle(*item)
            except self.lv.libvirtError as e:
                log("error=libvirt event=%s %s" % (event_label(item[1], item[2]), e.get_error_message()))
            except Exception as e:  # one bad event must not end the watcher
                log("error=internal event=%s %s: %s" % (event_label(item[1], item[2]), type(e).__name__, e))

    def handle(self, dom, event, detail, t_event):
        if TABLE.get((event, detail)) is None or not wanted(dom.name(), self.cfg["domains"]):
            return
        if (event, detail) == (STARTED, 2):  # STARTED_RESTORED: a restore begins
            self.groups.pop(dom.UUIDString(), None)
        action, kind = decide(event, detail, bool(dom.isActive()))
        if action == PENDING_START:
            self.pending_start(dom, event, detail, t_event)
        elif action in (LIVE, CONFIG):
            self.quarantine(dom, kind, event, detail, t_event, live=action == LIVE)
        if (event, detail) == (DEFINED, 3):  # DEFINED_FROM_SNAPSHOT: the revert's group is over
            self.groups.pop(dom.UUIDString(), None)

    def links_down(self, dom, live, config):
        """quarantine.set_links down, every interface tried: one libvirt refuses (or a hostdev one, never tried)
        is named in the result's "failed"/"skipped", never a reason to leave the others up or to record nothing."""
        return qr.set_links(dom, self.cfg["mgmt_networks"], qr.DOWN, live=live, config=config,
                            keep_going=self.lv.libvirtError)

    def set_down(self, dom, live):
        """links_down; a domain that stopped meanwhile gets its persistent definition done."""
        persistent = bool(dom.isPersistent())
        try:
            result = self.links_down(dom, live, persistent)
        except self.lv.libvirtError:  # reading its XML failed
            if not live or dom.isActive():
                raise
            return self.links_down(dom, False, persistent), False
        if live and any(f["scope"] == "live" for f in result["failed"]) and not dom.isActive():
            # it stopped meanwhile: there is no live definition any more, its next start is what counts
            result["failed"] = [f for f in result["failed"] if f["scope"] != "live"]
            result["skipped"] = [f for f in result["skipped"] if f["scope"] != "live"]
            result["chosen"]["live"], result["live"], result["scopes"] = [], [], ["config"] if persistent else []
            return result, False
        return result, live

    def new_group(self, uuid, kind, t_event):
        """(first acting event of a revert/restore?, its ledger event kind)."""
        g = self.groups.get(uuid)
        if g is not None and t_event - g["last"] < GROUP_SECONDS:
            g["last"] = t_event
            return False, g["kind"]
        self.groups[uuid] = {"last": t_event, "kind": kind}
        return True, kind

    def quarantine(self, dom, kind, event, detail, t_event, live):
        result, live = self.set_down(dom, live)        # FIRST the device update
        t_done = time.time()
        uuid, label = dom.UUIDString(), event_label(event, detail)
        fresh, kind = self.new_group(uuid, kind, t_event)
        if not (fresh or result["live"] or result["config"]):
            return  # a later event of a revert already handled, nothing left to do
        snapshot = self.current_snapshot(dom) if fresh and kind == "revert" else None
        saved = self.record(uuid, lambda rec, now: naming_not_down(
            rec, ledger_update(rec, now, kind, label, result, not live, fresh, snapshot), result))
        self.log_action(dom.name(), uuid, label, "quarantine", result, not live, t_event, t_done, saved)

    def pending_start(self, dom, event, detail, t_event):
        uuid = dom.UUIDString()
        rec = ledger.read_record(self.cfg["ledger_dir"], uuid)
        q = (rec or {}).get("quarantine") if not (rec or {}).get("error") else None
        if not q:
            return
        result = self.links_down(dom, True, False)
        t_done = time.time()
        if not (result["live"] or q.get("pending_start")):
            return
        label = event_label(event, detail)
        saved = self.record(uuid, lambda r, now: naming_not_down(
            r, ledger_update(r, now, "revert", label, result, False, False), result))
        self.log_action(dom.name(), uuid, label, "quarantine_on_start", result, False, t_event, t_done, saved)

    def current_snapshot(self, dom):
        try:
            return dom.snapshotCurrent(0).getName()
        except self.lv.libvirtError:
            return None

    def record(self, uuid, update):
        """Load, update, save the ledger record under its lock (ledger.locked: a harden's ledger or
        quarantine module writing the same record meanwhile loses nothing, nor does this); 'saved',
        'unchanged' or the error (never raised)."""
        try:
            with ledger.locked(self.cfg["ledger_dir"], uuid):
                rec = ledger.load(self.cfg["ledger_dir"], uuid)
                new, changes = update(rec, time.time())
                if not changes:
                    return "unchanged"
                ledger.save(self.cfg["ledger_dir"], new)
                return "saved"
        except (OSError, ValueError) as e:  # LedgerError (LockTimeout too) is a ValueError: an untrusted file is never replaced
            return "error(%s)" % e

    def log_action(self, name, uuid, label, action, result, pending, t_event, t_done, saved):
        log("domain=%s uuid=%s event=%s action=%s interfaces=%s live=%s config=%s pending_start=%s "
            "event_time=%.3f link_down_time=%.3f latency_ms=%.1f ledger=%s%s" % (
                name, uuid, label, action,
                ",".join(sorted(set(result["chosen"]["live"]) | set(result["chosen"]["config"]))) or "-",
                ",".join(result["live"]) or "-", ",".join(result["config"]) or "-", str(pending).lower(),
                t_event, t_done, (t_done - t_event) * 1000.0, saved,
                "".join(" error=not_down mac=%s type=%s scope=%s reason=%s" % (
                    e["mac"] or "-", e["type"], e["scope"], json.dumps(e["reason"])) for e in not_down(result))))

    # life --------------------------------------------------------------------------------------------
    def run(self):
        self.lv.virEventRegisterDefaultImpl()
        for target in (self.event_loop, self.worker):  # vital: the heartbeat stops when one ends (beat)
            self.threads[target.__name__] = threading.Thread(target=target, name=target.__name__)
        beating = threading.Thread(target=self.heartbeat_loop, name="heartbeat_loop")
        work = self.threads["worker"]
        for t in list(self.threads.values()) + [beating]:
            t.daemon = True
            t.start()
        log("started pid=%d uri=%s ledger_dir=%s mgmt_networks=%s domains=%s" % (
            os.getpid(), self.cfg["uri"], self.cfg["ledger_dir"], ",".join(self.cfg["mgmt_networks"]) or "-",
            ",".join(self.cfg["domains"])))
        self.connection_loop()
        self.disconnect()
        self.events.put(None)
        work.join(10)
        log("stopped pid=%d%s" % (os.getpid(), " failed=%s" % self.failed if self.failed else ""))

    def request_stop(self, signum, frame):
        self.stop.set()
        self.wake.set()


# --- command line ----------------------------------------------------------------------------------
def detach(log_path):
    """Fork into the background (setsid, double fork, stdio to ``log_path``). Returns the write end
    of a pipe the daemon reports on in the daemon, exits in the parent with the daemon's report."""
    r, w = os.pipe()
    if os.fork():
        os.close(w)
        report = b""
        with os.fdopen(r, "rb") as f:
            report = f.read().decode("utf-8", "replace").strip()
        os.wait()
        say(report or "error: the watcher ended before it held its lock (see %s)" % log_path)
        raise SystemExit(0 if report.startswith(("started", "already running")) else 1)
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o640)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(devnull)
    os.chdir("/")
    return w


def replace_running(lock_path, timeout=15.0):
    """SIGTERM the watcher holding ``lock_path`` (its pid from the lock file, checked to be a watcher)
    and wait for the lock to be free. Returns a message or raises AlreadyRunning."""
    if not lock_is_held(lock_path):
        return None
    pid = lock_pid(lock_path)
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except (TypeError, IOError, OSError):
        argv = []
    if not any(MODULE.encode("ascii") in a for a in argv):
        raise AlreadyRunning(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while lock_is_held(lock_path):
        if time.time() > deadline:
            raise AlreadyRunning(pid)
        time.sleep(0.1)
    return "replaced pid %s" % pid


def status(cfg):
    held = lock_is_held(cfg["lock"])
    out = {"running": held, "pid": lock_pid(cfg["lock"]) if held else None, "lock": cfg["lock"]}
    try:
        out["heartbeat"] = json.loads(fsutil.read_regular(cfg["heartbeat"], 4096).decode("utf-8"))
    except (OSError, ValueError):
        out["heartbeat"] = None
    say(json.dumps(out, sort_keys=True))
    return 0 if held else 3


def arguments(argv):
    ap = argparse.ArgumentParser(prog="vmguard-revert-watcher", description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--config", default="/etc/vmguard/watcher.json", help="JSON configuration file")
    ap.add_argument("--detach", action="store_true", help="run in the background (where systemd does not)")
    ap.add_argument("--log", default="/var/log/vmguard-revert-watcher.log", help="log file with --detach")
    ap.add_argument("--replace", action="store_true", help="with --detach: stop the running watcher first")
    ap.add_argument("--status", action="store_true", help="print whether a watcher holds the lock; exit 3 if not")
    return ap.parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        sys.stderr.write("vmguard-revert-watcher: %s\n" % e)
        return 2
    if args.status:
        return status(cfg)
    try:
        import libvirt
    except ImportError:
        sys.stderr.write("vmguard-revert-watcher: libvirt-python is not installed (Debian: python3-libvirt)\n")
        return 2
    report = None
    if args.detach:
        replaced = None
        if args.replace:
            try:
                replaced = replace_running(cfg["lock"])
            except AlreadyRunning as e:
                say("error: cannot replace the running watcher: %s" % e)
                return 1
        elif lock_is_held(cfg["lock"]):
            say("already running (pid %s)" % lock_pid(cfg["lock"]))
            return 0
        report = detach(args.log)
        if replaced:
            log(replaced)
    return run(cfg, libvirt, report)


def run(cfg, libvirt, report=None):
    try:
        lock_fd = acquire_lock(cfg["lock"])
    except AlreadyRunning as e:
        _report(report, "already running (pid %s)" % e.pid)
        sys.stderr.write("vmguard-revert-watcher: %s\n" % e)
        return 0 if report is not None else 1
    except OSError as e:
        _report(report, "error: lock %s: %s" % (cfg["lock"], e))
        sys.stderr.write("vmguard-revert-watcher: lock %s: %s\n" % (cfg["lock"], e))
        return 1
    try:
        _makedirs(os.path.dirname(cfg["heartbeat"]), 0o755)
        w = Watcher(cfg, libvirt)
        signal.signal(signal.SIGTERM, w.request_stop)
        signal.signal(signal.SIGINT, w.request_stop)
        w.beat()
        _report(report, "started pid %d" % os.getpid())
        w.run()
    finally:
        os.close(lock_fd)  # the lock goes; the heartbeat stays and ages (RB-11 sees both)
    return 1 if w.failed else 0


def _report(fd, text):
    if fd is not None:
        try:
            os.write(fd, (text + "\n").encode("utf-8"))
            os.close(fd)
        except OSError:
            pass


if __name__ == "__main__":
    raise SystemExit(main())
