"""The planner's rollback plumbing (issue 13): RB-05 failing alone (an epoch-only rollback) gets a reconverge
step and an epoch move; a held quarantine is lifted (lift_quarantine) after an epoch move; the hypervisor
evidence carries the ledger's quarantine the planner reads."""

import copy
import importlib

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, plan, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

from . import evidence as E
from .test_plan import ROLLBACK_POLICY, build, games, harden_ledger, rolled_back_facts, web1_alone

QUARANTINE = {"since": "2026-11-18T10:00:00Z", "reason": "revert (STARTED/FROM_SNAPSHOT)",
              "interfaces": ["52:54:00:00:00:01"], "pending_start": False}


def good_facts(epoch=3):
    """web1 as its last harden left it (E.ledger: epoch 3, games disabled, openssl floor, telnet.socket masked)."""
    facts = E.guest_facts(1, epoch=epoch, services={"enabled": ["ssh.service", "nginx.service"], "masked": ["telnet.socket"]})
    facts["accounts"].append(games())
    return facts


def rb(findings, *rules):
    return [f["status"] for r in rules for f in findings if f["rule"] == r and f["subject"]["id"] == "web1"]


def test_epoch_only_rollback_gets_a_reconverge_step_and_an_epoch_move():
    """A revert to a snapshot taken at epoch 2 whose accounts, packages, units, keys and firewall still match the
    ledger: only RB-05 fails. The plan reconverges (nothing to lock, upgrade or mask) and moves the epoch."""
    p, findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=2), E.ledger()))
    assert rb(findings, "RB-05") == ["fail"]
    assert all(s in ("pass", "not_applicable") for s in rb(findings, "RB-06", "RB-07", "RB-08", "RB-09", "RB-10"))
    assert p["hosts"]["web1"]["reconverge"] == {"rules": ["RB-05"], "subjects": ["web1"], "lock_accounts": [],
                                                "packages": {}, "mask_services": []}
    assert p["hosts"]["web1"]["ledger"]["epoch"] is True and p["steps"] == 1
    assert not [e for e in p["not_enforced"] if e["rule"] == "RB-05"]


def test_after_the_epoch_moves_the_epoch_only_rollback_passes_and_the_next_harden_changes_nothing():
    held = ledger.empty(E.domain("web1")["uuid"])
    held.update(E.ledger())
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=2), held))
    held2 = harden_ledger(p["hosts"]["web1"]["ledger"], held)
    assert held2["epoch"] == 4
    p, findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=held2["epoch"]), held2))
    assert rb(findings, "RB-05") == ["pass"]
    assert "reconverge" not in p["hosts"]["web1"] and p["steps"] == 0
    assert p["hosts"]["web1"]["ledger"]["epoch"] is False


def test_epoch_only_rollback_in_audit_mode_is_not_enforced():
    doc = copy.deepcopy(ROLLBACK_POLICY)
    doc["rules"] = {"RB-05": {"mode": "audit"}}
    p, _findings = build(doc, web1_alone(good_facts(epoch=2), E.ledger()))
    assert "reconverge" not in p["hosts"]["web1"]
    assert [(e["subject"], e["reason"]) for e in p["not_enforced"] if e["rule"] == "RB-05"] == [
        ("web1", "epoch not moved (the guest would pass RB-05 as reconverged): RB-05 fails and is not remediated in this "
                 "run (mode audit)"), ("web1", "mode audit")]
    assert p["hosts"]["web1"]["ledger"]["epoch"] is False


def settled():
    """(facts, held ledger) after a harden: a second harden would change nothing (epoch False)."""
    held = ledger.empty(E.domain("web1")["uuid"])
    held.update(E.ledger())
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=3), held))
    held = harden_ledger(p["hosts"]["web1"]["ledger"], held)
    return good_facts(epoch=held["epoch"]), held


def test_a_held_quarantine_is_lifted_and_moves_the_epoch():
    """The watcher quarantined web1 (a revert) but nothing is behind: the plan still moves the epoch and lifts it."""
    facts, held = settled()
    p, _findings = build(ROLLBACK_POLICY, web1_alone(facts, held))
    settled_step = dict(p["hosts"]["web1"]["ledger"], epoch=False, lift_quarantine=False, quarantine_since=None)
    assert p["hosts"]["web1"] == {"ledger": settled_step}
    p, findings = build(ROLLBACK_POLICY, web1_alone(facts, dict(held, quarantine=QUARANTINE)))
    assert rb(findings, "RB-05") == ["pass"]
    step = p["hosts"]["web1"]["ledger"]
    assert step["lift_quarantine"] is True and step["epoch"] is True
    # Only the quarantine this audit saw: the module refuses to lift one a later revert put.
    assert step["quarantine_since"] == QUARANTINE["since"]
    assert list(p["hosts"]["web1"]) == ["ledger"] and p["steps"] == 0


def test_rolled_back_and_quarantined_guest_reconverges_then_lifts():
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=2), E.ledger(quarantine=QUARANTINE)))
    assert p["hosts"]["web1"]["reconverge"]["rules"] == ["RB-05"]
    assert (p["hosts"]["web1"]["ledger"]["lift_quarantine"], p["hosts"]["web1"]["ledger"]["epoch"]) == (True, True)


def held_back(p, what):
    return [(e["reason"], e["by_choice"]) for e in p["not_enforced"] if e["rule"] == "RB-05" and e["reason"].startswith(what)]


def test_a_quarantine_stays_while_a_failing_guard_is_not_remediated():
    """A retired SSH host key is back (RB-06 fails) with RB-06 in audit mode: the links stay down. RB-07..09 are
    reconverged and RB-05 passes, so the epoch still moves (nothing of the rollback's trace is lost by it)."""
    facts = rolled_back_facts(epoch=3)
    facts["ssh_host_keys"] = facts["ssh_host_keys"] + [{"type": "ssh-ed25519", "fingerprint": E.FP % "old-ed"}]
    doc = copy.deepcopy(ROLLBACK_POLICY)
    doc["rules"] = {"RB-06": {"mode": "audit"}}
    p, findings = build(doc, web1_alone(facts, E.ledger(quarantine=QUARANTINE)))
    assert rb(findings, "RB-05", "RB-06") == ["pass", "fail"]
    step = p["hosts"]["web1"]["ledger"]
    assert (step["lift_quarantine"], step["quarantine_since"], step["epoch"]) == (False, None, True)
    assert held_back(p, "revert quarantine kept") == [("revert quarantine kept (links stay down): RB-06 fails and is not "
                                                       "remediated in this run (mode audit)", True)]
    # Enforced, the reseal remediates RB-06: the quarantine is lifted after the epoch commit.
    p, _findings = build(ROLLBACK_POLICY, web1_alone(facts, E.ledger(quarantine=QUARANTINE)))
    assert p["hosts"]["web1"]["ledger"]["lift_quarantine"] is True and not held_back(p, "revert quarantine kept")


def test_a_rolled_back_guest_in_audit_mode_keeps_its_quarantine_and_its_epoch():
    doc = copy.deepcopy(ROLLBACK_POLICY)
    doc["rules"] = dict((r, {"mode": "audit"}) for r in ("RB-05", "RB-07", "RB-08", "RB-09"))
    held = dict(ledger.empty(E.domain("web1")["uuid"]), **E.ledger(quarantine=QUARANTINE))
    p, findings = build(doc, web1_alone(rolled_back_facts(epoch=2), held))
    step = p["hosts"]["web1"]["ledger"]
    assert (step["lift_quarantine"], step["epoch"]) == (False, False)
    (kept, _c), = held_back(p, "revert quarantine kept")
    assert all("%s fails and is not remediated in this run (mode audit)" % r in kept for r in ("RB-05", "RB-07", "RB-08", "RB-09"))
    assert held_back(p, "epoch not moved") == [("epoch not moved (the guest would pass RB-05 as reconverged): RB-05 fails "
                                                "and is not remediated in this run (mode audit)", True)]
    # The guest role carries out that ledger step: the guest keeps epoch 2, the ledger 3, RB-05 still fails.
    after = harden_ledger(step, held)
    assert after["epoch"] == 3 and after["quarantine"] == QUARANTINE
    (f,) = E.run("RB-05", web1_alone(rolled_back_facts(epoch=2), after))
    assert f["status"] == "fail"


def tagged(doc, ev, only, guards):
    """A --tags run: ``only`` evaluated; with ``guards`` the rollback guards left out too, as audit_evaluate does."""
    pol = policy.load_policy(copy.deepcopy(doc))
    findings = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW, only=only)
    extra = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW, only=set(plan.ROLLBACK_GUARDS) - only) if guards else None
    return plan.build_plan(pol, ev, findings, guards=extra)


def test_a_tag_limited_run_lifts_and_moves_the_epoch_only_on_what_the_guards_say_now():
    rolled = web1_alone(rolled_back_facts(epoch=2), E.ledger(quarantine=QUARANTINE))
    p = tagged(ROLLBACK_POLICY, rolled, {"DIV-10"}, guards=False)  # the guards not evaluated at all
    step = p["hosts"]["web1"]["ledger"]
    assert (step["lift_quarantine"], step["epoch"]) == (False, False)
    assert held_back(p, "revert quarantine kept") == [("revert quarantine kept (links stay down): " + "; ".join(
        "%s not evaluated in this run" % r for r in plan.ROLLBACK_GUARDS), False)]
    p = tagged(ROLLBACK_POLICY, rolled, {"DIV-10"}, guards=True)  # evaluated for the planner: rolled back, not selected
    step = p["hosts"]["web1"]["ledger"]
    assert (step["lift_quarantine"], step["epoch"]) == (False, False) and "reconverge" not in p["hosts"]["web1"]
    assert "RB-05 fails and is not remediated in this run (not selected)" in held_back(p, "revert quarantine kept")[0][0]
    assert not [f for f in p["not_enforced"] if f["rule"] in ("RB-07", "RB-08", "RB-09")]  # nothing reported of them
    facts, held = settled()
    p = tagged(ROLLBACK_POLICY, web1_alone(facts, dict(held, quarantine=QUARANTINE)), {"DIV-10"}, guards=True)
    assert (p["hosts"]["web1"]["ledger"]["lift_quarantine"], p["hosts"]["web1"]["ledger"]["epoch"]) == (True, True)


def test_the_audit_action_evaluates_the_guards_a_tag_selection_left_out():
    action = importlib.import_module("ansible_collections.vmguard.hardening.plugins.action.audit_evaluate")
    pol = policy.load_policy(copy.deepcopy(ROLLBACK_POLICY))
    ev = web1_alone(rolled_back_facts(epoch=2), E.ledger(quarantine=QUARANTINE))
    assert action.planner_guards(pol, ev, E.NOW, None) is None  # everything evaluated: nothing extra
    got = action.planner_guards(pol, ev, E.NOW, {"DIV-10", "RB-06"})
    assert sorted(set(f["rule"] for f in got)) == ["RB-05", "RB-07", "RB-08", "RB-09", "RB-10"]
    assert action.planner_guards(pol, ev, E.NOW, set(plan.ROLLBACK_GUARDS)) is None


def test_a_guard_that_cannot_be_enforced_or_is_disabled():
    """RB-10 failing on a guest that declares no service cannot be re-applied: the quarantine stays. A guard the
    policy disables guards nothing."""
    facts, held = settled()
    held = dict(held, quarantine=QUARANTINE)
    facts["firewall"] = dict(facts["firewall"], digest="0" * 64)
    ev = web1_alone(facts, held)
    ev["guests"]["web1"]["vars"]["service"] = None
    p, findings = build(ROLLBACK_POLICY, ev)
    assert rb(findings, "RB-10") == ["fail"] and "guest_firewall" not in p["hosts"]["web1"]
    assert p["hosts"]["web1"]["ledger"]["lift_quarantine"] is False
    assert "RB-10 fails and is not remediated in this run (cannot be enforced" in held_back(p, "revert quarantine kept")[0][0]
    doc = copy.deepcopy(ROLLBACK_POLICY)
    doc["rules"] = {"RB-10": {"enabled": False}}
    p, _findings = build(doc, ev)
    assert p["hosts"]["web1"]["ledger"]["lift_quarantine"] is True and not held_back(p, "revert quarantine kept")


def test_the_ledger_step_names_the_reverts_the_audit_saw():
    """seen_reverts: the revert/restore events of the record the audit read; the epoch commit fails on any other."""
    held = E.ledger(quarantine=QUARANTINE)
    for t, ev in ((E.NOW - 900, "revert"), (E.NOW - 899, "quarantine"), (E.NOW - 300, "restore"), (E.NOW - 60, "lift")):
        ledger.add_event(held, t, ev)
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=3), held))
    assert p["hosts"]["web1"]["ledger"]["seen_reverts"] == [iso(E.NOW - 900), iso(E.NOW - 300)]
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=3), E.ledger()))
    assert p["hosts"]["web1"]["ledger"]["seen_reverts"] == []
    assert plan.REVERT_EVENTS == ledger.REVERT_EVENTS


def test_an_unreadable_ledger_lifts_nothing():
    err = {"error": "/var/lib/vmguard/ledger/x.json: unreadable ledger: not valid JSON"}
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good_facts(epoch=3), err))
    assert p["hosts"]["web1"]["ledger"]["lift_quarantine"] is False


def test_hypervisor_evidence_carries_the_ledger_quarantine(tmp_path):
    """hypervisor_facts' domain evidence "ledger" is ledger.read_record's record: the quarantine the watcher wrote."""
    facts = importlib.import_module("ansible_collections.vmguard.hardening.plugins.modules.hypervisor_facts")
    uuid = E.domain("web1")["uuid"]
    rec, _ch = ledger.apply(ledger.empty(uuid), E.NOW, event="quarantine", quarantine=QUARANTINE)
    ledger.save(str(tmp_path), rec)
    assert facts._ledger(str(tmp_path), uuid)["quarantine"] == QUARANTINE
    rec, _ch = ledger.apply(rec, E.NOW, event="lift", quarantine=None)
    ledger.save(str(tmp_path), rec)
    assert facts._ledger(str(tmp_path), uuid)["quarantine"] is None
