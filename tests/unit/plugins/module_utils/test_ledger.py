"""Ledger records on a real directory: atomic saves, two-phase epoch, idempotent updates."""

import json
import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

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


def test_a_last_hardening_in_the_future_is_refreshed():
    # Written while the clock was ahead: without a refresh VIS-04 and the start gate could never judge it again.
    rec = dict(ledger.empty(U), last_hardened=iso(NOW + 3 * 365 * 86400))
    new, ch = ledger.apply(rec, NOW, hardened=True)
    assert new["last_hardened"] == iso(NOW) and ch == ["hardened at %s" % iso(NOW)]
    assert ledger.apply(new, NOW + 60, hardened=True)[1] == []


def test_commit_without_prepare_is_a_no_op():
    rec, ch = ledger.apply(ledger.empty(U), NOW, epoch="commit")
    assert ch == [] and rec["epoch"] == 0


def test_bad_uuid_is_refused(tmp_path):
    with pytest.raises(ValueError):
        ledger.path_for(str(tmp_path), "../../etc/passwd")


# --- Untrusted ledger files (issue "Trustworthy audit", section 5) ---

VALID = {"schema": ledger.SCHEMA, "uuid": U, "epoch": 3, "epoch_time": NOW, "pending_epoch": None,
         "last_hardened": "2026-11-01T00:00:00Z", "retired_fingerprints": ["SHA256:a"],
         "disabled_accounts": ["games"], "package_floors": {"openssl": "3.0.15-1"},
         "masked_services": ["telnet.socket"], "firewall_digest": None, "events": []}


def ledger_file(tmp_path, text):
    p = tmp_path / (U + ".json")
    p.write_text(text)
    return p


def test_read_record_none_record(tmp_path):
    assert ledger.read_record(str(tmp_path), U) is None
    assert ledger.read_record(str(tmp_path / "no-such-dir"), U) is None
    ledger_file(tmp_path, json.dumps(VALID))
    assert ledger.read_record(str(tmp_path), U) == VALID
    # An older record without some keys is completed with the defaults.
    ledger_file(tmp_path, '{"epoch": 4, "last_hardened": "2026-11-01T00:00:00Z"}')
    rec = ledger.read_record(str(tmp_path), U)
    assert rec["epoch"] == 4 and rec["retired_fingerprints"] == [] and rec["uuid"] == U


def assert_error(tmp_path, why):
    p = os.path.join(str(tmp_path), U + ".json")
    rec = ledger.read_record(str(tmp_path), U)
    assert set(rec) == {"error"}
    assert rec["error"].startswith(p + ": unreadable ledger: ") and why in rec["error"], rec["error"]
    with pytest.raises(ledger.LedgerError) as e:
        ledger.load(str(tmp_path), U)
    assert str(e.value) == rec["error"]


def test_fifo_is_an_error_not_a_hang(tmp_path, no_hang):
    os.mkfifo(str(tmp_path / (U + ".json")))
    assert_error(tmp_path, "is a FIFO, not a regular file")


def test_symlink_is_an_error_even_to_a_valid_record(tmp_path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "record.json"
    elsewhere.write_text(json.dumps(VALID))
    os.symlink(str(elsewhere), str(tmp_path / (U + ".json")))
    assert_error(tmp_path, "is a symbolic link")


def test_directory_is_an_error(tmp_path):
    os.mkdir(str(tmp_path / (U + ".json")))
    assert_error(tmp_path, "is a directory")


def test_huge_file_is_an_error(tmp_path):
    p = tmp_path / (U + ".json")
    with open(str(p), "w") as f:
        f.write('{"epoch": 1, "events": [' + ",".join(['{"e": "x"}'] * 200000) + "]}")
    assert os.path.getsize(str(p)) > 2 * 1024 * 1024 - 1
    assert_error(tmp_path, "larger than the 1048576 allowed")


@pytest.mark.parametrize("text,why", [
    ("{not json", "not valid JSON"),
    ("\xff\xfe", "not valid JSON"),
    ("[" * 100000 + "]" * 100000, "JSON nested too deeply"),
    ("5", "holds int, not a JSON object"),
    ("[]", "holds list, not a JSON object"),
    ('"x"', "holds str, not a JSON object"),
    ("null", "holds NoneType, not a JSON object"),
    ('{"epoch": "abc"}', 'epoch is "abc", must be a non-negative integer'),
    ('{"epoch": true}', "epoch is true, must be a non-negative integer"),
    ('{"epoch": -1}', "epoch is -1"),
    ('{"epoch_time": "yesterday"}', "epoch_time is"),
    ('{"pending_epoch": "2"}', "pending_epoch is"),
    ('{"last_hardened": "yesterday"}', "last_hardened is"),
    ('{"retired_fingerprints": "SHA256:a"}', "retired_fingerprints is \"SHA256:a\", must be a list of strings"),
    ('{"retired_fingerprints": [1, 2]}', "retired_fingerprints is [1, 2], must be a list of strings"),
    ('{"disabled_accounts": {"games": 1}}', "disabled_accounts is"),
    ('{"package_floors": ["openssl"]}', "package_floors is"),
    ('{"package_floors": {"openssl": 3}}', "package_floors is"),
    ('{"masked_services": null}', "masked_services is null"),
    ('{"firewall_digest": 7}', "firewall_digest is 7"),
    ('{"events": [1]}', "events is [1]"),
    ('{"schema": "other/v9"}', "schema is"),
    ('{"uuid": "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a11"}', "records domain 0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a11"),
])
def test_wrong_content_is_an_error_naming_the_file(tmp_path, text, why):
    ledger_file(tmp_path, text)
    assert_error(tmp_path, why)


def test_bad_uuid_is_an_error_for_the_audit(tmp_path):
    assert "not a domain UUID" in ledger.read_record(str(tmp_path), "../x")["error"]


@pytest.mark.parametrize("planted", [".tmp", ".vmguard-new", ".new"])
def test_save_never_writes_through_a_planted_temporary_name(tmp_path, tmp_path_factory, planted):
    canary = tmp_path_factory.mktemp("outside") / "canary"
    canary.write_text("canary\n")
    before = os.stat(str(canary))
    d = tmp_path / "ledger"
    d.mkdir(mode=0o700)
    target = d / (U + ".json")
    os.symlink(str(canary), str(target) + planted)
    rec, ch = ledger.apply(ledger.load(str(d), U), NOW, retire=["SHA256:b"])
    ledger.save(str(d), rec)
    assert canary.read_text() == "canary\n" and os.stat(str(canary)).st_mtime_ns == before.st_mtime_ns
    assert ledger.read_record(str(d), U)["retired_fingerprints"] == ["SHA256:b"]
    assert os.stat(str(target)).st_mode & 0o777 == 0o600


def test_save_refuses_a_ledger_that_is_a_link(tmp_path, tmp_path_factory):
    canary = tmp_path_factory.mktemp("outside") / "canary"
    canary.write_text("canary\n")
    target = tmp_path / (U + ".json")
    os.symlink(str(canary), str(target))
    with pytest.raises(ValueError) as e:
        ledger.save(str(tmp_path), ledger.empty(U))
    assert str(target) in str(e.value)
    assert canary.read_text() == "canary\n" and os.path.islink(str(target))


# --- record: the security state a harden run reached -------------------------------------------------

DIGEST = "ab" * 32
STATE = {"package_floors": {"openssl": "3.0.15-1~deb12u1", "sudo": "1.9.13p3-1+deb12u1"},
         "disabled_accounts": ["lp", "games"], "masked_services": ["telnet.socket"], "firewall_digest": DIGEST}


def test_record_merges_into_a_fresh_ledger_and_keeps_the_other_keys():
    rec = ledger.empty(U)
    ledger.add_event(rec, NOW - 60, "revert", {"libvirt_event": "started", "libvirt_detail": "from_snapshot"})
    rec["quarantine"] = ledger.quarantine_state(NOW - 60, "reverted", ["52:54:00:00:00:01"], False)
    rec["retired_fingerprints"] = ["SHA256:old"]
    new, ch = ledger.apply(rec, NOW, update=STATE, compare=debversion.compare, epoch="prepare")
    assert new["package_floors"] == STATE["package_floors"]
    assert new["disabled_accounts"] == ["games", "lp"] and new["masked_services"] == ["telnet.socket"]
    assert new["firewall_digest"] == DIGEST and new["pending_epoch"] == 1
    assert (new["events"], new["quarantine"], new["retired_fingerprints"]) == (rec["events"], rec["quarantine"], ["SHA256:old"])
    assert ch == ["floor openssl 3.0.15-1~deb12u1", "floor sudo 1.9.13p3-1+deb12u1", "disabled accounts: games, lp",
                  "masked services: telnet.socket", "firewall digest %s" % DIGEST, "pending epoch 1"]
    assert ledger.validate(new, U) is None
    again, ch2 = ledger.apply(new, NOW + 5, update=STATE, compare=debversion.compare)
    assert ch2 == [] and again == new


def test_floors_only_move_up_and_unnamed_packages_keep_theirs():
    rec, _ch = ledger.apply(ledger.empty(U), NOW, update=STATE, compare=debversion.compare)
    # A rolled-back openssl (lower, and ~ sorts before the end) must not lower the floor; sudo moved up.
    lower = {"package_floors": {"openssl": "3.0.15-1~deb12u1~rc1", "sudo": "1.9.13p3-1+deb12u2"}}
    new, ch = ledger.apply(rec, NOW, update=lower, compare=debversion.compare)
    assert new["package_floors"] == {"openssl": "3.0.15-1~deb12u1", "sudo": "1.9.13p3-1+deb12u2"}
    assert ch == ["floor sudo 1.9.13p3-1+deb12u2 (was 1.9.13p3-1+deb12u1)"]
    # An epoch outranks any upstream version; a package the update does not name keeps its floor.
    new, ch = ledger.apply(new, NOW, update={"package_floors": {"openssl": "1:1.0"}}, compare=debversion.compare)
    assert new["package_floors"] == {"openssl": "1:1.0", "sudo": "1.9.13p3-1+deb12u2"}
    assert ch == ["floor openssl 1:1.0 (was 3.0.15-1~deb12u1)"]


def test_lists_replace_and_a_null_digest_keeps_the_recorded_one():
    rec, _ch = ledger.apply(ledger.empty(U), NOW, update=STATE, compare=debversion.compare)
    new, ch = ledger.apply(rec, NOW, update={"disabled_accounts": [], "masked_services": ["cups.service", "cups.service"],
                                             "firewall_digest": None}, compare=debversion.compare)
    assert new["disabled_accounts"] == [] and new["masked_services"] == ["cups.service"]
    assert new["firewall_digest"] == DIGEST and new["package_floors"] == STATE["package_floors"]
    assert ch == ["disabled accounts: none", "masked services: cups.service"]
    new, ch = ledger.apply(new, NOW, update={"firewall_digest": "cd" * 32}, compare=debversion.compare)
    assert new["firewall_digest"] == "cd" * 32 and ch == ["firewall digest %s" % ("cd" * 32)]


@pytest.mark.parametrize("update, why", [
    ([], "record must be an object, not list"),
    ({"floors": {}}, "record.floors: unknown key (expected one of: package_floors, disabled_accounts, masked_services, firewall_digest)"),
    ({"package_floors": {"openssl": 3}}, "record.package_floors is {\"openssl\": 3}, must be an object of package: version (non-empty strings)"),
    ({"package_floors": {"openssl": ""}}, "record.package_floors is {\"openssl\": \"\"}, must be an object of package: version (non-empty strings)"),
    ({"disabled_accounts": "games"}, "record.disabled_accounts is \"games\", must be a list of account names"),
    ({"masked_services": [" x"]}, "record.masked_services is [\" x\"], must be a list of systemd unit names"),
    ({"firewall_digest": "f00"}, "record.firewall_digest is \"f00\", must be null or a SHA-256 hex digest"),
])
def test_bad_record_is_refused_naming_the_key(update, why):
    assert ledger.check_record(update) == why
    rec = ledger.empty(U)
    with pytest.raises(ValueError) as e:
        ledger.apply(rec, NOW, update=update, compare=debversion.compare, epoch="prepare")
    assert str(e.value) == why and rec == ledger.empty(U)


def test_uncomparable_floor_names_the_package():
    rec, _ch = ledger.apply(ledger.empty(U), NOW, update={"package_floors": {"openssl": "3.0.15-1"}}, compare=debversion.compare)
    with pytest.raises(ValueError) as e:
        ledger.apply(rec, NOW, update={"package_floors": {"openssl": "x:1.0"}}, compare=debversion.compare)
    assert str(e.value).startswith("record.package_floors.openssl: cannot compare 'x:1.0' with the recorded floor '3.0.15-1'")
