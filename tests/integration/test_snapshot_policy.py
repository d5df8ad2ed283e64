"""snapshot_policy on libvirt: the test driver (a node file with snapshots, no daemon) for what the
module decides and reports, and one real domain on qemu:///system (vmg-sn-1, a small qcow2 with
internal snapshots) to prove that a deletion really removes the snapshot from the image."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

UUID = "5a5a5a5a-1111-4222-8333-444444444444"
NOW = int(time.time())
HOUR = 3600
DOM = ("<domain type='test'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory><os><type>hvm</type></os>"
       "<devices><disk type='file' device='disk'><source file='/tmp/{name}.img'/><target dev='vda' bus='virtio'/>"
       "</disk></devices></domain>")


def snap(name, hours_ago, parent=None, memory="no", current=False, external=False):
    """One <test:domainsnapshot> of a node file (libvirt's own snapshot XML plus the test driver's <active>)."""
    state = "running" if memory != "no" else ("disk-snapshot" if external else "shutoff")
    disks = ("<disks><disk name='vda' snapshot='external'><source file='/tmp/%s.qcow2'/></disk></disks>" % name
             if external else "")
    mem = "<memory snapshot='%s'%s/>" % (memory, " file='/tmp/%s.mem'" % name if memory == "external" else "")
    return ("<test:domainsnapshot><name>%s</name><state>%s</state>%s<creationTime>%d</creationTime>%s%s"
            "<active>%d</active>%s</test:domainsnapshot>"
            % (name, state, "<parent><name>%s</name></parent>" % parent if parent else "", NOW - hours_ago * HOUR,
               mem, disks, 1 if current else 0, DOM.format(name="vm1", uuid=UUID)))


# vm1: old -> mid -> leaf (a chain), old -> mem (memory state), old -> cur (the current snapshot),
# golden (pinned by name in the tests), ext (an external disk snapshot).
SNAPSHOTS = [snap("old", 300), snap("mid", 200, "old"), snap("leaf", 150, "mid"), snap("mem", 10, "old", memory="internal"),
             snap("cur", 5, "old", current=True), snap("golden", 400), snap("ext", 250, external=True)]


@pytest.fixture
def node(tmp_path):
    dom = DOM.format(name="vm1", uuid=UUID).replace(
        "<domain type='test'>", "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>", 1)
    other = DOM.format(name="vm2", uuid="5a5a5a5a-1111-4222-8333-555555555555")
    path = tmp_path / "node.xml"
    path.write_text("<node>%s%s</node>" % (dom.replace("</devices>", "</devices>" + "".join(SNAPSHOTS)), other))
    return "test://%s" % path


def module(args, check=False):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")  # the toolchain's, beside its python
    cmd = [ansible if os.path.exists(ansible) else "ansible", "localhost", "-m", "vmguard.hardening.snapshot_policy", "-a", json.dumps(args)]
    cmd += ["--check", "--diff"] if check else ["--diff"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


PLAN = {"vm1": {"delete": ["leaf", "mid", "old", "cur", "golden", "ext"],
                "why": {"leaf": "RB-02 older than 72h (150h)", "mid": "RB-02 older than 72h (200h)"}}}
EXTERNAL = "cannot prune an external snapshot with this libvirt (9.0.0; needs 9.7.0): it would delete the metadata only"


def external_refused():
    return libvirt.getVersion() < 9007000


def test_without_prune_it_reports_and_deletes_nothing(node):
    r = module({"uri": node, "domains": PLAN, "pinned": ["vm1/gold*"]})
    assert r["changed"] is False and not r.get("failed"), r
    vm1 = r["domains"]["vm1"]
    assert vm1["deleted"] == [] and vm1["would_delete"] == ["leaf", "mid"]  # leaves first
    assert vm1["why"] == {"leaf": "RB-02 older than 72h (150h)", "mid": "RB-02 older than 72h (200h)"}
    assert vm1["refused"]["cur"] == "the current snapshot"
    assert vm1["refused"]["golden"] == "pinned (vm1/gold*)"
    assert vm1["refused"]["old"] == "has child snapshot(s) that stay: cur, mem"  # the children are not planned
    if external_refused():
        assert vm1["refused"]["ext"] == EXTERNAL
    assert vm1["kept"] == sorted(["cur", "ext", "golden", "mem", "old"])
    assert list(r["domains"]) == ["vm1"]  # only the planned domain is touched


def test_check_mode_with_prune_deletes_nothing_and_shows_the_diff(node):
    r = module({"uri": node, "domains": PLAN, "prune": True}, check=True)
    vm1 = r["domains"]["vm1"]
    assert r["changed"] is True and vm1["deleted"] == [] and vm1["would_delete"] == ["leaf", "mid", "golden"]
    assert r["diff"]["before"] == "vm1: cur, ext, golden, leaf, mem, mid, old\n"
    assert r["diff"]["after"] == "vm1: cur, ext, mem, old\n"


def test_prune_deletes_children_first_and_keeps_the_current_one(node):
    plan = {"vm1": {"delete": ["old", "mid", "leaf", "mem"], "why": {}}}
    r = module({"uri": node, "domains": plan, "prune": True})
    vm1 = r["domains"]["vm1"]
    assert not r.get("failed"), r
    # In deletion order, every child before its parent (leaf before mid); old keeps its current child.
    assert vm1["deleted"] == ["leaf", "mem", "mid"] and vm1["would_delete"] == []
    assert vm1["refused"] == {"old": "has child snapshot(s) that stay: cur"}
    assert vm1["kept"] == ["cur", "ext", "golden", "old"]  # listed from libvirt after the deletions
    assert r["changed"] is True and r["diff"]["after"] == "vm1: cur, ext, golden, old\n"


def test_rule_parameters_alone_choose_like_the_planner(node, tmp_path):
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    (ledger_dir / (UUID + ".json")).write_text(json.dumps(
        {"schema": "vmguard.ledger/v1", "uuid": UUID, "epoch": 4, "epoch_time": NOW - 220 * HOUR}))
    r = module({"uri": node, "max_age_hours": 72, "ledger_dir": str(ledger_dir), "allow_memory": False,
                "max_count": 2, "pinned": ["*/golden"]})
    vm1, vm2 = r["domains"]["vm1"], r["domains"]["vm2"]
    assert vm2 == {"kept": [], "deleted": [], "would_delete": [], "why": {}, "refused": {}}
    assert vm1["would_delete"] == ["leaf", "mem", "mid"] and r["changed"] is False
    assert vm1["why"]["mid"] == "RB-02 older than 72h (200h)"
    assert vm1["why"]["mem"] == "RB-13 memory-state snapshot"
    assert vm1["refused"]["old"] == "has child snapshot(s) that stay: cur"
    assert vm1["refused"]["golden"] == "pinned (*/golden)"
    # RB-04 needs the ledger: a corrupt one fails that domain, never a silent "nothing older".
    (ledger_dir / (UUID + ".json")).write_text("{not json")
    r = module({"uri": node, "ledger_dir": str(ledger_dir)})
    assert r.get("failed") and "vm1" in r["failed_domains"] and "not valid JSON" in r["failed_domains"]["vm1"]


def test_bad_arguments_and_unknown_domains_are_named(node):
    r = module({"uri": node, "domains": {"ghost": {"delete": ["x"]}}, "prune": True})
    assert r.get("failed") and r["failed_domains"] == {"ghost": "domain not found"} and r["changed"] is False
    r = module({"uri": node, "domains": PLAN, "max_count": 2})
    assert r.get("failed") and "mutually exclusive" in r["msg"]
    r = module({"uri": node, "domains": {"vm1": {"delete": "leaf"}}})
    assert r.get("failed") and r["msg"].startswith("domains.vm1: expected {delete: [snapshot names]")
    r = module({"uri": node})
    assert r.get("failed") and "one of the following is required" in r["msg"]


# --- a real domain on qemu:///system ----------------------------------------------------------------

QEMU_DOMAIN = """<domain type='qemu'><name>vmg-sn-1</name><memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{image}'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>"""


@pytest.fixture
def real_domain(tmp_path):
    try:
        conn = libvirt.open("qemu:///system")
        conn.getLibVersion()
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")
    if not shutil.which("qemu-img"):
        pytest.skip("needs qemu-img")
    image = str(tmp_path / "vmg-sn-1.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"], check=True)
    dom = conn.defineXML(QEMU_DOMAIN.format(image=image))
    try:
        for name in ("sn-a", "sn-b", "sn-c"):
            dom.snapshotCreateXML("<domainsnapshot><name>%s</name></domainsnapshot>" % name, 0)
        yield conn, dom, image
    finally:
        try:
            for s in dom.listAllSnapshots(0):
                s.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            dom.undefine()
        finally:
            conn.close()


def image_snapshots(image):
    out = subprocess.run(["qemu-img", "snapshot", "-l", "-U", image], stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    return sorted(line.split()[1] for line in out.splitlines()[2:] if line.strip())


def test_real_domain_snapshots_are_deleted_from_the_image(real_domain):
    conn, dom, image = real_domain
    # sn-a -> sn-b -> sn-c, then back to sn-a and a new branch sn-d (the current snapshot).
    dom.revertToSnapshot(dom.snapshotLookupByName("sn-a", 0), 0)
    dom.snapshotCreateXML("<domainsnapshot><name>sn-d</name></domainsnapshot>", 0)
    assert image_snapshots(image) == ["sn-a", "sn-b", "sn-c", "sn-d"]
    r = module({"uri": "qemu:///system", "max_count": 1})  # RB-03 alone: the branch can go, sn-a keeps sn-d
    d = r["domains"]["vmg-sn-1"]
    assert d["would_delete"] == ["sn-c", "sn-b"] and r["changed"] is False
    plan = {"vmg-sn-1": {"delete": ["sn-a", "sn-b", "sn-c", "sn-d"], "why": {"sn-b": "RB-03 beyond max_snapshots 1"}}}
    r = module({"uri": "qemu:///system", "domains": plan, "prune": True}, check=True)
    assert r["changed"] is True and r["domains"]["vmg-sn-1"]["would_delete"] == ["sn-c", "sn-b"]
    assert image_snapshots(image) == ["sn-a", "sn-b", "sn-c", "sn-d"]  # check mode: nothing deleted
    r = module({"uri": "qemu:///system", "domains": plan, "prune": True})
    d = r["domains"]["vmg-sn-1"]
    assert not r.get("failed"), r
    assert d["deleted"] == ["sn-c", "sn-b"] and d["kept"] == ["sn-a", "sn-d"]
    assert d["refused"] == {"sn-a": "has child snapshot(s) that stay: sn-d", "sn-d": "the current snapshot"}
    assert image_snapshots(image) == ["sn-a", "sn-d"]
    assert sorted(s.getName() for s in dom.listAllSnapshots(0)) == ["sn-a", "sn-d"]
