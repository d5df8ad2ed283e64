"""ledger.reverts_since and the pending epoch's time (a commit after a revert is not recorded as hardened)."""

from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

U = "6a0c1f52-3b1e-4d8e-9f00-0000000fa018"
T = parse_iso("2026-11-18T10:00:00Z")


def test_prepare_records_when_and_commit_clears_it():
    rec, unused = ledger.apply(ledger.empty(U), T, epoch="prepare")
    assert rec["pending_epoch"] == 1 and rec["pending_since"] == "2026-11-18T10:00:00Z"
    assert ledger.validate(rec, U) is None
    # A prepare that finds the pending epoch of an earlier (interrupted) run takes a new number and time: the
    # guest or a snapshot may hold the old one, and the revert check must cover this run from its own prepare.
    again, changes = ledger.apply(rec, T + 60, epoch="prepare")
    assert (again["pending_epoch"], again["pending_since"]) == (2, "2026-11-18T10:01:00Z")
    assert changes == ["pending epoch 2 (epoch 1 of an unfinished run prepared at 2026-11-18T10:00:00Z abandoned)"]
    third, unused = ledger.apply(dict(again, epoch=7), T + 90, epoch="prepare")  # never at or below the epoch
    assert third["pending_epoch"] == 8
    done, unused = ledger.apply(rec, T + 5, epoch="commit")
    assert done["epoch"] == 1 and "pending_since" not in done
    assert "pending_since" in ledger.validate(dict(rec, pending_since="yesterday"), U)


def test_reverts_since():
    rec = ledger.empty(U)
    for t, ev in ((T - 1, "revert"), (T, "restore"), (T + 3, "quarantine"), (T + 4, "revert")):
        ledger.add_event(rec, t, ev)
    assert [(e["event"], e["time"]) for e in ledger.reverts_since(rec, "2026-11-18T10:00:00Z")] == [
        ("restore", "2026-11-18T10:00:00Z"), ("revert", "2026-11-18T10:00:04Z")]  # the same second counts
    assert ledger.reverts_since(rec, None) == []
    assert ledger.reverts_since(rec, "2026-11-18T10:00:05Z") == []
