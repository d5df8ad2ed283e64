"""DIV-06 on image files, offline: ext4 images built with mkfs.ext4 -d (as the golden_image role
builds them), checked by the image_seal module through qemu-img and debugfs - no boot, no mount."""

import json
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(not (shutil.which("mkfs.ext4") and shutil.which("debugfs") and shutil.which("qemu-img")),
                                reason="needs e2fsprogs and qemu-utils (make setup installs them)")


def build_image(tmp_path, files, fmt="qcow2"):
    tree = tmp_path / "tree"
    for rel, content in files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    (tree / "var/log").mkdir(parents=True, exist_ok=True)
    raw = tmp_path / "disk.raw"
    subprocess.run(["truncate", "-s", "64M", str(raw)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(raw)], check=True)
    if fmt == "raw":
        return str(raw)
    out = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out)], check=True)
    return str(out)


def seal(path):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    p = subprocess.run(["ansible", "localhost", "-m", "vmguard.hardening.image_seal", "-a", "path=%s" % path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False, env=env)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout  # after profile_tasks' banner
    result = json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return p.returncode, result


def test_sealed_image_passes(tmp_path):
    img = build_image(tmp_path, {"etc/machine-id": "", "etc/ssh/sshd_config": "PermitRootLogin no\n"})
    rc, out = seal(img)
    assert rc == 0 and out["sealed"] is True, out


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_identity_left_in_an_image_fails(tmp_path, fmt):
    img = build_image(tmp_path, {
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "root/.bash_history": "ssh builder@10.0.0.1\n",
        "var/log/dpkg.log": "install foo\n",
    }, fmt)
    rc, out = seal(img)
    assert rc != 0 and out["sealed"] is False
    assert sorted(f["path"] for f in out["findings"]) == [
        "/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key", "/root/.bash_history", "/var/log/dpkg.log"]


def test_not_a_file_system(tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 1024 * 1024)
    rc, out = seal(str(junk))
    assert rc != 0 and "no ext2/3/4 file system" in out["msg"]
