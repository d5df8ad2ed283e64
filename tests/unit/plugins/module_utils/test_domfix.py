"""Domain XML remediations keep everything they do not own, and apply once."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix

etree = pytest.importorskip("lxml.etree", reason="needs lxml (in the toolchain's requirements)")

XML = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web1</name>
  <uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid>
  <metadata><app:info xmlns:app="urn:example:app"><app:team>blue</app:team></app:info></metadata>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <graphics type='vnc' listen='127.0.0.1' passwd='s3cret'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>"""


def test_div09_and_rb01_add_only_their_elements():
    new, changes = domfix.apply(XML, ["DIV-09", "RB-01"], etree)
    assert [c.split(":")[0] for c in changes] == ["DIV-09", "RB-01"]
    d = domxml.parse_domain(new)
    assert d["rng"] == ["virtio"] and d["genid"] is True
    # Everything else survives: foreign metadata, the qemu namespace, the console password.
    assert "urn:example:app" in new and "<app:team>blue</app:team>" in new
    assert d["qemu_commandline"] == ["-no-hpet"] and "passwd=\"s3cret\"" in new.replace("'", '"')
    assert d["disks"][0]["source"] == "/var/lib/libvirt/images/web1.qcow2"
    # genid goes right after uuid.
    assert new.index("<genid/>") > new.index("</uuid>") and new.index("<genid/>") < new.index("<metadata>")


def test_applying_twice_changes_nothing():
    new, changes = domfix.apply(XML, ["DIV-09"], etree)
    again, changes2 = domfix.apply(new, ["DIV-09"], etree)
    assert again is None and changes2 == []


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="no domain remediation for ISO-99"):
        domfix.apply(XML, ["ISO-99"], etree)


TRANSIENT = XML.replace(
    "<target dev='vda' bus='virtio'/></disk>",
    "<target dev='vda' bus='virtio'/><transient shareBacking='yes'/></disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2' cache='none'/>\n"
    "      <source file='/var/lib/libvirt/images/scratch.qcow2'/>\n"
    "      <transient/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "      <serial>scratch-1</serial>\n"
    "    </disk>")


def test_rb12_removes_transient_from_every_disk_and_keeps_the_rest():
    before = domxml.parse_domain(TRANSIENT)
    assert [d["transient"] for d in before["disks"]] == [True, True]  # the evidence RB-12 fails on
    new, changes = domfix.apply(TRANSIENT, ["RB-12"], etree)
    assert changes == ["RB-12: removed <transient/> from disk(s) vda, vdb: they now keep the guest's writes"]
    after = domxml.parse_domain(new)
    assert [d["transient"] for d in after["disks"]] == [False, False]
    assert "transient" not in new
    # Everything else of the disks and the domain is kept, in order, with its layout.
    assert [(d["target"], d["source"]) for d in after["disks"]] == [
        ("vda", "/var/lib/libvirt/images/web1.qcow2"), ("vdb", "/var/lib/libvirt/images/scratch.qcow2")]
    assert ("      <source file=\"/var/lib/libvirt/images/scratch.qcow2\"/>\n      <target dev=\"vdb\" bus=\"virtio\"/>\n"
            "      <serial>scratch-1</serial>") in new.replace("'", '"')
    assert "cache=\"none\"" in new.replace("'", '"') and "urn:example:app" in new and "s3cret" in new
    assert domfix.apply(new, ["RB-12"], etree) == (None, [])  # idempotent


def test_rb12_changes_nothing_without_transient_disks():
    assert domfix.apply(XML, ["RB-12"], etree) == (None, [])
    no_devices = "<domain type='kvm'><name>bare</name><uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a11</uuid></domain>"
    assert domfix.apply(no_devices, ["RB-12"], etree) == (None, [])


# --- isolation, leakage and visibility fixers (issue 9) ----------------------------------------------

from rules import evidence as E  # noqa: E402 (tests/unit is on sys.path)

HOSTILE = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web1</name>
  <uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid>
  <metadata><app:info xmlns:app="urn:example:app"><app:team>blue</app:team></app:info></metadata>
  <memory unit='KiB' dumpCore='on'>1048576</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><smbios mode='host'/><boot dev='hd'/></os>
  <seclabel type='none'/>
  <seclabel type='dynamic' model='dac' relabel='yes'/>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='svc-web'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:02'/><source network='vmguard-mgmt'/><model type='virtio'/></interface>
    <interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>
    <filesystem type='mount' accessmode='passthrough'><source dir='/srv/share'/><target dir='share'/></filesystem>
    <filesystem type='mount' accessmode='passthrough'><source dir='/srv/ro/'/><target dir='ro'/><readonly/></filesystem>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
    <redirdev bus='usb' type='spicevmc'/>
    <shmem name='ivshmem0'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>
    <vsock model='virtio'><cid auto='yes'/></vsock>
    <graphics type='vnc' listen='0.0.0.0' passwd='s3cret'><listen type='address' address='0.0.0.0'/></graphics>
    <graphics type='spice' autoport='yes'><listen type='network' network='svc-web'/><image compression='off'/><clipboard copypaste='yes'/></graphics>
    <graphics type='vnc' socket='/run/libvirt/web1-vnc.sock'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>"""

MGMT = {"management_networks": ["vmguard-mgmt"]}
POLICY = {"isolation": dict(MGMT, allowed_filesystems=["/srv/ro"])}
NEW_FIXES = {"ISO-03": dict(MGMT, ip="192.0.2.10"), "ISO-04": {}, "ISO-07": {"allowed_filesystems": ["/srv/ro"]},
             "ISO-08": {}, "ISO-11": {}, "LEAK-02": {}, "LEAK-03": {}, "LEAK-04": {}, "LEAK-07": {},
             "VIS-05": {"owner": "team-a", "service": "web", "expires": "2027-06-30"}}


def verdict(rule_id, xml, params=None):
    """The real check of ``rule_id`` on the domain evidence hypervisor_facts would report for ``xml``."""
    d = domxml.parse_domain(xml)
    d.update(state="shutoff", persistent=True, autostart=False, snapshots=[], ledger=None, error=None, pid=None,
             definition="persistent", inactive=None)
    findings = [f for f in E.run(rule_id, E.fleet([d]), params=params or POLICY) if f["subject"]["kind"] == "domain"]
    assert len(findings) == 1, findings
    return findings[0]["status"], findings[0]["message"]


@pytest.mark.parametrize("rid", sorted(NEW_FIXES))
def test_each_fixer_turns_its_failing_rule_into_a_pass(rid):
    assert verdict(rid, HOSTILE)[0] == "fail"
    new, changes = domfix.apply(HOSTILE, {rid: NEW_FIXES[rid]}, etree)
    assert len(changes) == 1 and changes[0].startswith(rid + ": "), changes
    status, message = verdict(rid, new)
    # ISO-04 keeps no seclabel that disables confinement; the others pass outright.
    assert status == "pass", (rid, message, changes)
    assert domfix.apply(new, {rid: NEW_FIXES[rid]}, etree) == (None, [])  # idempotent


def test_all_fixers_together_keep_everything_they_do_not_own():
    new, changes = domfix.apply(HOSTILE, NEW_FIXES, etree)
    assert [c.split(":")[0] for c in changes] == sorted(NEW_FIXES)
    d = domxml.parse_domain(new)
    # foreign metadata, the qemu namespace, console password, the disk, the management link, the socket console
    assert "<app:team>blue</app:team>" in new and d["qemu_commandline"] == ["-no-hpet"]
    assert "passwd=\"s3cret\"" in new.replace("'", '"')
    assert d["disks"][0]["source"] == "/var/lib/libvirt/images/web1.qcow2"
    mgmt = [i for i in d["interfaces"] if i["network"] == "vmguard-mgmt"]
    assert mgmt == [dict(mgmt[0], filterref=None)] and len(d["interfaces"]) == 2
    assert [g["listens"] for g in d["graphics"]][2] == [{"type": "socket", "address": None, "network": None,
                                                         "socket": "/run/libvirt/web1-vnc.sock"}]
    assert "<image compression=\"off\"/>" in new.replace("'", '"')
    # what stays by the allow-list; the DAC label; <boot>
    assert [f["source"] for f in d["filesystems"]] == ["/srv/ro/"]
    assert d["seclabels"] == [{"type": "dynamic", "model": "dac", "relabel": "yes", "label": None, "imagelabel": None, "baselabel": None}]
    assert "<boot dev=\"hd\"/>" in new.replace("'", '"')
    assert d["metadata"]["owner"] == "team-a" and d["metadata"]["expires"] == "2027-06-30" and d["other_metadata"] == ["{urn:example:app}info"]
    assert domfix.apply(new, NEW_FIXES, etree) == (None, [])


def test_iso03_gives_the_service_address_only_to_a_single_service_interface():
    new, changes = domfix.apply(HOSTILE, {"ISO-03": dict(MGMT, ip="192.0.2.10")}, etree)
    assert changes == ["ISO-03: added <filterref filter='clean-traffic'> with IP 192.0.2.10 on 52:54:00:00:00:01 (network svc-web)"]
    assert "<filterref filter=\"clean-traffic\"><parameter name=\"IP\" value=\"192.0.2.10\"/></filterref>" in new
    two = HOSTILE.replace("<source network='vmguard-mgmt'/>", "<source bridge='br-db'/>").replace(
        "<interface type='network'><mac address='52:54:00:00:00:02'/>", "<interface type='bridge'><mac address='52:54:00:00:00:02'/>")
    new, changes = domfix.apply(two, {"ISO-03": dict(MGMT, ip="192.0.2.10")}, etree)
    assert "IP" not in new and changes[0].count("clean-traffic learns it") == 2
    assert changes[0].endswith("IP 192.0.2.10 not set: the domain has 2 service interfaces")
    assert verdict("ISO-03", new)[0] == "pass"


def test_iso03_replaces_a_filter_that_is_not_allowed_keeping_its_parameters():
    xml = HOSTILE.replace("<source network='svc-web'/>", "<source network='svc-web'/><filterref filter='no-mac-spoofing'>"
                          "<parameter name='IP' value='192.0.2.99'/></filterref>")
    new, changes = domfix.apply(xml, {"ISO-03": dict(MGMT, ip="192.0.2.10")}, etree)
    assert changes == ["ISO-03: replaced filter 'no-mac-spoofing' by 'clean-traffic' on 52:54:00:00:00:01 (network svc-web)"]
    assert new.count("<parameter ") == 1 and "192.0.2.99" in new
    allowed = xml.replace("no-mac-spoofing", "clean-traffic-gateway")
    assert domfix.apply(allowed, {"ISO-03": MGMT}, etree) == (None, [])


def test_iso03_leaves_macvtap_interfaces_which_libvirt_cannot_filter():
    xml = HOSTILE.replace("<interface type='network'><mac address='52:54:00:00:00:01'/><source network='svc-web'/>",
                          "<interface type='direct'><mac address='52:54:00:00:00:01'/><source dev='eth1' mode='bridge'/>")
    assert verdict("ISO-03", xml)[0] == "fail"
    assert domfix.apply(xml, {"ISO-03": MGMT}, etree) == (None, [])
    both = xml.replace("<source network='vmguard-mgmt'/>", "<source network='svc-web'/>")
    new, changes = domfix.apply(both, {"ISO-03": MGMT}, etree)
    assert "filterref" not in new.split("type=\"direct\"")[1].split("</interface>")[0].replace("'", '"')
    assert changes[0].endswith("left interface(s) 52:54:00:00:00:01 (direct eth1): nwfilter applies to host tap devices only (not to direct)")


def test_iso03_filters_an_ethernet_tap_and_leaves_socket_interfaces():
    """nwfilter acts on host tap devices: an ethernet interface (a tap the host's scripts attach) gets the filter;
    a socket (mcast) interface has no tap and is named, never given a filterref libvirt would ignore."""
    xml = HOSTILE.replace("<interface type='network'><mac address='52:54:00:00:00:01'/><source network='svc-web'/>",
                          "<interface type='ethernet'><mac address='52:54:00:00:00:01'/><target dev='vnet-web'/>")
    new, changes = domfix.apply(xml, {"ISO-03": MGMT}, etree)
    assert "added <filterref filter='clean-traffic'>" in changes[0] and "(ethernet vnet-web)" in changes[0]
    assert verdict("ISO-03", new)[0] == "pass"
    mcast = HOSTILE.replace("<interface type='network'><mac address='52:54:00:00:00:01'/><source network='svc-web'/>",
                            "<interface type='mcast'><mac address='52:54:00:00:00:01'/><source address='230.0.0.1' port='5558'/>")
    assert verdict("ISO-03", mcast)[0] == "fail"
    new, changes = domfix.apply(mcast, {"ISO-03": MGMT}, etree)
    assert new is None or "filterref" not in new.split("type=\"mcast\"")[1].split("</interface>")[0]


def test_the_fixers_know_the_rules_tapless_interfaces():
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import iso
    assert domfix.NO_TAP == iso.NO_TAP


def test_iso04_removes_only_the_labels_that_switch_confinement_off():
    xml = HOSTILE.replace("<seclabel type='none'/>", "<seclabel type='none'/><seclabel type='static' model='none'/>"
                          "<seclabel type='static' model='selinux'><label>system_u:system_r:unconfined_t:s0</label></seclabel>")
    new, changes = domfix.apply(xml, ["ISO-04"], etree)
    assert changes == ["ISO-04: removed <seclabel type='none'>, <seclabel type='static' model='none'>: "
                       "libvirt's security drivers confine the domain again"]
    status, message = verdict("ISO-04", new)
    assert status == "fail" and "unconfined" in message and "type='none'" not in message  # left for a person


def test_iso07_08_11_follow_the_allow_lists_as_the_checks_do():
    d = domxml.parse_domain(HOSTILE)
    usb, vf = d["hostdevs"][0]["source"], [i for i in d["interfaces"] if i["type"] == "hostdev"][0]["hostdev_source"]
    fixes = {"ISO-07": {"allowed_filesystems": ["/srv/share", "/srv/ro"]},
             "ISO-08": {"allowed_hostdevs": [usb, vf, "redirdev:usb"]},
             "ISO-11": {"allowed_shmem": ["ivshmem0"], "allow_vsock": True}}
    new, changes = domfix.apply(HOSTILE, fixes, etree)
    # /srv/share is allow-listed but writable: it goes; everything allow-listed stays.
    assert changes == ["ISO-07: removed host filesystem passthrough /srv/share -> share (writable)"]
    params = {"isolation": {"allowed_hostdevs": [usb, vf, "redirdev:usb"], "allowed_shmem": ["ivshmem0"], "allow_vsock": True}}
    assert verdict("ISO-08", new, params)[0] == "pass" and verdict("ISO-11", new, params)[0] == "pass"
    new, changes = domfix.apply(HOSTILE, ["ISO-08", "ISO-11"], etree)  # default parameters: the shipped, empty allow-lists
    assert changes == ["ISO-08: removed passed-through device(s): hostdev usb <source><vendor id=\"0x1234\" /><product id=\"0xbeef\" />"
                       "</source>; interface hostdev pci bus=0x03 domain=0x0000 function=0x1 slot=0x10; redirdev usb/spicevmc",
                       "ISO-11: removed inter-VM channel(s): shmem ivshmem0, vsock"]


HOST_DEVICES = ("<input type='evdev'><source dev='/dev/input/event1234' grab='all'/></input>"
                "<input type='passthrough' bus='virtio'><source evdev='/dev/input/event7'/></input>"
                "<input type='mouse' bus='ps2'/>"
                "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>"
                "<serial type='dev'><source path='/dev/ttyS2'/><target port='0'/></serial>"
                "<console type='dev'><source path='/dev/ttyS2'/><target port='0'/></console>"
                "<parallel type='dev'><source path='/dev/parport0'/><target port='0'/></parallel>"
                "<smartcard mode='host'/>")


def test_iso08_removes_host_devices_outside_hostdev_unless_allow_listed():
    xml = XML.replace("</devices>", HOST_DEVICES + "</devices>")
    assert verdict("ISO-08", xml)[0] == "fail"
    new, changes = domfix.apply(xml, ["ISO-08"], etree)
    assert changes == ["ISO-08: removed passed-through device(s): input evdev /dev/input/event1234; input passthrough "
                       "/dev/input/event7; tpm passthrough /dev/tpm0; serial dev /dev/ttyS2; console dev /dev/ttyS2; "
                       "parallel dev /dev/parport0; smartcard host"]
    assert verdict("ISO-08", new)[0] == "pass"
    d = domxml.parse_domain(new)
    assert d["host_devices"] == [] and "<input type=\"mouse\" bus=\"ps2\"/>" in new.replace("'", '"')  # emulated input stays
    assert domfix.apply(new, ["ISO-08"], etree) == (None, [])
    # The allow-list as ISO-08 reads it (paths normalised, smartcard:host): what it names stays, with the console of
    # an allowed serial port.
    allowed = ["/dev//input/event1234", "/dev/ttyS2/", "smartcard:host"]
    new, changes = domfix.apply(xml, {"ISO-08": {"allowed_hostdevs": allowed}}, etree)
    assert changes == ["ISO-08: removed passed-through device(s): input passthrough /dev/input/event7; tpm passthrough "
                       "/dev/tpm0; parallel dev /dev/parport0"]
    assert verdict("ISO-08", new, {"isolation": {"allowed_hostdevs": allowed}})[0] == "pass"
    assert [h["device"] for h in domxml.parse_domain(new)["host_devices"]] == ["input", "serial", "smartcard"]
    assert "<console type=\"dev\">" in new.replace("'", '"')


@pytest.mark.parametrize("graphics, expected", [
    ("<graphics type='vnc' listen='0.0.0.0'/>", "vnc console listen attribute 0.0.0.0 -> 127.0.0.1"),
    ("<graphics type='vnc'/>", "vnc console the qemu.conf default -> <listen> 127.0.0.1"),
    ("<graphics type='spice'><listen type='address'/></graphics>", "spice console <listen> the qemu.conf default -> 127.0.0.1"),
    ("<graphics type='vnc' listen='::1'><listen type='network' network='default'/></graphics>", "vnc console <listen> network default -> ::1"),
    ("<graphics type='vnc'><listen type='address' address='localhost.evil.example'/></graphics>",
     "vnc console <listen> localhost.evil.example -> 127.0.0.1"),
    ("<graphics type='vnc'><listen type='address' address='localhost'/></graphics>", None),
    ("<graphics type='spice'><listen type='socket' socket='/run/s.sock'/></graphics>", None),
    ("<graphics type='vnc'><listen type='none'/></graphics>", None),
    ("<graphics type='sdl' display=':0'/>", None),
])
def test_leak02_each_kind_of_listen(graphics, expected):
    xml = "<domain type='kvm'><name>c</name><devices>%s</devices></domain>" % graphics
    new, changes = domfix.apply(xml, ["LEAK-02"], etree)
    assert changes == (["LEAK-02: %s" % expected] if expected else [])
    if new:
        g = domxml.parse_domain(new)["graphics"][0]
        assert all(lst["type"] == "address" and lst["address"] in ("127.0.0.1", "::1") for lst in g["listens"]), g
        assert domfix.apply(new, ["LEAK-02"], etree) == (None, [])


def test_leak03_04_07_details():
    xml = HOSTILE.replace("<clipboard copypaste='yes'/>", "<clipboard copypaste='yes'/><filetransfer enable='no'/>")
    assert domfix.apply(xml, ["LEAK-03"], etree)[1] == ["LEAK-03: set SPICE <clipboard copypaste='no'>"]
    assert domfix.apply(HOSTILE, ["LEAK-04"], etree)[1] == ["LEAK-04: set <memory dumpCore='off'> (was 'on')"]
    unset = HOSTILE.replace(" dumpCore='on'", "")
    assert domfix.apply(unset, ["LEAK-04"], etree)[1] == ["LEAK-04: set <memory dumpCore='off'> (was unset: qemu.conf's dump_guest_core)"]
    assert domfix.apply("<domain><name>x</name></domain>", ["LEAK-04", "LEAK-07", "LEAK-03"], etree) == (None, [])
    new, changes = domfix.apply(HOSTILE, ["LEAK-07"], etree)
    assert changes == ["LEAK-07: removed <smbios mode='host'/>: the guest gets emulated SMBIOS"]
    assert "<os><type arch=\"x86_64\" machine=\"pc\">hvm</type><boot dev=\"hd\"/></os>" in new.replace("'", '"')


def test_leak03_turns_the_qemu_vdagent_clipboard_off():
    vdagent = ("<channel type='qemu-vdagent'><target type='virtio' name='com.redhat.spice.0'/>"
               "<source><mouse mode='client'/><clipboard copypaste='yes'/></source></channel>")
    xml = XML.replace("</devices>", vdagent + "</devices>")
    assert verdict("LEAK-03", xml)[0] == "fail"
    new, changes = domfix.apply(xml, ["LEAK-03"], etree)
    assert changes == ["LEAK-03: set qemu-vdagent <clipboard copypaste='no'>"]
    assert verdict("LEAK-03", new)[0] == "pass"
    assert "<mouse mode=\"client\"/><clipboard copypaste=\"no\"/>" in new.replace("'", '"')  # the rest stays
    assert domfix.apply(new, ["LEAK-03"], etree) == (None, [])
    # A channel that does not ask for the clipboard is left as it is.
    quiet = XML.replace("</devices>", vdagent.replace("<clipboard copypaste='yes'/>", "") + "</devices>")
    assert domfix.apply(quiet, ["LEAK-03"], etree) == (None, [])


def test_vis05_creates_fills_and_corrects_the_metadata_keeping_the_rest():
    bare = "<domain type='kvm'>\n  <name>x</name>\n  <uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid>\n  <memory>1</memory>\n</domain>"
    new, changes = domfix.apply(bare, {"VIS-05": {"owner": "team-a", "service": "web"}}, etree)
    assert changes == ["VIS-05: set vmguard metadata owner=team-a, service=web"]
    assert new.index("</uuid>") < new.index("<metadata>") < new.index("<memory>")
    assert domxml.parse_domain(new)["metadata"]["owner"] == "team-a"
    existing = E.domain_xml()  # owner team-a, service web, expires 2027-06-30, as hypervisor_facts reads them
    new, changes = domfix.apply(existing, {"VIS-05": {"owner": "team-b", "service": "web", "expires": "2027-06-30"}}, etree)
    assert changes == ["VIS-05: set vmguard metadata owner=team-b (was team-a)"]
    assert domxml.parse_domain(new)["metadata"]["service"] == "web" and new.count("urn:x-vmguard:domain:1") == 1
    with pytest.raises(ValueError, match="VIS-05: no metadata value given"):
        domfix.apply(bare, ["VIS-05"], etree)
    with pytest.raises(ValueError, match="VIS-05: parameter expires must be a date YYYY-MM-DD, got '2027-02-30'"):
        domfix.apply(bare, {"VIS-05": {"expires": "2027-02-30"}}, etree)


@pytest.mark.parametrize("fixes, message", [
    ({"ISO-07": {"allowed_filesystem": []}}, "ISO-07: unknown parameter(s) allowed_filesystem (known: allowed_filesystems)"),
    ({"ISO-07": {"allowed_filesystems": "/srv"}}, "ISO-07: parameter allowed_filesystems must be a list of strings"),
    ({"ISO-11": {"allow_vsock": "yes"}}, "ISO-11: parameter allow_vsock must be true or false"),
    ({"ISO-03": {"ip": "2001:db8::1"}}, "ISO-03: parameter ip must be an IPv4 address"),
    ({"ISO-03": ["ip"]}, "ISO-03: parameters must be a dict"),
    ({"DIV-09": {"model": "virtio"}}, "DIV-09: unknown parameter(s) model (known: none)"),
    ("DIV-09", "expected a list of rule ids or a dict"),
])
def test_bad_parameters_are_refused_naming_the_rule_and_parameter(fixes, message):
    with pytest.raises(ValueError) as e:
        domfix.apply(HOSTILE, fixes, etree)
    assert str(e.value).startswith(message)


def test_leak04_sizes_a_numa_only_domain_as_libvirt_does():
    xml = ("<domain type='kvm'><name>n</name><uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid><vcpu>2</vcpu>"
           "<cpu><numa><cell id='0' cpus='0' memory='109550' unit='KiB'/><cell id='1' cpus='1' memory='1' unit='GiB'/>"
           "</numa></cpu></domain>")
    new, changes = domfix.apply(xml, ["LEAK-04"], etree)
    assert changes == ["LEAK-04: added <memory unit='KiB' dumpCore='off'>1158126</memory> (the total of its NUMA cells)"]
    assert new.index("</uuid><memory") > 0 and domxml.parse_domain(new)["memory_dump_core"] == "off"
    assert domfix.apply(new, ["LEAK-04"], etree) == (None, [])
    odd = xml.replace("unit='GiB'", "unit='parsecs'")
    assert domfix.apply(odd, ["LEAK-04"], etree) == (None, [])  # cannot size it: left alone
