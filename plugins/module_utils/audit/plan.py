# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation plan: one pure function, (policy, evidence, findings) -> what enforcement carries out.

The hypervisor and guest roles do what the plan says and nothing else, so what is changed is
decided once, on the controller, from the same findings the report shows. The plan is keyed by
inventory host; each remediation entry names the rules it remediates and the subjects it acts on.

What is planned: a finding with status fail (not waived, not error) of an enabled rule whose
remediation exists (rules/ ``remediated_by``) and whose effective mode is enforce, while the
policy's global mode is enforce. A finding that fails only in the live definition of a running
domain (its persistent definition is fixed) needs nothing but a restart: it is listed under
``pending_restart``. Every other failing or error finding is listed under ``not_enforced`` with
its reason. Pure (no Ansible imports), deterministic (sorted lists), O(n) over the findings.

Evidence layout: see audit/engine.py. A guest's domain UUID (the ledger's key) is found through
the hypervisor evidence: guest vars hypervisor + domain -> that hypervisor's domain of that name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import BAD, ERROR, FAIL

# Reasons a failing finding is not remediated (the plan's not_enforced entries).
POLICY_AUDIT = "policy mode audit"
RULE_AUDIT = "mode audit"
NO_REMEDIATION = "no remediation"
NOT_EVALUATED = "error: not evaluated"

# The subject kind each remediation acts on (a finding of another kind, e.g. an expired waiver
# or an unreachable hypervisor, is not something it can fix).
SUBJECT_KIND = {"domain_policy": "domain", "identity_reseal": "guest", "sysctl": "guest",
                "expire_passwords": "guest"}
SYSCTL_SETTINGS = {"DIV-10": {"kernel.randomize_va_space": "2"}}
# Identity items resealed per set of guests sharing one value: rule -> the guest fact holding it.
IDENTITY_DIGESTS = {"DIV-01": "machine_id_digest", "DIV-04": "random_seed_digest"}


def _reason(policy, finding, remediation):
    """Why ``finding`` (status fail or error) is not remediated, or None when it is."""
    if policy.get("mode", "enforce") != "enforce":
        return POLICY_AUDIT
    if remediation is None:
        return NO_REMEDIATION
    if policy["rules"][finding["rule"]].get("mode") != "enforce":
        return RULE_AUDIT
    if finding["status"] == ERROR:
        return NOT_EVALUATED
    if finding["subject"]["kind"] != SUBJECT_KIND[remediation["remediation"]]:
        return NO_REMEDIATION  # e.g. an expired waiver: renewing it or not is a person's decision
    return None


def _triage(policy, findings):
    """(planned findings, pending_restart entries, not_enforced entries)."""
    planned, pending, skipped = [], [], []
    for f in findings:
        rid, status = f["rule"], f["status"]
        if status not in BAD or not policy["rules"].get(rid, {}).get("enabled", True):
            continue
        sid = f["subject"]["id"]
        reason = _reason(policy, f, RULES[rid].remediated_by)
        if reason:
            skipped.append({"rule": rid, "subject": sid, "reason": reason})
        elif f.get("pending_restart"):
            pending.append({"rule": rid, "subject": sid, "message": f["message"]})
        elif status == FAIL:
            planned.append(f)
    return planned, pending, skipped


class _Resealed(object):
    """Which member of each duplicate set keeps its value under reseal "all_but_one".

    A set is every guest holding one value: the guest of a finding plus the others its evidence
    names. Its keeper is the planned member whose name sorts first, unless a member of the set is
    not planned at all (waived, say): that one already keeps the value, so every planned member
    reseals. Counting planned members per value keeps this O(n)."""

    def __init__(self, all_but_one):
        self.all_but_one = all_but_one
        self.planned = {}  # (rule, value) -> set of planned guests holding it
        self.holders = {}  # (rule, value) -> number of guests holding it
        self.keeper = {}  # (rule, value) -> the planned guest keeping it, or None, computed once

    def add(self, rid, value, guest, others):
        if value and others:
            self.planned.setdefault((rid, value), set()).add(guest)
            self.holders[(rid, value)] = 1 + len(others)

    def reseals(self, rid, value, guest):
        """Whether ``guest`` gets a new value for ``value`` (False only for the keeper of a set)."""
        key = (rid, value)
        if not self.all_but_one or key not in self.planned:
            return True  # reseal "all", or nothing shared (an empty machine-id, a retired key back)
        if key not in self.keeper:
            members = self.planned[key]
            self.keeper[key] = min(members) if self.holders[key] == len(members) else None
        return guest != self.keeper[key]


def _identity_values(rid, finding, facts):
    """(value, the other holders) pairs a failing identity finding is about."""
    ev = finding.get("evidence") or {}
    if rid in IDENTITY_DIGESTS:
        return [(facts.get(IDENTITY_DIGESTS[rid]), ev.get("shared_with") or [])]
    if rid == "DIV-02":
        return sorted((fp, others) for fp, others in (ev.get("shared") or {}).items())
    return [(fp, ()) for fp in ev.get("fingerprints") or []]  # RB-06: a retired key is nobody's to keep


def _facts(evidence, guest):
    return ((evidence.get("guests") or {}).get(guest) or {}).get("facts") or {}


def _entry(plan_hosts, host, name, subject):
    entry = plan_hosts.setdefault(host, {}).setdefault(name, {"rules": set(), "subjects": set()})
    entry["subjects"].add(subject)
    return entry


def _plan_identity(hosts, evidence, findings, all_but_one):
    resealed = _Resealed(all_but_one)
    items = []
    for f in findings:
        guest = f["subject"]["id"]
        values = _identity_values(f["rule"], f, _facts(evidence, guest))
        for value, others in values:
            resealed.add(f["rule"], value, guest, others)
        items.append((f, guest, values))
    for f, guest, values in items:
        rid = f["rule"]
        if rid in IDENTITY_DIGESTS:
            digest = values[0][0]
            if not resealed.reseals(rid, digest, guest):
                continue
            entry = _entry(hosts, guest, "identity_reseal", guest)
            entry[IDENTITY_DIGESTS[rid]] = digest
        else:
            fps = [fp for fp, _ in values if resealed.reseals(rid, fp, guest)]
            if not fps:
                continue
            entry = _entry(hosts, guest, "identity_reseal", guest)
            entry.setdefault("ssh_fingerprints", set()).update(fps)
        entry["rules"].add(rid)


def _plan_guest(hosts, f):
    guest, rid, name = f["subject"]["id"], f["rule"], RULES[f["rule"]].remediated_by["remediation"]
    entry = _entry(hosts, guest, name, guest)
    entry["rules"].add(rid)
    if name == "sysctl":
        entry.setdefault("settings", {}).update(SYSCTL_SETTINGS[rid])
    elif name == "expire_passwords":
        entry.setdefault("accounts", set()).update((f.get("evidence") or {}).get("accounts") or [])


def _plan_domain(hosts, f):
    sid = f["subject"]["id"]
    hv, _, dom = sid.partition("/")
    entry = _entry(hosts, hv, "domain_policy", sid)
    entry["rules"].add(f["rule"])
    entry.setdefault("domains", {}).setdefault(dom, set()).add(f["rule"])


def _domain_uuids(evidence):
    """(hypervisor, domain name) -> uuid, for every domain of every reachable hypervisor."""
    out = {}
    for hv, ev in (evidence.get("hypervisors") or {}).items():
        if ev and not ev.get("error"):
            for d in ev.get("domains") or []:
                if d.get("name") and d.get("uuid"):
                    out[(hv, d["name"])] = d["uuid"]
    return out


def _plan_ledger(hosts, evidence):
    """A ledger entry for every guest with evidence whose domain UUID is known: records the hardening."""
    uuids = _domain_uuids(evidence)
    for guest, rec in (evidence.get("guests") or {}).items():
        v = rec.get("vars") or {}
        uuid = uuids.get((v.get("hypervisor"), v.get("domain")))
        if rec.get("error") or not rec.get("facts") or not uuid:
            continue
        entry = _entry(hosts, guest, "ledger", guest)
        entry.update(hypervisor=v["hypervisor"], uuid=uuid)
        reseal = hosts[guest].get("identity_reseal") or {}
        entry["retire_fingerprints"] = set(reseal.get("ssh_fingerprints") or ())


def _complete(hosts):
    """Every entry carries all its keys: domain_policy its fixes, identity_reseal each item (None or [])."""
    for h in hosts.values():
        if "domain_policy" in h:
            h["domain_policy"]["fixes"] = set(h["domain_policy"]["rules"])
        if "identity_reseal" in h:
            for key, default in (("machine_id_digest", None), ("random_seed_digest", None), ("ssh_fingerprints", set())):
                h["identity_reseal"].setdefault(key, default)


def _finish(value):
    """Sets become sorted lists, dicts get sorted keys, recursively: the plan is deterministic."""
    if isinstance(value, dict):
        return dict((k, _finish(value[k])) for k in sorted(value))
    if isinstance(value, (set, frozenset, list, tuple)):
        items = [_finish(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


def build_plan(policy, evidence, findings):
    """The remediation plan for ``findings`` (engine.evaluate on ``evidence`` under ``policy``).

    Returns {"hosts": {inventory name: {remediation: entry}}, "pending_restart": [...],
    "not_enforced": [...], "steps": number of remediation entries (ledger entries excluded)}.
    The cyclic garbage collector is paused meanwhile, as in engine.evaluate: the plan is acyclic,
    and full scans over a large fleet's findings would make planning superlinear.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(policy, evidence, findings)
    finally:
        if was_enabled:
            gc.enable()


def _build(policy, evidence, findings):
    planned, pending, skipped = _triage(policy, findings)
    hosts = {}
    identity = []
    for f in planned:
        name = RULES[f["rule"]].remediated_by["remediation"]
        if name == "identity_reseal":
            identity.append(f)
        elif name == "domain_policy":
            _plan_domain(hosts, f)
        else:
            _plan_guest(hosts, f)
    all_but_one = ((policy.get("params") or {}).get("diversity") or {}).get("reseal") == "all_but_one"
    _plan_identity(hosts, evidence, identity, all_but_one)
    _complete(hosts)
    if policy.get("mode", "enforce") == "enforce":
        _plan_ledger(hosts, evidence)
    steps = sum(1 for h in hosts.values() for name in h if name != "ledger")
    return {
        "hosts": _finish(hosts),
        "pending_restart": sorted(pending, key=lambda e: (e["rule"], e["subject"])),
        "not_enforced": sorted(skipped, key=lambda e: (e["rule"], e["subject"], e["reason"])),
        "steps": steps,
    }
