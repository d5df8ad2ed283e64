"""DIV-06 seal checks on real directory trees built in tmp_path."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import image_seal
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence.image_seal import check_tree
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation.image_seal import seal_tree


def write(root, rel, content="x", mode=0o644):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


@pytest.fixture
def sealed(tmp_path):
    """A minimal tree that passes the seal: empty machine-id, empty log file, no keys."""
    write(tmp_path, "etc/machine-id", "")
    write(tmp_path, "var/log/dpkg.log", "")
    write(tmp_path, "etc/ssh/sshd_config", "PermitRootLogin no\n")
    os.makedirs(str(tmp_path / "root"))
    os.makedirs(str(tmp_path / "var/lib/dbus"))
    os.symlink("/etc/machine-id", str(tmp_path / "var/lib/dbus/machine-id"))
    return tmp_path


def paths(findings):
    return sorted(f["path"] for f in findings)


def test_sealed_tree_passes(sealed):
    assert check_tree(str(sealed)) == []


@pytest.mark.parametrize("rel,category,reported", [
    ("etc/ssh/ssh_host_ed25519_key", "ssh-host-key", "/etc/ssh/ssh_host_ed25519_key"),
    ("etc/ssh/ssh_host_rsa_key.pub", "ssh-host-key", "/etc/ssh/ssh_host_rsa_key.pub"),
    ("var/lib/systemd/random-seed", "random-seed", "/var/lib/systemd/random-seed"),
    ("var/lib/systemd/credential.secret", "random-seed", "/var/lib/systemd/credential.secret"),
    ("root/.ssh/authorized_keys", "builder-key", "/root/.ssh/authorized_keys"),
    ("home/builder/.ssh/id_ed25519", "builder-key", "/home/builder/.ssh/id_ed25519"),
    ("etc/ssl/private/ssl-cert-snakeoil.key", "builder-key", "/etc/ssl/private/ssl-cert-snakeoil.key"),
    ("root/.bash_history", "history", "/root/.bash_history"),
    ("home/builder/.python_history", "history", "/home/builder/.python_history"),
    ("var/lib/dhcp/dhclient.leases", "lease", "/var/lib/dhcp/dhclient.leases"),
    ("var/lib/systemd/network/lease-2", "lease", "/var/lib/systemd/network/lease-2"),
    ("var/log/journal/abc/system.journal", "log", "/var/log/journal/abc"),
    ("tmp/build.tmp", "temp", "/tmp/build.tmp"),
])
def test_each_identifying_item_is_found_and_removed(sealed, rel, category, reported):
    # A journal directory (named after the builder's machine-id) goes as a whole.
    write(sealed, rel)
    found = check_tree(str(sealed))
    assert [(f["path"], f["category"]) for f in found] == [(reported, category)]
    assert found[0]["reason"]
    seal_tree(str(sealed))
    assert not os.path.lexists(os.path.join(str(sealed), rel))
    assert check_tree(str(sealed)) == []


def test_machine_id_must_be_empty_not_absent(sealed):
    write(sealed, "etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/etc/machine-id", "empty")]
    seal_tree(str(sealed))
    assert os.path.getsize(str(sealed / "etc/machine-id")) == 0

    os.unlink(str(sealed / "etc/machine-id"))
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/etc/machine-id", "create-empty")]
    seal_tree(str(sealed))
    assert os.path.getsize(str(sealed / "etc/machine-id")) == 0


def test_dbus_machine_id_copy_fails_but_link_passes(sealed):
    os.unlink(str(sealed / "var/lib/dbus/machine-id"))
    write(sealed, "var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n")
    assert paths(check_tree(str(sealed))) == ["/var/lib/dbus/machine-id"]


def test_logs_are_truncated_not_removed(sealed):
    log = write(sealed, "var/log/apt/history.log", "Start-Date: ...\n", mode=0o640)
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/var/log/apt/history.log", "truncate")]
    seal_tree(str(sealed))
    assert os.path.exists(log) and os.path.getsize(log) == 0
    assert os.stat(log).st_mode & 0o777 == 0o640


def test_check_mode_changes_nothing(sealed):
    key = write(sealed, "etc/ssh/ssh_host_ecdsa_key")
    planned = seal_tree(str(sealed), check_mode=True)
    assert paths(planned) == ["/etc/ssh/ssh_host_ecdsa_key"]
    assert os.path.exists(key)


def test_second_seal_is_a_no_op(sealed):
    write(sealed, "root/.ssh/id_rsa")
    write(sealed, "var/log/syslog", "boot\n")
    assert len(seal_tree(str(sealed))) == 2
    assert seal_tree(str(sealed)) == []


def test_directory_under_ssh_is_removed_whole(sealed):
    write(sealed, "root/.ssh/keys/old/id_rsa")
    os.symlink("/etc/passwd", str(sealed / "root/.ssh/keys/link"))
    seal_tree(str(sealed))
    assert not os.path.exists(str(sealed / "root/.ssh/keys"))
    assert os.path.exists("/etc/passwd")


def test_symlinked_directories_are_not_followed(sealed, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    write(outside, "keep.log", "must survive")
    os.symlink(str(outside), str(sealed / "var/log/elsewhere"))
    seal_tree(str(sealed))
    with open(str(outside / "keep.log")) as f:
        assert f.read() == "must survive"


def test_not_a_directory(tmp_path):
    with pytest.raises(ValueError):
        check_tree(str(tmp_path / "missing"))


# --- Symbolic links never lead the seal out of the tree (issue "Trustworthy audit", section 5) ---

CANARIES = {
    "authorized_keys": "ssh-ed25519 AAAA outside-key\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\noutside\n",
    ".bash_history": "outside history\n",
    "x.log": "outside log line\n",
    "passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "machine-id": "fedcba9876543210fedcba9876543210\n",
}


@pytest.fixture
def outside(tmp_path_factory):
    """A directory outside the image tree holding canary files; returns (path, snapshot())."""
    d = tmp_path_factory.mktemp("outside")
    for name, content in CANARIES.items():
        write(d, name, content, mode=0o600)
    os.makedirs(str(d / ".ssh"))
    write(d, ".ssh/authorized_keys", "nested outside key\n", mode=0o600)
    return d


def snapshot(d):
    """Every entry below d with its type, content and mtime: what must not change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(d)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p) as f:
                    content = f.read()
            out[os.path.relpath(p, str(d))] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def plant(sealed, rel, target):
    path = os.path.join(str(sealed), rel)
    parent = os.path.dirname(path)
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(parent, exist_ok=True)
    os.symlink(str(target), path)
    return path


@pytest.mark.parametrize("link,target", [
    ("root/.ssh", ""),                      # builder-key root/.ssh/* through a directory link
    ("home/u", ""),                         # home/*/.ssh/* and home/*/.*_history through a home link
    ("home/u/.ssh", ""),
    ("var/log", ""),                        # var/log/** and var/log/journal/*
    ("var/log/apps", ""),                   # a directory link below var/log
    ("var/log/x.log", "passwd"),            # a file link: removed as a link, never truncated through
    ("root/.bash_history", ".bash_history"),
    ("etc/ssl/private", ""),
    ("var/lib/dhcp", ""),
    ("tmp", ""),
    ("var/lib/dbus/machine-id", "machine-id"),
])
def test_links_out_of_the_tree_are_reported_and_removed_never_followed(sealed, outside, link, target):
    before = snapshot(outside)
    path = plant(sealed, link, outside / target if target else outside)
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/" + link, "remove")]
    assert "symbolic link to %s" % os.readlink(path) in found[0]["reason"]
    assert snapshot(outside) == before  # checking reads nothing through the link either way
    seal_tree(str(sealed))
    assert not os.path.lexists(path)
    assert snapshot(outside) == before
    assert check_tree(str(sealed)) == []


def test_machine_id_link_is_replaced_by_an_empty_file_not_truncated_through(sealed, outside):
    before = snapshot(outside)
    os.unlink(str(sealed / "etc/machine-id"))
    plant(sealed, "etc/machine-id", outside / "machine-id")
    assert [(f["path"], f["action"]) for f in check_tree(str(sealed))] == [("/etc/machine-id", "empty")]
    seal_tree(str(sealed))
    mid = str(sealed / "etc/machine-id")
    assert not os.path.islink(mid) and os.path.getsize(mid) == 0
    assert snapshot(outside) == before
    assert check_tree(str(sealed)) == []


def test_etc_as_a_link_is_reported_once_and_nothing_outside_changes(sealed, outside):
    before = snapshot(outside)
    shutil.rmtree(str(sealed / "etc"))
    plant(sealed, "etc", outside)
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/etc", "remove")]
    seal_tree(str(sealed))
    assert not os.path.lexists(str(sealed / "etc"))
    assert snapshot(outside) == before


def test_links_inside_a_removed_directory_are_unlinked_not_followed(sealed, outside):
    before = snapshot(outside)
    write(sealed, "root/.ssh/keys/id_rsa")
    os.symlink(str(outside), str(sealed / "root/.ssh/keys/dirlink"))
    os.symlink(str(outside / "authorized_keys"), str(sealed / "root/.ssh/authorized_keys"))
    assert paths(check_tree(str(sealed))) == ["/root/.ssh/authorized_keys", "/root/.ssh/keys"]
    seal_tree(str(sealed))
    assert os.listdir(str(sealed / "root/.ssh")) == []
    assert snapshot(outside) == before


def test_check_mode_leaves_links_alone(sealed, outside):
    path = plant(sealed, "root/.ssh", outside)
    assert paths(seal_tree(str(sealed), check_mode=True)) == ["/root/.ssh"]
    assert os.path.islink(path)


def test_fifo_in_var_log_is_removed_without_blocking(sealed):
    fifo = str(sealed / "var/log/pipe")
    os.mkfifo(fifo)
    found = check_tree(str(sealed))
    assert [(f["path"], f["action"]) for f in found] == [("/var/log/pipe", "remove")]
    seal_tree(str(sealed))
    assert not os.path.lexists(fifo)


def test_link_swapped_in_after_the_check_is_refused_not_followed(sealed, outside):
    """The seal opens every directory with O_NOFOLLOW: a directory replaced by a link between
    check_tree and the change makes it fail, never write outside."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import image_seal
    before = snapshot(outside)
    write(sealed, "root/.ssh/authorized_keys")
    shutil.rmtree(str(sealed / "root/.ssh"))
    os.symlink(str(outside), str(sealed / "root/.ssh"))
    with pytest.raises(OSError):
        image_seal._remove(str(sealed), "root/.ssh/authorized_keys")
    with pytest.raises(OSError):
        image_seal._empty(str(sealed), "root/.ssh/x.log", create=False)
    assert snapshot(outside) == before


# --- offline check of an image file (real mkfs.ext4 and debugfs) -----------------------------------------

HAVE_IMAGE_TOOLS = all(shutil.which(t) for t in ("qemu-img", "debugfs", "mkfs.ext4", "truncate"))
needs_image_tools = pytest.mark.skipif(not HAVE_IMAGE_TOOLS, reason="needs qemu-utils and e2fsprogs")


def _run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


def _image_of(tree, tmp_path):
    raw = str(tmp_path / "disk.raw")
    subprocess.run(["truncate", "-s", "16M", raw], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), raw], check=True)
    return raw


@needs_image_tools
def test_image_check_sees_links_as_links_like_the_tree_check(sealed, tmp_path_factory):
    """debugfs 'dump' wrote a link as an empty regular file: a machine-id linked to a fixed ID passed
    offline and a D-Bus copy linked to /etc/machine-id failed. The image check must agree with the tree check."""
    work = tmp_path_factory.mktemp("work")
    assert image_seal.verify_image(_image_of(sealed, work), _run, work_dir=str(work), fmt="raw") == []
    os.unlink(str(sealed / "etc/machine-id"))
    write(sealed, "var/lib/ident/id", "0123456789abcdef0123456789abcdef\n", 0o444)
    os.symlink("/var/lib/ident/id", str(sealed / "etc/machine-id"))
    write(sealed, "var/cache/debconf/passwords.real", "Value: hunter2\n", 0o600)
    os.symlink("passwords.real", str(sealed / "var/cache/debconf/passwords.dat"))
    expected = [(f["path"], f["action"]) for f in check_tree(str(sealed))]
    assert expected == [("/etc/machine-id", "empty"), ("/var/cache/debconf/passwords.dat", "remove")]
    work = tmp_path_factory.mktemp("work2")
    found = image_seal.verify_image(_image_of(sealed, work), _run, work_dir=str(work), fmt="raw")
    assert [(f["path"], f["action"]) for f in found] == expected
    assert "symbolic link to passwords.real" in found[1]["reason"]
    assert os.listdir(str(work)) == ["disk.raw"]  # nothing followed or left on the host


def test_debugfs_error_output_is_an_image_error_absent_paths_are_not(tmp_path):
    """debugfs -f exits 0 whatever happens: its error output is checked (only absent seal paths are normal)."""
    banner = "debugfs 1.47.0 (5-Feb-2023)\n"
    absent = "/var/lib/dbus/machine-id: File not found by ext2_lookup \n"
    assert image_seal.debugfs_errors(banner + absent) == []
    bad = "rdump: EXT2 directory corrupted while reading directory /etc/ssh\n"
    assert image_seal.debugfs_errors(banner + absent + bad) == [bad.strip()]
    assert image_seal.debugfs_errors("/etc/shadow: File not found by ext2_lookup \n") != []

    def fake(argv):
        if argv[1] == "info":
            return 0, '{"format": "raw"}', ""
        if argv[1] == "-R":
            return 0, "Filesystem magic number:  0xEF53\n", banner
        return 0, "", banner + bad

    with pytest.raises(image_seal.ImageError, match="directory corrupted"):
        image_seal.verify_image(str(tmp_path / "x.raw"), fake, work_dir=str(tmp_path))
    assert os.listdir(str(tmp_path)) == []
