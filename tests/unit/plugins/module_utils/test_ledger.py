"""Ledger records on a real directory: atomic saves, two-phase epoch, idempotent updates."""

import json
import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils import ledger

U = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"
NOW = 1795000000


def test_two_phase_epoch_and_retire(tmp_path):
    d = str(tmp_path / "ledger")
    rec = ledger.load(d, U)
    assert rec["epoch"] == 0 and rec["retired_fingerprints"] == []
    rec, ch = ledger.apply(rec, NOW, retire=["SHA256:a"], epoch="prepare", hardened=True)
    assert rec["pending_epoch"] == 1 and rec["epoch"] == 0 and "retired SHA256:a" in ch
    ledger.save(d, rec)
    assert oct(os.stat(os.path.join(d, U + ".json")).st_mode & 0o777) == "0o600"
    assert oct(os.stat(d).st_mode & 0o777) == "0o700"
    rec, ch = ledger.apply(ledger.load(d, U), NOW + 5, epoch="commit")
    assert rec["epoch"] == 1 and rec["pending_epoch"] is None and rec["epoch_time"] == NOW + 5
    ledger.save(d, rec)
    with open(os.path.join(d, U + ".json")) as f:
        assert json.load(f)["retired_fingerprints"] == ["SHA256:a"]
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]


def test_same_update_twice_changes_nothing():
    rec, ch = ledger.apply(ledger.empty(U), NOW, retire=["SHA256:a"], hardened=True)
    assert ch
    again, ch2 = ledger.apply(rec, NOW + 60, retire=["SHA256:a"], hardened=True)
    assert ch2 == [] and again == rec
    # A day later the hardening time is refreshed (VIS-04 would otherwise call it dormant).
    later, ch3 = ledger.apply(rec, NOW + 90000, hardened=True)
    assert ch3 and later["last_hardened"] != rec["last_hardened"]


def test_commit_without_prepare_is_a_no_op():
    rec, ch = ledger.apply(ledger.empty(U), NOW, epoch="commit")
    assert ch == [] and rec["epoch"] == 0


def test_bad_uuid_is_refused(tmp_path):
    with pytest.raises(ValueError):
        ledger.path_for(str(tmp_path), "../../etc/passwd")
