"""domxml: the evidence fields of the contract, and that no secret leaves the parser."""

import json

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml

QEMU = "http://libvirt.org/schemas/domain/qemu/1.0"


def domain(devices="", extra="", qemu=""):
    return ("<domain type='kvm' xmlns:qemu='%s'><name>d1</name><uuid>AB-12</uuid><memory>65536</memory>"
            "<os><type>hvm</type></os><devices>%s</devices>%s%s</domain>" % (QEMU, devices, extra, qemu))


def cmdline(*args, **env):
    body = "".join("<qemu:arg value='%s'/>" % a for a in args)
    body += "".join("<qemu:env name='%s' value='%s'/>" % kv for kv in sorted(env.items()))
    return "<qemu:commandline>%s</qemu:commandline>" % body


@pytest.mark.parametrize("arg, expected", [
    ("secret,id=s0,data=c2VjcmV0", "secret,id=s0,data=<redacted>"),
    ("password=hunter2", "password=<redacted>"),
    ("port=5901,addr=127.0.0.1,password=hunter2,disable-ticketing=off",
     "port=5901,addr=127.0.0.1,password=<redacted>,disable-ticketing=off"),
    # references to secret objects stay; a literal password of a driver does not
    ("file=/i/a.qcow2,if=none,id=d0,encrypt.format=luks,encrypt.key-secret=sec0,password-secret=sec1",
     "file=/i/a.qcow2,if=none,id=d0,encrypt.format=luks,encrypt.key-secret=sec0,password-secret=sec1"),
    ("driver=rbd,pool=p,image=i,file.password=pw,,with,,commas,id=x",
     "driver=rbd,pool=p,image=i,file.password=<redacted>,id=x"),
    ("console=ttyS0 root=/dev/vda token=abc123", "console=ttyS0 root=/dev/vda token=<redacted>"),
    ("secret,id=s1,file=/etc/vmguard/s1.key,format=base64", "secret,id=s1,file=/etc/vmguard/s1.key,format=base64"),
    (":0,password=on", ":0,password=on"),  # a switch, not a password
    ("-object", "-object"),
])
def test_redact_arg(arg, expected):
    out, n = domxml.redact_arg(arg)
    assert out == expected
    assert n == (0 if out == arg else 1)


def test_json_option_is_redacted_and_unparseable_json_is_dropped():
    out, n = domxml.redact_arg('{"qom-type":"secret","id":"s0","data":"c2VjcmV0"}')
    assert n == 1 and json.loads(out) == {"qom-type": "secret", "id": "s0", "data": "<redacted>"}
    assert domxml.redact_arg('{"qom-type":"secret","data":"c2VjcmV0"')[0] == "<redacted>"


def test_commandline_and_env_are_redacted_and_counted():
    xml = domain(qemu=cmdline("-object", "secret,id=s0,data=c2VjcmV0", "-spice", "password=hunter2",
                              "-drive", "file=/i/a.qcow2,password-secret=s0,id=d0",
                              DB_PASSWORD="hunter3", API_TOKEN="t0k", LANG="C"))
    d = domxml.parse_domain(xml)
    assert d["qemu_commandline"] == ["-object", "secret,id=s0,data=<redacted>", "-spice", "password=<redacted>",
                                     "-drive", "file=/i/a.qcow2,password-secret=s0,id=d0"]
    assert d["qemu_env"] == [{"name": "API_TOKEN", "value": "<redacted>"},
                             {"name": "DB_PASSWORD", "value": "<redacted>"},
                             {"name": "LANG", "value": "C"}]
    assert d["redacted"] == 4
    for secret in ("c2VjcmV0", "hunter2", "hunter3", "t0k"):
        assert secret not in repr(d)


def test_no_passthrough():
    d = domxml.parse_domain(domain())
    assert d["qemu_commandline"] == [] and d["qemu_env"] == [] and d["redacted"] == 0


def test_seclabel_label_and_imagelabel():
    d = domxml.parse_domain(domain(extra="<seclabel type='static' model='dac' relabel='no'><label>107:107</label>"
                                         "</seclabel><seclabel type='dynamic' model='selinux'>"
                                         "<imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>"
                                         "</seclabel><seclabel type='none'/>"))
    assert d["seclabels"] == [
        dict(type="static", model="dac", relabel="no", label="107:107", imagelabel=None),
        dict(type="dynamic", model="selinux", relabel=None, label=None,
             imagelabel="system_u:object_r:svirt_image_t:s0:c1,c2"),
        dict(type="none", model=None, relabel=None, label=None, imagelabel=None)]


def test_hostdev_interface():
    d = domxml.parse_domain(domain(
        "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' bus='0x03' "
        "slot='0x10' function='0x1'/></source><mac address='52:54:00:AA:00:01'/></interface>"
        "<interface type='network'><source network='default'/></interface>"))
    sriov, net = d["interfaces"]
    assert sriov["type"] == "hostdev" and sriov["mac"] == "52:54:00:aa:00:01"
    assert sriov["hostdev_source"] == "pci bus=0x03 domain=0x0000 function=0x1 slot=0x10"
    assert net["hostdev_source"] is None
    no_addr = domxml.parse_domain(domain("<interface type='hostdev'><source/></interface>"))
    assert no_addr["interfaces"][0]["hostdev_source"] is None


def test_listen_address_without_address_stays_none():
    d = domxml.parse_domain(domain("<graphics type='vnc'><listen type='address'/></graphics>"))
    assert d["graphics"][0]["listens"] == [dict(type="address", address=None, network=None, socket=None)]


def test_graphics_passwords_keeps_only_booleans():
    status = ("<domstatus state='running' pid='42'><domain type='kvm'><name>d1</name><devices>"
              "<graphics type='vnc' passwd='hunter2'/><graphics type='spice'/></devices></domain></domstatus>")
    flags = domxml.graphics_passwords(status)
    assert flags == [("vnc", True), ("spice", False)] and "hunter2" not in repr(flags)
    assert domxml.graphics_passwords(domain("<graphics type='spice' passwd=''/>")) == [("spice", True)]
    with pytest.raises(domxml.DomainXMLError):
        domxml.graphics_passwords("<network/>")
    with pytest.raises(domxml.DomainXMLError):
        domxml.graphics_passwords("<domain")
