"""ISO-02 and ISO-06 through the domain_policy module on a real running domain (qemu:///system, TCG, no guest OS):
the service interface moves to the service's network live (libvirt's device update) and in the persistent
definition, the missing target network is created isolated (no <ip>, no <forward>), and a disk shared with another
service is detached live (USB: unplugged without the guest's help) and from the persistent definition; the boot
disk stays. A second run changes nothing. Only vmg-h7-* domains and networks, removed in teardown."""

import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")
etree = pytest.importorskip("lxml.etree", reason="needs lxml (make setup installs it)")
from test_corpus_fixers import run_module  # noqa: E402

URI = "qemu:///system"
PREFIX = "vmg-h7-"
IMAGES = "/var/lib/libvirt/images"
DOMAIN = """<domain type='qemu'>
  <name>vmg-h7-mail</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{boot}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{shared}'/><target dev='sdb' bus='usb'/></disk>
    <controller type='usb' model='qemu-xhci'/>
    <interface type='network'><mac address='52:54:00:07:00:01'/><source network='vmg-h7-a'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:07:00:02'/><source network='vmg-h7-b'/><model type='virtio'/></interface>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>"""


def sweep(conn):
    for dom in conn.listAllDomains():
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    for net in conn.listAllNetworks():
        if net.name().startswith(PREFIX):
            if net.isActive():
                net.destroy()
            net.undefine()
    for name in ("vmg-h7-boot.img", "vmg-h7-shared.img"):
        if os.path.exists(os.path.join(IMAGES, name)):
            os.unlink(os.path.join(IMAGES, name))


@pytest.fixture()
def conn():
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    try:
        c = libvirt.open(URI)
        c.getLibVersion()
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")
    if not os.path.isdir(IMAGES) or not os.access(IMAGES, os.W_OK):
        pytest.skip("needs a writable %s" % IMAGES)
    sweep(c)
    try:
        yield c
    finally:
        sweep(c)
        c.close()


def image(name):
    path = os.path.join(IMAGES, name)
    with open(path, "wb") as f:
        f.truncate(1024 * 1024)
    return path


def ifaces(dom, flags=0):
    root = etree.fromstring(dom.XMLDesc(flags).encode())
    return dict((i.find("mac").get("address"), (i.get("type"), i.find("source").get("network")))
                for i in root.findall("devices/interface"))


def disks(dom, flags=0):
    return [d.find("target").get("dev") for d in etree.fromstring(dom.XMLDesc(flags).encode()).findall("devices/disk")]


def test_iso02_and_iso06_take_effect_live_on_a_running_domain(conn, tmp_path):
    for n in ("a", "b"):
        conn.networkDefineXML("<network><name>vmg-h7-%s</name></network>" % n).create()
    shared = image("vmg-h7-shared.img")
    dom = conn.defineXML(DOMAIN.format(boot=image("vmg-h7-boot.img"), shared=shared))
    dom.create()
    args = {"uri": URI, "backup_dir": str(tmp_path / "backup"), "domain_fixes": {"vmg-h7-mail": {
        "ISO-02": {"management_networks": ["vmg-h7-b"], "network": "vmg-h7-svc-mail", "move": ["network:vmg-h7-a"]},
        "ISO-03": {"management_networks": ["vmg-h7-b"], "ip": "10.254.7.12"},
        "ISO-06": {"detach": [shared]}}}}
    first = run_module(args)
    assert not first.get("failed") and first["changed"] is True, first
    assert first["networks"] == ["vmg-h7-svc-mail"]
    entry = first["domains"]["vmg-h7-mail"]
    assert [c.split(":")[0] for c in entry["live"]] == ["ISO-02", "ISO-03", "ISO-06"], entry
    assert entry["restart_pending"] is False and "live_pending" not in entry, entry
    # The new network: isolated (no host address, no forward), active, autostarted.
    net = conn.networkLookupByName("vmg-h7-svc-mail")
    net_xml = etree.fromstring(net.XMLDesc(0).encode())
    assert net.isActive() and net.autostart() and net_xml.find("ip") is None and net_xml.find("forward") is None
    want = {"52:54:00:07:00:01": ("network", "vmg-h7-svc-mail"), "52:54:00:07:00:02": ("network", "vmg-h7-b")}
    assert dom.isActive() and ifaces(dom) == want and ifaces(dom, libvirt.VIR_DOMAIN_XML_INACTIVE) == want
    assert disks(dom) == ["vda"] and disks(dom, libvirt.VIR_DOMAIN_XML_INACTIVE) == ["vda"]
    # The anti-spoofing filter is on the moved interface, live and persistent, with the guest's address.
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        (svc,) = [i for i in etree.fromstring(dom.XMLDesc(flags).encode()).findall("devices/interface")
                  if i.find("mac").get("address") == "52:54:00:07:00:01"]
        ref = svc.find("filterref")
        assert ref is not None and ref.get("filter") == "clean-traffic", etree.tostring(svc)
        assert [(p.get("name"), p.get("value")) for p in ref.findall("parameter")] == [("IP", "10.254.7.12")]
    # The tap device really sits on the new network's bridge now.
    tap = etree.fromstring(dom.XMLDesc(0).encode()).find("devices/interface/target").get("dev")
    assert os.path.realpath("/sys/class/net/%s/master" % tap).endswith("/" + net_xml.find("bridge").get("name"))
    second = run_module(args)
    assert not second.get("failed") and second["changed"] is False and second["domains"] == {} and second["networks"] == [], second


def test_boot_disk_is_never_detached(conn, tmp_path):
    boot = image("vmg-h7-boot.img")
    conn.networkDefineXML("<network><name>vmg-h7-a</name></network>").create()
    conn.networkDefineXML("<network><name>vmg-h7-b</name></network>").create()
    dom = conn.defineXML(DOMAIN.format(boot=boot, shared=image("vmg-h7-shared.img")))
    args = {"uri": URI, "backup_dir": str(tmp_path / "backup"), "domain_fixes": {"vmg-h7-mail": {"ISO-06": {"detach": [boot]}}}}
    got = run_module(args)
    # Refused, named, not a failure of the domain (its other fixes would be applied).
    assert not got.get("failed") and got["changed"] is False and got["failed_domains"] == {}, got
    assert got["domains"]["vmg-h7-mail"]["not_enforced"] == [
        "ISO-06: not detaching boot disk vda (%s): boot disk shared: give the domain its own image" % boot]
    assert disks(dom, libvirt.VIR_DOMAIN_XML_INACTIVE) == ["vda", "sdb"]
