"""hostscan: libvirt's own files read safely, the watcher's lock and heartbeat, TCP listeners, the
distribution's QEMU user, backing chains and the offline seal check of base images (real qemu-img and
debugfs on tiny images)."""

import fcntl
import json
import socket
import os
import shutil
import subprocess
import sys
import time

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan

HAVE_IMAGE_TOOLS = all(shutil.which(t) for t in ("qemu-img", "debugfs", "mkfs.ext4"))
needs_image_tools = pytest.mark.skipif(not HAVE_IMAGE_TOOLS, reason="needs qemu-utils and e2fsprogs")


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


# --- read_regular ---------------------------------------------------------------------------------------

def test_read_regular_refuses_links_fifos_and_large_files(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    assert hostscan.read_regular(str(f)) == b"12345"
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(hostscan.UnsafeFile, match="symbolic link"):
        hostscan.read_regular(str(tmp_path / "link"))
    os.mkfifo(str(tmp_path / "fifo"))
    with pytest.raises(hostscan.UnsafeFile, match="not a regular file"):
        hostscan.read_regular(str(tmp_path / "fifo"))  # and does not hang
    with pytest.raises(hostscan.UnsafeFile, match="larger than the 4 allowed"):
        hostscan.read_regular(str(f), limit=4)
    with pytest.raises(OSError):
        hostscan.read_regular(str(tmp_path / "missing"))


# --- libvirt's per-domain files ---------------------------------------------------------------------------

def driver_dirs(tmp_path):
    dirs = dict(config=str(tmp_path / "etc"), state=str(tmp_path / "run"))
    os.makedirs(dirs["config"])
    os.makedirs(dirs["state"])
    return dirs


def test_passwd_flags_from_config_and_status_files(tmp_path):
    dirs = driver_dirs(tmp_path)
    with open(os.path.join(dirs["config"], "web1.xml"), "w") as f:
        f.write("<!-- auto-generated -->\n<domain type='kvm'><name>web1</name><devices>"
                "<graphics type='vnc' passwd='hunter2'/><graphics type='spice'/></devices></domain>")
    with open(os.path.join(dirs["state"], "web1.xml"), "w") as f:
        f.write("<domstatus state='running'><domain type='kvm'><name>web1</name><devices>"
                "<graphics type='vnc'/></devices></domain></domstatus>")
    cfg = hostscan.passwd_flags(dirs, "web1", "config")
    assert cfg == [("vnc", True), ("spice", False)] and "hunter2" not in repr(cfg)
    assert hostscan.passwd_flags(dirs, "web1", "state") == [("vnc", False)]
    assert hostscan.passwd_flags(dirs, "absent", "config") is None
    assert hostscan.passwd_flags(dirs, "../etc/web1", "config") is None  # never a path outside the directory


def test_passwd_flags_refuses_links_and_huge_files(tmp_path):
    dirs = driver_dirs(tmp_path)
    real = tmp_path / "elsewhere.xml"
    real.write_text("<domain><devices><graphics type='vnc' passwd='x'/></devices></domain>")
    os.symlink(str(real), os.path.join(dirs["config"], "web1.xml"))
    assert hostscan.passwd_flags(dirs, "web1", "config") is None
    with open(os.path.join(dirs["config"], "web2.xml"), "w") as f:
        f.write("<domain><devices><graphics type='vnc' passwd='x'/></devices>")
        f.write("<!-- %s -->" % ("x" * hostscan.MAX_DOMAIN_FILE))
        f.write("</domain>")
    assert hostscan.passwd_flags(dirs, "web2", "config") is None


@pytest.mark.parametrize("flags, qemu_conf, expected", [
    ([("vnc", True)], {}, True),                          # the domain's own password
    ([("vnc", False)], {}, False),                        # none, and no host default
    ([("vnc", False)], {"vnc_password": "x"}, True),      # the host default applies
    ([("vnc", False)], {"spice_password": "x"}, False),   # another console's default
    ([("vnc", False)], None, None),                       # qemu.conf unknown
    (None, {}, None),                                     # the domain's file could not be read
    (None, {"vnc_password": "x"}, True),                  # whatever the domain says, a password is set
    ([("spice", True)], {}, None),                        # index/type mismatch: not this console
    ([], {}, None),
])
def test_resolve_passwd_set(flags, qemu_conf, expected):
    graphics = [dict(type="vnc", passwd_set=None)]
    hostscan.resolve_passwd_set(graphics, flags, qemu_conf)
    assert graphics[0]["passwd_set"] is expected


def test_domain_pid(tmp_path):
    dirs = driver_dirs(tmp_path)
    with open(os.path.join(dirs["state"], "web1.pid"), "w") as f:
        f.write("4242")
    with open(os.path.join(dirs["state"], "bad.pid"), "w") as f:
        f.write("42; rm -rf /")
    os.symlink(os.path.join(dirs["state"], "web1.pid"), os.path.join(dirs["state"], "link.pid"))
    assert hostscan.domain_pid(dirs, "web1") == 4242
    assert hostscan.domain_pid(dirs, "bad") is None
    assert hostscan.domain_pid(dirs, "link") is None
    assert hostscan.domain_pid(dirs, "absent") is None


def test_qemu_driver_dirs():
    assert hostscan.qemu_driver_dirs("qemu:///system") == dict(config="/etc/libvirt/qemu", state="/run/libvirt/qemu")
    assert hostscan.qemu_driver_dirs("qemu:///session", {"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/user/1000"}) == \
        dict(config="/home/u/.config/libvirt/qemu", state="/run/user/1000/libvirt/qemu/run")
    for uri in ("test:///default", "qemu+ssh://h/system", "qemu:///embed?root=/x", "lxc:///system"):
        assert hostscan.qemu_driver_dirs(uri) is None


# --- watcher --------------------------------------------------------------------------------------------

HOLD = "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n" \
       "print('held', flush=True)\ntime.sleep(30)\n"


def test_watcher_lock_held_by_another_process(tmp_path):
    lock, hb = tmp_path / "watcher.lock", tmp_path / "watcher.heartbeat"
    lock.write_text("")
    hb.write_text('{"pid": 77, "time": %f}' % (time.time() - 2.5))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        w = hostscan.watcher(str(lock), str(hb))
    finally:
        holder.kill()
        holder.wait()
    assert w["lock_held"] is True and w["holder_pid"] == holder.pid and w["error"] is None
    assert w["heartbeat_pid"] == 77 and 2.0 < w["heartbeat_age_seconds"] < 10
    # our test lock was released at once: the file can be locked again
    fd = os.open(str(lock), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_watcher_not_running(tmp_path):
    lock, hb = tmp_path / "watcher.lock", tmp_path / "watcher.heartbeat"
    w = hostscan.watcher(str(lock), str(hb))
    assert w == dict(lock_path=str(lock), lock_held=False, holder_pid=None, heartbeat_path=str(hb),
                     heartbeat_age_seconds=None, heartbeat_pid=None, error=None, connected=None, uri=None,
                     mgmt_networks=None)
    assert not lock.exists()  # never created
    lock.write_text("")
    assert hostscan.watcher(str(lock), str(hb))["lock_held"] is False


def test_watcher_files_that_are_not_what_they_must_be(tmp_path):
    target = tmp_path / "target"
    target.write_text('{"pid": 1, "time": 1}')
    (tmp_path / "lock").symlink_to(target)
    (tmp_path / "hb").write_text("{not json")
    w = hostscan.watcher(str(tmp_path / "lock"), str(tmp_path / "hb"))
    assert w["lock_held"] is False and "symbolic link" in w["error"] and "not valid JSON" in w["error"]
    (tmp_path / "hb2").write_text('{"pid": true, "time": "soon"}')
    age, pid, err = hostscan.heartbeat(str(tmp_path / "hb2"))
    assert age is None and pid is None and "no numeric time" in err


# --- host ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', ("libvirt-qemu", "Debian's libvirt build default")),
    ('ID=ubuntu\nID_LIKE=debian\n', ("libvirt-qemu", "Debian's libvirt build default")),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', ("qemu", "Fedora/Red Hat's libvirt build default")),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', ("libvirt-qemu", "Debian's libvirt build default")),
    ('ID="opensuse-leap"\nID_LIKE="suse opensuse"\n', ("qemu", "SUSE's libvirt build default")),
    ('ID=arch\n', None),
])
def test_qemu_user_default(tmp_path, text, expected):
    (tmp_path / "os-release").write_text(text)
    got = hostscan.qemu_user_default((str(tmp_path / "os-release"),))
    assert (got and (got["user"], got["source"])) == expected or got is expected
    assert hostscan.qemu_user_default((str(tmp_path / "missing"),)) is None


PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:407D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:4082 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 0100007F:407D 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
"""
PROC_TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:4082 00000000000000000000000000000000:0000 0A 0 0 0 0 0
"""


def test_tcp_listeners_from_proc_and_daemon_conf(tmp_path):
    (tmp_path / "tcp").write_text(PROC_TCP)
    (tmp_path / "tcp6").write_text(PROC_TCP6)
    paths = (str(tmp_path / "tcp"), str(tmp_path / "tcp6"))
    assert hostscan.libvirt_tcp_listeners(paths) == [
        dict(port=16509, tls=False, what="tcp 0.0.0.0:16509"),
        dict(port=16514, tls=True, what="tcp 127.0.0.1:16514"),
        dict(port=16514, tls=True, what="tcp6 [::]:16514")]
    (tmp_path / "libvirtd.conf").write_text('listen_tcp = 1\ntcp_port = "16600"\n')
    (tmp_path / "custom.conf").write_text("listen_tls = 0\n")
    procs = [(10, 0, ["/usr/sbin/libvirtd", "--listen"]),
             (11, 0, ["/usr/sbin/virtproxyd", "-d", "-l", "-f", str(tmp_path / "custom.conf")]),
             (12, 0, ["/usr/sbin/libvirtd", "--timeout", "120"])]
    got = hostscan.daemon_listeners(procs, conf_dir=str(tmp_path))
    assert [(g["port"], g["tls"]) for g in got] == [(16600, False), (16514, True)]
    assert "libvirtd --listen (pid 10" in got[0]["what"]
    merged = hostscan.tcp_listeners(procs, conf_dir=str(tmp_path), paths=paths)
    assert [(g["port"], g["tls"]) for g in merged] == [(16509, False), (16514, True), (16514, True), (16600, False)]
    assert hostscan.tcp_listeners([], paths=(str(tmp_path / "none"),)) == []


def test_read_qemu_conf_missing_is_defaults_unreadable_is_unknown(tmp_path):
    assert hostscan.read_qemu_conf(str(tmp_path / "qemu.conf")) == {}
    (tmp_path / "qemu.conf").write_text('user = "+0"\nvnc_password = "x"\n')
    assert hostscan.read_qemu_conf(str(tmp_path / "qemu.conf")) == {"user": "+0", "vnc_password": "<redacted>"}
    (tmp_path / "dir.conf").mkdir()
    assert hostscan.read_qemu_conf(str(tmp_path / "dir.conf")) is None


def test_qemu_conf_secrets_never_leave_the_scan(tmp_path):
    """The console default passwords are judged by their presence; their values stay on the host."""
    conf = tmp_path / "qemu.conf"
    conf.write_text('vnc_password = "S3cretVNC"\nspice_password = ""\nvnc_tls_x509_secret_uuid = "0a1b"\n'
                    '# vnc_password = "commented"\nvnc_listen = "127.0.0.1"\n')
    got = hostscan.read_qemu_conf(str(conf))
    assert "S3cretVNC" not in repr(got)
    assert got == {"vnc_password": "<redacted>", "spice_password": "", "vnc_tls_x509_secret_uuid": "0a1b",
                   "vnc_listen": "127.0.0.1"}
    assert hostscan.host_password(got, "vnc") is True and hostscan.host_password(got, "spice") is False
    text = hostscan.redact_conf_text(conf.read_text())
    assert "S3cretVNC" not in text and 'vnc_password = "<redacted>"' in text
    assert 'vnc_tls_x509_secret_uuid = "0a1b"' in text and '# vnc_password = "commented"' in text


def test_a_users_process_named_libvirtd_is_not_read_and_a_fifo_does_not_hang(tmp_path):
    """Only root's daemons count (a user can name a process libvirtd and point --config anywhere); a FIFO as
    a configuration is unreadable at once, never a blocking read."""
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(str(fifo))
    assert hostscan.daemon_listeners([(20, 65534, ["/tmp/x/libvirtd", "--listen", "-f", str(fifo)])]) == []
    got = hostscan.daemon_listeners([(21, 0, ["/usr/sbin/libvirtd", "--listen", "-f", str(fifo)])])
    assert [(g["port"], g["tls"]) for g in got] == [(16514, True)]  # unreadable: the defaults
    assert hostscan.read_conf(str(fifo)) is None


def test_qemu_processes_carry_uid():
    procs = [(5, 64055, ["/usr/bin/qemu-system-x86_64", "-name", "guest=web,,1,debug-threads=on",
                         "-uuid", "AB-CD"]), (6, 0, ["/bin/sh"])]
    out = hostscan.qemu_processes(procs, exe=lambda pid: None)  # executables unreadable: argv[0] tells
    assert [(p["pid"], p["uid"], p["name"], p["uuid"]) for p in out] == [(5, 64055, "web,1", "ab-cd")]


# --- backing chains and base images -------------------------------------------------------------------------

def build_base(tmp_path, name, files):
    tree = tmp_path / (name + ".tree")
    tree.mkdir()
    for rel, content in files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    raw = tmp_path / (name + ".raw")
    subprocess.run(["truncate", "-s", "8M", str(raw)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(raw)], check=True)
    out = tmp_path / (name + ".qcow2")
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return str(out)


def overlay(tmp_path, name, base, relative=False):
    out = str(tmp_path / name)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.basename(base) if relative else base, out], check=True, cwd=str(tmp_path))
    return out


def disk(source, fmt="qcow2", target="vda", backing=None):
    return dict(type="file", device="disk", source=source, format=fmt, target=target, backing=backing or [])


UNSEALED = {"etc/machine-id": "0123456789abcdef0123456789abcdef\n", "etc/ssh/ssh_host_ed25519_key": "KEY\n"}


@needs_image_tools
def test_base_images_sealed_unsealed_shared_and_unreadable(tmp_path):
    bad = build_base(tmp_path, "bad", UNSEALED)
    good = build_base(tmp_path, "good", {"etc/machine-id": ""})
    top1 = overlay(tmp_path, "a.qcow2", bad, relative=True)
    mid = overlay(tmp_path, "mid.qcow2", good)
    top2 = overlay(tmp_path, "b.qcow2", mid)
    gone = build_base(tmp_path, "gone", {})
    top3 = overlay(tmp_path, "c.qcow2", gone)
    os.unlink(gone)
    raw = tmp_path / "data.raw"
    raw.write_bytes(b"\0" * 4096)
    live = dict(name="web1", disks=[disk(top1), disk(str(raw), fmt="raw", target="vdb")])
    live["inactive"] = dict(name="web1", disks=[disk(top1)])
    domains = [live, dict(name="web2", disks=[disk(top2), disk(top3, target="vdc")], inactive=None),
               dict(name="web3", disks=[disk(top1, target="sda")], inactive=None)]
    chains = hostscan.disk_chains(domains, run)
    assert sorted(chains) == sorted([top1, top2, top3])  # raw disks have no chain
    assert [c["path"] for c in chains[top1][0]] == [top1, bad]  # relative backing name resolved
    hostscan.fill_backing(domains, chains)
    assert domains[1]["disks"][0]["backing"] == [mid, good]
    work = tmp_path / "work"
    work.mkdir()
    bases = hostscan.base_images(domains, chains, run, work_dir=str(work))
    by = dict((b["path"], b) for b in bases)
    assert sorted(by) == sorted([bad, good, mid, gone])
    assert by[bad]["used_by"] == ["web1:vda", "web3:sda"] and by[bad]["format"] == "qcow2"
    assert by[bad]["sealed"] is False and by[bad]["error"] is None
    assert by[bad]["findings"] == ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key"]
    assert by[good]["sealed"] is True and by[good]["findings"] == [] and by[good]["used_by"] == ["web2:vda"]
    assert by[mid]["sealed"] is True  # the file system as that layer shows it
    assert by[gone]["sealed"] is None and "gone.qcow2" in by[gone]["error"] and by[gone]["used_by"] == ["web2:vdc"]
    assert os.listdir(str(work)) == []  # private work directories removed


@needs_image_tools
def test_base_image_without_a_file_system_or_not_verified(tmp_path):
    junk = tmp_path / "junk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(junk), "4M"], check=True)
    top = overlay(tmp_path, "top.qcow2", str(junk))
    domains = [dict(name="d", disks=[disk(top)], inactive=None)]
    chains = hostscan.disk_chains(domains, run)
    b = hostscan.base_images(domains, chains, run)[0]
    assert b["sealed"] is None and "no ext2/3/4 file system" in b["error"]
    b = hostscan.base_images(domains, chains, run, verify=False)[0]
    assert b["sealed"] is None and b["error"] == "not verified (verify_base_images: false)"


def test_missing_disk_file_is_an_error_without_running_qemu_img(tmp_path):
    calls = []

    def never(argv):
        calls.append(argv)
        return 1, "", "should not run"

    missing = str(tmp_path / "gone.qcow2")
    domains = [dict(name="d", disks=[disk(missing, backing=[str(tmp_path / "base.qcow2")])], inactive=None)]
    chains = hostscan.disk_chains(domains, never)
    assert calls == [] and chains[missing] == (None, "qemu-img info %s: no such file" % missing)
    b = hostscan.base_images(domains, chains, never)[0]  # the base the XML names cannot be verified
    assert b["sealed"] is None and "no such file" in b["error"] and calls == []


def test_xml_backing_without_a_readable_chain_is_an_error_not_a_pass(tmp_path):
    domains = [dict(name="d", disks=[disk(str(tmp_path / "top.qcow2"), backing=[str(tmp_path / "base.qcow2")])],
                    inactive=None)]
    chains = {str(tmp_path / "top.qcow2"): (None, "qemu-img info: No such file")}
    b = hostscan.base_images(domains, chains, run)[0]
    assert b["sealed"] is None and "No such file" in b["error"]


def test_mark_referenced(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(str(tmp_path / "real"), str(tmp_path / "alias"))
    images = [dict(path=str(tmp_path / "real" / n)) for n in ("top.qcow2", "base.qcow2", "orphan.qcow2")]
    domains = [dict(name="d", disks=[disk(str(tmp_path / "alias" / "top.qcow2"))],
                    inactive=dict(disks=[disk("/x", backing=[str(tmp_path / "real" / "base.qcow2")])]))]
    hostscan.mark_referenced(images, domains)
    assert [i["referenced"] for i in images] == [True, True, False]


# --- libvirt configuration as libvirt parses it (src/util/virconf.c) -------------------------------------------

def test_conf_parsed_as_libvirt_parses_it():
    """The FIRST statement of a repeated key is the one libvirt uses (virConfGetValue); 'single' and
    \"\"\"triple\"\"\" quotes, ';' between statements, lists over lines and comments after values are libvirt syntax."""
    text = ('user = "root"   # the first one counts\ngroup = \'root\'\n#user = "qemu"\nuser = "libvirt-qemu"\n'
            "dump_guest_core = 1; vnc_tls = 0 ; dump_guest_core = 0\n"
            'vnc_password = """a "quoted" #secret\nover two lines"""\n'
            'cgroup_device_acl = [\n    "/dev/null", \'/dev/full\',\n]\nmax_files = +0100\nnice = -5\n')
    assert hostscan.parse_libvirt_conf(text) == {
        "user": "root", "group": "root", "dump_guest_core": "1", "vnc_tls": "0",
        "vnc_password": 'a "quoted" #secret\nover two lines', "cgroup_device_acl": ["/dev/null", "/dev/full"],
        "max_files": "100", "nice": "-5"}
    assert [e.key for e in hostscan.conf_entries(text)].count("dump_guest_core") == 2


@pytest.mark.parametrize("text, line, why", [
    ('user = "root\n', 1, "unterminated string"),
    ("a = 1\ndump_guest_core = 1x\n", 2, "expecting a separator"),
    ("cgroup_device_acl = [ # devices\n]\n", 1, "expecting a value"),
    ('user = "a"\n"b"\n', 2, "expecting a name"),
    ("_user = 1\n", 1, "expecting a name"),
    ("user root\n", 1, "expecting an assignment"),
    ('user = "a" "b"\n', 1, "expecting a separator"),
    ("x = [ 1, 2\n", 2, "list is not closed with ]"),
])
def test_conf_libvirt_refuses_is_a_syntax_error_naming_the_line(text, line, why):
    with pytest.raises(hostscan.ConfSyntaxError) as e:
        hostscan.parse_libvirt_conf(text)
    assert (e.value.line, e.value.why) == (line, why)


def test_an_unparsable_conf_is_an_error_never_the_defaults(tmp_path):
    conf = tmp_path / "qemu.conf"
    conf.write_text('user = "root"\ndump_guest_core = 1 0\n')
    why = "%s: line 2: expecting a separator (libvirt refuses the whole file)" % conf
    assert hostscan.load_qemu_conf(str(conf)) == (None, why)
    assert hostscan.read_qemu_conf(str(conf)) is None and hostscan.read_conf(str(conf)) is None
    assert hostscan.load_qemu_conf(str(tmp_path / "absent.conf")) == ({}, None)
    assert hostscan.load_conf(str(tmp_path / "absent.conf")) == (None, None)


def test_redacted_conf_text_hides_secrets_in_every_quoting():
    text = ("vnc_listen = \"127.0.0.1\"\nvnc_password = 'Sup3r#Secret-42'\n"
            "spice_password = \"\"\"Triple\"Quoted\nSecret\"\"\"\nvnc_tls = 0 ; vnc_sasl = 0\nuser = \"root\"  # c\n")
    out = hostscan.redact_conf_text(text)
    assert "Sup3r" not in out and "Secret" not in out and "Triple" not in out
    assert out == ('vnc_listen = "127.0.0.1"\nvnc_password = "<redacted>"\nspice_password = "<redacted>"\n'
                   'vnc_tls = 0 ; vnc_sasl = 0\nuser = "root"  # c\n')
    broken = hostscan.redact_conf_text("vnc_password = 'x\n")
    assert "x" not in broken.replace("expecting", "").replace("text", "") and "line 1" in broken


def test_tcp_listeners_name_the_daemon_holding_the_socket_and_the_file_it_reads(tmp_path):
    """/proc/net/tcp's inode, found among the descriptors of root's libvirtd/virtproxyd (readlink only), tells
    which daemon - and so which configuration - a listener belongs to; one no daemon holds (systemd socket
    activation) has no owner."""
    (tmp_path / "tcp").write_text(PROC_TCP)
    proc = tmp_path / "proc"
    for pid, inodes in ((11, ("2",)), (12, ("1",)), (13, ())):
        (proc / str(pid) / "fd").mkdir(parents=True)
        for n, inode in enumerate(inodes):
            (proc / str(pid) / "fd" / str(n + 3)).symlink_to("socket:[%s]" % inode)
    procs = [(11, 0, ["/usr/sbin/virtproxyd", "--timeout", "120"]),
             (12, 1000, ["/home/u/libvirtd", "-f", "/home/u/x.conf"]),  # a user's: never an owner
             (13, 0, ["/usr/sbin/libvirtd", "-f", "/srv/libvirtd-alt.conf"])]
    got = hostscan.tcp_listeners(procs, conf_dir="/etc/libvirt", paths=(str(tmp_path / "tcp"),), proc=str(proc))
    assert [(g["what"], g["daemon"], g["config"]) for g in got] == [
        ("tcp 0.0.0.0:16509", None, None), ("tcp 127.0.0.1:16514", "virtproxyd", "/etc/libvirt/virtproxyd.conf")]
    assert hostscan.remote_daemons(procs)[1][:3] == (13, "libvirtd", "/srv/libvirtd-alt.conf")


def test_qemu_processes_are_told_by_their_executable_not_their_argv(tmp_path):
    """Debian's kvm (a link to qemu-system-x86_64) and "exec -a" names: /proc/PID/exe (readlink) says what runs;
    argv[0] only when the executable cannot be read, and the evidence says which told it."""
    exes = {1: "/usr/bin/qemu-system-x86_64", 2: "/usr/bin/qemu-system-x86_64", 3: "/usr/libexec/qemu-kvm",
            4: "/usr/bin/python3.11", 5: None, 6: None}
    argv = ["-name", "guest=rogue", "-uuid", "0A-1B"]
    procs = [(1, 0, ["kvm"] + argv), (2, 0, ["sshd: nobody"] + argv), (3, 107, ["/usr/libexec/qemu-kvm"] + argv),
             (4, 0, ["qemu-system-x86_64"] + argv), (5, 0, ["/usr/bin/kvm"] + argv), (6, 0, ["/bin/sh"])]
    out = hostscan.qemu_processes(procs, exe=exes.get)
    assert [(p["pid"], p["exe"], p["matched_by"], p["name"], p["uuid"]) for p in out] == [
        (1, "/usr/bin/qemu-system-x86_64", "exe", "rogue", "0a-1b"),
        (2, "/usr/bin/qemu-system-x86_64", "exe", "rogue", "0a-1b"),
        (3, "/usr/libexec/qemu-kvm", "exe", "rogue", "0a-1b"), (5, None, "argv0", "rogue", "0a-1b")]
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "exe").symlink_to("/nonexistent/qemu-system-aarch64 (deleted)")
    assert hostscan.exe_target(7, proc=str(tmp_path)) == "/nonexistent/qemu-system-aarch64"
    assert hostscan.exe_target(8, proc=str(tmp_path)) is None


def test_scan_images_judges_disk_files_by_themselves_and_no_file_of_a_shared_directory(tmp_path):
    """A disk in /var/tmp makes /var/tmp no image directory: the disk file is judged, its neighbours are not; a
    shared (sticky or world-writable) directory given as an image directory is listed as shared, its files unread."""
    tmp, images = tmp_path / "tmp", tmp_path / "images"
    for d, mode in ((tmp, 0o1777), (images, 0o711)):
        d.mkdir()
        os.chmod(str(d), mode)
    for f in (tmp / "lab1.qcow2", tmp / "someone-elses.txt", images / "web1.qcow2"):
        f.write_text("x")
        os.chmod(str(f), 0o644)
    (images / "link.qcow2").symlink_to(tmp / "someone-elses.txt")
    (tmp_path / "disk-link.qcow2").symlink_to(tmp / "lab1.qcow2")
    files = [str(tmp_path / "disk-link.qcow2"), "pool/vol", "/gone.img"]
    got, dirs = hostscan.scan_images([str(images), str(tmp)], files)
    want = [(str(images / "web1.qcow2"), 0o644), (str(tmp / "lab1.qcow2"), 0o644)]
    assert sorted((i["path"], i["mode"]) for i in got) == sorted(want)
    want_dirs = [(str(images), 0o711, False), (str(tmp), 0o1777, True)]
    assert [(d["path"], d["mode"], d["shared"]) for d in dirs] == want_dirs
    assert hostscan.shared_dir(0o1770) and hostscan.shared_dir(0o777) and not hostscan.shared_dir(0o755)


def test_disk_files_are_the_file_disks_images():
    disks = [{"type": "file", "device": "disk", "source": "/var/tmp/lab1.qcow2"},
             {"type": "file", "device": "cdrom", "source": "/srv/iso/debian.iso"},
             {"type": "volume", "device": "disk", "volume_type": "file", "volume_path": "/srv/pool/v.qcow2"},
             {"type": "network", "device": "disk", "source": "rbd/vol"},
             {"type": "block", "device": "disk", "source": "/dev/sdb"}]
    nxt = {"type": "file", "device": "disk", "source": "/srv/next.qcow2"}
    dom = {"name": "lab1", "disks": disks, "inactive": {"disks": [nxt]}}
    assert hostscan.disk_files([dom]) == {"/var/tmp/lab1.qcow2", "/srv/pool/v.qcow2", "/srv/next.qcow2"}


def test_disk_files_include_each_backing_chain(tmp_path):
    """A base image outside every image directory (its chain found by qemu-img, or named in <backingStore>) is judged
    like the disk on top of it."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "web-base.qcow2").write_text("b")
    os.chmod(str(base / "web-base.qcow2"), 0o644)
    disks = [{"type": "file", "device": "disk", "source": "/srv/vms/web1.qcow2",
              "backing": [str(base / "web-base.qcow2"), "json:{...}", "rbd/base"]}]
    files = hostscan.disk_files([{"name": "web1", "disks": disks}])
    assert files == {"/srv/vms/web1.qcow2", str(base / "web-base.qcow2")}
    images, _dirs = hostscan.scan_images([], files)
    assert [(i["path"], i["mode"]) for i in images] == [(str(base / "web-base.qcow2"), 0o644)]


SECRET_URL = "https://builder:S3cretPW@images.example.invalid/base.img"


def _fake_qemu_img(chain_ok, backing):
    """qemu-img info as it answers for an overlay whose header names ``backing``: with --backing-chain it fails to
    open that backing (chain_ok False) or lists both layers."""
    def fake(argv):
        if "--backing-chain" in argv and not chain_ok:
            return 1, "", "qemu-img: Could not open '%s': Unknown protocol 'https'\n" % backing
        top = {"filename": argv[-1], "format": "qcow2", "backing-filename": backing,
               "full-backing-filename": backing, "backing-filename-format": "raw"}
        if "--backing-chain" in argv:
            return 0, json.dumps([top, {"filename": backing, "format": "raw"}]), ""
        return 0, json.dumps(top), ""
    return fake


@pytest.mark.parametrize("chain_ok", [False, True])
@pytest.mark.parametrize("backing", [
    SECRET_URL, 'json:{"driver": "https", "url": "https://images.example.invalid/b.img", "password": "S3cretPW"}'])
def test_backing_names_from_an_image_header_never_carry_their_credentials(tmp_path, chain_ok, backing):
    """An overlay's header may name its backing file by a URL with a user and password (or a json: spec with a
    password): the chain, its error and the evidence built from them (the disk's backing, the base images) name
    it redacted; a local path stays as it is."""
    top = tmp_path / "top.qcow2"
    top.write_bytes(b"QFI\xfb")
    fake = _fake_qemu_img(chain_ok, backing)
    chain, err = hostscan.backing_chain(str(top), "qcow2", fake)
    domains = [dict(name="d", disks=[disk(str(top))], inactive=None)]
    chains = {str(top): (chain, err)}
    hostscan.fill_backing(domains, chains)
    bases = hostscan.base_images(domains, chains, fake, verify=False)
    text = json.dumps([chain, err, domains, bases])
    assert "S3cretPW" not in text and "<redacted>" in text
    assert chain[0]["path"] == str(top) and "images.example.invalid" in chain[1]["path"]
    assert (err is not None) == (not chain_ok)


def test_a_local_backing_path_is_never_rewritten():
    for name in ("/var/lib/libvirt/images/key=1.qcow2", "/srv/base.img", None):
        assert hostscan.redact_image_name(name) == name


@pytest.mark.skipif(not shutil.which("qemu-img"), reason="needs qemu-img")
def test_a_real_overlay_naming_a_url_with_a_password(tmp_path):
    base = tmp_path / "base.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(base), "1M"], check=True)
    top = str(tmp_path / "top.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), top], check=True)
    subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", SECRET_URL, top], check=True)
    chain, err = hostscan.backing_chain(top, "qcow2", run)
    assert "S3cretPW" not in json.dumps([chain, err]) and len(chain) == 2 and chain[1]["path"].startswith("https://")


# --- sockets (LEAK-06) ----------------------------------------------------------------------------------


def _bind(path, mode):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    os.chmod(str(path), mode)
    return s


@pytest.fixture
def run_libvirt(tmp_path):
    """A /run/libvirt of the modular daemons (real sockets, real modes), with what must not be taken for a
    management socket: a pid file, a per-driver subdirectory with a guest's socket, and a link to elsewhere."""
    run_dir = tmp_path / "run-libvirt"
    run_dir.mkdir()
    (run_dir / "qemu").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    modes = {"libvirt-sock": 0o660, "libvirt-sock-ro": 0o666, "libvirt-admin-sock": 0o700,
             "virtqemud-sock": 0o660, "virtqemud-sock-ro": 0o666, "virtqemud-admin-sock": 0o606,
             "virtsecretd-sock": 0o666, "virtstoraged-sock": 0o666, "virtnetworkd-sock": 0o660,
             "virtnodedevd-sock": 0o660, "virtnwfilterd-sock": 0o662, "virtinterfaced-sock": 0o600,
             "virtlogd-sock": 0o600}
    held = [_bind(run_dir / name, mode) for name, mode in modes.items()]
    held.append(_bind(run_dir / "qemu" / "guest.sock", 0o666))
    held.append(_bind(outside / "target-sock", 0o600))
    (run_dir / "virtqemud.pid").write_text("1\n")
    os.symlink(str(outside / "target-sock"), str(run_dir / "virtchd-sock"))
    yield run_dir, modes
    for s in held:
        s.close()


def test_sockets_are_every_socket_of_the_directory_of_every_daemon(run_libvirt):
    run_dir, modes = run_libvirt
    got = hostscan.sockets([str(run_dir)])
    by = dict((os.path.basename(s["path"]), s) for s in got)
    assert sorted(by) == sorted(list(modes) + ["virtchd-sock"])  # no pid file, nothing of a subdirectory
    for name, mode in modes.items():
        assert by[name]["mode"] == mode and by[name]["path"] == str(run_dir / name), name
        assert by[name]["rw"] is (not name.endswith("-ro")), name  # an admin socket is judged as read-write
        assert "link" not in by[name]
    assert by["virtqemud-admin-sock"]["kind"] == "admin" and by["virtsecretd-sock"]["kind"] == "rw"
    assert by["virtqemud-sock-ro"]["kind"] == "ro"
    # A link named as a socket is never followed: its own mode (no socket's) and where it points.
    link = by["virtchd-sock"]
    assert link["link"] == str(run_dir.parent / "outside" / "target-sock") and link["mode"] == 0o777 and link["rw"]


def test_sockets_of_a_missing_directory_a_single_socket_and_a_directory_met_twice(run_libvirt, tmp_path):
    run_dir, _modes = run_libvirt
    assert hostscan.sockets([str(tmp_path / "missing")]) == []
    (one,) = hostscan.sockets([str(run_dir / "virtsecretd-sock")])
    assert one == {"path": str(run_dir / "virtsecretd-sock"), "mode": 0o666, "rw": True, "kind": "rw"}
    # A daemon's unix_sock_dir: only libvirt-named sockets are taken, and the same socket is reported once.
    other = tmp_path / "custom"
    other.mkdir()
    held = [_bind(other / "virtstoraged-sock", 0o666), _bind(other / "unrelated.sock", 0o666)]
    os.symlink(str(other), str(tmp_path / "custom-alias"))
    try:
        got = hostscan.sockets([str(run_dir / "virtqemud-sock")], [str(tmp_path / "custom-alias"), str(other)])
    finally:
        for s in held:
            s.close()
    assert [os.path.basename(s["path"]) for s in got] == ["virtqemud-sock", "virtstoraged-sock"]
    # libvirt's own directory behind a link is not followed: its sockets are not known (LEAK-06 is an error).
    os.symlink(str(run_dir), str(tmp_path / "run-alias"))
    assert hostscan.sockets([str(tmp_path / "run-alias")]) is None


def test_leak06_fails_a_world_open_modular_daemon_socket_collected_from_the_directory(run_libvirt):
    from tests.unit.rules import evidence as E
    run_dir, _modes = run_libvirt
    (f,) = E.run("LEAK-06", E.fleet([E.domain("web1")], host_ev=E.host(sockets=hostscan.sockets([str(run_dir)]))))
    assert f["status"] == "fail"
    for name in ("virtsecretd-sock", "virtstoraged-sock", "virtnwfilterd-sock"):
        assert "%s is world-accessible" % (run_dir / name) in f["message"], name
    assert "%s (admin socket) is not root-only" % (run_dir / "virtqemud-admin-sock") in f["message"]
    assert "%s is a symbolic link to " % (run_dir / "virtchd-sock") in f["message"]
    assert "sock-ro" not in f["message"] and "virtqemud-sock " not in f["message"]
