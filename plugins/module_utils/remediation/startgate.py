# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The start gate (VIS-04, opt-in): a libvirt qemu hook that refuses to start a domain whose last
successful hardening (the ledger's ``last_hardened``) is older than max_dormant_days.

libvirt runs the hook as ``<hook> <domain name> <operation> <sub-operation> <extra>`` with the domain
XML on stdin; a non-zero exit at ``prepare begin`` aborts the start and the hook's stderr becomes the
libvirt error (virsh prints it, libvirtd logs it). Every other operation returns 0 at once. The
hook never calls back into libvirt (that would deadlock the daemon): the domain UUID comes from the
XML on stdin, the rest from the ledger files.

Decisions at ``prepare begin`` (in this order):
- fresh (hardened within max_dormant_days): allow.
- stale (older than max_dormant_days, or more than a day in the future: timeutil.too_far_ahead, as
  VIS-04; a clock gone wrong when it was written, or a forged record, proves no recent hardening):
  refuse, unless a break-glass file ``<break_glass_dir>/<domain name>`` exists (a regular file, not a
  link, owned by root, not writable by group or others, holding a reason; an optional first line
  ``by: <who>``): then it is removed (one-shot), a ``break_glass`` event {by, reason} is recorded in
  the ledger and the start is allowed. A break-glass file that cannot be removed allows nothing (it
  would not be one-shot).
- no ledger record, or a record without a hardening: ``no_record`` (default "allow": a domain
  vmguard never hardened is not the gate's to stop; VIS-04 reports it as never hardened).
- unreadable ledger (a link, too large, not JSON, wrong shape), unreadable configuration, XML without
  a UUID, or an internal error: refuse (fail closed; break-glass still works). An unreadable record
  proves nothing about the domain's last hardening, and allowing would let anyone who can damage the
  ledger file bypass the gate; the refusal is recoverable with a recorded break-glass.
A refusal is recorded as a ``start_refused`` event (not again within an hour of the last one, so
repeated attempts cannot push older events out of the bounded list), and every decision other than a
plain allow is also sent to syslog (LOG_AUTH). Ledger writes hold the record's lock (ledger.locked)
with a short timeout: the hook never waits long, and a write it cannot make does not change the
decision.

Python 3 standard library plus the collection's ledger/fsutil/timeutil (standard library only),
installed by the hypervisor role (tasks/start_gate.yml) with the hook's entry point
roles/hypervisor/files/vmguard_start_gate.py (run by a /bin/sh wrapper in /etc/libvirt/hooks/qemu.d).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd
import stat
import sys
import time
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_iso, too_far_ahead
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

CONFIG_PATH = "/etc/vmguard/start-gate.json"
DEFAULTS = {"ledger_dir": "/var/lib/vmguard/ledger", "max_dormant_days": 30, "break_glass_dir": "/etc/vmguard/break-glass",
            "no_record": "allow"}
CONFIG_SHAPE = (
    ("ledger_dir", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path"),
    ("max_dormant_days", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number of days >= 1"),
    ("break_glass_dir", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path"),
    ("no_record", lambda v: v in ("allow", "refuse"), '"allow" or "refuse"'),
)
MAX_XML = 4 * 1024 * 1024
MAX_REASON = 4096
LOCK_SECONDS = 2.0
REFUSED_EVERY = 3600  # seconds: at most one start_refused event per domain per hour

ALLOW, REFUSE = 0, 1


class GateError(ValueError):
    pass


def parse_config(data, source=CONFIG_PATH):
    """The configuration with defaults; GateError naming every bad key of ``source``."""
    if not isinstance(data, dict):
        raise GateError("%s: must be a JSON object, not %s" % (source, type(data).__name__))
    errors = ["%s: unknown key %s (known: %s)" % (source, k, ", ".join(sorted(DEFAULTS))) for k in sorted(data) if k not in DEFAULTS]
    errors += ["%s: %s is %s, must be %s" % (source, k, json.dumps(data[k])[:60], what)
               for k, test, what in CONFIG_SHAPE if k in data and not test(data[k])]
    if errors:
        raise GateError("; ".join(errors))
    cfg = dict(DEFAULTS)
    cfg.update(data)
    return cfg


def load_config(path):
    try:
        raw = fsutil.read_regular(path, 65536)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, IOError) as e:
        raise GateError("%s: cannot read the start gate configuration: %s" % (path, e.strerror or e))
    except ValueError as e:  # UnsafePathError, bad JSON, bad UTF-8
        raise GateError("%s: unreadable start gate configuration: %s" % (path, e))
    return parse_config(data, path)


def domain_uuid(xml_text):
    """The <uuid> of the domain XML libvirt passes on stdin; GateError when there is none."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise GateError("the domain XML on stdin does not parse: %s" % e)
    node = root.find("uuid")
    if root.tag != "domain" or node is None or not (node.text or "").strip():
        raise GateError("the domain XML on stdin has no <uuid>")
    uuid = node.text.strip().lower()
    if not ledger.UUID_RE.match(uuid):
        raise GateError("the domain XML on stdin has no valid <uuid> (%r)" % uuid[:60])
    return uuid


def break_glass_file(directory, name):
    """(path, by, reason) of a usable break-glass file for domain ``name``, (path, None, why unusable), or None."""
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        return None
    path = os.path.join(directory, name)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        return path, None, "is not a regular file (a link is never followed)"
    if st.st_uid != 0:
        return path, None, "is not owned by root"
    if st.st_mode & 0o022:
        return path, None, "is writable by group or others"
    try:
        text = _read_checked(path, st).decode("utf-8", "replace")
    except (OSError, IOError, ValueError) as e:
        return path, None, "cannot be read: %s" % (getattr(e, "strerror", None) or e)
    lines = [x.strip() for x in text.strip().splitlines()]
    by = None
    if lines and lines[0].lower().startswith("by:"):
        by = lines.pop(0)[3:].strip() or None
    reason = " ".join(x for x in lines if x)
    if not reason:
        return path, None, "holds no reason"
    return path, by or _owner(st.st_uid), reason


def _read_checked(path, st):
    """The bytes of the break-glass file ``path`` that lstat judged as ``st``: the descriptor read is checked again
    (same file, root's, not writable by group or others), so a file put in its place after the lstat - by anyone
    who may write the directory - is never taken for root's override. ValueError when it is not that file."""
    fd, now = fsutil.open_regular(path, MAX_REASON)
    try:
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or now.st_uid != 0 or now.st_mode & 0o022:
            raise ValueError("it was replaced while it was checked")
        try:
            return fsutil.read_fd(fd, MAX_REASON, path)
        except fsutil.UnsafePathError:
            raise ValueError("it is larger than the %d bytes allowed" % MAX_REASON)
    finally:
        os.close(fd)


def _owner(uid):
    try:
        return "%s (file owner)" % pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d (file owner)" % uid


def judge(record, cfg, now):
    """(ALLOW or REFUSE, why, stale) for the ledger ``record`` (None, a record, or {"error": ...})."""
    limit = cfg["max_dormant_days"]
    if record is not None and record.get("error"):
        return REFUSE, "its ledger record cannot be trusted (%s)" % record["error"], False
    last = (record or {}).get("last_hardened")
    if not last:
        what = "no ledger record" if record is None else "a ledger record without a successful hardening"
        if cfg["no_record"] == "allow":
            return ALLOW, "%s: never hardened by vmguard, allowed (no_record: allow)" % what, False
        return REFUSE, "%s: never hardened by vmguard (no_record: refuse)" % what, True
    age = (now - parse_iso(last)) / 86400.0
    if too_far_ahead(age):
        return REFUSE, ("its ledger record says it was last hardened %.0f days in the future (%s): the host clock "
                        "was wrong when it was written, or the record was forged, so how long it was dormant cannot be "
                        "judged (VIS-04)" % (-age, last)), True
    if age > limit:
        return REFUSE, "it was last hardened %.0f days ago (%s), more than max_dormant_days %d (VIS-04)" % (age, last, limit), True
    return ALLOW, "hardened %.1f days ago (limit %d)" % (age, limit), False


def _record_event(cfg, uuid, now, event, detail, unless_recent=None):
    """Append an event to the record under its lock (short wait); None, or why it could not be written."""
    try:
        with ledger.locked(cfg["ledger_dir"], uuid, timeout=LOCK_SECONDS):
            rec = ledger.load(cfg["ledger_dir"], uuid)
            events = rec.get("events") or []
            if unless_recent and events and events[-1].get("event") == event \
                    and now - parse_iso(events[-1]["time"]) < unless_recent:
                return None
            new, _changes = ledger.apply(rec, now, event=event, detail=detail)
            ledger.save(cfg["ledger_dir"], new)
    except (OSError, IOError, ValueError) as e:
        return str(e)
    return None


def decide(argv, stdin_text, cfg, now, config_error=None):
    """(exit status, message for stderr or None, message for syslog or None) for one hook call.

    ``cfg`` is the parsed configuration (the defaults when it could not be read: ``config_error``)."""
    if len(argv) < 3 or (argv[1], argv[2]) != ("prepare", "begin"):
        return ALLOW, None, None
    name = argv[0]
    try:
        uuid = domain_uuid(stdin_text)
    except GateError as e:
        uuid, status, why, stale = None, REFUSE, str(e), False
    else:
        if config_error:
            status, why, stale = REFUSE, "the start gate configuration is unusable (%s)" % config_error, False
        else:
            status, why, stale = judge(ledger.read_record(cfg["ledger_dir"], uuid), cfg, now)
    if status == ALLOW:
        return ALLOW, None, None
    bg = break_glass_file(cfg["break_glass_dir"], name)
    if bg is not None and bg[1] is not None:
        return _use_break_glass(cfg, name, uuid, bg, why, now)
    msg = "vmguard start gate: domain %s%s not started: %s." % (name, " (%s)" % uuid if uuid else "", why)
    if stale:
        msg += " Harden it first (vmguard.hardening.harden)."
    msg += " One-time override: write a reason (first line optionally 'by: <who>') to %s (a root-owned regular file, " \
           "not writable by others) and start again; the override is recorded in the ledger." % os.path.join(
               cfg["break_glass_dir"], name)
    if bg is not None:
        msg += " The break-glass file there was not used: it %s." % bg[2]
    if uuid:
        failed = _record_event(cfg, uuid, now, "start_refused", {"reason": why}, unless_recent=REFUSED_EVERY)
        if failed and "cannot be trusted" not in why:
            msg += " (the refusal could not be recorded in the ledger: %s)" % failed
    return REFUSE, msg, msg


def _use_break_glass(cfg, name, uuid, bg, why, now):
    path, by, reason = bg
    try:
        os.unlink(path)  # one-shot: consumed before the start is allowed
    except OSError as e:
        msg = ("vmguard start gate: domain %s not started: %s; the break-glass file %s cannot be removed (%s), so it "
               "would not be one-shot" % (name, why, path, e.strerror or e))
        return REFUSE, msg, msg
    note = "vmguard start gate: BREAK-GLASS domain %s%s started by %s: %s (override of: %s)" % (
        name, " (%s)" % uuid if uuid else "", by, reason, why)
    if uuid:
        failed = _record_event(cfg, uuid, now, "break_glass", {"by": by, "reason": reason, "overrode": why})
        if failed:
            note += "; not recorded in the ledger: %s" % failed
    else:
        note += "; not recorded in the ledger: no domain UUID"
    return ALLOW, None, note


def _syslog(text):
    try:
        import syslog
        syslog.openlog("vmguard-start-gate", 0, syslog.LOG_AUTH)
        syslog.syslog(syslog.LOG_WARNING, text)
        syslog.closelog()
    except Exception:  # pylint: disable=broad-except
        pass  # logging must never change the decision


def main(argv=None, stdin=None, stderr=None, config_path=None, now=None):
    """The hook: exit status 0 (allow) or 1 (refuse, with the reason on stderr)."""
    argv = sys.argv[1:] if argv is None else argv
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    text = stdin.read(MAX_XML)  # always drained: libvirt writes the XML whatever the operation
    if len(argv) < 3 or (argv[1], argv[2]) != ("prepare", "begin"):
        return ALLOW
    try:
        config_error = None
        try:
            cfg = load_config(config_path or CONFIG_PATH)
        except GateError as e:
            cfg, config_error = dict(DEFAULTS), str(e)
        status, err, log = decide(argv, text, cfg, time.time() if now is None else now, config_error)
    except Exception as e:  # pylint: disable=broad-except
        status = REFUSE
        err = log = "vmguard start gate: domain %s not started: internal error %s: %s (fail closed; break-glass in %s)" % (
            argv[0], type(e).__name__, e, DEFAULTS["break_glass_dir"])
    if log:
        _syslog(log)
    if err:
        stderr.write(err + "\n")
        stderr.flush()
    return status
