"""host_config against the real things on a temporary root (never this machine's /etc/libvirt): libvirt's own
configuration files copied and made leaky, augtool with libvirt's shipped lenses, the planner's step from real
findings, and a fresh hypervisor_facts collection afterwards that the rules judge. nwfilters on qemu:///system
with throwaway vmg-h2-* filters (undefined in teardown)."""

import copy
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
if not os.path.exists(os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening")):
    os.makedirs(os.path.join(COLLECTIONS, "ansible_collections", "vmguard"), exist_ok=True)
    os.symlink(ROOT, os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening"))
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, plan, policy  # noqa: E402
pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")
if not shutil.which("augtool") or not os.path.isfile("/usr/share/augeas/lenses/libvirtd_qemu.aug"):
    pytest.skip("needs augtool (augeas-tools) and libvirt's augeas lenses", allow_module_level=True)

HOST_RULES = ("ISO-05", "LEAK-01", "LEAK-04", "LEAK-06", "LEAK-08")
SECRET = "S3cretVNC-default-console-password"  # qemu.conf's vnc_password: never in evidence, result or diff
POLICY = {"rules": {"LEAK-08": {"mode": "enforce"}}}


def module(name, args, check=False):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    cmd = ["ansible", "localhost", "-m", name, "-a", json.dumps(args)] + (["--check", "--diff"] if check else ["--diff"])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def prepend(path, text):
    path.write_text(text + path.read_text())


@pytest.fixture
def leaky_root(tmp_path):
    """A copy of libvirt's configuration files, made to fail ISO-05, LEAK-04, LEAK-06 and LEAK-08, and an image
    directory (world-readable) with a world-readable image and a link to a file outside it."""
    root = tmp_path / "root"
    conf = root / "etc" / "libvirt"
    conf.mkdir(parents=True)
    for name in ("qemu.conf", "libvirtd.conf"):
        shutil.copy2("/etc/libvirt/" + name, str(conf / name))
    # Prepended: libvirt reads the first statement of a key, and this host's own files may already set these
    # keys (a harden run on it, e.g. the molecule scenarios, makes them compliant).
    prepend(conf / "qemu.conf", 'user = "root"\ngroup = "root"\nseccomp_sandbox = 0\ndump_guest_core = 1\nvnc_password = "%s"\n'
            % SECRET)
    prepend(conf / "libvirtd.conf", 'listen_tcp = 1\nunix_sock_rw_perms = "0777"\n')
    # virtqemud.conf: libvirt 9 ships no lens of its own here; libvirtd's parses it (no network keys written).
    (conf / "virtqemud.conf").write_text("# virtqemud\nunix_sock_rw_perms = \"0777\"\n")
    images = root / "var" / "lib" / "libvirt" / "images"
    images.mkdir(parents=True)
    os.chmod(str(images), 0o755)
    (images / "web1.qcow2").write_bytes(b"\0" * 512)
    os.chmod(str(images / "web1.qcow2"), 0o644)
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"x")
    os.chmod(str(outside), 0o644)
    (images / "elsewhere.img").symlink_to(outside)
    return root


def collect(root):
    """hypervisor_facts (test driver, host evidence on) reading the temporary root's files; the host's own image
    directories, sockets and listeners are left out (this machine's, not the root's): the sockets and listeners are
    those a daemon started from this configuration opens (unix_sock_rw_perms, listen_tcp)."""
    conf = os.path.join(str(root), "etc", "libvirt")
    images = os.path.join(str(root), "var", "lib", "libvirt", "images")
    facts = module("vmguard.hardening.hypervisor_facts", {
        "uri": "test:///default", "host": True, "qemu_conf": os.path.join(conf, "qemu.conf"), "verify_base_images": False,
        "daemon_confs": [os.path.join(conf, n) for n in ("libvirtd.conf", "virtqemud.conf")], "image_dirs": [images]})
    ev = facts["evidence"]
    assert ev["error"] is None, ev["error"]
    assert SECRET not in json.dumps(facts) and ev["host"]["qemu_conf"]["vnc_password"] == "<redacted>"
    host = ev["host"]
    host["image_dirs"] = [d for d in host["image_dirs"] if d["path"].startswith(str(root))]
    host["images"] = [i for i in host["images"] if i["path"].startswith(str(root))]
    perms = [c.get("unix_sock_rw_perms", "0777") for c in host["daemon_confs"].values()]
    mode = 0o777 if any(int(p, 8) & 0o007 for p in perms) else 0o770
    host["sockets"] = [{"path": "/run/libvirt/libvirt-sock", "mode": mode, "rw": True}]
    host["tcp_listeners"] = [{"port": 16509, "tls": False, "what": "libvirtd listen_tcp"}
                             for c in host["daemon_confs"].values() if c.get("listen_tcp") == "1"]
    host["qemu_processes"] = []
    host["lsm"] = {"apparmor": False, "selinux": False, "securityfs": False}
    ev["domains"] = []
    return {"hypervisors": {"hv1": ev}, "guests": {}}


def evaluate(evidence):
    pol = policy.load_policy(POLICY)
    findings = engine.evaluate(pol, copy.deepcopy(evidence), only=set(HOST_RULES) | {"ISO-04"})
    return dict((f["rule"], f) for f in findings if f["subject"]["id"] == "hv1"), plan.build_plan(pol, evidence, findings)


def module_args(root, step, backup):
    images = [d[len(str(root)):] for d in step["image_dirs"]]  # the plan names the host's paths: here under root
    files = [f[len(str(root)):] for f in step["image_files"]]
    return {"root": str(root), "qemu_conf": step["qemu_conf"], "daemon_conf": step["daemon_conf"], "image_dirs": images,
            "image_files": files, "qemu_gid": step["qemu_gid"], "nwfilters": step["nwfilters"], "backup_dir": str(backup)}


def test_the_planned_step_makes_a_fresh_collection_pass(leaky_root, tmp_path):
    before, p = evaluate(collect(leaky_root))
    assert dict((r, before[r]["status"]) for r in HOST_RULES) == dict((r, "fail") for r in HOST_RULES)
    step = p["hosts"]["hv1"]["host_config"]
    assert step["rules"] == sorted(HOST_RULES)
    assert ("ISO-04", "hv1", "cannot be enforced on this host: no AppArmor or SELinux") in [
        (e["rule"], e["subject"], e["reason"]) for e in p["not_enforced"]]
    conf = leaky_root / "etc" / "libvirt"
    sums = dict((n, digest(str(conf / n))) for n in ("qemu.conf", "libvirtd.conf", "virtqemud.conf"))
    args = module_args(leaky_root, step, tmp_path / "backup")

    planned = module("vmguard.hardening.host_config", args, check=True)
    assert SECRET not in json.dumps(planned)  # nor in the diff of qemu.conf (its secret redacted)
    assert planned["changed"] is True and sorted(os.path.basename(f) for f in planned["files"]) == [
        "libvirtd.conf", "qemu.conf", "virtqemud.conf"]
    assert 'vnc_password = "<redacted>"' in [d for d in planned["diff"] if d["before_header"].endswith("qemu.conf")][0]["before"]
    assert dict((n, digest(str(conf / n))) for n in sums) == sums and not (tmp_path / "backup").exists()
    assert stat.S_IMODE(os.stat(str(leaky_root / "var/lib/libvirt/images/web1.qcow2")).st_mode) == 0o644
    assert planned["restart_pending"] == []  # a copy under a temporary root: no daemon reads it

    done = module("vmguard.hardening.host_config", args)
    assert done["changed"] is True and not done.get("failed"), done.get("msg")
    assert SECRET not in json.dumps(done)
    assert sorted((c["path"].split("/")[-1], c["old"], c["new"]) for c in done["permissions"]) == [
        ("", "0755", "0751"), ("web1.qcow2", "0644", "0640")]
    assert stat.S_IMODE(os.stat(str(tmp_path / "outside.img")).st_mode) == 0o644  # the link was not followed
    for name, entry in done["files"].items():
        with open(entry["backup"]) as f:
            assert hashlib.sha256(f.read().encode()).hexdigest() == sums[os.path.basename(name)]
    with open("/etc/libvirt/qemu.conf") as f:
        original = [ln for ln in f.read().splitlines() if ln.startswith("#")]
    with open(str(conf / "qemu.conf")) as f:
        new = f.read()
    assert [ln for ln in new.splitlines() if ln.startswith("#") and ln in original] == original  # every comment kept
    assert stat.S_IMODE(os.stat(str(conf / "qemu.conf")).st_mode) == stat.S_IMODE(os.stat("/etc/libvirt/qemu.conf").st_mode)
    assert "listen_tcp" not in (conf / "virtqemud.conf").read_text()

    after, p2 = evaluate(collect(leaky_root))
    assert dict((r, after[r]["status"]) for r in HOST_RULES) == dict((r, "pass") for r in HOST_RULES), \
        dict((r, after[r]["message"]) for r in HOST_RULES)
    assert after["ISO-04"]["status"] == "fail"  # no LSM here: reported, never faked
    assert "host_config" not in p2["hosts"].get("hv1", {})

    again = module("vmguard.hardening.host_config", args)
    assert again["changed"] is False and again["files"] == {} and again["permissions"] == []


def test_a_value_the_lens_rejects_never_lands(leaky_root, tmp_path):
    conf = leaky_root / "etc" / "libvirt" / "qemu.conf"
    before = digest(str(conf))
    out = module("vmguard.hardening.host_config", {"root": str(leaky_root), "qemu_conf": {"user": ["a", "b"]},
                                                   "backup_dir": str(tmp_path / "backup")})
    assert out.get("failed") and "does not parse with libvirt's augeas lens" in out["msg"] and "qemu.conf" in out["msg"]
    assert digest(str(conf)) == before and not (tmp_path / "backup").exists()
    assert not [n for n in os.listdir(str(conf.parent)) if n.endswith(".vmguard-tmp")]


def test_a_linked_configuration_file_is_refused(leaky_root, tmp_path):
    conf = leaky_root / "etc" / "libvirt"
    target = tmp_path / "real-qemu.conf"
    shutil.move(str(conf / "qemu.conf"), str(target))
    (conf / "qemu.conf").symlink_to(target)
    before = digest(str(target))
    out = module("vmguard.hardening.host_config", {"root": str(leaky_root), "qemu_conf": {"dump_guest_core": 0},
                                                   "backup_dir": str(tmp_path / "backup")})
    assert out.get("failed") and "symbolic link" in out["msg"]
    assert digest(str(target)) == before


@pytest.fixture
def system_conn():
    import libvirt
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError:
        pytest.skip("qemu:///system is not running")
    yield conn
    for name in ("vmg-h2-outer", "vmg-h2-inner"):
        try:
            conn.nwfilterLookupByName(name).undefine()
        except libvirt.libvirtError:
            pass
    conn.close()


def test_missing_nwfilters_are_defined_references_first(system_conn, tmp_path):
    src = tmp_path / "nwfilter"
    src.mkdir()
    (src / "vmg-h2-outer.xml").write_text("<filter name='vmg-h2-outer' chain='root'><filterref filter='vmg-h2-inner'/>"
                                          "<filterref filter='clean-traffic'/></filter>")
    (src / "vmg-h2-inner.xml").write_text("<filter name='vmg-h2-inner' chain='ipv4'>"
                                          "<rule action='drop' direction='out'><ip protocol='udp' dstportstart='9'/></rule></filter>")
    args = {"nwfilters": ["vmg-h2-outer", "clean-traffic"], "nwfilter_dir": str(src), "uri": "qemu:///system",
            "backup_dir": str(tmp_path / "backup")}
    planned = module("vmguard.hardening.host_config", args, check=True)
    assert SECRET not in json.dumps(planned)  # nor in the diff of qemu.conf (its secret redacted)
    assert planned["changed"] is True and planned["nwfilters_defined"] == ["vmg-h2-inner", "vmg-h2-outer"]
    assert "vmg-h2-outer" not in system_conn.listNWFilters()
    done = module("vmguard.hardening.host_config", args)
    assert done["nwfilters_defined"] == ["vmg-h2-inner", "vmg-h2-outer"]
    assert {"vmg-h2-outer", "vmg-h2-inner"} <= set(system_conn.listNWFilters())
    assert module("vmguard.hardening.host_config", args)["changed"] is False
    (src / "vmg-h2-gone.xml").write_text("<filter name='other'/>")
    bad = module("vmguard.hardening.host_config", dict(args, nwfilters=["vmg-h2-gone"]))
    assert bad.get("failed") and "not the definition of nwfilter vmg-h2-gone" in bad["msg"]
