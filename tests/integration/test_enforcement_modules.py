"""Enforcement pieces against the real things: domain_policy on libvirt (test driver, no daemon)
and the guest role's reseal plan rendered by Ansible's own templating."""

import json
import os
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


def render_plan(hostname, mine, reseal):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template  # core >= 2.19 renders only trusted templates
    path = os.path.join(ROOT, "roles", "guest", "templates", "reseal.yml.j2")
    with open(path) as f:
        source = f.read()
    rules = dict((r, {"enabled": True, "mode": "enforce"}) for r in ("DIV-01", "DIV-02", "DIV-04"))
    variables = {
        "inventory_hostname": hostname, "__vmguard_guest_mine": mine, "__vmguard_guest_reseal": reseal,
        "__vmguard_guest_rules": rules,
        "__vmguard_guest_facts": {"machine_id_digest": "m-" + hostname, "random_seed_digest": "s-" + hostname},
    }
    out = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))
    return json.loads(out) if isinstance(out, str) else dict(out)


def MINE(me, other):  # pylint: disable=invalid-name
    """This guest's failing DIV-01/02/04 findings when it shares everything with ``other``."""
    return [
        {"rule": "DIV-01", "subject": me, "evidence": {"shared_with": [other]}},
        {"rule": "DIV-02", "subject": me, "evidence": {"shared": {"SHA256:k1": [other]}}},
        {"rule": "DIV-04", "subject": me, "evidence": {"shared_with": [other]}},
    ]


def test_reseal_plan_all_members():
    for me, other in (("web1", "mail1"), ("mail1", "web1")):
        plan = render_plan(me, MINE(me, other), "all")
        assert plan == {"machine_id_digest": "m-" + me, "ssh_fingerprints": ["SHA256:k1"], "random_seed_digest": "s-" + me}


def test_reseal_plan_all_but_one_keeps_the_first_by_name():
    keep = render_plan("mail1", MINE("mail1", "web1"), "all_but_one")
    assert keep == {"machine_id_digest": None, "ssh_fingerprints": [], "random_seed_digest": None}
    change = render_plan("web1", MINE("web1", "mail1"), "all_but_one")
    assert change["machine_id_digest"] == "m-web1" and change["ssh_fingerprints"] == ["SHA256:k1"]


def test_reseal_plan_ignores_other_rules():
    plan = render_plan("web1", [{"rule": "DIV-03", "subject": "web1", "evidence": {}}], "all")
    assert plan == {"machine_id_digest": None, "ssh_fingerprints": [], "random_seed_digest": None}


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
