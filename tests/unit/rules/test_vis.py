"""VIS rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

from ansible_collections.vmguard.hardening.plugins.module_utils.common import timeutil

from . import evidence as E


def test_vis01_domain_in_inventory():
    ev = E.fleet([E.domain("web1"), E.domain("rogue", state="shutoff", persistent=False)],
                 {"web1": E.guest("web1", facts=E.guest_facts(1))})
    fs = E.by_subject(E.run("VIS-01", ev))
    assert fs["hv1/web1"]["status"] == "pass"
    assert fs["hv1/rogue"]["status"] == "fail" and "transient" in fs["hv1/rogue"]["message"]


def test_vis01_a_domain_in_a_users_own_libvirt_session_is_invisible_to_the_audit():
    """The audit lists qemu:///system; alice's shut-off session domain is in no list and no rule judges it."""
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    fs = E.by_subject(E.run("VIS-01", ev))
    assert fs["hv1"]["status"] == "pass" and "2 home(s)" in fs["hv1"]["message"] and fs["hv1/web1"]["status"] == "pass"
    hidden = {"uri": "qemu:///session", "user": "alice", "name": "lab", "uuid": "u-1",
              "path": "/home/alice/.config/libvirt/qemu/lab.xml"}
    ev["hypervisors"]["hv1"]["host"]["session_domains"] = {"domains": [hidden], "errors": [], "users": 2}
    f = E.by_subject(E.run("VIS-01", ev))["hv1"]
    assert f["status"] == "fail" and "lab of alice (/home/alice/.config/libvirt/qemu/lab.xml)" in f["message"]
    assert f["evidence"]["domains"] == [hidden] and "qemu:///session" in f["remediation"]
    # A home that could not be read may hold one: an error, never a pass.
    unread = {"uri": "qemu:///session", "user": "bob", "path": "/home/bob/.config/libvirt/qemu",
              "error": "reading /home/bob/.config/libvirt/qemu as bob took longer than 20 s"}
    ev["hypervisors"]["hv1"]["host"]["session_domains"] = {"domains": [], "errors": [unread], "users": 2}
    f = E.by_subject(E.run("VIS-01", ev))["hv1"]
    assert f["status"] == "error" and "of bob could not be read" in f["message"]
    # Not collected (a remote URI, an older collector): an error as for every host field.
    del ev["hypervisors"]["hv1"]["host"]["session_domains"]
    assert E.by_subject(E.run("VIS-01", ev))["hv1"]["status"] == "error"
    # An unreachable hypervisor: one error finding for VIS-01 (the hypervisor's), not one more per unknown domain.
    ev = E.fleet([], {}, hv_error="cannot connect")
    assert [(f["subject"]["id"], f["status"]) for f in E.run("VIS-01", ev)] == [("hv1", "error")]


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


def test_vis02_one_domain_declared_by_two_guests_fails_for_both():
    """Two inventory guests naming one hv/domain both passed ("exists"): the machine one of them reaches is not that
    domain (or one VM is counted twice), and VIS-01 ties the domain to only one of them."""
    ev = E.fleet([E.domain("web1"), E.domain("web2")], {"web1": E.guest("web1", facts=E.guest_facts(1)),
                                                        "web1-copy": E.guest("web1", facts=E.guest_facts(2)),
                                                        "web2": E.guest("web2", facts=E.guest_facts(3))})
    fs = E.by_subject(E.run("VIS-02", ev))
    assert fs["web2"]["status"] == "pass"
    for g, other in (("web1", "web1-copy"), ("web1-copy", "web1")):
        assert fs[g]["status"] == "fail" and fs[g]["message"].startswith("hv1/web1 is declared by %s too" % other)
        assert fs[g]["evidence"]["guests"] == ["web1", "web1-copy"]


def vis03(domains, procs):
    (f,) = E.run("VIS-03", E.fleet(domains, host_ev=E.host(qemu_processes=procs)))
    return f


def test_vis03_processes_tied_to_domains_by_libvirts_pid():
    web = E.domain("web1", pid=4100)
    f = vis03([web], [E.qemu_process(4100, "web1", web["uuid"])])
    assert f["status"] == "pass" and "matched by name" not in f["message"]
    f = vis03([web], [E.qemu_process(4100, "web1", web["uuid"]), E.qemu_process(4111, "hidden", uid=0, user="root")])
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 4111 (hidden)"]


def test_vis03_a_process_claiming_a_domains_name_is_not_that_domain():
    web = E.domain("web1", pid=4100)
    impostor = E.qemu_process(5000, "web1", web["uuid"], uid=0, user="root")
    f = vis03([web], [E.qemu_process(4100, "web1", web["uuid"]), impostor])
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 5000 (web1)"]
    # Claiming the UUID of a shut-off domain does not make a process known either.
    off = E.domain("mail1", "mail", state="shutoff")
    f = vis03([web, off], [E.qemu_process(4100, "web1"), E.qemu_process(5001, None, off["uuid"])])
    assert f["status"] == "fail" and "pid 5001" in f["message"]


def test_vis03_without_libvirts_pid_falls_back_to_name_and_says_so():
    web = E.domain("web1", pid=None)
    f = vis03([web], [E.qemu_process(4100, "web1", web["uuid"])])
    assert f["status"] == "pass" and "matched by name: libvirt's pid not available" in f["message"]
    f = vis03([web], [E.qemu_process(4100, "web1"), E.qemu_process(4111, "hidden")])
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 4111 (hidden)"]


def test_vis03_without_libvirts_pid_one_domain_accounts_for_one_process():
    """Where libvirt gives no pid, a process is tied to a running domain by what its argv claims; a second process
    claiming the same domain (a copy started by hand with the same -name/-uuid) was passed as "matched by name"."""
    web = E.domain("web1", pid=None)
    twins = [E.qemu_process(4100, "web1", web["uuid"]), E.qemu_process(4200, "web1", web["uuid"], uid=0, user="root")]
    f = vis03([web], twins)
    assert f["status"] == "fail" and f["evidence"]["processes"] == [
        "pid 4100 (web1), one of 2 claiming running domain web1",
        "pid 4200 (web1), one of 2 claiming running domain web1"]
    # A claim whose name and UUID name different domains (or whose UUID is not its named domain's) is no claim.
    mail = E.domain("mail1", "mail", pid=None)
    mixed = [E.qemu_process(4100, "web1", web["uuid"]), E.qemu_process(4300, "mail1", mail["uuid"]),
             E.qemu_process(4400, "web1", mail["uuid"])]
    f = vis03([web, mail], mixed)
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 4400 (web1)"]
    f = vis03([web, mail], mixed[:2])
    assert f["status"] == "pass" and "2 matched by name" in f["message"]


def test_vis03_missing_or_incomplete_process_list_is_an_error():
    web = E.domain("web1", pid=4100)
    f = vis03([web], [])
    assert f["status"] == "error" and "web1 (pid 4100)" in f["message"]
    f = vis03([web], None)
    assert f["status"] == "error" and "not collected" in f["message"]
    assert vis03([E.domain("web1", state="shutoff")], [])["status"] == "pass"


def test_vis04_dormant():
    assert E.run("VIS-04", E.fleet([E.domain(ledger=E.LEDGER)]))[0]["status"] == "pass"
    f = E.run("VIS-04", E.fleet([E.domain(ledger=E.ledger(last_hardened="2026-08-01T00:00:00Z"))]))[0]
    assert f["status"] == "fail" and f["evidence"]["age_days"] > 100
    assert "never hardened" in E.run("VIS-04", E.fleet([E.domain()]))[0]["message"]


def test_vis04_last_hardened_in_the_future_is_an_error_not_a_fresh_hardening():
    # Written while the host clock was years ahead (or forged): no age at all, never "not dormant yet".
    f = E.run("VIS-04", E.fleet([E.domain(ledger=E.ledger(last_hardened="2029-12-31T00:00:00Z"))]))[0]
    assert f["status"] == "error" and "2029-12-31T00:00:00Z lies 1139 days in the future" in f["message"]
    assert f["evidence"]["age_days"] < -1000
    # Up to a day ahead (the tolerance DIV-08 and the start gate share) still counts as a hardening.
    soon = timeutil.iso(E.NOW + 86400 - 60)
    assert E.run("VIS-04", E.fleet([E.domain(ledger=E.ledger(last_hardened=soon))]))[0]["status"] == "pass"


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


def test_vis06_an_inventory_expiry_earlier_than_the_metadatas_counts():
    """The VIS-05 fixer copies vmguard_expires only into a domain without an expiry: one shortened in the inventory
    stayed behind the domain's later metadata date, and the expired VM passed."""
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    assert E.run("VIS-06", ev)[0]["status"] == "pass"  # metadata 2027-06-30, no inventory expiry
    ev["guests"]["web1"]["vars"]["expires"] = "2026-01-31"
    f = E.run("VIS-06", ev)[0]
    assert f["status"] == "fail" and f["message"] == "expired on 2026-01-31 (vmguard_expires of web1)"
    ev["guests"]["web1"]["vars"]["expires"] = "2028-01-01"  # later than the metadata: the metadata's date counts
    assert E.run("VIS-06", ev)[0]["message"] == "expires 2027-06-30"
    ev["guests"]["web1"]["vars"]["expires"] = "soon"
    f = E.run("VIS-06", ev)[0]
    assert f["status"] == "error" and "in vmguard_expires of web1" in f["message"]
    # A domain without metadata expiry: the inventory's alone is judged.
    d = E.domain("web1", replace={"<vmguard:expires>2027-06-30</vmguard:expires>": ""})
    ev = E.fleet([d], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    ev["guests"]["web1"]["vars"]["expires"] = "2026-01-31"
    assert E.run("VIS-06", ev)[0]["status"] == "fail"


def test_vis06_trailing_garbage_is_unparsable_not_a_date():
    f = E.run("VIS-06", E.fleet([E.domain(replace={"2027-06-30": "2099-01-01garbage"})]))[0]
    assert f["status"] == "error" and "unparsable expiry" in f["message"]
    f = E.run("VIS-06", E.fleet([E.domain(replace={"2027-06-30": "2026-01-31T00:00:00Z"})]))[0]
    assert f["status"] == "error"


IMG = "/var/lib/libvirt/images/%s"


def vis07(domains, images):
    (f,) = E.run("VIS-07", E.fleet(domains, host_ev=E.host(images=images)))
    return f


def test_vis07_orphan_images():
    imgs = [{"path": IMG % "web1.qcow2", "mode": 0o600, "referenced": True}]
    assert vis07([E.domain()], imgs)["status"] == "pass"
    imgs.append({"path": IMG % "old.qcow2", "mode": 0o600, "referenced": False})
    f = vis07([E.domain()], imgs)
    assert f["status"] == "fail" and f["evidence"]["images"] == [IMG % "old.qcow2"]
    assert vis07([E.domain()], [])["status"] == "not_applicable"
    (f,) = E.run("VIS-07", E.fleet([E.domain()], host_ev=E.host(images=None)))
    assert f["status"] == "error"


BACKED = ("<source file='/var/lib/libvirt/images/{0}.qcow2'/>",
          "<source file='/var/lib/libvirt/images/{0}.qcow2'/><backingStore type='file'><format type='qcow2'/>"
          "<source file='/var/lib/libvirt/images/golden.qcow2'/><backingStore/></backingStore>")


def test_vis07_base_images_in_backing_chains_are_not_orphans():
    web = E.domain("web1", replace={BACKED[0].format("web1"): BACKED[1].format("web1")})
    assert web["disks"][0]["backing"] == [IMG % "golden.qcow2"]
    # The collector did not mark it (an older evidence without `referenced`): the chain still counts.
    imgs = [{"path": IMG % "web1.qcow2", "mode": 0o600}, {"path": IMG % "golden.qcow2", "mode": 0o600}]
    assert vis07([web], imgs)["status"] == "pass"
    # Without the chain in the XML, the collector's `referenced` (from qemu-img's chain) counts.
    plain = E.domain("web1")
    assert vis07([plain], [imgs[0], dict(imgs[1], referenced=True)])["status"] == "pass"
    f = vis07([plain], [imgs[0], dict(imgs[1], referenced=False)])
    assert f["status"] == "fail" and f["evidence"]["images"] == [IMG % "golden.qcow2"]
    # A non-normalised path in the XML still names the same file.
    odd = E.domain("web1", replace={IMG % "web1.qcow2": "/var/lib/libvirt//images/./web1.qcow2"})
    assert vis07([odd], imgs[:1])["status"] == "pass"


def test_vis03_running_domain_without_pid_and_no_process_seen_is_an_error():
    """libvirt gave no pid and no QEMU process has the domain's name or UUID: the process list does not show a
    process that runs (hidepid, another PID namespace), so it cannot prove there is no unknown one."""
    web = E.domain("web1", pid=None)
    f = vis03([web], [])
    assert f["status"] == "error" and "no QEMU process seen for running domain(s) web1" in f["message"]
    assert f["evidence"]["missing"] == ["web1"]
    f = vis03([web, E.domain("mail1", "mail", pid=None)], [E.qemu_process(4100, "web1", web["uuid"])])
    assert f["status"] == "error" and f["evidence"]["missing"] == ["mail1"]
    # Its process seen by UUID alone (no -name) still ties it; a shut-off domain needs no process.
    f = vis03([web, E.domain("mail1", "mail", state="shutoff")], [E.qemu_process(4100, None, web["uuid"])])
    assert f["status"] == "pass" and "matched by name" in f["message"]
    # An unrelated process does not stand in for the domain's.
    f = vis03([web], [E.qemu_process(4111, "hidden")])
    assert f["status"] == "error" and "web1" in f["message"]


def test_vis03_process_of_a_domain_that_could_not_be_read_is_not_called_unknown():
    unreadable = {"name": "db1", "error": "domain vanished while it was read"}
    web = E.domain("web1", pid=4100)
    f = vis03([web, unreadable], [E.qemu_process(4100, "web1", web["uuid"]), E.qemu_process(4200, "db1")])
    assert f["status"] == "error" and "pid 4200 (db1)" in f["message"] and "could not be read" in f["message"]
    # A process of no listed domain is still unknown.
    f = vis03([web, unreadable], [E.qemu_process(4100, "web1"), E.qemu_process(4200, "db1"), E.qemu_process(4300, "x")])
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 4300 (x)"]


def test_vis_fields_not_collected_are_errors_never_verdicts():
    d = E.domain(ledger=E.LEDGER)
    for rule in ("VIS-04", "VIS-05", "VIS-06"):
        assert E.run(rule, E.fleet([d]))[0]["status"] == "pass", rule
    for rule, key in (("VIS-04", "ledger"), ("VIS-05", "metadata"), ("VIS-06", "metadata")):
        (f,) = E.run(rule, E.fleet([E.without(d, key)]))
        assert f["status"] == "error" and f["message"].startswith("cannot evaluate: ") and "not collected" in f["message"], rule
    # A hypervisor record without its domain list: VIS-03 and VIS-07 cannot judge.
    for rule in ("VIS-03", "VIS-07"):
        ev = E.fleet([d], host_ev=E.host(images=[{"path": IMG % "web1.qcow2", "mode": 0o600}]))
        del ev["hypervisors"][E.HV]["domains"]
        (f,) = E.run(rule, ev)
        assert f["status"] == "error" and f["message"] == "cannot evaluate: domains not collected", rule
    (f,) = E.run("VIS-03", E.fleet([d], host_ev=E.without(E.host(), "qemu_processes")))
    assert f["status"] == "error" and f["message"] == "cannot evaluate: QEMU processes not collected"


def test_vis07_disks_or_backing_not_collected_or_unreadable_domain_is_an_error():
    imgs = [{"path": IMG % "web1.qcow2", "mode": 0o600}, {"path": IMG % "mail1.qcow2", "mode": 0o600}]
    web, mail = E.domain("web1"), E.domain("mail1", "mail")
    assert vis07([web, mail], imgs)["status"] == "pass"
    f = vis07([web, E.without(mail, "disks")], imgs)
    assert f["status"] == "error" and f["message"] == "cannot evaluate: disks of domain mail1 not collected"
    del mail["disks"][0]["backing"]
    f = vis07([web, mail], imgs)
    assert f["status"] == "error" and "backing chain of vda not collected" in f["message"]
    # mail1's XML could not be read: its image is not proven orphaned.
    f = vis07([web, {"name": "mail1", "error": "malformed domain XML: ..."}], imgs)
    assert f["status"] == "error" and "mail1 could not be read" in f["message"] and f["evidence"]["images"] == [IMG % "mail1.qcow2"]
    assert vis07([web, {"name": "mail1", "error": "malformed domain XML: ..."}], imgs[:1])["status"] == "pass"


def test_vis07_a_disk_only_in_the_persistent_definition_is_referenced():
    web = E.domain("web1")
    web["inactive"] = E.domain("web1", state="shutoff",
                               extra="<disk type='file' device='disk'><source file='%s'/><target dev='vdb' bus='virtio'/></disk>"
                               % (IMG % "data.qcow2"))
    imgs = [{"path": IMG % "web1.qcow2", "mode": 0o600}, {"path": IMG % "data.qcow2", "mode": 0o600}]
    assert vis07([web], imgs)["status"] == "pass"
    web["inactive"] = None
    assert vis07([web], imgs)["status"] == "fail"


def test_vis03_names_what_told_an_unknown_process_is_a_qemu():
    kvm = dict(E.qemu_process(4242, "rogue", uid=0, user="root"), exe="/usr/bin/qemu-system-x86_64", matched_by="exe")
    f = vis03([], [kvm])
    assert f["status"] == "fail" and f["evidence"]["processes"] == ["pid 4242 (rogue) [/usr/bin/qemu-system-x86_64]"]
    by_argv = dict(kvm, exe=None, matched_by="argv0")
    assert vis03([], [by_argv])["evidence"]["processes"] == [
        "pid 4242 (rogue) [by argv[0]: its executable is unreadable]"]
