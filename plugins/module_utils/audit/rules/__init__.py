# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule registry: one entry per catalog id (docs/CATALOG.md), with its checks.

A check is a pure function ``check(ctx, subject) -> (status, message, evidence)``: evidence in,
verdict out. Each area
has one file (div.py, rb.py, iso.py, leak.py, vis.py) holding its rules' checks, remediation
text and docstrings together; tests/unit/rules/test_<area>.py holds their tests.

Each rule also declares what remediates it (``remediated_by``): None when the collection only
audits it, else one of REMEDIATIONS (the remediation name, the module that applies it, a short
"how", and whether it is opt-in). The policy derives the per-rule default mode from it and the
planner (audit/plan.py) turns failing findings into remediation steps by that name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import PASS, FAIL, ERROR, NA  # noqa: F401 (re-exported for the checks)
from ansible_collections.vmguard.hardening.plugins.module_utils.common import timeutil
SUBJECT_KINDS = ("hypervisor", "domain", "guest", "fleet", "vcenter_vm", "image")


# A check returns a plain (status, message, evidence) tuple; these build one. Plain tuples,
# because a fleet audit creates hundreds of thousands of them.
def ok(message, **evidence):
    return (PASS, message, evidence)


def fail(message, **evidence):
    return (FAIL, message, evidence)


def error(message, **evidence):
    return (ERROR, message, evidence)


# The most names a finding's message lists; its evidence carries them all. A message naming the 600 other domains
# on one network is read by nobody, and every report repeats it: in the 1,000 domains of the benchmark two such rules
# made 5.5 MB of messages, written five times over.
NAMED_LIMIT = 10


def named(items, limit=NAMED_LIMIT):
    """The first ``limit`` of ``items`` (str, in their order) joined with ", ", and "and N more" for the rest."""
    if len(items) <= limit:
        return ", ".join(items)
    return "%s and %d more" % (", ".join(items[:limit]), len(items) - limit)


# What a check may conclude: a waiver is the engine's to apply, never a check's.
CHECK_STATUSES = frozenset((PASS, FAIL, ERROR, NA))


def checked_verdict(verdict):
    """``verdict`` when it is a valid (status, message, evidence) tuple, else the error verdict saying why: a status
    the reports and the gate do not know ("unknown", "skipped") would pass the gate unseen, and a pass or not
    applicable without a message says nothing of what was compared or why nothing was. The engine passes every
    check's verdict through it, and a batch (check's ``batch``) every verdict it does not make from constants."""
    if verdict.__class__ is tuple and len(verdict) == 3 and verdict[0] in CHECK_STATUSES and verdict[1] \
            and isinstance(verdict[1], str) and isinstance(verdict[2], dict):
        return verdict
    return invalid_verdict(verdict)


def invalid_verdict(verdict):
    """The error verdict of a check that returned no valid (status, message, evidence)."""
    if verdict.__class__ is not tuple or len(verdict) != 3:
        why = "%s, not a (status, message, evidence) tuple" % _short(verdict)
    elif verdict[0] not in CHECK_STATUSES:
        why = "the status %s (a check concludes %s)" % (_short(verdict[0]), ", ".join(sorted(CHECK_STATUSES)))
    elif not verdict[1] or not isinstance(verdict[1], str):
        why = "a %s verdict without a message (what was judged, or why nothing was, must be said)" % verdict[0]
    else:
        why = "a %s verdict whose evidence is %s, not a mapping" % (verdict[0], type(verdict[2]).__name__)
    return ERROR, "check failed: it returned %s" % why, {}


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def na(message, **evidence):
    return (NA, message, evidence)


class NotCollected(Exception):
    """Evidence lacks a field a check reads (collected()): the engine makes the finding an error, never a pass."""


def collected(evidence, key, what=None):
    """``evidence[key]``, or NotCollected when it is missing or None: a list the producer did not send is not an
    empty list (``.get(key) or []`` would judge "no disk" where nothing was read)."""
    value = evidence.get(key)
    if value is None:
        raise NotCollected("%s not collected" % (what or key))
    return value


def snapshots_from_the_future(ctx, snaps):
    """An error naming the snapshots created more than CLOCK_SKEW_SECONDS after now, or None (RB-02 and RB-04, on
    libvirt and vSphere). Such a snapshot has no age to judge (the host's clock was ahead when it was taken, or
    its XML was redefined with a forged time): "younger than the limit" or "after the security epoch" would be a
    pass on a made-up time."""
    late = sorted((s["name"], timeutil.ahead(s["creation_time"], ctx.now)) for s in snaps
                  if s.get("creation_time") is not None and timeutil.ahead(s["creation_time"], ctx.now))
    if not late:
        return None
    return error("snapshot(s) with a creation time in the future (more than %ds of clock skew): %s; their age "
                 "cannot be judged" % (timeutil.CLOCK_SKEW_SECONDS, ", ".join(
                     "%s (%s, %.0fh ahead)" % (n, timeutil.iso(ctx.now + a), a / 3600.0) for n, a in late)),
                 snapshots=[n for n, _a in late])


# Remediation name -> the module that applies it, or the role whose task file does (ROLE_TASK_FILES)
# (the plan contract, docs/CATALOG.md "enforced by").
REMEDIATIONS = OrderedDict([
    ("domain_policy", "vmguard.hardening.domain_policy"),      # a fixer of remediation/domfix.FIXERS, keyed by rule id
    ("identity_reseal", "vmguard.hardening.identity_reseal"),  # machine-id, SSH host keys, random seed
    ("sysctl", "ansible.posix.sysctl"),
    ("expire_passwords", "ansible.builtin.command"),           # chage --lastday 0
    ("snapshot_policy", "vmguard.hardening.snapshot_policy"),  # deletes the planned snapshots (only with prune)
    ("revert_watcher", "vmguard.hardening.hypervisor"),        # a role, not a module: see ROLE_TASK_FILES
    ("reconverge", "vmguard.hardening.guest"),                 # a role: ansible.builtin.user, apt, systemd_service
    ("guest_firewall", "vmguard.hardening.guest_firewall"),    # table inet vmguard, confirm-or-revert
    ("service_lockdown", "vmguard.hardening.service_lockdown"),  # stop/disable/mask units listening outside the service
    ("host_config", "vmguard.hardening.host_config"),          # qemu.conf, daemon confs, image modes, nwfilters
])

# Remediations carried out by a role of this collection rather than by one module: remediation name ->
# the role's task file that carries it out (its tasks are tagged with the rule ids it remediates).
ROLE_TASK_FILES = {"revert_watcher": "watcher.yml", "reconverge": "reconverge.yml"}


class Remediation(dict):
    """The ``remediated_by`` declaration of a rule (a plain dict once built): remediation ``name`` (a key
    of REMEDIATIONS) applied by its module, doing ``how``. ``opt_in``: the remediation exists but is
    applied only when the policy sets the rule's mode to enforce (the rule's default mode is audit).
    """

    def __init__(self, name, how, opt_in=False):
        if name not in REMEDIATIONS:
            raise ValueError("unknown remediation %r (known: %s)" % (name, ", ".join(REMEDIATIONS)))
        if not isinstance(how, str) or not how.strip():
            raise ValueError("remediation %s needs a short text saying how it remediates" % name)
        dict.__init__(self, remediation=name, module=REMEDIATIONS[name], how=how, opt_in=bool(opt_in))


class Rule(object):
    def __init__(self, rid, area, severity, layer, title, remediation, remediated_by=None, host_remediated_by=None):
        self.id = rid
        self.area = area
        self.severity = severity
        self.layer = layer
        self.title = title
        self.remediation = remediation  # the human text findings carry
        self.remediated_by = remediated_by  # None (audit only) or {remediation, module, how, opt_in}
        # A HOST+DOM rule whose domain findings remediated_by fixes may declare what fixes its hypervisor findings.
        self.host_remediated_by = host_remediated_by
        self.checks = OrderedDict()  # subject kind -> function

    @property
    def default_mode(self):
        """The mode a policy gives the rule unless it says otherwise: enforce where a remediation exists
        and is not opt-in, else audit."""
        return "enforce" if self.remediated_by and not self.remediated_by["opt_in"] else "audit"

    def __repr__(self):
        return "Rule(%s)" % self.id


RULES = OrderedDict()


def rule(rid, area, severity, layer, title, remediation, remediated_by=None, host_remediated_by=None):
    """Declare a rule (once per id). ``remediated_by``: None (audit only) or a Remediation(...).
    ``host_remediated_by``: for a rule checked on domains and on hypervisors (layer HOST+DOM) whose
    ``remediated_by`` fixes the domains, the Remediation(...) of its hypervisor findings (or None)."""
    if rid in RULES:
        raise ValueError("rule %s declared twice" % rid)
    for what, value in (("remediated_by", remediated_by), ("host_remediated_by", host_remediated_by)):
        if value is not None and not isinstance(value, Remediation):
            raise ValueError("rule %s: %s must be None or a Remediation(...), got %r" % (rid, what, value))
    if host_remediated_by is not None and (remediated_by is None or not layer.startswith("HOST+")):
        raise ValueError("rule %s: host_remediated_by is for a HOST+DOM rule whose remediated_by fixes its domains" % rid)
    RULES[rid] = Rule(rid, area, severity, layer, title, remediation,
                      dict(remediated_by) if remediated_by is not None else None,
                      dict(host_remediated_by) if host_remediated_by is not None else None)
    return RULES[rid]


def remediation_for(rid, subject_kind):
    """The remediation of rule ``rid``'s findings on a subject of ``subject_kind``: its host_remediated_by for a
    hypervisor when it declares one, else its remediated_by (None: audit only)."""
    r = RULES[rid]
    if subject_kind == "hypervisor" and r.host_remediated_by is not None:
        return r.host_remediated_by
    return r.remediated_by


def check(rid, subject_kind, batch=None, batch_checked=False):
    """Register ``fn`` as the check of rule ``rid`` for subjects of ``subject_kind``.

    ``batch`` (guest checks only): ``batch(ctx) -> findings``, the findings of ``fn`` on every guest of a run at
    once, as a list in ``ctx.guest_names`` order (subjects: ``ctx.guest_subjects()``), None at the place of a guest
    subject with an error (no evidence: the engine makes that finding), or None to leave the run to ``fn`` guest by
    guest. Each finding is a copy of one of ``ctx.finding_templates(rid, "guest")`` (bad for fail and error) with
    status, subject, message and evidence set from exactly the verdict ``fn(ctx, guest)`` gives. It exists for
    speed only (a fleet rule judging 100,000 guests one call at a time walks their evidence once per rule).
    ``batch_checked``: the batch makes every verdict it does not build from constants (a PASS status, a message
    string, a new evidence dict) through ``checked_verdict``, so the engine need not check its findings again
    (400,000 of them in a fleet run: 0.2 s, most of it cache misses on findings made long before).
    """
    if subject_kind not in SUBJECT_KINDS:
        raise ValueError("unknown subject kind %s" % subject_kind)
    if batch is not None and subject_kind != "guest":
        raise ValueError("check %s: a batch is for guest checks, not %s" % (rid, subject_kind))

    def deco(fn):
        RULES[rid].checks[subject_kind] = fn
        fn.rule_id = rid
        fn.batch = batch
        fn.batch_checked = bool(batch_checked)
        return fn
    return deco


# Registration happens on import, in catalogue order.
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import div, rb, iso, leak, vis, vsphere  # noqa: E402,F401 pylint: disable=wrong-import-position
