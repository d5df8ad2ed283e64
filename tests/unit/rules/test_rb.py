"""RB rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

import subprocess

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

from . import evidence as E

H = 3600


def snap(name, hours_ago, memory="no", state="shutoff"):
    return {"name": name, "creation_time": int(E.NOW - hours_ago * H), "state": state, "memory": memory, "parent": None}


def one(rule, dom, **kw):
    (f,) = E.run(rule, E.fleet([dom]), **kw)
    return f


def guest_fleet(facts=None, led="default"):
    led = E.ledger() if led == "default" else led
    return E.fleet([E.domain("web1", ledger=led)], {"web1": E.guest("web1", facts=facts or E.guest_facts(1))})


def test_rb01_genid():
    assert one("RB-01", E.domain())["status"] == "pass"
    assert one("RB-01", E.domain(replace={"<genid/>": ""}))["status"] == "fail"


def test_rb02_snapshot_age():
    assert one("RB-02", E.domain())["message"] == "no snapshots"
    assert one("RB-02", E.domain(snapshots=[snap("fresh", 5)]))["status"] == "pass"
    f = one("RB-02", E.domain(snapshots=[snap("fresh", 5), snap("stale", 100)]))
    assert f["status"] == "fail" and f["evidence"]["age_hours"] == {"stale": 100.0}
    assert one("RB-02", E.domain(snapshots=[snap("stale", 100)]), params={"rollback": {"max_snapshot_age_hours": 200}})["status"] == "pass"
    broken = snap("x", 1)
    broken["creation_time"] = None
    assert one("RB-02", E.domain(snapshots=[broken]))["status"] == "error"


def test_snapshots_not_collected_is_error():
    d = E.domain()
    d["snapshots"] = None
    assert one("RB-03", d)["status"] == "error"


def test_rb03_count():
    assert one("RB-03", E.domain(snapshots=[snap(str(i), 1) for i in range(3)]))["status"] == "pass"
    f = one("RB-03", E.domain(snapshots=[snap(str(i), 1) for i in range(4)]))
    assert f["status"] == "fail" and f["evidence"]["count"] == 4


def test_rb04_snapshot_before_security_epoch():
    led = E.ledger(epoch_time=E.NOW - 10 * H)
    assert one("RB-04", E.domain(ledger=led, snapshots=[snap("after", 5)]))["status"] == "pass"
    f = one("RB-04", E.domain(ledger=led, snapshots=[snap("before", 20), snap("after", 5)]))
    assert f["status"] == "fail" and f["evidence"]["snapshots"] == ["before"]
    f = one("RB-04", E.domain(snapshots=[snap("before", 20)]))
    assert f["status"] == "not_applicable" and "no ledger record" in f["message"]


def test_rb04_nothing_recorded_and_unknown_times():
    f = one("RB-04", E.domain(ledger=E.ledger(epoch=0, epoch_time=None), snapshots=[snap("before", 20)]))
    assert f["status"] == "not_applicable" and f["message"].startswith("nothing recorded yet")
    # A snapshot whose creation time is unknown may predate the epoch: that is not a pass.
    unknown = snap("x", 1)
    unknown["creation_time"] = None
    f = one("RB-04", E.domain(ledger=E.ledger(), snapshots=[unknown, snap("after", 1)]))
    assert f["status"] == "error" and "x" in f["message"]


def test_rb02_rb04_a_snapshot_from_the_future_has_no_age_to_judge():
    # The hypervisor's clock was a year ahead when it was taken (or its XML was redefined): neither "young"
    # (RB-02) nor "after the security epoch" (RB-04) can be told; a few seconds of clock skew still count.
    ahead = snap("pre-hardening", -365 * 24)
    led = E.ledger(epoch_time=E.NOW - H)
    for rid in ("RB-02", "RB-04"):
        f = one(rid, E.domain(ledger=led, snapshots=[ahead, snap("fresh", 0.5)]))
        assert f["status"] == "error", rid
        assert f["message"].startswith("snapshot(s) with a creation time in the future (more than 5s of clock skew): "
                                       "pre-hardening (2027-11-18T")
        assert f["evidence"]["snapshots"] == ["pre-hardening"]
        skewed = snap("skewed", 0)
        skewed["creation_time"] = int(E.NOW) + 3
        assert one(rid, E.domain(ledger=led, snapshots=[skewed]))["status"] == "pass", rid


def test_rb05_epoch():
    assert E.status_of(E.run("RB-05", guest_fleet()), "web1") == "pass"
    behind = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=2))))["web1"]
    assert behind["status"] == "fail" and "rolled back" in behind["message"] and behind["severity"] == "critical"
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=None))), "web1") == "fail"
    assert "ahead" in E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4))))["web1"]["message"]
    assert E.status_of(E.run("RB-05", guest_fleet(led=None)), "web1") == "not_applicable"
    # A ledger that has no epoch yet (only retired keys, say) is no evidence of a rollback.
    fresh = E.ledger(epoch=0, epoch_time=None)
    f = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=None), led=fresh)))["web1"]
    assert f["status"] == "not_applicable" and f["message"].startswith("nothing recorded yet")
    assert "no ledger record" in E.by_subject(E.run("RB-05", guest_fleet(led=None)))["web1"]["message"]
    # Interrupted two-phase update: the guest already holds the pending epoch.
    pending = E.ledger(epoch=3, pending_epoch=4)
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=pending)), "web1") == "pass"
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=3), led=pending)), "web1") == "pass"


def test_rb05_a_stale_pending_epoch_is_never_reused():
    """Run 1 prepares epoch 4 and writes it to the guest, then dies; a snapshot is taken; run 2 hardens fully
    (ledger.apply, both phases, as the ledger module does). Reverted to that snapshot, the guest holds 4: it
    predates run 2's hardening and must fail, not pass as 'guest and ledger at epoch 4'."""
    uuid = E.domain("web1")["uuid"]
    rec = dict(ledger.empty(uuid), **E.ledger(epoch=3, pending_epoch=None))
    rec, unused = ledger.apply(rec, E.NOW - 10 * 86400, epoch="prepare")  # run 1: guest file 4, no commit
    assert rec["pending_epoch"] == 4
    # Between the runs the guest holding the interrupted run's epoch is not behind: no alarm.
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=rec)), "web1") == "pass"
    rec, changes = ledger.apply(rec, E.NOW - 86400, epoch="prepare")  # run 2
    assert rec["pending_epoch"] == 5 and rec["pending_since"] == iso(E.NOW - 86400)
    assert changes == ["pending epoch 5 (epoch 4 of an unfinished run prepared at %s abandoned)" % iso(E.NOW - 10 * 86400)]
    # Run 2 between prepare and the guest's epoch file: the guest holds the abandoned 4, still no alarm.
    f = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=rec)))["web1"]
    assert f["status"] == "pass" and "interrupted run" in f["message"], f
    rec, unused = ledger.apply(rec, E.NOW - 86400, epoch="commit", hardened=True)
    assert rec["epoch"] == 5
    f = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=rec)))["web1"]
    assert f["status"] == "fail" and "behind" in f["message"], f
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=5), led=rec)), "web1") == "pass"


def test_rb05_an_epoch_committed_by_a_run_the_domain_was_reverted_during_proves_nothing():
    """The ledger module committed epoch 3 but recorded revert_during_run: a revert landed after the audit or the
    prepare, perhaps before the guest's epoch file was written - the guest holding 3 may be the reverted one."""
    uuid = E.domain("web1")["uuid"]
    rec = dict(ledger.empty(uuid), **E.ledger(epoch=3))
    ledger.add_event(rec, E.NOW - 120, "revert_during_run", {
        "epoch": 3, "prepared": iso(E.NOW - 300), "reverts": [{"time": iso(E.NOW - 200), "event": "revert"}]})
    f = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=3), led=rec)))["web1"]
    assert f["status"] == "fail" and "reverted meanwhile (%s)" % iso(E.NOW - 200) in f["message"], f
    assert f["evidence"]["reverts"] == [{"time": iso(E.NOW - 200), "event": "revert"}]
    behind = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=2), led=rec)))["web1"]
    assert behind["status"] == "fail" and "behind" in behind["message"]
    # The next harden commits epoch 4 without a revert: the event is about 3 and no longer counts.
    rec, unused = ledger.apply(rec, E.NOW, epoch="prepare")
    rec, unused = ledger.apply(rec, E.NOW, epoch="commit", hardened=True)
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=rec)), "web1") == "pass"


def test_rb06_retired_keys():
    assert E.status_of(E.run("RB-06", guest_fleet()), "web1") == "pass"
    f = E.guest_facts(1)
    f["ssh_host_keys"].append({"type": "ssh-ed25519", "fingerprint": E.FP % "old-ed"})
    got = E.by_subject(E.run("RB-06", guest_fleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["fingerprints"] == [E.FP % "old-ed"]
    assert E.status_of(E.run("RB-06", guest_fleet(led=None)), "web1") == "not_applicable"
    got = E.by_subject(E.run("RB-06", guest_fleet(led=E.ledger(retired_fingerprints=[]))))["web1"]
    assert got["status"] == "not_applicable" and got["message"].startswith("nothing recorded yet")


def test_rb07_disabled_accounts():
    f = E.guest_facts(1)
    f["accounts"].append({"name": "games", "uid": 5, "shell": "/usr/sbin/nologin", "password_locked": True,
                          "expired": True, "locked": True, "hash_digest": None})
    assert E.status_of(E.run("RB-07", guest_fleet(f)), "web1") == "pass"
    f["accounts"][-1]["locked"] = False
    got = E.by_subject(E.run("RB-07", guest_fleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["accounts"] == ["games"]
    # Password-locked with a nologin shell, not expired (what a revert to before the re-lock's expiry brings back):
    # an SSH key still logs in, and the finding says so.
    f["accounts"][-1]["expired"] = False
    got = E.by_subject(E.run("RB-07", guest_fleet(f)))["web1"]
    assert got["status"] == "fail" and "games (password locked but not expired: an SSH key still logs in)" in got["message"]
    assert E.status_of(E.run("RB-07", guest_fleet(E.guest_facts(1, accounts=None))), "web1") == "error"
    assert E.status_of(E.run("RB-07", guest_fleet(led=None)), "web1") == "not_applicable"


def test_rb07_judges_the_first_entry_of_a_name_and_names_the_duplicate():
    # Two entries of one name (evidence of an older guest_facts): the first is the one login uses.
    usable = {"name": "games", "uid": 5, "shell": "/bin/bash", "password_locked": False, "expired": False,
              "locked": False, "hash_digest": None, "duplicate_lines": {"passwd": 1}}
    locked = {"name": "games", "uid": 5, "shell": "/usr/sbin/nologin", "password_locked": True, "expired": True,
              "locked": True, "hash_digest": None}
    f = E.guest_facts(1)
    f["accounts"] += [usable, locked]
    got = E.by_subject(E.run("RB-07", guest_fleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["accounts"] == ["games"]
    assert got["evidence"]["duplicate_lines"] == {"games": {"passwd": 1}} and "more than one line of games" in got["message"]


def test_rb07_nothing_recorded_is_not_a_pass():
    # The account is usable, but the ledger never recorded it as disabled: nothing to compare.
    f = E.guest_facts(1)
    f["accounts"].append({"name": "games", "uid": 5, "shell": "/bin/sh", "password_locked": False,
                          "expired": False, "locked": False, "hash_digest": None})
    got = E.by_subject(E.run("RB-07", guest_fleet(f, led=E.ledger(disabled_accounts=[]))))["web1"]
    assert got["status"] == "not_applicable"
    assert got["message"] == "nothing recorded yet: the ledger records no account disabled by policy"


def test_rb07_unreadable_shadow_is_an_error_naming_why():
    facts = E.guest_facts(1, accounts=None, accounts_error="/etc/shadow exists but cannot be read: Permission denied")
    got = E.by_subject(E.run("RB-07", guest_fleet(facts)))["web1"]
    assert got["status"] == "error" and "/etc/shadow" in got["message"]
    # An empty account list (unreadable /etc/passwd) cannot show a disabled account is still locked.
    assert E.status_of(E.run("RB-07", guest_fleet(E.guest_facts(1, accounts=[]))), "web1") == "error"


def test_rb08_package_floor():
    assert E.status_of(E.run("RB-08", guest_fleet()), "web1") == "pass"
    old = E.guest_facts(1, packages={"openssl": "3.0.11-1~deb12u2"})
    got = E.by_subject(E.run("RB-08", guest_fleet(old)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["packages"]["openssl"]["floor"] == "3.0.15-1~deb12u1"
    newer = E.guest_facts(1, packages={"openssl": "3.0.15-1~deb12u1+b1"})
    assert E.status_of(E.run("RB-08", guest_fleet(newer)), "web1") == "pass"


def test_rb08_nothing_recorded_or_nothing_installed():
    old = E.guest_facts(1, packages={"openssl": "3.0.11-1~deb12u2"})
    got = E.by_subject(E.run("RB-08", guest_fleet(old, led=E.ledger(package_floors={}))))["web1"]
    assert got["status"] == "not_applicable"
    assert got["message"] == "nothing recorded yet: the ledger records no package security floor"
    # An empty package list (dpkg status unreadable) is missing evidence, not "every floor met".
    assert E.status_of(E.run("RB-08", guest_fleet(E.guest_facts(1, packages={}))), "web1") == "error"
    assert E.status_of(E.run("RB-08", guest_fleet(E.guest_facts(1, packages=None))), "web1") == "error"


def test_rb09_masked_services():
    assert E.status_of(E.run("RB-09", guest_fleet()), "web1") == "pass"
    unmasked = E.guest_facts(1, services={"enabled": ["telnet.socket"], "masked": []})
    assert E.status_of(E.run("RB-09", guest_fleet(unmasked)), "web1") == "fail"
    assert E.status_of(E.run("RB-09", guest_fleet(led=None)), "web1") == "not_applicable"
    got = E.by_subject(E.run("RB-09", guest_fleet(unmasked, led=E.ledger(masked_services=[]))))["web1"]
    assert got["status"] == "not_applicable"
    assert got["message"] == "nothing recorded yet: the ledger records no service masked by policy"
    assert E.status_of(E.run("RB-09", guest_fleet(E.guest_facts(1, services=None))), "web1") == "error"


def test_rb10_firewall_digest():
    assert E.status_of(E.run("RB-10", guest_fleet()), "web1") == "pass"
    changed = E.guest_facts(1)
    changed["firewall"] = dict(changed["firewall"], digest="0" * 64)
    assert E.status_of(E.run("RB-10", guest_fleet(changed)), "web1") == "fail"
    got = E.by_subject(E.run("RB-10", guest_fleet(led=E.ledger(firewall_digest=None))))["web1"]
    assert got["status"] == "not_applicable" and got["message"].startswith("nothing recorded yet")
    unread = E.guest_facts(1)
    unread["firewall"] = dict(unread["firewall"], digest=None, error="nft is not installed")
    got = E.by_subject(E.run("RB-10", guest_fleet(unread)))["web1"]
    assert got["status"] == "error" and "nft is not installed" in got["message"]


def rb11(**watcher):
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher=E.watcher(**watcher))))
    return f


def test_rb11_watcher_proven_by_lock_and_heartbeat():
    f = rb11()
    assert f["status"] == "pass" and f["subject"] == {"kind": "hypervisor", "id": "hv1"}
    assert "4242" in f["message"]
    # The holder pid may be unknown (no /proc/locks view); lock and fresh heartbeat still prove it.
    assert rb11(holder_pid=None)["status"] == "pass"


def test_rb11_watcher_missing_parts_fail_and_say_which():
    f = rb11(lock_held=False, holder_pid=None)
    assert f["status"] == "fail" and "no lock holder" in f["message"]
    f = rb11(heartbeat_age_seconds=95.0)
    assert f["status"] == "fail" and "stale heartbeat 95s" in f["message"]
    f = rb11(heartbeat_pid=31337)
    assert f["status"] == "fail" and "heartbeat from another pid" in f["message"] and "31337" in f["message"]
    f = rb11(heartbeat_age_seconds=None, heartbeat_pid=None)
    assert f["status"] == "fail" and "no heartbeat" in f["message"]


def test_rb11_a_process_named_like_the_watcher_proves_nothing():
    # The old evidence shape (a process whose argv contains the watcher's name) is no proof.
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher={"running": True, "pid": 4242})))
    assert f["status"] == "error"
    (f,) = E.run("RB-11", E.fleet(host_ev={}))
    assert f["status"] == "error"


def test_rb11_heartbeat_limit_is_a_policy_parameter():
    f = rb11(heartbeat_age_seconds=45.0)
    assert f["status"] == "fail" and "limit 30s" in f["message"]
    host = E.host(watcher=E.watcher(heartbeat_age_seconds=45.0))
    (f,) = E.run("RB-11", E.fleet(host_ev=host), params={"rollback": {"watcher_heartbeat_seconds": 60}})
    assert f["status"] == "pass"


def test_rb11_unreadable_watcher_files_fail_with_the_reason():
    why = "/run/vmguard/watcher.heartbeat: not valid JSON (Expecting value: line 1 column 1 (char 0))"
    f = rb11(heartbeat_age_seconds=None, heartbeat_pid=None, error=why)
    assert f["status"] == "fail" and "not valid JSON" in f["message"]


def test_rb12_transient_disk():
    assert one("RB-12", E.domain())["status"] == "pass"
    d = E.domain(replace={"<target dev='vda' bus='virtio'/>": "<target dev='vda' bus='virtio'/><transient/>"})
    assert one("RB-12", d)["status"] == "fail"


def test_rb13_memory_snapshots():
    assert one("RB-13", E.domain(snapshots=[snap("disk", 1)]))["status"] == "pass"
    d = E.domain(snapshots=[snap("ram", 1, memory="internal", state="running")])
    assert one("RB-13", d)["status"] == "fail"
    assert one("RB-13", d, params={"rollback": {"allow_memory_snapshots": True}})["status"] == "pass"


def test_corrupt_ledger_is_an_error_for_ledger_rules():
    bad = {"error": "unreadable ledger /var/lib/vmguard/ledger/x.json: Expecting value"}
    for rid in ("RB-05", "RB-06", "RB-07", "RB-08", "RB-09", "RB-10"):
        assert E.status_of(E.run(rid, guest_fleet(led=bad)), "web1") == "error", rid
    assert one("RB-04", E.domain(ledger=bad))["status"] == "error"
    assert E.run("VIS-04", E.fleet([E.domain(ledger=bad)]))[0]["status"] == "error"


def test_rb05_unreadable_epoch_is_an_error_not_a_rollback():
    facts = E.guest_facts(1, epoch=None, epoch_error="/var/lib/vmguard/epoch.json: unparsable /var/lib/vmguard/epoch.json")
    f = E.by_subject(E.run("RB-05", guest_fleet(facts)))["web1"]
    assert f["status"] == "error" and "unparsable" in f["message"]


def test_rb06_unreadable_host_keys_are_an_error_not_a_pass():
    facts = E.guest_facts(1, ssh_host_keys=None, ssh_host_keys_error="cannot read /etc/ssh/ssh_host_ed25519_key.pub")
    f = E.by_subject(E.run("RB-06", guest_fleet(facts)))["web1"]
    assert f["status"] == "error" and "ssh_host_ed25519_key.pub" in f["message"]


# --- After a harden recorded the state it reached (issue 13): each rollback guard fails, and passes when restored ---

def recorded_ledger():
    """The record the ledger module writes for a harden of web1 (epoch 1 after prepare and commit) - the real merge."""
    state = {"package_floors": {"openssl": "3.0.15-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"},
             "disabled_accounts": ["games"], "masked_services": ["telnet.socket"], "firewall_digest": "f" * 64}
    rec = ledger.empty(E.domain("web1")["uuid"])
    rec, _ch = ledger.apply(rec, E.NOW - 3600, epoch="prepare", update=state, compare=debversion.compare)
    rec, _ch = ledger.apply(rec, E.NOW - 3600, epoch="commit", hardened=True)
    return rec


def hardened_guest(**overrides):
    """web1 as the harden left it: epoch 1, games locked, telnet.socket masked, openssl at its floor, the ruleset applied."""
    f = E.guest_facts(1, **dict({"epoch": 1}, **overrides))
    f["accounts"].append({"name": "games", "uid": 5, "shell": "/usr/sbin/nologin", "password_locked": True,
                          "expired": True, "locked": True, "hash_digest": None})
    return f


def guard(rule, facts):
    return E.by_subject(E.run(rule, guest_fleet(facts, led=recorded_ledger())))["web1"]


def test_recorded_state_every_guard_passes_on_the_hardened_guest():
    for rule in ("RB-05", "RB-07", "RB-08", "RB-09", "RB-10"):
        assert guard(rule, hardened_guest())["status"] == "pass", rule


def test_recorded_state_rb05_fails_on_a_revert_to_before_the_epoch_and_passes_when_restored():
    got = guard("RB-05", hardened_guest(epoch=0))
    assert got["status"] == "fail" and got["evidence"] == {"guest_epoch": 0, "ledger_epoch": 1}
    assert guard("RB-05", hardened_guest(epoch=None))["status"] == "fail"  # reverted to before the epoch file existed
    assert guard("RB-05", hardened_guest(epoch=1))["status"] == "pass"


def test_recorded_state_rb07_fails_on_an_unlocked_account_and_passes_when_relocked_or_removed():
    f = hardened_guest()
    f["accounts"][-1].update(shell="/bin/sh", password_locked=False, expired=False, locked=False)
    got = guard("RB-07", f)
    assert got["status"] == "fail" and got["evidence"]["accounts"] == ["games"] and "games" in got["message"]
    f["accounts"].pop()
    assert guard("RB-07", f)["status"] == "pass"  # absent is as good as locked


def test_recorded_state_rb08_fails_below_the_floor_naming_installed_and_floor_and_passes_when_upgraded():
    got = guard("RB-08", hardened_guest(packages={"openssl": "3.0.11-1~deb12u2", "openssh-server": "1:9.2p1-2+deb12u5"}))
    assert got["status"] == "fail"
    assert got["message"] == "1 package(s) below their security floor: openssl 3.0.11-1~deb12u2 < 3.0.15-1~deb12u1"
    assert got["evidence"]["packages"] == {"openssl": {"installed": "3.0.11-1~deb12u2", "floor": "3.0.15-1~deb12u1"}}
    # Debian order: the epoch outranks everything, ~ sorts before the end.
    got = guard("RB-08", hardened_guest(packages={"openssl": "3.0.15-1~deb12u1", "openssh-server": "9.2p1-2+deb12u5"}))
    assert got["status"] == "fail" and "openssh-server 9.2p1-2+deb12u5 < 1:9.2p1-2+deb12u5" in got["message"]
    upgraded = hardened_guest(packages={"openssl": "3.0.16-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"})
    assert guard("RB-08", upgraded)["status"] == "pass"


def test_recorded_state_rb09_fails_on_an_unmasked_unit_and_passes_when_masked_again():
    got = guard("RB-09", hardened_guest(services={"enabled": ["ssh.service", "telnet.socket"], "masked": []}))
    assert got["status"] == "fail" and got["evidence"]["services"] == ["telnet.socket"]
    assert guard("RB-09", hardened_guest(services={"enabled": ["ssh.service"], "masked": ["telnet.socket"]}))["status"] == "pass"


def test_recorded_state_rb10_fails_on_another_ruleset_and_passes_when_reapplied():
    f = hardened_guest()
    f["firewall"] = dict(f["firewall"], digest="0" * 64, default_deny=False, input_policy="accept")
    got = guard("RB-10", f)
    assert got["status"] == "fail" and got["evidence"] == {"digest": "0" * 64, "expected": "f" * 64}
    f["firewall"] = dict(f["firewall"], digest="f" * 64)
    assert guard("RB-10", f)["status"] == "pass"


# --- no host key read is nothing to compare; a heartbeat from the future; lists not collected are errors ---

def test_rb06_no_host_key_read_is_not_applicable_never_a_pass():
    got = E.by_subject(E.run("RB-06", guest_fleet(E.guest_facts(1, ssh_host_keys=[]))))["web1"]
    assert got["status"] == "not_applicable" and "nothing to compare with the 1 retired fingerprint(s)" in got["message"]


def test_rb06_private_host_key_without_pub_is_an_error(tmp_path):
    """A real tree holding ssh_host_ed25519_key without its .pub (sshd does not need the .pub): the producer reports
    the key it cannot fingerprint, and RB-06 does not say "none retired among 0 host keys"."""
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(ssh / "ssh_host_ed25519_key")], check=True)
    keys, why = guestscan.read_ssh_host_keys(str(tmp_path))
    assert why is None
    got = E.by_subject(E.run("RB-06", guest_fleet(E.guest_facts(1, ssh_host_keys=keys, ssh_host_keys_error=why))))["web1"]
    assert got["status"] == "pass" and "among 1 host key(s)" in got["message"]
    (ssh / "ssh_host_ed25519_key.pub").unlink()
    keys, why = guestscan.read_ssh_host_keys(str(tmp_path))
    got = E.by_subject(E.run("RB-06", guest_fleet(E.guest_facts(1, ssh_host_keys=keys, ssh_host_keys_error=why))))["web1"]
    assert got["status"] == "error" and "ssh_host_ed25519_key without its .pub" in got["message"]


def test_rb11_the_watcher_must_watch_the_audited_uri_with_the_policys_management_networks():
    f = rb11(uri="test:///default")
    assert f["status"] == "fail"
    assert "it watches test:///default, not the audited qemu:///system" in f["message"]
    assert f["evidence"]["uri"] == "test:///default"
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher=E.watcher(mgmt_networks=["mgmt"]))),
                 params={"isolation": {"management_networks": ["oob", "mgmt"]}})
    assert f["status"] == "fail" and "management networks [mgmt] up, the policy's are [mgmt, oob]" in f["message"]
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher=E.watcher(mgmt_networks=["oob", "mgmt"]))),
                 params={"isolation": {"management_networks": ["mgmt", "oob"]}})
    assert f["status"] == "pass"


def test_rb11_a_heartbeat_that_does_not_say_what_it_watches_never_passes():
    # A watcher from before 0.2.4 writes no management networks (and older ones no URI): reinstall it.
    f = rb11(mgmt_networks=None)
    assert f["status"] == "fail"
    assert "does not say which management networks it uses (a watcher from before 0.2.4): it must be reinstalled" \
        in f["message"]
    f = rb11(mgmt_networks=None, uri=None, connected=None)
    assert f["status"] == "fail" and "which libvirt URI and management networks" in f["message"]


def test_rb11_a_heartbeat_from_the_future_fails():
    f = rb11(heartbeat_age_seconds=-86400.0)  # the clock was stepped back a day
    assert f["status"] == "fail" and "heartbeat 86400s in the future" in f["message"]
    assert rb11(heartbeat_age_seconds=-6.0)["status"] == "fail"
    # A few seconds of skew between the watcher's write and the reader's clock still count.
    assert rb11(heartbeat_age_seconds=-2.0)["status"] == "pass"
    assert rb11(heartbeat_age_seconds=0.0)["status"] == "pass"


def not_collected(d, key):
    d = dict(d)
    del d[key]
    return d


def test_domain_lists_not_collected_are_errors_never_none():
    for rid, key in (("RB-12", "disks"), ("RB-01", "genid"), ("RB-02", "snapshots"), ("RB-03", "snapshots"),
                     ("RB-13", "snapshots")):
        f = one(rid, not_collected(E.domain(), key))
        assert f["status"] == "error" and f["message"] == "cannot evaluate: %s not collected" % key, rid
    f = one("RB-04", not_collected(E.domain(ledger=E.ledger()), "snapshots"))
    assert f["status"] == "error" and f["message"] == "cannot evaluate: snapshots not collected"
    # The clean domain still passes: its disk is not transient.
    assert one("RB-12", E.domain())["status"] == "pass"


def test_rb09_masked_units_not_collected_is_an_error():
    facts = E.guest_facts(1, services={"enabled": ["ssh.service"]})
    got = E.by_subject(E.run("RB-09", guest_fleet(facts)))["web1"]
    assert got["status"] == "error" and got["message"] == "cannot evaluate: services.masked not collected"
    facts = E.guest_facts(1, services={"enabled": ["ssh.service"], "masked": []})  # collected, none masked: the unit is back
    assert E.status_of(E.run("RB-09", guest_fleet(facts)), "web1") == "fail"
