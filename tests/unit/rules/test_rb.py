"""RB rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

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
    assert one("RB-04", E.domain(snapshots=[snap("before", 20)]))["status"] == "not_applicable"


def test_rb05_epoch():
    assert E.status_of(E.run("RB-05", guest_fleet()), "web1") == "pass"
    behind = E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=2))))["web1"]
    assert behind["status"] == "fail" and "rolled back" in behind["message"] and behind["severity"] == "critical"
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=None))), "web1") == "fail"
    assert "ahead" in E.by_subject(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4))))["web1"]["message"]
    assert E.status_of(E.run("RB-05", guest_fleet(led=None)), "web1") == "not_applicable"
    # A ledger that has no epoch yet (only retired keys, say) is no evidence of a rollback.
    fresh = E.ledger(epoch=0, epoch_time=None)
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=None), led=fresh)), "web1") == "not_applicable"
    # Interrupted two-phase update: the guest already holds the pending epoch.
    pending = E.ledger(epoch=3, pending_epoch=4)
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=4), led=pending)), "web1") == "pass"
    assert E.status_of(E.run("RB-05", guest_fleet(E.guest_facts(1, epoch=3), led=pending)), "web1") == "pass"


def test_rb06_retired_keys():
    assert E.status_of(E.run("RB-06", guest_fleet()), "web1") == "pass"
    f = E.guest_facts(1)
    f["ssh_host_keys"].append({"type": "ssh-ed25519", "fingerprint": E.FP % "old-ed"})
    got = E.by_subject(E.run("RB-06", guest_fleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["fingerprints"] == [E.FP % "old-ed"]
    assert E.status_of(E.run("RB-06", guest_fleet(led=None)), "web1") == "not_applicable"


def test_rb07_disabled_accounts():
    f = E.guest_facts(1)
    f["accounts"].append({"name": "games", "uid": 5, "shell": "/usr/sbin/nologin", "password_locked": True,
                          "expired": True, "locked": True, "hash_digest": None})
    assert E.status_of(E.run("RB-07", guest_fleet(f)), "web1") == "pass"
    f["accounts"][-1]["locked"] = False
    assert E.status_of(E.run("RB-07", guest_fleet(f)), "web1") == "fail"
    assert E.status_of(E.run("RB-07", guest_fleet(E.guest_facts(1, accounts=None))), "web1") == "error"
    assert E.status_of(E.run("RB-07", guest_fleet(led=None)), "web1") == "not_applicable"


def test_rb08_package_floor():
    assert E.status_of(E.run("RB-08", guest_fleet()), "web1") == "pass"
    old = E.guest_facts(1, packages={"openssl": "3.0.11-1~deb12u2"})
    got = E.by_subject(E.run("RB-08", guest_fleet(old)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["packages"]["openssl"]["floor"] == "3.0.15-1~deb12u1"
    newer = E.guest_facts(1, packages={"openssl": "3.0.15-1~deb12u1+b1"})
    assert E.status_of(E.run("RB-08", guest_fleet(newer)), "web1") == "pass"


def test_rb09_masked_services():
    assert E.status_of(E.run("RB-09", guest_fleet()), "web1") == "pass"
    unmasked = E.guest_facts(1, services={"enabled": ["telnet.socket"], "masked": []})
    assert E.status_of(E.run("RB-09", guest_fleet(unmasked)), "web1") == "fail"
    assert E.status_of(E.run("RB-09", guest_fleet(led=None)), "web1") == "not_applicable"


def test_rb10_firewall_digest():
    assert E.status_of(E.run("RB-10", guest_fleet()), "web1") == "pass"
    changed = E.guest_facts(1)
    changed["firewall"] = dict(changed["firewall"], digest="0" * 64)
    assert E.status_of(E.run("RB-10", guest_fleet(changed)), "web1") == "fail"
    assert E.status_of(E.run("RB-10", guest_fleet(led=E.ledger(firewall_digest=None))), "web1") == "not_applicable"


def test_rb11_watcher():
    (f,) = E.run("RB-11", E.fleet())
    assert f["status"] == "pass" and f["subject"] == {"kind": "hypervisor", "id": "hv1"}
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher={"running": False, "pid": None})))
    assert f["status"] == "fail"
    (f,) = E.run("RB-11", E.fleet(host_ev={}))
    assert f["status"] == "error"


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
