"""vSphere checks (subject kind vcenter_vm): pass and fail for every rule on evidence recorded from the
test vCenter (tests/fixtures/vsphere/vcsim-seeded.json: vsphere_facts after tools/vcsim/vcsim.py seed),
changed one thing at a time; the engine's vCenter subjects, pending power cycle and error paths."""

import copy
import json
import os

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, vsphere

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "vsphere", "vcsim-seeded.json")
VC = "vc1"
VM0, VM1, VM2, VM3 = ("DC0_C0_RP0_VM%d" % i for i in range(4))


def recorded():
    with open(FIXTURE) as f:
        ev = json.load(f)
    ev["inventory"] = {VM0: {}, VM1: {}, VM2: {}}
    return ev


def clean():
    """The recorded evidence with every seeded violation (and the simulator's host CD passthrough) removed."""
    ev = recorded()
    for vm in ev["vms"]:
        vm["extra_config"] = {"govcsim": "TRUE", "RemoteDisplay.maxConnections": "1"}
        vm["devices"] = [dict(d, connected=False, start_connected=False) for d in vm["devices"]]
        vm["snapshots"] = []
    ev["vms"][3]["nics"][0]["mac"] = "00:0c:29:aa:bb:cc"
    ev["inventory"][VM3] = {}
    return ev


def vm(ev, name):
    (v,) = [x for x in ev["vms"] if x["name"] == name]
    return v


def run(rule, ev, params=None, now=None, guests=None, vcenters=None):
    pol = policy.load_policy({"params": params or {}})
    evidence = {"vcenters": vcenters if vcenters is not None else {VC: ev}, "guests": guests or {}}
    return dict((f["subject"]["id"], f) for f in engine.evaluate(pol, evidence, now=now, only={rule})
                if f["subject"]["kind"] == "vcenter_vm")


def status(rule, ev, name, **kw):
    return run(rule, ev, **kw)["%s/%s" % (VC, name)]


def test_every_vsphere_rule_of_the_catalogue_has_a_vcenter_check():
    want = {"LEAK-03", "ISO-08", "ISO-11", "LEAK-02", "RB-02", "RB-03", "RB-12", "LEAK-05", "DIV-05", "VIS-01"}
    assert set(r for r in RULES if "vcenter_vm" in RULES[r].checks) == want


def test_clean_recorded_evidence_passes_every_rule():
    for rid in ("LEAK-03", "ISO-08", "ISO-11", "LEAK-02", "RB-02", "RB-03", "RB-12", "DIV-05", "VIS-01"):
        found = run(rid, clean())
        assert sorted(found) == ["%s/%s" % (VC, n) for n in (VM0, VM1, VM2, VM3)]
        assert set(f["status"] for f in found.values()) == {"pass"}, (rid, found)


def test_leak03_seeded_copy_paste_fails_and_absent_keys_pass():
    f = status("LEAK-03", recorded(), VM0)
    assert f["status"] == "fail"
    assert f["evidence"]["settings"] == {"isolation.tools.copy.disable": "FALSE", "isolation.tools.paste.disable": "FALSE"}
    assert f["evidence"]["expected"] == {"isolation.tools.copy.disable": "TRUE", "isolation.tools.paste.disable": "TRUE"}
    assert "isolation.tools.copy/paste/dnd.disable" in f["remediation"]  # the vSphere text, not the libvirt one
    assert status("LEAK-03", recorded(), VM1)["status"] == "pass"  # absent = the safe default
    ev = clean()
    vm(ev, VM1)["extra_config"]["ISOLATION.TOOLS.DND.DISABLE"] = "false"  # keys and values are case-insensitive
    assert status("LEAK-03", ev, VM1)["status"] == "fail"
    vm(ev, VM1)["extra_config"]["ISOLATION.TOOLS.DND.DISABLE"] = "True"
    assert status("LEAK-03", ev, VM1)["status"] == "pass"


def test_leak02_requires_max_connections_one():
    assert status("LEAK-02", recorded(), VM1)["status"] == "fail"  # the simulator's VMs leave it unset
    ev = clean()
    assert status("LEAK-02", ev, VM1)["status"] == "pass"
    vm(ev, VM1)["extra_config"]["RemoteDisplay.maxConnections"] = "2"
    assert status("LEAK-02", ev, VM1)["status"] == "fail"
    ev = clean()
    vm(ev, VM1)["extra_config"]["RemoteDisplay.vnc.enabled"] = "TRUE"
    f = status("LEAK-02", ev, VM1)
    assert f["status"] == "fail" and f["evidence"]["expected"] == {"RemoteDisplay.vnc.enabled": "FALSE"}


def test_iso11_defaults_or_absent():
    ev = clean()
    assert status("ISO-11", ev, VM2)["status"] == "pass"
    for key, bad in (("isolation.tools.diskShrink.disable", "FALSE"), ("isolation.device.connectable.disable", "false"),
                     ("tools.setInfo.sizeLimit", "4194304"), ("log.keepOld", "1000"), ("log.rotateSize", "0")):
        ev = clean()
        vm(ev, VM2)["extra_config"][key] = bad
        f = status("ISO-11", ev, VM2)
        assert f["status"] == "fail" and list(f["evidence"]["settings"]) == [key], key
    ev = clean()
    vm(ev, VM2)["extra_config"].update({"tools.setInfo.sizeLimit": "1048576", "log.keepOld": "10",
                                        "isolation.tools.diskWiper.disable": "TRUE"})
    assert status("ISO-11", ev, VM2)["status"] == "pass"


def test_pending_power_cycle_stays_fail_until_the_vm_boots_again():
    ev = clean()
    v = vm(ev, VM0)
    v["extra_config"][vsphere.PENDING_KEY] = "%f LEAK-02,LEAK-03" % (v["boot_time"] + 60)
    f = status("LEAK-03", ev, VM0)
    assert f["status"] == "fail" and f["pending_restart"] is True and "power cycle pending" in f["message"]
    assert status("ISO-11", ev, VM0)["status"] == "pass"  # not named by the marker
    v["boot_time"] += 120  # powered off and on after the change
    f = status("LEAK-03", ev, VM0)
    assert f["status"] == "pass" and "pending_restart" not in f
    v["boot_time"] -= 120
    v["power_state"] = "poweredOff"  # a VM that is off takes the settings at its next start
    assert status("LEAK-02", ev, VM0)["status"] == "pass"
    v["extra_config"][vsphere.PENDING_KEY] = "yesterday"
    assert status("LEAK-02", ev, VM0)["status"] == "error"


def test_iso08_connected_devices():
    f = status("ISO-08", recorded(), VM2)
    assert f["status"] == "fail"
    assert sorted(d["kind"] for d in f["evidence"]["devices"]) == ["cdrom", "serial"]
    ev = clean()
    assert status("ISO-08", ev, VM2)["status"] == "pass"
    serial = [d for d in vm(ev, VM2)["devices"] if d["kind"] == "serial"][0]
    serial["start_connected"] = True  # connects at the next power on
    assert status("ISO-08", ev, VM2)["status"] == "fail"
    assert status("ISO-08", ev, VM2, params={"isolation": {"allowed_hostdevs": ["%s/%s" % (VM2, serial["label"])]}})["status"] == "pass"
    ev = clean()
    cd = [d for d in vm(ev, VM1)["devices"] if d["kind"] == "cdrom"][0]
    cd.update(connected=True, backing="IsoBackingInfo: [LocalDS_0] debian.iso")  # an ISO image is no host device
    assert status("ISO-08", ev, VM1)["status"] == "pass"
    vm(ev, VM1)["devices"].append({"key": 13000, "kind": "pci_passthrough", "label": "PCI device 0", "connected": True,
                                   "start_connected": True, "backing": "VirtualPCIPassthroughDeviceBackingInfo: 0000:3b:00.0"})
    assert status("ISO-08", ev, VM1)["status"] == "fail"


def test_rb02_rb03_snapshot_age_and_count_on_recorded_times():
    ev = recorded()
    snap = vm(ev, VM1)["snapshots"][0]
    created = snap["creation_time"]
    assert status("RB-02", ev, VM1, now=created + 3600)["status"] == "pass"
    f = status("RB-02", ev, VM1, now=created + 100 * 3600)
    assert f["status"] == "fail" and f["evidence"]["prunable"] == ["before-upgrade"] and "100.0h" in f["message"]
    f = status("RB-02", ev, VM1, now=created + 100 * 3600, params={"rollback": {"pinned_snapshots": [VM1 + "/before-*"]}})
    assert f["status"] == "fail" and f["evidence"]["prunable"] == []
    assert status("RB-03", ev, VM1)["status"] == "pass"
    f = status("RB-03", ev, VM1, params={"rollback": {"max_snapshots": 0}})
    assert f["status"] == "fail" and f["evidence"]["prunable"] == ["before-upgrade"]
    snap["creation_time"] = None
    assert status("RB-02", ev, VM1)["status"] == "error"


def test_rb02_a_snapshot_from_the_future_is_an_error():
    ev = recorded()
    created = vm(ev, VM1)["snapshots"][0]["creation_time"]
    f = status("RB-02", ev, VM1, now=created - 365 * 86400)  # the ESXi clock was a year ahead when it was taken
    assert f["status"] == "error" and "creation time in the future" in f["message"]
    assert status("RB-02", ev, VM1, now=created - 3)["status"] == "pass"  # a few seconds of skew still count


def test_rb12_independent_nonpersistent_disk():
    ev = clean()
    assert status("RB-12", ev, VM0)["status"] == "pass"
    vm(ev, VM0)["disks"][0]["mode"] = "independent_nonpersistent"
    f = status("RB-12", ev, VM0)
    assert f["status"] == "fail" and "independent_nonpersistent" in f["message"]
    vm(ev, VM0)["disks"] = []
    assert status("RB-12", ev, VM0)["status"] == "not_applicable"


def test_leak05_confidential_vms_need_encryption():
    ev = clean()
    assert status("LEAK-05", ev, VM1)["status"] == "not_applicable"
    ev["inventory"][VM1] = {"data_class": "confidential"}
    f = status("LEAK-05", ev, VM1)
    assert f["status"] == "fail" and "not encrypted" in f["message"]
    vm(ev, VM1)["key_id"] = {"key_id": "8e2c0f7a-4e5a-4bb2-9b0b-2d1f5b5e6a10", "provider": "kms-1"}
    for d in vm(ev, VM1)["disks"]:
        d["key_id"] = {"key_id": "5d1e9a2b-0c3f-4e7a-8b6d-1f2e3a4b5c6d", "provider": "kms-1"}
    assert status("LEAK-05", ev, VM1)["status"] == "pass"
    ev = clean()
    vm(ev, VM2)["custom_values"] = {vsphere.DATA_CLASS_ATTRIBUTE: "secret"}  # a custom attribute declares it too
    assert status("LEAK-05", ev, VM2)["status"] == "fail"


def test_div05_seeded_duplicate_mac_and_instance_uuid_across_vcenters():
    found = run("DIV-05", recorded())
    assert found["%s/%s" % (VC, VM2)]["status"] == "fail" and found["%s/%s" % (VC, VM3)]["status"] == "fail"
    assert found["%s/%s" % (VC, VM0)]["status"] == "pass"
    assert "with %s/%s" % (VC, VM3) in found["%s/%s" % (VC, VM2)]["message"]
    a, b = clean(), clean()
    b["vms"] = [copy.deepcopy(vm(a, VM0))]
    b["vms"][0]["nics"][0]["mac"] = "00:0c:29:00:00:01"
    found = run("DIV-05", None, vcenters={"vc1": a, "vc2": b})
    assert found["vc2/%s" % VM0]["status"] == "fail" and "instance UUID with vc1/%s" % VM0 in found["vc2/%s" % VM0]["message"]


def test_vis01_inventory_from_vcenter_vars_or_guests():
    found = run("VIS-01", recorded())
    assert found["%s/%s" % (VC, VM3)]["status"] == "fail" and found["%s/%s" % (VC, VM0)]["status"] == "pass"
    ev = recorded()
    ev["inventory"] = [VM0, VM1, VM2]  # a plain list of names is accepted
    guests = {"mailvm": {"vars": {"hypervisor": VC, "domain": VM3}, "facts": None, "error": None}}
    found = run("VIS-01", ev, guests=guests)
    assert found["%s/%s" % (VC, VM3)]["status"] == "pass" and "mailvm" in found["%s/%s" % (VC, VM3)]["message"]
    vm(ev, VM3)["template"] = True
    assert run("VIS-01", recorded() | {"vms": ev["vms"]})["%s/%s" % (VC, VM3)]["status"] == "not_applicable"


def test_unreachable_vcenter_and_unreadable_vm_are_errors():
    found = run("LEAK-02", None, vcenters={VC: {"error": "cannot connect to vc1:443: timed out", "vms": []}})
    assert list(found) == ["%s/*" % VC] and found["%s/*" % VC]["status"] == "error"
    ev = clean()
    vm(ev, VM1)["error"] = "no configuration readable (orphaned or inaccessible VM)"
    f = status("LEAK-03", ev, VM1)
    assert f["status"] == "error" and "orphaned" in f["message"]


def test_settings_targets_cover_every_checked_key():
    for rid, keys in vsphere.SETTINGS.items():
        for key, good, _absent in keys:
            assert vsphere.TARGET[key].lower() in good, key


def plan(ev, params=None, rules=None, mode="enforce", exclude=()):
    pol = policy.load_policy({"mode": mode, "params": params or {}, "rules": rules or {}})
    findings = engine.evaluate(pol, {"vcenters": {VC: ev}})
    return vsphere.plan_vcenter(pol, findings, VC, exclude)


def test_plan_from_the_seeded_findings():
    ev = recorded()
    p = plan(ev)
    # Default modes: LEAK-02/03 enforce; ISO-08, ISO-11 and the snapshot rules are opt-in (audit).
    assert sorted(p["vms"]) == [VM0, VM1, VM2, VM3]
    assert p["vms"][VM0]["settings"] == {"RemoteDisplay.maxConnections": "1", "isolation.tools.copy.disable": "TRUE",
                                         "isolation.tools.paste.disable": "TRUE"}
    assert p["vms"][VM0]["setting_rules"] == ["LEAK-02", "LEAK-03"] and p["vms"][VM0]["devices"] == []
    assert p["vms"][VM1]["moid"] == vm(ev, VM1)["moid"] and p["vms"][VM1]["datacenter"] == "DC0"
    reasons = dict(((e["rule"], e["subject"]), e["reason"]) for e in p["not_enforced"])
    assert reasons[("ISO-08", "%s/%s" % (VC, VM2))] == "mode audit"
    assert "audit only" in reasons[("VIS-01", "%s/%s" % (VC, VM3))] and "audit only" in reasons[("DIV-05", "%s/%s" % (VC, VM2))]
    p = plan(ev, rules={"ISO-08": {"mode": "enforce"}, "RB-02": {"mode": "enforce"}}, params={"rollback": {"max_snapshot_age_hours": 0}})
    assert [d["kind"] for d in p["vms"][VM2]["devices"]] == ["cdrom", "serial"]
    assert p["vms"][VM1]["snapshots"] == []  # prune_snapshots off: reported, never deleted
    assert "prune_snapshots is off" in dict(((e["rule"], e["subject"]), e["reason"]) for e in p["not_enforced"])[("RB-02", "%s/%s" % (VC, VM1))]
    p = plan(ev, rules={"RB-02": {"mode": "enforce"}}, params={"rollback": {"max_snapshot_age_hours": 0, "prune_snapshots": True}})
    assert p["vms"][VM1]["snapshots"] == ["before-upgrade"]
    # the snapshot the audit judged, by its moid: enforcement deletes that one, not one re-created under its name
    moid = [sn["moid"] for sn in vm(ev, VM1)["snapshots"] if sn["name"] == "before-upgrade"]
    assert len(moid) == 1 and moid[0] and p["vms"][VM1]["snapshot_ids"] == {"before-upgrade": moid[0]}
    assert plan(ev, mode="audit")["vms"] == {}
    assert VM0 not in plan(ev, exclude=["*_VM0"])["vms"]


def test_plan_lists_pending_power_cycles_and_the_marker_accumulates_rules():
    ev = clean()
    v = vm(ev, VM0)
    v["extra_config"][vsphere.PENDING_KEY] = "%d LEAK-03" % (v["boot_time"] + 60)
    p = plan(ev)
    assert p["vms"] == {} and p["pending_power_cycle"] == [VM0] and p["moids"][VM0]["moid"] == v["moid"]
    assert vsphere.pending_marker("", ["LEAK-02"], 1795000000.7) == "1795000000 LEAK-02"
    assert vsphere.pending_marker("1794000000 LEAK-03,ISO-11", ["LEAK-02"], 1795000000) == "1795000000 ISO-11,LEAK-02,LEAK-03"


def test_plan_of_an_unreachable_vcenter_changes_nothing():
    pol = policy.load_policy({})
    findings = engine.evaluate(pol, {"vcenters": {VC: {"error": "cannot connect", "vms": []}}})
    p = vsphere.plan_vcenter(pol, findings, VC)
    assert p["vms"] == {} and set(e["reason"] for e in p["not_enforced"]) == {"error: not evaluated"}


def test_libvirt_plan_leaves_vcenter_vms_to_the_vsphere_role():
    """The audit's own plan (audit/plan.py) names the vsphere role as the remediation of vCenter VM findings
    rather than "no remediation": the role plans them from the same findings."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit import plan
    pol = policy.load_policy({})
    evidence = {"vcenters": {VC: recorded()}, "guests": {}}
    findings = engine.evaluate(pol, evidence)
    p = plan.build_plan(pol, evidence, findings)
    vc = [e for e in p["not_enforced"] if e["subject"].startswith(VC + "/")]
    failing = [f for f in findings if f["subject"]["kind"] == "vcenter_vm" and f["status"] == "fail"]
    assert failing and len(vc) == len(failing)
    assert set(e["reason"] for e in vc if e["rule"] in ("LEAK-03", "LEAK-02")) == {plan.VSPHERE_ROLE}
    assert not any(h.startswith(VC) for h in p["hosts"])


def test_leak05_data_class_is_compared_case_insensitively():
    ev = clean()
    ev["inventory"][VM1] = {"data_class": "Confidential"}  # vmguard_vcenter_vms: was "not confidential"
    f = status("LEAK-05", ev, VM1)
    assert f["status"] == "fail" and "data class Confidential" in f["message"]
    vm(ev, VM2)["custom_values"] = {vsphere.DATA_CLASS_ATTRIBUTE: "Confidential"}  # the custom attribute too
    assert status("LEAK-05", ev, VM2)["status"] == "fail"
    vm(ev, VM2)["custom_values"] = {vsphere.DATA_CLASS_ATTRIBUTE: " SECRET "}
    assert status("LEAK-05", ev, VM2)["status"] == "fail"
    guests = {"db": {"vars": {"hypervisor": VC, "domain": VM3, "data_class": "CONFIDENTIAL"}, "facts": None, "error": None}}
    assert status("LEAK-05", ev, VM3, guests=guests)["status"] == "fail"
    # Pass and not applicable still hold.
    vm(ev, VM1)["key_id"] = {"key_id": "8e2c0f7a-4e5a-4bb2-9b0b-2d1f5b5e6a10", "provider": "kms-1"}
    for d in vm(ev, VM1)["disks"]:
        d["key_id"] = {"key_id": "5d1e9a2b-0c3f-4e7a-8b6d-1f2e3a4b5c6d", "provider": "kms-1"}
    assert status("LEAK-05", ev, VM1)["status"] == "pass"
    vm(ev, VM2)["custom_values"] = {vsphere.DATA_CLASS_ATTRIBUTE: "Public"}
    f = status("LEAK-05", ev, VM2)
    assert f["status"] == "not_applicable" and f["message"] == "data class Public is not confidential"


def test_leak05_fields_not_collected_are_errors():
    ev = clean()
    ev["inventory"][VM1] = {"data_class": "confidential"}
    del vm(ev, VM1)["key_id"]  # key_id None is "not encrypted"; no key_id at all is unknown
    f = status("LEAK-05", ev, VM1)
    assert f["status"] == "error" and f["message"] == "cannot evaluate: config.keyId not collected"
    del vm(ev, VM2)["custom_values"]  # no inventory class: the custom attribute decides, and it was not read
    f = status("LEAK-05", ev, VM2)
    assert f["status"] == "error" and f["message"] == "cannot evaluate: custom attributes not collected"


COPY = "isolation.tools.copy.disable"


def test_settings_every_spelling_of_a_key_is_judged_whatever_the_order():
    """VMX keys are case-insensitive: a key in two spellings, one non-compliant, failed or passed by dict order."""
    for pairs in (((COPY, "FALSE"), ("Isolation.Tools.Copy.Disable", "TRUE")),
                  (("Isolation.Tools.Copy.Disable", "TRUE"), (COPY, "FALSE"))):
        ev = clean()
        vm(ev, VM1)["extra_config"] = dict([("RemoteDisplay.maxConnections", "1")] + list(pairs))
        assert list(vm(ev, VM1)["extra_config"])[1:] == [k for k, v in pairs]
        f = status("LEAK-03", ev, VM1)
        assert f["status"] == "fail" and f["evidence"]["settings"] == {COPY: "FALSE"}, pairs
        assert f["evidence"]["expected"] == {COPY: "TRUE"}  # the role sets exactly the spelling that is wrong
    ev = clean()
    vm(ev, VM1)["extra_config"].update({COPY: "TRUE", "ISOLATION.TOOLS.COPY.DISABLE": "0"})
    f = status("LEAK-03", ev, VM1)
    assert f["status"] == "fail" and f["evidence"]["expected"] == {"ISOLATION.TOOLS.COPY.DISABLE": "TRUE"}
    assert plan(ev)["vms"][VM1]["settings"] == {"ISOLATION.TOOLS.COPY.DISABLE": "TRUE"}
    vm(ev, VM1)["extra_config"]["ISOLATION.TOOLS.COPY.DISABLE"] = "true"
    assert status("LEAK-03", ev, VM1)["status"] == "pass"
    # A key that must be set counts in any spelling; a wrong value in any spelling fails.
    ev = clean()
    vm(ev, VM1)["extra_config"] = {"remotedisplay.maxconnections": "1"}
    assert status("LEAK-02", ev, VM1)["status"] == "pass"
    vm(ev, VM1)["extra_config"]["RemoteDisplay.MaxConnections"] = "5"
    assert status("LEAK-02", ev, VM1)["evidence"]["settings"] == {"RemoteDisplay.MaxConnections": "5"}


def test_pending_marker_in_any_spelling_counts():
    ev = clean()
    v = vm(ev, VM0)
    v["extra_config"]["VMGUARD.POWERCYCLEPENDING"] = "%f LEAK-03" % (v["boot_time"] + 60)
    v["extra_config"][vsphere.PENDING_KEY] = "%f ISO-11" % (v["boot_time"] - 60)
    f = status("LEAK-03", ev, VM0)
    assert f["status"] == "fail" and f["pending_restart"] is True
    v["extra_config"]["VMGUARD.POWERCYCLEPENDING"] = "soon"
    assert status("LEAK-03", ev, VM0)["status"] == "error"


def test_vm_fields_not_collected_are_errors_never_passes():
    """A VM record without a list vsphere_facts always sends: the rules read "no snapshot", "no device"."""
    for rule, key, what in (("LEAK-03", "extra_config", "extraConfig (advanced settings)"), ("LEAK-02", "extra_config", None),
                            ("ISO-11", "extra_config", None), ("ISO-08", "devices", "devices"),
                            ("RB-02", "snapshots", "snapshots"), ("RB-03", "snapshots", None),
                            ("RB-12", "disks", "virtual disks"), ("DIV-05", "nics", "NICs")):
        ev = clean()
        assert status(rule, ev, VM1)["status"] == "pass", rule
        del vm(ev, VM1)[key]
        f = status(rule, ev, VM1)
        assert f["status"] == "error" and f["message"].startswith("cannot evaluate: ") and "not collected" in f["message"], rule
        if what:
            assert f["message"].startswith("cannot evaluate: %s" % what), f["message"]
    # DIV-05: another VM's NICs missing makes uniqueness unprovable for every VM; so does an unreadable VM (its
    # identity is unknown: it may be the clone), and an unreachable vCenter (all of its VMs).
    ev = clean()
    del vm(ev, VM2)["nics"]
    f = status("DIV-05", ev, VM1)
    assert f["status"] == "error" and f["message"] == "cannot evaluate: NICs of %s/%s not collected" % (VC, VM2)
    vm(ev, VM2)["error"] = "no configuration readable (orphaned or inaccessible VM)"
    f = status("DIV-05", ev, VM1)
    assert f["status"] == "error" and f["message"].endswith("(%s/%s): not proven unique" % (VC, VM2)), f["message"]
    ev = clean()
    assert status("DIV-05", ev, VM1)["status"] == "pass"
    f = status("DIV-05", ev, VM1, vcenters={VC: ev, "vc-down": {"error": "cannot connect", "vms": None}})
    assert f["status"] == "error" and f["message"].endswith("(vc-down/*): not proven unique"), f["message"]
    # RB-12 with no virtual disk at all is still not applicable (nothing to compare).
    ev = clean()
    vm(ev, VM1)["disks"] = []
    assert status("RB-12", ev, VM1)["status"] == "not_applicable"


def two_webs(ev):
    """Two VMs named 'web' (vCenter allows one name in several folders or datacenters): vm-100 in DC0, vm-200 in
    DC1, one MAC; vm-200 has copy enabled and a serial port connected, vm-100 an old snapshot."""
    a = copy.deepcopy(vm(ev, VM0))
    a.update(name="web", moid="vm-100", datacenter="DC0", instance_uuid="11111111-0000-0000-0000-000000000001")
    a["nics"] = [{"key": 4000, "label": "Network adapter 1", "mac": "00:50:56:00:00:01", "address_type": "manual"}]
    a["devices"] = [{"key": 9000, "kind": "serial", "label": "Serial port 1", "connected": False, "start_connected": False,
                     "backing": "URIBackingInfo: telnet://:1"}]
    b = copy.deepcopy(a)
    b.update(moid="vm-200", datacenter="DC1", instance_uuid="22222222-0000-0000-0000-000000000002")
    b["extra_config"]["isolation.tools.copy.disable"] = "FALSE"
    b["devices"][0].update(connected=True, start_connected=True)
    a["snapshots"] = [{"name": "weekly", "id": 1, "moid": "snapshot-1", "creation_time": 1795786800.0 - 200 * 3600,
                       "parent": None, "current": False, "memory": False}]
    b["snapshots"] = [{"name": "weekly", "id": 1, "moid": "snapshot-2", "creation_time": 1795786800.0 - 2 * 3600,
                       "parent": None, "current": False, "memory": False}]
    ev["vms"] += [a, b]
    return ev


def test_a_repeated_vm_name_gets_one_subject_per_vm():
    ev = two_webs(clean())
    ev["inventory"].update({"web#vm-100": {}, "web#vm-200": {}})
    found = run("LEAK-03", ev)
    assert found["vc1/web#vm-200"]["status"] == "fail" and found["vc1/web#vm-100"]["status"] == "pass"
    assert "vc1/web" not in found and "%s/%s" % (VC, VM0) in found  # a unique name keeps its plain id
    found = run("DIV-05", ev)  # one MAC on two VMs of one name: both fail, each naming the other
    assert found["vc1/web#vm-100"]["status"] == "fail" and found["vc1/web#vm-200"]["status"] == "fail"
    assert found["vc1/web#vm-100"]["evidence"]["macs"] == {"00:50:56:00:00:01": ["vc1/web#vm-200"]}
    found = run("VIS-01", ev)
    assert found["vc1/web#vm-100"]["status"] == "pass" and found["vc1/web#vm-200"]["status"] == "pass"


def test_an_inventory_entry_naming_a_repeated_name_is_ambiguous():
    ev = two_webs(clean())
    ev["inventory"]["web"] = {}
    found = run("VIS-01", ev)
    for moid in ("vm-100", "vm-200"):
        f = found["vc1/web#%s" % moid]
        assert f["status"] == "error" and "ambiguous" in f["message"] and "web#%s" % moid in f["message"]


def test_plan_keeps_two_vms_of_one_name_apart():
    ev = two_webs(clean())
    ev["inventory"].update({"web#vm-100": {}, "web#vm-200": {}})
    pol = policy.load_policy({"params": {"rollback": {"prune_snapshots": True}},
                              "rules": {"RB-02": {"mode": "enforce"}, "ISO-08": {"mode": "enforce"}}})
    findings = engine.evaluate(pol, {"vcenters": {VC: ev}}, now=1795786800.0)
    p = vsphere.plan_vcenter(pol, findings, VC)
    assert p["vms"]["web#vm-100"]["moid"] == "vm-100" and p["vms"]["web#vm-100"]["rules"] == ["RB-02"]
    assert p["vms"]["web#vm-100"]["snapshots"] == ["weekly"]
    assert p["vms"]["web#vm-200"]["moid"] == "vm-200" and p["vms"]["web#vm-200"]["snapshots"] == []
    assert p["vms"]["web#vm-200"]["rules"] == ["ISO-08", "LEAK-03"] and "web" not in p["vms"]
    assert p["moids"]["web#vm-200"] == {"moid": "vm-200", "datacenter": "DC1"}
    assert vsphere.plan_vcenter(pol, findings, VC, ["web"])["vms"].keys() == p["vms"].keys() - {"web#vm-100", "web#vm-200"}


def test_plan_never_merges_findings_of_two_moids_under_one_subject():
    """An audit with the old ids (<vc>/<name> for both VMs): neither VM is planned nor power cycled."""
    ev = two_webs(clean())
    pol = policy.load_policy({"params": {"rollback": {"prune_snapshots": True}},
                              "rules": {"RB-02": {"mode": "enforce"}, "ISO-08": {"mode": "enforce"}}})
    findings = engine.evaluate(pol, {"vcenters": {VC: ev}}, now=1795786800.0)
    for f in findings:
        f["subject"]["id"] = f["subject"]["id"].split("#")[0]
    p = vsphere.plan_vcenter(pol, findings, VC)
    assert "web" not in p["vms"] and "web" not in p["moids"]
    reasons = [e for e in p["not_enforced"] if e["subject"] == "vc1/web" and e["reason"].startswith("ambiguous")]
    assert sorted(e["rule"] for e in reasons) == ["ISO-08", "LEAK-03", "RB-02"]
    assert "vm-100, vm-200" in reasons[0]["reason"]


def test_leak05_an_encrypted_vm_home_with_a_plaintext_disk_fails():
    """A VM Home encryption policy or a vTPM sets config.keyId; the VMDKs stay plaintext unless each has its key."""
    ev = clean()
    ev["inventory"][VM1] = {"data_class": "confidential"}
    vm(ev, VM1)["key_id"] = {"key_id": "8e2c0f7a-4e5a-4bb2-9b0b-2d1f5b5e6a10", "provider": "kms-1"}
    f = status("LEAK-05", ev, VM1)
    assert f["status"] == "fail" and "disk(s) not encrypted" in f["message"]
    assert f["evidence"]["plaintext_disks"] == [d["label"] for d in vm(ev, VM1)["disks"]]
    del vm(ev, VM1)["disks"][0]["key_id"]  # evidence without the disk's key: unknown, never a pass
    f = status("LEAK-05", ev, VM1)
    assert f["status"] == "error" and "backing.keyId" in f["message"] and "not collected" in f["message"]


def test_plan_leaves_templates_out():
    """vCenter refuses ReconfigVM_Task on a template: its findings are not_enforced with the reason."""
    ev = recorded()
    vm(ev, VM0)["template"] = True
    p = plan(ev)
    assert VM0 not in p["vms"] and VM1 in p["vms"]
    reasons = dict(((e["rule"], e["subject"]), e["reason"]) for e in p["not_enforced"])
    assert reasons[("LEAK-03", "%s/%s" % (VC, VM0))] == "template: convert it to a VM to change it"
