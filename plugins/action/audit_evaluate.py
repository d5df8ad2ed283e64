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
from ansible_collections.vmguard.hardening.plugins.module_utils import engine, policy as policy_mod, report

ARGS = dict(
    policy=dict(type="dict", default={}),
    hypervisors=dict(type="list", elements="str", default=[]),
    guests=dict(type="list", elements="str", default=[]),
    evidence_var=dict(type="str", default="__vmguard_audit_evidence"),
    report_dir=dict(type="path", default="./vmguard-report"),
    fail_on=dict(type="str", choices=["low", "medium", "high", "critical"], default="high"),
    validate_only=dict(type="bool", default=False),
    now=dict(type="float"),
)


def _plain(obj):
    """Strip Ansible's tagged/unsafe wrappers: the engine sees plain Python data."""
    if isinstance(obj, dict):
        return dict((str(k), _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    return obj


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        validation = ArgumentSpecValidator(ARGS).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail("; ".join(validation.error_messages))
        args = validation.validated_parameters
        try:
            pol = policy_mod.load_policy(_plain(args["policy"]))
        except policy_mod.PolicyError as e:
            result.update(failed=True, msg="invalid vmguard_policy:\n  - " + "\n  - ".join(e.errors), errors=e.errors)
            return result
        result["policy_digest"] = report.policy_digest(pol)
        if args["validate_only"]:
            result.update(changed=False, policy=pol, msg="policy valid (%d rules)" % len(pol["rules"]))
            return result

        hostvars = task_vars.get("hostvars", {})
        evidence = {"hypervisors": {}, "guests": {}}
        for hv in args["hypervisors"]:
            ev = _plain((hostvars.get(hv) or {}).get(args["evidence_var"]))
            evidence["hypervisors"][hv] = ev if ev else {"error": "no evidence collected from %s" % hv, "domains": []}
        for g in args["guests"]:
            hv_vars = hostvars.get(g) or {}
            ev = _plain(hv_vars.get(args["evidence_var"])) or {}
            evidence["guests"][g] = {
                "vars": {
                    "service": _plain(hv_vars.get("vmguard_service")),
                    "hypervisor": _plain(hv_vars.get("vmguard_hypervisor")),
                    "domain": _plain(hv_vars.get("vmguard_domain")),
                    "data_class": _plain(hv_vars.get("vmguard_data_class")),
                },
                "error": ev.get("error") if ev else "no evidence collected from %s" % g,
                "facts": ev.get("facts") if ev else None,
            }
        now = args["now"] if args["now"] is not None else time.time()
        started = time.time()
        only = engine.select_rules(task_vars.get("ansible_run_tags"))
        findings = engine.evaluate(pol, evidence, now=now, only=only)
        gate = engine.gate(findings, args["fail_on"])
        extra = {"fail_on": args["fail_on"], "rules_selected": sorted(only) if only else "all",
                 "evaluation_seconds": round(time.time() - started, 3)}
        rep = report.build(pol, findings, now, extra=extra)
        report_dir = args["report_dir"]
        if not os.path.isabs(report_dir):
            report_dir = os.path.join(os.getcwd(), report_dir)
        paths = report.write_all(report_dir, rep, gate, args["fail_on"])
        result.update(
            changed=False,
            summary=rep["summary"],
            gate_failed=bool(gate),
            gate=[dict(rule=f["rule"], severity=f["severity"], status=f["status"], subject=f["subject"]["id"],
                       message=f["message"]) for f in gate],
            reports=paths,
            # What enforcement acts on: every failing finding with its evidence (bounded by the failures).
            failing=[dict(rule=f["rule"], subject=f["subject"]["id"], kind=f["subject"]["kind"], evidence=f["evidence"])
                     for f in findings if f["status"] == "fail"],
            msg="%d findings: %d pass, %d fail, %d error, %d waived, %d not applicable; report: %s" % (
                rep["summary"]["total"], rep["summary"]["pass"], rep["summary"]["fail"], rep["summary"]["error"],
                rep["summary"]["waived"], rep["summary"]["not_applicable"], paths["html"]),
        )
        return result
