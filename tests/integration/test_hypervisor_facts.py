"""hypervisor_facts against real libvirt: the test driver (no daemon) for the XML-level evidence, and the
local qemu:///system daemon for what only a real QEMU domain shows - live vs persistent definitions,
libvirt's pid, the user QEMU runs as, console passwords from libvirt's own files, and the offline seal
check of the base images under a qcow2 overlay."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
sys.path.insert(0, COLLECTIONS)

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.modules import hypervisor_facts as hf  # noqa: E402

DOMAIN = """<domain type='test'><name>{name}</name>{uuid}<memory>65536</memory>
<os><type>hvm</type></os><genid/>
<devices><graphics type='vnc' listen='{listen}' {passwd}/>{devices}</devices>{seclabel}</domain>"""
STRONG = dict(listen="127.0.0.1", passwd="passwd='hunter2'", devices="",
              seclabel="<seclabel type='static' model='dac' relabel='no'><label>64055:64055</label></seclabel>")
WEAK = dict(listen="0.0.0.0", passwd="", devices="", seclabel="<seclabel type='none'/>")


def xml(name, uuid=None, **kw):
    fields = dict(STRONG, **kw)
    return DOMAIN.format(name=name, uuid="<uuid>%s</uuid>" % uuid if uuid else "", **fields)


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def conn():
    c = libvirt.open("test:///default")
    yield c
    c.close()


# --- test driver ----------------------------------------------------------------------------------------

def test_domain_that_vanishes_mid_run_is_reported_not_fatal(conn):
    dom = conn.defineXML(xml("short-lived"))
    dom.undefine()  # gone between listing and reading
    d = hf.collect_domain(dom, "/nonexistent-ledger")
    assert d["name"] == "short-lived"
    assert "vanished" in d["error"]


def test_shut_off_domain_fields_and_no_secret(conn, tmp_path):
    dom = conn.defineXML(xml("web9"))
    dom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    ledger = tmp_path / ("%s.json" % dom.UUIDString())
    ledger.write_text('{"epoch": 4, "last_hardened": "2026-11-01T00:00:00Z"}')
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["error"] is None and d["genid"] is True and d["state"] == "shutoff"
    assert d["definition"] == "persistent" and d["inactive"] is None and d["pid"] is None
    # the test driver has no files of its own to tell: unknown, never guessed from secure XML
    assert d["graphics"][0]["passwd_set"] is None and "hunter2" not in repr(d)
    assert d["seclabels"] == [dict(type="static", model="dac", relabel="no", label="64055:64055", imagelabel=None, baselabel=None)]
    assert [s["name"] for s in d["snapshots"]] == ["s1"] and d["snapshots"][0]["creation_time"] > 0
    assert d["snapshots"][0]["current"] is True  # the one just taken is the current revert target
    assert d["ledger"]["epoch"] == 4


def test_running_persistent_domain_has_live_and_persistent_definitions(conn, tmp_path):
    dom = conn.defineXML(xml("web7"))
    dom.create()
    conn.defineXML(xml("web7", uuid=dom.UUIDString(), **WEAK))  # weaker, takes effect at next start
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["definition"] == "live" and d["state"] == "running" and d["persistent"] is True
    assert d["graphics"][0]["listens"][0]["address"] == "127.0.0.1" and d["seclabels"][0]["type"] == "static"
    p = d["inactive"]
    assert p["definition"] == "persistent" and p["inactive"] is None
    assert p["graphics"][0]["listens"][0]["address"] == "0.0.0.0" and p["seclabels"][0]["type"] == "none"
    for key in hf.NON_XML_FIELDS:
        assert p[key] == d[key], key
    assert "hunter2" not in repr(d)


def test_transient_running_domain_has_only_its_live_definition(conn, tmp_path):
    dom = conn.createXML(xml("web6"), 0)
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["definition"] == "live" and d["persistent"] is False and d["inactive"] is None


def test_bulk_flags_agree_with_asking_each_domain(conn, tmp_path):
    """collect_domains learns state, persistence, autostart and snapshots from five listing calls; each
    domain's evidence is the same as when every domain is asked on its own."""
    off = conn.defineXML(xml("bulk-off"))
    off.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    auto = conn.defineXML(xml("bulk-auto"))
    auto.setAutostart(1)
    auto.create()
    paused = conn.defineXML(xml("bulk-paused"))
    paused.create()
    paused.suspend()
    conn.createXML(xml("bulk-transient"), 0)
    known = hf.bulk_flags(conn)
    assert known is not None
    by_name = dict((d["name"], d) for d in hf.collect_domains(conn, str(tmp_path), None))
    for dom in conn.listAllDomains(0):
        assert by_name[dom.name()] == hf.collect_domain(dom, str(tmp_path), None)
        flags = dict(hf._flags(dom), snapshots=bool(dom.listAllSnapshots(0)))  # pylint: disable=protected-access
        assert known[dom.UUIDString()] == flags
    assert by_name["bulk-off"]["state"] == "shutoff" and [s["name"] for s in by_name["bulk-off"]["snapshots"]] == ["s1"]
    assert by_name["bulk-auto"]["autostart"] is True and by_name["bulk-auto"]["inactive"]["autostart"] is True
    assert by_name["bulk-paused"]["state"] == "paused" and by_name["bulk-paused"]["definition"] == "live"
    assert by_name["bulk-transient"]["persistent"] is False and by_name["bulk-transient"]["autostart"] is False


def test_sriov_interface(conn, tmp_path):
    sriov = ("<interface type='hostdev'><source><address type='pci' domain='0x0000' "
             "bus='0x03' slot='0x10' function='0x1'/></source></interface>")
    dom = conn.defineXML(xml("web5", devices=sriov))
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["interfaces"][0]["type"] == "hostdev"
    assert d["interfaces"][0]["hostdev_source"] == "pci bus=0x03 domain=0x0000 function=0x1 slot=0x10"


def test_corrupt_ledger_is_visible(conn, tmp_path):
    dom = conn.defineXML(xml("web8"))
    (tmp_path / ("%s.json" % dom.UUIDString())).write_text("{not json")
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["ledger"]["error"]


def test_secure_xml_is_never_requested():
    with open(hf.__file__) as f:
        code = "\n".join(line for line in f if not line.lstrip().startswith(("#", "-", "C(")))
    assert "XML_SECURE)" not in code and "XML_SECURE |" not in code and "| libvirt.VIR_DOMAIN_XML_SECURE" not in code


NODE = """<node><domain type='test'><name>node-vm</name><memory>65536</memory><os><type>hvm</type></os>
<devices><graphics type='vnc' listen='0.0.0.0' passwd='hunter2'/><graphics type='spice' passwd='hunter3'/></devices>
</domain></node>"""


def test_module_return_carries_no_password(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(["ansible", "localhost", "-m", "vmguard.hardening.hypervisor_facts", "-a", "uri=test://%s" % node],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False, env=env)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout  # after banners
    res = json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert p.returncode == 0, res
    ev = res["evidence"]
    assert ev["error"] is None and ev["host"] == {}
    d = [d for d in ev["domains"] if d["name"] == "node-vm"][0]
    assert d["definition"] == "live" and d["inactive"]["definition"] == "persistent"
    assert [g["passwd_set"] for g in d["graphics"]] == [None, None]
    assert "hunter" not in p.stdout + p.stderr and "hunter" not in repr(ev)


# --- the local qemu:///system daemon ----------------------------------------------------------------------

PREFIX = "vmg-ev-"
QEMU_DOMAIN = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
<name>{name}</name>{uuid}<memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>{emulator}</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
<graphics type='vnc' port='-1' autoport='yes' listen='{listen}' {passwd}/></devices>{extra}</domain>"""
PASSTHROUGH = """<qemu:commandline><qemu:arg value='-object'/><qemu:arg value='secret,id=s0,data=c2VjcmV0'/>
<qemu:arg value='-spice'/><qemu:arg value='port=5999,password=hunter2'/>
<qemu:arg value='-drive'/><qemu:arg value='file=/nonexistent.qcow2,if=none,id=d9,password-secret=s0'/>
<qemu:env name='PASSWORD' value='hunter3'/><qemu:env name='LANG' value='C'/></qemu:commandline>"""
SECRETS = ("hunter2", "hunter3", "c2VjcmV0")


def _cleanup(c):
    for dom in c.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()


def _base(work, name, files):
    tree = os.path.join(work, name + ".tree")
    for rel, content in files.items():
        path = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
    raw = os.path.join(work, name + ".raw")
    subprocess.run(["truncate", "-s", "8M", raw], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, raw], check=True)
    out = os.path.join(work, name + ".qcow2")
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, out], check=True)
    shutil.rmtree(tree)
    os.unlink(raw)
    return out


def _overlay(work, name, base):
    out = os.path.join(work, name)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, out], check=True)
    return out


@pytest.fixture(scope="module")
def lab():
    tools = dict((t, shutil.which(t)) for t in ("qemu-img", "debugfs", "mkfs.ext4", "qemu-system-x86_64"))
    if not all(tools.values()):
        pytest.skip("needs qemu-utils, qemu-system-x86 and e2fsprogs")
    try:
        c = libvirt.open("qemu:///system")
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")
    work = tempfile.mkdtemp(prefix=PREFIX, dir="/var/tmp")
    os.chmod(work, 0o755)  # QEMU runs as its own user and must reach the images
    try:
        _cleanup(c)
        unsealed = _base(work, "unsealed", {"etc/machine-id": "0123456789abcdef0123456789abcdef\n",
                                            "etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"})
        sealed = _base(work, "sealed", {"etc/machine-id": "", "etc/ssh/sshd_config": "PermitRootLogin no\n"})
        common = dict(emulator=tools["qemu-system-x86_64"], uuid="")
        run_disk = _overlay(work, "run.qcow2", unsealed)
        off_disk = _overlay(work, "off.qcow2", sealed)
        dom = c.defineXML(QEMU_DOMAIN.format(name=PREFIX + "run", disk=run_disk, listen="127.0.0.1",
                                             passwd="passwd='hunter2'", extra="", **common))
        dom.create()
        # Weaker persistent definition while it runs: VNC on every address, no password, no confinement.
        c.defineXML(QEMU_DOMAIN.format(name=PREFIX + "run", disk=run_disk, listen="0.0.0.0", passwd="",
                                       extra="<seclabel type='none'/>", emulator=common["emulator"],
                                       uuid="<uuid>%s</uuid>" % dom.UUIDString()))
        off = c.defineXML(QEMU_DOMAIN.format(name=PREFIX + "off", disk=off_disk, listen="127.0.0.1",
                                             passwd="passwd='hunter2'", extra=PASSTHROUGH, **common))
        orphan = os.path.join(work, "orphan.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", orphan, "1M"], check=True)
        qemu_conf = hostscan.read_conf("/etc/libvirt/qemu.conf")
        local = dict(dirs=hostscan.qemu_driver_dirs("qemu:///system"), qemu_conf=qemu_conf)
        ledger = os.path.join(work, "ledger")
        d_run = hf.collect_domain(dom, ledger, local)
        d_off = hf.collect_domain(off, ledger, local)
        yield dict(conn=c, work=work, dom=dom, off=off, run=d_run, shut=d_off, qemu_conf=qemu_conf, local=local,
                   unsealed=unsealed, sealed=sealed, run_disk=run_disk, off_disk=off_disk, orphan=orphan, tools=tools)
    finally:
        _cleanup(c)
        c.close()
        shutil.rmtree(work, ignore_errors=True)


def test_live_and_persistent_definitions_differ(lab):
    d = lab["run"]
    assert d["error"] is None and d["state"] == "running" and d["definition"] == "live"
    p = d["inactive"]
    assert p["definition"] == "persistent" and p["pid"] == d["pid"] and p["state"] == "running"
    assert d["graphics"][0]["listens"][0]["address"] == "127.0.0.1"
    assert p["graphics"][0]["listens"][0]["address"] == "0.0.0.0"
    assert d["seclabels"][0]["type"] == "dynamic" and d["seclabels"][0]["label"]  # libvirt's DAC label
    assert [s["type"] for s in p["seclabels"]] == ["none"]
    # the live XML carries the backing chain, the persistent one got it from qemu-img (host evidence)
    assert d["disks"][0]["backing"] == [lab["unsealed"]]


def test_console_password_presence_from_libvirts_files(lab):
    d, shut = lab["run"], lab["shut"]
    assert d["graphics"][0]["passwd_set"] is True  # status file: the running console has one
    host_default = hostscan.host_password(lab["qemu_conf"], "vnc")
    assert d["inactive"]["graphics"][0]["passwd_set"] is (True if host_default else False)
    assert shut["graphics"][0]["passwd_set"] is True  # persistent config of a shut-off domain
    for secret in SECRETS:
        assert secret not in repr(d) and secret not in repr(shut)


def test_pid_is_the_qemu_process_running_as_the_qemu_user(lab):
    d = lab["run"]
    qemu = [p for p in hostscan.qemu_processes(hostscan.processes()) if p["name"] == PREFIX + "run"]
    assert len(qemu) == 1 and d["pid"] == qemu[0]["pid"]
    with open("/proc/%d/status" % d["pid"]) as f:
        real_uid = int([line for line in f if line.startswith("Uid:")][0].split()[1])
    assert qemu[0]["uid"] == real_uid and qemu[0]["uuid"] == lab["dom"].UUIDString()
    if not (lab["qemu_conf"] or {}).get("user"):
        default = hostscan.qemu_user_default()
        assert default and pwd.getpwnam(default["user"]).pw_uid == real_uid


def test_shut_off_domain_and_redacted_passthrough(lab):
    d = lab["shut"]
    assert d["state"] == "shutoff" and d["definition"] == "persistent" and d["inactive"] is None and d["pid"] is None
    assert d["qemu_commandline"] == ["-object", "secret,id=s0,data=<redacted>", "-spice",
                                     "port=5999,password=<redacted>", "-drive",
                                     "file=/nonexistent.qcow2,if=none,id=d9,password-secret=s0"]
    assert d["qemu_env"] == [{"name": "PASSWORD", "value": "<redacted>"}, {"name": "LANG", "value": "C"}]
    assert d["redacted"] == 3


def test_host_evidence_base_images_and_watcher(lab, tmp_path):
    p = dict(uri="qemu:///system", qemu_conf="/etc/libvirt/qemu.conf", daemon_confs=["/etc/libvirt/libvirtd.conf"],
             image_dirs=[lab["work"]], watcher_lock=str(tmp_path / "watcher.lock"),
             watcher_heartbeat=str(tmp_path / "watcher.heartbeat"), verify_base_images=True, work_dir=str(tmp_path))
    domains = [lab["run"], lab["shut"]]
    tools = dict(qemu_img=lab["tools"]["qemu-img"], debugfs=lab["tools"]["debugfs"])
    host = hf.collect_host(lab["conn"], p, domains, run, lab["qemu_conf"], tools)
    bases = dict((b["path"], b) for b in host["base_images"])
    assert sorted(bases) == sorted([lab["unsealed"], lab["sealed"]])
    bad, good = bases[lab["unsealed"]], bases[lab["sealed"]]
    assert bad["used_by"] == [PREFIX + "run:vda"] and bad["format"] == "qcow2" and bad["error"] is None
    assert bad["sealed"] is False and bad["findings"] == ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key"]
    assert good["used_by"] == [PREFIX + "off:vda"] and good["sealed"] is True and good["findings"] == []
    assert lab["shut"]["disks"][0]["backing"] == [lab["sealed"]]  # filled from qemu-img
    assert sorted(os.listdir(str(tmp_path))) == []  # the private work directories are gone
    refs = dict((i["path"], i["referenced"]) for i in host["images"] if i["path"].startswith(lab["work"]))
    assert refs == {lab["unsealed"]: True, lab["sealed"]: True, lab["run_disk"]: True, lab["off_disk"]: True,
                    lab["orphan"]: False}
    w = host["watcher"]
    assert w["lock_held"] is False and w["heartbeat_age_seconds"] is None and w["error"] is None
    assert not os.path.exists(p["watcher_lock"])
    # Every user's own libvirt session definitions, read as that user (VIS-01): this machine's homes hold none.
    assert host["session_domains"] == {"domains": [], "errors": [], "users": host["session_domains"]["users"]}
    assert "effective_user" not in host["qemu_conf"]
    assert host["qemu_conf"]["qemu_user_default"] == hostscan.qemu_user_default()
    assert all(set(t) == {"port", "tls", "what"} for t in host["tcp_listeners"])
    mine = [q for q in host["qemu_processes"] if q["pid"] == lab["run"]["pid"]]
    assert len(mine) == 1 and isinstance(mine[0]["uid"], int)
    for secret in SECRETS:
        assert secret not in repr(host)


# --- a large host's domains read by two processes -------------------------------------------------------

def test_only_drivers_whose_connections_share_state_are_read_by_two_processes():
    assert hf.shares_state("qemu:///system") and hf.shares_state("qemu+ssh://root@hv1/system")
    assert not hf.shares_state("test:///default") and not hf.shares_state("test+tcp://h/default")
    assert not hf.shares_state("") and not hf.shares_state(None)


@pytest.fixture
def shared(lab, monkeypatch):
    """The lab's host with a few more shut-off domains, read by two processes from 2 domains on; a
    count of the children forked; the evidence of our domains read by this process alone, for comparison."""
    c = lab["conn"]
    for i in range(5):
        c.defineXML(QEMU_DOMAIN.format(name="%sshare-%d" % (PREFIX, i), disk=lab["off_disk"], listen="127.0.0.1",
                                       passwd="", extra="", emulator=lab["tools"]["qemu-system-x86_64"], uuid=""))
    monkeypatch.setattr(hf, "SHARED_READ_MIN", 2)
    forks = []
    real_start = hf.forked.start

    def counting_start(fn, *args):
        handle = real_start(fn, *args)
        forks.append(handle is not None)
        return handle
    monkeypatch.setattr(hf.forked, "start", counting_start)
    ledger = os.path.join(lab["work"], "ledger")
    alone = hf.collect_domains(c, ledger, lab["local"])
    assert forks == []  # no URI: never a second connection
    try:
        yield dict(lab, ledger=ledger, forks=forks, alone=ours(alone))
    finally:
        for dom in c.listAllDomains(0):
            if dom.name().startswith(PREFIX + "share-"):
                dom.undefine()


def ours(domains):
    return sorted((d for d in domains if d["name"].startswith(PREFIX)), key=lambda d: d["name"])


def test_two_processes_read_what_one_reads(shared):
    both = hf.collect_domains(shared["conn"], shared["ledger"], shared["local"], "qemu:///system")
    assert shared["forks"] == [True]
    assert len(shared["alone"]) == 7 and ours(both) == shared["alone"]
    run = [d for d in ours(both) if d["name"] == PREFIX + "run"][0]
    assert run["pid"] == shared["run"]["pid"] and run["inactive"]["definition"] == "persistent"


def test_a_child_without_a_connection_leaves_its_half_to_the_parent(shared, monkeypatch):
    def refuse(uri):
        raise libvirt.libvirtError("no second connection here")
    monkeypatch.setattr(hf.libvirt, "open", refuse)  # the forked child inherits it; the parent's conn is open
    both = hf.collect_domains(shared["conn"], shared["ledger"], shared["local"], "qemu:///system")
    assert shared["forks"] == [True] and ours(both) == shared["alone"]


def test_a_child_killed_while_reading_leaves_its_half_to_the_parent(shared, monkeypatch):
    monkeypatch.setattr(hf, "_collect_share", lambda *a: os.kill(os.getpid(), 9))
    both = hf.collect_domains(shared["conn"], shared["ledger"], shared["local"], "qemu:///system")
    assert shared["forks"] == [True] and ours(both) == shared["alone"]


def test_a_domain_gone_before_the_child_lists_is_reported_not_dropped(shared):
    c = shared["conn"]
    real = c.lookupByName(PREFIX + "share-0")
    share = [(real.UUIDString(), real.name()), ("6a3c1f0e-0000-4000-8000-00000000dead", PREFIX + "gone")]
    domains, lost = hf._collect_share("qemu:///system", share, shared["ledger"], shared["local"], {})  # pylint: disable=protected-access
    assert lost is None
    assert [d["name"] for d in domains] == [PREFIX + "share-0", PREFIX + "gone"]
    assert domains[0] == [d for d in shared["alone"] if d["name"] == PREFIX + "share-0"][0]
    assert domains[1] == {"name": PREFIX + "gone", "error": "domain vanished while it was read"}
