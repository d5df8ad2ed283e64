"""The planner's rollback plumbing (issue 13): RB-05 failing alone (an epoch-only rollback) gets a reconverge
step and an epoch move; a held quarantine is lifted (lift_quarantine) after an epoch move; the hypervisor
evidence carries the ledger's quarantine the planner reads."""

import copy
import importlib

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import plan
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

from . import evidence as E
from .test_plan import ROLLBACK_POLICY, build, games, harden_ledger, web1_alone

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
    assert [(e["subject"], e["reason"]) for e in p["not_enforced"] if e["rule"] == "RB-05"] == [("web1", "mode audit")]


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
