"""vsphere_vm_devices (one VM, no vCenter: the session and the VM are stand-ins): an unknown moid and a VM
without a readable configuration fail the module cleanly, never with a traceback."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import vsphere_session
from ansible_collections.vmguard.hardening.plugins.modules import vsphere_vm_devices as module

pyvmomi = pytest.importorskip("pyVmomi")


class _SI(object):
    _stub = None


def run(monkeypatch, capsys, vm_class):
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "hostname": "vc", "username": "u", "password": "S3cret!", "moid": "vm-424242", "devices": [9000]}})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    monkeypatch.setattr(vsphere_session, "connect_or_fail", lambda m: _SI())
    monkeypatch.setattr(vsphere_session, "disconnect", lambda si: None)
    fake_vim = type("FakeVim", (object,), {"VirtualMachine": vm_class, "fault": pyvmomi.vim.fault,
                                           "vm": pyvmomi.vim.vm})
    monkeypatch.setattr(module.vc, "vim", fake_vim)
    with pytest.raises(SystemExit) as exit_:
        module.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0


class _Unknown(object):
    def __init__(self, moid, stub):
        self.moid = moid

    @property
    def name(self):
        raise pyvmomi.vmodl.fault.ManagedObjectNotFound(msg="The object 'vim.VirtualMachine:vm-424242' has already "
                                                            "been deleted or has not been completely created",
                                                        obj=pyvmomi.vim.VirtualMachine("vm-424242", None))


class _Orphaned(object):
    name, config = "web1", None

    def __init__(self, moid, stub):
        self.moid = moid


def test_an_unknown_moid_fails_cleanly(monkeypatch, capsys):
    res, failed = run(monkeypatch, capsys, _Unknown)
    assert failed and res["msg"] == "no VM with moid vm-424242"


def test_a_vm_without_readable_configuration_fails_cleanly(monkeypatch, capsys):
    res, failed = run(monkeypatch, capsys, _Orphaned)
    assert failed and res["msg"] == "VM web1 (vm-424242) has no readable configuration (orphaned or inaccessible VM)"
