"""guestscan.accounts on real directory trees: a missing shadow is read from passwd alone, a shadow that
exists but cannot be read is no evidence (None and the reason), never "every account password-locked"."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan

PASSWD = """root:x:0:0:root:/root:/bin/bash
games:x:5:60:games:/usr/games:/usr/sbin/nologin
admin:x:1000:1000:Admin,,,:/home/admin:/bin/bash
broken line
"""
HASH = "$6$rounds=5000$Zq1bS8n1$8vT8xW0v2Qk1Yw3bD2m7Lr1Jg0bYc6pN7dF9sK3hA5uE2tR4yI8oP1aS3dF5gH7jK9lZ1xC3vB5nM7qW9eR1t"
SHADOW = """root:*:20000:0:99999:7:::
games:*:20000:0:99999:7::1:
admin:%s:20000:0:99999:7:::
""" % HASH


def tree(tmp_path, passwd=PASSWD, shadow=SHADOW):
    etc = tmp_path / "etc"
    etc.mkdir()
    if passwd is not None:
        (etc / "passwd").write_text(passwd)
    if shadow is not None:
        (etc / "shadow").write_text(shadow)
        os.chmod(str(etc / "shadow"), 0o640)
    return str(tmp_path)


def test_accounts_read_with_shadow(tmp_path):
    accounts, err = guestscan.read_accounts(tree(tmp_path), today=20100)
    assert err is None
    by = dict((a["name"], a) for a in accounts)
    assert sorted(by) == ["admin", "games", "root"]
    assert by["admin"]["hash_digest"] == guestscan.sha256(HASH) and not by["admin"]["password_locked"]
    assert HASH not in repr(accounts)
    assert by["games"]["locked"] and by["games"]["expired"]
    assert by["root"]["password_locked"] and by["root"]["hash_digest"] is None


def test_no_shadow_is_read_from_passwd_alone(tmp_path):
    accounts, err = guestscan.read_accounts(tree(tmp_path, shadow=None), today=20100)
    assert err is None and len(accounts) == 3
    assert all(a["hash_digest"] is None for a in accounts)


def test_shadow_that_exists_but_cannot_be_read_is_no_evidence(tmp_path):
    root = tree(tmp_path, shadow=None)
    os.mkdir(os.path.join(root, "etc/shadow"))  # exists, cannot be read as a file (EISDIR), even by root
    accounts, err = guestscan.read_accounts(root, today=20100)
    assert accounts is None
    assert err.startswith("/etc/shadow exists but cannot be read")
    assert guestscan.accounts(root) is None


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root to drop to nobody, and a system python3 nobody can run")
def test_shadow_permission_denied_as_an_unprivileged_user():
    """The real case: guest_facts without become. Run the reader as nobody on a root-only shadow."""
    base = tempfile.mkdtemp(prefix="vmg-guestscan-")
    try:
        os.chmod(base, 0o755)
        root = tree(pathlib.Path(base))
        os.chmod(os.path.join(root, "etc/passwd"), 0o644)
        os.chmod(os.path.join(root, "etc/shadow"), 0o600)
        script = (
            "import importlib.util, json, sys\n"
            "spec = importlib.util.spec_from_file_location('guestscan', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(json.dumps(m.read_accounts(sys.argv[2], today=20100)))\n")

        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        p = subprocess.run([SYSTEM_PYTHON, "-c", script, os.path.realpath(guestscan.__file__), root],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           preexec_fn=drop, check=False, cwd="/")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == '[null, "/etc/shadow exists but cannot be read: Permission denied"]'
    finally:
        shutil.rmtree(base)


def test_passwd_missing_is_no_evidence(tmp_path):
    accounts, err = guestscan.read_accounts(tree(tmp_path, passwd=None, shadow=None))
    assert accounts is None and "/etc/passwd" in err


def test_host_keys_missing_dir_unreadable_key_and_garbage(tmp_path):
    assert guestscan.read_ssh_host_keys(str(tmp_path)) == ([], None)  # no SSH server at all
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "ssh_host_ed25519_key")], check=True)
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert err is None and len(keys) == 1 and keys[0]["fingerprint"].startswith("SHA256:")
    (ssh / "ssh_host_rsa_key.pub").mkdir()  # exists, cannot be read as a file
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "ssh_host_rsa_key.pub" in err
    (ssh / "ssh_host_rsa_key.pub").rmdir()
    (ssh / "ssh_host_rsa_key.pub").write_text("not-a-key\n")
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "not an OpenSSH public key" in err
    assert guestscan.ssh_host_keys(str(tmp_path)) is None


def test_random_seed_missing_read_and_unreadable(tmp_path):
    assert guestscan.random_seed(str(tmp_path)) == {"random_seed_digest": None, "random_seed_error": None}
    d = tmp_path / "var" / "lib" / "systemd"
    d.mkdir(parents=True)
    (d / "random-seed").write_bytes(b"\x01" * 512)
    got = guestscan.random_seed(str(tmp_path))
    assert got["random_seed_error"] is None and len(got["random_seed_digest"]) == 64
    (d / "random-seed").unlink()
    (d / "random-seed").mkdir()
    got = guestscan.random_seed(str(tmp_path))
    assert got["random_seed_digest"] is None and "random-seed" in got["random_seed_error"]


@pytest.mark.parametrize("content,epoch,error", [
    (None, None, None),
    ('{"epoch": 4}', 4, None),
    ('{not json', None, "unparsable"),
    ('[4]', None, "not a JSON object"),
    ('{"epoch": "4"}', None, "not a non-negative integer"),
    ('{"epoch": true}', None, "not a non-negative integer"),
    ('{"epoch": -1}', None, "not a non-negative integer"),
])
def test_epoch_file(tmp_path, content, epoch, error):
    if content is not None:
        (tmp_path / "epoch.json").write_text(content)
    got_epoch, got_error = guestscan.epoch("/epoch.json", root=str(tmp_path))
    assert got_epoch == epoch
    assert (got_error is None) if error is None else (error in got_error)
