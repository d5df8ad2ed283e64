# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy engine: one pure function, (policy, evidence of all hosts) -> findings.

Runs once on the controller so fleet rules see everything. Fleet comparisons use hash maps built
once per run (O(n)), never pairwise loops. No Ansible imports here.

Evidence layout (what the audit role hands over):

    {"hypervisors": {name: {"error": None | str, "uri": str, "host": {...}, "domains": [...]}},
     "guests":      {name: {"error": None | str, "vars": {service, hypervisor, domain, data_class,
                                          service_address, owner, expires},
                            "facts": {...}}},
     "vcenters":    {name: {"error": None | str, "vms": [...] (evidence/vsphere.py),
                            "inventory": {vm name: {data_class, service}} (vmguard_vcenter_vms)}}}

vCenter VMs are subjects of kind ``vcenter_vm`` with ids ``<vcenter>/<vm>`` (``<vcenter>/<vm>#<moid>`` for a name
the vCenter's VMs carry more than once); an unreachable vCenter
is one error finding per vcenter_vm rule with id ``<vcenter>/*``. A vcenter_vm check whose evidence
says ``pending_power_cycle`` makes a finding with ``pending_restart: true``. A check may carry its own
``remediation`` text (the vSphere ones do): findings then show it instead of the rule's libvirt text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import gc
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, NotCollected
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import CHECK_STATUSES, checked_verdict, invalid_verdict
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import vsphere
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import BAD, ERROR, FAIL, NA, PASS, SEVERITIES, STATUSES, WAIVED
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_date, parse_iso, utc

SCHEMA = "vmguard.report/v1"
BAD_STATUSES = frozenset(BAD)  # "status in BAD" as one hash lookup (the hot loop asks it for every finding)


class Context(object):
    """What a check may look at: params, the clock, all evidence and shared fleet indexes."""

    def __init__(self, policy, evidence, now=None):
        self.policy = policy
        self.params = policy["params"]
        self.now = time.time() if now is None else now
        self.hypervisors = evidence.get("hypervisors") or {}
        self.guests = evidence.get("guests") or {}
        self.vcenters = evidence.get("vcenters") or {}
        self._cache = {}
        self.guest_names = sorted(self.guests)
        # The rule ids this run evaluates (evaluate() narrows it): a check judging several rules in one pass
        # over the fleet (rules.check's batch) does the work of these only.
        self.selected = frozenset(RULES)

    # Indexes are built on first use and shared by every check of the run.
    def index(self, name, build):
        try:
            return self._cache[name]  # the hot path: every check of every subject asks
        except KeyError:
            value = self._cache[name] = build()
            return value

    def domains(self):
        """(hypervisor name, domain evidence) for every domain on every reachable hypervisor."""
        for hv, ev in sorted(self.hypervisors.items()):
            if not ev.get("error"):
                for d in ev.get("domains") or []:
                    yield hv, d

    def inventory_domains(self):
        """(hypervisor, domain name) -> guest name, from the inventory."""
        def build():
            out = {}
            for g, rec in self.guests.items():
                v = rec.get("vars") or {}
                if v.get("hypervisor") and v.get("domain"):
                    out[(v["hypervisor"], v["domain"])] = g
            return out
        return self.index("inventory_domains", build)

    def guest_of_domain(self, hv, domain):
        return self.inventory_domains().get((hv, domain["name"]))

    def domain_of_guest(self, guest):
        v = (self.guests.get(guest) or {}).get("vars") or {}
        hv = self.hypervisors.get(v.get("hypervisor"))
        if not hv or hv.get("error"):
            return None
        by_name = self.index("domains_by_name:" + v["hypervisor"],
                             lambda: dict((d["name"], d) for d in hv.get("domains") or []))
        return by_name.get(v.get("domain"))

    def service_of_domain(self, hv, domain):
        g = self.guest_of_domain(hv, domain)
        if g:
            svc = (self.guests[g].get("vars") or {}).get("service")
            if svc:
                return svc
        return (domain.get("metadata") or {}).get("service")

    def data_class_of_domain(self, hv, domain):
        """The guest's vmguard_data_class from the inventory, else the domain's metadata; blank counts as unset."""
        g = self.guest_of_domain(hv, domain)
        cls = (self.guests[g].get("vars") or {}).get("data_class") if g else None
        if isinstance(cls, str) and cls.strip() or (cls is not None and not isinstance(cls, str)):
            return cls
        return (domain.get("metadata") or {}).get("data_class")

    def ledger_of_guest(self, guest):
        """The ledger record of the guest's domain; None when there is none (never hardened by vmguard) or the
        guest names no hypervisor and domain (no libvirt ledger to read).

        NotCollected (the finding is an error) when the record could not be read: the guest's hypervisor is
        not audited, did not answer or sent no domain list, or has no readable domain of that name. "No ledger
        record" there would make the rollback guards (RB-05..10) not applicable, and a guest rolled back on
        an unreachable hypervisor would pass the gate."""
        v = (self.guests.get(guest) or {}).get("vars") or {}
        hv_name, name = v.get("hypervisor"), v.get("domain")
        if not hv_name or not name:
            return None
        where = "the ledger record of %s/%s" % (hv_name, name)
        hv = self.hypervisors.get(hv_name)
        if hv is None:
            raise NotCollected("%s: hypervisor %s is not audited (not in the hypervisor group)" % (where, hv_name))
        if hv.get("error"):
            raise NotCollected("%s: hypervisor %s could not be read: %s" % (where, hv_name, hv["error"]))
        if hv.get("domains") is None:
            raise NotCollected("%s: the hypervisor's domains were not collected" % where)
        d = self.domain_of_guest(guest)
        if d is None:
            raise NotCollected("%s: %s has no domain %s" % (where, hv_name, name))
        if d.get("error"):
            raise NotCollected("%s: the domain could not be read: %s" % (where, d["error"]))
        if "ledger" not in d:
            raise NotCollected("%s not collected" % where)
        return d["ledger"]

    def age_days(self, iso_time):
        return (self.now - parse_iso(iso_time)) / 86400.0

    def guest_subjects(self):
        """(subject dict, guest name, error or None) of every guest in guest_names order, built once per run; the
        error (unreachable, no evidence) makes the guest's finding of every rule an error."""
        return _guest_subjects(self)

    def guest_facts(self):
        """The facts of every guest in guest_names order (None for a guest whose subject has an error), gathered with
        the subjects (guest_subjects): a check going through the whole fleet finds them at hand."""
        _guest_subjects(self)
        return self._cache["engine:guest_facts"]

    def finding_templates(self, rid, kind):
        """(good, bad): the two prebuilt findings of rule ``rid``'s check of subjects of ``kind`` in this run (the
        rule's fields, keys in report order; status, subject, message and evidence None), once per run. Every
        finding of the check is a copy of one with its own four fields set: bad for fail and error (it carries
        the remediation text), good for the rest. A batch (rules.check) builds its findings from these too."""
        def build():
            rule = RULES[rid]
            fn = rule.checks[kind]
            return _templates(rid, rule.area, self.policy["rules"][rid]["severity"],
                              getattr(fn, "remediation", None) or rule.remediation)
        return self.index("engine:templates:%s:%s" % (rid, kind), build)


def _subjects(ctx, kind, needs_facts=True, host_checked=False):
    """Yield (subject dict, evidence for the check, error or None). ``host_checked``: the rule has a hypervisor
    check too, whose finding on an unreachable hypervisor is the rule's error for it."""
    if kind == "hypervisor":
        for hv, ev in sorted(ctx.hypervisors.items()):
            yield {"kind": "hypervisor", "id": hv}, ev, ev.get("error")
    elif kind == "domain":
        for hv, ev in sorted(ctx.hypervisors.items()):
            if ev.get("error"):
                # The domains are unknown: one error per domain rule for the whole hypervisor, unless the rule's
                # hypervisor check gives it (a second finding of the same rule and subject would be one identity
                # twice: duplicate OSCAL UUIDs and SARIF fingerprints, one "since the previous run" key).
                if not host_checked:
                    yield {"kind": "hypervisor", "id": hv}, ev, ev["error"]
                continue
            if ev.get("domains") is None:  # evidence without its domain list: no domain rule passes unseen
                yield {"kind": "domain", "id": "%s/*" % hv}, (hv, None), "the hypervisor's domains were not collected"
                continue
            for d in ev["domains"]:
                yield {"kind": "domain", "id": "%s/%s" % (hv, d["name"])}, (hv, d), d.get("error")
    elif kind == "guest":
        yield from _guest_subjects(ctx, needs_facts)
    elif kind == "image":
        # Base (backing) images of the domains' disks, one subject each (DIV-06).
        for hv, ev in sorted(ctx.hypervisors.items()):
            if ev.get("error"):
                continue  # the rule's hypervisor check already reports the unreachable hypervisor
            for img in (ev.get("host") or {}).get("base_images") or []:
                yield {"kind": "image", "id": "%s:%s" % (hv, img.get("path"))}, (hv, img), None
    elif kind == "vcenter_vm":
        for vc, ev in sorted(ctx.vcenters.items()):
            if ev.get("error"):
                yield {"kind": "vcenter_vm", "id": "%s/*" % vc}, (vc, None), ev["error"]
                continue
            if ev.get("vms") is None:  # evidence without its VM list: an error per rule, as for an unreachable vCenter
                yield {"kind": "vcenter_vm", "id": "%s/*" % vc}, (vc, None), "the vCenter's VMs were not collected"
                continue
            names = vsphere.name_counts(ev["vms"])  # a repeated name is <name>#<moid>: two VMs never merge
            for vm in ev["vms"]:
                yield {"kind": "vcenter_vm", "id": "%s/%s" % (vc, vsphere.vm_id(vm, names))}, (vc, vm), vm.get("error")
    elif kind == "fleet":
        yield {"kind": "fleet", "id": "fleet"}, None, None


def _guest_subjects(ctx, needs_facts=True):
    """The guest subjects as a list, built once per run and shared by every guest rule (subject dicts
    are never mutated); without ``needs_facts`` a guest's missing evidence is no error for the check."""
    def build():
        out, facts = [], []
        add, add_facts = out.append, facts.append
        guests = ctx.guests
        for g in ctx.guest_names:
            rec = guests[g]
            f = rec.get("facts")
            err = rec.get("error") or (None if f else "no guest evidence collected")
            add(({"kind": "guest", "id": g}, g, err))
            add_facts(None if err else f)
        ctx.index("engine:guest_facts", lambda: facts)
        return out
    subjects = ctx.index("engine:guest_subjects", build)
    if needs_facts:
        return subjects
    return ctx.index("engine:guest_subjects_no_facts", lambda: [(subject, g, None) for subject, g, err in subjects])


def _guest_subject_errors(ctx):
    """(position, subject, error) of the guest subjects with an error (no evidence), once per run."""
    return ctx.index("engine:guest_subject_errors",
                     lambda: [(i, subject, err) for i, (subject, g, err) in enumerate(_guest_subjects(ctx)) if err])


def _waiver_for(waivers, rid, subject_id, status, today):
    """(waiver, expired, covers) of the first waiver matching rule and subject that accepts ``status`` (its
    statuses; a failure by default), else of the first matching one (covers False), else (None, False, False)."""
    first = None
    for w in waivers:
        if w["rule"] == rid and fnmatch.fnmatchcase(subject_id, w["subject"]):
            if status in w.get("statuses", ("fail",)):
                return w, parse_date(w["expires"]) < today, True
            first = first or w
    return first, False, False


# Ansible's own special tags: they select tasks, not rules.
SPECIAL_TAGS = frozenset(("all", "always", "never", "tagged", "untagged"))


def _rules_tagged(tags):
    return set(rid for rid, r in RULES.items() if rid in tags or r.area in tags)


def select_rules(tags):
    """Rule ids picked by run tags (rule ids or area names); None when the tags pick no rule."""
    return _rules_tagged(set(tags or [])) or None


def unknown_tags(tags):
    """The tags that name neither a rule id, an area, nor one of Ansible's special tags."""
    areas = set(r.area for r in RULES.values())
    return sorted(t for t in set(tags or []) if t not in RULES and t not in areas and t not in SPECIAL_TAGS)


def select(run_tags=None, skip_tags=None):
    """Rule ids to evaluate for ``--tags``/``--skip-tags`` (None = all), or raise ValueError naming
    ``--tags`` that match no rule id or area (a typo such as DIV-2 must not turn into a full audit).
    Skip tags that name no rule skip no rule (they may select other tasks, e.g. molecule-notest)."""
    bad = unknown_tags(run_tags)
    if bad:
        areas = sorted(set(r.area for r in RULES.values()))
        raise ValueError("unknown tag(s) %s: tags select rule ids (e.g. DIV-02) or areas (%s)"
                         % (", ".join(bad), ", ".join(areas)))
    only = select_rules(run_tags)
    skipped = _rules_tagged(set(skip_tags or []))
    if skipped:
        only = (set(only) if only is not None else set(RULES)) - skipped
    return only


NOT_ENABLED = "disabled by the policy (enabled: false)"
NOT_SELECTED = "not selected by --tags / --skip-tags"


def not_evaluated(policy, selected=None):
    """[{rule, area, severity, reason}] of the registry's rules a run with ``policy`` and the rule selection
    ``selected`` (None or "all": every rule; else the rule ids --tags/--skip-tags picked) does not evaluate, in
    registry order: they have no finding, and a report must say so rather than let their absence read as a pass."""
    rules = (policy or {}).get("rules") or {}
    picked = None if selected in (None, "all") else frozenset(selected)
    out = []
    for rid, rule in RULES.items():
        cfg = rules.get(rid) or {}
        if not cfg.get("enabled", True):
            reason = NOT_ENABLED
        elif picked is not None and rid not in picked:
            reason = NOT_SELECTED
        else:
            continue
        out.append({"rule": rid, "area": rule.area, "severity": cfg.get("severity") or rule.severity, "reason": reason})
    return out


def evaluate(policy, evidence, now=None, only=None):
    """Evaluate every enabled rule (or the rule ids in ``only``) on every subject. Returns the findings.

    Findings are acyclic, so the cyclic garbage collector is paused while they are built: with
    hundreds of thousands of them its repeated full scans made the run superlinear.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(policy, evidence, now, only)
    finally:
        if was_enabled:
            gc.enable()


def _run(fn, ctx, ev):
    try:
        verdict = fn(ctx, ev)
    except NotCollected as e:  # evidence without a field the check reads
        return ERROR, "cannot evaluate: %s" % e, {}
    except Exception as e:  # a broken check is an error finding, never a pass
        return ERROR, "check failed: %s: %s" % (type(e).__name__, e), {}
    return checked_verdict(verdict)


def _valid_batch(findings, bad):
    """Check the findings a batch (rules.check) built as _run checks a verdict: an invalid one becomes an error
    (with ``bad``'s remediation text, as every error finding). A fleet run hands over 400,000 findings: the loop
    reads each field once and builds no tuple (3x faster than one tuple per finding); exact types first, a subclass
    of str or dict is then accepted as _run accepts it."""
    statuses, str_, dict_ = CHECK_STATUSES, str, dict
    for finding in findings:
        if finding is None:
            continue
        message = finding["message"]
        if finding["status"] in statuses and message and message.__class__ is str_ and finding["evidence"].__class__ is dict_:
            continue
        verdict = (finding["status"], message, finding["evidence"])
        if not (verdict[0] in statuses and verdict[1] and isinstance(verdict[1], str) and isinstance(verdict[2], dict)):
            finding["status"], finding["message"], finding["evidence"] = invalid_verdict(verdict)
            finding["remediation"] = bad["remediation"]
    return findings


PERSISTENT_PREFIX = "in the persistent definition (takes effect at next start): "
PENDING_SUFFIX = " (fixed in the persistent definition: pending restart)"


def _run_domain(fn, ctx, hd):
    """A domain rule on the live definition and, for a running persistent domain, on the persistent one.

    Returns (status, message, evidence, extra finding fields or None). A change made with
    ``virsh define`` to a running domain shows only in the persistent definition until the next
    start; a fix applied there shows only in the live one until then.
    """
    hv, d = hd
    live = _run(fn, ctx, hd)
    inactive = d.get("inactive")
    if not inactive:
        return live + (None,)
    pers = _run(fn, ctx, (hv, inactive))
    lbad, pbad = live[0] in BAD, pers[0] in BAD
    if not lbad and not pbad:
        if live[0] == NA and pers[0] == PASS:
            # Nothing to judge in the running domain, something that passes in its definition (a console
            # the next start brings, already fixed): the rule applies, and passes.
            return (pers[0], PERSISTENT_PREFIX + pers[1], pers[2], {"definition": "persistent", "pending_restart": False})
        return live + ({"definition": "both", "pending_restart": False},)
    if pbad and not lbad:
        return (pers[0], PERSISTENT_PREFIX + pers[1], pers[2],
                {"definition": "persistent", "pending_restart": False})
    if live[0] == FAIL and not pbad:
        return (live[0], live[1] + PENDING_SUFFIX, live[2], {"definition": "live", "pending_restart": True})
    if lbad and not pbad:  # the live definition could not be judged: no fix is claimed pending
        return live + ({"definition": "live", "pending_restart": False},)
    status = ERROR if ERROR in (live[0], pers[0]) else FAIL
    message = live[1] if live[1] == pers[1] else "%s; %s%s" % (live[1], PERSISTENT_PREFIX, pers[1])
    return status, message, live[2], {"definition": "both", "pending_restart": False}


WAIVER_NOT_FOR_ERROR = (" (the waiver for %s on '%s' accepts a failure, not an error: the rule could not be evaluated; "
                        "a waiver with statuses [error] accepts that)")
WAIVER_NOT_FOR_FAIL = (" (the waiver for %s on '%s' accepts an error only (statuses [error]), not this failure; "
                       "statuses [fail, error] accepts both)")


def _bad_finding(finding, waivers, used_waivers, rid, today):
    """Apply the first waiver matching a failed or errored finding that accepts its status (in place). A waiver
    accepts a known failure; an error (the rule could not be evaluated: no evidence, unreachable) only when the
    waiver names it in its statuses, else it stays an error the gate counts, with a note."""
    w, expired, covers = _waiver_for(waivers, rid, finding["subject"]["id"], finding["status"], today)
    if w is None:
        return
    used_waivers.add(id(w))
    if not covers:  # the note says which of the two it is: a failure must never read as "could not be evaluated"
        finding["message"] += (WAIVER_NOT_FOR_ERROR if finding["status"] == ERROR else WAIVER_NOT_FOR_FAIL) % (rid, w["subject"])
        return
    if expired:
        finding["message"] += " (waiver expired %s: %s)" % (w["expires"], w["reason"])
    else:
        finding["waived_status"] = finding["status"]
        finding["waiver"] = {"reason": w["reason"], "expires": w["expires"], "subject": w["subject"]}
        finding["status"] = "waived"
        finding["message"] = "%s [waived until %s: %s]" % (finding["message"], w["expires"], w["reason"])


def _templates(rid, area, severity, remediation):
    """(good, bad) prebuilt findings (Context.finding_templates)."""
    good = {"rule": rid, "area": area, "severity": severity, "status": None, "subject": None, "message": None,
            "remediation": "", "evidence": None}
    return good, dict(good, remediation=remediation)


def _batch_findings(ctx, rid, fn):
    """The findings of guest check ``fn`` from its batch (rules.check), or None to run ``fn`` guest by guest.
    The batch leaves None for a guest subject with an error (no evidence): its finding is made here."""
    batch = getattr(fn, "batch", None)
    if batch is None or not getattr(fn, "needs_facts", True):
        return None
    findings = batch(ctx)
    if findings is None:
        return None
    bad = ctx.finding_templates(rid, "guest")[1]
    if not getattr(fn, "batch_checked", False):
        _valid_batch(findings, bad)
    bad_copy = bad.copy
    for i, subject, err in _guest_subject_errors(ctx):
        finding = findings[i] = bad_copy()
        finding["status"], finding["subject"], finding["message"], finding["evidence"] = ERROR, subject, "cannot evaluate: %s" % err, {}
    return findings


def _per_subject(ctx, fn, subjects):
    for dummy, ev, err in subjects:
        if err:
            yield None
            continue
        yield _run(fn, ctx, ev)


def _check_findings(ctx, rid, kind, fn):
    """The findings of one check on every subject of its kind, as a list.

    The hot loop of a fleet run (one pass per guest per rule): locals only, and each finding a copy of
    one of two prebuilt dicts (Context.finding_templates) with its own four fields set. A guest check with a
    batch (rules.check) builds its findings itself, from the same dicts.
    """
    if kind == "guest":
        findings = _batch_findings(ctx, rid, fn)
        if findings is not None:
            return findings
    needs_facts = getattr(fn, "needs_facts", True)
    subjects = _guest_subjects(ctx, needs_facts) if kind == "guest" else \
        list(_subjects(ctx, kind, needs_facts, host_checked=kind == "domain" and "hypervisor" in RULES[rid].checks))
    good, bad = ctx.finding_templates(rid, kind)
    findings = []
    append = findings.append
    if kind == "domain":
        for subject, ev, err in subjects:
            if err:
                status, message, detail, extra = ERROR, "cannot evaluate: %s" % err, {}, None
            else:
                status, message, detail, extra = _run_domain(fn, ctx, ev)
            finding = (bad if status in BAD else good).copy()
            finding["status"], finding["subject"], finding["message"], finding["evidence"] = status, subject, message, detail
            if extra:
                finding.update(extra)
            append(finding)
        return findings
    good_copy, bad_copy = good.copy, bad.copy
    pending = kind == "vcenter_vm"  # a vCenter VM's verdict may wait for a power cycle (the module docstring)
    for (subject, ev, err), verdict in zip(subjects, _per_subject(ctx, fn, subjects)):
        if err:
            status, message, detail = ERROR, "cannot evaluate: %s" % err, {}
        else:
            status, message, detail = verdict
        finding = bad_copy() if status in BAD_STATUSES else good_copy()
        finding["status"] = status
        finding["subject"] = subject
        finding["message"] = message
        finding["evidence"] = detail
        if pending and detail.get("pending_power_cycle"):
            finding["pending_restart"] = True
        append(finding)
    return findings


def _evaluate(policy, evidence, now, only):
    ctx = Context(policy, evidence, now)
    today = utc(ctx.now).date()
    waivers = policy.get("waivers") or []
    used_waivers = set()
    findings = []
    append = findings.append
    ctx.selected = frozenset(rid for rid in RULES if policy["rules"][rid].get("enabled", True) and (only is None or rid in only))
    for rid, rule in RULES.items():
        if rid not in ctx.selected:
            continue
        for kind, fn in rule.checks.items():
            checked = _check_findings(ctx, rid, kind, fn)
            if not waivers:
                findings.extend(checked)
                continue
            for finding in checked:
                if finding["status"] in BAD:
                    _bad_finding(finding, waivers, used_waivers, rid, today)
                append(finding)
    # An expired waiver is reported on its own, so it cannot hide in a passing run. Its subject id is the waiver's
    # subject glob (with the rule, what identifies it from run to run: removing another waiver renumbers nothing),
    # "#2", "#3"... for a repeated rule and glob.
    seen = {}
    for w in waivers:
        n = seen[(w["rule"], w["subject"])] = seen.get((w["rule"], w["subject"]), 0) + 1
        if parse_date(w["expires"]) < today and (only is None or w["rule"] in only):
            findings.append({
                "rule": w["rule"], "area": RULES[w["rule"]].area, "severity": policy["rules"][w["rule"]]["severity"],
                "status": FAIL, "subject": {"kind": "fleet", "id": "waiver/%s%s" % (w["subject"], "#%d" % n if n > 1 else "")},
                "message": "waiver for %s on '%s' expired on %s (%s)" % (w["rule"], w["subject"], w["expires"], w["reason"]),
                "remediation": "fix the finding, or renew the waiver with a new expiry and reason",
                "evidence": {"waiver": dict(w)},
            })
    return findings


def summarize(findings):
    statuses = STATUSES
    summary = dict([("total", len(findings))] + [(s, 0) for s in statuses])
    by_area, by_severity = {}, dict((s, dict((k, 0) for k in statuses)) for s in SEVERITIES)
    for f in findings:
        summary[f["status"]] += 1
        a = by_area.setdefault(f["area"], dict((k, 0) for k in statuses))
        a[f["status"]] += 1
        by_severity[f["severity"]][f["status"]] += 1
    summary["by_area"] = by_area
    summary["by_severity"] = by_severity
    return summary


# The statuses that never fail the run: anything else at or above fail_on does (fail, error, and a status no
# report knows: what cannot be read as a pass is no pass).
GATE_PASSES = frozenset((PASS, WAIVED, NA))


def gate(findings, fail_on="high"):
    """The findings that fail the run: status fail or error (or any status but pass, waived and not_applicable)
    at or above ``fail_on``."""
    floor = SEVERITIES.index(fail_on)
    return [f for f in findings if f["status"] not in GATE_PASSES and SEVERITIES.index(f["severity"]) >= floor]
