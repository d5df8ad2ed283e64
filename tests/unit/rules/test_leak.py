"""LEAK rules: pass, fail and not-applicable (or error) cases on realistic evidence."""

import pytest

from . import evidence as E


def one(rule, dom, **kw):
    (f,) = [x for x in E.run(rule, E.fleet([dom]), **kw) if x["subject"]["kind"] == "domain"]
    return f


def host_rule(rule, **host_overrides):
    (f,) = E.run(rule, E.fleet([], host_ev=E.host(**host_overrides)))
    return f


def test_leak01_modes():
    imgs = [{"path": "/var/lib/libvirt/images/a.qcow2", "mode": 0o600, "uid": 64055, "gid": 64055}]
    assert host_rule("LEAK-01", images=imgs)["status"] == "pass"
    imgs.append({"path": "/var/lib/libvirt/images/b.qcow2", "mode": 0o644, "uid": 0, "gid": 0})
    f = host_rule("LEAK-01", images=imgs)
    assert f["status"] == "fail" and f["evidence"]["paths"] == ["/var/lib/libvirt/images/b.qcow2 0644"]
    # Group read by the QEMU group is fine, by another group is not.
    assert host_rule("LEAK-01", images=[dict(imgs[0], mode=0o640)])["status"] == "pass"
    assert host_rule("LEAK-01", images=[dict(imgs[0], mode=0o640, gid=100)])["status"] == "fail"
    assert host_rule("LEAK-01", image_dirs=[{"path": "/var/lib/libvirt/qemu/save", "mode": 0o755}])["status"] == "fail"
    assert E.run("LEAK-01", E.fleet([], host_ev={}))[0]["status"] == "error"
    # World-writable is worse than world-readable.
    assert host_rule("LEAK-01", images=[dict(imgs[0], mode=0o602)])["status"] == "fail"
    assert host_rule("LEAK-01", images=[], image_dirs=[])["status"] == "not_applicable"


def test_leak02_listen():
    assert one("LEAK-02", E.domain())["status"] == "pass"
    f = one("LEAK-02", E.domain(replace={"listen='127.0.0.1'": "listen='0.0.0.0'"}))
    assert f["status"] == "fail" and "0.0.0.0" in f["message"]
    assert one("LEAK-02", E.domain(replace={"listen='127.0.0.1'": "listen='192.0.2.10'"}))["status"] == "fail"
    sock = E.domain(replace={"<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>":
                             "<graphics type='vnc'><listen type='socket' socket='/run/vnc.sock'/></graphics>"})
    assert one("LEAK-02", sock)["status"] == "pass"
    strict = {"leakage": {"require_console_password": True}}
    assert one("LEAK-02", E.domain(), params=strict)["status"] == "fail"
    assert one("LEAK-02", E.domain(replace={"listen='127.0.0.1'": "listen='127.0.0.1' passwd='s3cret'"}),
               params=strict)["status"] == "pass"
    assert one("LEAK-02", E.domain(replace={"<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>": ""}))["status"] == "not_applicable"


def test_leak02_password_never_reaches_the_evidence():
    d = E.domain(replace={"listen='127.0.0.1'": "listen='127.0.0.1' passwd='s3cret'"})
    assert "s3cret" not in repr(d)
    assert d["graphics"][0]["passwd_set"] is True


VNC = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>"


def vnc_listen(address):
    return E.domain(replace={"listen='127.0.0.1'": "listen='%s'" % address})


def test_leak02_loopback_in_any_notation_passes():
    for addr in ("::1", "0:0:0:0:0:0:0:1", "127.0.0.2", "::ffff:127.0.0.1", "localhost", "[::1]"):
        f = one("LEAK-02", vnc_listen(addr))
        assert f["status"] == "pass", (addr, f["message"])


def test_leak02_names_and_prefixes_cannot_fool_it():
    for addr in ("localhost.evil.example", "127.evil.example", "vnc.example.org"):
        f = one("LEAK-02", vnc_listen(addr))
        assert f["status"] == "fail" and "cannot be proven local" in f["message"], addr
    # "::1" as a prefix is not loopback: ::1a2b is another address.
    for addr in ("::1a2b", "::ffff:10.0.0.1", "0.0.0.0", "::"):
        f = one("LEAK-02", vnc_listen(addr))
        assert f["status"] == "fail" and addr in f["message"], addr


def test_leak02_address_listen_without_address_resolves_from_qemu_conf():
    bare = E.domain(replace={VNC: "<graphics type='vnc' autoport='yes'><listen type='address'/></graphics>"})
    assert bare["graphics"][0]["listens"][0]["address"] is None
    (f,) = E.run("LEAK-02", E.fleet([bare]))
    assert f["status"] == "pass" and "qemu.conf vnc_listen (unset: default)" in f["message"]
    host = E.host()
    host["qemu_conf"] = dict(host["qemu_conf"], vnc_listen="0.0.0.0")
    (f,) = E.run("LEAK-02", E.fleet([bare], host_ev=host))
    assert f["status"] == "fail" and "0.0.0.0" in f["message"]
    host["qemu_conf"] = None
    (f,) = E.run("LEAK-02", E.fleet([bare], host_ev=host))
    assert f["status"] == "error" and "vnc_listen" in f["message"]


def test_leak02_network_listen_fails():
    net = E.domain(replace={VNC: "<graphics type='vnc' autoport='yes'><listen type='network' network='default'/></graphics>"})
    f = one("LEAK-02", net)
    assert f["status"] == "fail" and "network default" in f["message"]


def test_leak02_unknown_password_state_is_an_error():
    strict = {"leakage": {"require_console_password": True}}
    d = E.domain()
    d["graphics"][0]["passwd_set"] = None
    f = one("LEAK-02", d, params=strict)
    assert f["status"] == "error" and "cannot tell whether a console password is set" in f["message"]
    # Not asked for: the listen address alone decides.
    assert one("LEAK-02", d)["status"] == "pass"


def spice_console(attrs, body=""):
    d = E.domain(replace={VNC: "<graphics type='spice' %s listen='127.0.0.1'>%s</graphics>" % (attrs, body)})
    d["graphics"][0]["passwd_set"] = False  # hypervisor_facts: libvirt's own file holds no passwd for it
    return d


@pytest.mark.parametrize("attrs, body", [
    ("port='5900' tlsPort='5901' autoport='no'", ""),
    ("port='5900' tlsPort='5901' defaultMode='any'", ""),
    ("autoport='yes'", ""),
    ("port='5900' tlsPort='5901' defaultMode='secure'", "<channel name='inputs' mode='insecure'/>"),
])
def test_leak02_spice_tls_port_beside_a_plain_one_is_no_tls(attrs, body):
    """With defaultMode 'any' (libvirt's default) SPICE serves every channel on ``port`` in plain text too, a
    <channel mode='insecure'> is served there whatever defaultMode says: a tlsPort does not stand for a password."""
    f = one("LEAK-02", spice_console(attrs, body), params={"leakage": {"require_console_password": True}})
    assert f["status"] == "fail" and "password" in f["message"], f["message"]
    if "tlsPort" in attrs:
        assert "plain text besides TLS port 5901" in f["message"]
    if body:
        assert "channel(s) inputs" in f["message"]
    # Not asked for: the loopback listen alone decides.
    assert one("LEAK-02", spice_console(attrs, body))["status"] == "pass"


@pytest.mark.parametrize("attrs, body", [
    ("tlsPort='5901' autoport='no'", ""),
    ("port='5900' tlsPort='5901' defaultMode='secure'", ""),
    ("autoport='yes' defaultMode='secure'", "<channel name='main' mode='secure'/>"),
])
def test_leak02_spice_serving_every_channel_over_tls_needs_no_password(attrs, body):
    f = one("LEAK-02", spice_console(attrs, body), params={"leakage": {"require_console_password": True}})
    assert f["status"] == "pass", f["message"]


SPICE = "<graphics type='spice' autoport='yes' listen='127.0.0.1'>%s</graphics>"


def test_leak03_spice():
    assert one("LEAK-03", E.domain())["status"] == "not_applicable"
    f = one("LEAK-03", E.domain(extra=SPICE % ""))
    assert f["status"] == "fail" and f["evidence"]["enabled"] == ["clipboard", "filetransfer"]
    ok = SPICE % "<clipboard copypaste='no'/><filetransfer enable='no'/>"
    assert one("LEAK-03", E.domain(extra=ok))["status"] == "pass"


# libvirt's tests/qemuxml2argvdata/channel-qemu-vdagent-features.xml: QEMU's own VNC clipboard shared with the guest.
VDAGENT = ("<channel type='qemu-vdagent'><target type='virtio' name='com.redhat.spice.0'/>"
           "<source><mouse mode='client'/>%s</source></channel>")


def test_leak03_qemu_vdagent_clipboard():
    d = E.domain(extra=VDAGENT % "<clipboard copypaste='yes'/>")
    assert d["channels"] == [{"type": "qemu-vdagent", "target": "com.redhat.spice.0", "clipboard": True}]
    f = one("LEAK-03", d)
    assert f["status"] == "fail" and "qemu-vdagent channel shares the clipboard" in f["message"]
    assert f["evidence"]["enabled"] == ["qemu-vdagent clipboard"]
    # Off unless asked (QEMU's default): no <clipboard>, or copypaste='no'.
    for off in ("", "<clipboard copypaste='no'/>"):
        f = one("LEAK-03", E.domain(extra=VDAGENT % off))
        assert f["status"] == "pass" and f["message"] == "qemu-vdagent clipboard off", off
    both = one("LEAK-03", E.domain(extra=SPICE % "" + VDAGENT % "<clipboard copypaste='yes'/>"))
    assert both["evidence"]["enabled"] == ["clipboard", "filetransfer", "qemu-vdagent clipboard"]
    # Other channels carry no clipboard flag; a vdagent channel without one sent is not "off".
    assert E.domain(extra="<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>")[
        "channels"][0]["clipboard"] is None
    d = E.domain(extra=VDAGENT % "")
    del d["channels"][0]["clipboard"]
    f = one("LEAK-03", d)
    assert f["status"] == "error" and "clipboard of the qemu-vdagent channel not collected" in f["message"]


def test_leak04_core_dumps():
    assert host_rule("LEAK-04")["status"] == "pass"
    assert host_rule("LEAK-04", qemu_conf={"dump_guest_core": "1"})["status"] == "fail"
    assert one("LEAK-04", E.domain())["status"] == "pass"
    assert one("LEAK-04", E.domain(replace={"<memory unit='MiB'>": "<memory dumpCore='on' unit='MiB'>"}))["status"] == "fail"


def test_leak05_confidential_needs_luks():
    d = E.domain()
    conf = E.fleet([d], {"web1": E.guest("web1", facts=E.guest_facts(1), data_class="confidential")})
    (f,) = E.run("LEAK-05", conf)
    assert f["status"] == "fail"
    enc = E.domain(replace={"<target dev='vda' bus='virtio'/>":
                            "<target dev='vda' bus='virtio'/><encryption format='luks'><secret type='passphrase' uuid='1'/></encryption>"})
    conf["hypervisors"]["hv1"]["domains"] = [enc]
    assert E.run("LEAK-05", conf)[0]["status"] == "pass"
    # librbd's LUKS formats are LUKS too; a format that is no LUKS is no encryption this rule accepts.
    for fmt, status in (("luks2", "pass"), ("luks-any", "pass"), ("qcow", "fail")):
        other = E.domain(replace={"<target dev='vda' bus='virtio'/>":
                                  "<target dev='vda' bus='virtio'/><encryption format='%s'><secret type='passphrase' uuid='1'/></encryption>" % fmt})
        conf["hypervisors"]["hv1"]["domains"] = [other]
        assert E.run("LEAK-05", conf)[0]["status"] == status, fmt
    assert one("LEAK-05", E.domain())["status"] == "not_applicable"
    lun = E.domain(replace={"<disk type='file' device='disk'>": "<disk type='block' device='lun'>",
                            "<source file='/var/lib/libvirt/images/web1.qcow2'/>": "<source dev='/dev/sdb'/>"})
    conf["hypervisors"]["hv1"]["domains"] = [lun]
    f = E.run("LEAK-05", conf)[0]
    assert f["status"] == "fail" and "vda" in f["message"]


def test_leak06_management_plane():
    assert host_rule("LEAK-06")["status"] == "pass"
    assert host_rule("LEAK-06", daemon_confs={"libvirtd.conf": {"listen_tcp": "1"}})["status"] == "fail"
    assert host_rule("LEAK-06", daemon_confs={"libvirtd.conf": {"unix_sock_rw_perms": "0777"}})["status"] == "fail"
    assert E.run("LEAK-06", E.fleet([], host_ev={}))[0]["status"] == "error"
    for key in ("sockets", "tcp_listeners", "daemon_confs"):
        f = host_rule("LEAK-06", **{key: None})
        assert f["status"] == "error" and "not collected" in f["message"], key


def test_leak06_admin_sockets_are_root_only_in_every_daemon():
    """The admin socket manages the daemon itself (its clients, its logging): group access fails there, where the
    read-write socket's group libvirt is by design; the setting of any modular daemon counts."""
    admin = {"path": "/run/libvirt/virtsecretd-admin-sock", "mode": 0o700, "rw": True, "kind": "admin"}
    assert host_rule("LEAK-06", sockets=[admin])["status"] == "pass"
    f = host_rule("LEAK-06", sockets=[dict(admin, mode=0o770)])
    assert f["status"] == "fail" and "virtsecretd-admin-sock (admin socket) is not root-only (0770)" in f["message"]
    rw = {"path": "/run/libvirt/virtsecretd-sock", "mode": 0o770, "rw": True, "kind": "rw"}
    assert host_rule("LEAK-06", sockets=[rw])["status"] == "pass"
    f = host_rule("LEAK-06", daemon_confs={"libvirtd.conf": {}, "virtsecretd.conf": {"unix_sock_admin_perms": "0750"}})
    assert f["status"] == "fail" and "virtsecretd.conf: unix_sock_admin_perms = 0750 (not root-only)" in f["message"]
    f = host_rule("LEAK-06", daemon_confs={"libvirtd.conf": {}, "virtstoraged.conf": {"unix_sock_rw_perms": "0666"}})
    assert f["status"] == "fail" and "virtstoraged.conf: unix_sock_rw_perms = 0666 (world-accessible)" in f["message"]
    f = host_rule("LEAK-06", sockets=[dict(rw, mode=0o777, link="/tmp/elsewhere")])
    assert f["status"] == "fail" and "virtsecretd-sock is a symbolic link to /tmp/elsewhere (not followed)" in f["message"]


PLAIN = {"port": 16509, "tls": False, "what": "tcp:16509 (libvirtd)"}
TLS = {"port": 16514, "tls": True, "what": "tcp:16514 (libvirtd, TLS)"}


def test_leak06_plain_tcp_fails_tls_passes():
    f = host_rule("LEAK-06", tcp_listeners=[PLAIN])
    assert f["status"] == "fail" and "plain TCP: tcp:16509" in f["message"]
    f = host_rule("LEAK-06", tcp_listeners=[TLS], daemon_confs={"libvirtd.conf": {"listen_tls": "1"}})
    assert f["status"] == "pass" and "TLS: tcp:16514" in f["message"]
    f = host_rule("LEAK-06", tcp_listeners=[TLS, PLAIN])
    assert f["status"] == "fail" and "16514" not in f["message"]
    f = host_rule("LEAK-06", daemon_confs={"libvirtd.conf": {"listen_tcp": "1", "auth_tcp": "none"}})
    assert f["status"] == "fail" and "auth_tcp" in f["message"]
    # A TLS port that verifies nobody is as open as plain TCP.
    f = host_rule("LEAK-06", tcp_listeners=[TLS], daemon_confs={"libvirtd.conf": {"tls_no_verify_certificate": "1"}})
    assert f["status"] == "fail" and "without client certificate verification" in f["message"]


def test_leak07_smbios_host():
    assert one("LEAK-07", E.domain())["status"] == "pass"
    d = E.domain(replace={"<os><type arch='x86_64' machine='pc'>hvm</type></os>":
                          "<os><type arch='x86_64' machine='pc'>hvm</type><smbios mode='host'/></os>"})
    assert one("LEAK-07", d)["status"] == "fail"


def test_leak08_migration_tls():
    assert host_rule("LEAK-08")["status"] == "pass"
    assert host_rule("LEAK-08", qemu_conf={})["status"] == "fail"


def test_leak02_listen_default_on_the_test_driver_and_unknown_qemu_conf():
    d = E.domain(replace={"<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>":
                          "<graphics type='vnc' autoport='yes'><listen type='address'/></graphics>"})
    # libvirt's test driver has no host configuration: libvirt's built-in default (127.0.0.1) applies.
    ev = E.fleet([d], host_ev={})
    ev["hypervisors"][E.HV]["uri"] = "test:///default"
    (f,) = E.run("LEAK-02", ev)
    assert f["status"] == "pass" and "127.0.0.1" in f["message"]
    # A real host whose qemu.conf could not be read: the address is unknown, an error, never a pass.
    ev["hypervisors"][E.HV]["uri"] = "qemu:///system"
    (f,) = E.run("LEAK-02", ev)
    assert f["status"] == "error" and "not collected" in f["message"]


LUKS = {"<target dev='vda' bus='virtio'/>":
        "<target dev='vda' bus='virtio'/><encryption format='luks'><secret type='passphrase' uuid='1'/></encryption>"}
DATA_CLASS_MD = {"<vmguard:expires>2027-06-30</vmguard:expires>":
                 "<vmguard:expires>2027-06-30</vmguard:expires><vmguard:data_class>%s</vmguard:data_class>"}


def leak05(dom, data_class=None, **kw):
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1), data_class=data_class)} if data_class else None
    (f,) = E.run("LEAK-05", E.fleet([dom], guests), **kw)
    return f


def md_class(text, **kw):
    replace = dict(kw.pop("replace", {}))
    replace.update((k, v % text) for k, v in DATA_CLASS_MD.items())
    return E.domain(replace=replace, **kw)


def test_leak05_data_class_is_compared_case_insensitively():
    # vmguard_data_class: Confidential on a VM with an unencrypted disk was "not confidential".
    f = leak05(E.domain(), "Confidential")
    assert f["status"] == "fail" and "vda" in f["message"]
    assert leak05(E.domain(), " SECRET ")["status"] == "fail"
    # The same through the domain's vmguard metadata (no inventory class).
    assert md_class("Confidential")["metadata"]["data_class"] == "Confidential"
    assert leak05(md_class("Confidential"))["status"] == "fail"
    # The policy's classes are compared lower-cased too.
    params = {"leakage": {"confidential_classes": ["Restricted"]}}
    assert leak05(E.domain(), "restricted", params=params)["status"] == "fail"
    assert leak05(E.domain(), "confidential", params=params)["status"] == "not_applicable"
    # The pass case still passes; a class that is not confidential is still not applicable, named as declared.
    assert leak05(E.domain(replace=LUKS), "Confidential")["status"] == "pass"
    assert leak05(md_class("Confidential", replace=LUKS))["status"] == "pass"
    f = leak05(E.domain(), "Public")
    assert f["status"] == "not_applicable" and f["message"] == "data class Public is not confidential"
    assert leak05(E.domain())["message"] == "data class unset is not confidential"


def test_leak05_no_disk_is_not_applicable_and_disks_not_collected_is_an_error():
    cdrom_only = E.domain(replace={E.CLEAN_DISK.format(name="web1"): E.CDROM})
    assert [x["device"] for x in cdrom_only["disks"]] == ["cdrom"]
    f = leak05(cdrom_only, "confidential")
    assert f["status"] == "not_applicable" and f["message"].startswith("no disk") and "cdrom" in f["message"]
    no_drive = E.domain(replace={E.CLEAN_DISK.format(name="web1"): ""})
    assert no_drive["disks"] == []
    f = leak05(no_drive, "confidential")
    assert f["status"] == "not_applicable" and f["message"].startswith("no disk")
    # disks not sent: an error naming it, not "all disks LUKS-encrypted".
    f = leak05(E.without(E.domain(), "disks"), "confidential")
    assert f["status"] == "error" and f["message"] == "cannot evaluate: disks not collected"
    # No inventory class and no metadata: the class is unknown, not unset.
    f = leak05(E.without(E.domain(), "metadata"))
    assert f["status"] == "error" and "metadata" in f["message"] and "not collected" in f["message"]
    # A cdrom next to an encrypted disk: the disk is judged, the read-only medium is not.
    both = E.domain(replace=LUKS, extra=E.CDROM)
    f = leak05(both, "confidential")
    assert f["status"] == "pass" and f["message"] == "all 1 disk(s) LUKS-encrypted"


def test_leak_domain_fields_not_collected_are_errors_never_passes():
    """A domain record without a field domxml always sends: LEAK-02/03 read as "no console" (not applicable),
    LEAK-04/07 as the safe default (pass)."""
    spice = E.domain(extra=SPICE % "<clipboard copypaste='no'/><filetransfer enable='no'/>")
    for rule, dom, key in (("LEAK-02", E.domain(), "graphics"), ("LEAK-03", spice, "graphics"),
                           ("LEAK-04", E.domain(), "memory_dump_core"), ("LEAK-07", E.domain(), "smbios_mode")):
        assert one(rule, dom)["status"] == "pass", rule
        f = one(rule, E.without(dom, key))
        assert f["status"] == "error" and f["message"].startswith("cannot evaluate: ") and "not collected" in f["message"], rule
    # A console whose listens were not sent is not "no listen element" (QEMU's default).
    d = E.domain()
    del d["graphics"][0]["listens"]
    f = one("LEAK-02", d)
    assert f["status"] == "error" and "listens of the vnc console not collected" in f["message"]
    # A SPICE console without its clipboard flag is not "clipboard off".
    del spice["graphics"][1]["clipboard"]
    f = one("LEAK-03", spice)
    assert f["status"] == "error" and "SPICE clipboard not collected" in f["message"]


def test_leak_host_fields_not_collected_name_the_field():
    f = host_rule("LEAK-01", images=None)
    assert f["status"] == "error" and f["message"] == "cannot evaluate: disk image modes not collected"
    (f,) = E.run("LEAK-06", E.fleet([], host_ev=E.without(E.host(), "sockets")))
    assert f["status"] == "error" and f["message"] == "cannot evaluate: libvirt socket modes not collected"


def test_leak04_leak08_judge_the_value_libvirt_reads_and_error_on_an_unparsable_qemu_conf():
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan
    dup = hostscan.parse_libvirt_conf("dump_guest_core = 1\nmigrate_tls_force = 0\n"
                                      "dump_guest_core = 0\nmigrate_tls_force = 1\n")
    assert host_rule("LEAK-04", qemu_conf=dup)["status"] == "fail"
    assert host_rule("LEAK-08", qemu_conf=dup)["status"] == "fail"
    one_line = hostscan.parse_libvirt_conf("dump_guest_core = 1; vnc_tls = 0\n")
    assert host_rule("LEAK-04", qemu_conf=one_line)["status"] == "fail"
    for rule in ("LEAK-04", "LEAK-08"):
        f = host_rule(rule, qemu_conf=None, qemu_conf_error="/etc/libvirt/qemu.conf: line 3: unterminated string")
        assert f["status"] == "error" and "line 3: unterminated string" in f["message"], rule


def test_leak06_an_unparsable_daemon_conf_is_an_error_and_duplicates_read_as_libvirt_does():
    why = "/etc/libvirt/virtproxyd.conf: line 2: expecting a value"
    f = host_rule("LEAK-06", daemon_conf_errors={"virtproxyd.conf": why})
    assert f["status"] == "error" and "virtproxyd.conf: /etc/libvirt/virtproxyd.conf: line 2" in f["message"]
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan
    dup = hostscan.parse_libvirt_conf('unix_sock_rw_perms = "0777"\nunix_sock_rw_perms = "0770"\n')
    assert host_rule("LEAK-06", daemon_confs={"libvirtd.conf": dup})["status"] == "fail"


def test_leak06_judges_a_tls_listener_by_the_configuration_of_the_daemon_holding_it():
    """With the modular daemons virtproxyd accepts remote connections: its virtproxyd.conf decides."""
    owned = dict(TLS, daemon="virtproxyd", config="/etc/libvirt/virtproxyd.conf")
    confs = {"libvirtd.conf": {}, "virtqemud.conf": {}, "virtproxyd.conf": {"tls_no_verify_certificate": "1"}}
    f = host_rule("LEAK-06", tcp_listeners=[owned], daemon_confs=confs)
    assert f["status"] == "fail" and "virtproxyd.conf: TLS without client certificate verification" in f["message"]
    f = host_rule("LEAK-06", tcp_listeners=[TLS], daemon_confs=confs)  # no running daemon holds it: both files judged
    assert f["status"] == "fail" and "virtproxyd.conf: TLS" in f["message"]
    # Its daemon's configuration was not collected: unknown, never a pass.
    f = host_rule("LEAK-06", tcp_listeners=[owned], daemon_confs={"libvirtd.conf": {}, "virtqemud.conf": {}})
    assert f["status"] == "error"
    assert "is virtproxyd's, whose configuration virtproxyd.conf was not collected" in f["message"]
    f = host_rule("LEAK-06", tcp_listeners=[TLS], daemon_confs={"virtqemud.conf": {}})
    assert f["status"] == "error" and "neither libvirtd.conf nor virtproxyd.conf was collected" in f["message"]
    # The daemon's own file verifies clients: another daemon's file does not matter.
    ok = {"libvirtd.conf": {"tls_no_verify_certificate": "1"}, "virtproxyd.conf": {}}
    assert host_rule("LEAK-06", tcp_listeners=[owned], daemon_confs=ok)["status"] == "pass"


def test_leak01_a_shared_image_directory_fails_and_says_it_is_not_enforced():
    f = host_rule("LEAK-01", image_dirs=[{"path": "/var/tmp", "mode": 0o1777, "uid": 0, "gid": 0, "shared": True}])
    assert f["status"] == "fail" and f["evidence"]["shared_dirs"] == ["/var/tmp"]
    assert "shared director(ies) /var/tmp (sticky or world-writable): never chmodded, not enforced" in f["message"]
