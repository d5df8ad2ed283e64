# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Since the previous run: what changed between the previous report.json and this audit.

A finding is identified by (rule, subject kind, subject id); it is *failing* when its status is
fail or error (what the gate counts). Against the previous report:

- ``new``: failing now, not failing (or not there) before;
- ``fixed``: failing before and passing now;
- ``still_failing``: failing before and now;
- ``gone``: failing before and not judged now: not evaluated (the subject left the inventory, or the
  rule was not selected), waived, or not applicable (its evidence is no longer there: a ledger record
  that vanished is no fix). Neither fixed nor still failing, so it is listed on its own, with the
  status it has now (``now``: null when not evaluated).

``compare`` tags each current finding with ``since_previous`` (new / fixed / still_failing) and
returns the summary that report.json carries as ``since_previous``. Pure: no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import BAD, PASS
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

NEW, FIXED, STILL, GONE = "new", "fixed", "still_failing", "gone"
CHANGES = (NEW, FIXED, STILL, GONE)
SCHEMA_PREFIX = "vmguard.report/"
# The largest previous report read (bytes): report.json of 25,000 findings is about 12 MB.
MAX_PREVIOUS = 512 * 1024 * 1024


class PreviousReportError(Exception):
    """The previous report cannot be read or is not a vmguard report (the message names the file)."""


def key(finding):
    s = finding["subject"]
    return (finding["rule"], s["kind"], s["id"])


def _no_constant(name):
    raise ValueError("%s is not JSON (RFC 8259)" % name)


def load_previous(path):
    """The previous report.json at ``path`` as a dict; PreviousReportError naming the path and the problem.

    Read without following a link or blocking (a regular file of at most MAX_PREVIOUS bytes); each
    finding's rule, subject kind, subject id and status must be strings (they key the comparison)."""
    data = _parsed(path)
    _finding_index(path, data["findings"])
    return data


def _parsed(path):
    """The report at ``path`` parsed, with its schema and a findings list (its findings not checked yet)."""
    try:
        text = fsutil.read_regular(path, MAX_PREVIOUS)
    except (IOError, OSError, fsutil.UnsafePathError) as e:
        raise PreviousReportError("previous report %s cannot be read: %s" % (path, e))
    try:
        data = json.loads(text.decode("utf-8"), parse_constant=_no_constant)
    except ValueError as e:
        raise PreviousReportError("previous report %s is not JSON: %s" % (path, e))
    except (RecursionError, MemoryError) as e:
        raise PreviousReportError("previous report %s is not a report this audit can read (%s)" % (path, type(e).__name__))
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith(SCHEMA_PREFIX):
        raise PreviousReportError("previous report %s is not a vmguard report.json (no schema %s...)" % (path, SCHEMA_PREFIX))
    if not isinstance(data.get("findings"), list):
        raise PreviousReportError("previous report %s has no findings list" % path)
    return data


def _finding_index(path, findings):
    """{key: (status, severity)} of ``findings``, each checked on the way (one pass over 25,000 findings: the
    forked child of audit_evaluate reads them while the rules run, and the evaluation waits for it): rule,
    subject kind, subject id and status must be strings (json.loads makes no str subclass)."""
    index = {}
    for i, f in enumerate(findings):
        try:
            s = f["subject"]
            k, status = (f["rule"], s["kind"], s["id"]), f["status"]
        except (KeyError, TypeError):
            k = status = None
        if status.__class__ is not str or k[0].__class__ is not str or k[1].__class__ is not str or k[2].__class__ is not str:
            raise PreviousReportError("previous report %s: findings[%d] has no rule, subject.kind, subject.id or status "
                                      "(each a string)" % (path, i))
        index[k] = (status, f.get("severity"))
    return index


def _index_of(previous, findings):
    """previous_index's dict, ``findings`` being that report's finding index (_finding_index)."""
    return {"generated_at": previous.get("generated_at"), "policy_digest": previous.get("policy_digest"),
            "total": len(previous["findings"]), "findings": findings}


def previous_index(previous):
    """What compare needs of a previous report (a load_previous dict): its run and, per finding key,
    (status, severity). Small enough to travel from a forked child (see audit_evaluate)."""
    return _index_of(previous, dict((key(f), (f["status"], f.get("severity"))) for f in previous["findings"]))


def load_index(path):
    """previous_index of the report at ``path`` (PreviousReportError as load_previous), checked and indexed in one
    pass over its findings."""
    data = _parsed(path)
    return _index_of(data, _finding_index(path, data["findings"]))


def _entry(k, severity, before, now):
    return {"rule": k[0], "subject": {"kind": k[1], "id": k[2]}, "severity": severity, "before": before, "now": now}


def compare(findings, previous, source=None):
    """compare_index against a previous report dict (or None)."""
    return compare_index(findings, previous_index(previous) if previous is not None else None, source)


def compare_index(findings, previous, source=None):
    """Tag ``findings`` (this run's, changed in place) against ``previous`` (a previous_index or None) and
    return report.json's ``since_previous``: {"previous": {...} or None, "counts": {change: n},
    change: [entry, ...]} with entry {"rule", "subject", "severity", "before", "now"}."""
    out = {"previous": None, "counts": dict((c, 0) for c in CHANGES)}
    for c in CHANGES:
        out[c] = []
    if previous is None:
        return out
    out["previous"] = {"generated_at": previous["generated_at"], "policy_digest": previous["policy_digest"],
                       "path": source, "total": previous["total"]}
    before = previous["findings"]
    seen = set()
    for f in findings:
        k = key(f)
        seen.add(k)
        old = before.get(k)
        was_bad = old is not None and old[0] in BAD
        change = None
        if f["status"] in BAD:
            change = STILL if was_bad else NEW
        elif was_bad and f["status"] == PASS:
            change = FIXED
        elif was_bad:  # waived or not applicable now: no fix, listed with what it is now
            out[GONE].append(_entry(k, f.get("severity"), old[0], f["status"]))
        if change:
            f["since_previous"] = change
            out[change].append(_entry(k, f.get("severity"), old[0] if old else None, f["status"]))
    for k, old in before.items():
        if k not in seen and old[0] in BAD:
            out[GONE].append(_entry(k, old[1], old[0], None))
    for c in CHANGES:
        out["counts"][c] = len(out[c])
    return out
