"""VIS rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

from . import evidence as E


def test_vis01_domain_in_inventory():
    ev = E.fleet([E.domain("web1"), E.domain("rogue", state="shutoff", persistent=False)],
                 {"web1": E.guest("web1", facts=E.guest_facts(1))})
    fs = E.by_subject(E.run("VIS-01", ev))
    assert fs["hv1/web1"]["status"] == "pass"
    assert fs["hv1/rogue"]["status"] == "fail" and "transient" in fs["hv1/rogue"]["message"]


def test_vis02_inventory_guest_exists():
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1)),
                                      "ghost": E.guest("ghost", error="unreachable: no route")})
    fs = E.by_subject(E.run("VIS-02", ev))
    assert fs["web1"]["status"] == "pass"
    # Evaluated from inventory vars even though the guest itself is unreachable.
    assert fs["ghost"]["status"] == "fail"
    ev["guests"]["lost"] = E.guest("lost", hv="hv9", facts=E.guest_facts(3))
    assert E.by_subject(E.run("VIS-02", ev))["lost"]["status"] == "error"
    ev["guests"]["free"] = {"vars": {"service": "web"}, "error": None, "facts": E.guest_facts(4)}
    assert E.by_subject(E.run("VIS-02", ev))["free"]["status"] == "not_applicable"


def test_vis03_unknown_qemu():
    procs = [{"pid": 10, "user": "libvirt-qemu", "name": "web1", "uuid": None}]
    ev = E.fleet([E.domain("web1")], host_ev=E.host(qemu_processes=procs))
    assert E.run("VIS-03", ev)[0]["status"] == "pass"
    procs.append({"pid": 11, "user": "root", "name": "hidden", "uuid": None})
    f = E.run("VIS-03", E.fleet([E.domain("web1")], host_ev=E.host(qemu_processes=procs)))[0]
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 11 (hidden)"]


def test_vis04_dormant():
    assert E.run("VIS-04", E.fleet([E.domain(ledger=E.LEDGER)]))[0]["status"] == "pass"
    f = E.run("VIS-04", E.fleet([E.domain(ledger=E.ledger(last_hardened="2026-08-01T00:00:00Z"))]))[0]
    assert f["status"] == "fail" and f["evidence"]["age_days"] > 100
    assert "never hardened" in E.run("VIS-04", E.fleet([E.domain()]))[0]["message"]


def test_vis05_metadata():
    assert E.run("VIS-05", E.fleet([E.domain()]))[0]["status"] == "pass"
    d = E.domain(replace={"<vmguard:owner>team-a</vmguard:owner>": ""})
    f = E.run("VIS-05", E.fleet([d]))[0]
    assert f["status"] == "fail" and f["evidence"]["missing"] == ["owner"]


def test_vis06_expiry():
    assert E.run("VIS-06", E.fleet([E.domain()]))[0]["status"] == "pass"
    d = E.domain(replace={"2027-06-30": "2026-01-31"})
    assert E.run("VIS-06", E.fleet([d]))[0]["status"] == "fail"
    d = E.domain(replace={"<vmguard:expires>2027-06-30</vmguard:expires>": ""})
    assert E.run("VIS-06", E.fleet([d]))[0]["status"] == "not_applicable"
    d = E.domain(replace={"2027-06-30": "next spring"})
    assert E.run("VIS-06", E.fleet([d]))[0]["status"] == "error"


def test_vis07_orphan_images():
    imgs = [{"path": "/var/lib/libvirt/images/web1.qcow2", "mode": 0o600}]
    assert E.run("VIS-07", E.fleet([E.domain()], host_ev=E.host(images=imgs)))[0]["status"] == "pass"
    imgs.append({"path": "/var/lib/libvirt/images/old.qcow2", "mode": 0o600})
    f = E.run("VIS-07", E.fleet([E.domain()], host_ev=E.host(images=imgs)))[0]
    assert f["status"] == "fail" and f["evidence"]["images"] == ["/var/lib/libvirt/images/old.qcow2"]
