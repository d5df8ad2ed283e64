"""`make demo-down` with lab guests that have snapshots: the lab role with vmguard_lab_state=absent, pointed
at a throwaway lab (vmguard_lab_name vmg-h9-lab, its directory in a temporary directory) on qemu:///system.

The lab holds a shut-off domain with a qcow2 disk and two internal snapshots WITH libvirt metadata (a plain
undefine refuses it: the regression a1890c7 fixed), a running domain (TCG, no disk: the role destroys it and
checks no QEMU process of the lab survives) and an inactive network. A domain of another name with a
snapshot is left alone. Everything made here is named vmg-h9-* and removed by the fixture whatever happens.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
URI = "qemu:///system"
PREFIX = "vmg-h9-"
LAB = PREFIX + "lab"

DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{disk}</devices></domain>"""
DISK = "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
NETWORK = "<network><name>{name}</name><bridge name='vmg-h9-br0'/></network>"
SNAPSHOT = "<domainsnapshot><name>{name}</name><description>vmg-h9 test</description></domainsnapshot>"


def sweep(conn):
    for dom in conn.listAllDomains():
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    for net in conn.listAllNetworks():
        if net.name().startswith(PREFIX):
            if net.isActive():
                net.destroy()
            net.undefine()


@pytest.fixture()
def conn():
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    try:
        c = libvirt.open(URI)
        c.getLibVersion()
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")
    if not shutil.which("qemu-img"):
        pytest.skip("needs qemu-img")
    sweep(c)
    try:
        yield c
    finally:
        sweep(c)
        c.close()


def disk(path):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"], check=True)
    return path


def snapshot_names(dom):
    return sorted(s.getName() for s in dom.listAllSnapshots())


def qcow2_snapshots(path):
    info = json.loads(subprocess.run(["qemu-img", "info", "--force-share", "--output=json", path], stdout=subprocess.PIPE,
                                     universal_newlines=True, check=True).stdout)
    return sorted(s["name"] for s in info.get("snapshots", []))


def run_lab_absent(lab_dir):
    playbook = os.path.join(lab_dir, "down.yml")
    with open(playbook, "w") as f:
        f.write("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: vmguard.hardening.lab\n")
    extra = {"vmguard_lab_state": "absent", "vmguard_lab_name": LAB, "vmguard_lab_dir": lab_dir, "vmguard_lab_uri": URI}
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=os.path.join(lab_dir, ".ansible-tmp"))
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([exe if os.path.exists(exe) else "ansible-playbook", "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", json.dumps(extra), playbook],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env, cwd=ROOT,
                          timeout=300, check=False)


def test_lab_absent_removes_domains_with_snapshots_and_leaves_other_domains(conn):
    work = tempfile.mkdtemp(prefix=PREFIX + "lab-", dir="/tmp")
    try:
        os.chmod(work, 0o711)
        lab_root = os.path.join(work, LAB)
        os.makedirs(lab_root)
        overlay = disk(os.path.join(lab_root, "web1.qcow2"))
        with open(os.path.join(lab_root, "inventory.yml"), "w") as f:
            f.write("all: {}\n")
        web = conn.defineXML(DOMAIN.format(name=LAB + ".web1", disk=DISK.format(path=overlay)))
        for name in ("before-harden", "after-harden"):
            web.snapshotCreateXML(SNAPSHOT.format(name=name), 0)  # shut off: internal, in the qcow2, with metadata
        assert snapshot_names(web) == ["after-harden", "before-harden"]
        assert qcow2_snapshots(overlay) == ["after-harden", "before-harden"]
        with pytest.raises(libvirt.libvirtError, match="snapshot"):
            web.undefine()  # what the role did before a1890c7: refused, the domain stays
        assert conn.lookupByName(LAB + ".web1")
        mail = conn.defineXML(DOMAIN.format(name=LAB + ".mail1", disk=""))
        mail.create()
        assert mail.isActive()
        conn.networkDefineXML(NETWORK.format(name=LAB + ".svc-web"))
        other_disk = disk(os.path.join(work, "other.qcow2"))
        other = conn.defineXML(DOMAIN.format(name=PREFIX + "other", disk=DISK.format(path=other_disk)))
        other.snapshotCreateXML(SNAPSHOT.format(name="keep"), 0)

        p = run_lab_absent(work)
        assert p.returncode == 0, p.stdout[-4000:]

        names = [d.name() for d in conn.listAllDomains()]
        assert LAB + ".web1" not in names and LAB + ".mail1" not in names, names
        assert not [n for n in conn.listNetworks() + conn.listDefinedNetworks() if n.startswith(LAB + ".")]
        assert not os.path.exists(lab_root)  # the overlays (and the internal snapshots in them) went with it
        assert subprocess.run(["pgrep", "-f", "guest=%s\\." % LAB], stdout=subprocess.PIPE, check=False).returncode == 1
        # libvirt keeps no snapshot metadata of the undefined domain: a new domain of that name starts with none
        again = conn.defineXML(DOMAIN.format(name=LAB + ".web1", disk=""))
        assert snapshot_names(again) == [] and again.snapshotNum(0) == 0
        again.undefine()
        # Another domain (not of this lab) keeps its definition and its snapshot.
        assert snapshot_names(conn.lookupByName(PREFIX + "other")) == ["keep"]

        p = run_lab_absent(work)  # idempotent: nothing left to remove
        assert p.returncode == 0, p.stdout[-4000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)
