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


def test_qemu_override_and_capabilities_are_read_and_secret_properties_redacted():
    qemu = ("<qemu:override><qemu:device alias='vnc0'><qemu:frontend>"
            "<qemu:property name='password' type='string' value='hunter2'/>"
            "<qemu:property name='x-url' type='string' value='http://u:pw@host/x'/>"
            "<qemu:property name='lossy' type='bool' value='true'/></qemu:frontend></qemu:device></qemu:override>"
            "<qemu:capabilities><qemu:del capability='seccomp-sandbox'/></qemu:capabilities>")
    d = domxml.parse_domain(domain(qemu=qemu))
    assert d["qemu_override"] == [{"alias": "vnc0", "property": "password", "type": "string", "value": "<redacted>"},
                                  {"alias": "vnc0", "property": "x-url", "type": "string", "value": "http://<redacted>@host/x"},
                                  {"alias": "vnc0", "property": "lossy", "type": "bool", "value": "true"}]
    assert d["qemu_capabilities"] == [{"action": "del", "capability": "seccomp-sandbox"}]
    assert d["redacted"] == 2 and "hunter2" not in repr(d) and "u:pw" not in repr(d)
    none = domxml.parse_domain(domain())
    assert none["qemu_override"] == [] and none["qemu_capabilities"] == []


def test_host_devices_besides_hostdev():
    devices = ("<input type='passthrough' bus='virtio'><source evdev='/dev/input/event3'/></input>"
               "<input type='tablet' bus='usb'/>"
               "<tpm model='tpm-tis'><backend type='passthrough'/></tpm>"
               "<console type='dev'><source path='/dev/ttyS1'/><target type='serial' port='0'/></console>"
               "<serial type='dev'><source path='/dev/ttyS1'/><target port='0'/></serial>"
               "<console type='dev'><source path='/dev/hvc7'/><target type='virtio' port='1'/></console>"
               "<channel type='dev'><source path='/dev/ttyUSB0'/><target type='virtio' name='org.example.0'/></channel>"
               "<smartcard mode='host'/><smartcard mode='host-certificates'><certificate>a</certificate></smartcard>")
    d = domxml.parse_domain(domain(devices))
    # The TPM without <device path> is libvirt's /dev/tpm0; the console on the serial port's path is that port.
    assert d["host_devices"] == [
        {"device": "input", "type": "passthrough", "path": "/dev/input/event3"},
        {"device": "tpm", "type": "passthrough", "path": "/dev/tpm0"},
        {"device": "serial", "type": "dev", "path": "/dev/ttyS1"},
        {"device": "console", "type": "dev", "path": "/dev/hvc7"},
        {"device": "channel", "type": "dev", "path": "/dev/ttyUSB0"},
        {"device": "smartcard", "type": "host", "path": None}]
    assert domxml.parse_domain(domain())["host_devices"] == []


def test_seclabel_label_and_imagelabel():
    d = domxml.parse_domain(domain(extra="<seclabel type='static' model='dac' relabel='no'><label>107:107</label>"
                                         "</seclabel><seclabel type='dynamic' model='selinux'>"
                                         "<imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>"
                                         "</seclabel><seclabel type='none'/>"))
    assert d["seclabels"] == [
        dict(type="static", model="dac", relabel="no", label="107:107", imagelabel=None, baselabel=None),
        dict(type="dynamic", model="selinux", relabel=None, label=None,
             imagelabel="system_u:object_r:svirt_image_t:s0:c1,c2", baselabel=None),
        dict(type="none", model=None, relabel=None, label=None, imagelabel=None, baselabel=None)]


def test_seclabel_baselabel_is_read():
    """A dynamic label's <baselabel>: libvirt takes the QEMU process label's type from it (ISO-04 judges it)."""
    d = domxml.parse_domain(domain(extra="<seclabel type='dynamic' model='selinux' relabel='yes'>"
                                         "<baselabel> system_u:system_r:unconfined_t:s0 </baselabel></seclabel>"))
    assert d["seclabels"] == [dict(type="dynamic", model="selinux", relabel="yes", label=None, imagelabel=None,
                                   baselabel="system_u:system_r:unconfined_t:s0")]


def netdisk(protocol, hosts, name="export"):
    return ("<disk type='network' device='disk'><source protocol='%s' name='%s'>%s</source><target dev='vdb'/></disk>"
            % (protocol, name, hosts))


@pytest.mark.parametrize("protocol, host, expected", [
    # libvirt's default port where none (or 0) is given; the port as a number
    ("nbd", "<host name='192.0.2.1'/>", "192.0.2.1:10809"),
    ("nbd", "<host name='192.0.2.1' port='10809'/>", "192.0.2.1:10809"),
    ("nbd", "<host name='192.0.2.1' port='0'/>", "192.0.2.1:10809"),
    ("nbd", "<host name='192.0.2.1' port='010809'/>", "192.0.2.1:10809"),
    ("http", "<host name='img.example.com'/>", "img.example.com:80"),
    ("https", "<host name='img.example.com'/>", "img.example.com:443"),
    ("ftp", "<host name='h'/>", "h:21"), ("ftps", "<host name='h'/>", "h:990"), ("tftp", "<host name='h'/>", "h:69"),
    ("ssh", "<host name='h'/>", "h:22"), ("iscsi", "<host name='h'/>", "h:3260"), ("gluster", "<host name='h'/>", "h:24007"),
    ("rbd", "<host name='h'/>", "h:6789"), ("sheepdog", "<host name='h'/>", "h:7000"), ("vxhs", "<host name='h'/>", "h:9999"),
    ("nfs", "<host name='h'/>", "h:2049"),
    # DNS names are case-insensitive, a trailing dot names the same host
    ("nbd", "<host name='NBD.Example.COM.' port='10809'/>", "nbd.example.com:10809"),
    # IP literals in their canonical form: IPv6 compressed, in brackets; IPv4-mapped as IPv4
    ("nbd", "<host name='2001:DB8:0:0::1'/>", "[2001:db8::1]:10809"),
    ("nbd", "<host name='[2001:db8::1]' port='10809'/>", "[2001:db8::1]:10809"),
    ("nbd", "<host name='::ffff:192.0.2.1'/>", "192.0.2.1:10809"),
    ("nbd", "<host transport='unix' socket='/run/nbd.sock'/>", "unix:/run/nbd.sock"),
    # a port that is not one stays as written; a protocol without a default keeps None
    ("nbd", "<host name='h' port='x1'/>", "h:x1"),
    ("unknownproto", "<host name='h'/>", "h:None"),
])
def test_network_disk_hosts_have_one_spelling_per_server(protocol, host, expected):
    """ISO-06 compares the hosts verbatim: one server must have one spelling (libvirt fills in the default port)."""
    (disk,) = domxml.parse_domain(domain(netdisk(protocol, host)))["disks"]
    assert disk["hosts"] == [expected]
    assert disk["name"] == "export" and disk["source"] == "%s:export" % protocol  # the name stays as written


SPICE_CHANNELS = "<channel name='main' mode='insecure'/>"


@pytest.mark.parametrize("attrs, body, tls", [
    # with defaultMode 'any' every channel is served on the plain port too: a TLS port does not protect it
    ("port='5900' tlsPort='5901'", "", False),
    ("port='5900' tlsPort='5901' defaultMode='any'", "", False),
    ("autoport='yes' tlsPort='-1'", "", False),  # autoport allocates a plain port unless defaultMode is secure
    ("tlsPort='5901'", "", True),  # no plain port: TLS only
    ("port='-1' tlsPort='5901'", "", True),  # libvirt gives QEMU no plain port at -1 (or 0)
    ("port='5900' tlsPort='5901' defaultMode='secure'", "", True),
    ("autoport='yes' defaultMode='secure'", "", True),
    ("port='5900' tlsPort='5901' defaultMode='secure'", SPICE_CHANNELS, False),  # main served in plain text
    ("port='5900' tlsPort='5901' defaultMode='secure'", "<channel name='main' mode='any'/>", True),
    ("port='5900'", "", False),
])
def test_spice_tls_only_when_no_channel_is_served_in_plain_text(attrs, body, tls):
    (g,) = domxml.parse_domain(domain("<graphics type='spice' %s listen='127.0.0.1'>%s</graphics>" % (attrs, body)))["graphics"]
    assert g["tls"] is tls, attrs
    assert g["default_mode"] in ("any", "secure")
    if body == SPICE_CHANNELS:
        assert g["plain_channels"] == ["main"]


def test_vnc_has_no_spice_tls_fields():
    (g,) = domxml.parse_domain(domain("<graphics type='vnc' port='5900' tlsPort='5901'/>"))["graphics"]
    assert g["tls"] is False and g["tls_port"] is None and g["default_mode"] is None and g["plain_channels"] == []


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


# -- secrets that reached the evidence before 0.2.3 (each test fails on the old redaction) --------------

# A real domain with QEMU command-line passthrough, as `virsh dumpxml` prints it.
PASSTHROUGH_DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>db1</name>
  <uuid>6f1c2a3e-5b7d-4e2f-9a10-3c4d5e6f7a81</uuid>
  <memory unit='KiB'>4194304</memory>
  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/db1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='spice' autoport='yes' listen='127.0.0.1'/>
  </devices>
  <qemu:commandline>
%s
  </qemu:commandline>
</domain>"""


def passthrough(*items):
    return domxml.parse_domain(PASSTHROUGH_DOMAIN % "\n".join("    " + i for i in items))


def arg(value):
    return "<qemu:arg value='%s'/>" % value


def env(name, value):
    return "<qemu:env name='%s' value='%s'/>" % (name, value)


def assert_absent(evidence, *secrets):
    text = json.dumps(evidence, sort_keys=True)
    for secret in secrets:
        assert secret not in text


def test_iscsi_url_password_is_redacted_scheme_and_host_stay():
    # QEMU's iscsi URL: iscsi://[<user>[%<password>]@]<host>/<target>/<lun>
    d = passthrough(arg("-drive"),
                    arg("file=iscsi://admin%25Sup3rS3cret@192.0.2.10/iqn.2004-04.com.example:storage/1,if=none,"
                        "id=drive-iscsi0,format=raw"),
                    arg("-device"), arg("virtio-blk-pci,drive=drive-iscsi0"))
    assert_absent(d, "Sup3rS3cret")
    assert d["qemu_commandline"][1] == ("file=iscsi://<redacted>@192.0.2.10/iqn.2004-04.com.example:storage/1,if=none,"
                                        "id=drive-iscsi0,format=raw")
    assert d["qemu_commandline"][3] == "virtio-blk-pci,drive=drive-iscsi0" and d["redacted"] == 1


def test_url_userinfo_in_arguments_and_environment_is_redacted():
    d = passthrough(arg("-drive"), arg("file.driver=https,file.url=https://deploy:Tr4nsf3rPw@images.example/db1.raw,if=none"),
                    env("http_proxy", "http://bob:Pr0xyPass@proxy.example:3128"),
                    env("GIT_REMOTE", "https://ghp_R3p0T0k3n@github.com/example/seed.git"))
    assert_absent(d, "Tr4nsf3rPw", "Pr0xyPass", "ghp_R3p0T0k3n")
    assert d["qemu_commandline"][1] == "file.driver=https,file.url=https://<redacted>@images.example/db1.raw,if=none"
    assert d["qemu_env"] == [{"name": "http_proxy", "value": "http://<redacted>@proxy.example:3128"},
                             {"name": "GIT_REMOTE", "value": "https://<redacted>@github.com/example/seed.git"}]
    assert d["redacted"] == 3


def test_environment_value_is_scanned_whatever_the_variable_name():
    key = "AQBvHjpmAAAAABAAq1ZCdZ2fJ3oTpHlKX0BIjg=="
    d = passthrough(env("CEPH_ARGS", "--id admin --key %s --keyring /etc/ceph/ceph.client.admin.keyring" % key),
                    env("RBD_OPTS", "mon_host=192.0.2.20,password=PlainPw1"),
                    env("DB_PASSWORD", "Hunter22"), env("LANG", "C.UTF-8"))
    assert_absent(d, key, "AQBvHjpm", "PlainPw1", "Hunter22")
    assert d["qemu_env"] == [
        {"name": "CEPH_ARGS", "value": "--id admin --key <redacted> --keyring /etc/ceph/ceph.client.admin.keyring"},
        {"name": "RBD_OPTS", "value": "mon_host=192.0.2.20,password=<redacted>"},
        {"name": "DB_PASSWORD", "value": "<redacted>"},
        {"name": "LANG", "value": "C.UTF-8"}]
    assert d["redacted"] == 3


def test_option_value_in_the_next_argument_is_redacted():
    d = passthrough(arg("-plugin"), arg("/usr/lib/qemu/plugins/libaudit.so"),
                    arg("--password"), arg("Sp4ceP4ss"),
                    arg("--api-key"), arg("k3y-f0r-api"),
                    arg("-append"), arg("console=ttyS0 --token"), arg("T0k3nInNextArg"),
                    arg("--id"), arg("admin"))
    assert_absent(d, "Sp4ceP4ss", "k3y-f0r-api", "T0k3nInNextArg")
    assert d["qemu_commandline"] == ["-plugin", "/usr/lib/qemu/plugins/libaudit.so", "--password", "<redacted>",
                                     "--api-key", "<redacted>", "-append", "console=ttyS0 --token", "<redacted>",
                                     "--id", "admin"]
    assert d["redacted"] == 3


def test_option_value_after_a_space_or_equals_inside_one_argument():
    d = passthrough(arg("-append"), arg("console=ttyS0 --password Sp4ceInArg --verbose --key=EqInArg quiet"))
    assert_absent(d, "Sp4ceInArg", "EqInArg")
    assert d["qemu_commandline"][1] == "console=ttyS0 --password <redacted> --verbose --key=<redacted> quiet"


def test_hyphenated_and_nested_secret_keys_are_redacted_references_stay():
    d = passthrough(arg("-object"), arg("tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client,x-password=HyphP4ss"),
                    arg("-smbios"), arg("type=11,value=io.systemd.credential:passwd.hashed-password.root=$6$rounds$Hs4lt"),
                    arg("-drive"), arg("file=rbd:pool/db1:id=admin:key=AQBrbdk3y==:conf=/etc/ceph/ceph.conf,if=none"),
                    arg("-drive"), arg("file=/i/db1-luks.qcow2,encrypt.format=luks,encrypt.key-secret=sec0,"
                                       "file.password-secret=sec1,proxy-password-secret=sec2"))
    assert_absent(d, "HyphP4ss", "Hs4lt", "AQBrbdk3y")
    assert d["qemu_commandline"][1] == "tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client,x-password=<redacted>"
    assert d["qemu_commandline"][7] == ("file=/i/db1-luks.qcow2,encrypt.format=luks,encrypt.key-secret=sec0,"
                                        "file.password-secret=sec1,proxy-password-secret=sec2")


def test_json_option_strings_are_redacted():
    d = passthrough(arg("-blockdev"),
                    arg('{"driver":"http","node-name":"n0","url":"http://u:JsonUrlPw@img.example/a.raw",'
                        '"x-password":"JsonHyph","cookie":"sid=JsonC00kie"}'))
    assert_absent(d, "JsonUrlPw", "JsonHyph", "JsonC00kie")
    assert json.loads(d["qemu_commandline"][1]) == {"driver": "http", "node-name": "n0",
                                                    "url": "http://<redacted>@img.example/a.raw",
                                                    "x-password": "<redacted>", "cookie": "<redacted>"}


@pytest.mark.parametrize("argument", [
    "port=5930,addr=127.0.0.1,disable-ticketing=on", "-netdev", "user,id=n0,hostfwd=tcp::2222-:22",
    "file=/i/a.qcow2,if=none,id=d0,password-secret=s0", "console=ttyS0 --verbose quiet", "iscsi://192.0.2.10/iqn.x/1",
])
def test_arguments_without_secrets_are_unchanged(argument):
    assert domxml.redact_args([argument]) == ([argument], 0)


def iso09(domain):
    from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
    domain.update(state="running", persistent=True, autostart=False, snapshots=[], ledger=None, error=None,
                  pid=None, definition="live", inactive=None)
    evidence = {"hypervisors": {"hv1": {"error": None, "uri": "qemu:///system", "host": {}, "domains": [domain]}},
                "guests": {}}
    (finding,) = [f for f in engine.evaluate(policy.load_policy({"params": {}}), evidence, only={"ISO-09"})
                  if f["subject"]["kind"] == "domain"]
    return finding


def test_iso09_still_fails_on_redacted_passthrough_and_shows_no_secret():
    d = passthrough(arg("-drive"), arg("file=iscsi://admin%25Sup3rS3cret@192.0.2.10/iqn.2004-04.com.example:storage/1,if=none"),
                    arg("--password"), arg("Sp4ceP4ss"),
                    env("CEPH_ARGS", "--id admin --key AQBvHjpmAAAAABAAq1ZCdZ2fJ3oTpHlKX0BIjg=="))
    f = iso09(d)
    assert f["status"] == "fail"
    # what a reader needs stays: the options used and the variable set
    assert "-drive" in f["message"] and "--password <redacted>" in f["message"] and "CEPH_ARGS=--id admin --key" in f["message"]
    assert f["evidence"]["args"][0] == "-drive" and len(f["evidence"]["args"]) == 4
    assert_absent(f, "Sup3rS3cret", "Sp4ceP4ss", "AQBvHjpm")
    only_env = passthrough(env("http_proxy", "http://bob:Pr0xyPass@proxy.example:3128"))
    f = iso09(only_env)
    assert f["status"] == "fail" and "http_proxy=http://<redacted>@proxy.example:3128" in f["message"]
    assert_absent(f, "Pr0xyPass")
    assert iso09(domxml.parse_domain(PASSTHROUGH_DOMAIN % ""))["status"] == "pass"
