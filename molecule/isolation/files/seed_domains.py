"""Seed the isolation violations on the lab's domains (run on the hypervisor with libvirt-python):

  seed_domains.py seed <uri> <web domain> <mail domain> <web network> <shared disk>
  seed_domains.py unseed <uri> <web domain> <mail domain> <shared disk>

seed: mail's service interface joins web's network without its clean-traffic filter (live and
persistent: both guests on one bridge, ISO-02/ISO-03); web's persistent definition gets a SPICE
console (clipboard on by default, LEAK-03) and a VNC console, both on 0.0.0.0 (LEAK-02); one extra
disk image, readable by everyone (LEAK-01), is attached to both guests (live and persistent, ISO-06).
unseed: what harden left of the seeds goes (the consoles, the extra disk if still attached, its file).
Prints one JSON line: what it did.
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import libvirt

LIVE_CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
TARGET = "vdz"


def service_interface(dom):
    """The domain's libvirt <interface> (the lab's management NIC is QEMU command-line user networking)."""
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    (iface,) = root.findall("./devices/interface")
    return iface


def move_to(dom, network):
    iface = service_interface(dom)
    iface.find("source").attrib.clear()
    iface.find("source").set("network", network)
    for f in iface.findall("filterref"):
        iface.remove(f)
    dom.updateDeviceFlags(ET.tostring(iface, encoding="unicode"), LIVE_CONFIG)


def add_consoles(conn, dom):
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
    devices = root.find("devices")
    for g in devices.findall("graphics"):
        devices.remove(g)
    devices.append(ET.fromstring("<graphics type='spice' autoport='yes'><listen type='address' address='0.0.0.0'/></graphics>"))
    devices.append(ET.fromstring("<graphics type='vnc' autoport='yes'><listen type='address' address='0.0.0.0'/></graphics>"))
    conn.defineXML(ET.tostring(root, encoding="unicode"))


def drop_consoles(conn, dom):
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
    devices = root.find("devices")
    gone = devices.findall("graphics")
    for g in gone:
        devices.remove(g)
    if gone:
        conn.defineXML(ET.tostring(root, encoding="unicode"))
    return len(gone)


def disk_xml(path):
    # Raw and shareable: QEMU's image locking lets two running guests open it read-write only so.
    return ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
            "<target dev='%s' bus='virtio'/><shareable/></disk>" % (path, TARGET))


def attached(dom, path, flags=0):
    root = ET.fromstring(dom.XMLDesc(flags))
    return any(s.get("file") == path for s in root.findall("./devices/disk/source"))


def seed(conn, web, mail, web_net, disk):
    move_to(mail, web_net)
    add_consoles(conn, web)
    if not os.path.exists(disk):
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", disk, "16M"], check=True)
    os.chmod(disk, 0o644)
    for dom in (web, mail):
        if not attached(dom, disk, libvirt.VIR_DOMAIN_XML_INACTIVE):
            dom.attachDeviceFlags(disk_xml(disk), LIVE_CONFIG)
    return {"moved": mail.name(), "to": web_net, "consoles": web.name(), "disk": disk}


def unseed(conn, web, mail, disk):
    out = {"consoles_removed": drop_consoles(conn, web), "detached": []}
    for dom in (web, mail):
        for flags, scope in ((0, libvirt.VIR_DOMAIN_AFFECT_LIVE), (libvirt.VIR_DOMAIN_XML_INACTIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG)):
            if attached(dom, disk, flags):
                dom.detachDeviceFlags(disk_xml(disk), scope)
                out["detached"].append("%s %s" % (dom.name(), "live" if flags == 0 else "config"))
    if os.path.exists(disk):
        os.unlink(disk)
    return out


def main(argv):
    action, uri = argv[1], argv[2]
    conn = libvirt.open(uri)
    web, mail = conn.lookupByName(argv[3]), conn.lookupByName(argv[4])
    if action == "seed":
        result = seed(conn, web, mail, argv[5], argv[6])
    elif action == "unseed":
        result = unseed(conn, web, mail, argv[5])
    else:
        raise SystemExit("unknown action %s" % action)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
