"""startgate: the start gate's pure decisions (the hook itself runs in tests/integration/test_start_gate_hook.py)."""

import io

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import startgate

NOW = 1795000000.0
CFG = startgate.parse_config({"max_dormant_days": 30})
U = "5d1c2a9e-0b7f-4c3e-8a21-9f0e1d2c3b4a"


def test_judge_fresh_stale_never_and_untrusted():
    assert startgate.judge({"last_hardened": iso(NOW - 29 * 86400)}, CFG, NOW)[0] == startgate.ALLOW
    status, why, stale = startgate.judge({"last_hardened": iso(NOW - 31 * 86400)}, CFG, NOW)
    assert (status, stale) == (startgate.REFUSE, True) and "31 days ago" in why and "max_dormant_days 30" in why
    assert startgate.judge(None, CFG, NOW)[:2] == (startgate.ALLOW, "no ledger record: never hardened by vmguard, allowed (no_record: allow)")
    assert startgate.judge({"last_hardened": None}, dict(CFG, no_record="refuse"), NOW)[0] == startgate.REFUSE
    status, why, _stale = startgate.judge({"error": "/l/x.json: unreadable ledger: not valid JSON"}, CFG, NOW)
    assert status == startgate.REFUSE and "cannot be trusted (/l/x.json" in why


def test_judge_refuses_a_last_hardening_in_the_future():
    # A record written under a clock years ahead must not keep the domain "fresh" until that date.
    status, why, stale = startgate.judge({"last_hardened": iso(NOW + 400 * 86400)}, CFG, NOW)
    assert (status, stale) == (startgate.REFUSE, True)
    assert "last hardened 400 days in the future (%s)" % iso(NOW + 400 * 86400) in why and "cannot be judged" in why
    # Within a day ahead: a clock slightly ahead, allowed.
    assert startgate.judge({"last_hardened": iso(NOW + 3600)}, CFG, NOW)[0] == startgate.ALLOW


def test_config_is_checked_key_by_key():
    assert startgate.parse_config({}) == startgate.DEFAULTS
    with pytest.raises(startgate.GateError) as e:
        startgate.parse_config({"max_dormant_days": 0, "no_record": "maybe", "ledger": "/x"}, "gate.json")
    text = str(e.value)
    assert "gate.json: unknown key ledger" in text and "max_dormant_days is 0" in text and 'no_record is "maybe"' in text


def test_domain_uuid_from_the_xml():
    assert startgate.domain_uuid("<domain><name>a</name><uuid>%s</uuid></domain>" % U.upper()) == U
    for bad, why in (("<domain><name>a</name></domain>", "no <uuid>"), ("<domain", "does not parse"),
                     ("<domain><uuid>../etc</uuid></domain>", "no valid <uuid>")):
        with pytest.raises(startgate.GateError, match=why):
            startgate.domain_uuid(bad)


def test_only_prepare_begin_is_judged(tmp_path):
    cfg = dict(CFG, ledger_dir=str(tmp_path / "none"), break_glass_dir=str(tmp_path / "bg"), no_record="refuse")
    assert startgate.decide(["d", "started", "begin", "-"], "", cfg, NOW) == (startgate.ALLOW, None, None)
    status, err, log = startgate.decide(["d", "prepare", "begin", "-"], "<domain><uuid>%s</uuid></domain>" % U, cfg, NOW)
    assert status == startgate.REFUSE and err == log and "no_record: refuse" in err


def test_main_drains_stdin_and_refuses_on_an_unreadable_config(tmp_path):
    stdin, stderr = io.StringIO("<domain><uuid>%s</uuid></domain>" % U), io.StringIO()
    assert startgate.main(["d", "release", "end", "-"], stdin, stderr, str(tmp_path / "missing.json")) == 0
    assert stdin.read() == "" and stderr.getvalue() == ""
    stdin = io.StringIO("<domain><uuid>%s</uuid></domain>" % U)
    assert startgate.main(["d", "prepare", "begin", "-"], stdin, stderr, str(tmp_path / "missing.json"), NOW) == 1
    assert "configuration is unusable" in stderr.getvalue() and "missing.json" in stderr.getvalue()


def test_break_glass_names_that_are_no_file_name_are_ignored(tmp_path):
    for name in ("", "../x", ".hidden", "a/b"):
        assert startgate.break_glass_file(str(tmp_path), name) is None


def test_a_break_glass_file_swapped_after_its_check_is_not_used(tmp_path, monkeypatch):
    """The owner and mode checked (lstat) must be those of the file read: one renamed over root's file after the
    check (a directory others may write, a user's own file) is not taken for root's override."""
    import os
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "web1").write_text("by: root\nmaintenance window\n")
    os.chmod(str(bg / "web1"), 0o600)
    mine = tmp_path / "mine"
    mine.write_text("by: root\nforged by a user\n")
    os.chown(str(mine), 65534, 65534)
    real_lstat, swapped = os.lstat, []

    def lstat_then_swap(path, *a, **kw):
        st = real_lstat(path, *a, **kw)
        if path == str(bg / "web1") and not swapped:
            swapped.append(path)
            os.rename(str(mine), path)
        return st

    monkeypatch.setattr(startgate.os, "lstat", lstat_then_swap)
    got = startgate.break_glass_file(str(bg), "web1")
    monkeypatch.undo()
    assert swapped and got[1] is None and "replaced while it was checked" in got[2]


def test_a_root_break_glass_file_is_used(tmp_path):
    import os
    (tmp_path / "web1").write_text("by: alice\nmaintenance window\n")
    os.chmod(str(tmp_path / "web1"), 0o600)
    assert startgate.break_glass_file(str(tmp_path), "web1")[1:] == ("alice", "maintenance window")
