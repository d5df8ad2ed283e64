# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DIV: golden image diversity. "If all VMs are identical, break one and you break them all."

Fleet comparisons go through indexes built once per run (value -> set of guests). DIV-06 judges
the base images themselves (subject kind "image", one finding per backing image of any domain disk,
verified offline on the hypervisor), not a lineage record inside the guest: that record says what a
builder wrote, not what the guest was cloned from.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import Counter
from itertools import compress, count
from operator import itemgetter, not_

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import (
    PASS, Remediation, rule, check, checked_verdict, collected, named, ok, fail, error, na)
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import BAD, ERROR
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import too_far_ahead

rule("DIV-01", "diversity", "high", "GUEST+FLEET", "machine-id unique across all guests",
     "Regenerate /etc/machine-id (and the D-Bus copy) on the guests of the duplicate set "
     "(vmguard.hardening.guest in enforce mode, or systemd-machine-id-setup after emptying it).",
     remediated_by=Remediation("identity_reseal", "regenerate /etc/machine-id (and the D-Bus copy)"))
rule("DIV-02", "diversity", "critical", "GUEST+FLEET", "SSH host keys unique across all guests",
     "Rotate the SSH host keys of the duplicate set; record the old fingerprints in the ledger's retired list.",
     remediated_by=Remediation("identity_reseal", "rotate the shared SSH host keys; the old fingerprints go to the ledger's retired list"))
rule("DIV-03", "diversity", "high", "GUEST+FLEET", "no identical password hash across guests",
     "Set a distinct password per guest (or lock the account); the guest role can expire the duplicated password.",
     remediated_by=Remediation("expire_passwords", "chage --lastday 0 on the accounts whose password hash is duplicated", opt_in=True))
rule("DIV-04", "diversity", "medium", "GUEST+FLEET", "systemd random seed not identical across guests",
     "Reseed: remove /var/lib/systemd/random-seed and restart systemd-random-seed.",
     remediated_by=Remediation("identity_reseal", "reseed: replace the systemd random seed"))
rule("DIV-05", "diversity", "high", "DOM+FLEET", "domain UUIDs and MAC addresses unique across hypervisors",
     "Re-create the clone's identity (new UUID and MAC addresses) when cloning, e.g. virt-clone.")
rule("DIV-06", "diversity", "high", "IMG", "golden image sealed",
     "Rebuild the base image sealed (vmguard.hardening.golden_image seals and verifies at build; "
     "vmguard.hardening.image_seal audits an existing tree), then rebase the overlays onto it; the findings "
     "name what a clone would inherit (machine-id, SSH host keys, random seed, histories, logs, leases).")
rule("DIV-07", "diversity", "medium", "FLEET", "blast radius of one image build",
     "Rebuild and roll out images in smaller cohorts, or raise max_clones_per_build / max_fleet_share deliberately.")
rule("DIV-08", "diversity", "medium", "GUEST", "image build age within max_image_age_days",
     "Rebuild the golden image (security updates) and redeploy the guest.")
rule("DIV-09", "diversity", "low", "DOM", "virtio-rng device present",
     "Add <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng> to the domain.",
     remediated_by=Remediation("domain_policy", "add a virtio-rng device (DIV-09 fixer)"))
rule("DIV-10", "diversity", "medium", "GUEST", "kernel.randomize_va_space = 2",
     "Set kernel.randomize_va_space=2 in a sysctl drop-in and apply it.",
     remediated_by=Remediation("sysctl", "kernel.randomize_va_space = 2 in a sysctl drop-in, applied"))


# libvirt's virtio models; the (non-)transitional variants are the same device for the guest's entropy.
VIRTIO_RNG_MODELS = ("virtio", "virtio-transitional", "virtio-non-transitional")


def _facts(ctx, guest):
    return ctx.guests[guest]["facts"]


def _with_facts(ctx):
    """(guest, facts) of every guest with evidence, computed once per run."""
    def build():
        return [(g, rec["facts"]) for g, rec in ctx.guests.items() if not rec.get("error") and rec.get("facts")]
    return ctx.index("div:with_facts", build)


# DIV-01..04 compare every guest with the whole fleet through one duplicate index per rule: value -> the set
# of guests having it, kept only for the values at least two guests share, and the set of guests sharing any
# value (O(n), once per run). A fleet run judges the four in a pass over the guests per rule (_identity_findings,
# which makes the findings themselves): it judges each guest as if it shared nothing, finds the values met twice,
# then judges again the few guests the indexes say share a value. Either way the verdict is the one of the
# rule's function below (_div01..04), the one place that says what each rule finds (the pass makes the passing
# verdicts inline, as these functions do: tests/unit/test_fleet_speed_div.py keeps them identical).

MACHINE_ID, DBUS_MACHINE_ID = "/etc/machine-id", "/var/lib/dbus/machine-id"


def _machine_id(facts):
    """The machine-id digest and, when the D-Bus copy is a file of its own (guestscan reports the machine-id's digest
    for the link to /etc/machine-id), that copy's: libdbus reads /var/lib/dbus/machine-id first, so two guests
    sharing it share their D-Bus identity whatever /etc/machine-id says."""
    mid, dbus = facts.get("machine_id_digest"), facts.get("dbus_machine_id_digest")
    return (mid,) if not dbus or dbus == mid else (mid, dbus)


def _host_keys(facts):
    return [k["fingerprint"] for k in facts.get("ssh_host_keys") or ()]


def _password_hashes(facts):
    return [h for a in facts.get("accounts") or () if (h := _hash_of(a))]


def _hash_of(account):
    """The digest of an account's crypt string: its hash, or the hash behind its '!' lock (guest_facts'
    locked_hash_digest: usermod -U gives it back, so a locked duplicate is one unlock away from a shared password)."""
    return account.get("hash_digest") or account.get("locked_hash_digest")


def _seed(facts):
    return (facts.get("random_seed_digest"),)


def _shared_by(dups, v, first_owner, g):
    """Note that guest ``g`` has value ``v``, which guest ``first_owner`` had first."""
    owners = dups.get(v)
    if owners is None:
        dups[v] = {first_owner, g}
    else:
        owners.add(g)


def _with_sharing(dups):
    """(dups, the guests that share at least one value)."""
    sharing = set()
    for owners in dups.values():
        sharing.update(owners)
    return dups, sharing


def _one_index(ctx, values_of):
    """The index of one rule's values (DUPLICATE_VALUES) over the guests with evidence."""
    first, dups = {}, {}
    for g, facts in _with_facts(ctx):
        for v in values_of(facts):
            if v:
                o = first.setdefault(v, g)
                if o is not g:  # another guest had it first (guest names are distinct dict keys)
                    _shared_by(dups, v, o, g)
    return _with_sharing(dups)


def _built(build, *args):
    """(build(*args), None), or (None, the exception it raised)."""
    try:
        return build(*args), None
    except Exception as e:  # pylint: disable=broad-except  # malformed evidence: each guest's check reports it
        return None, e


def _dup_index(ctx, name):
    """(dups, sharing) of index ``name`` (div01..div04), built once per run. An index that some guest's evidence
    breaks re-raises that error for each guest that needs it (a "check failed" error finding, never a pass)."""
    index, err = ctx.index("div:duplicates:" + name, lambda: _built(_one_index, ctx, DUPLICATE_VALUES[name]))
    if err is not None:
        raise err.with_traceback(None)
    return index


def _shared(dups, guest, values):
    """value -> the other guests sharing it, for the guest's ``values`` that are not unique."""
    shared = {}
    for v in values:
        if v:
            owners = dups.get(v)
            if owners is not None:
                shared[v] = sorted(owners - {guest})
    return shared


def _others(shared):
    return sorted(set().union(*shared.values()))


def _message(made, template, n):
    """``template % n``, made once per count and kept in ``made`` (a fleet's passing guests share a handful)."""
    message = made[n] = template % n
    return message


_KEYS_UNSHARED, _HASHES_UNSHARED = {}, {}
BAD_STATUSES = frozenset(BAD)


def _div01(ctx, guest, f, index):
    """DIV-01 on ``guest`` with facts ``f``; ``index``: the run's machine-id index, or None to get it when needed."""
    digest = f.get("machine_id_digest")
    if not digest:
        return fail("/etc/machine-id is empty or missing (uninitialized identity)") if f.get("machine_id_state") == "empty" \
            else error("machine-id not collected%s" % (": %s" % f["machine_id_error"] if f.get("machine_id_error") else ""))
    if index is None:
        index = _dup_index(ctx, "div01")
    if guest in index[1]:
        values = _machine_id(f)
        shared = _shared(index[0], guest, values)
        if shared:
            others = _others(shared)
            copies = [path for path, v in zip((MACHINE_ID, DBUS_MACHINE_ID), values) if v in shared]
            what = "machine-id" if copies[0] == MACHINE_ID else \
                "D-Bus machine-id (%s, which libdbus reads first)" % DBUS_MACHINE_ID
            return fail("%s is shared with %s" % (what, named(others)), shared_with=others, digest=digest[:16],
                        copies=copies)
    return PASS, "machine-id is unique in the fleet", {"digest": digest[:16]}


def _div02(ctx, guest, f, index):
    keys = f.get("ssh_host_keys")
    if keys is None:
        return error("SSH host keys not collected: %s" % (f.get("ssh_host_keys_error") or "missing"))
    if not keys:
        return na("no SSH host keys (no SSH server)")
    if index is None:
        index = _dup_index(ctx, "div02")
    if guest in index[1]:
        shared = _shared(index[0], guest, _host_keys(f))
        if shared:
            return fail("%d SSH host key(s) shared with %s" % (len(shared), named(_others(shared))),
                        shared=dict(shared))
    n = len(keys)
    return PASS, _KEYS_UNSHARED.get(n) or _message(_KEYS_UNSHARED, "%d SSH host key(s), none shared", n), {
        "fingerprints": [k["fingerprint"] for k in keys]}


def _div03(ctx, guest, f, index):
    accounts = f.get("accounts")
    if accounts is None or f.get("accounts_error"):
        return error("password hashes not collected: %s" % (
            f.get("accounts_error") or "accounts missing (is /etc/shadow readable? guest_facts needs become)"))
    hashed = [a for a in accounts if _hash_of(a)]
    if not hashed:
        return na("no account has a password hash: nothing to compare")
    if index is None:
        index = _dup_index(ctx, "div03")
    if guest in index[1]:
        shared = _shared(index[0], guest, _password_hashes(f))
        if shared:
            dup = sorted((a["name"], not a.get("hash_digest")) for a in hashed if _hash_of(a) in shared)
            names, others = [name for name, locked in dup], _others(shared)
            return fail("password hash of %s identical on %s" % (", ".join(
                name + (" (locked)" if locked else "") for name, locked in dup), named(others)), accounts=names,
                shared_with=others)
    n = len(hashed)
    return PASS, _HASHES_UNSHARED.get(n) or _message(_HASHES_UNSHARED, "%d password hash(es), none shared", n), {}


def _div04(ctx, guest, f, index):
    if "random_seed_digest" not in f:
        return error("random seed not collected")
    if f.get("random_seed_error"):
        return error(f["random_seed_error"])
    if not f["random_seed_digest"]:
        return na("no systemd random seed file on this guest")
    if index is None:
        index = _dup_index(ctx, "div04")
    if guest in index[1]:
        shared = _shared(index[0], guest, _seed(f))
        if shared:
            others = _others(shared)
            return fail("random seed identical on %s" % named(others), shared_with=others)
    return PASS, "random seed is unique in the fleet", {}


# Index name -> the values of a guest's facts it compares; rule id -> (index name, verdict), in DIV-01..04 order.
DUPLICATE_VALUES = {"div01": _machine_id, "div02": _host_keys, "div03": _password_hashes, "div04": _seed}
IDENTITY_RULES = (("DIV-01", "div01", _div01), ("DIV-02", "div02", _div02), ("DIV-03", "div03", _div03),
                  ("DIV-04", "div04", _div04))
# What a guest is judged against while the indexes are still being filled: shares nothing.
_UNIQUE = ({}, frozenset())
# The messages of the passing verdicts that do not depend on the guest (_div01, _div04).
_MID_UNIQUE, _SEED_UNIQUE = "machine-id is unique in the fleet", "random seed is unique in the fleet"


def _identity_findings(ctx):
    """Rule id -> the findings of every guest in ctx.guest_names order (None for a guest whose subject has an
    error: the engine makes that finding), for the rules of DIV-01..04 this run evaluates (ctx.selected), from a
    pass over the guests per rule; None when some guest's evidence breaks the pass (each check then runs per guest and
    reports that guest)."""
    try:
        return _one_pass(ctx)
    except Exception:  # pylint: disable=broad-except
        return None


def _finding(templates, subject, verdict):
    """The finding of ``verdict`` on ``subject``, made as the engine makes it (Context.finding_templates), the
    verdict checked as the engine checks one (checked_verdict: the batch is ``batch_checked``)."""
    status, message, detail = checked_verdict(verdict)
    finding = (templates[1] if status in BAD_STATUSES else templates[0]).copy()
    finding["status"], finding["subject"], finding["message"], finding["evidence"] = status, subject, message, detail
    return finding


def _passing(templates, message):
    """The copy method of a passing finding with ``message`` (the engine's good template, status and message set)."""
    return dict(templates[0], status=PASS, message=message).copy


def _shared_at(names, again, values, many, extra=None):
    """(index, positions): the index (dups, sharing) of one rule (as _one_index builds it) and the positions in
    ``names`` of the guests sharing a value. ``values``: per guest position, its value (``many`` false; None for
    none) or its list of values (``many`` true); ``extra``: position -> a further value of that guest (the few
    D-Bus machine-id copies that are files of their own); ``again``: the values met more than once, the only
    candidates. C loops (compress, map) find the few guests having one; a value twice on one guest only is no
    duplicate."""
    if not again:
        return ({}, set()), ()
    at = compress(count(), map(not_, map(again.isdisjoint, values)) if many else map(again.__contains__, values))
    owned = {}
    for i in at:
        for v in values[i] if many else (values[i],):
            if v in again:
                owned.setdefault(v, set()).add(i)
    for i, v in (extra or {}).items():
        if v in again:
            owned.setdefault(v, set()).add(i)
    dups, positions = {}, set()
    for v, where in owned.items():
        if len(where) > 1:  # shared by at least two guests
            dups[v] = set(names[i] for i in where)
            positions.update(where)
    return (dups, set(names[i] for i in positions)), positions


def _again(values, many, extra=None):
    """The truthy values met more than once in ``values`` (one per guest position, or a list each with ``many``)
    and ``extra``'s: the candidates of _shared_at. A set of the values seen, tested and filled in one comprehension:
    at 200,000 host keys twice as fast as a Counter (a dict of counts) and four times as fast as a dict of positions."""
    seen = set()
    add = seen.add
    if many:
        again = set(v for vs in values for v in vs if v and (v in seen or add(v)))
    else:
        again = set(v for v in values if v and (v in seen or add(v)))
    for v in (extra or {}).values():
        if v in seen:
            again.add(v)
        else:
            add(v)
    return again


def _pass01(ctx, subjects, facts, templates):
    """DIV-01's findings (as if the guest shared nothing: _UNIQUE) and (values, extra) for _shared_at; ``subjects``:
    the subject dicts, ``facts``: the facts (None: the engine makes the finding of the subject's error)."""
    values = [f.get("machine_id_digest") if f is not None else None for f in facts]
    extra = {i: d for i, f in enumerate(facts) if f is not None and (d := f.get("dbus_machine_id_digest")) and d != values[i]}
    made, copy = [], _passing(templates, _MID_UNIQUE)
    add = made.append
    for subject, f, v in zip(subjects, facts, values):
        if v:
            x = copy()
            x["subject"] = subject
            x["evidence"] = {"digest": v[:16]}
            add(x)
        else:
            add(None if f is None else _finding(templates, subject, _div01(ctx, subject["id"], f, _UNIQUE)))
    return made, values, extra


def _count_copy(copies, templates, text, n):
    """The copy method of the passing finding whose message is ``text % n``, made once per count ``n`` (a fleet's
    passing guests share a handful) and kept in ``copies``."""
    return copies.setdefault(n, _passing(templates, text % n))


def _pass02(ctx, subjects, facts, templates):
    """DIV-02's findings (as _pass01) and the host key fingerprints per guest position (() for none)."""
    values = [[k["fingerprint"] for k in keys] if f is not None and (keys := f.get("ssh_host_keys")) else ()
              for f in facts]
    made, copies = [], {}  # count of keys -> the copy method of the passing finding
    add = made.append
    for subject, f, fingerprints in zip(subjects, facts, values):
        if fingerprints:
            try:
                x = copies[len(fingerprints)]()
            except KeyError:
                x = _count_copy(copies, templates, "%d SSH host key(s), none shared", len(fingerprints))()
            x["subject"] = subject
            x["evidence"] = {"fingerprints": fingerprints}
            add(x)
        else:
            add(None if f is None else _finding(templates, subject, _div02(ctx, subject["id"], f, _UNIQUE)))
    return made, values, None


def _pass03(ctx, subjects, facts, templates):
    """DIV-03's findings (as _pass01) and the password hashes per guest position (() for none)."""
    values = [[h for a in accounts if (h := a.get("hash_digest") or a.get("locked_hash_digest"))]
              if f is not None and (accounts := f.get("accounts"))
              else () for f in facts]
    made, copies = [], {}  # count of hashes -> the copy method of the passing finding
    add = made.append
    for subject, f, hashes in zip(subjects, facts, values):
        if hashes and not f.get("accounts_error"):
            try:
                x = copies[len(hashes)]()
            except KeyError:
                x = _count_copy(copies, templates, "%d password hash(es), none shared", len(hashes))()
            x["subject"] = subject
            x["evidence"] = {}
            add(x)
        else:
            add(None if f is None else _finding(templates, subject, _div03(ctx, subject["id"], f, _UNIQUE)))
    return made, values, None


def _pass04(ctx, subjects, facts, templates):
    """DIV-04's findings (as _pass01) and the random seed digest per guest position (None for none)."""
    values = [f.get("random_seed_digest") if f is not None else None for f in facts]
    made, copy = [], _passing(templates, _SEED_UNIQUE)
    add = made.append
    for subject, f, v in zip(subjects, facts, values):
        if v and not f.get("random_seed_error"):
            x = copy()
            x["subject"] = subject
            x["evidence"] = {}
            add(x)
        else:
            add(None if f is None else _finding(templates, subject, _div04(ctx, subject["id"], f, _UNIQUE)))
    return made, values, None


# Rule id -> (the first pass making its findings, whether a guest has a list of values).
_FIRST_PASSES = {"DIV-01": (_pass01, False), "DIV-02": (_pass02, True), "DIV-03": (_pass03, True), "DIV-04": (_pass04, False)}


def _one_pass(ctx):
    """Makes, rule by rule, each guest's finding judged as if it shared nothing, with the values it compares; then
    finds the values met more than once (_again), builds the index of these values (_shared_at) and judges again,
    against the whole fleet, the guests that share one.

    The passing verdict of each rule (by far the most common) is made inline from its evidence, exactly as
    _div01.._div04 make it (tests/unit/test_fleet_speed_div.py compares with a reference on generated fleets);
    every other verdict comes from these functions. One copied dict per finding, no verdict tuple; the values are
    read by comprehensions, one rule at a time. The first passes get the subject dicts and the facts (None for a
    guest whose subject has an error) as two lists: no tuple to unpack per guest."""
    names, subjects, facts = ctx.guest_names, ctx.guest_subjects(), ctx.guest_facts()
    subject_dicts = [subject for subject, g, err in subjects]
    out = {}
    for rid, name, judge in IDENTITY_RULES:
        if rid not in ctx.selected:
            continue
        first, many = _FIRST_PASSES[rid]
        templates = ctx.finding_templates(rid, "guest")
        findings, values, extra = first(ctx, subject_dicts, facts, templates)
        index, positions = _shared_at(names, _again(values, many, extra), values, many, extra)
        unknown = _unknown_at(findings)  # as judged alone: the guests judged again below have their values
        for i in positions:  # judged again against the whole fleet
            subject, g, err = subjects[i]
            findings[i] = _finding(templates, subject, judge(ctx, g, facts[i], index))
        if unknown:
            _unprove(rid, templates, findings, sorted(names[i] for i in unknown), len(names))
        ctx.index("div:duplicates:" + name, lambda: (index, None))
        out[rid] = findings
    return out


# DIV-01..04 compare a guest with every other one: a guest whose value was not collected (no evidence at all, or that
# value unreadable: its own finding is the error) may hold the very same value. A guest that shares nothing with the
# others is then not proven unique: its pass becomes an error naming the unknown ones (a duplicate found stays a fail).
# What each rule compares, as that error names it.
_COMPARED = {"DIV-01": "machine-id was", "DIV-02": "SSH host keys were", "DIV-03": "password hashes were",
             "DIV-04": "random seed was"}
_STATUS = itemgetter("status")


def _unproven(rid, verdict, unknown, total):
    """The error passing ``verdict`` of rule ``rid`` becomes, ``unknown`` (sorted) of the ``total`` guests unknown."""
    status, message, detail = verdict
    what = _COMPARED[rid]
    return error("shared with none of the %d other guest(s) compared, but the %s not collected for %d guest(s) (%s): not "
                 "proven unique in the fleet" % (total - len(unknown) - 1, what, len(unknown), named(unknown)),
                 not_collected=len(unknown), **detail)


def _unknown_guests(ctx, rid):
    """The guests (sorted) whose ``rid`` value is unknown, once per run (the per-guest path; the batch reads its own
    findings): no evidence, the rule's verdict on the guest alone an error, or its evidence breaking the check."""
    def build():
        judge = dict((r, j) for r, _name, j in IDENTITY_RULES)[rid]
        out = []
        for (subject, g, err), f in zip(ctx.guest_subjects(), ctx.guest_facts()):
            try:
                unknown = bool(err) or judge(ctx, g, f, _UNIQUE)[0] == ERROR
            except Exception:  # pylint: disable=broad-except  # its own finding says "check failed"
                unknown = True
            if unknown:
                out.append(g)
        return sorted(out)
    return ctx.index("div:unknown:" + rid, build)


def _proven(ctx, rid, verdict):
    """``verdict`` of the per-guest check of ``rid``, a pass turned into _unproven's error when a guest is unknown."""
    if verdict[0] != PASS:
        return verdict
    unknown = _unknown_guests(ctx, rid)
    return _unproven(rid, verdict, unknown, len(ctx.guest_names)) if unknown else verdict


def _unknown_at(findings):
    """The positions of the guests unknown to a batch's ``findings``: None (no evidence) or an error. C scans first:
    a fleet whose every guest answered costs no Python loop."""
    if None not in findings:
        statuses = list(map(_STATUS, findings))
        if ERROR not in statuses:
            return ()
        return [i for i, s in enumerate(statuses) if s == ERROR]
    return [i for i, f in enumerate(findings) if f is None or f["status"] == ERROR]


def _unprove(rid, templates, findings, unknown, total):
    """Every pass of a batch's ``findings`` becomes _unproven's error (in place)."""
    for i, f in enumerate(findings):
        if f is not None and f["status"] == PASS:
            findings[i] = _finding(templates, f["subject"], _unproven(rid, (PASS, f["message"], f["evidence"]), unknown, total))


def _batch(rid):
    """The batch findings of rule ``rid`` (rules.check's ``batch``)."""
    def batch(ctx):
        findings = ctx.index("div:identity_findings", lambda: _identity_findings(ctx))
        # Handed over once (the engine asks once per run): the engine owns the list from here.
        return None if findings is None else findings.pop(rid, None)
    return batch


@check("DIV-01", "guest", batch=_batch("DIV-01"), batch_checked=True)
def div01(ctx, guest):
    return _proven(ctx, "DIV-01", _div01(ctx, guest, _facts(ctx, guest), None))


@check("DIV-02", "guest", batch=_batch("DIV-02"), batch_checked=True)
def div02(ctx, guest):
    return _proven(ctx, "DIV-02", _div02(ctx, guest, _facts(ctx, guest), None))


@check("DIV-03", "guest", batch=_batch("DIV-03"), batch_checked=True)
def div03(ctx, guest):
    return _proven(ctx, "DIV-03", _div03(ctx, guest, _facts(ctx, guest), None))


@check("DIV-04", "guest", batch=_batch("DIV-04"), batch_checked=True)
def div04(ctx, guest):
    return _proven(ctx, "DIV-04", _div04(ctx, guest, _facts(ctx, guest), None))


def _div05_index(ctx):
    """(uuid -> domains, mac -> domains) over both definitions of every domain with evidence: the live (or only) one
    and, for a running persistent domain, the persistent one (``inactive``, as hostscan.definitions and the engine's
    _run_domain treat them), each domain named "hypervisor/name" once whichever definition holds the value."""
    uuids, macs = {}, {}
    for h, dom in ctx.domains():
        if dom.get("error"):
            continue  # its identity is unknown: its own finding is the error
        who = "%s/%s" % (h, dom["name"])
        for defn in (dom, dom.get("inactive")):
            if not defn:
                continue
            if defn.get("uuid"):
                uuids.setdefault(defn["uuid"], set()).add(who)
            # Interfaces not collected for another domain: that domain's own DIV-05 is the error (collected below);
            # the others are compared with what is known, as beside a domain that could not be read.
            for i in defn.get("interfaces") or ():
                if i.get("mac"):
                    macs.setdefault(i["mac"], set()).add(who)
    return uuids, macs


@check("DIV-05", "domain")
def div05(ctx, hd):
    """One definition of a domain (the engine judges the persistent one of a running domain too) against every
    definition of every other domain: a clone's persistent definition sharing a MAC is found before it starts."""
    hv, d = hd
    uuid, interfaces = collected(d, "uuid"), collected(d, "interfaces")
    uuids, macs = ctx.index("div05", lambda: _div05_index(ctx))
    me = "%s/%s" % (hv, d["name"])
    problems = {}
    others = sorted(uuids.get(uuid, set()) - {me})
    if others:
        problems["uuid"] = others
    dup_macs = {}
    for i in interfaces:
        others = sorted(macs.get(i.get("mac"), set()) - {me}) if i.get("mac") else ()
        if others:
            dup_macs[i["mac"]] = others
    if dup_macs:
        problems["macs"] = dup_macs
    if problems:
        parts = (["UUID with %s" % named(problems["uuid"])] if "uuid" in problems else []) + \
            ["MAC %s with %s" % (m, named(o)) for m, o in sorted(dup_macs.items())]
        return fail("identity shared: %s" % "; ".join(parts), **problems)
    unknown = ctx.index("div05:unknown", lambda: _unknown_domains(ctx))
    n = len([i for i in interfaces if i.get("mac")])
    if unknown:  # one of them may be this domain's clone
        return error("UUID and %d MAC address(es) shared with no domain read, but the identity of %d domain(s) is unknown "
                     "(%s): not proven unique" % (n, len(unknown), named(unknown)), not_collected=len(unknown))
    return ok("UUID and %d MAC address(es) unique" % n)


def _unknown_domains(ctx):
    """The domains (sorted "hv/name"; "hv/*" for all of a hypervisor's) whose UUID or MAC addresses DIV-05 could not
    compare: an unreachable hypervisor or one whose domains were not listed, a domain that could not be read, or a
    definition whose UUID or interfaces were not collected (their own findings are the errors)."""
    out = []
    for hv, ev in sorted(ctx.hypervisors.items()):
        if ev.get("error") or ev.get("domains") is None:
            out.append("%s/*" % hv)
            continue
        for d in ev["domains"]:
            if d.get("error") or any(defn.get("uuid") is None or defn.get("interfaces") is None
                                     for defn in (d, d.get("inactive")) if defn):
                out.append("%s/%s" % (hv, d.get("name")))
    return sorted(out)


@check("DIV-06", "hypervisor")
def div06_hypervisor(ctx, hv):
    """Whether the base images were collected at all; each is then its own "image" finding."""
    images = (hv.get("host") or {}).get("base_images")
    if images is None:
        return error("base images not collected (verified only on hosts the audit reaches locally)")
    if not images:
        return na("no disk has a base image")
    return ok("%d base image(s) checked individually" % len(images), base_images=[i.get("path") for i in images])


@check("DIV-06", "image")
def div06_image(ctx, hv_image):
    """One base (backing) image, verified offline by hypervisor_facts with image_seal's read-only checker.

    Not the guest's lineage record: that says what the builder wrote, not what the guest came from.
    """
    hv, img = hv_image
    where = dict(path=img.get("path"), used_by=img.get("used_by") or [])
    if img.get("error"):
        return error("cannot verify the seal of %s: %s" % (img.get("path"), img["error"]), **where)
    if img.get("sealed") is None:
        return error("seal of %s not verified" % img.get("path"), **where)
    if img["sealed"] is True:
        return ok("base image sealed (used by %s)" % (named(where["used_by"]) or "no disk"), **where)
    findings = img.get("findings") or []
    return fail("base image not sealed: %s" % (", ".join(findings) or "the checker reported no path"),
                findings=findings, **where)


def _lineage(f):
    """(the guest's lineage record, None), (None, None) when it has none (no /etc/vmguard/lineage.json: not built
    by the golden_image role), or (None, why) when the record was not collected, could not be read or parsed
    (guestscan.json_file's {"error": ...}) or is not a JSON object: unknown, never "no record"."""
    if "lineage" not in f:
        return None, "lineage not collected"
    lineage = f["lineage"]
    if lineage is None:
        return None, None
    if not isinstance(lineage, dict):
        return None, "lineage record is not a JSON object"
    if "error" in lineage:
        return None, "lineage record unreadable: %s" % lineage["error"]
    return lineage, None


def _build_ids(guests):
    """(the build id of every guest whose evidence was collected, None for one without a lineage record; the guests
    whose record is unreadable or names no build; the guests whose evidence was not collected: unreachable, failed,
    left the play), in inventory order. The common case, a readable record naming its build on every guest (a fleet
    of 100,000), is read by one comprehension; any other guest sends the fleet through the loop that tells them
    apart."""
    builds = [lineage.get("build_id") if (f := rec.get("facts")) and not rec.get("error")
              and (lineage := f.get("lineage")).__class__ is dict and "error" not in lineage else None
              for rec in guests.values()]
    if all(builds):
        return builds, [], []
    build_ids, unknown, unseen = [], [], []
    for (g, rec), build in zip(guests.items(), builds):
        if build:
            build_ids.append(build)
            continue
        f = rec.get("facts")
        if rec.get("error") or not f:
            unseen.append(g)
            continue
        lineage, why = _lineage(f)
        if why or (lineage is not None and not lineage.get("build_id")):
            unknown.append(g)
        else:
            build_ids.append(None)
    return build_ids, unknown, unseen


def _over_limits(n, total, p):
    """Whether ``n`` guests of one build out of ``total`` exceed max_clones_per_build or max_fleet_share (unrounded:
    a finding's "share" is for display)."""
    return n > p["max_clones_per_build"] or (n > p["max_fleet_share"] * total and total > 1)


def _unknown_text(unknown, unseen):
    """What the guests of unknown build are, for a message."""
    parts = ["%s (lineage record unreadable or naming no build)" % named(sorted(unknown))] if unknown else []
    return "; ".join(parts + (["%s (no evidence collected)" % named(sorted(unseen))] if unseen else []))


@check("DIV-07", "fleet")
def div07(ctx, fleet):
    """Guests per image build, over every guest of the inventory. A guest without a lineage record counts in the
    fleet and in no build. A guest whose record is unreadable or names no build (the builder always writes
    build_id), or whose evidence was not collected (unreachable, failed), has an unknown build. The known guests
    of a build are a lower bound of it: a build over the limits fails whatever the unknown builds are. Otherwise
    the unknown guests may all belong to the largest build: the rule passes only if even that stays within the
    limits, and is an error naming them if it would not (never a pass resting on guests nobody saw)."""
    p = ctx.params["diversity"]
    build_ids, unknown, unseen = _build_ids(ctx.guests)
    total = len(build_ids) + len(unknown) + len(unseen)
    if not total:
        return na("no guest in the inventory")
    builds = Counter(build_ids)  # build id -> guests, in the order the builds first appear
    shares = dict((b, {"guests": n, "share": round(n / float(total), 3)}) for b, n in builds.items() if b is not None)
    over = dict((b, s) for b, s in shares.items() if _over_limits(s["guests"], total, p))
    more = dict(([("unknown_build", sorted(unknown))] if unknown else []) + ([("no_evidence", sorted(unseen))] if unseen else []))
    k = len(unknown) + len(unseen)
    if over:
        return fail("blast radius too large: %s (limits %d guests, %.0f%% of %d)%s" % (
            ", ".join("build %s on %d guests (%.0f%%)" % (b, s["guests"], s["share"] * 100) for b, s in sorted(over.items())),
            p["max_clones_per_build"], p["max_fleet_share"] * 100, total,
            "; build unknown on %s" % _unknown_text(unknown, unseen) if k else ""), builds=shares, guests=total, **more)
    largest = max([s["guests"] for s in shares.values()] or [0])
    if k and _over_limits(largest + k, total, p):
        return error("image build unknown on %d of %d guest(s): %s: the blast radius of their build cannot be established "
                     "(with the largest known build they would be %d guests, over the limits of %d guests, %.0f%% of %d)" % (
                         k, total, _unknown_text(unknown, unseen), largest + k, p["max_clones_per_build"],
                         p["max_fleet_share"] * 100, total), builds=shares, guests=total, **more)
    if not shares and not k:
        return na("no guest carries a lineage record")
    within = "%d image build(s) over %d guests, each within the limits" % (len(shares), total)
    if k:
        within += ", even if the %d guest(s) of unknown build all belong to the largest (%s)" % (k, _unknown_text(unknown, unseen))
    return ok(within, builds=shares, guests=total, **more)


@check("DIV-08", "guest")
def div08(ctx, guest):
    lineage, why = _lineage(_facts(ctx, guest))
    if why:
        return error(why)
    if lineage is None:
        return na("no lineage record: no image build time to compare")
    if not lineage.get("build_time"):
        return error("lineage record of build %s has no build time" % lineage.get("build_id"))
    age = ctx.age_days(lineage["build_time"])
    limit = ctx.params["diversity"]["max_image_age_days"]
    if too_far_ahead(age):  # a forged record or a clock gone wrong: no age at all
        return error("image build %s claims a build time %.0f days in the future (%s): its age cannot be judged" % (
            lineage.get("build_id"), -age, lineage["build_time"]), age_days=round(age, 1))
    if age > limit:
        return fail("image build %s is %.0f days old (limit %d)" % (lineage.get("build_id"), age, limit), age_days=round(age, 1))
    return ok("image build is %.0f days old (limit %d)" % (age, limit), age_days=round(age, 1))


@check("DIV-09", "domain")
def div09(ctx, hd):
    d = hd[1]
    virtio = [m for m in collected(d, "rng") if m in VIRTIO_RNG_MODELS]
    if virtio:
        return ok("virtio-rng present (%s)" % ", ".join(virtio))
    return fail("no virtio-rng device" + (" (has %s)" % ", ".join(d["rng"]) if d.get("rng") else ""))


@check("DIV-10", "guest")
def div10(ctx, guest):
    v = (_facts(ctx, guest).get("sysctl") or {}).get("kernel.randomize_va_space")
    if v is None:
        return error("kernel.randomize_va_space not collected")
    if str(v) == "2":
        return ok("kernel.randomize_va_space = 2")
    return fail("kernel.randomize_va_space = %s (expected 2)" % v, value=v)
