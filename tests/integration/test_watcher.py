"""The revert watcher (RB-11) against a real libvirtd at qemu:///system: a tiny QEMU domain (no OS:
under TCG it sits in SeaBIOS) with one service and one management interface, a real snapshot
revert and a revert to shut-off, the watcher as a subprocess with a private lock, heartbeat and
ledger (it acts on vmg-rw-* domains only), its reconnection after its libvirt connection breaks,
its end on SIGTERM as RB-11's evidence sees it, and the quarantine module lifting the quarantine.

The watcher reaches libvirtd through a socket relay of the test's own, so a broken connection can
be made without touching libvirtd. Only vmg-rw-* domains and networks are made, and removed."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
MODULE = "ansible_collections.vmguard.hardening.plugins.module_utils.remediation.watcher"
LIBVIRT_SOCK = "/run/libvirt/libvirt-sock"
SVC_MAC, MGMT_MAC = "52:54:00:7e:00:01", "52:54:00:7e:00:02"
NETS = (("vmg-rw-net", "vmgrw0"), ("vmg-rw-mgmt", "vmgrw1"))


def _collection_link():
    link = os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_collection_link()
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import quarantine as qr  # noqa: E402
from conftest import wait_for  # noqa: E402


def connect():
    try:
        return libvirt.open("qemu:///system")
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")


class Relay(object):
    """A unix socket relay to libvirtd's socket; ``down()`` breaks every connection and refuses new
    ones until ``up()``: a libvirtd restart as a client sees it."""

    def __init__(self, path, target=LIBVIRT_SOCK):
        self.path, self.target, self.srv, self.socks, self.lock = path, target, None, [], threading.Lock()

    def up(self):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.path)
        srv.listen(8)
        srv.settimeout(0.1)
        self.srv = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv):
        while self.srv is srv:
            try:
                client, unused = srv.accept()
            except (socket.timeout, OSError):
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        srv, self.srv = self.srv, None
        srv.close()
        os.unlink(self.path)
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def net_xml(name, bridge):
    return "<network><name>%s</name><bridge name='%s' stp='off'/></network>" % (name, bridge)


def domain_xml(name, disk):
    ifaces = "".join("<interface type='network'><mac address='%s'/><source network='%s'/><model type='virtio'/>"
                     "</interface>" % (mac, net) for mac, (net, unused) in zip((SVC_MAC, MGMT_MAC), NETS))
    return ("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os><devices>"
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
            "<target dev='vda' bus='virtio'/></disk>%s</devices></domain>" % (name, disk, ifaces))


def remove_domain(conn, name):
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def remove_network(conn, name):
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return
    if net.isActive():
        net.destroy()
    net.undefine()


class Lab(object):
    """The domain, its networks, the relay and the watcher; ``make``/``remove`` (also used by the bench)."""

    def __init__(self, name=None):
        self.name = name or "vmg-rw-%d" % (os.getpid() % 100000)
        self.conn = connect()
        self.dir = tempfile.mkdtemp(prefix="vmg-rw-")
        os.chmod(self.dir, 0o711)  # QEMU (another user) reaches the disk
        self.disk = os.path.join(self.dir, "disk.qcow2")
        self.relay = Relay(os.path.join(self.dir, "libvirt.sock"))
        self.cfg_path = os.path.join(self.dir, "watcher.json")
        self.log_path = os.path.join(self.dir, "watcher.log")
        self.cfg = {"uri": "qemu+unix:///system?socket=%s" % self.relay.path, "ledger_dir": os.path.join(self.dir, "ledger"),
                    "mgmt_networks": ["vmg-rw-mgmt"], "heartbeat_seconds": 0.5, "domains": ["vmg-rw-*"],
                    "lock": os.path.join(self.dir, "run", "watcher.lock"),
                    "heartbeat": os.path.join(self.dir, "run", "watcher.heartbeat")}
        self.proc = None
        self.dom = None

    def make(self):
        if not os.path.exists(LIBVIRT_SOCK):
            self.remove()
            pytest.skip("needs a running libvirtd (qemu:///system) listening on %s" % LIBVIRT_SOCK)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", self.disk, "16M"], check=True)
        remove_domain(self.conn, self.name)
        for net, bridge in NETS:
            remove_network(self.conn, net)
            self.conn.networkDefineXML(net_xml(net, bridge)).create()
        self.dom = self.conn.defineXML(domain_xml(self.name, self.disk))
        self.relay.up()
        return self

    def start_watcher(self):
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", MODULE, "--config", self.cfg_path], stdout=log,
                                         stderr=subprocess.STDOUT, env=env)
        assert wait_for(lambda: self.heartbeat().get("connected") is True, 10), self.log()

    def heartbeat(self):
        try:
            with open(self.cfg["heartbeat"]) as f:
                return json.load(f)
        except (IOError, ValueError):
            return {}

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def logged(self, test, seconds=5):
        """The log is written after the state a step waits for (ledger, heartbeat): wait for it too."""
        return wait_for(lambda: test(self.log()), seconds)

    def record(self):
        return ledger.read_record(self.cfg["ledger_dir"], self.dom.UUIDString()) or {}

    def links(self, scope):
        flags = 0 if scope == "live" else libvirt.VIR_DOMAIN_XML_INACTIVE
        return dict((i["mac"], i["link"]) for i in qr.interfaces(self.dom.XMLDesc(flags)))

    def remove(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.relay.srv is not None:
            self.relay.down()
        remove_domain(self.conn, self.name)
        for net, unused in NETS:
            remove_network(self.conn, net)
        shutil.rmtree(self.dir, ignore_errors=True)


def connects(log_text):
    """The watcher's "connected uri=" lines (a "disconnected uri=" line is not one)."""
    return sum(1 for line in log_text.splitlines() if " connected uri=" in line)


def snapshot(dom, name):
    return dom.snapshotCreateXML("<domainsnapshot><name>%s</name></domainsnapshot>" % name, 0)


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    try:
        lab.make()
        yield lab
    finally:
        lab.remove()


def module(name, args, check=False):
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    cmd = [ansible if os.path.exists(ansible) else "ansible", "localhost", "-m", name, "-a", json.dumps(args)]
    p = subprocess.run(cmd + (["--check", "--diff"] if check else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, cwd=ROOT, check=False)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


# The steps depend on each other (one domain, one watcher): they run in this order.

def test_watcher_reconnects_after_its_libvirt_connection_breaks(lab):
    snapshot(lab.dom, "s-off")  # shut-off snapshot, links up (used by the revert-to-shut-off step)
    lab.dom.create()
    snapshot(lab.dom, "s-run")  # running snapshot with memory
    lab.start_watcher()
    w = hostscan.watcher(lab.cfg["lock"], lab.cfg["heartbeat"])
    assert w["lock_held"] and w["holder_pid"] == lab.proc.pid == w["heartbeat_pid"] and w["connected"] is True
    assert w["uri"] == lab.cfg["uri"]
    lab.relay.down()  # libvirtd "restarts"
    assert wait_for(lambda: lab.heartbeat().get("connected") is False, 5), lab.log()
    assert hostscan.watcher(lab.cfg["lock"], lab.cfg["heartbeat"])["connected"] is False  # RB-11 fails now
    lab.relay.up()
    assert wait_for(lambda: lab.heartbeat().get("connected") is True, 15), lab.log()
    assert lab.logged(lambda text: "disconnected uri=" in text and connects(text) >= 2), lab.log()


def test_revert_of_a_running_domain_quarantines_it_within_5_seconds(lab):
    assert lab.links("live") == {SVC_MAC: "up", MGMT_MAC: "up"}
    lab.dom.revertToSnapshot(lab.dom.snapshotLookupByName("s-run"))  # after the reconnection: the callback is back
    assert wait_for(lambda: lab.links("live")[SVC_MAC] == "down", 5), lab.log()
    # The live link first (that ends the exposure: the 5 s promise), then the persistent definition and the
    # ledger, each waited for on its own (a slow live step must not leave them no time at all).
    assert wait_for(lambda: lab.links("config") == {SVC_MAC: "down", MGMT_MAC: "up"}, 5), lab.log()
    assert lab.links("live")[MGMT_MAC] == "up"
    assert wait_for(lambda: len(lab.record().get("events") or []) >= 2, 5), lab.log()
    rec = lab.record()
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine"], rec["events"]
    assert rec["events"][0]["detail"]["snapshot"] == "s-run"
    assert rec["events"][1]["detail"] == {"interfaces": [SVC_MAC], "live": True, "config": True}
    assert rec["quarantine"]["interfaces"] == [SVC_MAC] and rec["quarantine"]["pending_start"] is False
    assert lab.logged(lambda text: "action=quarantine" in text and "domain=%s" % lab.name in text), lab.log()


def test_revert_to_shut_off_quarantines_from_the_next_start(lab):
    lab.dom.revertToSnapshot(lab.dom.snapshotLookupByName("s-off"))
    assert not lab.dom.isActive()
    assert wait_for(lambda: (lab.record().get("quarantine") or {}).get("pending_start") is True, 5), lab.log()
    assert lab.links("config") == {SVC_MAC: "down", MGMT_MAC: "up"}
    ev = lab.record()["events"]
    assert [e["event"] for e in ev[-2:]] == ["revert", "quarantine"] and ev[-2]["detail"]["snapshot"] == "s-off"
    assert ev[-1]["detail"]["live"] is False and ev[-1]["detail"]["config"] is True
    lab.dom.create()
    assert lab.links("live") == {SVC_MAC: "down", MGMT_MAC: "up"}
    assert wait_for(lambda: lab.record()["quarantine"]["pending_start"] is False, 5), lab.log()
    assert lab.record()["events"][-1]["event"] == "quarantine" and lab.record()["events"][-1]["detail"]["live"]


def test_sigterm_ends_the_watcher_and_rb11_evidence_sees_it(lab):
    running = hostscan.watcher(lab.cfg["lock"], lab.cfg["heartbeat"])
    assert running["lock_held"] is True and running["connected"] is True and running["heartbeat_age_seconds"] < 2
    lab.proc.send_signal(signal.SIGTERM)
    assert lab.proc.wait(10) == 0
    last = lab.heartbeat()["time"]
    time.sleep(1.2)  # more than two heartbeat periods
    stopped = hostscan.watcher(lab.cfg["lock"], lab.cfg["heartbeat"])
    assert lab.heartbeat()["time"] == last and stopped["heartbeat_age_seconds"] > 1.0
    assert stopped["lock_held"] is False and stopped["holder_pid"] is None
    assert "stopped pid=%d" % lab.proc.pid in lab.log()


def test_quarantine_module_lifts_live_and_config_once(lab):
    since = lab.record()["quarantine"]["since"]
    # A quarantine that started at another time than the one the caller's audit saw (a revert after it) stays.
    stale = module("vmguard.hardening.quarantine", {"domain": lab.name, "ledger_dir": lab.cfg["ledger_dir"],
                                                    "state": "lifted", "since": "2000-01-01T00:00:00Z"})
    assert stale.get("failed") and "not lifted" in stale["msg"] and since in stale["msg"], stale
    assert lab.links("live")[SVC_MAC] == "down" and lab.record()["quarantine"]["since"] == since
    args = {"domain": lab.name, "ledger_dir": lab.cfg["ledger_dir"], "state": "lifted", "since": since}
    planned = module("vmguard.hardening.quarantine", args, check=True)
    assert planned["changed"] is True and lab.links("live")[SVC_MAC] == "down", planned  # check mode: nothing done
    assert "link up live on %s" % SVC_MAC in planned["changes"]
    done = module("vmguard.hardening.quarantine", args)
    assert done["changed"] is True and done["quarantine"] is None, done
    assert done["interfaces"][SVC_MAC] == {"before": {"live": "down", "config": "down"},
                                           "after": {"live": "up", "config": "up"}}
    assert lab.links("live") == {SVC_MAC: "up", MGMT_MAC: "up"} == lab.links("config")
    rec = lab.record()
    assert rec["quarantine"] is None and rec["events"][-1]["event"] == "lift"
    assert rec["events"][-1]["detail"] == {"interfaces": [SVC_MAC], "live": True, "config": True}
    again = module("vmguard.hardening.quarantine", args)
    assert again["changed"] is False and again["changes"] == [], again
