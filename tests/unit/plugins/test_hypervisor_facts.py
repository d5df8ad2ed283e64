"""hypervisor_facts on libvirt's test driver (no daemon): networks with their bridges, socket interface and network
disk sources, volume disks resolved to their path through the storage pools; and the evidence it gathers from a
node where one domain's volume is another domain's file, audited by ISO-02 and ISO-06; host-local disk sources
identified by what they are (inode, block device number), so ISO-06 sees one disk under two names."""

import errno
import os
import stat

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python")

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.modules import hypervisor_facts as hf  # noqa: E402

libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are asserted, not printed

DOMAIN = """<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>
<metadata><vmguard:domain xmlns:vmguard="urn:x-vmguard:domain:1"><vmguard:service>{service}</vmguard:service></vmguard:domain></metadata>
<devices>{devices}</devices></domain>"""

NODE = """<node>
  <network><name>default</name><bridge name='virbr0'/><forward mode='nat'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'/></network>
  <network><name>uplink</name><forward mode='passthrough'><interface dev='eth1'/><interface dev='eth2'/></forward></network>
  <pool type='dir'>
    <name>default</name>
    <target><path>/var/lib/libvirt/images</path></target>
    <volume type='file'><name>shared.qcow2</name><capacity>1048576</capacity>
      <target><path>/var/lib/libvirt/images/shared.qcow2</path><format type='qcow2'/></target></volume>
  </pool>
  {domains}
</node>"""

VOLUME = "<disk type='volume' device='disk'><source pool='default' volume='%s'/><target dev='vda'/></disk>"
FILE = "<disk type='file' device='disk'><source file='%s'/><target dev='vda'/></disk>"
ON_DEFAULT = "<interface type='network'><source network='default'/><filterref filter='clean-traffic'/></interface>"
ON_VIRBR0 = "<interface type='bridge'><source bridge='virbr0'/><filterref filter='clean-traffic'/></interface>"
ON_BR1 = "<interface type='bridge'><source bridge='br1'/><filterref filter='clean-traffic'/></interface>"


def node(tmp_path, *domains):
    path = tmp_path / "node.xml"
    path.write_text(NODE.format(domains="\n".join(DOMAIN.format(name=n, service=s, devices=d) for n, s, d in domains)))
    return "test://%s" % path


@pytest.fixture
def conn():
    c = libvirt.open("test:///default")
    yield c
    c.close()


def test_collect_networks_names_each_network_bridge_and_macvtap_devs(tmp_path):
    c = libvirt.open(node(tmp_path))
    try:
        nets = hf.collect_networks(c)
    finally:
        c.close()
    assert nets == {"default": {"bridge": "virbr0", "forward": "nat", "devs": [], "active": True},
                    "uplink": {"bridge": None, "forward": "passthrough", "devs": ["eth1", "eth2"], "active": True}}


def test_resolve_volumes_gives_the_path_or_the_error(conn):
    pool = conn.storagePoolLookupByName("default-pool")
    vol = pool.createXML("<volume><name>vmg-iso-a.img</name><capacity>1048576</capacity></volume>", 0)
    path = vol.path()
    try:
        disks = [dict(type="volume", source="default-pool/vmg-iso-a.img", pool="default-pool", volume="vmg-iso-a.img"),
                 dict(type="volume", source="default-pool/missing.img", pool="default-pool", volume="missing.img"),
                 dict(type="volume", source="nopool/x.img", pool="nopool", volume="x.img"),
                 dict(type="file", source="/srv/a.img")]
        hf.resolve_volumes(conn, disks)
    finally:
        vol.delete(0)
    assert (disks[0]["volume_path"], disks[0]["volume_type"], disks[0]["volume_pool_type"], disks[0]["volume_error"]) == (
        path, "file", "dir", None)
    assert path.endswith("/vmg-iso-a.img")
    assert disks[1]["volume_path"] is None and "missing.img" in disks[1]["volume_error"] and "default-pool" in disks[1]["volume_error"]
    assert disks[2]["volume_path"] is None and "nopool" in disks[2]["volume_error"]
    assert "volume_path" not in disks[3]


def test_collect_domain_derives_socket_and_network_disk_sources(conn):
    devices = ("<disk type='network' device='disk'><source protocol='nbd' name='export'><host name='192.0.2.1' port='10809'/>"
               "</source><target dev='vdb'/></disk>"
               "<interface type='mcast'><mac address='52:54:00:00:00:01'/><source address='230.0.0.1' port='5558'/></interface>"
               "<interface type='udp'><mac address='52:54:00:00:00:02'/><source address='127.0.0.1' port='11111'>"
               "<local address='127.0.0.1' port='22222'/></source></interface>")
    dom = conn.defineXML(DOMAIN.format(name="vmg-iso-sockets", service="web", devices=devices))
    try:
        d = hf.collect_domain(dom, "/nonexistent-ledger")
    finally:
        dom.undefine()
    assert d["error"] is None
    assert (d["disks"][0]["protocol"], d["disks"][0]["name"], d["disks"][0]["hosts"]) == ("nbd", "export", ["192.0.2.1:10809"])
    mcast, udp = d["interfaces"]
    assert (mcast["source_address"], mcast["source_port"], mcast["local_address"], mcast["local_port"]) == ("230.0.0.1", "5558", None, None)
    assert (udp["source_address"], udp["source_port"], udp["local_address"], udp["local_port"]) == ("127.0.0.1", "11111", "127.0.0.1", "22222")


def gather(uri):
    p = dict((k, v.get("default")) for k, v in hf.ARGUMENT_SPEC.items())
    p.update(uri=uri, host=False, ledger_dir="/nonexistent-ledger")
    warnings = []
    ev = hf.gather(p, None, lambda name: None, warnings.append)
    assert ev["error"] is None and not warnings, (ev["error"], warnings)
    return ev


def audit(ev, rule):
    findings = engine.evaluate(policy.load_policy({}), {"hypervisors": {"hv1": ev}, "guests": {}}, only={rule})
    return dict((f["subject"]["id"], f) for f in findings if f["subject"]["kind"] == "domain")


def test_gathered_volume_is_the_file_another_service_attaches(tmp_path):
    uri = node(tmp_path, ("web1", "web", VOLUME % "shared.qcow2" + ON_DEFAULT),
               ("mail1", "mail", FILE % "/var/lib/libvirt/images/shared.qcow2" + ON_VIRBR0))
    ev = gather(uri)
    web = [d for d in ev["domains"] if d["name"] == "web1"][0]
    assert web["disks"][0]["volume_path"] == "/var/lib/libvirt/images/shared.qcow2" and web["disks"][0]["volume_error"] is None
    assert ev["networks"]["default"]["bridge"] == "virbr0" and ev["networks_error"] is None
    fs = audit(ev, "ISO-06")
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail", fs
    # The test driver's live XML does not name the bridge: the networks map ties network default to virbr0.
    fs = audit(ev, "ISO-02")
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail", fs
    assert fs["hv1/web1"]["evidence"]["shared"] == {"hv1/network:default": ["hv1/mail1"]}


def test_gathered_domains_on_their_own_disk_and_bridge_pass(tmp_path):
    uri = node(tmp_path, ("web1", "web", VOLUME % "shared.qcow2" + ON_DEFAULT),
               ("mail1", "mail", FILE % "/var/lib/libvirt/images/mail1.qcow2" + ON_BR1))
    ev = gather(uri)
    assert set(f["status"] for f in audit(ev, "ISO-06").values()) == {"pass"}
    assert set(f["status"] for f in audit(ev, "ISO-02").values()) == {"pass"}


def test_gathered_volume_that_cannot_be_resolved_is_an_iso06_error(tmp_path):
    ev = gather(node(tmp_path, ("web1", "web", VOLUME % "gone.qcow2" + ON_DEFAULT)))
    disk = ev["domains"][0]["disks"][0]
    assert disk["volume_path"] is None and "gone.qcow2" in disk["volume_error"]
    f = audit(ev, "ISO-06")["hv1/web1"]
    assert f["status"] == "error" and "gone.qcow2" in f["message"]


# --- one disk under two names (ISO-06 by what the path is, not how it is spelt) ----------------------------------

from rules import evidence as E  # noqa: E402 (tests/unit is on sys.path)

EXTRA = "<disk type='%s' device='disk'><source %s='%s'/><target dev='vdb' bus='virtio'/></disk>"


def identified(name, service, kind, path, **kw):
    """A domain with a second disk ``path`` whose host-local sources are identified as on a local qemu driver."""
    d = E.domain(name, service, state="shutoff", extra=EXTRA % (kind, "file" if kind == "file" else "dev", path))
    hf.identify_sources(d["disks"], True, **kw)
    return d


def iso06(*domains):
    fs = engine.evaluate(policy.load_policy({}), E.fleet(list(domains)), only={"ISO-06"})
    return dict((f["subject"]["id"], f) for f in fs if f["subject"]["kind"] == "domain")


def test_a_file_and_a_link_to_it_are_one_disk(tmp_path):
    (tmp_path / "images").mkdir()
    data = tmp_path / "images" / "data.img"
    data.write_bytes(b"")
    (tmp_path / "by-id").mkdir()
    alias = tmp_path / "by-id" / "wwn-0x5000c500a1b2c3d4"
    alias.symlink_to("../images/data.img")
    other = tmp_path / "images" / "other.img"
    other.write_bytes(b"")
    web, mail = identified("web1", "web", "file", str(data)), identified("mail1", "mail", "file", str(alias))
    st = os.stat(str(data))
    assert web["disks"][1]["source_id"] == mail["disks"][1]["source_id"] == "inode %d:%d" % (st.st_dev, st.st_ino)
    assert web["disks"][1]["source_id_error"] is None
    fs = iso06(web, mail)
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail", fs
    assert fs["hv1/mail1"]["message"] == "%s shared with other services: hv1/web1" % alias
    assert set(f["status"] for f in iso06(web, identified("mail1", "mail", "file", str(other))).values()) == {"pass"}


class _BlockStat(object):
    """What identify_sources reads of os.stat for a block device node (none is created here)."""

    def __init__(self, rdev):
        self.st_mode, self.st_rdev, self.st_dev, self.st_ino = stat.S_IFBLK | 0o660, rdev, 5, 1


def block_stat(table):
    """os.stat over ``table`` {path: device number}."""
    def fake(path):
        if path not in table:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return _BlockStat(table[path])
    return fake


def test_block_devices_are_compared_by_device_number():
    sdb, dm3, dm4 = os.makedev(8, 16), os.makedev(253, 3), os.makedev(253, 4)
    fake = block_stat({"/dev/sdb": sdb, "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4": sdb, "/dev/vg/lv": dm3,
                       "/dev/mapper/vg-lv": dm3, "/dev/mapper/vg-other": dm4})
    web = identified("web1", "web", "block", "/dev/sdb", stat=fake)
    mail = identified("mail1", "mail", "block", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", stat=fake)
    assert web["disks"][1]["source_id"] == mail["disks"][1]["source_id"] == "block 8:16"
    assert set(f["status"] for f in iso06(web, mail).values()) == {"fail"}
    web = identified("web1", "web", "block", "/dev/vg/lv", stat=fake)
    mail = identified("mail1", "mail", "block", "/dev/mapper/vg-lv", stat=fake)
    assert set(f["status"] for f in iso06(web, mail).values()) == {"fail"}
    other = identified("mail1", "mail", "block", "/dev/mapper/vg-other", stat=fake)
    assert set(f["status"] for f in iso06(web, other).values()) == {"pass"}


def test_what_cannot_be_identified_is_compared_by_path_and_says_why(tmp_path):
    disks = [dict(type="file", source=str(tmp_path / "gone.img")), dict(type="network", source="nbd:x", protocol="nbd"),
             dict(type="volume", source="p/v", volume_path=str(tmp_path), volume_type="dir"),
             dict(type="volume", source="rbd/img", volume_path="rbd/img", volume_type="network"),
             dict(type="volume", source="p/missing", volume_path=None, volume_type=None)]
    hf.identify_sources(disks, True)
    assert disks[0]["source_id"] is None and disks[0]["source_id_error"] == (
        "cannot stat %s: No such file or directory (compared by path)" % disks[0]["source"])
    assert "source_id" not in disks[1] and "source_id" not in disks[3] and "source_id" not in disks[4]
    assert disks[2]["source_id"].startswith("inode ") and disks[2]["source_id_error"] is None
    remote = [dict(type="file", source=str(tmp_path))]
    hf.identify_sources(remote, False)
    assert remote[0]["source_id"] is None and "not a local qemu driver" in remote[0]["source_id_error"]
    # The same missing path in two domains of different services is still one disk (by its path).
    gone = str(tmp_path / "gone.img")
    web, mail = identified("web1", "web", "file", gone), identified("mail1", "mail", "file", gone)
    assert set(f["status"] for f in iso06(web, mail).values()) == {"fail"}


def test_gathered_disks_of_the_test_driver_are_not_looked_up(tmp_path):
    ev = gather(node(tmp_path, ("web1", "web", FILE % "/var/lib/libvirt/images/web1.qcow2")))
    disk = ev["domains"][0]["disks"][0]
    assert disk["source_id"] is None and "not a local qemu driver" in disk["source_id_error"]


def test_virtproxyd_conf_is_read_by_default_and_a_listeners_daemon_file_too(tmp_path):
    assert "/etc/libvirt/virt*d.conf" in hf.ARGUMENT_SPEC["daemon_confs"]["default"]  # virtproxyd.conf among them
    (tmp_path / "libvirtd.conf").write_text("listen_tls = 1\n")
    (tmp_path / "virtproxyd.conf").write_text("tls_no_verify_certificate = 1\n")
    (tmp_path / "alt.conf").write_text("tls_no_verify_certificate = 1 # by --config\n")
    (tmp_path / "bad.conf").write_text("listen_tls = yes\n")
    paths = [str(tmp_path / n) for n in ("libvirtd.conf", "virtqemud.conf", "virtproxyd.conf", "bad.conf")]
    listeners = [{"port": 16514, "tls": True, "what": "tcp 0.0.0.0:16514", "daemon": "libvirtd",
                  "config": str(tmp_path / "alt.conf")},
                 {"port": 16514, "tls": True, "what": "tcp6 [::]:16514", "daemon": "virtproxyd",
                  "config": str(tmp_path / "gone.conf")}]
    confs, errors = hf.daemon_confs(paths, listeners)
    assert confs == {"libvirtd.conf": {"listen_tls": "1"}, "virtproxyd.conf": {"tls_no_verify_certificate": "1"},
                     "alt.conf": {"tls_no_verify_certificate": "1"},
                     "gone.conf": {}}  # a daemon without its file: its defaults
    why = "%s: line 1: expecting a value (libvirt refuses the whole file)" % (tmp_path / "bad.conf")
    assert errors == {"bad.conf": why}


def test_every_modular_daemons_conf_is_read_by_default_and_leak06_judges_its_socket_perms(tmp_path):
    default = hf.ARGUMENT_SPEC["daemon_confs"]["default"]
    assert default == ["/etc/libvirt/libvirtd.conf", "/etc/libvirt/virt*d.conf"]
    (tmp_path / "libvirtd.conf").write_text("listen_tcp = 0\n")
    (tmp_path / "virtqemud.conf").write_text('unix_sock_rw_perms = "0770"\n')
    (tmp_path / "virtsecretd.conf").write_text('unix_sock_rw_perms = "0777"\n')
    (tmp_path / "virtstoraged.conf").write_text('unix_sock_group = "libvirt"\nunix_sock_rw_perms = "0776"\n')
    (tmp_path / "virtnodedevd.conf").write_text("unix_sock_rw_perms = \"0700\"\n")
    (tmp_path / "qemu.conf").write_text('user = "root"\n')  # no daemon's file
    paths = [p.replace("/etc/libvirt", str(tmp_path)) for p in default]
    assert hf.expand_paths(paths + [str(tmp_path / "virtqemud.conf")]) == [str(tmp_path / n) for n in (
        "libvirtd.conf", "virtnodedevd.conf", "virtqemud.conf", "virtsecretd.conf", "virtstoraged.conf")]
    confs, errors = hf.daemon_confs(paths, [])
    assert sorted(confs) == ["libvirtd.conf", "virtnodedevd.conf", "virtqemud.conf", "virtsecretd.conf",
                             "virtstoraged.conf"] and errors == {}
    assert confs["virtsecretd.conf"] == {"unix_sock_rw_perms": "0777"}
    (f,) = E.run("LEAK-06", E.fleet([], host_ev=E.host(daemon_confs=confs)))
    assert f["status"] == "fail"
    assert "virtsecretd.conf: unix_sock_rw_perms = 0777 (world-accessible)" in f["message"]
    assert "virtstoraged.conf: unix_sock_rw_perms = 0776 (world-accessible)" in f["message"]
    assert "virtqemud.conf" not in f["message"]
    assert hf.expand_paths([str(tmp_path / "none*.conf")]) == []


def test_socket_dirs_are_the_unix_sock_dirs_the_daemons_name():
    confs = {"libvirtd.conf": {"unix_sock_dir": "/run/libvirt"}, "virtqemud.conf": {"unix_sock_dir": "/srv/sock"},
             "virtsecretd.conf": {"unix_sock_dir": "relative"}, "virtproxyd.conf": {}, "gone.conf": None}
    assert hf.socket_dirs(confs) == ["/srv/sock"]


def test_image_dirs_are_libvirts_own_and_the_pools_not_the_disks_directories(conn):
    p = {"image_dirs": ["/srv/extra"]}
    dirs = hf.image_dirs(conn, p)
    assert "/srv/extra" in dirs and "/var/lib/libvirt/images" in dirs and "/var/lib/libvirt/qemu/save" in dirs
    assert "/default-pool" in dirs  # the test driver's directory pool
    assert all(not d.startswith("/var/tmp") for d in dirs)
