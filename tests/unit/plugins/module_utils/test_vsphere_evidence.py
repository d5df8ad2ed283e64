"""evidence/vsphere.py: extraConfig reaches the evidence only for the advanced settings the vSphere rules
read; guestinfo.* (cloud-init userdata, OVF environment) and other values never leave the module. The
rules still pass and fail on evidence built from real pyVmomi objects."""

import base64
import datetime
import json

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import vsphere as rules
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere

vim = pytest.importorskip("pyVmomi").vim

BOOT = datetime.datetime(2026, 11, 17, 8, 0, 0, tzinfo=datetime.timezone.utc)
USERDATA = """#cloud-config
chpasswd:
  expire: false
  users:
    - {name: ubuntu, password: CloudInitPw9, type: text}
ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnly ops@example]
write_files:
  - path: /etc/app/db.env
    content: DB_PASSWORD=UserdataDbPw7
"""
OVF_ENV = ("<?xml version='1.0' encoding='UTF-8'?><Environment xmlns='http://schemas.dmtf.org/ovf/environment/1' "
           "xmlns:oe='http://schemas.dmtf.org/ovf/environment/1'><PropertySection>"
           "<Property oe:key='hostname' oe:value='db1'/><Property oe:key='root_password' oe:value='OvfRootPw5'/>"
           "<Property oe:key='vami.ip0.db1' oe:value='192.0.2.30'/></PropertySection></Environment>")
SECRETS = ("CloudInitPw9", "UserdataDbPw7", "OvfRootPw5", "VncConsolePw3", "ToolsTokenS3cret", "JoinTokenX1",
           base64.b64encode(USERDATA.encode()).decode())


def option(key, value):
    return vim.option.OptionValue(key=key, value=value)


def extra_config(**settings):
    """A realistic config.extraConfig: what vCenter and VMware Tools keep there, guestinfo included."""
    opts = [
        option("nvram", "db1.nvram"), option("svga.present", "TRUE"), option("pciBridge0.present", "TRUE"),
        option("tools.guest.desktop.autolock", "FALSE"), option("migrate.hostLog", "db1-6f1c2a3e.hlog"),
        option("guestinfo.userdata", base64.b64encode(USERDATA.encode()).decode()),
        option("guestinfo.userdata.encoding", "base64"),
        option("guestinfo.metadata", '{"instance-id": "db1", "local-hostname": "db1"}'),
        option("guestinfo.ovfEnv", OVF_ENV),
        option("guestinfo.appInfo", '{"token": "ToolsTokenS3cret"}'),
        option("guestinfo.kubeadm.join", "kubeadm join 192.0.2.1:6443 --token JoinTokenX1"),
        option("RemoteDisplay.vnc.password", "VncConsolePw3"),
        option("RemoteDisplay.vnc.port", "5901"),
    ]
    opts.extend(option(k, v) for k, v in settings.items())
    return opts


def vm_props(extra):
    return {"name": "db1", "config.uuid": "42106f1c-2a3e-5b7d-4e2f-9a103c4d5e6f",
            "config.instanceUuid": "50106f1c-2a3e-5b7d-4e2f-9a103c4d5e6f", "config.template": False,
            "config.extraConfig": extra, "config.hardware.device": [], "config.keyId": None, "snapshot": None,
            "customValue": [], "runtime.powerState": vim.VirtualMachine.PowerState.poweredOn,
            "summary.runtime.bootTime": BOOT, "parent": None}


def evidence(extra):
    return vsphere.vm_evidence("vm-42", vm_props(extra), {}, {})


def run(rule, vm):
    ev = {"vcenters": {"vc1": {"error": None, "vms": [vm], "inventory": {"db1": {}}}}, "guests": {}}
    (found,) = [f for f in engine.evaluate(policy.load_policy({"params": {}}), ev, only={rule})
                if f["subject"]["kind"] == "vcenter_vm"]
    return found


def test_guestinfo_and_other_values_never_reach_the_evidence():
    vm = evidence(extra_config(**{"isolation.tools.copy.disable": "FALSE", "RemoteDisplay.maxConnections": "1"}))
    text = json.dumps(vm, sort_keys=True)
    for secret in SECRETS:
        assert secret not in text
    assert "guestinfo" not in text and "RemoteDisplay.vnc.password" not in text
    assert vm["extra_config"] == {"isolation.tools.copy.disable": "FALSE", "RemoteDisplay.maxConnections": "1"}


def test_audited_keys_keep_vcenter_spelling_and_empty_values():
    vm = evidence(extra_config(**{"ISOLATION.TOOLS.DND.DISABLE": "false", "log.keepOld": None}))
    assert vm["extra_config"] == {"ISOLATION.TOOLS.DND.DISABLE": "false", "log.keepOld": ""}


def test_the_audited_settings_are_the_ones_the_rules_read():
    read = set(key.lower() for settings in rules.SETTINGS.values() for key, _good, _absent in settings)
    read.add(rules.PENDING_KEY.lower())
    assert set(k.lower() for k in vsphere.AUDITED_SETTINGS) == read


def test_settings_rules_fail_on_insecure_vmx_and_pass_when_compliant():
    insecure = evidence(extra_config(**{"isolation.tools.copy.disable": "FALSE", "isolation.tools.paste.disable": "false",
                                        "log.keepOld": "100", "RemoteDisplay.vnc.enabled": "TRUE"}))
    f = run("LEAK-03", insecure)
    assert f["status"] == "fail" and f["evidence"]["settings"] == {"isolation.tools.copy.disable": "FALSE",
                                                                   "isolation.tools.paste.disable": "false"}
    f = run("ISO-11", insecure)
    assert f["status"] == "fail" and f["evidence"]["settings"] == {"log.keepOld": "100"}
    f = run("LEAK-02", insecure)
    assert f["status"] == "fail" and f["evidence"]["settings"] == {"RemoteDisplay.maxConnections": None,
                                                                   "RemoteDisplay.vnc.enabled": "TRUE"}
    for rule in ("LEAK-03", "ISO-11", "LEAK-02"):
        text = json.dumps(run(rule, insecure), sort_keys=True)
        assert not [s for s in SECRETS if s in text], rule
    compliant = evidence(extra_config(**{"RemoteDisplay.maxConnections": "1", "log.keepOld": "10"}))
    for rule in ("LEAK-03", "ISO-11", "LEAK-02"):
        assert run(rule, compliant)["status"] == "pass", rule


def test_pending_power_cycle_marker_is_kept():
    when = (BOOT - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds() + 60
    vm = evidence(extra_config(**{"RemoteDisplay.maxConnections": "1", rules.PENDING_KEY: "%d LEAK-02" % when}))
    f = run("LEAK-02", vm)
    assert f["status"] == "fail" and f["pending_restart"] is True


def test_each_disks_encryption_key_is_collected_and_leak05_needs_it():
    """vTPM or VM Home encryption sets config.keyId only: a plaintext VMDK of a confidential VM fails LEAK-05."""
    kid = vim.encryption.CryptoKeyId(keyId="k-1", providerId=vim.encryption.KeyProviderId(id="nkp"))

    def disk(key, disk_key):
        return vim.vm.device.VirtualDisk(key=key, deviceInfo=vim.Description(label="Hard disk %d" % (key - 1999), summary=""),
                                         backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                                             fileName="[ds] db1/db1_%d.vmdk" % key, diskMode="persistent", keyId=disk_key))
    tpm = vim.vm.device.VirtualTPM(key=11000, deviceInfo=vim.Description(label="TPM", summary=""))
    props = dict(vm_props([]), **{"config.keyId": kid, "config.hardware.device": [disk(2000, kid), disk(2001, None), tpm]})
    vm = vsphere.vm_evidence("vm-42", props, {}, {})
    assert [d["key_id"] for d in vm["disks"]] == [{"key_id": "k-1", "provider": "nkp"}, None]
    ev = {"vcenters": {"vc1": {"error": None, "vms": [vm], "inventory": {"db1": {"data_class": "confidential"}}}}, "guests": {}}
    (f,) = engine.evaluate(policy.load_policy({"params": {}}), ev, only={"LEAK-05"})
    assert f["status"] == "fail" and f["evidence"]["plaintext_disks"] == ["Hard disk 2"]
    props["config.hardware.device"] = [disk(2000, kid), disk(2001, kid), tpm]
    ev["vcenters"]["vc1"]["vms"] = [vsphere.vm_evidence("vm-42", props, {}, {})]
    (f,) = engine.evaluate(policy.load_policy({"params": {}}), ev, only={"LEAK-05"})
    assert f["status"] == "pass"


class _Obj(object):
    pass


def _service_instance(objects):
    """A stand-in ServiceInstance whose PropertyCollector answers ``objects`` (ObjectContent) in one page."""
    pc = vsphere.vmodl.query.PropertyCollector
    content = _Obj()
    content.about = vim.AboutInfo(name="vc", fullName="vc", version="8.0", apiType="VirtualCenter", instanceUuid="x")
    content.customFieldsManager, content.rootFolder = None, None
    content.viewManager = _Obj()
    content.viewManager.CreateContainerView = lambda *a: type("View", (vim.view.ContainerView,), {"Destroy": lambda self: None})(
        "session[1]", None)
    content.propertyCollector = _Obj()
    content.propertyCollector.RetrievePropertiesEx = lambda specs, opts: pc.RetrieveResult(objects=objects)
    si = _Obj()
    si.RetrieveContent = lambda: content
    return si


def test_properties_in_the_missing_set_are_not_collected_never_nothing_there():
    """The collector could not read extraConfig, the devices and the snapshot tree: those rules are errors."""
    pc, vmodl = vsphere.vmodl.query.PropertyCollector, vsphere.vmodl
    fault = vmodl.fault.SystemError(reason="cannot read", msg="A general system error occurred")
    props = (("name", "app1"), ("config.uuid", "u-1"), ("config.instanceUuid", "iu-1"), ("config.template", False),
             ("runtime.powerState", "poweredOn"))
    vm_obj = vim.VirtualMachine("vm-7", None)
    si = _service_instance([pc.ObjectContent(obj=vm_obj, propSet=[vmodl.DynamicProperty(name=n, val=v) for n, v in props],
                                             missingSet=[pc.MissingProperty(path=p, fault=fault) for p in (
                                                 "config.extraConfig", "config.hardware.device", "snapshot")])])
    (vm,) = vsphere.collect(si)["vms"]
    assert vm["error"] is None and vm["missing"]["snapshot"] == "A general system error occurred"
    for key in ("extra_config", "devices", "disks", "nics", "snapshots"):
        assert key not in vm
    ev = {"vcenters": {"vc1": {"error": None, "vms": [vm], "inventory": {"app1": {}}}}, "guests": {}}
    only = {"LEAK-03", "ISO-11", "ISO-08", "RB-02", "RB-03"}
    found = dict((f["rule"], f) for f in engine.evaluate(policy.load_policy({"params": {}}), ev, only=only))
    assert set(f["status"] for f in found.values()) == {"error"}
    assert found["ISO-08"]["message"] == "cannot evaluate: devices not collected"
    # An unread property no rule reads through collected() (the power state) makes the VM an error.
    si = _service_instance([pc.ObjectContent(obj=vm_obj, propSet=[vmodl.DynamicProperty(name=n, val=v) for n, v in props[:4]],
                                             missingSet=[pc.MissingProperty(path="runtime.powerState", fault=fault)])])
    (vm,) = vsphere.collect(si)["vms"]
    assert vm["error"] == "cannot read runtime.powerState: A general system error occurred"


def _iso08(devs):
    vm = evidence([])
    vm["devices"] = devs
    return run("ISO-08", vm)


def test_an_sriov_nic_is_passthrough_for_iso08_and_still_a_nic():
    pf = vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(id="0000:5e:00.0", deviceId="1572", systemId="x",
                                                               vendorId=32902, deviceName="X710")
    sriov = vim.vm.device.VirtualSriovEthernetCard(
        key=4001, deviceInfo=vim.Description(label="Network adapter 2", summary=""), macAddress="00:50:56:AA:BB:01",
        addressType="assigned", connectable=vim.vm.device.VirtualDevice.ConnectInfo(connected=True, startConnected=True),
        sriovBacking=vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(physicalFunctionBacking=pf))
    devs, _disks, nics = vsphere.devices([sriov])
    assert nics == [{"key": 4001, "label": "Network adapter 2", "mac": "00:50:56:aa:bb:01", "address_type": "assigned"}]
    assert devs == [{"key": 4001, "kind": "pci_passthrough", "label": "Network adapter 2", "connected": True,
                     "start_connected": True, "backing": "SriovBackingInfo: 0000:5e:00.0 X710"}]
    f = _iso08(devs)
    assert f["status"] == "fail" and f["evidence"]["devices"] == [{"key": 4001, "kind": "pci_passthrough",
                                                                  "label": "Network adapter 2"}]


def test_a_cd_drive_backed_by_the_console_clients_drive_is_a_host_cd():
    ci = vim.vm.device.VirtualDevice.ConnectInfo
    backings = (vim.vm.device.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False, useAutoDetect=False),
                vim.vm.device.VirtualCdrom.RemoteAtapiBackingInfo(deviceName="/dev/sr0", useAutoDetect=False),
                vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName="[ds] iso/tools.iso"))
    cds = [vim.vm.device.VirtualCdrom(key=3000 + i, deviceInfo=vim.Description(label="CD/DVD drive %d" % (i + 1), summary=""),
                                      connectable=ci(connected=True, startConnected=True), backing=b)
           for i, b in enumerate(backings)]
    devs, _disks, _nics = vsphere.devices(cds)
    f = _iso08(devs)
    assert f["status"] == "fail" and [d["key"] for d in f["evidence"]["devices"]] == [3000, 3001]  # never the ISO image
