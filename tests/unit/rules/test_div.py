"""DIV rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

import subprocess

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan

from . import evidence as E


def two_guests(f1=None, f2=None):
    return E.fleet([E.domain("web1"), E.domain("mail1", "mail")], {
        "web1": E.guest("web1", facts=f1 or E.guest_facts(1)),
        "mail1": E.guest("mail1", "mail", facts=f2 or E.guest_facts(2)),
    })


def test_div01_unique_cloned_and_uninitialized():
    assert {f["status"] for f in E.run("DIV-01", two_guests())} == {"pass"}
    fs = E.by_subject(E.run("DIV-01", two_guests(f2=E.guest_facts(2, machine_id_digest=E.guest_facts(1)["machine_id_digest"]))))
    assert fs["web1"]["status"] == fs["mail1"]["status"] == "fail"
    assert fs["web1"]["evidence"]["shared_with"] == ["mail1"]
    fs = E.by_subject(E.run("DIV-01", two_guests(f1=E.guest_facts(1, machine_id_state="empty", machine_id_digest=None))))
    assert fs["web1"]["status"] == "fail" and "uninitialized" in fs["web1"]["message"]


def test_div01_unreachable_guest_is_error_not_pass():
    ev = two_guests()
    ev["guests"]["mail1"] = E.guest("mail1", "mail", error="unreachable: timed out")
    fs = E.by_subject(E.run("DIV-01", ev))
    assert fs["mail1"]["status"] == "error" and "timed out" in fs["mail1"]["message"]
    # mail1 may hold web1's machine-id: web1's uniqueness is not proven (an error naming mail1, never a pass).
    assert fs["web1"]["status"] == "error" and "not proven unique" in fs["web1"]["message"]
    assert "(mail1)" in fs["web1"]["message"] and fs["web1"]["evidence"]["not_collected"] == 1


def test_div02_shared_host_key():
    f2 = E.guest_facts(2)
    f2["ssh_host_keys"][0] = dict(E.guest_facts(1)["ssh_host_keys"][0])
    fs = E.by_subject(E.run("DIV-02", two_guests(f2=f2)))
    assert fs["web1"]["status"] == "fail" and fs["mail1"]["status"] == "fail"
    assert fs["web1"]["severity"] == "critical"
    assert list(fs["web1"]["evidence"]["shared"]) == [E.FP % "ed1"]
    assert {f["status"] for f in E.run("DIV-02", two_guests())} == {"pass"}
    fs = E.by_subject(E.run("DIV-02", two_guests(f1=E.guest_facts(1, ssh_host_keys=[]))))
    assert fs["web1"]["status"] == "not_applicable"


def test_div03_same_password_hash():
    f2 = E.guest_facts(2)
    f2["accounts"][1]["hash_digest"] = E.guest_facts(1)["accounts"][1]["hash_digest"]
    fs = E.by_subject(E.run("DIV-03", two_guests(f2=f2)))
    assert fs["mail1"]["status"] == "fail" and fs["mail1"]["evidence"]["accounts"] == ["admin"]
    assert {f["status"] for f in E.run("DIV-03", two_guests())} == {"pass"}
    nohash = E.guest_facts(1)
    nohash["accounts"][1]["hash_digest"] = None
    got = E.by_subject(E.run("DIV-03", two_guests(f1=nohash)))["web1"]
    assert got["status"] == "not_applicable" and got["message"] == "no account has a password hash: nothing to compare"


def test_div03_unreadable_shadow_is_an_error_not_a_pass():
    # Without shadow every account looks password-locked: no hash, nothing shared, a false pass.
    why = "/etc/shadow exists but cannot be read: Permission denied"
    got = E.by_subject(E.run("DIV-03", two_guests(f1=E.guest_facts(1, accounts=None, accounts_error=why))))["web1"]
    assert got["status"] == "error" and "/etc/shadow" in got["message"] and "Permission denied" in got["message"]
    got = E.by_subject(E.run("DIV-03", two_guests(f1=E.guest_facts(1, accounts=None))))["web1"]
    assert got["status"] == "error" and "/etc/shadow" in got["message"]


def test_div04_random_seed():
    same = E.guest_facts(1)["random_seed_digest"]
    assert E.status_of(E.run("DIV-04", two_guests(f2=E.guest_facts(2, random_seed_digest=same))), "mail1") == "fail"
    assert E.status_of(E.run("DIV-04", two_guests()), "mail1") == "pass"
    assert E.status_of(E.run("DIV-04", two_guests(f2=E.guest_facts(2, random_seed_digest=None))), "mail1") == "not_applicable"


def test_div05_uuid_and_mac_across_hypervisors():
    d1 = E.domain("web1")
    clone = E.domain("web1-clone", uuid=d1["uuid"], mac=d1["interfaces"][0]["mac"])
    ev = E.fleet([d1])
    ev["hypervisors"]["hv2"] = {"error": None, "host": E.host(), "domains": [clone]}
    fs = E.by_subject(E.run("DIV-05", ev))
    assert fs["hv1/web1"]["status"] == "fail"
    assert fs["hv2/web1-clone"]["evidence"]["uuid"] == ["hv1/web1"]
    assert "MAC %s" % d1["interfaces"][0]["mac"] in fs["hv2/web1-clone"]["message"]
    assert {f["status"] for f in E.run("DIV-05", E.fleet([E.domain("a"), E.domain("b")]))} == {"pass"}


def test_div05_unreachable_hypervisor_is_error():
    fs = E.run("DIV-05", E.fleet(hv_error="cannot connect to qemu+ssh://hv1/system"))
    assert [(f["subject"], f["status"]) for f in fs] == [({"kind": "hypervisor", "id": "hv1"}, "error")]


BASE = "/var/lib/libvirt/images/golden-b1.qcow2"


def base_image(**kw):
    img = {"path": BASE, "format": "qcow2", "used_by": ["web1:vda", "mail1:vda"], "sealed": True, "findings": [],
           "error": None}
    img.update(kw)
    return img


def div06(*images, **host_kw):
    host = E.host(base_images=list(images), **host_kw)
    return E.by_subject(E.run("DIV-06", two_guests_on(host)))


def two_guests_on(host):
    ev = two_guests()
    ev["hypervisors"]["hv1"]["host"] = host
    return ev


def test_div06_sealed_base_image_passes():
    fs = div06(base_image())
    f = fs["hv1:" + BASE]
    assert f["status"] == "pass" and f["subject"] == {"kind": "image", "id": "hv1:" + BASE}
    assert f["evidence"]["used_by"] == ["web1:vda", "mail1:vda"]
    assert fs["hv1"]["status"] == "pass" and fs["hv1"]["message"] == "1 base image(s) checked individually"


def test_div06_unsealed_base_image_fails_listing_what_a_clone_inherits():
    found = ["/etc/ssh/ssh_host_ed25519_key", "/etc/machine-id", "/root/.bash_history"]
    f = div06(base_image(sealed=False, findings=found))["hv1:" + BASE]
    assert f["status"] == "fail" and f["evidence"]["findings"] == found
    assert all(p in f["message"] for p in found)


def test_div06_unverifiable_base_image_is_an_error():
    f = div06(base_image(sealed=None, error="qemu-nbd: cannot open image: Permission denied"))["hv1:" + BASE]
    assert f["status"] == "error" and "Permission denied" in f["message"]
    f = div06(base_image(sealed=None))["hv1:" + BASE]
    assert f["status"] == "error" and "not verified" in f["message"]


def test_div06_hypervisor_without_base_images_or_evidence():
    fs = div06()
    assert list(fs) == ["hv1"]
    assert fs["hv1"]["status"] == "not_applicable" and fs["hv1"]["message"] == "no disk has a base image"
    fs = E.by_subject(E.run("DIV-06", two_guests_on(E.host(base_images=None))))
    assert list(fs) == ["hv1"] and fs["hv1"]["status"] == "error"


def test_div06_does_not_trust_the_guests_lineage_record():
    # A lineage record claiming a verified seal proves nothing about the image the guest came from.
    fs = div06(base_image(sealed=False, findings=["/etc/machine-id"]))
    assert fs["hv1:" + BASE]["status"] == "fail"
    assert "web1" not in fs and "mail1" not in fs


def test_div07_blast_radius():
    # Two guests from one build: 100 % of the fleet > 50 %.
    (f,) = E.run("DIV-07", two_guests())
    assert f["status"] == "fail" and f["subject"] == {"kind": "fleet", "id": "fleet"}
    assert f["evidence"]["builds"] == {"b1": {"guests": 2, "share": 1.0}}
    other = E.guest_facts(2, lineage={"build_id": "b2", "build_time": "2026-11-01T00:00:00Z", "seal": "verified"})
    (f,) = E.run("DIV-07", two_guests(f2=other), params={"diversity": {"max_fleet_share": 0.5}})
    assert f["status"] == "pass"
    (f,) = E.run("DIV-07", two_guests(), params={"diversity": {"max_fleet_share": 1.0, "max_clones_per_build": 1}})
    assert f["status"] == "fail" and "2 guests" in f["message"]
    nolineage = E.guest_facts(1, lineage=None)
    (f,) = E.run("DIV-07", E.fleet([], {"g": E.guest("g", facts=nolineage)}))
    assert f["status"] == "not_applicable"


def test_div07_share_is_compared_unrounded():
    """1251 of 2500 guests is 50.04 %: over max_fleet_share 0.5, though the displayed share rounds to 0.5."""
    lin = {"b1": {"build_id": "b1", "build_time": "2026-11-01T00:00:00Z", "seal": "verified"},
           "b2": {"build_id": "b2", "build_time": "2026-11-01T00:00:00Z", "seal": "verified"}}
    guests = {}
    for i in range(2500):
        name = "g%04d" % i
        guests[name] = E.guest(name, facts=E.guest_facts(i, lineage=lin["b1" if i < 1251 else "b2"]))
    params = {"diversity": {"max_fleet_share": 0.5, "max_clones_per_build": 5000}}
    (f,) = E.run("DIV-07", E.fleet([], guests), params=params)
    assert f["status"] == "fail" and f["evidence"]["builds"]["b1"] == {"guests": 1251, "share": 0.5}
    assert "build b1 on 1251 guests" in f["message"] and "b2" not in f["message"].split("limit")[0]
    for i in range(1251, 2500):  # 1250 and 1250: exactly half each, within the limit
        guests["g%04d" % i]["facts"]["lineage"] = dict(lin["b1"])
    guests["g0000"]["facts"]["lineage"] = dict(lin["b2"])
    for i in range(1, 1250):
        guests["g%04d" % i]["facts"]["lineage"] = dict(lin["b2"])
    (f,) = E.run("DIV-07", E.fleet([], guests), params=params)
    assert f["status"] == "pass", f["message"]


def test_div08_image_age():
    assert E.status_of(E.run("DIV-08", two_guests()), "web1") == "pass"  # 17 days
    old = E.guest_facts(1, lineage={"build_id": "b0", "build_time": "2026-05-01T00:00:00Z", "seal": "verified"})
    fs = E.by_subject(E.run("DIV-08", two_guests(f1=old)))
    assert fs["web1"]["status"] == "fail" and fs["web1"]["evidence"]["age_days"] > 90
    assert E.status_of(E.run("DIV-08", two_guests(f1=old), params={"diversity": {"max_image_age_days": 365}}), "web1") == "pass"
    assert E.status_of(E.run("DIV-08", two_guests(f1=E.guest_facts(1, lineage=None))), "web1") == "not_applicable"
    # A build time ahead of the clock is no fresh image: its age cannot be judged (a forged record or a bad clock).
    ahead = E.guest_facts(1, lineage={"build_id": "b9", "build_time": "2030-01-01T00:00:00Z", "seal": "verified"})
    fs = E.by_subject(E.run("DIV-08", two_guests(f1=ahead)))
    assert fs["web1"]["status"] == "error" and "in the future" in fs["web1"]["message"]


def test_div09_rng():
    assert E.status_of(E.run("DIV-09", E.fleet([E.domain()])), "hv1/web1") == "pass"
    no_rng = E.domain(replace={"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>": ""})
    assert E.status_of(E.run("DIV-09", E.fleet([no_rng])), "hv1/web1") == "fail"
    assert E.run("DIV-09", E.fleet([no_rng]), rules={"DIV-09": {"enabled": False}}) == []
    transitional = E.domain(replace={"<rng model='virtio'>": "<rng model='virtio-transitional'>"})
    assert E.status_of(E.run("DIV-09", E.fleet([transitional])), "hv1/web1") == "pass"


def test_div10_aslr():
    assert E.status_of(E.run("DIV-10", two_guests()), "web1") == "pass"
    assert E.status_of(E.run("DIV-10", two_guests(f1=E.guest_facts(1, sysctl={"kernel.randomize_va_space": "0"}))), "web1") == "fail"
    assert E.status_of(E.run("DIV-10", two_guests(f1=E.guest_facts(1, sysctl={}))), "web1") == "error"


def test_unreadable_identity_evidence_is_an_error_never_na():
    # An /etc/ssh or random seed the evidence module could not read must not look like "none there".
    why = "cannot list /etc/ssh: [Errno 13] Permission denied"
    got = E.by_subject(E.run("DIV-02", two_guests(f1=E.guest_facts(1, ssh_host_keys=None, ssh_host_keys_error=why))))
    assert got["web1"]["status"] == "error" and "Permission denied" in got["web1"]["message"]
    why = "cannot read /var/lib/systemd/random-seed: [Errno 13] Permission denied"
    got = E.by_subject(E.run("DIV-04", two_guests(f1=E.guest_facts(1, random_seed_digest=None, random_seed_error=why))))
    assert got["web1"]["status"] == "error" and "random-seed" in got["web1"]["message"]


# --- DIV-05 on both definitions; DIV-07/08 on unreadable lineage records (guestscan.json_file's {"error": ...}) ---

AA, BB = "52:54:00:12:34:aa", "52:54:00:12:34:bb"


def running_with_definition(name, live_mac, persistent_mac, service="web"):
    """A running persistent domain as hypervisor_facts reports it: the live definition and, in ``inactive``, the
    persistent one (parsed from its own XML, the non-XML fields copied), here differing in the interface's MAC."""
    live = E.domain(name, service, mac=live_mac)
    pers = E.domain(name, service, mac=persistent_mac)
    for key in ("state", "persistent", "autostart", "snapshots", "ledger", "error", "pid"):
        pers[key] = live[key]
    pers.update(definition="persistent", inactive=None)
    live["inactive"] = pers
    return live


def test_div05_a_mac_shared_by_a_persistent_definition_fails():
    # web1 runs with ..:aa but will start with ..:bb, which the shut-off mail1 has.
    ev = E.fleet([running_with_definition("web1", AA, BB), E.domain("mail1", "mail", mac=BB, state="shutoff")])
    fs = E.by_subject(E.run("DIV-05", ev))
    web1, mail1 = fs["hv1/web1"], fs["hv1/mail1"]
    assert web1["status"] == "fail" and web1["definition"] == "persistent"
    assert web1["evidence"]["macs"] == {BB: ["hv1/mail1"]} and "MAC %s with hv1/mail1" % BB in web1["message"]
    assert mail1["status"] == "fail" and mail1["evidence"]["macs"] == {BB: ["hv1/web1"]}


def test_div05_a_mac_only_the_domain_itself_has_in_both_definitions_passes():
    ev = E.fleet([running_with_definition("web1", AA, AA), E.domain("mail1", "mail", mac=BB, state="shutoff")])
    fs = E.by_subject(E.run("DIV-05", ev))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/web1"]["definition"] == "both"
    assert fs["hv1/mail1"]["status"] == "pass"
    # A definition changed to a MAC nobody else has: still unique.
    ev = E.fleet([running_with_definition("web1", AA, "52:54:00:12:34:cc"), E.domain("mail1", "mail", mac=BB)])
    assert {f["status"] for f in E.run("DIV-05", ev)} == {"pass"}


def test_div03_a_locked_accounts_hash_is_compared_too():
    """usermod -L puts '!' before the hash; usermod -U gives it back: a clone's locked account with the golden image's
    password is one unlock away from a password shared across the fleet."""
    f1 = E.guest_facts(1)
    f2 = E.guest_facts(2)
    f2["accounts"].append({"name": "deploy", "uid": 1001, "shell": "/bin/bash", "password_locked": True, "expired": False,
                           "locked": False, "hash_digest": None, "locked_hash_digest": f1["accounts"][1]["hash_digest"]})
    fs = E.by_subject(E.run("DIV-03", two_guests(f1=f1, f2=f2)))
    assert fs["web1"]["status"] == fs["mail1"]["status"] == "fail"
    assert fs["mail1"]["message"].startswith("password hash of deploy (locked) identical on web1")
    assert fs["mail1"]["evidence"]["accounts"] == ["deploy"]  # the names the plan's expire_passwords step takes
    f2["accounts"][-1]["locked_hash_digest"] = "%064x" % 99
    fs = E.by_subject(E.run("DIV-03", two_guests(f1=f1, f2=f2)))
    assert fs["mail1"]["status"] == "pass" and fs["mail1"]["message"] == "2 password hash(es), none shared"


def test_div05_identity_not_collected_is_an_error():
    for key in ("interfaces", "uuid"):
        d = E.domain("web1")
        del d[key]
        fs = E.by_subject(E.run("DIV-05", E.fleet([d, E.domain("mail1", "mail")])))
        assert fs["hv1/web1"]["status"] == "error" and fs["hv1/web1"]["message"] == "cannot evaluate: %s not collected" % key
        # web1 may be mail1's clone: mail1's uniqueness is not proven.
        assert fs["hv1/mail1"]["status"] == "error" and "(hv1/web1): not proven unique" in fs["hv1/mail1"]["message"]
    fs = E.by_subject(E.run("DIV-05", E.fleet([E.domain("web1"), E.domain("mail1", "mail")])))
    assert fs["hv1/web1"]["status"] == fs["hv1/mail1"]["status"] == "pass"


def test_div05_an_unreachable_hypervisor_leaves_uniqueness_unproven():
    """hv2's domains are unknown: one of them may be web1's clone (same UUID and MAC)."""
    ev = E.fleet([E.domain("web1")])
    ev["hypervisors"]["hv2"] = {"error": "cannot connect to qemu+ssh://hv2/system", "uri": "qemu+ssh://hv2/system", "host": {},
                                "domains": []}
    fs = E.by_subject(E.run("DIV-05", ev))
    assert fs["hv1/web1"]["status"] == "error" and "(hv2/*): not proven unique" in fs["hv1/web1"]["message"]
    assert fs["hv2"]["status"] == "error"
    del ev["hypervisors"]["hv2"]
    assert E.by_subject(E.run("DIV-05", ev))["hv1/web1"]["status"] == "pass"


def corrupt_lineage(tmp_path):
    """What guest_facts sends for a damaged /etc/vmguard/lineage.json (guestscan.json_file on a real file)."""
    (tmp_path / "etc" / "vmguard").mkdir(parents=True)
    (tmp_path / "etc" / "vmguard" / "lineage.json").write_text('{"build_id": "b1", "build_ti')
    lineage = guestscan.json_file(str(tmp_path), "/etc/vmguard/lineage.json")
    assert lineage == {"error": "unparsable /etc/vmguard/lineage.json"}
    return lineage


def build(bid):
    return {"build_id": bid, "build_time": "2026-11-01T00:00:00Z", "seal": "verified"}


def five_guests(lineages):
    names = ["web1", "web2", "mail1", "mail2", "db1"]
    return E.fleet([], dict((g, E.guest(g, facts=E.guest_facts(i, lineage=lin))) for i, (g, lin) in enumerate(zip(names, lineages))))


def test_div07_unreadable_lineage_is_an_error_naming_the_guests_not_a_pass(tmp_path):
    bad = corrupt_lineage(tmp_path)
    # 2 of 5 guests on b1 (40 %) only while the other 3 builds are unknown: any of them may be b1.
    (f,) = E.run("DIV-07", five_guests([build("b1"), build("b1"), bad, bad, bad]))
    assert f["status"] == "error" and f["evidence"]["unknown_build"] == ["db1", "mail1", "mail2"]
    assert "image build unknown on 3 of 5 guest(s): db1, mail1, mail2 (lineage record unreadable" in f["message"]
    assert "with the largest known build they would be 5 guests" in f["message"]
    # Readable and spread over builds: the same shares pass.
    (f,) = E.run("DIV-07", five_guests([build("b1"), build("b1"), build("b2"), build("b3"), build("b4")]))
    assert f["status"] == "pass" and f["evidence"]["builds"]["b1"] == {"guests": 2, "share": 0.4}
    # A build already over the limits fails whatever the unknown builds are, naming them too.
    (f,) = E.run("DIV-07", five_guests([build("b1"), build("b1"), build("b1"), bad, None]))
    assert f["status"] == "fail" and "build b1 on 3 guests (60%)" in f["message"]
    assert "build unknown on mail2 (lineage record unreadable or naming no build)" in f["message"]
    # No lineage record at all (not built by the golden_image role) is no unknown build: not applicable.
    (f,) = E.run("DIV-07", five_guests([None] * 5))
    assert f["status"] == "not_applicable"


def test_div07_lineage_without_build_id_or_not_collected_is_an_unknown_build():
    no_id = {"build_time": "2026-11-01T00:00:00Z"}
    # b1 on 2 of 5 (40 %): with mail2's unknown build it could be 3 (60 %), over max_fleet_share 0.5.
    (f,) = E.run("DIV-07", five_guests([build("b1"), build("b1"), build("b3"), no_id, build("b4")]))
    assert f["status"] == "error" and f["evidence"]["unknown_build"] == ["mail2"]
    ev = five_guests([build("b1"), build("b1"), build("b3"), build("b4"), build("b5")])
    del ev["guests"]["db1"]["facts"]["lineage"]
    (f,) = E.run("DIV-07", ev)
    assert f["status"] == "error" and f["evidence"]["unknown_build"] == ["db1"]
    # Every build on one guest: even with mail2 the largest would be 2 of 5 (40 %): certain, a pass naming mail2.
    (f,) = E.run("DIV-07", five_guests([build("b1"), build("b2"), build("b3"), no_id, build("b4")]))
    assert f["status"] == "pass" and f["evidence"]["unknown_build"] == ["mail2"]
    assert "even if the 1 guest(s) of unknown build all belong to the largest (mail2 (lineage record" in f["message"]


def test_div07_counts_the_guests_whose_evidence_was_not_collected():
    """Two builds of 3 guests each look like 50 % of the 6 guests that answered; 4 more guests did not answer: they
    are in the fleet, and may all be b1 (7 of 10). The gate must not pass DIV-07 on the guests that answered."""
    guests = {}
    for i in range(10):
        name = "g%d" % i
        if i < 6:
            guests[name] = E.guest(name, facts=E.guest_facts(i, lineage=build("b1" if i < 3 else "b2")))
        else:
            guests[name] = E.guest(name, error="unreachable: ssh: connect to host timed out")
    (f,) = E.run("DIV-07", E.fleet([], guests))
    assert f["status"] == "error" and f["evidence"]["no_evidence"] == ["g6", "g7", "g8", "g9"]
    assert f["evidence"]["guests"] == 10 and f["evidence"]["builds"]["b1"] == {"guests": 3, "share": 0.3}
    assert "g6, g7, g8, g9 (no evidence collected)" in f["message"]
    # The same guests answering, spread over two more builds: 3 of 10 each, within the limits.
    for i in range(6, 10):
        guests["g%d" % i] = E.guest("g%d" % i, facts=E.guest_facts(i, lineage=build("b3" if i < 8 else "b4")))
    (f,) = E.run("DIV-07", E.fleet([], guests))
    assert f["status"] == "pass" and "no_evidence" not in f["evidence"]
    # Nobody answered: no lineage to read is no "not applicable" when 10 guests of one build could be behind it.
    silent = dict((g, E.guest(g, error="no guest evidence collected from %s" % g)) for g in guests)
    (f,) = E.run("DIV-07", E.fleet([], silent))
    assert f["status"] == "error" and len(f["evidence"]["no_evidence"]) == 10
    # A build over the limits among those who answered fails all the same, naming the silent ones.
    for i in range(3, 6):
        guests["g%d" % i] = E.guest("g%d" % i, facts=E.guest_facts(i, lineage=build("b1")))
    guests["g9"] = E.guest("g9", error="unreachable: ssh timed out")
    (f,) = E.run("DIV-07", E.fleet([], guests))
    assert f["status"] == "fail" and "build b1 on 6 guests (60%)" in f["message"] and "g9 (no evidence collected)" in f["message"]


def test_div08_unreadable_lineage_is_an_error(tmp_path):
    bad = corrupt_lineage(tmp_path)
    fs = E.by_subject(E.run("DIV-08", two_guests(f1=E.guest_facts(1, lineage=bad))))
    assert fs["web1"]["status"] == "error" and "unparsable /etc/vmguard/lineage.json" in fs["web1"]["message"]
    assert fs["mail1"]["status"] == "pass"
    got = E.by_subject(E.run("DIV-08", two_guests(f1=E.guest_facts(1, lineage={"build_id": "b1"}))))["web1"]
    assert got["status"] == "error" and got["message"] == "lineage record of build b1 has no build time"
    got = E.by_subject(E.run("DIV-08", two_guests(f1=E.guest_facts(1, lineage=["b1"]))))["web1"]
    assert got["status"] == "error" and got["message"] == "lineage record is not a JSON object"
    f1 = E.guest_facts(1)
    del f1["lineage"]
    got = E.by_subject(E.run("DIV-08", two_guests(f1=f1)))["web1"]
    assert got["status"] == "error" and got["message"] == "lineage not collected"
    got = E.by_subject(E.run("DIV-08", two_guests(f1=E.guest_facts(1, lineage=None))))["web1"]
    assert got["status"] == "not_applicable" and got["message"] == "no lineage record: no image build time to compare"


def test_div02_private_host_key_without_pub_is_an_error_not_no_keys(tmp_path):
    """The producer on a real tree (sshd needs only the private key) and the rule on what it sends."""
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(ssh / "ssh_host_ed25519_key")], check=True)
    (ssh / "ssh_host_ed25519_key.pub").unlink()
    keys, why = guestscan.read_ssh_host_keys(str(tmp_path))
    got = E.by_subject(E.run("DIV-02", two_guests(f1=E.guest_facts(1, ssh_host_keys=keys, ssh_host_keys_error=why))))["web1"]
    assert got["status"] == "error" and "/etc/ssh/ssh_host_ed25519_key without its .pub" in got["message"]
