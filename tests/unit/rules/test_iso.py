"""ISO rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

import copy

import pytest

from . import evidence as E


# The libvirt networks of the clean domains, as hypervisor_facts reports them (ISO-03 and ISO-08 read what a network
# interface becomes at start from them).
NETWORKS = {"svc-web": {"bridge": "virbr1", "forward": None, "devs": [], "active": True},
            "svc-mail": {"bridge": "virbr2", "forward": None, "devs": [], "active": True}}


NOT_COLLECTED = "not collected"  # with_networks: hypervisor_facts could not list the networks (networks None)


def with_networks(ev, networks=None):
    ev["hypervisors"][E.HV]["networks"] = None if networks == NOT_COLLECTED else copy.deepcopy(
        NETWORKS if networks is None else networks)
    return ev


def one(rule, dom, networks=None, **kw):
    (f,) = [x for x in E.run(rule, with_networks(E.fleet([dom]), networks), **kw) if x["subject"]["kind"] == "domain"]
    return f


def gfleet(facts=None, service="web"):
    return E.fleet([E.domain("web1", service)], {"web1": E.guest("web1", service, facts=facts or E.guest_facts(1))})


def test_iso01_listeners():
    assert E.status_of(E.run("ISO-01", gfleet()), "web1") == "pass"
    f = E.guest_facts(1)
    f["listening"].append({"proto": "tcp", "address": "0.0.0.0", "port": 25, "process": "exim4"})
    got = E.by_subject(E.run("ISO-01", gfleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["extra"] == ["tcp/25 exim4"]
    # Loopback-only listeners do not count.
    f["listening"][-1]["address"] = "127.0.0.1"
    assert E.status_of(E.run("ISO-01", gfleet(f)), "web1") == "pass"
    # A DHCP client's socket is not a service; the same port over TCP is.
    f["listening"].append({"proto": "udp", "address": "0.0.0.0", "port": 68, "process": "systemd-network"})
    assert E.status_of(E.run("ISO-01", gfleet(f)), "web1") == "pass"
    f["listening"].append({"proto": "tcp", "address": "0.0.0.0", "port": 68, "process": "nc"})
    assert E.status_of(E.run("ISO-01", gfleet(f)), "web1") == "fail"
    assert E.status_of(E.run("ISO-01", gfleet(service="gopher")), "web1") == "error"
    assert E.status_of(E.run("ISO-01", gfleet(service=None)), "web1") == "error"


def test_iso01_loopback_decided_by_address_not_prefix():
    f = E.guest_facts(1)
    f["listening"].append({"proto": "tcp", "address": "::ffff:127.0.0.1", "port": 6379, "process": "redis"})
    f["listening"].append({"proto": "tcp", "address": "127.0.0.53", "port": 53, "process": "resolved"})
    assert E.status_of(E.run("ISO-01", gfleet(f)), "web1") == "pass"
    # ::1a2b starts with "::1" but is not loopback.
    f["listening"].append({"proto": "tcp", "address": "::1a2b", "port": 6380, "process": "redis"})
    got = E.by_subject(E.run("ISO-01", gfleet(f)))["web1"]
    assert got["status"] == "fail" and got["evidence"]["extra"] == ["tcp/6380 redis"]


def test_iso01_no_listener_read_is_an_error():
    got = E.by_subject(E.run("ISO-01", gfleet(E.guest_facts(1, listening=[]))))["web1"]
    assert got["status"] == "error" and "/proc/net" in got["message"]
    assert E.status_of(E.run("ISO-01", gfleet(E.guest_facts(1, listening=None))), "web1") == "error"


def test_iso02_shared_network_across_services():
    web = E.domain("web1", "web")
    mail_on_web_net = E.domain("mail1", "mail", replace={"<source network='svc-mail'/>": "<source network='svc-web'/>"})
    fs = E.by_subject(E.run("ISO-02", E.fleet([web, mail_on_web_net])))
    assert fs["hv1/web1"]["status"] == "fail" and fs["hv1/web1"]["evidence"]["shared"] == {"hv1/network:svc-web": ["hv1/mail1"]}
    fs = E.by_subject(E.run("ISO-02", E.fleet([web, E.domain("mail1", "mail")])))
    assert fs["hv1/web1"]["status"] == "pass"
    # Same service may share; the management network is exempt.
    fs = E.by_subject(E.run("ISO-02", E.fleet([web, E.domain("web2", "web")])))
    assert fs["hv1/web2"]["status"] == "pass"
    fs = E.by_subject(E.run("ISO-02", E.fleet([web, mail_on_web_net]),
                            params={"isolation": {"management_networks": ["svc-web"]}}))
    assert fs["hv1/web1"]["status"] == "not_applicable"


def test_iso03_nwfilter():
    assert one("ISO-03", E.domain())["status"] == "pass"
    assert one("ISO-03", E.domain(replace={"<filterref filter='clean-traffic'/>": ""}))["status"] == "fail"
    user_only = E.domain(replace={"<interface type='network'>": "<interface type='user'>",
                                  "<source network='svc-web'/>": ""})
    assert one("ISO-03", user_only)["status"] == "not_applicable"


def iface(kind, source, filtered=True):
    """The clean domain's service interface as another type (its filterref kept unless ``filtered`` is False)."""
    rep = {"<interface type='network'>": "<interface type='%s'>" % kind, "<source network='svc-web'/>": source}
    if not filtered:
        rep["<filterref filter='clean-traffic'/>"] = ""
    d = E.domain(replace=rep)
    for i in d["interfaces"]:  # hypervisor_facts sends the socket addresses of every socket interface
        for k in ("source_address", "source_port", "local_address", "local_port"):
            i.setdefault(k, None)
    return d


NO_TAP_IFACES = [
    ("direct", "<source dev='eth0' mode='bridge'/>"),
    ("mcast", "<source address='230.0.0.1' port='5558'/>"),
    ("udp", "<source address='192.0.2.1' port='11111'><local address='192.0.2.2' port='22222'/></source>"),
    ("server", "<source address='192.0.2.1' port='5558'/>"),
    ("client", "<source address='192.0.2.1' port='5558'/>"),
    ("vhostuser", "<source type='unix' path='/run/ovs/vhu0' mode='client'/>"),
    ("vdpa", "<source dev='/dev/vhost-vdpa-0'/>"),
]


@pytest.mark.parametrize("kind, source", NO_TAP_IFACES)
def test_iso03_filter_on_an_interface_without_a_host_tap_device_fails(kind, source):
    """nwfilter acts on host tap devices only: a clean-traffic filterref on a macvtap, socket, vhost-user or vDPA
    interface filters nothing (it passed as "filtered")."""
    f = one("ISO-03", iface(kind, source))
    assert f["status"] == "fail", f["message"]
    assert "cannot be applied" in f["message"] and "type='%s'" % kind in f["message"], f["message"]
    assert f["evidence"]["interfaces"] == [E.domain()["interfaces"][0]["mac"]]
    # Without the filter it fails as before (missing filter).
    f = one("ISO-03", iface(kind, source, filtered=False))
    assert f["status"] == "fail" and "without an anti-spoofing filter" in f["message"]


def test_iso03_filter_on_tap_interfaces_passes_on_an_unknown_type_is_an_error():
    assert one("ISO-03", iface("bridge", "<source bridge='br1'/>"))["status"] == "pass"
    assert one("ISO-03", iface("ethernet", "<target dev='tap7'/>"))["status"] == "pass"
    f = one("ISO-03", iface("vds", "<source bridge='x'/>"))
    assert f["status"] == "error" and "type 'vds'" in f["message"]


@pytest.mark.parametrize("network, status, says", [
    ({"bridge": None, "forward": "hostdev", "devs": ["enp3s0f0"], "active": True}, "fail", "gives it hostdev"),
    ({"bridge": None, "forward": "bridge", "devs": ["eth0"], "active": True}, "fail", "gives it direct"),
    ({"bridge": None, "forward": "passthrough", "devs": ["eth1"], "active": True}, "fail", "gives it direct"),
    ({"bridge": "br0", "forward": "bridge", "devs": [], "active": True}, "pass", "filtered"),  # a host bridge: taps
    ({"bridge": "virbr1", "forward": "nat", "devs": [], "active": True}, "pass", "filtered"),
])
def test_iso03_network_interface_is_judged_by_what_its_network_gives(network, status, says):
    f = one("ISO-03", E.domain(), networks={"svc-web": network})
    assert f["status"] == status and says in f["message"], f["message"]


def test_iso03_network_interface_without_the_networks_is_an_error_unless_it_names_its_bridge():
    f = one("ISO-03", E.domain(), networks={})
    assert f["status"] == "error" and "network svc-web" in f["message"] and "tap device" in f["message"]
    ev = with_networks(E.fleet([E.domain()]), NOT_COLLECTED)
    assert [x["status"] for x in E.run("ISO-03", ev)] == ["error"]
    live = E.domain(replace={"<source network='svc-web'/>": "<source network='svc-web' bridge='virbr1'/>"})
    assert [x["status"] for x in E.run("ISO-03", with_networks(E.fleet([live]), NOT_COLLECTED))] == ["pass"]
    # A missing filter stays a failure, with what cannot be told.
    bare = E.domain(extra="<interface type='network'><source network='svc-x'/><filterref filter='clean-traffic'/></interface>",
                    replace={"<filterref filter='clean-traffic'/>": ""})
    f = one("ISO-03", bare)
    assert f["status"] == "fail" and "without an anti-spoofing filter" in f["message"] and "svc-x" in f["message"]


def test_iso04_host_and_domain():
    (h,) = [f for f in E.run("ISO-04", E.fleet([E.domain()])) if f["subject"]["kind"] == "hypervisor"]
    assert h["status"] == "pass"
    nolsm = E.host(security_models=["none"], lsm={"apparmor": False, "selinux": False})
    (h,) = E.run("ISO-04", E.fleet([], host_ev=nolsm))
    assert h["status"] == "fail" and "cannot be enforced on this host" in h["message"]
    off = E.host(qemu_conf={"security_driver": "none"})
    assert E.run("ISO-04", E.fleet([], host_ev=off))[0]["status"] == "fail"
    d = E.domain(after="<seclabel type='none'/>")
    assert one("ISO-04", d)["status"] == "fail"
    assert one("ISO-04", E.domain())["status"] == "pass"
    listed = E.host(qemu_conf={"security_driver": ["none"]})
    assert E.run("ISO-04", E.fleet([], host_ev=listed))[0]["status"] == "fail"


def test_iso04_confined_labels_pass():
    dyn = E.domain(after="<seclabel type='dynamic' model='apparmor' relabel='yes'/>")
    assert one("ISO-04", dyn)["status"] == "pass"
    static = E.domain(after="<seclabel type='static' model='selinux' relabel='yes'>"
                            "<label>system_u:system_r:svirt_t:s0:c10,c20</label></seclabel>")
    assert one("ISO-04", static)["status"] == "pass"
    dac = E.domain(after="<seclabel type='static' model='dac' relabel='yes'><label>+64055:+64055</label></seclabel>")
    assert one("ISO-04", dac)["status"] == "pass"


def test_iso04_unconfined_static_labels_fail():
    for model, label in (("selinux", "system_u:system_r:unconfined_t:s0"), ("apparmor", "unconfined")):
        d = E.domain(after="<seclabel type='static' model='%s' relabel='yes'><label>%s</label></seclabel>" % (model, label))
        assert d["seclabels"][0]["label"] == label
        f = one("ISO-04", d)
        assert f["status"] == "fail" and "unconfined" in f["message"], (model, label)


def test_iso04_root_dac_labels_fail():
    for label in ("+0:+0", "root:root", "0:0", "+64055:+0"):
        d = E.domain(after="<seclabel type='static' model='dac' relabel='yes'><label>%s</label></seclabel>" % label)
        f = one("ISO-04", d)
        assert f["status"] == "fail" and label in f["message"], label
    d = E.domain(after="<seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>")
    f = one("ISO-04", d)
    assert f["status"] == "fail" and "relabel='no'" in f["message"]


def test_iso04_baselabel_of_a_dynamic_label_is_judged():
    """libvirt derives the process label of a dynamic SELinux seclabel from its <baselabel>: an unconfined one runs
    QEMU unconfined although the (shut-off) definition names no <label>."""
    sel = ("<seclabel type='dynamic' model='selinux' relabel='yes'><baselabel>%s</baselabel></seclabel>")
    d = E.domain(state="shut off", after=sel % "system_u:system_r:unconfined_t:s0")
    f = one("ISO-04", d)
    assert f["status"] == "fail" and "baselabel system_u:system_r:unconfined_t:s0 is unconfined" in f["message"]
    assert one("ISO-04", E.domain(after=sel % "system_u:system_r:svirt_tcg_t:s0"))["status"] == "pass"
    dac = E.domain(after="<seclabel type='dynamic' model='dac'><baselabel>+0:+0</baselabel></seclabel>")
    f = one("ISO-04", dac)
    assert f["status"] == "fail" and "DAC baselabel +0:+0 runs QEMU as root" in f["message"]


def iso05(procs=(), **qemu_conf):
    host = E.host(qemu_processes=list(procs))
    for k, v in qemu_conf.items():
        if v is None:
            host["qemu_conf"].pop(k, None)
        else:
            host["qemu_conf"][k] = v
    (f,) = E.run("ISO-05", E.fleet(host_ev=host))
    return f


def test_iso05_qemu_user_and_seccomp():
    f = iso05()
    assert f["status"] == "pass" and "qemu.conf user" in f["message"]
    assert iso05(user="root", group="root")["status"] == "fail"
    f = iso05(seccomp_sandbox="0")
    assert f["status"] == "fail" and "seccomp_sandbox = 0" in f["message"]
    f = iso05(group="root")
    assert f["status"] == "fail" and "group root" in f["message"]
    assert E.run("ISO-05", E.fleet(host_ev={}))[0]["status"] == "error"


def test_iso05_decided_by_the_real_uid_of_running_qemu():
    f = iso05([E.qemu_process(4100, "web1"), E.qemu_process(4101, "mail1")])
    assert f["status"] == "pass" and "running QEMU processes" in f["message"]
    # qemu.conf says libvirt-qemu, but one QEMU runs as root (say a per-domain DAC label): that decides.
    f = iso05([E.qemu_process(4100, "web1"), E.qemu_process(4101, "mail1", uid=0, user="root")])
    assert f["status"] == "fail" and "root" in f["message"]
    f = iso05([E.qemu_process(4100, "web1"), E.qemu_process(4101, "mail1", uid=1001, user="alice")])
    assert f["status"] == "fail" and "alice" in f["message"] and "libvirt-qemu" in f["message"]
    # The processes run unprivileged, but the next start would run as root.
    f = iso05([E.qemu_process(4100, "web1")], user="root")
    assert f["status"] == "fail" and "from now on" in f["message"]


def test_iso05_no_qemu_running_falls_back_and_says_from_where():
    f = iso05(user=None, group=None)
    assert f["status"] == "pass" and "distribution default (no QEMU running)" in f["message"]
    f = iso05(user=None, group=None, qemu_user_default={"user": "root", "group": "root", "source": "upstream default"})
    assert f["status"] == "fail" and "root" in f["message"]
    f = iso05(user=None, group=None, qemu_user_default={"user": None, "group": None, "source": None})
    assert f["status"] == "error" and "cannot tell which user" in f["message"]
    f = iso05(user=None, group=None, qemu_user_default=None)
    assert f["status"] == "error"
    host = E.host(qemu_processes=None)
    assert E.run("ISO-05", E.fleet(host_ev=host))[0]["status"] == "error"


def _shared_disk(name, service, ro=False, shareable=False):
    flags = ("<readonly/>" if ro else "") + ("<shareable/>" if shareable else "")
    return E.domain(name, service, replace={"/var/lib/libvirt/images/%s.qcow2" % name: "/srv/shared.img",
                                            "<target dev='vda' bus='virtio'/>": "<target dev='vda' bus='virtio'/>" + flags})


def test_iso06_shared_disks():
    fs = E.by_subject(E.run("ISO-06", E.fleet([_shared_disk("web1", "web"), _shared_disk("mail1", "mail", ro=True)])))
    assert fs["hv1/web1"]["status"] == "fail" and "other services" in fs["hv1/web1"]["message"]
    fs = E.by_subject(E.run("ISO-06", E.fleet([_shared_disk("web1", "web", ro=True), _shared_disk("web2", "web", ro=True)])))
    assert fs["hv1/web1"]["status"] == "pass"
    fs = E.by_subject(E.run("ISO-06", E.fleet([_shared_disk("web1", "web"), _shared_disk("web2", "web", ro=True)])))
    assert fs["hv1/web2"]["status"] == "fail" and "without readonly/shareable" in fs["hv1/web2"]["message"]
    # The same file written differently is still the same file.
    odd = _shared_disk("mail1", "mail")
    odd["disks"][0]["source"] = "/srv//./shared.img"
    fs = E.by_subject(E.run("ISO-06", E.fleet([_shared_disk("web1", "web"), odd])))
    assert fs["hv1/web1"]["status"] == "fail" and "other services" in fs["hv1/web1"]["message"]
    nodisk = E.domain(replace={"/var/lib/libvirt/images/web1.qcow2": ""})
    nodisk["disks"] = []
    assert one("ISO-06", nodisk)["status"] == "not_applicable"


FS = "<filesystem type='mount' accessmode='passthrough'><source dir='/srv/data'/><target dir='data'/>%s</filesystem>"


def test_iso07_filesystems():
    assert one("ISO-07", E.domain())["status"] == "pass"
    assert one("ISO-07", E.domain(extra=FS % ""))["status"] == "fail"
    allowed = {"isolation": {"allowed_filesystems": ["/srv/data"]}}
    assert one("ISO-07", E.domain(extra=FS % "<readonly/>"), params=allowed)["status"] == "pass"
    assert one("ISO-07", E.domain(extra=FS % ""), params=allowed)["status"] == "fail"
    trailing = E.domain(extra=(FS % "<readonly/>").replace("/srv/data'", "/srv/data/'"))
    assert one("ISO-07", trailing, params=allowed)["status"] == "pass"
    escape = E.domain(extra=(FS % "<readonly/>").replace("/srv/data'", "/srv/data/../../etc'"))
    assert one("ISO-07", escape, params=allowed)["status"] == "fail"


def test_iso08_hostdev_redirdev():
    assert one("ISO-08", E.domain())["status"] == "pass"
    usb = "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>"
    assert one("ISO-08", E.domain(extra=usb))["status"] == "fail"
    assert one("ISO-08", E.domain(extra="<redirdev bus='usb' type='spicevmc'/>"))["status"] == "fail"
    assert one("ISO-08", E.domain(extra="<redirdev bus='usb' type='spicevmc'/>"),
               params={"isolation": {"allowed_hostdevs": ["redirdev:usb"]}})["status"] == "pass"


SRIOV = ("<interface type='hostdev' managed='yes'><source>"
         "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source>"
         "<mac address='52:54:00:6d:90:02'/></interface>")


def test_iso08_sriov_interface_is_a_passed_through_device():
    d = E.domain(extra=SRIOV)
    src = d["interfaces"][1]["hostdev_source"]
    assert d["interfaces"][1]["type"] == "hostdev" and "0x03" in src
    f = one("ISO-08", d)
    assert f["status"] == "fail" and "interface hostdev" in f["message"] and "0x10" in f["message"]
    assert one("ISO-08", d, params={"isolation": {"allowed_hostdevs": [src]}})["status"] == "pass"


VF_POOL = {"sriov-pool": {"bridge": None, "forward": "hostdev", "devs": ["enp3s0f0"], "active": True}}
ON_POOL = {"<source network='svc-web'/>": "<source network='sriov-pool'/>"}


def test_iso08_network_interface_on_an_sriov_vf_pool_is_a_passed_through_device():
    """<interface type='network'> on a <forward mode='hostdev'> network: libvirt hands the guest a host PCI VF at
    start (a shut-off definition still says type='network')."""
    d = E.domain(state="shut off", replace=ON_POOL)
    f = one("ISO-08", d, networks=VF_POOL)
    assert f["status"] == "fail" and "interface network sriov-pool (SR-IOV VF pool" in f["message"]
    assert f["evidence"]["devices"] == ["interface network sriov-pool (SR-IOV VF pool: <forward mode='hostdev'>)"]
    assert one("ISO-08", d, networks=VF_POOL, params={"isolation": {"allowed_hostdevs": ["network:sriov-pool"]}})[
        "status"] == "pass"
    # A network on a bridge is not a device.
    assert one("ISO-08", E.domain())["status"] == "pass"


def test_iso08_network_interface_without_the_networks_is_an_error_never_a_pass():
    d = E.domain(state="shut off", replace=ON_POOL)
    for networks in ({}, {"svc-web": NETWORKS["svc-web"]}):  # none collected / the pool not among them
        f = one("ISO-08", d, networks=networks)
        assert f["status"] == "error" and "network sriov-pool" in f["message"] and "SR-IOV" in f["message"], networks
    ev = with_networks(E.fleet([d]), NOT_COLLECTED)
    assert [x["status"] for x in E.run("ISO-08", ev)] == ["error"]
    # Another device still fails, naming what cannot be told.
    usb = E.domain(state="shut off", replace=ON_POOL, extra="<redirdev bus='usb' type='spicevmc'/>")
    (f,) = E.run("ISO-08", with_networks(E.fleet([usb]), NOT_COLLECTED))
    assert f["status"] == "fail" and "redirdev usb" in f["message"] and "cannot tell" in f["message"]
    # An interface whose live definition names its bridge is not a VF.
    live = E.domain(replace={"<source network='svc-web'/>": "<source network='svc-web' bridge='virbr1'/>"})
    assert [x["status"] for x in E.run("ISO-08", with_networks(E.fleet([live]), NOT_COLLECTED))] == ["pass"]


# Host devices libvirt hands to a guest without <hostdev>, as libvirt's own test suite writes them
# (tests/qemuxml2argvdata: input-linux, virtio-input-passthrough, tpm-passthrough, serial-dev-chardev, smartcard-host).
HOST_DEVICES = [
    ("<input type='evdev'><source dev='/dev/input/event1234' grab='all' grabToggle='alt-alt' repeat='on'/></input>",
     "input evdev /dev/input/event1234", "/dev/input/event1234"),
    ("<input type='passthrough' bus='virtio'><source evdev='/dev/input/event1234'/></input>",
     "input passthrough /dev/input/event1234", "/dev/input/event1234"),
    ("<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>",
     "tpm passthrough /dev/tpm0", "/dev/tpm0"),
    ("<serial type='dev'><source path='/dev/ttyS2'/><target port='0'/></serial>"
     "<console type='dev'><source path='/dev/ttyS2'/><target port='0'/></console>", "serial dev /dev/ttyS2", "/dev/ttyS2"),
    ("<parallel type='dev'><source path='/dev/parport0'/><target port='0'/></parallel>",
     "parallel dev /dev/parport0", "/dev/parport0"),
    ("<smartcard mode='host'/>", "smartcard host (the host's card reader)", "smartcard:host"),
]


@pytest.mark.parametrize("xml,named,allow", HOST_DEVICES)
def test_iso08_host_devices_outside_hostdev_are_passthrough(xml, named, allow):
    d = E.domain(extra=xml)
    f = one("ISO-08", d)
    assert f["status"] == "fail" and f["evidence"]["devices"] == [named], f["message"]
    assert one("ISO-08", d, params={"isolation": {"allowed_hostdevs": [allow]}})["status"] == "pass"
    if allow.startswith("/"):  # a path is compared normalised
        assert one("ISO-08", d, params={"isolation": {"allowed_hostdevs": [allow.replace("/dev/", "/dev//./")]}})[
            "status"] == "pass"


def test_iso08_emulated_input_tpm_and_chardevs_are_not_passthrough():
    emulated = ("<input type='mouse' bus='ps2'/><input type='keyboard' bus='virtio'/>"
                "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
                "<serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>"
                "<smartcard mode='passthrough' type='spicevmc'/>")
    d = E.domain(extra=emulated)
    assert d["host_devices"] == []
    assert one("ISO-08", d)["status"] == "pass"


def test_iso09_qemu_commandline():
    assert one("ISO-09", E.domain())["status"] == "pass"
    d = E.domain(after="<qemu:commandline><qemu:arg value='-netdev'/><qemu:arg value='user,id=x'/></qemu:commandline>")
    f = one("ISO-09", d)
    assert f["status"] == "fail" and f["evidence"]["args"] == ["-netdev", "user,id=x"]
    env = E.domain(after="<qemu:commandline><qemu:env name='QEMU_AUDIO_DRV' value='none'/></qemu:commandline>")
    assert env["qemu_commandline"] == [] and env["qemu_env"] == [{"name": "QEMU_AUDIO_DRV", "value": "none"}]
    f = one("ISO-09", env)
    assert f["status"] == "fail" and "QEMU_AUDIO_DRV" in f["message"]
    waived = one("ISO-09", d, waivers=[{"rule": "ISO-09", "subject": "hv1/web*", "reason": "lab port forward",
                                        "expires": "2027-01-01"}])
    assert waived["status"] == "waived" and waived["waived_status"] == "fail" and "lab port forward" in waived["message"]


# libvirt's own spelling (formatdomain "QEMU command-line passthrough", tests/qemuxml2argvdata/qemu-ns.xml).
OVERRIDE = ("<qemu:override><qemu:device alias='net0'><qemu:frontend>"
            "<qemu:property name='vhost' type='bool' value='false'/><qemu:property name='romfile' type='remove'/>"
            "</qemu:frontend></qemu:device></qemu:override>")
CAPABILITIES = "<qemu:capabilities><qemu:del capability='seccomp-sandbox'/><qemu:add capability='blockdev'/></qemu:capabilities>"


def test_iso09_qemu_override_and_capabilities_are_passthrough():
    d = E.domain(after=OVERRIDE)
    assert d["qemu_commandline"] == [] and d["qemu_env"] == []
    f = one("ISO-09", d)
    assert f["status"] == "fail" and "device property overrides: net0 vhost=false (bool), net0 romfile (remove)" in f["message"]
    assert f["evidence"]["overrides"] == ["net0 vhost=false (bool)", "net0 romfile (remove)"]
    f = one("ISO-09", E.domain(after=CAPABILITIES))
    assert f["status"] == "fail" and "capability changes: del seccomp-sandbox, add blockdev" in f["message"]
    # A device override without properties is still an override.
    bare = E.domain(after="<qemu:override><qemu:device alias='ua-x'/></qemu:override>")
    assert one("ISO-09", bare)["evidence"]["overrides"] == ["ua-x (no property)"]


def iso10(fw=None, service="web", boot=None, **changes):
    f = E.guest_facts(1)
    f["firewall"] = dict(f["firewall"], **changes) if fw is None else fw
    if boot is not None:
        f["firewall_boot"] = dict(f["firewall_boot"], **boot)
    return E.by_subject(E.run("ISO-10", gfleet(f, service=service)))["web1"]


def test_iso10_default_deny_with_service_and_management_ports_passes():
    got = iso10()
    assert got["status"] == "pass"
    assert got["message"] == ("inbound default-deny, live and at boot (loaded by vmguard-firewall.service); "
                              "open: tcp/22 from 192.0.2.0/24, tcp/80 from any, tcp/443 from any")
    assert got["evidence"]["boot_loaders"] == [{"unit": "vmguard-firewall.service", "files": ["/etc/nftables.d/vmguard.nft"]}]
    # A policy-accept chain ending in reject (firewalld) is just as default-deny: the policy is not the test.
    assert iso10(input_policy="accept")["status"] == "pass"
    assert iso10(open=[])["message"].endswith("; open: nothing")


NOTHING_AT_BOOT = {"default_deny": False, "open": [], "loaders": [], "input_policy": None, "input_chains": 0,
                   "open_any": ["ipv4: no base chain hooks input (every packet is accepted)"]}


def test_iso10_a_live_ruleset_that_no_boot_loads_fails():
    """Default-deny now, open after the next reboot (or a revert to a snapshot of before it was persisted): nothing
    enabled loads it at boot. The live check alone passed it."""
    got = iso10(boot=NOTHING_AT_BOOT)
    assert got["status"] == "fail"
    assert got["message"].startswith("the ruleset loaded at boot by nothing: no enabled unit loads an nft file accepts "
                                     "inbound traffic not bounded to a port")
    assert got["evidence"]["boot_default_deny"] is False and got["evidence"]["default_deny"] is True


def test_iso10_a_boot_ruleset_weaker_than_the_live_one_fails_naming_its_loader():
    loaders = [{"unit": "nftables.service", "files": ["/etc/nftables.conf"]}]
    extra = E.guest_facts(1)["firewall"]["open"] + [{"proto": "tcp", "port": 3306, "from": "any"}]
    got = iso10(boot={"open": extra, "loaders": loaders})
    assert got["status"] == "fail" and got["evidence"]["boot_extra"] == ["tcp/3306 from any"]
    assert got["message"] == ("the ruleset loaded at boot by nftables.service (/etc/nftables.conf) opens ports outside "
                              "TCP [22, 80, 443], UDP [68, 80, 443, 546]: tcp/3306 from any")
    # both wrong: both said, the live one first
    got = iso10(default_deny=False, boot={"default_deny": False, "loaders": loaders})
    assert got["message"].startswith("inbound firewall is not default-deny") and "loaded at boot by nftables" in got["message"]


def test_iso10_a_live_failure_stays_a_failure_when_the_boot_cannot_be_judged():
    """A failing live ruleset is remediated whatever the boot holds: an unreadable boot ruleset made it an error, and
    the planner remediates failures only (the rollback scenario's guest then kept no firewall at all)."""
    got = iso10(default_deny=False, boot={"error": "the boot ruleset could not be replayed (rc 1): x", "digest": None})
    assert got["status"] == "fail" and got["message"].startswith("inbound firewall is not default-deny")
    assert "the ruleset loaded at boot cannot be judged: boot firewall (firewall_boot) not readable" in got["message"]


def test_iso10_names_a_loader_the_boot_skips():
    skipped = [{"unit": "vmguard-firewall.service", "files": ["/etc/vmguard/firewall.nft"],
                "skipped": "ConditionPathExists=/etc/vmguard/firewall.nft does not hold: systemd skips the unit"}]
    got = iso10(boot=dict(NOTHING_AT_BOOT, loaders=skipped))
    assert got["status"] == "fail" and got["message"].startswith(
        "the ruleset loaded at boot by vmguard-firewall.service (skipped: ConditionPathExists=/etc/vmguard/firewall.nft "
        "does not hold: systemd skips the unit) accepts inbound traffic not bounded to a port")


def test_iso10_a_boot_ruleset_that_cannot_be_replayed_is_an_error():
    got = iso10(boot={"error": "the boot ruleset could not be replayed in a scratch network namespace (rc 1): x"})
    assert got["status"] == "error" and "boot firewall (firewall_boot) not readable: the boot ruleset could" in got["message"]
    f = E.guest_facts(1)
    del f["firewall_boot"]  # evidence of a guest_facts before it
    got = E.by_subject(E.run("ISO-10", gfleet(f)))["web1"]
    assert got["status"] == "error" and "firewall_boot" in got["message"] and "older guest_facts" in got["message"]


def test_iso10_unbounded_accept_fails_and_names_the_rule():
    got = iso10(default_deny=False, open_any=['inet filter input: iifname "eth0" accept'])
    assert got["status"] == "fail"
    assert 'not bounded to a port: inet filter input: iifname "eth0" accept' in got["message"]
    assert got["evidence"]["open_any"] == ['inet filter input: iifname "eth0" accept']


def test_iso10_not_default_deny_fails():
    got = iso10(default_deny=False)
    assert got["status"] == "fail" and "not default-deny" in got["message"]


def test_iso10_port_outside_service_and_management_fails():
    extra = [{"proto": "tcp", "port": 3306, "from": "any"}, {"proto": "udp", "port": 5353, "from": "fe80::/10"}]
    got = iso10(open=E.guest_facts(1)["firewall"]["open"] + extra)
    assert got["status"] == "fail"
    assert got["message"] == ("inbound firewall opens ports outside TCP [22, 80, 443], UDP [68, 80, 443, 546]: "
                              "tcp/3306 from any, udp/5353 from fe80::/10")
    assert got["evidence"]["extra"] == ["tcp/3306 from any", "udp/5353 from fe80::/10"]
    # DHCP client replies (UDP client_ports) reach a client, not a service; the same port over TCP is a service.
    dhcp = [{"proto": "udp", "port": 546, "from": "fe80::/10"}, {"proto": "udp", "port": 68, "from": "any"}]
    assert iso10(open=E.guest_facts(1)["firewall"]["open"] + dhcp)["status"] == "pass"
    got = iso10(open=E.guest_facts(1)["firewall"]["open"] + [{"proto": "tcp", "port": 546, "from": "any"}])
    assert got["status"] == "fail" and "tcp/546" in got["message"]
    # The same ports are the service's own on a db guest... except 80/443, which then are extra.
    assert "tcp/80 from any" in iso10(service="db", open=[{"proto": "tcp", "port": 80, "from": "any"}])["message"]


def test_iso10_management_is_tcp_only():
    """guest_firewall opens the management ports over TCP only; UDP 22 open to the world passed as "management"."""
    got = iso10(open=E.guest_facts(1)["firewall"]["open"] + [{"proto": "udp", "port": 22, "from": "any"}])
    assert got["status"] == "fail" and got["evidence"]["extra"] == ["udp/22 from any"]
    # The service's own ports count over both protocols (the firewall opens them so), DHCP client ports over UDP only.
    both = [{"proto": p, "port": n, "from": "any"} for p in ("tcp", "udp") for n in (80, 443)]
    assert iso10(open=both + [{"proto": "tcp", "port": 22, "from": "any"}])["status"] == "pass"


def test_iso10_missing_or_unreadable_firewall_is_error():
    assert iso10(fw={"error": "nft is not installed", "digest": None})["status"] == "error"
    got = iso10(fw={"digest": "f" * 64, "input_policy": "drop", "accepted_ports": [22], "error": None})
    assert got["status"] == "error" and "lacks default_deny, open, open_any" in got["message"]
    f = E.guest_facts(1)
    del f["firewall"]
    assert E.status_of(E.run("ISO-10", gfleet(f)), "web1") == "error"
    assert iso10(service=None)["status"] == "error"


def test_iso11_shmem_vsock():
    assert one("ISO-11", E.domain())["status"] == "pass"
    assert one("ISO-11", E.domain(extra="<shmem name='ivshmem0'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>"))["status"] == "fail"
    assert one("ISO-11", E.domain(extra="<vsock model='virtio'><cid auto='yes'/></vsock>"))["status"] == "fail"
    assert one("ISO-11", E.domain(extra="<vsock model='virtio'><cid auto='yes'/></vsock>"),
               params={"isolation": {"allow_vsock": True}})["status"] == "pass"


NVDIMM = ("<memory model='%s' access='%s'><source><path>%s</path></source>"
          "<target><size unit='KiB'>524288</size><node>0</node></target></memory>")


def test_iso11_a_memory_backing_file_two_domains_map_shared_is_an_inter_vm_channel():
    """An nvdimm or virtio-pmem backed by one host file that two domains map with shared access carries one
    guest's writes to the other, as an ivshmem <shmem> device does: ISO-11 passed it."""
    web = E.domain("web1", extra=NVDIMM % ("nvdimm", "shared", "/var/lib/pmem/shared.img"))
    mail = E.domain("mail1", "mail", extra=NVDIMM % ("virtio-pmem", "shared", "/var/lib/pmem/./shared.img"))
    own = E.domain("db1", "db", extra=NVDIMM % ("nvdimm", "shared", "/var/lib/pmem/db1.img"))
    fs = E.by_subject(E.run("ISO-11", E.fleet([web, mail, own])))
    assert fs[E.HV + "/web1"]["status"] == fs[E.HV + "/mail1"]["status"] == "fail"
    assert fs[E.HV + "/web1"]["message"] == (
        "inter-VM channel(s): nvdimm /var/lib/pmem/shared.img shared with %s/mail1" % E.HV)
    assert fs[E.HV + "/mail1"]["evidence"]["shared_memory"] == [
        "virtio-pmem /var/lib/pmem/./shared.img shared with %s/web1" % E.HV]
    assert fs[E.HV + "/db1"]["status"] == "pass"  # its own file: no channel


def test_iso11_private_mappings_of_one_file_share_nothing():
    """Private access (the device's, else <memoryBacking><access>, else libvirt's default) copies on write."""
    a = E.domain("web1", extra=NVDIMM % ("nvdimm", "private", "/pmem/one.img"))
    b = E.domain("mail1", "mail", extra=NVDIMM.replace(" access='%s'", "%s") % ("nvdimm", "", "/pmem/one.img"))
    fs = E.by_subject(E.run("ISO-11", E.fleet([a, b])))
    assert set(f["status"] for f in fs.values()) == {"pass"}
    shared_backing = E.domain("mail1", "mail", extra=NVDIMM.replace(" access='%s'", "%s") % ("nvdimm", "", "/pmem/one.img"),
                              replace={"<devices>": "<memoryBacking><access mode='shared'/></memoryBacking><devices>"})
    c = E.domain("web1", extra=NVDIMM % ("nvdimm", "shared", "/pmem/one.img"))
    fs = E.by_subject(E.run("ISO-11", E.fleet([c, shared_backing])))
    assert set(f["status"] for f in fs.values()) == {"fail"}


def _iso06_reference(domains, service):
    """ISO-06 as first written (every other user of a disk walked per domain): {domain: (status, message)}."""
    import posixpath
    attached = dict((d["name"], [x for x in d["disks"] if x.get("source") and x["device"] in ("disk", "lun")]) for d in domains)
    users = {}
    for d in domains:
        for x in attached[d["name"]]:
            users.setdefault(posixpath.normpath(x["source"]), []).append((d["name"], x))
    out = {}
    for d in domains:
        if not attached[d["name"]]:
            out[d["name"]] = ("not_applicable", "no disks with a source", None)
            continue
        problems, shared = [], {}
        for x in attached[d["name"]]:
            others = [(n, y) for n, y in users[posixpath.normpath(x["source"])] if n != d["name"]]
            if not others:
                continue
            other_svc = sorted("hv1/%s" % n for n, y in others if service[n] != service[d["name"]])
            if other_svc:  # the message names ten, the evidence all
                problems.append("%s shared with other services: %s%s" % (x["source"], ", ".join(other_svc[:10]), (
                    " and %d more" % (len(other_svc) - 10)) if len(other_svc) > 10 else ""))
                shared[x["source"]] = other_svc
            elif [y for n, y in others + [(d["name"], x)] if not (y["readonly"] or y["shareable"])]:
                problems.append("%s shared within service %s without readonly/shareable" % (x["source"], service[d["name"]]))
        out[d["name"]] = ("fail", "; ".join(problems), shared) if problems else (
            "pass", "%d disk(s), none shared unsafely" % len(attached[d["name"]]), None)
    return out


def test_iso06_many_domains_on_one_disk_match_the_reference():
    """One disk path in many domains (as in libvirt's corpus), services mixed, readonly/shareable mixed, one
    domain attaching the same file twice: each verdict and message is the first implementation's."""
    import random
    rnd = random.Random(6)
    domains, service = [], {}
    for i in range(60):
        name, svc = "d%02d" % i, rnd.choice(["web", "web", "mail", "db"])
        d = _shared_disk(name, svc, ro=rnd.random() < 0.5, shareable=rnd.random() < 0.2)
        if i % 7 == 0:
            d["disks"][0]["source"] = "/srv/own-%d.img" % i  # its own: pass
        if i % 11 == 0:
            d["disks"][0]["source"], d["disks"][0]["readonly"] = "/srv/%s-ro.img" % svc, True  # one service, readonly
        if i == 5:
            d["disks"].append(dict(d["disks"][0], target="vdb", readonly=False, shareable=False))
        domains.append(d)
        service[name] = svc
    want = _iso06_reference(domains, service)
    got = E.by_subject(E.run("ISO-06", E.fleet(domains)))
    assert set(s for s, m, shared in want.values()) == {"pass", "fail"}
    assert max(len(shared or ()) and max(len(v) for v in shared.values()) for s, m, shared in want.values()) > 10
    for name, (status, message, shared) in want.items():
        assert (got["hv1/" + name]["status"], got["hv1/" + name]["message"]) == (status, message), name
        if shared is not None:
            assert got["hv1/" + name]["evidence"]["shared"] == shared, name


def test_iso04_host_security_default_confined_0_fails():
    """qemu.conf security_default_confined = 0: a domain without a <seclabel> runs unconfined."""
    qc = dict(E.host()["qemu_conf"], security_default_confined="0")
    f = [x for x in E.run("ISO-04", E.fleet([E.domain()], host_ev=E.host(qemu_conf=qc)))
         if x["subject"]["kind"] == "hypervisor"]
    assert f[0]["status"] == "fail" and "security_default_confined = 0" in f[0]["message"]
    assert f[0]["evidence"]["security_default_confined"] == "0"
    qc["security_default_confined"] = "1"
    assert E.run("ISO-04", E.fleet([], host_ev=E.host(qemu_conf=qc)))[0]["status"] == "pass"
    unparsable = E.host(qemu_conf=None, qemu_conf_error="qemu.conf: line 1: expecting a name")
    f = E.run("ISO-04", E.fleet([], host_ev=unparsable))[0]
    assert f["status"] == "error" and "line 1: expecting a name" in f["message"]
