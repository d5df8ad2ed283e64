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


def test_a_locked_password_and_a_nologin_shell_do_not_close_an_account_expiry_does(tmp_path):
    """usermod -L -s /usr/sbin/nologin: sshd (UsePAM yes) still takes the account's SSH key, and "ssh -N" forwards ports
    without a shell. Only an expiry date in the past (pam_unix's account check) closes every way in."""
    passwd = "svc:x:1001:1001::/home/svc:/usr/sbin/nologin\nold:x:1002:1002::/home/old:/usr/sbin/nologin\n"
    shadow = "svc:!%s:20000:0:99999:7:::\nold:!%s:20000:0:99999:7::1:\n" % (HASH, HASH)
    accounts, err = guestscan.read_accounts(tree(tmp_path, passwd=passwd, shadow=shadow), today=20100)
    by = dict((a["name"], a) for a in accounts)
    assert by["svc"]["password_locked"] and by["svc"]["shell"] == "/usr/sbin/nologin" and not by["svc"]["locked"]
    assert by["old"]["locked"] and by["old"]["expired"]


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
        # The system Python, as a guest's, with the collection's module_utils on its path as AnsiballZ ships them.
        script = (
            "import json, sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan as m\n"
            "print(json.dumps(m.read_accounts(sys.argv[2], today=20100)))\n")
        collections = guestscan.__file__
        for dummy in range(7):  # <collections>/ansible_collections/vmguard/hardening/plugins/module_utils/evidence/x.py
            collections = os.path.dirname(collections)

        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        p = subprocess.run([SYSTEM_PYTHON, "-c", script, collections, root],
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


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)


def test_private_host_key_without_its_pub_is_an_error_not_no_keys(tmp_path):
    # sshd needs only the private key: a tree with ssh_host_ed25519_key and no .pub has a key in use.
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    keygen(ssh / "ssh_host_ed25519_key")
    (ssh / "ssh_host_ed25519_key.pub").unlink()
    (ssh / "sshd_config").write_text("HostKey /etc/ssh/ssh_host_ed25519_key\n")
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "/etc/ssh/ssh_host_ed25519_key without its .pub" in err
    assert guestscan.ssh_host_keys(str(tmp_path)) is None
    keygen(ssh / "ssh_host_ecdsa_key")  # a complete pair next to it does not hide the unpaired one
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "ssh_host_ed25519_key" in err and "ssh_host_ecdsa_key" not in err
    os.unlink(str(ssh / "ssh_host_ed25519_key"))
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert err is None and [k["file"] for k in keys] == ["/etc/ssh/ssh_host_ecdsa_key.pub"]
    # The fingerprint is the one ssh-keygen prints.
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(ssh / "ssh_host_ecdsa_key.pub")], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert out.split()[1] == keys[0]["fingerprint"]


def test_host_keys_sshd_config_names_elsewhere_are_read_too(tmp_path):
    """HostKey /srv/keys/host_ed25519 (in sshd_config or a file it Includes): sshd serves that key, so DIV-02 and RB-06
    must compare it, not only /etc/ssh/ssh_host_*; a served key without its .pub cannot be fingerprinted: an error."""
    ssh = tmp_path / "etc" / "ssh"
    (ssh / "sshd_config.d").mkdir(parents=True)
    keys_dir = tmp_path / "srv" / "keys"
    keys_dir.mkdir(parents=True)
    keygen(ssh / "ssh_host_ecdsa_key")
    keygen(keys_dir / "host_ed25519")
    (ssh / "sshd_config").write_text("# Debian's\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\n")
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert err is None and [k["file"] for k in keys] == ["/etc/ssh/ssh_host_ecdsa_key.pub"]
    (ssh / "sshd_config.d" / "golden.conf").write_text('HostKey "/srv/keys/host_ed25519"\nhostkey /etc/ssh/ssh_host_ecdsa_key\n')
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert err is None and [k["file"] for k in keys] == ["/etc/ssh/ssh_host_ecdsa_key.pub", "/srv/keys/host_ed25519.pub"]
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(keys_dir / "host_ed25519.pub")], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert keys[1]["fingerprint"] == out.split()[1] and keys[1]["type"] == "ssh-ed25519"
    (keys_dir / "host_ed25519.pub").unlink()
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "/srv/keys/host_ed25519 (a HostKey of sshd_config) has no /srv/keys/host_ed25519.pub" in err
    (keys_dir / "host_ed25519").unlink()  # named but absent: sshd skips it
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert err is None and [k["file"] for k in keys] == ["/etc/ssh/ssh_host_ecdsa_key.pub"]
    # A configuration file that cannot be read (a link, not followed) may name a served key: an error, never fewer keys.
    (ssh / "sshd_config.d" / "golden.conf").unlink()
    (ssh / "sshd_config.d" / "golden.conf").symlink_to("/etc/hostname")
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "cannot read /etc/ssh/sshd_config.d/golden.conf" in err


def test_json_file_tells_missing_from_unreadable(tmp_path):
    etc = tmp_path / "etc" / "vmguard"
    etc.mkdir(parents=True)
    root = str(tmp_path)
    assert guestscan.json_file(root, "/etc/vmguard/lineage.json") is None  # missing: no record
    (etc / "lineage.json").write_text('{"build_id": "b1", "build_time": "2026-11-01T00:00:00Z"}')
    assert guestscan.json_file(root, "/etc/vmguard/lineage.json")["build_id"] == "b1"
    (etc / "lineage.json").write_text('{"build_id": ')
    assert guestscan.json_file(root, "/etc/vmguard/lineage.json") == {"error": "unparsable /etc/vmguard/lineage.json"}
    (etc / "lineage.json").unlink()
    (etc / "lineage.json").mkdir()  # there, but no file to read (even as root)
    got = guestscan.json_file(root, "/etc/vmguard/lineage.json")
    assert got == {"error": "/etc/vmguard/lineage.json exists but cannot be read: it is a directory"}
    epoch, err = guestscan.epoch("/etc/vmguard/lineage.json", root=root)
    assert epoch is None and "cannot be read" in err


def outside_file(tmp_path, name, data):
    outside = tmp_path / "host"
    outside.mkdir(exist_ok=True)
    (outside / name).write_bytes(data)
    return str(outside / name)


def test_a_final_symbolic_link_is_never_followed(tmp_path):
    """An offline image (identity_reseal's plan) whose identity files link to the host's files: each reader
    refuses the link, naming it, and reports the evidence unreadable rather than reading the host."""
    img = tmp_path / "img"
    for d in ("etc/ssh", "etc/vmguard", "var/lib/systemd", "var/lib/dbus"):
        (img / d).mkdir(parents=True)
    root = str(img)
    os.symlink(outside_file(tmp_path, "machine-id", b"0123456789abcdef0123456789abcdef\n"), str(img / "etc/machine-id"))
    got = guestscan.machine_id(root)
    assert got["machine_id_state"] == "unreadable" and got["machine_id_digest"] is None
    assert got["machine_id_error"] == "/etc/machine-id is a symbolic link: not followed"
    os.symlink(outside_file(tmp_path, "seed", b"\x07" * 512), str(img / "var/lib/systemd/random-seed"))
    got = guestscan.random_seed(root)
    assert got["random_seed_digest"] is None and "symbolic link" in got["random_seed_error"]
    os.symlink(outside_file(tmp_path, "shadow", SHADOW.encode()), str(img / "etc/shadow"))
    (img / "etc/passwd").write_text(PASSWD)
    accounts, err = guestscan.read_accounts(root, today=20100)
    assert accounts is None and err == "/etc/shadow is a symbolic link: not followed"
    keygen(tmp_path / "host" / "ssh_host_ed25519_key")
    os.symlink(str(tmp_path / "host" / "ssh_host_ed25519_key.pub"), str(img / "etc/ssh/ssh_host_ed25519_key.pub"))
    (img / "etc/ssh/ssh_host_ed25519_key").write_text("private\n")
    keys, err = guestscan.read_ssh_host_keys(root)
    assert keys is None and "ssh_host_ed25519_key.pub is a symbolic link" in err
    os.symlink(outside_file(tmp_path, "lineage.json", b'{"build_id": "host"}'), str(img / "etc/vmguard/lineage.json"))
    assert "symbolic link" in guestscan.json_file(root, "/etc/vmguard/lineage.json")["error"]
    os.symlink("/nonexistent", str(img / "etc/passwd.dangling"))
    assert guestscan._read_file(root, "/etc/passwd.dangling") == (None, "/etc/passwd.dangling is a symbolic link: not followed")


def test_the_real_files_are_read_and_a_dbus_link_to_the_machine_id_is_its_digest(tmp_path):
    for d in ("etc", "var/lib/systemd", "var/lib/dbus"):
        (tmp_path / d).mkdir(parents=True)
    root = str(tmp_path)
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    os.symlink("/etc/machine-id", str(tmp_path / "var/lib/dbus/machine-id"))  # as Debian installs it
    got = guestscan.machine_id(root)
    assert got["machine_id_state"] == "set" and got["machine_id_digest"] == guestscan.sha256("0123456789abcdef0123456789abcdef")
    assert got["dbus_machine_id_digest"] == got["machine_id_digest"]
    os.unlink(str(tmp_path / "var/lib/dbus/machine-id"))
    os.symlink("../../../etc/machine-id", str(tmp_path / "var/lib/dbus/machine-id"))
    assert guestscan.machine_id(root)["dbus_machine_id_digest"] == got["machine_id_digest"]
    os.unlink(str(tmp_path / "var/lib/dbus/machine-id"))
    os.symlink("/etc/shadow", str(tmp_path / "var/lib/dbus/machine-id"))
    assert guestscan.machine_id(root)["dbus_machine_id_digest"] is None


def test_a_fifo_is_refused_without_blocking(tmp_path):
    d = tmp_path / "var" / "lib" / "systemd"
    d.mkdir(parents=True)
    os.mkfifo(str(d / "random-seed"))  # opening it for reading would wait for a writer
    got = guestscan.random_seed(str(tmp_path))
    assert got["random_seed_digest"] is None and "it is a FIFO" in got["random_seed_error"]


def test_an_image_whose_directory_links_out_is_never_read_through(tmp_path):
    """An offline image (identity_reseal's plan reads one) with etc -> a directory outside it: the outside files
    (here standing for the host's /etc) are refused, named, never read as the image's."""
    outside = tmp_path / "host-etc"
    (outside / "ssh").mkdir(parents=True)
    (outside / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (outside / "passwd").write_text(PASSWD)
    (outside / "shadow").write_text(SHADOW)
    image = tmp_path / "image"
    image.mkdir()
    (image / "etc").symlink_to(outside)
    mid = guestscan.machine_id(str(image))
    assert mid["machine_id_state"] == "unreadable" and "symbolic link" in mid["machine_id_error"]
    assert guestscan.sha256("0123456789abcdef0123456789abcdef") not in repr(mid)
    keys, err = guestscan.read_ssh_host_keys(str(image))
    assert keys is None and "symbolic link" in err
    accounts, err = guestscan.read_accounts(str(image), today=20100)
    assert accounts is None and "symbolic link" in err
    # The same files in a real directory of the image are read.
    (image / "etc").unlink()
    shutil.copytree(str(outside), str(image / "etc"))
    assert guestscan.machine_id(str(image))["machine_id_state"] == "set"
    assert guestscan.read_ssh_host_keys(str(image)) == ([], None)


def test_duplicate_account_lines_keep_the_first_as_glibc_does():
    # getpwnam/getspnam (login, sshd) use the FIRST line of a name: a second, locked line must not make a
    # usable account look locked. The duplicate is noted, never silently dropped.
    passwd = ("root:x:0:0:root:/root:/bin/bash\n"
              "games:x:5:60:games:/usr/games:/bin/bash\n"
              "games:x:5:60:games:/usr/games:/usr/sbin/nologin\n")
    shadow = ("root:!:19000:0:99999:7:::\n"
              "games:%s:19000:0:99999:7:::\n"
              "games:!:19000:0:99999:7::1:\n" % HASH)
    accounts = guestscan._accounts(passwd, shadow, today=20000)
    games = [a for a in accounts if a["name"] == "games"]
    assert len(games) == 1
    (g,) = games
    assert g["shell"] == "/bin/bash" and not g["locked"] and not g["password_locked"] and not g["expired"]
    assert g["hash_digest"] == guestscan.sha256(HASH)
    assert g["duplicate_lines"] == {"passwd": 1, "shadow": 1}
    assert "duplicate_lines" not in [a for a in accounts if a["name"] == "root"][0]


@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_empty_pub_beside_a_private_host_key_is_an_error_not_no_keys(tmp_path, content):
    """An empty .pub hid a shared private key (DIV-02 not_applicable): like a missing .pub, an error naming it."""
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    keygen(ssh / "ssh_host_ed25519_key")
    (ssh / "ssh_host_ed25519_key.pub").write_text(content)
    keys, err = guestscan.read_ssh_host_keys(str(tmp_path))
    assert keys is None and "/etc/ssh/ssh_host_ed25519_key.pub is empty beside its private key" in err
    os.unlink(str(ssh / "ssh_host_ed25519_key"))  # a stray empty .pub with no key: no key served
    assert guestscan.read_ssh_host_keys(str(tmp_path)) == ([], None)


# --- DIV-03: every crypt string is compared, not only '$id$' ones ----------------------------------------------

DES = "abJnggxhB/yWI"  # traditional DES crypt (13 characters of [./0-9A-Za-z])
BSDI = "_J9..CCCCXBrJUJV154M"  # BSDi extended DES: '_', 4 of count, 4 of salt, 11 of hash
BIGCRYPT = "abJnggxhB/yWIabcdefghijk"  # bigcrypt: DES and 11 more per 8 characters of password
LOCKS = ["", "x", "!", "!!", "*", "*LK*", "!*", "!!!"]


@pytest.mark.parametrize("pw", [DES, BSDI, BIGCRYPT, HASH, "$y$j9T$salt$hash", "$2b$12$" + "a" * 53])
def test_every_crypt_string_is_digested(pw):
    (acct,) = guestscan._accounts("ops:x:1001:1001::/home/ops:/bin/bash\n", "ops:%s:19000:0:99999:7:::\n" % pw,
                                  today=20000)
    assert acct["hash_digest"] == guestscan.sha256(pw) and not acct["password_locked"]
    assert "locked_hash_digest" not in acct and pw not in repr(acct)


@pytest.mark.parametrize("pw", LOCKS)
def test_no_password_and_lock_markers_are_no_hash(pw):
    (acct,) = guestscan._accounts("ops:x:1001:1001::/home/ops:/bin/bash\n", "ops:%s:19000:0:99999:7:::\n" % pw,
                                  today=20000)
    assert acct["hash_digest"] is None and "locked_hash_digest" not in acct


@pytest.mark.parametrize("lock", ["!", "!!"])
@pytest.mark.parametrize("pw", [DES, HASH])
def test_a_locked_hash_is_digested_apart_as_the_hash_unlocking_gives_back(lock, pw):
    (acct,) = guestscan._accounts("ops:x:1001:1001::/home/ops:/bin/bash\n",
                                  "ops:%s%s:19000:0:99999:7:::\n" % (lock, pw), today=20000)
    assert acct["password_locked"] and acct["hash_digest"] is None
    assert acct["locked_hash_digest"] == guestscan.sha256(pw) and pw not in repr(acct)


def test_div03_fails_two_guests_sharing_a_des_crypt_string():
    from tests.unit.rules import evidence as E
    passwd = "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n" \
             "deploy:x:1001:1001::/home/deploy:/bin/bash\n"
    guests = {}
    for n in (1, 2):
        shadow = "root:!:19000:0:99999:7:::\nadmin:$6$salt%d$%s:19000:0:99999:7:::\n" \
                 "deploy:%s:19000:0:99999:7:::\n" % (n, "h" * 21, DES)
        accounts = guestscan._accounts(passwd, shadow, today=20000)
        guests["web%d" % n] = E.guest("web%d" % n, facts=E.guest_facts(n, accounts=accounts))
    found = E.run("DIV-03", E.fleet([E.domain("web1"), E.domain("web2")], guests=guests))
    assert [(f["subject"]["id"], f["status"]) for f in found] == [("web1", "fail"), ("web2", "fail")]
    assert all("password hash of deploy identical" in f["message"] for f in found)
