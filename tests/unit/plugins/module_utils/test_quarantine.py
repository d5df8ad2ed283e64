"""Quarantine helpers (pure part) on realistic domain XML, and the ledger's quarantine field and
bounded, validated events. set_links against a real libvirtd: tests/integration/test_watcher.py
(libvirt's test driver has no updateDeviceFlags)."""

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import quarantine as qr
from tests.unit.rules.evidence import domain_xml

MGMT_IF = """<interface type='network'>
      <source network='mgmt'/>
      <mac address='52:54:00:aa:00:01'/>
      <model type='virtio'/>
    </interface>"""
BRIDGE_MGMT_IF = """<interface type='bridge'>
      <source bridge='br-mgmt'/>
      <mac address='52:54:00:aa:00:02'/>
      <model type='virtio'/>
    </interface>"""
BRIDGE_SVC_IF = """<interface type='bridge'>
      <source bridge='br-svc'/>
      <mac address='52:54:00:AA:00:03'/>
      <link state='up'/>
      <model type='e1000'/>
    </interface>"""
DIRECT_IF = """<interface type='direct'>
      <source dev='eth0' mode='vepa'/>
      <mac address='52:54:00:aa:00:04'/>
    </interface>"""
# The live XML of a network interface also names the network's bridge, its tap and alias.
LIVE_NET_IF = """<interface type='network'>
      <mac address='52:54:00:aa:00:05'/>
      <source network='lab-mgmt' portid='0c7c4b36-6fd5-4a8e-9a4b-0d4f3e1b2a10' bridge='virbr9'/>
      <target dev='vnet7'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='10.254.1.11'/>
      </filterref>
      <link state='down'/>
      <alias name='net1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </interface>"""

SVC_MAC = "52:54:00:00:01:b8"  # domain_xml("web1")'s service interface on network svc-web


def xml_of(*extra):
    return domain_xml("web1", mac=SVC_MAC, extra="\n    ".join(extra))


def macs(chosen):
    return [i["mac"] for i in chosen]


def test_every_interface_off_the_management_networks_is_chosen():
    xml = xml_of(MGMT_IF, BRIDGE_MGMT_IF, BRIDGE_SVC_IF, DIRECT_IF)
    chosen, unusable = qr.select(xml, ["mgmt", "br-mgmt"])
    # service network, service bridge (MAC lower-cased), macvtap: all quarantined; both management links kept
    assert macs(chosen) == [SVC_MAC, "52:54:00:aa:00:03", "52:54:00:aa:00:04"] and unusable == []


def test_without_management_networks_everything_is_chosen():
    chosen, unused = qr.select(xml_of(MGMT_IF, BRIDGE_MGMT_IF), [])
    assert macs(chosen) == [SVC_MAC, "52:54:00:aa:00:01", "52:54:00:aa:00:02"]


def test_a_management_bridge_matches_a_network_interface_through_its_live_bridge():
    xml = xml_of(LIVE_NET_IF)
    assert macs(qr.select(xml, ["virbr9"])[0]) == [SVC_MAC]
    assert macs(qr.select(xml, ["lab-mgmt"])[0]) == [SVC_MAC]
    assert macs(qr.select(xml, ["svc-web"])[0]) == ["52:54:00:aa:00:05"]


def test_lift_acts_on_the_recorded_macs_wherever_they_are():
    xml = xml_of(MGMT_IF, BRIDGE_SVC_IF)
    chosen, unused = qr.select(xml, ["mgmt"], macs=["52:54:00:AA:00:01", SVC_MAC])
    assert macs(chosen) == [SVC_MAC, "52:54:00:aa:00:01"]


def test_an_interface_without_mac_cannot_be_updated_and_is_reported():
    xml = xml_of("<interface type='user'><model type='virtio'/></interface>")
    chosen, unusable = qr.select(xml, [])
    assert macs(chosen) == [SVC_MAC] and [i["type"] for i in unusable] == ["user"]


def test_link_xml_sets_the_state_and_keeps_every_other_element():
    (svc,) = [i for i in qr.interfaces(xml_of()) if i["mac"] == SVC_MAC]
    assert svc["link"] == "up"  # no <link>: up
    out = ET.fromstring(qr.link_xml(svc["element"], "down"))
    assert out.get("type") == "network"
    assert out.find("source").get("network") == "svc-web"
    assert out.find("mac").get("address") == SVC_MAC
    assert out.find("model").get("type") == "virtio"
    assert out.find("filterref").get("filter") == "clean-traffic"
    assert [e.get("state") for e in out.findall("link")] == ["down"]
    # the domain's own element is not changed (a copy is edited)
    assert svc["element"].find("link") is None


def test_link_xml_replaces_an_existing_state_on_a_live_interface():
    (i,) = [x for x in qr.interfaces(xml_of(LIVE_NET_IF)) if x["mac"] == "52:54:00:aa:00:05"]
    assert i["link"] == "down"
    out = ET.fromstring(qr.link_xml(i["element"], "up"))
    assert [e.get("state") for e in out.findall("link")] == ["up"]
    assert out.find("target").get("dev") == "vnet7" and out.find("alias").get("name") == "net1"
    assert out.find("filterref/parameter").attrib == {"name": "IP", "value": "10.254.1.11"}
    assert out.find("source").get("portid") == "0c7c4b36-6fd5-4a8e-9a4b-0d4f3e1b2a10"
    assert out.find("address").get("slot") == "0x04"
    with pytest.raises(ValueError):
        qr.link_xml(i["element"], "sideways")


def test_plan_skips_links_already_in_the_wanted_state():
    xml = xml_of(LIVE_NET_IF, BRIDGE_SVC_IF)
    todo, chosen, unused = qr.plan(xml, [], "down")
    assert [m for m, unused in todo] == [SVC_MAC, "52:54:00:aa:00:03"]
    assert chosen == [SVC_MAC, "52:54:00:aa:00:05", "52:54:00:aa:00:03"]
    todo = qr.plan(xml, [], "up")[0]
    assert [m for m, unused in todo] == ["52:54:00:aa:00:05"]


HOSTDEV_IF = """<interface type='hostdev' managed='yes'>
      <mac address='52:54:00:aa:00:09'/>
      <source><address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x1'/></source>
    </interface>"""


class Refused(Exception):
    """libvirt.libvirtError's stand-in."""

    def get_error_message(self):
        return str(self)


class FakeDom(object):
    """A libvirt domain whose live and persistent XML are ``xml``; updateDeviceFlags sets the link state the way
    libvirt does and refuses what libvirt refuses: any change to a hostdev interface (qemuDomainChangeNet), and
    the MAC addresses in ``refuse``."""

    def __init__(self, xml, refuse=(), active=True, uuid="0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"):
        self.xml = {"live": xml, "config": xml}
        self.refuse, self.active, self.uuid, self.updates = set(refuse), active, uuid, []

    def XMLDesc(self, flags=0):
        return self.xml["config" if flags & qr.XML_INACTIVE else "live"]

    def updateDeviceFlags(self, xml, affect):
        el = ET.fromstring(xml)
        mac = el.find("mac").get("address")
        if el.get("type") == "hostdev":
            raise Refused("Operation not supported: cannot change config of 'hostdev' network type")
        if mac in self.refuse:
            raise Refused("Timed out during operation: cannot acquire state change lock")
        for scope, bit in (("live", qr.AFFECT_LIVE), ("config", qr.AFFECT_CONFIG)):
            if affect & bit:
                root = ET.fromstring(self.xml[scope])
                devices = root.find("devices")
                for i in list(devices.findall("interface")):
                    if (i.find("mac") is not None and i.find("mac").get("address").lower() == mac.lower()):
                        devices.insert(list(devices).index(i), el)
                        devices.remove(i)
                self.xml[scope] = ET.tostring(root, encoding="unicode")
        self.updates.append((mac, el.find("link").get("state"), affect))

    def links(self, scope):
        return dict((i["mac"], i["link"]) for i in qr.interfaces(self.xml[scope]))

    def isActive(self):
        return self.active

    def isPersistent(self):
        return True

    def UUIDString(self):
        return self.uuid

    def name(self):
        return "web1"

    def snapshotCurrent(self, flags):
        raise Refused("no current snapshot")


def test_a_hostdev_interface_is_never_tried_and_is_named():
    dom = FakeDom(xml_of(HOSTDEV_IF, BRIDGE_SVC_IF, "<interface type='user'><model type='virtio'/></interface>"))
    out = qr.set_links(dom, [], qr.DOWN, live=True, config=True)  # no error: the hostdev is not tried
    assert dom.links("live")[SVC_MAC] == dom.links("config")["52:54:00:aa:00:03"] == "down"
    assert dom.links("live")["52:54:00:aa:00:09"] == "up"
    assert out["chosen"]["live"] == out["live"] == [SVC_MAC, "52:54:00:aa:00:03"] and out["failed"] == []
    assert [(e["mac"], e["type"], e["scope"]) for e in out["skipped"]] == [
        (None, "user", "live"), ("52:54:00:aa:00:09", "hostdev", "live"),
        (None, "user", "config"), ("52:54:00:aa:00:09", "hostdev", "config")]
    assert "libvirt cannot change its link state" in [e for e in out["skipped"] if e["type"] == "hostdev"][0]["reason"]
    assert out["scopes"] == ["live", "config"]


def test_one_refused_update_leaves_the_others_done_with_keep_going():
    dom = FakeDom(xml_of(BRIDGE_SVC_IF), refuse={SVC_MAC})
    with pytest.raises(Refused):  # without keep_going the caller gets the error, as before
        qr.set_links(dom, [], qr.DOWN, live=True, config=False)
    dom = FakeDom(xml_of(BRIDGE_SVC_IF), refuse={SVC_MAC})
    out = qr.set_links(dom, [], qr.DOWN, live=True, config=True, keep_going=Refused)
    assert dom.links("live")["52:54:00:aa:00:03"] == dom.links("config")["52:54:00:aa:00:03"] == "down"
    assert out["live"] == out["config"] == ["52:54:00:aa:00:03"]
    assert out["chosen"]["live"] == [SVC_MAC, "52:54:00:aa:00:03"]  # still meant to be down: a lift brings it up
    assert [(e["mac"], e["scope"]) for e in out["failed"]] == [(SVC_MAC, "live"), (SVC_MAC, "config")]
    assert out["failed"][0]["reason"] == "libvirt refused: Timed out during operation: cannot acquire state change lock"


def test_taken_down_counts_only_links_changed_and_forgets_what_a_revert_put_back():
    other = "52:54:00:aa:00:03"
    first = qr.taken_down(None, {"live": [SVC_MAC], "config": []})
    assert first == {SVC_MAC: ["live"]}
    q = {"links": first, "interfaces": [SVC_MAC]}
    # a later event of the same revert adds what it changed
    assert qr.taken_down(q, {"live": [], "config": [SVC_MAC]}) == {SVC_MAC: ["live", "config"]}
    both = {"links": {SVC_MAC: ["live", "config"]}, "interfaces": [SVC_MAC]}
    # a restore puts back the live definition only; a revert both (the snapshot's link states are back)
    assert qr.taken_down(both, {"live": [other]}, replaced=qr.REPLACED_BY["restore"]) == {SVC_MAC: ["config"], other: ["live"]}
    assert qr.taken_down(both, {}, replaced=qr.REPLACED_BY["revert"]) == {}
    # started with the quarantine's persistent definition: the live link is the quarantine's too
    assert qr.taken_down({"links": {SVC_MAC: ["config"]}}, {}, started=True) == {SVC_MAC: ["live", "config"]}
    # a quarantine recorded before links: its interfaces, in both definitions
    assert qr.held_links({"interfaces": [SVC_MAC], "since": "x"}) == {SVC_MAC: {"live", "config"}}


# --- ledger: events with detail, bounded; the quarantine field -----------------------------------------

U = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"
NOW = 1795000000


def test_events_carry_their_detail_and_stay_bounded():
    rec = ledger.empty(U)
    for n in range(ledger.MAX_EVENTS + 25):
        rec, ch = ledger.apply(rec, NOW + n, event="revert", detail={"libvirt_event": "STARTED", "n": n})
        assert ch == ["event revert"]
    assert len(rec["events"]) == ledger.MAX_EVENTS == 200
    assert rec["events"][0]["detail"]["n"] == 25 and rec["events"][-1]["detail"]["n"] == 224
    assert rec["events"][-1]["time"] == iso(NOW + 224)


def test_quarantine_set_kept_and_lifted():
    q = ledger.quarantine_state(NOW, "revert (STARTED/FROM_SNAPSHOT)", [SVC_MAC], False)
    rec, ch = ledger.apply(ledger.empty(U), NOW, event="quarantine", quarantine=q,
                           detail={"interfaces": [SVC_MAC], "live": True, "config": True})
    assert rec["quarantine"] == {"since": iso(NOW), "reason": "revert (STARTED/FROM_SNAPSHOT)",
                                 "interfaces": [SVC_MAC], "pending_start": False}
    assert ch == ["quarantine set on %s" % SVC_MAC, "event quarantine"]
    same, ch = ledger.apply(rec, NOW + 5)  # quarantine not given: kept
    assert same["quarantine"] == rec["quarantine"] and ch == []
    lifted, ch = ledger.apply(rec, NOW + 9, event="lift", quarantine=None)
    assert lifted["quarantine"] is None and ch == ["quarantine lifted", "event lift"]


def _read(tmp_path, record):
    (tmp_path / (U + ".json")).write_text(json.dumps(record))
    return ledger.read_record(str(tmp_path), U)


def test_a_valid_quarantine_record_reads_back(tmp_path):
    q = ledger.quarantine_state(NOW, "revert", [SVC_MAC], True, links={SVC_MAC: ["config", "live"]})
    assert q["links"] == {SVC_MAC: ["live", "config"]}
    rec, unused = ledger.apply(ledger.empty(U), NOW, event="quarantine", quarantine=q, detail={"interfaces": [SVC_MAC]})
    assert _read(tmp_path, rec) == rec
    old_style, unused = ledger.apply(ledger.empty(U), NOW, event="reverted")  # an event without detail (ledger module)
    assert _read(tmp_path, old_style)["events"] == [{"time": iso(NOW), "event": "reverted"}]


@pytest.mark.parametrize("key, value, expected", [
    ("events", [{"time": "yesterday", "event": "revert"}], "events is"),
    ("events", [{"time": "2026-11-18T08:26:40Z", "event": 7}], "events is"),
    ("events", [{"time": "2026-11-18T08:26:40Z", "event": "revert", "detail": "snap1"}], "events is"),
    ("events", [{"event": "revert"}], "events is"),
    ("quarantine", {"since": "2026-11-18T08:26:40Z", "reason": "r", "interfaces": [SVC_MAC]}, "quarantine is"),
    ("quarantine", {"since": "2026-11-18T08:26:40Z", "reason": "r", "interfaces": SVC_MAC,
                    "pending_start": False}, "quarantine is"),
    ("quarantine", {"since": None, "reason": "r", "interfaces": [], "pending_start": False}, "quarantine is"),
    ("quarantine", True, "quarantine is"),
    ("quarantine", {"since": "2026-11-18T08:26:40Z", "reason": "r", "interfaces": [SVC_MAC], "pending_start": False,
                    "links": {SVC_MAC: ["live", "sideways"]}}, "quarantine is"),
    ("quarantine", {"since": "2026-11-18T08:26:40Z", "reason": "r", "interfaces": [SVC_MAC], "pending_start": False,
                    "links": {SVC_MAC: []}}, "quarantine is"),
])
def test_bad_events_or_quarantine_make_the_record_an_error(tmp_path, key, value, expected):
    rec = ledger.empty(U)
    rec[key] = value
    got = _read(tmp_path, rec)
    assert set(got) == {"error"} and "not a ledger record: %s" % expected in got["error"]
    assert (U + ".json") in got["error"]
    with pytest.raises(ledger.LedgerError):
        ledger.load(str(tmp_path), U)
