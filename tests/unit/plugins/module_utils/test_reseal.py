"""Reseal on real directory trees with the real ssh-keygen: only duplicated items change, the
old fingerprints come back for the ledger, and a second run with the same evidence is a no-op."""

import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import reseal

needs_keygen = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen (openssh-client)")


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def guest(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc/ssh"))
    os.makedirs(os.path.join(root, "var/lib/systemd"))
    os.makedirs(os.path.join(root, "var/lib/dbus"))
    with open(os.path.join(root, "etc/machine-id"), "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    with open(os.path.join(root, "var/lib/dbus/machine-id"), "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    with open(os.path.join(root, "var/lib/systemd/random-seed"), "wb") as f:
        f.write(b"\x01" * 512)
    if shutil.which("ssh-keygen"):
        for t in ("ed25519", "ecdsa"):
            rc, out, err = run(["ssh-keygen", "-q", "-t", t, "-N", "", "-f", os.path.join(root, "etc/ssh/ssh_host_%s_key" % t)])
            assert rc == 0, err
    return root


def duplicated(root, what=("machine_id", "ssh", "seed")):
    d = {}
    if "machine_id" in what:
        d["machine_id_digest"] = guestscan.machine_id(root)["machine_id_digest"]
    if "ssh" in what:
        d["ssh_fingerprints"] = [k["fingerprint"] for k in guestscan.ssh_host_keys(root) if k["type"] == "ssh-ed25519"]
    if "seed" in what:
        d["random_seed_digest"] = guestscan.random_seed(root)["random_seed_digest"]
    return d


def test_plan_only_matches_duplicated_values(guest):
    assert reseal.plan(guest, {}) == {}
    assert reseal.plan(guest, {"machine_id_digest": "0" * 64, "ssh_fingerprints": ["SHA256:nope"]}) == {}
    todo = reseal.plan(guest, duplicated(guest, ("machine_id", "seed")))
    assert sorted(todo) == ["machine_id", "random_seed"]
    assert sorted(reseal.plan(guest, {}, force=["all"])) == ["machine_id", "random_seed", "ssh_host_keys"]


def test_machine_id_and_dbus_link(guest):
    old = guestscan.machine_id(guest)["machine_id_digest"]
    out = reseal.reseal_machine_id(guest)
    assert out["old_digest"] == old and out["new_digest"] != old
    assert guestscan.machine_id(guest)["machine_id_digest"] == out["new_digest"]
    assert os.readlink(os.path.join(guest, "var/lib/dbus/machine-id")) == "/etc/machine-id"
    with open(os.path.join(guest, "etc/machine-id")) as f:
        assert len(f.read().strip()) == 32


def test_random_seed(guest):
    old = guestscan.random_seed(guest)["random_seed_digest"]
    out = reseal.reseal_random_seed(guest)
    assert out["new_digest"] != old
    assert os.stat(os.path.join(guest, "var/lib/systemd/random-seed")).st_mode & 0o777 == 0o600


@needs_keygen
def test_host_keys_rotate_only_the_shared_one(guest):
    before = dict((k["type"], k["fingerprint"]) for k in guestscan.ssh_host_keys(guest))
    dup = duplicated(guest, ("ssh",))
    todo = reseal.plan(guest, dup)
    rotated = reseal.reseal_host_keys(guest, todo["ssh_host_keys"], run)
    reseal.commit_host_keys(guest, rotated)
    after = dict((k["type"], k["fingerprint"]) for k in guestscan.ssh_host_keys(guest))
    assert [r["old_fingerprint"] for r in rotated] == [before["ssh-ed25519"]]
    assert after["ssh-ed25519"] == rotated[0]["new_fingerprint"] != before["ssh-ed25519"]
    assert after["ecdsa-sha2-nistp256"] == before["ecdsa-sha2-nistp256"]
    assert not [f for f in os.listdir(os.path.join(guest, "etc/ssh")) if "vmguard" in f]
    assert os.stat(os.path.join(guest, "etc/ssh/ssh_host_ed25519_key")).st_mode & 0o777 == 0o600
    # Same evidence again: nothing left to do.
    assert reseal.plan(guest, dup) == {}


@needs_keygen
def test_rollback_restores_the_old_keys(guest):
    before = guestscan.ssh_host_keys(guest)
    rotated = reseal.reseal_host_keys(guest, before, run)
    reseal.rollback_host_keys(guest, rotated)
    assert guestscan.ssh_host_keys(guest) == before


def test_unknown_key_type_is_refused(guest):
    with pytest.raises(ValueError):
        reseal.reseal_host_keys(guest, [{"type": "ssh-dss", "file": "/etc/ssh/ssh_host_dsa_key.pub",
                                         "fingerprint": "SHA256:x"}], run)


# --- No predictable temporary name, no write through a link (issue "Trustworthy audit", section 5) ---

@pytest.fixture
def canary(tmp_path_factory):
    p = tmp_path_factory.mktemp("outside") / "canary"
    p.write_text("canary\n")
    os.utime(str(p), (1000000000, 1000000000))
    return p


def untouched(p):
    return p.read_text() == "canary\n" and os.stat(str(p)).st_mtime == 1000000000


@pytest.mark.parametrize("rel,call", [
    ("etc/machine-id", reseal.reseal_machine_id),
    ("var/lib/systemd/random-seed", reseal.reseal_random_seed),
])
def test_planted_temporary_link_is_never_written_through(guest, canary, rel, call):
    os.symlink(str(canary), os.path.join(guest, rel + ".vmguard-new"))
    call(guest)
    assert untouched(canary)
    assert not os.path.islink(os.path.join(guest, rel))
    leftovers = [n for n in os.listdir(os.path.dirname(os.path.join(guest, rel))) if "vmguard-tmp" in n]
    assert leftovers == []


@pytest.mark.parametrize("rel,call", [
    ("etc/machine-id", reseal.reseal_machine_id),
    ("var/lib/systemd/random-seed", reseal.reseal_random_seed),
])
def test_target_that_is_a_link_is_refused(guest, canary, rel, call):
    target = os.path.join(guest, rel)
    os.unlink(target)
    os.symlink(str(canary), target)
    with pytest.raises(ValueError) as e:
        call(guest)
    assert target in str(e.value) and "symbolic link" in str(e.value)
    assert untouched(canary) and os.path.islink(target)


@needs_keygen
def test_host_keys_never_generated_at_a_predictable_name(guest, canary, tmp_path_factory):
    victim = tmp_path_factory.mktemp("victim") / "created-through-link"
    priv = os.path.join(guest, "etc/ssh/ssh_host_ed25519_key")
    os.symlink(str(victim), priv + ".vmguard-new")          # dangling: ssh-keygen would create it
    os.symlink(str(canary), priv + ".vmguard-new.pub")
    keys = [k for k in guestscan.ssh_host_keys(guest) if k["type"] == "ssh-ed25519"]
    rotated = reseal.reseal_host_keys(guest, keys, run)
    reseal.commit_host_keys(guest, rotated)
    assert not os.path.lexists(str(victim)) and untouched(canary)
    assert rotated[0]["new_fingerprint"] in [k["fingerprint"] for k in guestscan.ssh_host_keys(guest)]
    assert not [n for n in os.listdir(os.path.join(guest, "etc/ssh")) if n.startswith(".vmguard-keygen")]


# --- No directory component followed out of the tree (identity_reseal root= an offline image) ---

def snapshot(top):
    """Every entry under ``top`` (links not followed): kind, content or link target, mode, mtime."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                what = ("link", os.readlink(path))
            elif os.path.isdir(path):
                what = ("dir", None)
            else:
                with open(path, "rb") as f:
                    what = ("file", f.read())
            seen[os.path.relpath(path, top)] = (what, st.st_mode, st.st_mtime_ns)
    return seen


@pytest.fixture
def outside(tmp_path_factory):
    """A tree outside the image with the same layout: what a link in the image would lead to."""
    top = str(tmp_path_factory.mktemp("outside-tree"))
    for d in ("etc/ssh", "var/lib/systemd", "var/lib/dbus"):
        os.makedirs(os.path.join(top, d))
    for rel, data in (("etc/machine-id", b"fedcba9876543210fedcba9876543210\n"),
                      ("var/lib/dbus/machine-id", b"fedcba9876543210fedcba9876543210\n"),
                      ("var/lib/systemd/random-seed", b"\x02" * 512)):
        with open(os.path.join(top, rel), "wb") as f:
            f.write(data)
    if shutil.which("ssh-keygen"):
        rc, out, err = run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(top, "etc/ssh/ssh_host_ed25519_key")])
        assert rc == 0, err
    return top


def link_out(guest, outside, rel):
    """Replace guest/rel (a directory) by a symbolic link to the same directory of the outside tree."""
    shutil.rmtree(os.path.join(guest, rel))
    os.symlink(os.path.join(outside, rel), os.path.join(guest, rel))


def refusal(guest, rel):
    return "^%s is a symbolic link: refusing to follow it out of the image$" % re.escape(os.path.join(guest, rel))


@pytest.mark.parametrize("rel", ["etc", "var", "var/lib", "var/lib/dbus"])
def test_machine_id_never_follows_a_linked_directory(guest, outside, rel):
    link_out(guest, outside, rel)
    before, image = snapshot(outside), snapshot(guest)
    with pytest.raises(ValueError, match=refusal(guest, rel)):
        reseal.reseal_machine_id(guest)
    assert snapshot(outside) == before
    assert snapshot(guest) == image  # refused before anything changed, /etc/machine-id too


@pytest.mark.parametrize("rel", ["var", "var/lib", "var/lib/systemd"])
def test_random_seed_never_follows_a_linked_directory(guest, outside, rel):
    link_out(guest, outside, rel)
    before, image = snapshot(outside), snapshot(guest)
    with pytest.raises(ValueError, match=refusal(guest, rel)):
        reseal.reseal_random_seed(guest)
    assert snapshot(outside) == before and snapshot(guest) == image


def test_random_seed_never_creates_a_directory_through_a_link(guest, outside):
    shutil.rmtree(os.path.join(outside, "var/lib/systemd"))
    link_out(guest, outside, "var/lib")
    before = snapshot(outside)
    with pytest.raises(ValueError, match=refusal(guest, "var/lib")):
        reseal.reseal_random_seed(guest)
    assert snapshot(outside) == before


def test_random_seed_creates_missing_directories(guest):
    shutil.rmtree(os.path.join(guest, "var"))
    out = reseal.reseal_random_seed(guest)
    assert out["new_digest"] is not None
    assert out["new_digest"] == guestscan.random_seed(guest)["random_seed_digest"]
    assert os.stat(os.path.join(guest, "var/lib/systemd")).st_mode & 0o777 == 0o755


def test_dbus_copy_that_links_out_is_replaced_as_a_link(guest, outside):
    dbus = os.path.join(guest, "var/lib/dbus/machine-id")
    os.unlink(dbus)
    os.symlink(os.path.join(outside, "var/lib/dbus/machine-id"), dbus)
    before = snapshot(outside)
    out = reseal.reseal_machine_id(guest)
    assert snapshot(outside) == before
    assert os.readlink(dbus) == "/etc/machine-id"
    assert guestscan.machine_id(guest)["machine_id_digest"] == out["new_digest"]


@needs_keygen
@pytest.mark.parametrize("rel", ["etc", "etc/ssh"])
def test_host_keys_never_follow_a_linked_directory(guest, outside, rel):
    keys = [k for k in guestscan.ssh_host_keys(guest) if k["type"] == "ssh-ed25519"]
    link_out(guest, outside, rel)
    before, image = snapshot(outside), snapshot(guest)
    with pytest.raises(ValueError, match=refusal(guest, rel)):
        reseal.reseal_host_keys(guest, keys, run)
    assert snapshot(outside) == before and snapshot(guest) == image


@needs_keygen
@pytest.mark.parametrize("call", [reseal.commit_host_keys, reseal.rollback_host_keys])
def test_commit_and_rollback_never_follow_a_linked_directory(guest, outside, call):
    keys = [k for k in guestscan.ssh_host_keys(guest) if k["type"] == "ssh-ed25519"]
    rotated = reseal.reseal_host_keys(guest, keys, run)
    ssh = os.path.join(guest, "etc/ssh")
    for name in os.listdir(ssh):  # the outside directory holds kept old keys of the same names
        if name.endswith(".vmguard-old"):
            shutil.copy2(os.path.join(ssh, name), os.path.join(outside, "etc/ssh", name))
    os.rename(ssh, ssh + ".real")
    os.symlink(os.path.join(outside, "etc/ssh"), ssh)
    before = snapshot(outside)
    with pytest.raises(ValueError, match=refusal(guest, "etc/ssh")):
        call(guest, rotated)
    assert snapshot(outside) == before
    assert sorted(n for n in os.listdir(ssh + ".real") if n.endswith(".vmguard-old")) == [
        "ssh_host_ed25519_key.pub.vmguard-old", "ssh_host_ed25519_key.vmguard-old"]


@needs_keygen
def test_host_keys_rotate_and_commit_without_links(guest):
    keys = [k for k in guestscan.ssh_host_keys(guest) if k["type"] == "ssh-ed25519"]
    rotated = reseal.reseal_host_keys(guest, keys, run)
    ssh = os.path.join(guest, "etc/ssh")
    assert os.path.isfile(os.path.join(ssh, "ssh_host_ed25519_key.vmguard-old"))
    reseal.commit_host_keys(guest, rotated)
    assert not [n for n in os.listdir(ssh) if "vmguard" in n]
    with open(os.path.join(ssh, "ssh_host_ed25519_key.pub")) as f:
        assert " ".join(f.read().split()[:2]) == rotated[0]["new_public_key"]
    assert os.stat(os.path.join(ssh, "ssh_host_ed25519_key.pub")).st_mode & 0o777 == 0o644


def test_refusal_message_on_the_live_root():
    assert str(fsutil.LinkRefusedError("/", "/etc/ssh")) == "/etc/ssh is a symbolic link: refusing to follow it"
    assert isinstance(fsutil.LinkRefusedError("/img", "/img/etc"), ValueError)


def test_a_shared_dbus_copy_of_its_own_is_resealed_and_linked(guest):
    """/var/lib/dbus/machine-id a file of its own with the duplicated value (libdbus reads it first), /etc/machine-id
    unique: planned by the copy's digest; the reseal regenerates the machine-id and links the copy to it."""
    with open(os.path.join(guest, "var/lib/dbus/machine-id"), "w") as f:
        f.write("fedcba9876543210fedcba9876543210\n")
    dbus = guestscan.machine_id(guest)["dbus_machine_id_digest"]
    assert dbus != guestscan.machine_id(guest)["machine_id_digest"]
    assert reseal.plan(guest, {"machine_id_digest": dbus}) == {
        "machine_id": "D-Bus copy (/var/lib/dbus/machine-id) shared with another guest"}
    reseal.reseal_machine_id(guest)
    assert os.readlink(os.path.join(guest, "var/lib/dbus/machine-id")) == "/etc/machine-id"
    assert reseal.plan(guest, {"machine_id_digest": dbus}) == {}


@needs_keygen
@pytest.mark.parametrize("ktype, bits, reported", [("ecdsa", "384", "ecdsa-sha2-nistp384"), ("ecdsa", "521", "ecdsa-sha2-nistp521"),
                                                   ("rsa", "4096", "ssh-rsa")])
def test_rotation_keeps_the_curve_and_the_rsa_modulus(tmp_path, ktype, bits, reported):
    """ssh-keygen without -b made a P-256 key for a P-384/P-521 one and RSA 3072 for RSA 4096."""
    root = str(tmp_path)
    path = os.path.join(root, "etc/ssh/ssh_host_%s_key" % ktype)
    os.makedirs(os.path.dirname(path))
    assert run(["ssh-keygen", "-q", "-t", ktype, "-b", bits, "-N", "", "-C", "", "-f", path])[0] == 0
    with open(path + ".pub") as f:
        old_pub = " ".join(f.read().split()[:2])
    keys = guestscan.ssh_host_keys(root)
    assert [k["type"] for k in keys] == [reported]
    rotated = reseal.reseal_host_keys(root, keys, run)
    reseal.commit_host_keys(root, rotated)
    assert rotated[0]["old_public_key"] == old_pub and rotated[0]["new_public_key"].startswith(reported + " ")
    rc, out, err = run(["ssh-keygen", "-l", "-f", path + ".pub"])
    assert rc == 0 and out.split()[0] == bits and guestscan.ssh_host_keys(root)[0]["type"] == reported


def test_keygen_bits_never_below_the_rsa_default():
    assert reseal.keygen_bits("ssh-ed25519", "ssh-ed25519 AAAA") is None
    assert reseal.keygen_bits("ssh-rsa", "garbage") == 3072
