"""remediation/hostconf.py: line-based libvirt configuration edits, augeas output checks, LEAK-01 modes,
stale daemons and nwfilter ordering (pure logic and the local file system; augtool itself runs in
tests/integration/test_host_config.py)."""

import os
import stat

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import hostconf

QEMU = """# Master configuration file for the QEMU driver.
#user = "qemu"   # the account QEMU runs as
user = "root"
group = "root"<SP>
#seccomp_sandbox = 1
seccomp_sandbox = 0
security_driver = [ "selinux",
    "none" ]
vnc_listen = "127.0.0.1"
user = "root"
""".replace("<SP>", "   ")


def test_edit_replaces_in_place_drops_duplicates_and_keeps_every_other_line():
    new, changes = hostconf.edit(QEMU, {"user": "libvirt-qemu", "seccomp_sandbox": 1})
    lines = new.splitlines()
    assert lines.count('user = "libvirt-qemu"') == 1 and 'user = "root"' not in lines
    assert lines.index('user = "libvirt-qemu"') == 2  # the first active line keeps its place
    assert "seccomp_sandbox = 1" in lines and "seccomp_sandbox = 0" not in lines
    for kept in ('#user = "qemu"   # the account QEMU runs as', "#seccomp_sandbox = 1", 'group = "root"   ',
                 'vnc_listen = "127.0.0.1"', '    "none" ]'):
        assert kept in lines
    assert sorted((c["key"], c["old"], c["new"]) for c in changes) == [
        ("seccomp_sandbox", "0", 1), ("user", "root", "libvirt-qemu")]
    assert hostscan.parse_libvirt_conf(new)["user"] == "libvirt-qemu"


def test_edit_appends_a_missing_key_under_a_mark_and_is_idempotent():
    new, changes = hostconf.edit(QEMU, {"dump_guest_core": 0, "migrate_tls_force": 1})
    assert new.startswith(QEMU) and new.endswith("\n%s\ndump_guest_core = 0\nmigrate_tls_force = 1\n" % hostconf.MARK)
    assert [c["old"] for c in changes] == [None, None]
    again, changes2 = hostconf.edit(new, {"dump_guest_core": 0, "migrate_tls_force": 1})
    assert again == new and changes2 == []


def test_edit_removes_a_multi_line_key_for_none():
    new, changes = hostconf.edit(QEMU, {"security_driver": None})
    assert "security_driver" not in hostscan.parse_libvirt_conf(new)
    assert '"none" ]' not in new and "vnc_listen" in new
    assert changes == [{"key": "security_driver", "old": ["selinux", "none"], "new": None}]
    assert hostconf.edit(new, {"security_driver": None}) == (new, [])


def test_edit_never_loosens_socket_permissions_or_replaces_a_group():
    strict = 'unix_sock_rw_perms = "0700"\nunix_sock_group = "admins"\n'
    assert hostconf.edit(strict, {"unix_sock_rw_perms": "0770", "unix_sock_group": "libvirt"}) == (strict, [])
    open_ = 'unix_sock_rw_perms = "0777"\n'
    new, changes = hostconf.edit(open_, {"unix_sock_rw_perms": "0770"})
    assert new == 'unix_sock_rw_perms = "0770"\n' and changes[0]["old"] == "0777"
    assert hostconf.world_accessible("0777") is True and hostconf.world_accessible("x") is None


def test_edit_rejects_bad_keys_and_values():
    with pytest.raises(hostconf.HostConfError, match="not a libvirt configuration key"):
        hostconf.edit(QEMU, {"user = 1\nx": 1})
    with pytest.raises(hostconf.HostConfError, match="cannot be written"):
        hostconf.edit(QEMU, {"user": 'a"b'})
    assert hostconf.render(True) == "1" and hostconf.render(["a", "b"]) == '[ "a", "b" ]'


def test_daemon_settings_keep_network_keys_out_of_virtqemud():
    s = {"listen_tcp": 0, "unix_sock_rw_perms": "0770"}
    assert hostconf.daemon_settings("virtqemud.conf", s) == {"unix_sock_rw_perms": "0770"}
    assert hostconf.daemon_settings("libvirtd.conf", s) == s == hostconf.daemon_settings("virtproxyd.conf", s)


def test_every_modular_daemon_with_sockets_is_fixed_where_leak06_judges_it():
    """LEAK-06 reads every /etc/libvirt/virt*d.conf: the fix edits each daemon that has unix sockets of its own, restarts
    that daemon, validates with its lens or libvirtd's, and keeps the network keys to the remote daemons."""
    for d in ("virtsecretd", "virtstoraged", "virtnetworkd", "virtnodedevd", "virtnwfilterd", "virtinterfaced"):
        assert "%s.conf" % d in hostconf.DAEMON_CONFS and hostconf.READERS["%s.conf" % d] == (d,)
        assert hostconf.daemon_settings("%s.conf" % d, {"listen_tcp": 0, "unix_sock_admin_perms": "0700"}) == {
            "unix_sock_admin_perms": "0700"}
    assert hostconf.LENSES["virtsecretd.conf"][0] == ("virtsecretd.aug", "Virtsecretd")
    # An admin socket setting is changed only where it lets more than root in.
    assert hostconf.keeps("unix_sock_admin_perms", None) and hostconf.keeps("unix_sock_admin_perms", "0700")
    assert not hostconf.keeps("unix_sock_admin_perms", "0770") and not hostconf.keeps("unix_sock_admin_perms", "rwx")


def test_augtool_output_is_judged():
    ok = '/augeas/files\n/augeas/files/c.conf\n/augeas/files/c.conf/path = "/files/c.conf"\n'
    hostconf.check_augtool_output(ok, "c.conf", "/x/c.conf")
    bad = ('/augeas/files/c.conf/error = "parse_failed"\n/augeas/files/c.conf/error/line = "3"\n'
           '/augeas/files/c.conf/error/char = "7"\n/augeas/files/c.conf/error/message = "Iterated lens matched less than it should"\n'
           + ok)
    with pytest.raises(hostconf.HostConfError, match=r"/x/c.conf: .*Iterated lens matched less .* line 3, char 7"):
        hostconf.check_augtool_output(bad, "c.conf", "/x/c.conf")
    with pytest.raises(hostconf.HostConfError, match="did not read"):
        hostconf.check_augtool_output("/augeas/files\n", "c.conf", "/x/c.conf")
    argv = hostconf.augtool_argv("augtool", "/tmp/d", "c.conf", "Libvirtd_qemu")
    assert argv[-1] == "Libvirtd_qemu.lns incl /c.conf" and "--noautoload" in argv


def test_lens_for_falls_back_to_libvirtd_and_names_what_is_missing(tmp_path):
    (tmp_path / "libvirtd.aug").write_text("")
    assert hostconf.lens_for("virtqemud.conf", str(tmp_path)) == "Libvirtd"
    with pytest.raises(hostconf.HostConfError, match="no augeas lens for qemu.conf"):
        hostconf.lens_for("qemu.conf", str(tmp_path))


def test_leak01_modes():
    assert hostconf.image_mode(0o644, 0, 64055) == 0o640  # group root may read (the rule's own criterion)
    assert hostconf.image_mode(0o640, 100, 64055) == 0o600  # a foreign group loses read and write
    assert hostconf.image_mode(0o660, 64055, 64055) == 0o660  # the QEMU group keeps its access
    assert hostconf.image_mode(0o600, 100, 64055) == 0o600
    assert hostconf.dir_mode(0o755) == 0o751 and hostconf.dir_mode(0o711) == 0o711


def test_fix_permissions_changes_what_the_rule_flags_and_follows_no_link(tmp_path):
    images = tmp_path / "var" / "images"
    images.mkdir(parents=True)
    os.chmod(str(images), 0o755)
    (images / "web1.qcow2").write_text("x")
    os.chmod(str(images / "web1.qcow2"), 0o644)
    outside = tmp_path / "outside.img"
    outside.write_text("y")
    os.chmod(str(outside), 0o644)
    (images / "link.img").symlink_to(outside)
    (tmp_path / "linked").symlink_to(images)
    planned, errors = hostconf.fix_permissions(str(tmp_path), ["/var/images"], 64055, check_mode=True)
    assert errors == [] and [(c["path"], c["old"], c["new"]) for c in planned] == [
        ("/var/images/", "0755", "0751"), ("/var/images/web1.qcow2", "0644", "0640")]
    assert stat.S_IMODE(os.stat(str(images)).st_mode) == 0o755  # check mode: nothing changed
    done, errors = hostconf.fix_permissions(str(tmp_path), ["/var/images", "/missing"], 64055)
    assert done == planned and errors == []
    assert stat.S_IMODE(os.stat(str(images / "web1.qcow2")).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(str(outside)).st_mode) == 0o644  # the link's target is not the rule's image
    assert hostconf.fix_permissions(str(tmp_path), ["/var/images"], 64055) == ([], [])
    _changes, errors = hostconf.fix_permissions(str(tmp_path), ["/linked"], 64055)
    assert errors == ["%s/linked: is a symbolic link or not a directory, not followed" % tmp_path]


def test_stale_daemons_are_those_started_before_a_file_they_read_changed():
    running = {"libvirtd": 100.0, "virtproxyd": 300.0}
    assert hostconf.stale_daemons(running, {"qemu.conf": 200.0, "virtproxyd.conf": 200.0}) == [("libvirtd", "qemu.conf")]
    assert hostconf.stale_daemons(running, {"qemu.conf": 50.0}) == []
    assert hostconf.daemons_to_restart(["qemu.conf", "virtproxyd.conf"]) == ["libvirtd", "virtproxyd", "virtqemud"]
    assert isinstance(hostconf.running_daemons(), dict)


def test_nwfilters_to_define_orders_references_first(tmp_path):
    (tmp_path / "outer.xml").write_text("<filter name='outer' chain='root'><filterref filter='inner'/>"
                                        "<filterref filter='present'/></filter>")
    (tmp_path / "inner.xml").write_text("<filter name='inner' chain='ipv4'/>")
    order = hostconf.nwfilters_to_define(["outer"], {"present"}, str(tmp_path))
    assert [n for n, _xml in order] == ["inner", "outer"]
    assert hostconf.nwfilters_to_define(["outer"], {"outer"}, str(tmp_path)) == []
    with pytest.raises(hostconf.HostConfError, match="nwfilter gone is not defined"):
        hostconf.nwfilters_to_define(["gone"], set(), str(tmp_path))
    (tmp_path / "loop.xml").write_text("<filter name='loop'><filterref filter='loop'/></filter>")
    with pytest.raises(hostconf.HostConfError, match="references itself"):
        hostconf.nwfilters_to_define(["loop"], set(), str(tmp_path))
    with pytest.raises(hostconf.HostConfError, match="not an nwfilter name"):
        hostconf.nwfilters_to_define(["../etc/passwd"], set(), str(tmp_path))


def test_edit_sets_the_statement_libvirt_reads_and_removes_the_later_ones():
    """libvirt reads the FIRST statement of a repeated key: that one is rewritten, the later ones go."""
    new, changes = hostconf.edit('user = "root"\n# keep\nuser = "libvirt-qemu"\n', {"user": "libvirt-qemu"})
    assert new == 'user = "libvirt-qemu"\n# keep\n'
    assert changes == [{"key": "user", "old": "root", "new": "libvirt-qemu"}]
    perms = 'unix_sock_rw_perms = "0777"\nunix_sock_rw_perms = "0770"\n'
    new, changes = hostconf.edit(perms, {"unix_sock_rw_perms": "0770"})
    assert new == 'unix_sock_rw_perms = "0770"\n' and changes[0]["old"] == "0777"
    new, changes = hostconf.edit("vnc_tls = 0; dump_guest_core = 1  # why\ndump_guest_core = 0 ; max_files = 10\n",
                                 {"dump_guest_core": 0})
    assert new == "vnc_tls = 0; dump_guest_core = 0  # why\nmax_files = 10\n" and changes[0]["old"] == "1"
    new, _changes = hostconf.edit("user = 'root'\n", {"user": "libvirt-qemu"})
    assert hostscan.parse_libvirt_conf(new) == {"user": "libvirt-qemu"}
    assert hostconf.edit("dump_guest_core = 1; dump_guest_core = 0\n", {"dump_guest_core": None})[0] == ""


def test_edit_refuses_a_file_libvirt_cannot_parse():
    with pytest.raises(hostconf.HostConfError, match=r"libvirt cannot parse the file \(line 2: unterminated string\)"):
        hostconf.edit('user = "root"\ngroup = "root\n', {"user": "libvirt-qemu"})


def test_edit_compares_parsed_values_a_comment_or_spelling_is_no_change():
    for text, settings in (("listen_tcp = 0  # never expose\n", {"listen_tcp": 0}),
                           ("listen_tcp = 0;max_clients = 5\n", {"listen_tcp": 0}),
                           ("user = 'libvirt-qemu' # Debian\n", {"user": "libvirt-qemu"}),
                           ('security_driver = [ "apparmor" ]\n', {"security_driver": ["apparmor"]})):
        assert hostconf.edit(text, settings) == (text, []), text
    new, changes = hostconf.edit("listen_tcp = 1  # never expose\n", {"listen_tcp": 0})
    assert new == "listen_tcp = 0  # never expose\n" and changes == [{"key": "listen_tcp", "old": "1", "new": 0}]


def test_fix_permissions_never_chmods_a_shared_directory_and_fixes_named_files_alone(tmp_path):
    """/var/tmp holding a disk: only the disk file changes; a shared directory named as an image directory is left
    (1777 stays, its other files too) and reported."""
    tmp = tmp_path / "var" / "tmp"
    tmp.mkdir(parents=True)
    os.chmod(str(tmp), 0o1777)
    for name in ("lab1.qcow2", "other-user-file"):
        (tmp / name).write_text("x")
        os.chmod(str(tmp / name), 0o644)
    (tmp / "planted.qcow2").symlink_to(tmp / "other-user-file")
    skipped = []
    files = ["/var/tmp/lab1.qcow2", "/var/tmp/planted.qcow2", "/var/tmp/gone.qcow2"]
    changes, errors = hostconf.fix_permissions(str(tmp_path), ["/var/tmp"], 64055, files=files, skipped=skipped)
    assert changes == [{"path": "/var/tmp/lab1.qcow2", "old": "0644", "new": "0640"}]
    assert errors == ["/var/tmp/planted.qcow2: is a symbolic link or not a regular file, not followed"]
    assert skipped == [{"path": "/var/tmp", "mode": "1777",
                        "reason": "shared directory (sticky or world-writable): never chmodded"}]
    assert stat.S_IMODE(os.stat(str(tmp)).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(str(tmp / "other-user-file")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(str(tmp / "lab1.qcow2")).st_mode) == 0o640


def test_edit_never_returns_a_secret_keys_value_in_changes_or_errors():
    """qemu.conf's vnc_password: its old and new values are "<redacted>" in the changes host_config returns, and a
    value that cannot be written is not named in the error (the module's failure message)."""
    text = 'vnc_listen = "0.0.0.0"\nvnc_password = "OldS3cret"\n'
    new, changes = hostconf.edit(text, {"vnc_listen": "127.0.0.1", "vnc_password": "NewS3cret", "spice_password": None})
    assert hostscan.parse_libvirt_conf(new)["vnc_password"] == "NewS3cret"  # written as asked
    assert sorted((c["key"], c["old"], c["new"]) for c in changes) == [
        ("vnc_listen", "0.0.0.0", "127.0.0.1"), ("vnc_password", "<redacted>", "<redacted>")]
    new, changes = hostconf.edit(text, {"vnc_password": None})
    assert changes == [{"key": "vnc_password", "old": "<redacted>", "new": None}] and "OldS3cret" not in new
    with pytest.raises(hostconf.HostConfError) as e:
        hostconf.edit(text, {"vnc_password": 'Bad"S3cret'})
    assert "S3cret" not in str(e.value) and "vnc_password" in str(e.value)
    with pytest.raises(hostconf.HostConfError) as e:
        hostconf.edit(text, {"vnc_listen": 'bad"listen'})
    assert 'bad"listen' in str(e.value)  # other values are still named
