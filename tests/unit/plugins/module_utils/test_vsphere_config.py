"""remediation/vsphere_config.py, the decisions of vsphere_enforce (no vCenter): which settings change, the
power-cycle marker (the filter's value), which devices and snapshots, and the plan entries it refuses.
The vCenter side runs against the simulator in tests/integration/test_vsphere_enforce.py."""

import datetime

import pytest

from ansible_collections.vmguard.hardening.plugins.filter import vsphere as vsphere_filter
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import vsphere as rules
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import vsphere_config as vc

NOW = 1767225600.0


class _SI(object):
    _stub = None


class _Session(vc.Session):
    """Session whose reconfigurations are counted, never sent."""

    def _reconfigure(self, vm, extra, specs):
        self.calls["reconfigurations"] += 1


def plan_entry(**kw):
    step = {"moid": "vm-42", "datacenter": "DC0", "power_state": "poweredOn", "marker": None,
            "settings": {"isolation.tools.copy.disable": "TRUE", "RemoteDisplay.maxConnections": "1"},
            "setting_rules": ["LEAK-02", "LEAK-03"], "devices": [{"key": 9000, "kind": "serial", "label": "Serial port 1"}],
            "snapshots": ["before-upgrade"], "rules": ["ISO-08", "LEAK-02", "LEAK-03", "RB-02"]}
    step.update(kw)
    return step


def test_the_role_plan_entry_is_taken_as_planned():
    steps, errors = vc.check_plan({"web1": plan_entry()})
    assert errors == {}
    assert steps == {"web1": {"moid": "vm-42", "settings": {"isolation.tools.copy.disable": "TRUE", "RemoteDisplay.maxConnections": "1"},
                              "devices": [9000], "labels": {9000: "Serial port 1"}, "snapshots": ["before-upgrade"],
                              "snapshot_ids": {}}}


def test_the_plan_builder_output_is_accepted_whole():
    """The shape plan_vcenter returns is what the module takes (nothing to reshape in the role)."""
    findings = [{"rule": "LEAK-03", "status": "fail", "subject": {"kind": "vcenter_vm", "id": "vc/web1"},
                 "evidence": {"moid": "vm-7", "datacenter": "DC0", "power_state": "poweredOn", "marker": None,
                              "expected": {"isolation.tools.copy.disable": "TRUE"}}}]
    pol = {"mode": "enforce", "params": {"rollback": {"prune_snapshots": False}}, "rules": {"LEAK-03": {"mode": "enforce"}}}
    plan = rules.plan_vcenter(pol, findings, "vc")
    steps, errors = vc.check_plan(plan["vms"])
    assert errors == {} and steps["web1"]["moid"] == "vm-7" and steps["web1"]["settings"] == {"isolation.tools.copy.disable": "TRUE"}


@pytest.mark.parametrize("entry, message", [
    ({"settings": {}}, "vms.bad.moid is missing"),
    (plan_entry(moid=" "), "vms.bad.moid is missing"),
    (plan_entry(settings={"guestinfo.userdata": "x"}), "vms.bad.settings: guestinfo.userdata is not an advanced setting of the vSphere rules"),
    (plan_entry(settings={"RemoteDisplay.vnc.password": "x"}), "RemoteDisplay.vnc.password is not an advanced setting"),
    (plan_entry(settings={"log.keepOld": None}), "vms.bad.settings.log.keepOld must be a string value"),
    (plan_entry(devices=[{"key": "serial"}]), "vms.bad.devices[0].key must be an integer device key"),
    (plan_entry(snapshots=["", "x"]), "vms.bad.snapshots must be a list of non-empty strings"),
    ("vm-42", "vms.bad must be a mapping"),
])
def test_an_entry_that_cannot_be_carried_out_is_that_vms_error_only(entry, message):
    steps, errors = vc.check_plan({"bad": entry, "good": plan_entry(moid="vm-1")})
    assert message in errors["bad"]
    assert list(steps) == ["good"]


def test_one_moid_planned_for_two_vms_is_an_error_for_both():
    steps, errors = vc.check_plan({"a": plan_entry(), "b": plan_entry(), "c": plan_entry(moid="vm-3")})
    assert list(steps) == ["c"]
    assert errors["a"] == errors["b"] == "moid vm-42 is planned for several VMs (a, b)"
    with pytest.raises(ValueError, match="vms must be the plan's mapping"):
        vc.check_plan(["vm-42"])


def test_settings_change_only_when_not_at_their_value():
    planned = {"isolation.tools.copy.disable": "TRUE", "isolation.tools.paste.disable": "TRUE", "RemoteDisplay.maxConnections": "1"}
    current = {"isolation.tools.copy.disable": "FALSE", "isolation.tools.paste.disable": " true ", "guestinfo.userdata": "secret"}
    assert vc.setting_changes(planned, current) == {"isolation.tools.copy.disable": ("FALSE", "TRUE"),
                                                    "RemoteDisplay.maxConnections": (None, "1")}
    done = {"isolation.tools.copy.disable": "TRUE", "isolation.tools.paste.disable": "TRUE", "RemoteDisplay.maxConnections": "1"}
    assert vc.setting_changes(planned, done) == {}


def test_marker_names_the_rules_whose_settings_changed_and_keeps_the_old_ones():
    changes = {"isolation.tools.copy.disable": ("FALSE", "TRUE"), "RemoteDisplay.maxConnections": (None, "1")}
    assert vc.marker_rules(changes) == ["LEAK-02", "LEAK-03"]
    extra = {"vmguard.powerCyclePending": "1700000000 ISO-11"}
    marker = vc.new_marker("poweredOn", changes, extra, NOW)
    assert marker == "1767225600 ISO-11,LEAK-02,LEAK-03"
    # exactly what the role's filter computes from the same current value and rules
    assert marker.split(" ", 1)[1] == vsphere_filter.vsphere_pending_marker("1700000000 ISO-11", ["LEAK-02", "LEAK-03"]).split(" ", 1)[1]
    assert marker == rules.pending_marker("1700000000 ISO-11", ["LEAK-02", "LEAK-03"], NOW)


def test_marker_drops_the_old_rules_once_the_vm_booted_after_them():
    """Marker '1000 LEAK-03', VM booted at 2000 (LEAK-03 in effect), ISO-11 changed at 3000: LEAK-03 is no longer
    pending, so it is not carried under the new time (it would fail 'power cycle pending' again)."""
    changes = {"log.keepOld": ("20", "10")}
    extra = {"vmguard.powerCyclePending": "1000 LEAK-03"}
    assert vc.new_marker("poweredOn", changes, extra, 3000, boot_time=2000) == "3000 ISO-11"
    assert vc.new_marker("poweredOn", changes, extra, 3000, boot_time=500) == "3000 ISO-11,LEAK-03"  # not booted since
    assert vc.new_marker("poweredOn", changes, extra, 3000) == "3000 ISO-11,LEAK-03"  # boot time unknown: kept
    vm = {"extra_config": {"vmguard.powerCyclePending": "3000 ISO-11"}, "power_state": "poweredOn", "boot_time": 2000}
    assert not rules.pending_power_cycle("LEAK-03", vm) and rules.pending_power_cycle("ISO-11", vm)
    vim = pytest.importorskip("pyVmomi").vim
    session = _Session(_SI())
    boot = datetime.datetime.fromtimestamp(2000, tz=datetime.timezone.utc)
    res = session.enforce_vm("web1", vc.check_step("web1", plan_entry(settings={"log.keepOld": "10"}, devices=[], snapshots=[])),
                             {"name": "web1", "config.extraConfig": [vim.option.OptionValue(key=k, value=v) for k, v in (
                                 ("vmguard.powerCyclePending", "1000 LEAK-03"), ("log.keepOld", "20"))],
                              "config.hardware.device": [], "snapshot": None, "runtime.powerState": "poweredOn",
                              "summary.runtime.bootTime": boot}, 3000)
    assert res["marker"] == "3000 ISO-11" and res["errors"] == []


def test_no_marker_on_a_stopped_vm_or_without_a_change():
    changes = {"log.keepOld": ("20", "10")}
    assert vc.new_marker("poweredOff", changes, {}, NOW) is None
    assert vc.new_marker("suspended", changes, {}, NOW) is None
    assert vc.new_marker("poweredOn", {}, {}, NOW) is None
    assert vc.new_marker("poweredOn", changes, {}, NOW) == "1767225600 ISO-11"


def test_current_marker_prefers_the_roles_spelling():
    assert vc.current_marker({}) == ""
    assert vc.current_marker({"VMGuard.PowerCyclePending": "5 LEAK-02"}) == "5 LEAK-02"
    assert vc.current_marker({"VMGuard.PowerCyclePending": "5 LEAK-02", "vmguard.powerCyclePending": "6 ISO-11"}) == "6 ISO-11"


DEVICES = {
    9000: {"label": "Serial port 1", "connectable": True, "connected": True, "start_connected": True},
    3002: {"label": "CD/DVD drive 1", "connectable": True, "connected": False, "start_connected": True},
    8000: {"label": "Floppy drive 1", "connectable": True, "connected": False, "start_connected": False},
    100: {"label": "PCI controller 0", "connectable": False, "connected": False, "start_connected": False},
}


def test_devices_disconnected_only_when_connected_now_or_at_power_on():
    changes, missing, refused = vc.device_changes(DEVICES, [9000, 3002, 8000], "disconnected")
    assert changes == [{"key": 9000, "label": "Serial port 1"}, {"key": 3002, "label": "CD/DVD drive 1"}] and missing == []
    assert refused == []
    changes, missing, _refused = vc.device_changes(DEVICES, [9000, 424242], "disconnected")
    assert missing == [424242]


def test_devices_removed_while_there_and_a_gone_one_is_done():
    changes, missing, refused = vc.device_changes(DEVICES, [8000, 100, 424242], "absent")
    assert changes == [{"key": 8000, "label": "Floppy drive 1"}, {"key": 100, "label": "PCI controller 0"}]
    assert missing == [] and refused == []
    with pytest.raises(ValueError, match="device state must be one of disconnected, absent"):
        vc.device_changes(DEVICES, [8000], "remove")


def test_a_device_without_a_connect_switch_is_refused_never_skipped():
    """A PCI passthrough device cannot be disconnected: with device_action disconnected it is the VM's error."""
    changes, missing, refused = vc.device_changes(DEVICES, [9000, 100], "disconnected")
    assert changes == [{"key": 9000, "label": "Serial port 1"}] and missing == []
    assert refused == [{"key": 100, "label": "PCI controller 0"}]
    vim = pytest.importorskip("pyVmomi").vim
    pci = vim.vm.device.VirtualPCIPassthrough(key=13000, deviceInfo=vim.Description(label="PCI device 0", summary=""),
                                              backing=vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(id="0000:3b:00.0"))
    session = _Session(_SI(), device_state="disconnected")
    res = session.enforce_vm("web1", vc.check_step("web1", plan_entry(settings={}, devices=[{"key": 13000}], snapshots=[])),
                             {"name": "web1", "config.extraConfig": [], "config.hardware.device": [pci], "snapshot": None,
                              "runtime.powerState": "poweredOn"}, NOW)
    assert res["changed"] is False and res["devices"] == [] and session.calls["reconfigurations"] == 0
    assert res["errors"] == ["PCI device 0 (key 13000) cannot be disconnected: remove it (device_action remove)"]
    session = _Session(_SI(), device_state="absent")
    res = session.enforce_vm("web1", vc.check_step("web1", plan_entry(settings={}, devices=[{"key": 13000}], snapshots=[])),
                             {"name": "web1", "config.extraConfig": [], "config.hardware.device": [pci], "snapshot": None,
                              "runtime.powerState": "poweredOn"}, NOW)
    assert res["devices"] == [{"key": 13000, "label": "PCI device 0"}] and res["errors"] == []


FLAT = [("base", "snap-1"), ("before-upgrade", "snap-2"), ("nightly", "snap-3"), ("nightly", "snap-4"), ("gold", "snap-5")]


def test_snapshots_removed_by_name_never_pinned_never_ambiguous():
    remove, errors = vc.snapshot_removals(FLAT, ["before-upgrade", "base", "gone"], ["web1"], [])
    assert remove == [("before-upgrade", "snap-2"), ("base", "snap-1")] and errors == []
    remove, errors = vc.snapshot_removals(FLAT, ["gold", "nightly", "base"], ["web1", "web1-live"], ["web1-live/gold"])
    assert remove == [("base", "snap-1")]
    assert errors == ["snapshot gold is pinned (params.rollback.pinned_snapshots): not deleted",
                      "2 snapshots are named nightly: not deleted (which one is flagged is unknown)"]


class _Ref(object):
    """A vim.vm.Snapshot reference: only its moid is read."""

    def __init__(self, moid):
        self._moId = moid


def test_a_snapshot_recreated_under_its_name_since_the_audit_is_not_deleted():
    """The audit flagged 'nightly' (snapshot-3); it was deleted and re-created as snapshot-9 before enforcement: the
    plan's snapshot_ids name snapshot-3, so snapshot-9 stays (an error asking for a new audit); the same name with
    the same moid goes; a plan without ids (an older plan) is carried out by name."""
    flat = [("nightly", _Ref("snapshot-9")), ("base", _Ref("snapshot-1"))]
    remove, errors = vc.snapshot_removals(flat, ["nightly", "base"], ["web1"], [], {"nightly": "snapshot-3", "base": "snapshot-1"})
    assert [n for n, _r in remove] == ["base"]
    assert errors == ["snapshot nightly is snapshot-9, not snapshot-3 the audit judged (re-created since?): not deleted; "
                      "audit again"]
    assert [n for n, _r in vc.snapshot_removals(flat, ["nightly"], ["web1"], [])[0]] == ["nightly"]
    step = vc.check_step("web1", plan_entry(settings={}, devices=[], snapshots=["nightly"],
                                            snapshot_ids={"nightly": "snapshot-3"}))
    assert step["snapshot_ids"] == {"nightly": "snapshot-3"}
    with pytest.raises(ValueError, match="snapshot_ids must be a mapping"):
        vc.check_step("web1", plan_entry(settings={}, devices=[], snapshots=["nightly"], snapshot_ids=["snapshot-3"]))


def test_diff_shows_each_change_and_nothing_for_an_unchanged_vm():
    res = {"moid": "vm-42", "changed": True, "marker": "1767225600 LEAK-03", "marker_before": None,
           "settings": {"isolation.tools.copy.disable": {"before": "FALSE", "after": "TRUE"},
                        "RemoteDisplay.maxConnections": {"before": None, "after": "1"}},
           "devices": [{"key": 9000, "label": "Serial port 1"}], "snapshots": ["before-upgrade"]}
    diff = vc.diff_of("web1", res, "disconnected")
    assert diff["before_header"] == "web1 (vm-42)"
    assert diff["before"] == {"settings": {"isolation.tools.copy.disable": "FALSE", "RemoteDisplay.maxConnections": "(absent)",
                                           "vmguard.powerCyclePending": "(absent)"},
                              "devices": {"Serial port 1": "connected"}, "snapshots": ["before-upgrade"]}
    assert diff["after"] == {"settings": {"isolation.tools.copy.disable": "TRUE", "RemoteDisplay.maxConnections": "1",
                                          "vmguard.powerCyclePending": "1767225600 LEAK-03"},
                             "devices": {"Serial port 1": "disconnected"}, "snapshots": []}
    assert vc.diff_of("web2", {"moid": "vm-43", "changed": False}, "absent") is None


def test_failure_message_names_every_failed_vm():
    from ansible_collections.vmguard.hardening.plugins.modules import vsphere_enforce
    msg = vsphere_enforce.failure_message({
        "web1": {"moid": "vm-42", "errors": []},
        "ghost": {"moid": "vm-999", "errors": ["no VM with moid vm-999"]},
        "db1": {"moid": "vm-7", "errors": ["no device with key(s) 1", "cannot delete snapshot x: busy"]}})
    assert msg == ("2 of 3 VM(s) failed: db1 (vm-7): no device with key(s) 1, cannot delete snapshot x: busy; "
                   "ghost (vm-999): no VM with moid vm-999")


def test_a_template_given_to_enforce_is_skipped_without_failing():
    session = _Session(_SI())
    res = session.enforce_vm("tmpl", vc.check_step("tmpl", plan_entry(devices=[], snapshots=[])),
                             {"name": "tmpl", "config.extraConfig": [], "config.hardware.device": [], "snapshot": None,
                              "runtime.powerState": "poweredOff", "config.template": True}, NOW)
    assert res["skipped"] == "template: convert it to a VM to change it"
    assert res["changed"] is False and res["errors"] == [] and session.calls["reconfigurations"] == 0
    assert "config.template" in vc.VM_PROPERTIES
