"""vsphere_enforce against the test vCenter (tools/vcsim, govmomi 0.24.2's simulator built offline): the vsphere
role's whole plan in ONE login - settings (with the power-cycle marker on a running VM only), devices and the
settings of one VM in one reconfiguration, a snapshot pruned - read back with pyVmomi; a second run changes
nothing; check mode changes nothing; an unknown moid fails naming that VM while the others are applied; a
pinned snapshot is never deleted; the password never appears.

Before (roles/vsphere/tasks/enforce.yml up to 0.2.2) the same plan took one module call, each with its own
login, per VM with settings (3), per running VM with changed settings for the marker (2), per VM with devices
(1) and per snapshot (1): 7 logins; with N failing VMs at least N to 2N + devices + snapshots. Now: 1."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "vcsim"))
import vcsim  # noqa: E402 pylint: disable=wrong-import-position

pytest.importorskip("pyVmomi", reason="needs pyVmomi (in the ansible bundle of make setup)")
if not shutil.which("go") or not os.path.isdir("/usr/share/gocode/src/github.com/vmware/govmomi/simulator"):
    pytest.skip("needs golang-go and golang-github-vmware-govmomi-dev (make setup)", allow_module_level=True)

from pyVim.task import WaitForTask  # noqa: E402 pylint: disable=wrong-import-position
from pyVmomi import vim  # noqa: E402 pylint: disable=wrong-import-position

PENDING = "vmguard.powerCyclePending"
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
if not os.path.exists(ANSIBLE):
    ANSIBLE = "ansible"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp("vmg-h7-vcsim"))
    st = vcsim.start(state_dir, vms=4)
    seeded = vcsim.seed(st)
    si = vcsim.connect(st)
    vms = vcsim.vms_by_name(si)
    names = sorted(seeded)
    WaitForTask(vms[names[1]].PowerOffVM_Task())  # VM1: settings change without a marker
    yield dict(st, state_dir=state_dir, names=names, si=si, vms=vms)
    vcsim.stop(state_dir)


def module(name, args, check=False, env=None):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", **(env or {}))
    cmd = [ANSIBLE, "localhost", "-m", name, "-a", json.dumps(args)] + (["--check", "--diff"] if check else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False, cwd=ROOT)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"], p.stdout + p.stderr


def conn(sim, **kw):
    return dict({"hostname": sim["host"], "port": sim["port"], "username": sim["username"], "password": sim["password"]}, **kw)


def enforce(sim, vms, check=False, **kw):
    res, out = module("vmguard.hardening.vsphere_enforce", conn(sim, vms=vms, **kw), check=check, env={"SSL_CERT_FILE": sim["ca_file"]})
    assert sim["password"] not in out  # neither in the result nor in anything Ansible printed
    return res


def logins(sim):
    """The keys of the logins the simulator has seen (UserLoginSessionEvent, its latest 1000 events), read through
    the test's own open session."""
    spec = vim.event.EventFilterSpec(eventTypeId=["UserLoginSessionEvent"], maxCount=1000)
    return set(e.key for e in sim["si"].content.eventManager.QueryEvents(spec))


def extra(vm):
    return dict((o.key, o.value) for o in vm.config.extraConfig)


def serial(vm):
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualSerialPort)][0]


def snapshot_names(vm):
    out = []

    def walk(nodes):
        for n in nodes or []:
            out.append(n.name)
            walk(n.childSnapshotList)
    walk(vm.snapshot.rootSnapshotList if vm.snapshot else [])
    return out


def plan(sim):
    """The role's plan (__vmguard_vsphere_plan.vms, the shape audit/rules/vsphere.plan_vcenter returns)."""
    n0, n1, n2 = sim["names"][:3]
    vm0, vm1, vm2 = (sim["vms"][n] for n in (n0, n1, n2))
    dev = serial(vm2)
    return {
        n0: {"moid": vm0._moId, "datacenter": "DC0", "power_state": "poweredOn", "marker": None,
             "settings": {"isolation.tools.copy.disable": "TRUE", "isolation.tools.paste.disable": "TRUE",
                          "RemoteDisplay.maxConnections": "1"},
             "setting_rules": ["LEAK-02", "LEAK-03"], "devices": [], "snapshots": [], "rules": ["LEAK-02", "LEAK-03"]},
        n1: {"moid": vm1._moId, "datacenter": "DC0", "power_state": "poweredOff", "marker": None,
             "settings": {"RemoteDisplay.maxConnections": "1"}, "setting_rules": ["LEAK-02"], "devices": [],
             "snapshots": ["before-upgrade"], "rules": ["LEAK-02", "RB-02"]},
        n2: {"moid": vm2._moId, "datacenter": "DC0", "power_state": "poweredOn", "marker": None,
             "settings": {"RemoteDisplay.maxConnections": "1"}, "setting_rules": ["LEAK-02"],
             "devices": [{"key": dev.key, "kind": "serial", "label": dev.deviceInfo.label}], "snapshots": [],
             "rules": ["ISO-08", "LEAK-02"]},
    }


def state(sim):
    """What the checks read, fresh from vCenter."""
    n0, n1, n2 = sim["names"][:3]
    vm0, vm1, vm2 = (sim["vms"][n] for n in (n0, n1, n2))
    dev = serial(vm2).connectable
    return {"vm0": extra(vm0), "vm1": extra(vm1), "vm2": extra(vm2), "snapshots": snapshot_names(vm1),
            "serial": (dev.connected, dev.startConnected)}


def test_check_mode_reports_every_change_and_makes_none(sim):
    before = state(sim)
    assert before["vm0"]["isolation.tools.copy.disable"] == "FALSE" and before["snapshots"] == ["before-upgrade"]
    assert before["serial"] == (True, True)
    res = enforce(sim, plan(sim), check=True, prune_snapshots=True)
    n0, n1, n2 = sim["names"][:3]
    assert res["changed"] is True and not res.get("failed"), res.get("msg")
    assert res["pending_power_cycle"] == [n0, n2]
    assert res["vms"][n0]["settings"]["isolation.tools.copy.disable"] == {"before": "FALSE", "after": "TRUE"}
    assert res["vms"][n1]["snapshots"] == ["before-upgrade"] and res["vms"][n1]["marker"] is None
    assert [d["label"] for d in res["vms"][n2]["devices"]] == [serial(sim["vms"][n2]).deviceInfo.label]
    assert [d["before_header"].split(" ")[0] for d in res["diff"]] == [n0, n1, n2]
    assert res["calls"]["reconfigurations"] == 0 and res["calls"]["snapshot_removals"] == 0
    assert state(sim) == before


def test_one_login_applies_the_plan_and_an_unknown_vm_is_named(sim):
    n0, n1, n2 = sim["names"][:3]
    vms = dict(plan(sim), ghost={"moid": "vm-424242", "settings": {"log.keepOld": "10"}, "devices": [], "snapshots": []})
    seen = logins(sim)
    started = time.time()
    res = enforce(sim, vms, prune_snapshots=True)
    assert len(logins(sim) - seen) == 1  # the whole plan in one session (before: 7 logins for this plan)
    assert res["failed"] is True and res["failed_vms"] == ["ghost"]
    assert res["msg"] == "1 of 4 VM(s) failed: ghost (vm-424242): no VM with moid vm-424242"
    assert res["calls"] == {"logins": 1, "retrievals": 1, "reconfigurations": 3, "snapshot_removals": 1}
    assert res["pending_power_cycle"] == [n0, n2]
    after = state(sim)
    assert [after["vm0"][k] for k in ("isolation.tools.copy.disable", "isolation.tools.paste.disable",
                                      "RemoteDisplay.maxConnections")] == ["TRUE", "TRUE", "1"]
    when, ids = after["vm0"][PENDING].split(" ")
    assert ids == "LEAK-02,LEAK-03" and started - 1 <= int(when) <= time.time() + 1
    assert res["vms"][n0]["marker"] == after["vm0"][PENDING]
    assert after["vm1"]["RemoteDisplay.maxConnections"] == "1" and PENDING not in after["vm1"]  # powered off: no marker
    assert after["snapshots"] == []
    assert after["vm2"]["RemoteDisplay.maxConnections"] == "1" and after["vm2"][PENDING].endswith(" LEAK-02")
    assert after["serial"] == (False, False)


def test_second_run_changes_nothing(sim):
    before = state(sim)
    res = enforce(sim, plan(sim), prune_snapshots=True)
    assert res["changed"] is False and not res.get("failed"), res.get("msg")
    assert res["pending_power_cycle"] == [] and res["calls"]["reconfigurations"] == 0
    assert state(sim) == before  # the markers keep their time
    res = enforce(sim, plan(sim), check=True, prune_snapshots=True)
    assert res["changed"] is False and res["diff"] == []


def test_marker_keeps_the_rules_it_named(sim):
    n0 = sim["names"][0]
    vm0 = sim["vms"][n0]
    vcsim._reconfigure(vm0, vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="log.keepOld", value="50")]))
    res = enforce(sim, {n0: {"moid": vm0._moId, "settings": {"log.keepOld": "10"}, "setting_rules": ["ISO-11"]}})
    assert res["changed"] is True and res["pending_power_cycle"] == [n0]
    assert extra(vm0)[PENDING].split(" ")[1] == "ISO-11,LEAK-02,LEAK-03" and extra(vm0)["log.keepOld"] == "10"


def test_pinned_snapshot_is_never_deleted_and_prune_off_ignores_snapshots(sim):
    n3 = sim["names"][3]
    vm3 = sim["vms"][n3]
    WaitForTask(vm3.CreateSnapshot_Task(name="gold", description="pinned", memory=False, quiesce=False))
    vms = {n3: {"moid": vm3._moId, "snapshots": ["gold"]}}
    res = enforce(sim, vms)  # prune_snapshots defaults to false
    assert res["changed"] is False and not res.get("failed") and snapshot_names(vm3) == ["gold"]
    res = enforce(sim, vms, prune_snapshots=True, pinned_snapshots=["%s/go*" % n3])
    assert res["failed"] is True and res["failed_vms"] == [n3]
    assert "snapshot gold is pinned (params.rollback.pinned_snapshots): not deleted" in res["msg"]
    assert snapshot_names(vm3) == ["gold"]


def test_device_removed_with_absent_and_a_missing_key_is_that_vms_error(sim):
    n2, n3 = sim["names"][2:4]
    vm2, vm3 = sim["vms"][n2], sim["vms"][n3]
    key = serial(vm2).key
    res = enforce(sim, {n2: {"moid": vm2._moId, "devices": [{"key": key}]},
                        n3: {"moid": vm3._moId, "devices": [{"key": 424242}], "settings": {"log.rotateSize": "2048000"}}},
                  device_action="absent")
    assert [d["key"] for d in res["vms"][n2]["devices"]] == [key]
    assert not [d for d in vm2.config.hardware.device if d.key == key]
    assert res["failed_vms"] == [] and res["changed"] is True  # a key already gone is done with absent
    res = enforce(sim, {n3: {"moid": vm3._moId, "devices": [{"key": 424242}], "settings": {"log.keepOld": "10"}}})
    assert res["failed_vms"] == [n3] and "no device with key(s) 424242" in res["msg"]
    assert extra(vm3)["log.keepOld"] == "10" and res["vms"][n3]["changed"] is True  # what can be applied is


def test_wrong_password_and_bad_plan_fail_without_the_password(sim):
    n0 = sim["names"][0]
    res, out = module("vmguard.hardening.vsphere_enforce", conn(sim, password="wrong-" + sim["password"], vms={n0: {"moid": "vm-1"}}),
                      env={"SSL_CERT_FILE": sim["ca_file"]})
    assert res["failed"] and res["msg"].startswith("cannot connect to 127.0.0.1:") and sim["password"] not in out
    res = enforce(sim, {n0: {"moid": sim["vms"][n0]._moId, "settings": {"guestinfo.userdata": "x"}}})
    assert res["failed_vms"] == [n0] and "guestinfo.userdata is not an advanced setting of the vSphere rules" in res["msg"]
    assert res["calls"]["logins"] == 0  # nothing to carry out: no session
