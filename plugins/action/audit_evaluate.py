# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

try:  # ansible-core >= 2.21: an action can set host variables itself, like set_fact
    from ansible.plugins.action import VariableLayer
except ImportError:  # older: the audit role's set_fact publishes the result
    VariableLayer = None
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import delta as delta_mod, engine, plan as plan_mod, policy as policy_mod
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import report, sarif
from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked

HV_VAR = "__vmguard_audit_hv_evidence"
GUEST_VAR = "__vmguard_audit_guest"
VC_VAR = "__vmguard_audit_vc"
DEFAULT_REPORT_DIR = "./vmguard-report"

ARGS = dict(
    policy=dict(type="raw", default={}),  # any type: load_policy names what is wrong with it
    hypervisors=dict(type="list", elements="str"),
    guests=dict(type="list", elements="str"),
    hypervisor_group=dict(type="str", default="vmguard_hypervisors"),
    guest_group=dict(type="str", default="vmguard_guests"),
    hypervisor_evidence_var=dict(type="str", default=HV_VAR),
    guest_evidence_var=dict(type="str", default=GUEST_VAR),
    # vCenters (default: the hosts of vcenter_group); each holds its vsphere_facts evidence in vcenter_evidence_var.
    vcenters=dict(type="list", elements="str"),
    vcenter_group=dict(type="str", default="vmguard_vcenters"),
    vcenter_evidence_var=dict(type="str", default=VC_VAR),
    report_dir=dict(type="str"),
    report_mode=dict(type="raw"),
    # The report.json "since the previous run" compares with (default: the one in report_dir, if any).
    previous_report=dict(type="str"),
    fail_on=dict(type="str", choices=["low", "medium", "high", "critical"], default="high"),
    known_tags=dict(type="list", elements="str", default=[]),
    validate_only=dict(type="bool", default=False),
    run_checks=dict(type="bool", default=False),
    now=dict(type="float"),
    # The files report.sarif anchors its results to (default: the inventory sources Ansible used).
    sarif_sources=dict(type="dict", options=dict(inventory=dict(type="list", elements="str"), policy=dict(type="str"))),
    # The variable to set for the hosts of the task (as set_fact does) with the summary, gate, reports,
    # findings, policy and plan; those three then leave the registered result. Needs ansible-core
    # 2.21 (actions setting host variables); older cores ignore it (the result keeps everything and
    # "published" is absent), the audit role publishes with set_fact then.
    publish=dict(type="str"),
)

PUBLISHED = ("summary", "gate_failed", "gate", "reports", "policy_digest", "policy", "findings", "plan")
# What leaves the result once published: `register:` templates every node it keeps (the gate of the
# corpus audit alone is 3,600 findings: 0.5 s).
MOVED = ("findings", "policy", "plan", "gate")

# Tags of the collection's roles that select tasks, not rules: never an unknown tag for the audit.
COLLECTION_TAGS = frozenset(("audit", "lab", "golden_image", "lab_preflight", "lab_image", "lab_identity",
                             "lab_networks", "lab_domains", "lab_access", "lab_inventory"))


class RunError(Exception):
    """The audit cannot run as asked (message for the console)."""


# Exactly these types are already plain (a tagged str or a bool, which is an int, is not).
_PLAIN_TYPES = frozenset((str, bool, int, float, type(None)))


def _plain(obj):
    """Strip Ansible's tagged/unsafe wrappers: the engine sees plain Python data."""
    if obj.__class__ in _PLAIN_TYPES:
        return obj
    if isinstance(obj, dict):
        return dict((k if k.__class__ is str else str(k), _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    return obj


def host_value(hostvars, host, var):
    """``var`` of ``host`` as collected: a registered result or a fact is read as stored, not
    templated again (templating finalizes every node of a 1,000-domain evidence: seconds); a value
    that is still a template string (inventory) is templated as Ansible would."""
    raw_get = getattr(hostvars, "raw_get", None)
    if raw_get is not None:
        raw = raw_get(host)
        if isinstance(raw, dict):
            value = raw.get(var)
            if value is None or isinstance(value, (dict, list)):
                return value
    return (hostvars.get(host) or {}).get(var)


def check_subjects(args):
    """Fail an audit that would look at nothing (a typo in a group name, empty groups)."""
    if not (args["hypervisors"] or args["guests"] or args.get("vcenters")):
        raise RunError(
            "nothing to audit: the inventory has no host in the hypervisor group '%s', the guest group "
            "'%s' nor the vCenter group '%s' (check the group names in the inventory, or set "
            "vmguard_audit_hypervisor_group / vmguard_audit_guest_group / vmguard_audit_vcenter_group)"
            % (args["hypervisor_group"], args["guest_group"], args.get("vcenter_group") or "vmguard_vcenters"))


def vcenters_of(args, task_vars):
    """The vCenters to audit: the vcenters argument, else the hosts of vcenter_group."""
    if args.get("vcenters") is not None:
        return list(args["vcenters"])
    return list(_plain((task_vars.get("groups") or {}).get(args["vcenter_group"])) or [])


def _registered_vcenter(hostvars, vc, value):
    """A vCenter's evidence from what ``var`` holds: the result the audit role registered from vsphere_facts
    (published: followed to the variable it names), or an evidence dict itself."""
    if not value:
        return {"error": "no vCenter evidence collected from %s" % vc, "vms": []}
    if value.get("published") and not value.get("unreachable"):  # vsphere_facts publish=NAME
        vms = _plain(host_value(hostvars, vc, value["published"]))
        if not isinstance(vms, dict):
            return {"error": "no vCenter evidence from %s: vsphere_facts published it as %s, which is not set"
                    % (vc, value["published"]), "vms": []}
        return vms
    if not any(k in value for k in ("evidence", "unreachable", "failed", "skipped", "msg")):
        return _plain(value)  # already the evidence
    if isinstance(value.get("evidence"), dict) and not value.get("unreachable"):
        return _plain(value["evidence"])
    if value.get("skipped"):
        return {"error": "no vCenter evidence collected from %s (evidence task skipped)" % vc, "vms": []}
    return {"error": "vsphere_facts failed: %s" % _plain(value.get("msg") or "unknown error"), "vms": []}


def vcenter_evidence(hostvars, names, var):
    """{vCenter: its evidence and ``inventory``, the VMs it declares}; one without evidence is an error (every
    VM rule errors for it). The declared VMs: the value's own ``inventory`` when it has one, else the
    vCenter's vmguard_vcenter_vms."""
    out = {}
    for vc in names:
        value = _plain(host_value(hostvars, vc, var))
        ev = _registered_vcenter(hostvars, vc, value)
        declared = value.get("inventory") if isinstance(value, dict) and "inventory" in value else \
            _plain((hostvars.get(vc) or {}).get("vmguard_vcenter_vms"))  # inventory data: templated as Ansible would
        out[vc] = dict(ev, inventory=declared or {})
    return out


def report_dir_of(args):
    d = args["report_dir"]
    if d is None:
        d = DEFAULT_REPORT_DIR
    if not d.strip():
        raise RunError("report_dir (vmguard_report_dir / vmguard_audit_report_dir) is empty: name the directory "
                       "for the reports, e.g. ./vmguard-report")
    d = os.path.expanduser(d)
    return d if os.path.isabs(d) else os.path.join(os.getcwd(), d)


def report_mode_of(args):
    mode = _plain(args["report_mode"])
    if mode is not None and not isinstance(mode, str):
        # YAML reads an unquoted 0640 as the number 416: which mode was meant cannot be known.
        raise RunError("report_mode (vmguard_report_mode / vmguard_audit_report_mode) must be a quoted octal "
                       "string such as '0640', not %r (YAML reads an unquoted 0640 as the number 416)" % (mode,))
    try:
        return report.parse_mode(report.DEFAULT_MODE if mode is None else mode)
    except ValueError as e:
        raise RunError("report_mode (vmguard_report_mode / vmguard_audit_report_mode): %s" % e)


def planner_guards(pol, evidence, now, only):
    """The findings of the rollback guards (RB-05..10) the selection ``only`` left out, evaluated for the planner
    alone (the reports do not show them): a revert quarantine is lifted, and the epoch moves, only on what the
    guards say of the guest now (plan.build_plan's ``guards``). None when every guard is evaluated anyway."""
    left_out = set(plan_mod.ROLLBACK_GUARDS) - set(only) if only is not None else set()
    return engine.evaluate(pol, evidence, now=now, only=left_out) if left_out else None


def selection(task_vars, known_tags, pol):
    """Rule ids to evaluate for --tags / --skip-tags (None = all enabled rules).

    A --tags value that names no rule id, area or known task tag is an error, so a typo cannot turn
    into a full audit; a selection that leaves no enabled rule too. A --skip-tags value that names
    no rule skips no rule (tools such as Molecule pass their own, e.g. molecule-notest): the audit
    can only get wider from it, never pass by accident.
    """
    ignore = COLLECTION_TAGS | set(known_tags)
    run = [str(t) for t in task_vars.get("ansible_run_tags") or [] if t not in ignore]
    skip = [str(t) for t in task_vars.get("ansible_skip_tags") or [] if t not in ignore]
    problems = []
    bad = engine.unknown_tags(run)
    if bad:
        problems.append("--tags %s" % ", ".join(bad))
    if problems:
        areas = sorted(set(r.area for r in engine.RULES.values()))
        raise RunError("unknown tag(s): %s. Tags select rule ids (e.g. DIV-02) or areas (%s); "
                       "other task tags go in vmguard_audit_known_tags" % ("; ".join(problems), ", ".join(areas)))
    try:
        only = engine.select(run, skip)
    except ValueError as e:
        raise RunError(str(e))
    enabled = set(rid for rid, rp in pol["rules"].items() if rp.get("enabled", True))
    if not enabled.intersection(engine.RULES if only is None else only):
        raise RunError("no enabled rule left to evaluate (--tags %s, --skip-tags %s, rules enabled by the policy: %d)"
                       % (",".join(run) or "-", ",".join(skip) or "-", len(enabled)))
    return only


def _registered_evidence(hostvars, hv, value):
    """A hypervisor's evidence from what ``var`` holds: the result the audit role registered from
    hypervisor_facts (read in place: no set_fact copy of the evidence through host variables), or an
    evidence dict itself (a play that collects the evidence its own way)."""
    if not value:
        return {"error": "no hypervisor evidence collected from %s" % hv, "domains": []}
    if value.get("published") and not value.get("unreachable"):  # hypervisor_facts publish=NAME
        published = host_value(hostvars, hv, value["published"])
        if not isinstance(published, dict):
            return {"error": "no hypervisor evidence from %s: hypervisor_facts published it as %s, which is not set"
                    % (hv, value["published"]), "domains": []}
        value = dict(value, evidence=published)
    if not any(k in value for k in ("evidence", "unreachable", "failed", "skipped", "msg")):
        return _plain(value)  # already the evidence
    if value.get("evidence") and not value.get("unreachable"):
        return _plain(value["evidence"])
    if value.get("skipped"):
        return {"error": "no hypervisor evidence collected from %s (evidence task skipped)" % hv, "domains": []}
    return {"error": "hypervisor unreachable or evidence module failed: %s" % _plain(value.get("msg") or "unknown error"),
            "domains": []}


def hypervisor_evidence(hostvars, names, var):
    return dict((hv, _registered_evidence(hostvars, hv, host_value(hostvars, hv, var))) for hv in names)


def _date_text(value):
    """An inventory date as YYYY-MM-DD text (unquoted YAML dates arrive as date objects)."""
    value = _plain(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _registered_guest(g, value):
    """(error, facts) of a guest from what ``var`` holds: the result the audit role registered from
    guest_facts, or an {error, facts} dict (a play that collects the evidence its own way)."""
    if not value:
        return "no guest evidence collected from %s" % g, None
    if "facts" in value and not any(k in value for k in ("evidence", "unreachable", "failed", "skipped", "msg")):
        return value.get("error"), value.get("facts")
    if value.get("unreachable"):
        return "unreachable: %s" % (value.get("msg") or "unknown error"), None
    if isinstance(value.get("evidence"), dict):
        return None, value["evidence"]
    if value.get("skipped"):
        return "no guest evidence collected from %s (evidence task skipped)" % g, None
    return "evidence module failed: %s" % (value.get("msg") or "unknown error"), None


def guest_evidence(hostvars, names, var):
    out = {}
    for g in names:
        hvars = hostvars.get(g) or {}
        error, facts = _registered_guest(g, _plain(host_value(hostvars, g, var)))
        out[g] = {
            "vars": {
                "service": _plain(hvars.get("vmguard_service")),
                "hypervisor": _plain(hvars.get("vmguard_hypervisor")),
                "domain": _plain(hvars.get("vmguard_domain")),
                "data_class": _plain(hvars.get("vmguard_data_class")),
                # What VIS-05 metadata and ISO-03's filter parameters are made from (the planner).
                "service_address": _plain(hvars.get("vmguard_service_address")),
                "owner": _plain(hvars.get("vmguard_owner")),
                "expires": _date_text(hvars.get("vmguard_expires")),
            },
            "error": error,
            "facts": facts,
        }
    return out


LEFT_THE_PLAY = ("%s left this play before its evidence was read (it failed or was unreachable earlier in the run): "
                 "whatever evidence its variables hold is an earlier audit's, not this one's")


def left_the_play(task_vars):
    """The hosts of this play that Ansible removed from it (failed or unreachable in an earlier play or task of the
    run: in ansible_play_hosts_all, not in ansible_play_hosts). They ran none of this play's evidence tasks, so
    their host variables still hold what an earlier audit of the run registered (harden.yml audits twice)."""
    every, active = task_vars.get("ansible_play_hosts_all"), task_vars.get("ansible_play_hosts")
    if not isinstance(every, (list, tuple)) or not isinstance(active, (list, tuple)):
        return frozenset()
    return frozenset(str(h) for h in every) - frozenset(str(h) for h in active)


def drop_stale(evidence, removed):
    """Replace (in place) the evidence of each host in ``removed`` (left_the_play) with an error naming why: an
    earlier audit's evidence judged as this run's would report the state before the run changed it as now."""
    for hv in removed.intersection(evidence["hypervisors"]):
        evidence["hypervisors"][hv] = {"error": LEFT_THE_PLAY % hv, "domains": []}
    for g in removed.intersection(evidence["guests"]):
        evidence["guests"][g] = dict(evidence["guests"][g], error=LEFT_THE_PLAY % g, facts=None)
    for vc in removed.intersection(evidence["vcenters"]):
        evidence["vcenters"][vc] = {"error": LEFT_THE_PLAY % vc, "vms": [], "inventory": evidence["vcenters"][vc].get("inventory") or {}}
    return evidence


def sarif_sources_of(args, task_vars, cwd):
    """{"inventory": [URI, ...], "policy": URI or None} for report.sarif: the files given in
    sarif_sources, else the inventory sources Ansible used that are files or directories (a host list
    such as 'localhost,' is none); each relative to ``cwd`` when inside it, else its base name."""
    given = _plain(args.get("sarif_sources")) or {}
    inventory = given.get("inventory")
    if inventory is None:
        inventory = [p for p in _plain(task_vars.get("ansible_inventory_sources")) or [] if os.path.exists(p)]
    policy = given.get("policy")
    return {"inventory": [sarif.source_uri(p, cwd) for p in inventory],
            "policy": sarif.source_uri(policy, cwd) if policy else None}


def _previous_path(args, report_dir, cwd):
    """(path, given): the previous report.json to compare with, and whether previous_report named it."""
    given = (args.get("previous_report") or "").strip()
    if given:
        path = os.path.expanduser(given)
        return (path if os.path.isabs(path) else os.path.join(cwd, path)), True
    return os.path.join(report_dir, "report.json"), False


def start_previous(args, report_dir, cwd, fork=True):
    """Begin reading the previous report (delta.load_index) in a forked child while the rules run: a
    20 MB report.json of 25,000 findings takes about 0.3 s to parse. Returns what finish_previous takes.

    previous_report given: that file, which must be a readable vmguard report (RunError otherwise, from
    finish_previous). Not given: report_dir/report.json when there is one; one that cannot be read is
    no reason to refuse the audit (its problem is shown in the reports instead)."""
    path, given = _previous_path(args, report_dir, cwd)
    if not os.path.isfile(path):
        if given:
            raise RunError("previous_report (vmguard_audit_previous_report) %s is not a file" % path)
        return path, given, None
    return path, given, (forked.start(delta_mod.load_index, path) if fork else None) or "here"


def finish_previous(pending):
    """(previous_index or None, path, problem or None) of start_previous's read."""
    path, given, handle = pending
    try:
        if handle is None:  # no previous report
            return None, path, None
        if handle == "here":
            return delta_mod.load_index(path), path, None
        try:
            return forked.finish(handle), path, None
        except forked.ChildFailed:  # the child died (killed): read it here instead
            return delta_mod.load_index(path), path, None
    except delta_mod.PreviousReportError as e:
        if given:
            raise RunError("previous_report (vmguard_audit_previous_report): %s" % e)
        return None, path, str(e)


def abandon_previous(pending):
    """Stop start_previous's child when the evaluation failed before it was needed."""
    handle = pending[2]
    if handle not in (None, "here"):
        forked.abandon(handle)


def previous_of(args, report_dir, cwd):
    """The previous report read here, at once (the preflight's check of a given one): as finish_previous."""
    return finish_previous(start_previous(args, report_dir, cwd, fork=False))


def since_previous(findings, pending, cwd):
    """report.json's since_previous (audit/delta.py) against start_previous's read; tags ``findings`` in place."""
    prev, path, problem = finish_previous(pending)
    out = delta_mod.compare_index(findings, prev, source=sarif.source_uri(path, cwd) if prev is not None else None)
    if problem:
        out["error"] = problem
    return out


def guest_domains(evidence):
    """{guest: "hypervisor/domain"} for the guests whose inventory names both (the report's VM view)."""
    out = {}
    for g, ev in evidence["guests"].items():
        v = ev.get("vars") or {}
        if v.get("hypervisor") and v.get("domain"):
            out[g] = "%s/%s" % (v["hypervisor"], v["domain"])
    return out


def gate_entry(f):
    """A gate finding as the console shows it: guest data escaped (no terminal escapes)."""
    return dict(rule=f["rule"], severity=f["severity"], status=f["status"],
                subject=report.printable(f["subject"]["id"]), message=report.printable(f["message"]),
                definition=f.get("definition"), pending_restart=bool(f.get("pending_restart")))


def summary_msg(summary, where, not_evaluated=()):
    """The console's one line; the rules the run did not evaluate (report.json's rules_not_evaluated) are counted
    there too, so that a run with rules disabled or left out never reads as a full pass."""
    skipped = ""
    if not_evaluated:
        groups = {}
        for e in not_evaluated:
            groups.setdefault(e["reason"], []).append(e["rule"])
        skipped = "; %d rule(s) not evaluated (%s)" % (len(not_evaluated), "; ".join(
            "%s: %s" % (why, ", ".join(ids)) for why, ids in groups.items()))
    return "%d findings: %d pass, %d fail, %d error, %d waived, %d not applicable%s; report: %s" % (
        summary["total"], summary["pass"], summary["fail"], summary["error"], summary["waived"],
        summary["not_applicable"], skipped, report.printable(where))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        where = os.environ.get("VMGUARD_PROFILE")
        if not where:
            return self._run(tmp, task_vars)
        import cProfile  # pylint: disable=import-outside-toplevel
        prof = cProfile.Profile()
        try:
            return prof.runcall(self._run, tmp, task_vars)
        finally:
            prof.dump_stats(os.path.join(where, "audit_evaluate.prof"))

    def _run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGS).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail(report.printable("; ".join(validation.error_messages)))
        args = validation.validated_parameters
        if args["publish"] is not None and not (args["publish"].isidentifier() and args["publish"].isascii()):
            raise AnsibleActionFail("publish: %s is not a valid variable name" % report.printable(args["publish"]))
        try:
            pol = policy_mod.load_policy(_plain(args["policy"]))
        except policy_mod.PolicyError as e:
            errors = [report.printable(x) for x in e.errors]
            result.update(failed=True, msg="invalid vmguard_policy:\n  - " + "\n  - ".join(errors), errors=errors)
            return result
        result["policy_digest"] = report.policy_digest(pol)
        try:
            if args["validate_only"]:
                return self._validate(result, args, pol, task_vars)
            return self._evaluate(result, args, pol, task_vars)
        except RunError as e:
            result.update(failed=True, msg="vmguard audit: %s" % report.printable(e))
            return result

    def _validate(self, result, args, pol, task_vars):
        """The policy; with run_checks also what the evaluation needs, before any evidence is collected."""
        if args["run_checks"]:
            check_subjects(dict(args, hypervisors=args["hypervisors"] or [], guests=args["guests"] or [],
                                vcenters=vcenters_of(args, task_vars)))
            report_dir = report_dir_of(args)
            if (args.get("previous_report") or "").strip():
                previous_of(args, report_dir, os.getcwd())  # a given one must be readable before anything runs
            report_mode_of(args)
            only = selection(task_vars, args["known_tags"], pol)
            result["rules_selected"] = sorted(only) if only is not None else "all"
        result.update(changed=False, policy=pol, msg="policy valid (%d rules)" % len(pol["rules"]))
        return result

    def _evaluate(self, result, args, pol, task_vars):
        hypervisors, guests, vcenters = args["hypervisors"] or [], args["guests"] or [], vcenters_of(args, task_vars)
        check_subjects(dict(args, hypervisors=hypervisors, guests=guests, vcenters=vcenters))
        report_dir, mode = report_dir_of(args), report_mode_of(args)
        only = selection(task_vars, args["known_tags"], pol)
        previous = start_previous(args, report_dir, os.getcwd())
        try:
            hostvars = task_vars.get("hostvars", {})
            evidence = drop_stale({"hypervisors": hypervisor_evidence(hostvars, hypervisors, args["hypervisor_evidence_var"]),
                                   "guests": guest_evidence(hostvars, guests, args["guest_evidence_var"]),
                                   "vcenters": vcenter_evidence(hostvars, vcenters, args["vcenter_evidence_var"])},
                                  left_the_play(task_vars))
            now = args["now"] if args["now"] is not None else time.time()
            started = time.time()
            findings = engine.evaluate(pol, evidence, now=now, only=only)
            gate = engine.gate(findings, args["fail_on"])
            extra = {"fail_on": args["fail_on"], "rules_selected": sorted(only) if only is not None else "all",
                     "evaluation_seconds": round(time.time() - started, 3), "guest_domains": guest_domains(evidence)}
            guards = planner_guards(pol, evidence, now, only)
            # Before the previous report is waited for (its child parses 20 MB meanwhile): neither reads since_previous.
            planned = plan_mod.build_plan(pol, evidence, findings, guards=guards)
            gate_entries = [gate_entry(f) for f in gate]
        except BaseException:
            abandon_previous(previous)
            raise
        extra["since_previous"] = since_previous(findings, previous, os.getcwd())  # reaps the child whatever happens
        rep = report.build(pol, findings, now, extra=extra)
        result.update(
            changed=False,
            summary=rep["summary"],
            gate_failed=bool(gate),
            gate=gate_entries,
            gate_count=len(gate),
            rules_not_evaluated=rep["rules_not_evaluated"],
            findings=findings,
            # The effective policy and what enforcement carries out: the only inputs of the
            # hypervisor and guest roles (published by the audit role as vmguard_audit).
            policy=pol,
            plan=planned,
        )
        try:
            paths = report.write_all(report_dir, rep, gate, args["fail_on"], mode=mode,
                                     sources=sarif_sources_of(args, task_vars, os.getcwd()))
        except (report.ReportWriteError, OSError, ValueError) as e:
            result.update(failed=True, reports={}, msg="vmguard audit: cannot write the reports to %s: %s "
                          "(the previous reports there are unchanged); %s" % (
                              report.printable(report_dir), report.printable(e),
                              summary_msg(rep["summary"], "not written", rep["rules_not_evaluated"])))
            return result
        result.update(reports=paths, since_previous=rep["since_previous"]["counts"] if rep["since_previous"]["previous"] else None,
                      msg=summary_msg(rep["summary"], paths["html"], rep["rules_not_evaluated"]))
        if args["publish"] and VariableLayer is not None:
            self.publish(result, args["publish"])
        return result

    def publish(self, result, name):
        """Set ``publish`` (vmguard_audit) for the hosts of the task, as set_fact would, straight from
        this result: a set_fact of 25,000 findings templates every one of them again (seconds). The
        findings, policy, plan and gate then travel once, in the variable, not also in the registered result."""
        value = dict((k, result[k]) for k in PUBLISHED)
        self.register_host_variables({name: value}, VariableLayer.EPHEMERAL_FACT)
        for k in MOVED:
            del result[k]
        result["published"] = name
