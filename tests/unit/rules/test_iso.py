"""ISO rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

from . import evidence as E


def one(rule, dom, **kw):
    (f,) = [x for x in E.run(rule, E.fleet([dom]), **kw) if x["subject"]["kind"] == "domain"]
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


def test_iso05_qemu_user_and_seccomp():
    assert E.run("ISO-05", E.fleet())[0]["status"] == "pass"
    root = E.host(qemu_conf={"user": "root", "effective_user": "root", "group": "root"})
    assert E.run("ISO-05", E.fleet(host_ev=root))[0]["status"] == "fail"
    nosec = E.host(qemu_conf={"effective_user": "libvirt-qemu", "seccomp_sandbox": "0"})
    assert "seccomp_sandbox = 0" in E.run("ISO-05", E.fleet(host_ev=nosec))[0]["message"]
    assert E.run("ISO-05", E.fleet(host_ev={}))[0]["status"] == "error"


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


def test_iso08_hostdev_redirdev():
    assert one("ISO-08", E.domain())["status"] == "pass"
    usb = "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>"
    assert one("ISO-08", E.domain(extra=usb))["status"] == "fail"
    assert one("ISO-08", E.domain(extra="<redirdev bus='usb' type='spicevmc'/>"))["status"] == "fail"
    assert one("ISO-08", E.domain(extra="<redirdev bus='usb' type='spicevmc'/>"),
               params={"isolation": {"allowed_hostdevs": ["redirdev:usb"]}})["status"] == "pass"


def test_iso09_qemu_commandline():
    assert one("ISO-09", E.domain())["status"] == "pass"
    d = E.domain(after="<qemu:commandline><qemu:arg value='-netdev'/><qemu:arg value='user,id=x'/></qemu:commandline>")
    f = one("ISO-09", d)
    assert f["status"] == "fail" and f["evidence"]["args"] == ["-netdev", "user,id=x"]
    waived = one("ISO-09", d, waivers=[{"rule": "ISO-09", "subject": "hv1/web*", "reason": "lab port forward",
                                        "expires": "2027-01-01"}])
    assert waived["status"] == "waived" and waived["waived_status"] == "fail" and "lab port forward" in waived["message"]


def test_iso10_firewall():
    assert E.status_of(E.run("ISO-10", gfleet()), "web1") == "pass"
    f = E.guest_facts(1)
    f["firewall"] = dict(f["firewall"], input_policy="accept")
    assert E.status_of(E.run("ISO-10", gfleet(f)), "web1") == "fail"
    f["firewall"] = dict(f["firewall"], input_policy="drop", accepted_ports=[22, 443, 3306])
    assert "3306" in E.by_subject(E.run("ISO-10", gfleet(f)))["web1"]["message"]
    f["firewall"] = {"error": "nft is not installed"}
    assert E.status_of(E.run("ISO-10", gfleet(f)), "web1") == "error"


def test_iso11_shmem_vsock():
    assert one("ISO-11", E.domain())["status"] == "pass"
    assert one("ISO-11", E.domain(extra="<shmem name='ivshmem0'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>"))["status"] == "fail"
    assert one("ISO-11", E.domain(extra="<vsock model='virtio'><cid auto='yes'/></vsock>"))["status"] == "fail"
    assert one("ISO-11", E.domain(extra="<vsock model='virtio'><cid auto='yes'/></vsock>"),
               params={"isolation": {"allow_vsock": True}})["status"] == "pass"
