"""ISO-02, ISO-03 and ISO-06 on segments and disks named two ways (a network and its bridge, a storage volume and
its file), on QEMU socket interfaces and network disks, and ISO rules on domain evidence that lacks a list the
producer always sends (an error, never a pass or not applicable)."""

import copy

import pytest


from . import evidence as E

# The live XML of a running domain on a libvirt network names the bridge libvirt attached it to.
LIVE_DEFAULT = {"<source network='svc-web'/>": "<source network='default' bridge='virbr0'/>"}
INACTIVE_DEFAULT = {"<source network='svc-web'/>": "<source network='default'/>"}
ON_VIRBR0 = {"<interface type='network'>": "<interface type='bridge'>", "<source network='svc-mail'/>": "<source bridge='virbr0'/>"}
ON_BR1 = {"<interface type='network'>": "<interface type='bridge'>", "<source network='svc-mail'/>": "<source bridge='br1'/>"}
NETWORKS = {"default": {"bridge": "virbr0", "forward": "nat", "devs": [], "active": True},
            "svc-web": {"bridge": "virbr1", "forward": None, "devs": [], "active": True},
            "svc-mail": {"bridge": "virbr2", "forward": None, "devs": [], "active": True}}


def collected_domain(name="web1", service="web", **kw):
    """A domain as hypervisor_facts reports it (domxml gives the socket addresses and the pooled disks' sources)."""
    return E.domain(name, service, **kw)


def fleet(domains, networks=None, **kw):
    """E.fleet with the hypervisor's networks: ``networks``, or None (not collected) when not given."""
    ev = E.fleet(domains, **kw)
    ev["hypervisors"][E.HV]["networks"] = copy.deepcopy(networks)
    return ev


def fleet2(hv1, hv2):
    """Two hypervisors (hv1, hv2), each with its domains."""
    ev = E.fleet(hv1)
    ev["hypervisors"]["hv2"] = dict(ev["hypervisors"][E.HV], domains=list(hv2))
    return ev


def run(rule, ev, **kw):
    return E.by_subject([f for f in E.run(rule, ev, **kw) if f["subject"]["kind"] == "domain"])


# --- ISO-02: one segment, two names ------------------------------------------------------------------

def test_iso02_network_and_the_bridge_it_runs_on_are_one_segment():
    web = E.domain("web1", "web", replace=LIVE_DEFAULT)
    mail = E.domain("mail1", "mail", replace=ON_VIRBR0)
    fs = run("ISO-02", fleet([web, mail], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    # Each names the segment as its own interface spells it (the ISO-02 fixer's terms).
    assert fs["hv1/web1"]["evidence"]["shared"] == {"hv1/network:default": ["hv1/mail1"]}
    assert fs["hv1/mail1"]["evidence"]["shared"] == {"hv1/bridge:virbr0": ["hv1/web1"]}
    # The live bridge attribute alone is enough (networks not collected).
    fs = run("ISO-02", fleet([web, mail]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"


def test_iso02_an_inactive_definition_is_tied_to_its_bridge_by_the_networks_map():
    web = E.domain("web1", "web", replace=INACTIVE_DEFAULT, state="shutoff")
    mail = E.domain("mail1", "mail", replace=ON_VIRBR0)
    fs = run("ISO-02", fleet([web, mail], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    assert fs["hv1/mail1"]["evidence"]["shared"] == {"hv1/bridge:virbr0": ["hv1/web1"]}
    # Without the map the two cannot be told apart: error for both, never pass.
    fs = run("ISO-02", fleet([web, mail]))
    assert fs["hv1/web1"]["status"] == "error" and fs["hv1/mail1"]["status"] == "error"
    assert "networks were not collected" in fs["hv1/web1"]["message"] and "hv1/mail1" in fs["hv1/web1"]["message"]


def test_iso02_different_bridges_still_pass():
    web = E.domain("web1", "web", replace=LIVE_DEFAULT)
    fs = run("ISO-02", fleet([web, E.domain("mail1", "mail", replace=ON_BR1)], NETWORKS))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"
    assert set(fs["hv1/web1"]["evidence"]["networks"]) == {"hv1/network:default", "hv1/bridge:virbr0"}
    inactive = E.domain("web1", "web", replace=INACTIVE_DEFAULT, state="shutoff")
    fs = run("ISO-02", fleet([inactive, E.domain("mail1", "mail", replace=ON_BR1)], NETWORKS))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"
    # Each service on its own network: pass with or without the map.
    for networks in (NETWORKS, None):
        fs = run("ISO-02", fleet([E.domain("web1", "web"), E.domain("mail1", "mail")], networks))
        assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"


def test_iso02_management_network_is_matched_by_its_name_and_its_bridge():
    web = E.domain("web1", "web", replace=LIVE_DEFAULT)
    mail = E.domain("mail1", "mail", replace=ON_VIRBR0)
    for mgmt in (["default"], ["virbr0"]):
        fs = run("ISO-02", fleet([web, mail], NETWORKS), params={"isolation": {"management_networks": mgmt}})
        assert fs["hv1/web1"]["status"] == "not_applicable" and fs["hv1/mail1"]["status"] == "not_applicable", mgmt
        fs = run("ISO-03", fleet([web, mail], NETWORKS), params={"isolation": {"management_networks": mgmt}})
        assert fs["hv1/mail1"]["status"] == "not_applicable", mgmt


# --- ISO-02/ISO-03: QEMU socket interfaces and interfaces set up outside libvirt --------------------

def _iface(kind, source, mac):
    return {"<interface type='network'>": "<interface type='%s'>" % kind,
            "<source network='svc-%s'/>": source, "<mac address='{mac}'/>": "<mac address='%s'/>" % mac}


def socket_domain(name, service, kind, source, mac, filtered=False):
    rep = dict((k.replace("%s", service) if "%s" in k else k, v) for k, v in _iface(kind, source, mac).items()
               if k != "<mac address='{mac}'/>")
    if not filtered:
        rep["<filterref filter='clean-traffic'/>"] = ""
    return collected_domain(name, service, mac=mac, replace=rep)


MCAST = "<source address='230.0.0.1' port='5558'/>"


def test_iso02_two_services_on_one_multicast_segment_fail():
    web = socket_domain("web1", "web", "mcast", MCAST, "52:54:00:00:00:01")
    mail = socket_domain("mail1", "mail", "mcast", MCAST, "52:54:00:00:00:02")
    assert web["interfaces"][0]["source_address"] == "230.0.0.1" and web["interfaces"][0]["source_port"] == "5558"
    fs = run("ISO-02", fleet([web, mail], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    assert fs["hv1/web1"]["evidence"]["shared"] == {"mcast:230.0.0.1:5558": ["hv1/mail1"]}
    # A multicast group reaches other hypervisors on the LAN too.
    fs = run("ISO-02", fleet2([web], [mail]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv2/mail1"]["status"] == "fail"
    # Another group: pass.
    other = socket_domain("mail1", "mail", "mcast", "<source address='230.0.0.2' port='5558'/>", "52:54:00:00:00:02")
    fs = run("ISO-02", fleet([web, other], NETWORKS))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"


def test_iso03_socket_interfaces_are_service_interfaces():
    web = socket_domain("web1", "web", "mcast", MCAST, "52:54:00:00:00:01")
    f = run("ISO-03", fleet([web], NETWORKS))["hv1/web1"]
    assert f["status"] == "fail" and f["evidence"]["interfaces"] == ["52:54:00:00:00:01"]
    # A filterref on it filters nothing: nwfilter acts on host tap devices only, QEMU's sockets have none.
    web = socket_domain("web1", "web", "mcast", MCAST, "52:54:00:00:00:01", filtered=True)
    f = run("ISO-03", fleet([web], NETWORKS))["hv1/web1"]
    assert f["status"] == "fail" and f["evidence"]["interfaces"] == ["52:54:00:00:00:01"]
    assert "cannot be applied to interface 52:54:00:00:00:01 (type='mcast')" in f["message"]


UDP_A = "<source address='127.0.0.1' port='11111'><local address='127.0.0.1' port='22222'/></source>"
UDP_B = "<source address='127.0.0.1' port='22222'><local address='127.0.0.1' port='11111'/></source>"


def test_iso02_udp_tunnel_and_tcp_socket_pairs():
    web = socket_domain("web1", "web", "udp", UDP_A, "52:54:00:00:00:01")
    mail = socket_domain("mail1", "mail", "udp", UDP_B, "52:54:00:00:00:02")
    fs = run("ISO-02", fleet([web, mail], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    # Loopback endpoints on two hypervisors are two different sockets.
    fs = run("ISO-02", fleet2([web], [mail]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv2/mail1"]["status"] == "pass"
    server = socket_domain("web1", "web", "server", "<source port='5558'/>", "52:54:00:00:00:01")
    client = socket_domain("mail1", "mail", "client", "<source address='192.0.2.10' port='5558'/>", "52:54:00:00:00:02")
    fs = run("ISO-02", fleet([server, client], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    # A server listening on every address is reached from another hypervisor through the host's address.
    fs = run("ISO-02", fleet2([server], [client]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv2/mail1"]["status"] == "fail"
    fs = run("ISO-02", fleet([server, socket_domain("mail1", "mail", "client", "<source address='192.0.2.10' port='5559'/>",
                                                    "52:54:00:00:00:02")], NETWORKS))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"


def test_iso02_socket_interface_without_its_addresses_is_an_error():
    web = E.domain("web1", "web", replace={"<interface type='network'>": "<interface type='mcast'>",
                                           "<source network='svc-web'/>": MCAST})
    assert web["interfaces"][0]["source_address"]  # domxml reads it
    del web["interfaces"][0]["source_address"]  # evidence of an older collector: not read
    f = run("ISO-02", fleet([web], NETWORKS))["hv1/web1"]
    assert f["status"] == "error" and "source_address of mcast interface" in f["message"] and "not collected" in f["message"]


@pytest.mark.parametrize("kind,source", [
    ("ethernet", "<target dev='tap-web1' managed='no'/>"),
    ("vhostuser", "<source type='unix' path='/run/openvswitch/vhu-web1' mode='client'/>"),
])
def test_iso02_interface_set_up_outside_libvirt_is_an_error_and_user_networking_is_private(kind, source):
    d = collected_domain("web1", "web", replace={"<interface type='network'>": "<interface type='%s'>" % kind,
                                                 "<source network='svc-web'/>": source})
    f = run("ISO-02", fleet([d], NETWORKS))["hv1/web1"]
    assert f["status"] == "error" and "%s interface" % kind in f["message"] and "outside libvirt" in f["message"]
    # Shared with another service on a known segment too: the failure is reported, the unknown one named.
    mixed = collected_domain("web1", "web", replace=LIVE_DEFAULT, extra="<interface type='%s'>%s</interface>" % (kind, source))
    fs = run("ISO-02", fleet([mixed, E.domain("mail1", "mail", replace=ON_VIRBR0)], NETWORKS))
    assert fs["hv1/web1"]["status"] == "fail" and "outside libvirt" in fs["hv1/web1"]["message"]
    user = collected_domain("web1", "web", replace={"<interface type='network'>": "<interface type='user'>",
                                                    "<source network='svc-web'/>": ""})
    assert run("ISO-02", fleet([user], NETWORKS))["hv1/web1"]["status"] == "not_applicable"


# --- ISO-06: a volume is the file its pool resolves it to ---------------------------------------------

SHARED_FILE = "/var/lib/libvirt/images/shared.qcow2"
VOLUME_DISK = ("<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
               "<source pool='default' volume='shared.qcow2'/><target dev='vdb' bus='virtio'/></disk>")
FILE_DISK = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s'/><target dev='vdb' bus='virtio'/></disk>")


def volume_domain(name, service, path=SHARED_FILE, error=None, replace=None):
    """A domain with a volume disk as hypervisor_facts resolves it (resolve_volumes: path, or the error)."""
    d = collected_domain(name, service, extra=VOLUME_DISK, replace=replace)
    disk = d["disks"][1]
    assert (disk["pool"], disk["volume"]) == ("default", "shared.qcow2")
    disk.update(volume_path=None if error else path, volume_type=None if error else "file",
                volume_pool_type="dir", volume_error=error)
    return d


def test_iso06_volume_and_the_file_it_resolves_to_are_one_disk():
    web = volume_domain("web1", "web")
    mail = collected_domain("mail1", "mail", extra=FILE_DISK % SHARED_FILE)
    fs = run("ISO-06", fleet([web, mail]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"
    assert "default/shared.qcow2 (%s) shared with other services: hv1/mail1" % SHARED_FILE in fs["hv1/web1"]["message"]
    # Another file: pass.
    other = collected_domain("mail1", "mail", extra=FILE_DISK % "/var/lib/libvirt/images/mail-data.qcow2")
    fs = run("ISO-06", fleet([web, other]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"


def test_iso06_same_pool_and_volume_names_on_two_hypervisors_are_two_disks():
    fs = run("ISO-06", fleet2([volume_domain("web1", "web")], [volume_domain("mail1", "mail")]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv2/mail1"]["status"] == "pass"
    fs = run("ISO-06", fleet([volume_domain("web1", "web"), volume_domain("mail1", "mail")]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["status"] == "fail"


def test_iso06_volume_that_cannot_be_resolved_is_an_error_never_a_pass():
    why = "cannot resolve volume shared.qcow2 of storage pool default: storage pool 'default' is not active"
    f = run("ISO-06", fleet([volume_domain("web1", "web", error=why)]))["hv1/web1"]
    assert f["status"] == "error" and why in f["message"]
    # Parsed by domxml alone (no resolution): not collected.
    f = run("ISO-06", fleet([collected_domain("web1", "web", extra=VOLUME_DISK)]))["hv1/web1"]
    assert f["status"] == "error" and "cannot evaluate: path of volume disk vdb (default/shared.qcow2) not collected" == f["message"]
    # A definite sharing on another disk still fails, naming what could not be compared.
    web = volume_domain("web1", "web", error=why, replace={"/var/lib/libvirt/images/web1.qcow2": "/srv/one.img"})
    mail = E.domain("mail1", "mail", replace={"/var/lib/libvirt/images/mail1.qcow2": "/srv/one.img"})
    f = run("ISO-06", fleet([web, mail]))["hv1/web1"]
    assert f["status"] == "fail" and "also cannot compare" in f["message"] and why in f["message"]


# --- a running domain's persistent definition: what the next start brings is shared then --------------------

SHARED_DISK = "<disk type='file' device='disk'><source file='/srv/shared/data.img'/><target dev='vdb' bus='virtio'/></disk>"


def running(name, service, live=None, persistent=None, persistent_service=None):
    """A running persistent domain as hypervisor_facts reports it: the live definition and, in ``inactive``, the
    persistent one (``live``/``persistent``: E.domain arguments of each)."""
    d = E.domain(name, service, state="running", **(live or {}))
    pers = E.domain(name, persistent_service or service, state="running", **(persistent or {}))
    pers.update(definition="persistent", inactive=None)
    d.update(definition="live", inactive=pers)
    return d


def test_iso06_and_iso02_index_the_persistent_definitions():
    """Two running domains whose persistent definitions (virsh attach-disk --config, virsh define) attach one disk
    and one network: they share both from their next start."""
    shared = {"extra": SHARED_DISK, "replace": {"<source network='svc-web'/>": "<source network='shared-net'/>"}}
    web = running("web1", "web", persistent=shared)
    mail = running("mail1", "mail", persistent=dict(shared, replace={"<source network='svc-mail'/>": "<source network='shared-net'/>"}))
    fs = run("ISO-06", fleet([web, mail]))
    for me, other in (("web1", "mail1"), ("mail1", "web1")):
        f = fs["hv1/" + me]
        assert f["status"] == "fail" and f["definition"] == "persistent", f
        assert f["message"] == ("in the persistent definition (takes effect at next start): /srv/shared/data.img shared "
                                "with other services: hv1/%s (persistent definition)" % other)
    fs = run("ISO-02", fleet([web, mail]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/web1"]["definition"] == "persistent"
    assert fs["hv1/web1"]["evidence"]["shared"] == {"hv1/network:shared-net": ["hv1/mail1 (persistent definition)"]}
    # A domain running on the disk now is told about the other's next start, in its live finding.
    now = E.domain("mail1", "mail", state="running", extra=SHARED_DISK)
    fs = run("ISO-06", fleet([web, now]))
    assert fs["hv1/mail1"]["status"] == "fail" and "hv1/web1 (persistent definition)" in fs["hv1/mail1"]["message"]
    # Where the live definition attaches it too, the domain is named plainly (once).
    both = running("web1", "web", live={"extra": SHARED_DISK}, persistent={"extra": SHARED_DISK})
    fs = run("ISO-06", fleet([both, now]))
    assert fs["hv1/mail1"]["message"] == "/srv/shared/data.img shared with other services: hv1/web1"


def test_a_domain_whose_persistent_definition_changes_service_is_not_its_own_neighbour():
    moved = running("web1", "web", live={"extra": SHARED_DISK}, persistent={"extra": SHARED_DISK}, persistent_service="mail")
    fs = run("ISO-06", fleet([moved]))
    assert fs["hv1/web1"]["status"] == "pass", fs["hv1/web1"]
    assert run("ISO-02", fleet([moved], NETWORKS))["hv1/web1"]["status"] == "pass"
    # Another domain of web on the disk: shared with mail from web1's next start.
    web2 = E.domain("web2", "web", state="shutoff", extra=SHARED_DISK.replace("<target", "<readonly/><target"))
    fs = run("ISO-06", fleet([moved, web2]))
    assert fs["hv1/web2"]["status"] == "fail" and "other services: hv1/web1 (persistent definition)" in fs["hv1/web2"]["message"]
    # web1 itself: writable beside web2 now, and shared with web2 as a mail domain from its next start.
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/web1"]["definition"] == "both"
    assert ("in the persistent definition (takes effect at next start): /srv/shared/data.img shared with other "
            "services: hv1/web2") in fs["hv1/web1"]["message"]


# --- one disk under two names: hypervisor_facts' source_id (inode, block device number) ----------------------

def test_iso06_compares_host_paths_by_their_source_id_when_the_evidence_has_one():
    """/dev/disk/by-id/... and /dev/sdb are one device (source_id "block 8:16" on both): shared. The same id on two
    hypervisors is two disks."""
    by_id = collected_domain("web1", "web", extra=FILE_DISK % "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4")
    sdb = collected_domain("mail1", "mail", extra=FILE_DISK % "/dev/sdb")
    for d in (by_id, sdb):
        d["disks"][1].update(source_id="block 8:16", source_id_error=None)
    fs = run("ISO-06", fleet([by_id, sdb]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/mail1"]["message"] == (
        "/dev/sdb shared with other services: hv1/web1")
    fs = run("ISO-06", fleet2([by_id], [sdb]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv2/mail1"]["status"] == "pass"


def network_disk(protocol, name, hosts, target="vdb"):
    return ("<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='%s' name='%s'>%s</source>"
            "<target dev='%s' bus='virtio'/></disk>" % (protocol, name, "".join(
                "<host name='%s' port='%s'/>" % h for h in hosts), target))


def test_iso06_network_disks_by_protocol_host_and_name():
    nbd_a = collected_domain("web1", "web", extra=network_disk("nbd", "export", [("192.0.2.1", "10809")]))
    nbd_b = collected_domain("mail1", "mail", extra=network_disk("nbd", "export", [("192.0.2.2", "10809")]))
    assert nbd_a["disks"][1]["hosts"] == ["192.0.2.1:10809"]
    fs = run("ISO-06", fleet([nbd_a, nbd_b]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv1/mail1"]["status"] == "pass"
    same = collected_domain("mail1", "mail", extra=network_disk("nbd", "export", [("192.0.2.1", "10809")]))
    fs = run("ISO-06", fleet2([nbd_a], [same]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv2/mail1"]["status"] == "fail"
    # An NBD server on each hypervisor's loopback: two disks.
    lo = [("127.0.0.1", "10809")]
    fs = run("ISO-06", fleet2([collected_domain("web1", "web", extra=network_disk("nbd", "export", lo))],
                              [collected_domain("mail1", "mail", extra=network_disk("nbd", "export", lo))]))
    assert fs["hv1/web1"]["status"] == "pass" and fs["hv2/mail1"]["status"] == "pass"
    # One Ceph image reached through different monitors is one disk.
    rbd_a = collected_domain("web1", "web", extra=network_disk("rbd", "vms/data", [("mon1", "6789"), ("mon2", "6789")]))
    rbd_b = collected_domain("mail1", "mail", extra=network_disk("rbd", "vms/data", [("mon3", "6789")]))
    fs = run("ISO-06", fleet2([rbd_a], [rbd_b]))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv2/mail1"]["status"] == "fail"


def one_disk_twice(protocol, name_a, host_a, name_b, host_b):
    """ISO-06 of a web domain on hv1 and a mail domain on hv2, each attaching a network disk as spelled."""
    web = collected_domain("web1", "web", extra=network_disk_xml(protocol, name_a, host_a))
    mail = collected_domain("mail1", "mail", extra=network_disk_xml(protocol, name_b, host_b))
    fs = run("ISO-06", fleet2([web], [mail]))
    return fs["hv1/web1"], fs["hv2/mail1"]


def network_disk_xml(protocol, name, host):
    return ("<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='%s' name='%s'>%s"
            "</source><target dev='vdb' bus='virtio'/></disk>" % (protocol, name, host))


@pytest.mark.parametrize("protocol, name_a, host_a, name_b, host_b", [
    # libvirt's default port, given or not
    ("nbd", "export", "<host name='192.0.2.1' port='10809'/>", "export", "<host name='192.0.2.1'/>"),
    ("http", "/images/shared.img", "<host name='img.example.com' port='80'/>", "/images/shared.img",
     "<host name='img.example.com'/>"),
    ("https", "/i.img", "<host name='img.example.com' port='443'/>", "/i.img", "<host name='img.example.com' port='0'/>"),
    # DNS names: case, trailing dot
    ("nbd", "export", "<host name='nbd.example.com' port='10809'/>", "export", "<host name='NBD.example.com.'/>"),
    # IPv6 literals in any spelling, with or without brackets
    ("nbd", "export", "<host name='2001:db8::1'/>", "export", "<host name='[2001:DB8:0:0:0:0:0:1]' port='10809'/>"),
    ("nbd", "export", "<host name='192.0.2.1'/>", "export", "<host name='::ffff:192.0.2.1'/>"),
    # a URL path with or without its leading slash is one URL (libvirt adds it)
    ("http", "images/shared.img", "<host name='img.example.com'/>", "/images/shared.img", "<host name='img.example.com'/>"),
    # an iSCSI target without a LUN is LUN 0; the LUN is a decimal number
    ("iscsi", "iqn.2013-07.com.example:t1", "<host name='192.0.2.5'/>", "iqn.2013-07.com.example:t1/0",
     "<host name='192.0.2.5'/>"),
    ("iscsi", "iqn.2013-07.com.example:t1/1", "<host name='192.0.2.5'/>", "iqn.2013-07.com.example:t1/01",
     "<host name='192.0.2.5'/>"),
])
def test_iso06_one_network_disk_spelled_two_ways_is_one_disk(protocol, name_a, host_a, name_b, host_b):
    web, mail = one_disk_twice(protocol, name_a, host_a, name_b, host_b)
    assert web["status"] == "fail" and mail["status"] == "fail", (web["message"], mail["message"])
    assert "shared with other services: hv2/mail1" in web["message"]


@pytest.mark.parametrize("protocol, name_a, host_a, name_b, host_b", [
    ("nbd", "export", "<host name='192.0.2.1'/>", "export", "<host name='192.0.2.1' port='10810'/>"),
    ("nbd", "export", "<host name='192.0.2.1'/>", "export", "<host name='192.0.2.2'/>"),
    # NBD export names and ssh paths go to QEMU verbatim: "/export" may be another export than "export"
    ("nbd", "export", "<host name='192.0.2.1'/>", "/export", "<host name='192.0.2.1'/>"),
    ("ssh", "disk.img", "<host name='h.example.com'/>", "/disk.img", "<host name='h.example.com'/>"),
    ("iscsi", "iqn.2013-07.com.example:t1/1", "<host name='192.0.2.5'/>", "iqn.2013-07.com.example:t1",
     "<host name='192.0.2.5'/>"),
])
def test_iso06_different_network_disks_stay_different(protocol, name_a, host_a, name_b, host_b):
    web, mail = one_disk_twice(protocol, name_a, host_a, name_b, host_b)
    assert web["status"] == "pass" and mail["status"] == "pass", (web["message"], mail["message"])


# --- lists the producer always sends: missing is an error -------------------------------------------

@pytest.mark.parametrize("rule,key", [
    ("ISO-02", "interfaces"), ("ISO-03", "interfaces"), ("ISO-06", "disks"), ("ISO-07", "filesystems"),
    ("ISO-08", "hostdevs"), ("ISO-08", "interfaces"), ("ISO-08", "redirdevs"), ("ISO-08", "host_devices"),
    ("ISO-09", "qemu_commandline"),
    ("ISO-09", "qemu_env"), ("ISO-09", "qemu_override"), ("ISO-09", "qemu_capabilities"), ("ISO-11", "shmem"),
    ("ISO-11", "vsock"),
])
def test_missing_list_is_an_error_not_none(rule, key):
    web = E.domain("web1", "web")
    del web[key]
    fs = run(rule, fleet([web, E.domain("mail1", "mail")], NETWORKS))
    assert fs["hv1/web1"]["status"] == "error" and fs["hv1/web1"]["message"] == "cannot evaluate: %s not collected" % key
    # The rest of the fleet is still judged; beside a domain whose disks (interfaces) are unknown, no disk (network) is
    # proven unshared.
    if (rule, key) in (("ISO-06", "disks"), ("ISO-02", "interfaces")):
        assert fs["hv1/mail1"]["status"] == "error" and "(hv1/web1): not proven unshared" in fs["hv1/mail1"]["message"]
    else:
        assert fs["hv1/mail1"]["status"] in ("pass", "not_applicable")


def test_iso02_an_unreadable_domain_leaves_the_segments_unproven():
    web = E.domain("web1", "web", replace=LIVE_DEFAULT)
    mail = E.domain("mail1", "mail", replace={"<source network='svc-mail'/>": "<source network='default' bridge='virbr0'/>"})
    assert run("ISO-02", fleet([web], NETWORKS))["hv1/web1"]["status"] == "pass"
    assert run("ISO-02", fleet([web, mail], NETWORKS))["hv1/web1"]["status"] == "fail"
    f = run("ISO-02", fleet([web, {"name": "mail1", "error": "cannot read the XML of mail1"}], NETWORKS))["hv1/web1"]
    assert f["status"] == "error" and f["message"].endswith("(hv1/mail1): not proven unshared")


def test_iso06_an_unreadable_domain_or_an_unreachable_hypervisor_leaves_disks_unproven():
    """A domain whose definition could not be read may attach this domain's disk; a network disk (rbd, iSCSI, NBD...)
    is reachable from every hypervisor, so an unreachable one leaves it unproven too, a local file not."""
    web, mail = E.domain("web1", "web"), E.domain("mail1", "mail")
    assert run("ISO-06", fleet([web, mail]))["hv1/web1"]["status"] == "pass"
    broken = {"name": "db1", "error": "cannot read the XML of db1"}
    f = run("ISO-06", fleet([web, mail, broken]))["hv1/web1"]
    assert f["status"] == "error" and f["message"].endswith("(hv1/db1): not proven unshared") and f["evidence"]["not_collected"] == 1
    down = fleet([web, mail])
    down["hypervisors"]["hv2"] = {"error": "cannot connect to qemu+ssh://hv2/system", "uri": "qemu+ssh://hv2/system",
                                  "host": {}, "domains": []}
    assert run("ISO-06", down)["hv1/web1"]["status"] == "pass"  # local files: hv2 cannot attach them
    rbd = ("<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='vms/data'>"
           "<host name='mon1' port='6789'/></source><target dev='vdb' bus='virtio'/></disk>")
    down["hypervisors"]["hv1"]["domains"][0] = E.domain("web1", "web", extra=rbd)
    f = run("ISO-06", down)["hv1/web1"]
    assert f["status"] == "error" and f["message"].endswith("(hv2/*): not proven unshared")
