"""The revert watcher and a snapshot revert under faults, on a private libvirtd (conftest.PrivateLibvirtd) and a
small running QEMU domain with no OS: the watcher killed (RB-11 fails within its heartbeat window), libvirtd
killed and restarted (the watcher reconnects, QEMU survives, the next revert is still quarantined), and a
real snapshot revert in the middle of a harden run's two-phase epoch (the run does not record the reverted
guest as hardened; the next audit reports the rollback, the next harden reconverges)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import COLLECTIONS, PREFIX, PrivateLibvirtd, domain_xml, make_disk, run_module, wait_for
from test_ledger_faults import E, EPOCH_FILE

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan, hostscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import quarantine as qr

MODULE = "ansible_collections.vmguard.hardening.plugins.module_utils.remediation.watcher"
MAC = "52:54:00:6b:00:01"
HEARTBEAT = 0.5


class Lab(object):
    def __init__(self):
        self.d = PrivateLibvirtd().start()
        self.name = PREFIX + "wd"
        self.dir = self.d.base
        self.cfg = {"uri": self.d.uri, "ledger_dir": os.path.join(self.dir, "ledger"), "mgmt_networks": [],
                    "heartbeat_seconds": HEARTBEAT, "domains": [PREFIX + "*"],
                    "lock": os.path.join(self.dir, "w", "watcher.lock"),
                    "heartbeat": os.path.join(self.dir, "w", "watcher.heartbeat")}
        self.log_path = os.path.join(self.dir, "watcher.log")
        self.proc = None
        conn = self.d.connect()
        dom = conn.defineXML(domain_xml(self.name, make_disk(os.path.join(self.d.images, "wd.qcow2")), iface_mac=MAC))
        dom.create()
        dom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
        self.uuid = dom.UUIDString()
        conn.close()

    def dom(self):
        return self.d.connect().lookupByName(self.name)

    def start_watcher(self):
        with open(os.path.join(self.dir, "watcher.json"), "w") as f:
            json.dump(self.cfg, f)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", MODULE, "--config", os.path.join(self.dir, "watcher.json")],
                                         stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=COLLECTIONS))
        assert wait_for(self.running, 15), self.log()

    def running(self):
        w = hostscan.watcher(self.cfg["lock"], self.cfg["heartbeat"])
        return w["holder_pid"] == self.proc.pid == w["heartbeat_pid"] and w["connected"] is True

    def heartbeat(self):
        try:
            with open(self.cfg["heartbeat"]) as f:
                return json.load(f)
        except (IOError, ValueError):
            return {}

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def record(self):
        return ledger.read_record(self.cfg["ledger_dir"], self.uuid) or {}

    def link(self):
        return dict((i["mac"], i["link"]) for i in qr.interfaces(self.dom().XMLDesc(0)))[MAC]

    def rb11(self):
        host = E.host()
        host["watcher"] = hostscan.watcher(self.cfg["lock"], self.cfg["heartbeat"])
        ev = E.fleet(host_ev=host)
        ev["hypervisors"][E.HV]["uri"] = self.d.uri  # the audited URI: RB-11 fails a watcher watching another one
        return E.by_subject(E.run("RB-11", ev))[E.HV]

    def remove(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.d.stop()


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root for a private libvirtd")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.remove()


# The steps depend on each other (one daemon, one domain, one watcher): they run in this order.

def test_watcher_killed_rb11_fails_within_its_heartbeat_window(lab):
    lab.start_watcher()
    assert lab.rb11()["status"] == "pass"
    lab.proc.send_signal(signal.SIGKILL)
    lab.proc.wait(10)
    # The kernel drops the dead holder's flock at once; RB-11 fails well within one heartbeat period.
    assert wait_for(lambda: lab.rb11()["status"] == "fail", HEARTBEAT), lab.rb11()
    f = lab.rb11()
    assert "no lock holder" in f["message"] and "a snapshot revert or restore would go unnoticed" in f["message"], f
    lab.start_watcher()  # for the next steps
    assert lab.rb11()["status"] == "pass"


def test_libvirtd_restarted_watcher_reconnects_and_quarantines_the_next_revert(lab):
    lab.d.kill()
    assert wait_for(lambda: lab.heartbeat().get("connected") is False, 10), lab.log()
    f = lab.rb11()
    assert f["status"] == "fail" and "not connected to libvirt" in f["message"], f
    lab.d.start()
    assert wait_for(lambda: lab.heartbeat().get("connected") is True, 30), lab.log()
    assert lab.rb11()["status"] == "pass"
    dom = lab.dom()
    assert dom.isActive() and lab.link() == "up"  # QEMU outlived the daemon, which took it back
    dom.revertToSnapshot(dom.snapshotLookupByName("s1"))
    assert wait_for(lambda: lab.link() == "down", 5), lab.log()
    assert wait_for(lambda: (lab.record().get("quarantine") or {}).get("interfaces") == [MAC], 5), lab.log()
    assert [e["event"] for e in lab.record()["events"]][-2:] == ["revert", "quarantine"]


def test_snapshot_revert_during_harden_is_not_recorded_as_hardened(lab, tmp_path):
    root = str(tmp_path / "guest")
    os.makedirs(os.path.join(root, "var", "lib", "vmguard"))

    def ledger_call(**args):
        result, p = run_module("ledger", dict(args, uuid=lab.uuid, dir=lab.cfg["ledger_dir"]))
        assert result is not None and "Traceback" not in p.stderr, p.stderr
        return result

    def write_epoch(n):
        with open(os.path.join(root, EPOCH_FILE.lstrip("/")), "w") as f:
            f.write(json.dumps({"epoch": n}) + "\n")

    def rb05():
        epoch, err = guestscan.epoch(EPOCH_FILE, root)
        ev = E.fleet([E.domain("web1", uuid=lab.uuid, ledger=ledger.read_record(lab.cfg["ledger_dir"], lab.uuid))],
                     {"web1": E.guest("web1", facts=E.guest_facts(1, epoch=epoch, epoch_error=err))})
        return E.by_subject(E.run("RB-05", ev))["web1"]

    def harden():
        prepared = ledger_call(epoch="prepare")
        write_epoch(prepared["pending_epoch"])
        return prepared, ledger_call(epoch="commit", hardened=True)

    # Event times have a one-second resolution and a revert in the same second as a prepare counts as after
    # it (ledger.reverts_since): the previous step's revert must be in an earlier second than this first run.
    time.sleep(1.1)
    unused, first = harden()
    assert not first.get("failed") and rb05()["status"] == "pass"
    hardened_at, epoch = first["record"]["last_hardened"], first["epoch"]
    # The run: prepare, the guest gets the pending epoch, then a revert brings back the snapshot's guest (its
    # epoch file with it: the domain here has no OS, the file on the temporary root plays its part).
    prepared = ledger_call(epoch="prepare")
    write_epoch(prepared["pending_epoch"])
    events = len(lab.record()["events"])
    dom = lab.dom()
    dom.revertToSnapshot(dom.snapshotLookupByName("s1"))
    assert wait_for(lambda: any(e["event"] == "revert" for e in lab.record()["events"][events:]), 5), lab.log()
    write_epoch(epoch)
    commit = ledger_call(epoch="commit", hardened=True)
    assert commit.get("failed") and "the hardening is not recorded" in commit["msg"] and "reverted" in commit["msg"], commit
    rec = lab.record()
    assert rec["epoch"] == epoch + 1 and rec["pending_epoch"] is None
    assert rec["last_hardened"] == hardened_at  # not recorded as hardened
    # The watcher may still add a quarantine for a later libvirt event of the same revert: not ours to order.
    last = [e for e in rec["events"] if e["event"] != "quarantine"][-1]
    assert last["event"] == "revert_during_run" and last["detail"]["epoch"] == epoch + 1, rec["events"][-3:]
    f = rb05()
    assert f["status"] == "fail" and "rolled back" in f["message"], f  # the next audit reports the rollback
    # Event times have a one-second resolution and a revert in the second of a prepare counts as after it
    # (the safe side): the next run starts in a later second than the revert, as any real run does.
    time.sleep(1.1)
    unused, again = harden()  # the next harden reconverges
    assert not again.get("failed") and again["epoch"] == epoch + 2 and rb05()["status"] == "pass", again
