"""Engine behaviour shared by all rules: waivers, gate, errors, selection, catalogue match."""

import os
import re

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, check, rule

from . import evidence as E

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def test_registry_matches_the_catalogue():
    with open(os.path.join(ROOT, "docs", "CATALOG.md")) as f:
        rows = re.findall(r"^\| ((?:DIV|RB|ISO|LEAK|VIS)-\d\d) \| (\w+) \| ([A-Z+]+) \|", f.read(), re.M)
    assert len(rows) == 49
    for rid, sev, layer in rows:
        assert rid in RULES, rid
        assert RULES[rid].severity == sev, rid
        assert RULES[rid].layer == layer, rid
        assert RULES[rid].checks, "%s has no check" % rid
    assert set(RULES) == set(r[0] for r in rows)


def test_every_rule_is_evaluated_on_a_full_fleet():
    ev = E.fleet([E.domain("web1", ledger=E.LEDGER)], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    pol = policy.load_policy({})
    findings = engine.evaluate(pol, ev, now=E.NOW)
    assert set(f["rule"] for f in findings) == set(RULES)
    # The clean fixtures describe a compliant one-guest fleet: nothing fails or errors.
    bad = sorted((f["rule"], f["status"]) for f in findings if f["status"] not in ("pass", "not_applicable"))
    assert bad == [], bad


def test_expired_waiver_stops_waiving_and_is_reported():
    d = E.domain(replace={"<genid/>": ""})
    pol = policy.load_policy({"waivers": [{"rule": "RB-01", "subject": "hv1/*", "reason": "legacy", "expires": "2026-01-01"}]})
    findings = engine.evaluate(pol, E.fleet([d]), now=E.NOW, only={"RB-01"})
    statuses = sorted((f["subject"]["id"], f["status"]) for f in findings)
    assert statuses == [("hv1/web1", "fail"), ("waiver/hv1/*", "fail")]
    assert "waiver expired 2026-01-01" in findings[0]["message"]


def test_an_expired_waivers_finding_keeps_its_id_when_other_waivers_go():
    """The id is the waiver's subject glob (the rule is the finding's), so "since the previous run" pairs it with
    the same waiver's finding even after another waiver was removed; a repeated rule and glob gets #2."""
    old = {"rule": "RB-01", "subject": "hv1/web*", "reason": "legacy", "expires": "2026-01-01"}
    other = {"rule": "RB-01", "subject": "hv1/mail*", "reason": "legacy too", "expires": "2026-01-01"}

    def ids(waivers):
        fs = engine.evaluate(policy.load_policy({"waivers": waivers}), E.fleet([E.domain()]), now=E.NOW, only={"RB-01"})
        return sorted(f["subject"]["id"] for f in fs if f["subject"]["kind"] == "fleet")
    assert ids([other, old]) == ["waiver/hv1/mail*", "waiver/hv1/web*"]
    assert ids([old]) == ["waiver/hv1/web*"]
    assert ids([old, dict(old, reason="again")]) == ["waiver/hv1/web*", "waiver/hv1/web*#2"]


def test_waiver_glob_matches_subject_only():
    d1, d2 = E.domain("web1", replace={"<genid/>": ""}), E.domain("mail1", "mail", replace={"<genid/>": ""})
    pol = policy.load_policy({"waivers": [{"rule": "RB-01", "subject": "hv1/web*", "reason": "r", "expires": "2030-01-01"}]})
    fs = E.by_subject(engine.evaluate(pol, E.fleet([d1, d2]), now=E.NOW, only={"RB-01"}))
    assert fs["hv1/web1"]["status"] == "waived" and fs["hv1/mail1"]["status"] == "fail"
    # The waiver travels with the finding (SARIF suppressions, the HTML), not only in the message.
    assert fs["hv1/web1"]["waiver"] == {"reason": "r", "expires": "2030-01-01", "subject": "hv1/web*"}
    assert "waiver" not in fs["hv1/mail1"]


def test_broken_check_is_an_error_never_a_pass(monkeypatch):
    def boom(ctx, hd):
        raise KeyError("surprise")
    monkeypatch.setitem(RULES["RB-01"].checks, "domain", boom)
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([E.domain()]), now=E.NOW, only={"RB-01"})
    assert f["status"] == "error" and "KeyError" in f["message"]


def test_domain_vanished_mid_run_is_error_for_that_domain():
    gone = {"name": "gone", "error": "domain vanished while it was read"}
    fs = E.by_subject(engine.evaluate(policy.load_policy({}), E.fleet([E.domain(), gone]), now=E.NOW, only={"RB-01"}))
    assert fs["hv1/gone"]["status"] == "error" and "vanished" in fs["hv1/gone"]["message"]
    assert fs["hv1/web1"]["status"] == "pass"


def test_gate_and_severity_override():
    d = E.domain(replace={"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>": ""})
    findings = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"DIV-09"})
    assert engine.gate(findings, "high") == [] and len(engine.gate(findings, "low")) == 1
    findings = engine.evaluate(policy.load_policy({"rules": {"DIV-09": {"severity": "critical"}}}), E.fleet([d]),
                               now=E.NOW, only={"DIV-09"})
    assert len(engine.gate(findings, "critical")) == 1


def test_select_rules_by_tags():
    assert engine.select_rules(["all"]) is None
    assert engine.select_rules(["DIV-02", "always"]) == {"DIV-02"}
    assert engine.select_rules(["rollback"]) == set(r for r in RULES if r.startswith("RB-"))


def test_summary_counts():
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    findings = engine.evaluate(policy.load_policy({}), ev, now=E.NOW)
    s = engine.summarize(findings)
    assert s["total"] == len(findings) == sum(s[k] for k in ("pass", "fail", "error", "waived", "not_applicable"))
    assert sum(v["fail"] for v in s["by_area"].values()) == s["fail"]


def test_rule_ids_cannot_be_declared_twice():
    with pytest.raises(ValueError):
        rule("DIV-01", "diversity", "high", "GUEST", "dup", "none")
    with pytest.raises(ValueError):
        check("DIV-01", "planet")


def _running_with_persistent(live_kw, persistent_kw):
    live = E.domain("web1", **live_kw)
    pers = E.domain("web1", **persistent_kw)
    pers["definition"] = "persistent"
    live.update(definition="live", inactive=pers)
    return live


VNC_LOCAL = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>"
VNC_ANY = "<graphics type='vnc' autoport='yes' listen='0.0.0.0'/>"


def test_weakening_define_of_a_running_domain_fails_in_the_persistent_definition():
    d = _running_with_persistent({}, {"replace": {VNC_LOCAL: VNC_ANY}})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "fail" and f["definition"] == "persistent" and f["pending_restart"] is False
    assert f["message"].startswith("in the persistent definition (takes effect at next start): ")
    assert "0.0.0.0" in f["message"]


def test_fix_waiting_for_a_restart_is_pending_not_a_plain_fail():
    d = _running_with_persistent({"replace": {VNC_LOCAL: VNC_ANY}}, {})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "fail" and f["pending_restart"] is True and f["definition"] == "live"
    assert f["message"].endswith("(fixed in the persistent definition: pending restart)")


def test_both_definitions_failing_and_both_passing():
    d = _running_with_persistent({"replace": {VNC_LOCAL: VNC_ANY}}, {"replace": {VNC_LOCAL: VNC_ANY}})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "fail" and f["definition"] == "both" and f["pending_restart"] is False
    d = _running_with_persistent({}, {})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "pass" and f["definition"] == "both"


def test_nothing_live_but_a_passing_persistent_definition_passes_there():
    # A console defined (already on loopback) that the running domain does not have yet: the rule applies
    # and passes; "not applicable" would hide that the definition was judged (the isolation scenario's web1).
    d = _running_with_persistent({"replace": {VNC_LOCAL: ""}}, {})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "pass" and f["definition"] == "persistent" and f["pending_restart"] is False
    assert f["message"].startswith("in the persistent definition (takes effect at next start): ")
    # Nothing in either definition: not applicable, with the reason.
    d = _running_with_persistent({"replace": {VNC_LOCAL: ""}}, {"replace": {VNC_LOCAL: ""}})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "not_applicable" and f["definition"] == "both"


def test_shut_off_domain_has_one_definition():
    d = E.domain("web1", state="shutoff", replace={VNC_LOCAL: VNC_ANY})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "fail" and "definition" not in f and "persistent definition" not in f["message"]


def test_tags_naming_no_rule_are_an_error_and_skip_tags_are_honoured():
    with pytest.raises(ValueError) as e:
        engine.select(["DIV-2"], [])
    assert "DIV-2" in str(e.value)
    # A skip tag that names no rule skips no rule: the audit only gets wider, it cannot pass by accident.
    assert engine.select([], ["molecule-notest", "diversty"]) is None
    assert engine.select(["all"], []) is None
    assert engine.select([], ["always"]) is None
    picked = engine.select(["all"], ["diversity"])
    assert picked == set(r for r in RULES if not r.startswith("DIV-"))
    assert engine.select(["rollback"], ["RB-11"]) == set(r for r in RULES if r.startswith("RB-")) - {"RB-11"}
    assert engine.select(["DIV-02"], ["DIV-02"]) == set()


def test_live_definition_that_cannot_be_judged_claims_no_pending_fix(monkeypatch):
    """An error on the live definition (its evidence unreadable) with a passing persistent one is an error, not
    "fixed in the persistent definition: pending restart"."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import error, ok

    def judge(ctx, hd):
        return error("console password state unreadable") if hd[1]["definition"] == "live" else ok("password set")
    monkeypatch.setitem(RULES["LEAK-02"].checks, "domain", judge)
    d = _running_with_persistent({}, {})
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"LEAK-02"})
    assert f["status"] == "error" and f["pending_restart"] is False and f["definition"] == "live"
    assert "pending restart" not in f["message"]


def test_a_waiver_accepts_a_failure_never_an_error():
    """A waiver over every subject must not hide a guest that could not be evaluated: the error stays an error
    the gate counts, with a note; the failure next to it is waived."""
    pol = policy.load_policy({"waivers": [{"rule": "DIV-10", "subject": "*", "reason": "legacy", "expires": "2030-01-01"}]})
    bad = E.guest_facts(2)
    bad["sysctl"]["kernel.randomize_va_space"] = "0"
    guests = {"web1": E.guest("web1", facts=None, error="host unreachable"), "web2": E.guest("web2", facts=bad)}
    fs = E.by_subject(engine.evaluate(pol, E.fleet([], guests), now=E.NOW, only={"DIV-10"}))
    assert fs["web2"]["status"] == "waived"
    assert fs["web1"]["status"] == "error" and "waiver" not in fs["web1"]
    assert "accepts a failure, not an error" in fs["web1"]["message"]
    assert [f["subject"]["id"] for f in engine.gate(list(fs.values()), "low")] == ["web1"]
    # An error is accepted only by a waiver that names it (a known "cannot tell", not an accident of "*").
    named = policy.load_policy({"waivers": [
        {"rule": "DIV-10", "subject": "web2", "reason": "legacy", "expires": "2030-01-01"},
        {"rule": "DIV-10", "subject": "web1", "reason": "decommissioned, off", "expires": "2030-01-01", "statuses": ["error"]}]})
    fs = E.by_subject(engine.evaluate(named, E.fleet([], guests), now=E.NOW, only={"DIV-10"}))
    assert fs["web1"]["status"] == "waived" and fs["web2"]["status"] == "waived"
    assert engine.gate(list(fs.values()), "low") == []
    assert named["waivers"][0]["statuses"] == ["fail"] and named["waivers"][1]["statuses"] == ["error"]


def test_missing_evidence_field_is_an_error_naming_it(monkeypatch):
    """rules.collected(): a field the producer did not send is an error that names it, never "nothing there"."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import collected, ok

    def reads_disks(ctx, hd):
        return ok("%d disks" % len(collected(hd[1], "disks")))
    monkeypatch.setitem(RULES["RB-01"].checks, "domain", reads_disks)
    d = E.domain()
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"RB-01"})
    assert f["status"] == "pass"
    del d["disks"]
    (f,) = engine.evaluate(policy.load_policy({}), E.fleet([d]), now=E.NOW, only={"RB-01"})
    assert f["status"] == "error" and f["message"] == "cannot evaluate: disks not collected"


def test_evidence_without_its_domain_or_vm_list_is_an_error_per_rule_never_silence():
    """A hypervisor whose evidence has no domain list, or a vCenter without its VM list, gives one error finding
    per rule (subject <name>/*), as an unreachable one does: no domain rule may pass by having nothing to see."""
    ev = E.fleet([E.domain()])
    del ev["hypervisors"]["hv1"]["domains"]
    (f,) = engine.evaluate(policy.load_policy({}), ev, now=E.NOW, only={"RB-01"})
    assert (f["status"], f["subject"]["id"]) == ("error", "hv1/*") and "domains were not collected" in f["message"]
    ev = {"hypervisors": {}, "guests": {}, "vcenters": {"vc1": {"error": None}}}
    fs = engine.evaluate(policy.load_policy({}), ev, now=E.NOW, only={"LEAK-05"})
    assert [(f["status"], f["subject"]["id"]) for f in fs] == [("error", "vc1/*")]


def test_a_blank_inventory_data_class_falls_back_to_the_domains_metadata():
    d = E.domain()
    d["metadata"] = dict(d.get("metadata") or {}, data_class="confidential")
    ctx = engine.Context(policy.load_policy({}), E.fleet([d], {"web1": E.guest("web1", data_class="  ")}))
    assert ctx.data_class_of_domain("hv1", d) == "confidential"
    ctx = engine.Context(policy.load_policy({}), E.fleet([d], {"web1": E.guest("web1", data_class="public")}))
    assert ctx.data_class_of_domain("hv1", d) == "public"


GUARDS = {"RB-05", "RB-06", "RB-07", "RB-08", "RB-09", "RB-10"}


@pytest.mark.parametrize("case", ["hypervisor unreachable", "hypervisor not audited", "domains not collected",
                                  "no such domain", "domain unreadable"])
def test_rollback_guards_are_errors_when_the_ledger_cannot_be_read(case):
    """A guest rolled back (epoch 1, ledger at 3) whose ledger record cannot be read is no "never hardened": the
    rollback guards are errors the gate counts, never not applicable (--tags rollback would pass otherwise)."""
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1, epoch=1))}
    ev = E.fleet([E.domain("web1", ledger=E.ledger())], guests)
    hv = ev["hypervisors"]["hv1"]
    if case == "hypervisor unreachable":
        hv.update(error="cannot connect to qemu+ssh://hv1/system", domains=[])
    elif case == "hypervisor not audited":
        del ev["hypervisors"]["hv1"]
    elif case == "domains not collected":
        del hv["domains"]
    elif case == "no such domain":
        hv["domains"] = [E.domain("other", ledger=E.ledger())]
    else:
        hv["domains"] = [{"name": "web1", "error": "domain vanished while it was read"}]
    fs = [f for f in engine.evaluate(policy.load_policy({}), ev, now=E.NOW, only=GUARDS) if f["subject"]["id"] == "web1"]
    assert sorted(f["rule"] for f in fs) == sorted(GUARDS)
    assert set(f["status"] for f in fs) == {"error"}, [(f["rule"], f["status"], f["message"]) for f in fs]
    assert all("the ledger record of hv1/web1" in f["message"] for f in fs)
    assert [f["rule"] for f in engine.gate(fs, "critical")] == ["RB-05", "RB-06"]


def test_rollback_guards_without_a_ledger_record_stay_not_applicable_with_the_reason():
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1)), "loose": E.guest("loose", facts=E.guest_facts(2))}
    guests["loose"]["vars"].update(hypervisor=None, domain=None)
    fs = engine.evaluate(policy.load_policy({}), E.fleet([E.domain("web1", ledger=None)], guests), now=E.NOW, only=GUARDS)
    assert set((f["status"], f["message"]) for f in fs) == {("not_applicable", "no ledger record: never hardened by vmguard")}


@pytest.mark.parametrize("verdict", [("unknown", "could not tell", {}), ("skipped", "not run", {}), None,
                                     ("pass", "ok", None), ("not_applicable", "", {}), ("pass", None, {}),
                                     ("waived", "a check cannot waive", {})])
@pytest.mark.parametrize("rid, kind", [("RB-01", "domain"), ("RB-11", "hypervisor"), ("DIV-10", "guest")])
def test_a_check_returning_no_valid_verdict_is_an_error_the_gate_counts(monkeypatch, verdict, rid, kind):
    """A status the reports do not know passed the gate (and then broke the summary), None broke the run, and a
    pass or not applicable without a message gave no reason: each is an error finding naming what was wrong."""
    monkeypatch.setitem(RULES[rid].checks, kind, lambda ctx, ev: verdict)
    ev = E.fleet([E.domain()], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    fs = [f for f in engine.evaluate(policy.load_policy({}), ev, now=E.NOW, only={rid}) if f["subject"]["kind"] == kind]
    assert [f["status"] for f in fs] == ["error"]
    assert fs[0]["message"].startswith("check failed: it returned ") and fs[0]["remediation"] == RULES[rid].remediation
    assert engine.gate(fs, "low") == fs
    assert engine.summarize(fs)["error"] == 1


def test_a_batch_finding_with_no_valid_verdict_is_an_error(monkeypatch):
    def check(ctx, guest):
        return ("pass", "unique", {})

    def batch(ctx):
        good, _bad = ctx.finding_templates("DIV-01", "guest")
        out = []
        for subject, _g, _err in ctx.guest_subjects():
            f = good.copy()
            f.update(status="unknown", subject=subject, message="", evidence={})
            out.append(f)
        return out
    check.batch = batch
    monkeypatch.setitem(RULES["DIV-01"].checks, "guest", check)
    ev = E.fleet([], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    (f,) = engine.evaluate(policy.load_policy({}), ev, now=E.NOW, only={"DIV-01"})
    assert f["status"] == "error" and "status 'unknown'" in f["message"] and f["remediation"] == RULES["DIV-01"].remediation


def test_the_gate_counts_any_status_that_is_no_pass():
    findings = [{"rule": "RB-01", "severity": "high", "status": s, "subject": {"kind": "domain", "id": "hv1/" + s}}
                for s in ("pass", "waived", "not_applicable", "fail", "error", "unknown")]
    assert [f["status"] for f in engine.gate(findings, "high")] == ["fail", "error", "unknown"]


def test_every_finding_has_an_identity_of_its_own_also_for_unreachable_hosts():
    """(rule, subject kind, subject id) identifies a finding (OSCAL uuids, SARIF fingerprints, "since the previous
    run"): a HOST+DOM rule (ISO-04, LEAK-04) on an unreachable hypervisor gave two error findings for it."""
    ev = E.fleet([], {"web1": E.guest("web1", error="unreachable")}, hv_error="cannot connect to qemu+ssh://hv1/system")
    ev["hypervisors"]["hv2"] = {"error": None, "uri": "qemu:///system", "host": E.host_for([E.domain("mail1", "mail")]),
                                "domains": [E.domain("mail1", "mail")]}
    ev["vcenters"] = {"vc1": {"error": "cannot connect", "vms": [], "inventory": {}}}
    fs = engine.evaluate(policy.load_policy({}), ev, now=E.NOW)
    keys = [(f["rule"], f["subject"]["kind"], f["subject"]["id"]) for f in fs]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    for rid in ("ISO-04", "LEAK-04"):
        (f,) = [f for f in fs if f["rule"] == rid and f["subject"]["id"] == "hv1"]
        assert f["status"] == "error" and f["subject"]["kind"] == "hypervisor"
    # A domain rule without a hypervisor check still gives the unreachable hypervisor its error.
    assert [f["status"] for f in fs if f["rule"] == "RB-01" and f["subject"]["id"] == "hv1"] == ["error"]


def test_an_error_only_waiver_on_a_failure_says_so_and_never_calls_it_unevaluated():
    """The note for a matching waiver that does not accept the status said "the rule could not be evaluated" on a
    plain failure too: a report claiming no verdict where the verdict is fail."""
    d = E.domain(replace={"<genid/>": ""})
    pol = policy.load_policy({"waivers": [{"rule": "RB-01", "subject": "hv1/*", "reason": "decommissioned", "expires": "2030-01-01",
                                           "statuses": ["error"]}]})
    (f,) = engine.evaluate(pol, E.fleet([d]), now=E.NOW, only={"RB-01"})
    assert f["status"] == "fail" and "could not be evaluated" not in f["message"]
    assert f["message"].endswith("(the waiver for RB-01 on 'hv1/*' accepts an error only (statuses [error]), not this failure; "
                                 "statuses [fail, error] accepts both)")


def test_a_checked_batch_checks_every_verdict_it_judges(monkeypatch):
    """DIV-01..04's batch is batch_checked (the engine does not walk its 400,000 findings again): a verdict it judges,
    rather than builds from constants, goes through checked_verdict all the same, so an invalid one is an error."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import div
    assert all(RULES[rid].checks["guest"].batch_checked for rid in ("DIV-01", "DIV-02", "DIV-03", "DIV-04"))
    rules = [(rid, name, (lambda ctx, g, f, index: ("unknown", "", {})) if rid == "DIV-01" else judge)
             for rid, name, judge in div.IDENTITY_RULES]
    monkeypatch.setattr(div, "IDENTITY_RULES", tuple(rules))
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1)), "web2": E.guest("web2", facts=E.guest_facts(1)),
              "web3": E.guest("web3", facts=E.guest_facts(3))}  # web1 and web2 share their identity: judged again
    fs = engine.evaluate(policy.load_policy({}), E.fleet([], guests), now=E.NOW, only={"DIV-01"})
    by = dict((f["subject"]["id"], f) for f in fs)
    assert by["web1"]["status"] == by["web2"]["status"] == "error" and by["web3"]["status"] == "pass"
    assert "status 'unknown'" in by["web1"]["message"] and by["web1"]["remediation"] == RULES["DIV-01"].remediation
