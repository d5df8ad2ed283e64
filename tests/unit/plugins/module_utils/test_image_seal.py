"""DIV-06 seal checks on real directory trees built in tmp_path."""

import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.image_seal import check_tree, seal_tree


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
