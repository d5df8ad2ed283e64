"""The ISO-02 (move to the service's network) and ISO-06 (detach cross-service disks) fixers, and the live
operations domain_policy derives from them (remediation/domfix.py)."""

import pytest
from lxml import etree

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import policy
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix

DOM = """<domain type='kvm'>
  <name>mail1</name>
  <devices>
    <disk type='file' device='disk'><source file='/img/mail1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/srv//shared.img'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/srv/shared.img'/><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br-web'/>
      <virtualport type='openvswitch'/>
      <vlan><tag id='42'/></vlan>
      <model type='virtio'/>
      <filterref filter='clean-traffic'><parameter name='IP' value='192.0.2.11'/></filterref>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:02'/>
      <source network='mgmt' portgroup='ops'/>
      <model type='e1000'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:03'/>
      <source network='mail-internal'/>
    </interface>
  </devices>
</domain>"""
MOVE = {"ISO-02": {"management_networks": ["mgmt"], "network": "svc-mail", "move": ["bridge:br-web", "network:mgmt"]}}


def iface(xml, mac):
    return [i for i in etree.fromstring(xml.encode()).findall("devices/interface") if i.find("mac").get("address") == mac][0]


def test_iso02_moves_only_the_shared_service_interface_and_keeps_the_rest():
    new, changes = domfix.apply(DOM, MOVE, etree)
    assert changes == ["ISO-02: moved 52:54:00:00:00:01 from bridge br-web to network svc-mail "
                       "(dropped the old port's <virtualport>, <vlan>)"]
    moved = iface(new, "52:54:00:00:00:01")
    assert moved.get("type") == "network" and dict(moved.find("source").attrib) == {"network": "svc-mail"}
    assert moved.find("model").get("type") == "virtio" and moved.find("filterref/parameter").get("value") == "192.0.2.11"
    assert moved.find("virtualport") is None and moved.find("vlan") is None
    # The management network (even when named in move) and a segment not shared stay as they were.
    assert etree.tostring(iface(new, "52:54:00:00:00:02")) == etree.tostring(iface(DOM, "52:54:00:00:00:02"))
    assert iface(new, "52:54:00:00:00:03").find("source").get("network") == "mail-internal"
    assert domfix.apply(new, MOVE, etree) == (None, [])


def test_iso02_network_source_loses_the_old_segment_attributes_and_macvtap_stays():
    xml = DOM.replace("<source network='mail-internal'/>", "<source network='web-net' portgroup='x' bridge='virbr7' portid='abc'/>")
    xml = xml.replace("<source bridge='br-web'/>", "<source bridge='br-web'/>").replace(
        "<interface type='bridge'>", "<interface type='direct'>").replace("<source bridge='br-web'/>", "<source dev='eth0' mode='vepa'/>")
    new, changes = domfix.apply(xml, {"ISO-02": {"network": "svc-mail", "move": ["network:web-net", "direct:eth0"]}}, etree)
    assert dict(iface(new, "52:54:00:00:00:03").find("source").attrib) == {"network": "svc-mail"}
    assert "left interface(s) 52:54:00:00:00:01 (direct eth0): not a network or bridge this can replace" in changes[0]
    assert iface(new, "52:54:00:00:00:01").get("type") == "direct"


def test_iso02_needs_its_network_and_does_nothing_without_a_shared_segment():
    with pytest.raises(ValueError, match="ISO-02: parameter network is required"):
        domfix.normalize(["ISO-02"])
    assert domfix.apply(DOM, {"ISO-02": {"network": "svc-mail"}}, etree) == (None, [])
    assert domfix.apply(DOM, {"ISO-02": {"network": "svc-mail", "move": ["network:svc-mail"]}}, etree) == (None, [])


def test_iso06_detaches_the_shared_disk_not_the_cdrom_nor_the_boot_disk():
    new, changes = domfix.apply(DOM, {"ISO-06": {"detach": ["/srv/shared.img"]}}, etree)
    assert changes == ["ISO-06: detached disk(s) shared with other services: vdb (/srv/shared.img)"]
    targets = [d.find("target").get("dev") for d in etree.fromstring(new.encode()).findall("devices/disk")]
    assert targets == ["vda", "sda"]
    assert domfix.apply(new, {"ISO-06": {"detach": ["/srv/shared.img"]}}, etree) == (None, [])
    refused = []
    assert domfix.apply(DOM, {"ISO-06": {"detach": ["/img/mail1.qcow2"]}}, etree, refused) == (None, [])
    assert refused == ["ISO-06: not detaching boot disk vda (/img/mail1.qcow2): boot disk shared: give the domain its "
                       "own image"]
    # A caller that takes no refusals gets an error, not a partial fix it would take for a whole one.
    with pytest.raises(ValueError, match="not detaching boot disk vda .*give the domain its own image"):
        domfix.apply(DOM, {"ISO-06": {"detach": ["/img/mail1.qcow2"]}}, etree)


def test_iso06_refuses_a_boot_order_disk_alone_and_applies_the_other_fixes():
    # vdb boots (<boot order='1'/>): it stays, named; the rest of the domain's fixes (LEAK-02, the other
    # shared disk) are applied, in the persistent definition and live.
    other = "<disk type='file' device='disk'><source file='/srv/other.img'/><target dev='vdc' bus='virtio'/></disk>"
    booted = DOM.replace("<target dev='vdb' bus='virtio'/>", "<target dev='vdb' bus='virtio'/><boot order='1'/>")
    booted = booted.replace("</devices>", other + "<graphics type='vnc' listen='0.0.0.0'/></devices>")
    fixes = {"ISO-06": {"detach": ["/srv/shared.img", "/srv/other.img"]}, "LEAK-02": {}}
    assert [d.find("target").get("dev") for d in domfix.boot_disks(etree.fromstring(booted.encode()))] == ["vda", "vdb"]
    refused = []
    new, changes = domfix.apply(booted, fixes, etree, refused)
    assert changes == ["ISO-06: detached disk(s) shared with other services: vdc (/srv/other.img)",
                       "LEAK-02: vnc console listen attribute 0.0.0.0 -> 127.0.0.1"]
    assert refused == ["ISO-06: not detaching boot disk vdb (/srv/shared.img): boot disk shared: give the domain its "
                       "own image"]
    targets = [d.find("target").get("dev") for d in etree.fromstring(new.encode()).findall("devices/disk")]
    assert targets == ["vda", "vdb", "sda"]
    live_refused = []
    ops, live = domfix.live_operations(booted, fixes, etree, live_refused)
    assert [(op, rid) for op, _xml, rid in ops] == [("detach", "ISO-06")] and live == changes[:1]
    assert live_refused == refused


def test_live_operations_update_the_interface_and_detach_the_disk_from_the_live_xml():
    live = DOM.replace("<source bridge='br-web'/>", "<source bridge='br-web'/><target dev='vnet3'/><alias name='net0'/>")
    fixes = dict(MOVE, **{"ISO-06": {"detach": ["/srv/shared.img"]}, "DIV-09": {}})
    ops, changes = domfix.live_operations(live, fixes, etree)
    assert [(op, rid) for op, _xml, rid in ops] == [("update", "ISO-02"), ("detach", "ISO-06")]
    update = etree.fromstring(ops[0][1].encode())
    assert update.find("target").get("dev") == "vnet3" and update.find("source").get("network") == "svc-mail"
    assert etree.fromstring(ops[1][1].encode()).find("target").get("dev") == "vdb"
    assert [c.split(":")[0] for c in changes] == ["ISO-02", "ISO-06"]  # DIV-09 is not a live fix
    assert domfix.live_operations(live, {"DIV-09": {}}, etree) == ([], [])


def test_service_network_policy_parameter():
    assert policy.load_policy({})["params"]["isolation"]["service_network"] == "vmguard-svc-{service}"
    assert policy.load_policy({"params": {"isolation": {"service_network": "lab.svc-{service}"}}})
    for bad, why in (("svc", "exactly one {service}"), ("a/{service}", "no '/' or whitespace"), (7, "got int 7"),
                     ("{service}-{x}", "no other braces")):
        with pytest.raises(policy.PolicyError, match="params.isolation.service_network: .*" + why.replace("{", "\\{").replace("}", "\\}")):
            policy.load_policy({"params": {"isolation": {"service_network": bad}}})
