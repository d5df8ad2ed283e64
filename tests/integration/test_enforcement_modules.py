"""Enforcement pieces against the real things: domain_policy on libvirt (test driver, no daemon)
(plan-driven and rule-driven), the ledger, reseal and image sealing against planted links."""

import json
import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

NODE = """<node>
<domain type='test'><name>norng</name><uuid>11111111-2222-4333-8444-555555555555</uuid>
  <metadata><x:keep xmlns:x="urn:example:keep">yes</x:keep></metadata>
  <memory>65536</memory><os><type>hvm</type></os><devices/></domain>
<domain type='test'><name>hasrng</name><uuid>11111111-2222-4333-8444-666666666666</uuid>
  <memory>65536</memory><os><type>hvm</type></os>
  <devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>
</node>"""


def module(name, args, check=False):
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    cmd = ["ansible", "localhost", "-m", name, "-a", json.dumps(args)] + (["--check", "--diff"] if check else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_domain_policy_adds_rng_only_where_missing(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    backups = tmp_path / "backup"
    args = {"uri": "test://%s" % node, "fixes": ["DIV-09"], "backup_dir": str(backups)}
    planned = module("vmguard.hardening.domain_policy", args, check=True)
    assert planned["changed"] is True and list(planned["domains"]) == ["norng"]
    assert not backups.exists()  # check mode wrote nothing
    done = module("vmguard.hardening.domain_policy", args)
    assert done["changed"] is True and list(done["domains"]) == ["norng"]
    backup = done["domains"]["norng"]["backup"]
    assert os.stat(backup).st_mode & 0o777 == 0o600
    with open(backup) as f:
        assert "urn:example:keep" in f.read()
    unknown = module("vmguard.hardening.domain_policy", dict(args, fixes=["ISO-99"]))
    assert unknown.get("failed") and "no domain remediation for ISO-99" in unknown["msg"]


def test_domain_policy_applies_the_plan_domain_by_domain(tmp_path):
    """domain_fixes: each domain gets only its own planned fixes (a rule waived or passing on one
    domain is not "fixed" there because another domain needs it)."""
    node = tmp_path / "node.xml"
    node.write_text(NODE.replace("<devices/></domain>", "<devices/></domain>\n<domain type='test'><name>nogenid</name>"
                                 "<uuid>11111111-2222-4333-8444-777777777777</uuid><memory>65536</memory>"
                                 "<os><type>hvm</type></os><devices/></domain>", 1))
    args = {"uri": "test://%s" % node, "backup_dir": str(tmp_path / "backup"),
            "domain_fixes": {"norng": ["DIV-09"], "nogenid": ["RB-01"]}}
    done = module("vmguard.hardening.domain_policy", args, check=True)
    assert sorted(done["domains"]) == ["nogenid", "norng"], done
    assert [c.split(":")[0] for c in done["domains"]["norng"]["changes"]] == ["DIV-09"]
    assert [c.split(":")[0] for c in done["domains"]["nogenid"]["changes"]] == ["RB-01"]
    both = module("vmguard.hardening.domain_policy", dict(args, fixes=["DIV-09"]))
    assert both.get("failed") and "mutually exclusive" in both["msg"]
    unknown = module("vmguard.hardening.domain_policy", dict(args, domain_fixes={"norng": ["ISO-99"]}))
    assert unknown.get("failed") and unknown["msg"].startswith("domain_fixes: no domain remediation for ISO-99")


# --- Root writes only what it owns (issue "Trustworthy audit", section 5) ---

LEDGER_UUID = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"


def outside_canary(tmp_path_factory):
    p = tmp_path_factory.mktemp("outside") / "canary"
    p.write_text("canary\n")
    os.utime(str(p), (1000000000, 1000000000))
    return p


def untouched(p):
    return p.read_text() == "canary\n" and os.stat(str(p)).st_mtime == 1000000000


def test_ledger_module_writes_through_no_planted_temporary_link(tmp_path, tmp_path_factory):
    canary = outside_canary(tmp_path_factory)
    d = tmp_path / "ledger"
    d.mkdir(mode=0o700)
    target = d / (LEDGER_UUID + ".json")
    for planted in (".tmp", ".vmguard-new", ".new"):
        os.symlink(str(canary), str(target) + planted)
    out = module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "epoch": "prepare"})
    assert out["changed"] is True and not out.get("failed"), out
    assert untouched(canary)
    with open(str(target)) as f:
        assert json.load(f)["pending_epoch"] == 1
    assert os.stat(str(target)).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("make,why", [
    (lambda p: p.write_text("[]"), "holds list, not a JSON object"),
    (lambda p: p.write_text('{"epoch": "abc"}'), 'epoch is "abc"'),
    (lambda p: p.write_text("{not json"), "not valid JSON"),
    (lambda p: os.mkfifo(str(p)), "is a FIFO, not a regular file"),
])
def test_ledger_module_fails_on_a_corrupt_ledger_and_leaves_it(tmp_path, make, why):
    target = tmp_path / (LEDGER_UUID + ".json")
    make(target)
    before = os.lstat(str(target))
    out = module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(tmp_path), "hardened": True})
    assert out.get("failed") and str(target) in out["msg"] and why in out["msg"], out
    after = os.lstat(str(target))
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)


def test_hypervisor_facts_ledger_is_an_error_for_a_fifo(tmp_path):
    import signal
    import sys
    sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
    from ansible_collections.vmguard.hardening.plugins.modules import hypervisor_facts as hf
    os.mkfifo(str(tmp_path / (LEDGER_UUID + ".json")))
    signal.alarm(5)  # a blocking open of the FIFO would hang here: fail instead
    try:
        rec = hf._ledger(str(tmp_path), LEDGER_UUID)
    finally:
        signal.alarm(0)
    assert rec == {"error": "%s/%s.json: unreadable ledger: is a FIFO, not a regular file" % (tmp_path, LEDGER_UUID)}


def test_identity_reseal_refuses_a_machine_id_that_is_a_link(tmp_path, tmp_path_factory):
    canary = outside_canary(tmp_path_factory)
    (tmp_path / "etc").mkdir()
    (tmp_path / "var/lib/systemd").mkdir(parents=True)
    os.symlink(str(canary), str(tmp_path / "etc/machine-id"))
    out = module("vmguard.hardening.identity_reseal", {"root": str(tmp_path), "force": ["machine_id"]})
    assert out.get("failed") and "symbolic link" in out["msg"] and "etc/machine-id" in out["msg"], out
    assert untouched(canary)


LONG = "vmg-fs-" + "l" * 293  # 300 characters: a backup named after it would exceed NAME_MAX
NODE_LONG = """<node>
<domain type='test'><name>%s</name><uuid>11111111-2222-4333-8444-aaaaaaaaaaaa</uuid>
  <memory>65536</memory><os><type>hvm</type></os><devices/></domain>
<domain type='test'><name>vmg-fs-normal</name><uuid>11111111-2222-4333-8444-bbbbbbbbbbbb</uuid>
  <memory>65536</memory><os><type>hvm</type></os><devices/></domain>
</node>""" % LONG
BACKUP_NAME = re.compile(r"^11111111-2222-4333-8444-(a{12}|b{12})-\d{8}T\d{6}Z(-\d+)?\.xml$")


def test_domain_policy_long_name_backups_are_uuid_based(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE_LONG)
    backups = tmp_path / "backup"
    out = module("vmguard.hardening.domain_policy", {"uri": "test://%s" % node, "fixes": ["DIV-09"],
                                                     "backup_dir": str(backups)})
    assert not out.get("failed") and out["changed"] is True, out
    assert sorted(out["domains"]) == sorted([LONG, "vmg-fs-normal"]) and out["failed_domains"] == {}
    for name, entry in out["domains"].items():
        assert BACKUP_NAME.match(os.path.basename(entry["backup"])), entry["backup"]
        assert os.path.basename(entry["backup"]).startswith(entry["uuid"])
        assert os.stat(entry["backup"]).st_mode & 0o777 == 0o600
        with open(entry["backup"]) as f:
            assert "<name>%s</name>" % name in f.read()
    assert sorted(os.listdir(str(backups))) == sorted(os.path.basename(e["backup"]) for e in out["domains"].values())


@pytest.fixture
def one_file_fs(tmp_path):
    """A tmpfs with room for exactly one file: the second backup fails (a full disk, for real)."""
    d = tmp_path / "backup"
    d.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=2,mode=0700", "tmpfs", str(d)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % p.stderr.strip())
    yield d
    subprocess.run(["umount", str(d)], check=True)


def test_domain_policy_keeps_going_and_reports_partial_result(tmp_path, one_file_fs):
    node = tmp_path / "node.xml"
    node.write_text(NODE_LONG)
    out = module("vmguard.hardening.domain_policy", {"uri": "test://%s" % node, "fixes": ["DIV-09"],
                                                     "backup_dir": str(one_file_fs)})
    assert out.get("failed") is True and out["changed"] is True, out
    assert len(out["domains"]) == 1 and len(out["failed_domains"]) == 1
    (fixed, entry), = out["domains"].items()
    (broken, failure), = out["failed_domains"].items()
    assert {fixed, broken} == {LONG, "vmg-fs-normal"}
    assert os.path.exists(entry["backup"]) and failure["backup"] is None
    assert "not redefined: its backup cannot be written" in failure["error"]
    assert "failed for 1 domain(s) (1 redefined)" in out["msg"] and broken in out["msg"]


def test_domain_policy_refuses_to_redefine_without_a_backup(tmp_path, capsys):
    """In one process (test:///default is shared by connections): libvirt keeps the old definition."""
    import sys
    import libvirt
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
    from ansible_collections.vmguard.hardening.plugins.modules import domain_policy as dp
    conn = libvirt.open("test:///default")
    dom = conn.defineXML("<domain type='test'><name>vmg-fs-nobackup</name><memory>65536</memory>"
                         "<os><type>hvm</type></os><devices/></domain>")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    saved = basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE
    try:
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "uri": "test:///default", "fixes": ["DIV-09"], "backup_dir": str(not_a_dir / "sub"),
            "domains": ["vmg-fs-nobackup"]}}))
        basic._ANSIBLE_PROFILE = "legacy"
        with pytest.raises(SystemExit):
            dp.main()
        out = json.loads(capsys.readouterr().out)
        assert out["failed"] is True and out["changed"] is False and out["domains"] == {}
        assert "not redefined: its backup cannot be written" in out["failed_domains"]["vmg-fs-nobackup"]["error"]
        assert "<rng" not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)  # libvirt still has the old one
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved
        dom.undefine()
        conn.close()


# --- per-rule parameters (issue 9): isolation, leakage and metadata fixes from the plan ----------------

NODE_LEAKY = """<node>
<domain type='test'><name>leaky</name><uuid>11111111-2222-4333-8444-cccccccccccc</uuid>
  <memory dumpCore='on'>65536</memory><os><type>hvm</type><smbios mode='host'/></os>
  <devices>
    <interface type='network'><mac address='52:54:00:00:00:11'/><source network='svc-web'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:12'/><source network='vmguard-mgmt'/></interface>
    <filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem>
    <graphics type='vnc' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/></graphics>
  </devices></domain>
<domain type='test'><name>tidy</name><uuid>11111111-2222-4333-8444-dddddddddddd</uuid>
  <memory>65536</memory><os><type>hvm</type></os><devices/></domain>
</node>"""


def test_domain_policy_passes_each_rule_its_parameters(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE_LEAKY)
    plan = {"leaky": {"ISO-03": {"management_networks": ["vmguard-mgmt"], "ip": "192.0.2.10"},
                      "ISO-07": {"allowed_filesystems": []}, "LEAK-02": {}, "LEAK-04": {}, "LEAK-07": {},
                      "VIS-05": {"owner": "team-web", "service": "web", "expires": "2027-06-30"}},
            "tidy": ["DIV-09"]}
    args = {"uri": "test://%s" % node, "backup_dir": str(tmp_path / "backup"), "domain_fixes": plan}
    checked = module("vmguard.hardening.domain_policy", args, check=True)
    assert not checked.get("failed") and checked["changed"] is True, checked
    assert not (tmp_path / "backup").exists()
    changes = checked["domains"]["leaky"]["changes"]
    assert [c.split(":")[0] for c in changes] == ["ISO-03", "ISO-07", "LEAK-02", "LEAK-04", "LEAK-07", "VIS-05"]
    assert changes[0] == ("ISO-03: added <filterref filter='clean-traffic'> with IP 192.0.2.10 on 52:54:00:00:00:11 "
                          "(network svc-web)")
    assert "VIS-05: set vmguard metadata owner=team-web, service=web, expires=2027-06-30" in changes
    # test-driver domains of a node file run: the change waits for a restart, and the result says so
    assert checked["domains"]["leaky"]["restart_pending"] is True
    assert [c.split(":")[0] for c in checked["domains"]["tidy"]["changes"]] == ["DIV-09"]
    assert "leaky: ISO-03: added <filterref" in checked["diff"]["after"]
    done = module("vmguard.hardening.domain_policy", args)
    assert not done.get("failed") and sorted(done["domains"]) == ["leaky", "tidy"], done
    with open(done["domains"]["leaky"]["backup"]) as f:
        assert "0.0.0.0" in f.read()  # the previous definition, as it was


@pytest.mark.parametrize("plan, message", [
    ({"leaky": {"ISO-07": {"allowed_filesystem": []}}},
     "domain_fixes.leaky: ISO-07: unknown parameter(s) allowed_filesystem (known: allowed_filesystems)"),
    ({"leaky": {"ISO-03": {"ip": "not-an-address"}}, "tidy": {"ISO-11": {"allow_vsock": "maybe"}}},
     "domain_fixes.leaky: ISO-03: parameter ip must be an IPv4 address (clean-traffic's IP parameter), got 'not-an-address'; "
     "domain_fixes.tidy: ISO-11: parameter allow_vsock must be true or false, got 'maybe'"),
    ({"leaky": {"ISO-99": {}}}, "domain_fixes: no domain remediation for ISO-99"),
    ({"leaky": ["VIS-05"]}, "domain_fixes.leaky: VIS-05: no metadata value given (parameters owner, service, expires, data_class)"),
])
def test_domain_policy_refuses_bad_parameters_before_reading_anything(tmp_path, plan, message):
    node = tmp_path / "node.xml"
    node.write_text(NODE_LEAKY)
    out = module("vmguard.hardening.domain_policy", {"uri": "test://%s" % node, "backup_dir": str(tmp_path / "backup"),
                                                     "domain_fixes": plan})
    assert out.get("failed") and out["msg"].startswith(message), out
    assert not (tmp_path / "backup").exists()


# --- The ledger module records the state a harden reached (issue 13) ---

RECORD = {"package_floors": {"openssl": "3.0.15-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"},
          "disabled_accounts": ["lp", "games"], "masked_services": ["telnet.socket"], "firewall_digest": "ab" * 32}


def read_ledger(d):
    with open(str(d / (LEDGER_UUID + ".json"))) as f:
        return json.load(f)


def test_ledger_module_records_the_state_in_two_phases(tmp_path):
    d = tmp_path / "ledger"
    args = {"uuid": LEDGER_UUID, "dir": str(d), "record": RECORD, "epoch": "prepare"}
    planned = module("vmguard.hardening.ledger", args, check=True)
    assert planned["changed"] is True and planned["pending_epoch"] == 1 and not d.exists()  # check mode wrote nothing
    assert json.loads(planned["diff"]["before"])["firewall_digest"] is None
    assert json.loads(planned["diff"]["after"]) == planned["record"] and planned["record"]["firewall_digest"] == "ab" * 32
    prepared = module("vmguard.hardening.ledger", args)
    assert prepared["changed"] is True and (prepared["epoch"], prepared["pending_epoch"]) == (0, 1), prepared
    assert "floor openssl 3.0.15-1~deb12u1" in prepared["changes"] and "pending epoch 1" in prepared["changes"]
    rec = read_ledger(d)
    assert rec["package_floors"] == RECORD["package_floors"] and rec["disabled_accounts"] == ["games", "lp"]
    assert (rec["masked_services"], rec["firewall_digest"], rec["pending_epoch"]) == (["telnet.socket"], "ab" * 32, 1)
    committed = module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "epoch": "commit", "hardened": True})
    assert committed["changed"] is True and (committed["epoch"], committed["pending_epoch"]) == (1, None)
    assert read_ledger(d)["epoch"] == 1 and read_ledger(d)["epoch_time"]
    # A rolled-back openssl never lowers its floor, and the same state again changes nothing.
    before = read_ledger(d)
    lower = dict(RECORD, package_floors={"openssl": "3.0.11-1~deb12u2"})
    again = module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "record": lower}, check=True)
    assert again["changed"] is False and again["changes"] == [] and "diff" not in again
    assert module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "record": lower})["changed"] is False
    assert read_ledger(d) == before


@pytest.mark.parametrize("record, why", [
    ({"package_floors": {"openssl": 3}}, "record.package_floors is"),
    ({"floors": {}}, "record.floors: unknown key"),
    ({"firewall_digest": "not-a-digest"}, "record.firewall_digest is"),
    ({"package_floors": {"openssl": "x:1"}}, "record.package_floors.openssl: cannot compare"),
])
def test_ledger_module_refuses_a_bad_record_and_leaves_the_ledger(tmp_path, record, why):
    d = tmp_path / "ledger"
    module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "record": RECORD, "epoch": "prepare"})
    before = os.lstat(str(d / (LEDGER_UUID + ".json")))
    out = module("vmguard.hardening.ledger", {"uuid": LEDGER_UUID, "dir": str(d), "record": record, "epoch": "commit"})
    assert out.get("failed") and why in out["msg"], out
    after = os.lstat(str(d / (LEDGER_UUID + ".json")))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns) and read_ledger(d)["pending_epoch"] == 1


def test_identity_reseal_check_mode_keeps_the_result_shape_and_changes_nothing(tmp_path):
    """harden --check: the guest role loops over resealed.ssh_host_keys, so check mode returns the same
    list of entries (no new key yet) instead of a string, and touches no file."""
    ssh = tmp_path / "etc" / "ssh"
    ssh.mkdir(parents=True)
    key = ssh / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fp = subprocess.run(["ssh-keygen", "-lf", str(key) + ".pub"], check=True, stdout=subprocess.PIPE,
                        universal_newlines=True).stdout.split()[1]
    before = (key.read_bytes(), (ssh / "ssh_host_ed25519_key.pub").read_bytes())
    out = module("vmguard.hardening.identity_reseal", {"root": str(tmp_path), "ssh_fingerprints": [fp],
                                                       "reload_sshd": False}, check=True)
    assert out["changed"] is True, out
    (entry,) = out["resealed"]["ssh_host_keys"]
    assert entry["old_fingerprint"] == fp and entry["new_public_key"] is None and entry["would_regenerate"] is True
    assert out["retired_fingerprints"] == [fp]
    assert (key.read_bytes(), (ssh / "ssh_host_ed25519_key.pub").read_bytes()) == before
