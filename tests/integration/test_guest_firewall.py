"""guest_firewall (ISO-10, RB-10) for real: the module run by ansible inside a private network namespace
(vmg-h1-<pid>-<n>, always deleted) with the real nft and kernel.

- apply -> the returned digest is the one guest_facts' evidence carries (guestscan.firewall over
  `nft -j list ruleset`), and ISO-10 passes on that evidence (the real engine and check);
- confirm cancels the revert and persists the ruleset (0600); a second apply changes nothing; check mode
  changes nothing;
- no confirmation -> the guest restores the previous table by itself after the timeout, and a late
  confirmation fails saying so;
- a ruleset the kernel refuses (no interface "lo") is rejected by nft -c before anything lands;
- bad ports and a missing nft are clear errors.
"""

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "nft")
sys.path.insert(0, COLLECTIONS)
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import bootfirewall, guestcollect, guestscan  # noqa: E402
from conftest import wait_for  # noqa: E402

_COUNTER = itertools.count()
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


class Netns(object):
    def __init__(self):
        self.name = "vmg-h1-%d-%d" % (os.getpid(), next(_COUNTER))

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def run(self, cmd, check=True):
        p = subprocess.run(["ip", "netns", "exec", self.name] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, check=False)
        if check and p.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr))
        return p.stdout

    def module(self, name, args, check=False, wrap=()):
        if name == "guest_firewall" and "boot_unit" not in args:  # never this host's own /etc/systemd/system
            unit = os.path.join(os.path.dirname(args["path"]), "system", "vmguard-firewall.service")
            args = dict(args, boot_unit=unit)
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        env.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        cmd = list(wrap) + ["ip", "netns", "exec", self.name, ANSIBLE, "localhost", "-m", "vmguard.hardening." + name,
                            "-a", json.dumps(args), "-e", "ansible_python_interpreter=%s" % sys.executable]
        p = subprocess.run(cmd + (["--check", "--diff"] if check else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=env, cwd=ROOT, check=False)
        body = p.stdout[p.stdout.index("{"):] if "{" in p.stdout else p.stdout
        return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


def _missing():
    if os.geteuid() != 0:
        return "needs root to create network namespaces and load rulesets"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "needs the %s command" % tool
    if not os.path.exists(ANSIBLE):
        return "needs ansible in the venv (make setup)"
    try:
        with Netns() as ns:
            ns.run(["nft", "list", "ruleset"])
    except (RuntimeError, subprocess.CalledProcessError) as e:
        return "cannot use a private network namespace with nft here: %s" % e
    return None


MISSING = _missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture
def ns():
    with Netns() as n:
        yield n


def web_args(tmp_path, **kw):
    args = {"service_ports": [80, 443], "management_ports": [22], "client_ports": [68, 546], "confirm_timeout": 30,
            "path": str(tmp_path / "etc" / "firewall.nft"), "state_dir": str(tmp_path / "state")}
    args.update(kw)
    return args


def evidence_of(ns):
    """What guest_facts reports as `firewall` in this namespace (the same call on the same output)."""
    return guestscan.firewall(ns.run(["nft", "-j", "list", "ruleset"]))


def iso10(fw, service="web", boot=None):
    """The real ISO-10 check on a guest whose only evidence is ``fw``, live and (``boot`` None) as loaded at boot."""
    boot = dict(fw, loaders=[{"unit": "vmguard-firewall.service", "files": ["/etc/vmguard/firewall.nft"]}], others=[]) \
        if boot is None else boot
    facts = {"firewall": fw, "firewall_boot": boot,
             "listening": [{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"}]}
    ev = {"hypervisors": {}, "guests": {"web1": {"vars": {"service": service}, "error": None, "facts": facts}}}
    found = [f for f in engine.evaluate(policy.load_policy({}), ev, only={"ISO-10"}) if f["subject"]["id"] == "web1"]
    assert len(found) == 1, found
    return found[0]


def load(ns, fixture):
    ns.run(["nft", "-f", os.path.join(FIXTURES, fixture + ".nft")])


def test_apply_gives_the_evidence_digest_and_iso10_passes_then_confirm_persists(ns, tmp_path):
    load(ns, "debian-default")  # another table whose input chain accepts everything
    before = iso10(evidence_of(ns))
    assert before["status"] == "fail", before
    args = web_args(tmp_path)
    done = ns.module("guest_firewall", args)
    assert done["changed"] is True and done["pending"] is True, done
    fw = evidence_of(ns)
    assert done["digest"] == fw["digest"] and len(done["digest"]) == 64
    after = iso10(fw)
    assert after["status"] == "pass", after
    assert [(o["proto"], o["port"]) for o in fw["open"]] == [
        ("tcp", 22), ("tcp", 80), ("tcp", 443), ("udp", 68), ("udp", 80), ("udp", 443), ("udp", 546)]
    assert "table inet filter" in ns.run(["nft", "list", "ruleset"])  # the other table is left alone
    assert not os.path.exists(args["path"])  # persisted only on confirmation
    pid = json.load(open(str(tmp_path / "state" / "pending.json")))["pid"]
    assert os.path.exists("/proc/%d" % pid)

    confirmed = ns.module("guest_firewall", {"state": "confirmed", "path": args["path"], "state_dir": args["state_dir"]})
    assert confirmed["changed"] is True and confirmed["confirmed"] is True and confirmed["digest"] == done["digest"], confirmed
    st = os.stat(args["path"])
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert open(args["path"]).read() == done["ruleset"]
    assert stat.S_IMODE(os.stat(args["state_dir"]).st_mode) == 0o700
    _wait_gone(pid)  # the reverter was ended
    assert not os.path.exists(str(tmp_path / "state" / "pending.json"))
    unit = str(tmp_path / "etc" / "system" / "vmguard-firewall.service")  # written and enabled by the apply
    assert done["boot_unit"] == dict(path=unit, written=True, enabled=True), done["boot_unit"]
    assert "ExecStart=%s -f %s\n" % (shutil.which("nft"), args["path"]) in open(unit).read()
    assert os.readlink(str(tmp_path / "etc" / "system" / "sysinit.target.wants" / "vmguard-firewall.service")) == unit
    # What the next boot loads: the unit the module wrote, as guest_facts finds and replays it (a root of its own
    # holding that unit, enabled), judged by the real ISO-10 with the live ruleset: both default-deny, both pass.
    root = tmp_path / "bootroot"
    os.makedirs(str(root / "etc" / "systemd" / "system"))
    shutil.copy(unit, str(root / "etc" / "systemd" / "system" / "vmguard-firewall.service"))
    persisted = str(root) + args["path"]  # the ruleset at its path in that root
    os.makedirs(os.path.dirname(persisted))
    shutil.copy(args["path"], persisted)
    boot = bootfirewall.collect(["vmguard-firewall.service"], guestcollect.run_argv, guestcollect.bin_path, str(root))
    assert boot["error"] is None and boot["default_deny"] is True, boot
    assert boot["open"] == fw["open"]
    assert boot["loaders"] == [{"unit": "vmguard-firewall.service", "files": [args["path"]], "skipped": None}]
    assert iso10(fw, boot=boot)["status"] == "pass"
    os.unlink(persisted)  # the unit's ConditionPathExists: without its ruleset systemd skips it, the boot is open
    gone = bootfirewall.collect(["vmguard-firewall.service"], guestcollect.run_argv, guestcollect.bin_path, str(root))
    assert gone["error"] is None and gone["loaders"][0]["skipped"].startswith("ConditionPathExists=")
    assert iso10(fw, boot=gone)["status"] == "fail"  # live only: a reboot would open the guest

    again = ns.module("guest_firewall", args)
    assert again["changed"] is False and again["pending"] is False and again["digest"] == done["digest"], again
    dry = ns.module("guest_firewall", args, check=True)
    assert dry["changed"] is False and dry["digest"] == done["digest"], dry
    nothing = ns.module("guest_firewall", {"state": "confirmed", "path": args["path"], "state_dir": args["state_dir"]})
    assert nothing["changed"] is False and nothing["reason"] == "nothing pending"

    # The persisted file restores the policy on its own (what the boot unit does): flush, load, same evidence.
    ns.run(["nft", "flush", "ruleset"])
    load(ns, "debian-default")
    ns.run(["nft", "-f", args["path"]])
    assert evidence_of(ns)["digest"] == done["digest"]

    # A changed policy is applied again (the live table differs from the rendering).
    web_only = ns.module("guest_firewall", web_args(tmp_path, service_ports=[443], confirm_timeout=0))
    assert web_only["changed"] is True and web_only["pending"] is False
    assert [(o["proto"], o["port"]) for o in evidence_of(ns)["open"]] == [
        ("tcp", 22), ("tcp", 443), ("udp", 68), ("udp", 443), ("udp", 546)]
    assert "{ 443 }" in open(args["path"]).read()  # confirm_timeout 0: persisted at once


def _wait_gone(pid, seconds=5):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return
        except OSError:
            return
        time.sleep(0.1)
    raise AssertionError("process %d still runs" % pid)


def test_without_confirmation_the_guest_restores_the_previous_table(ns, tmp_path):
    # The reverter's clock starts inside the module, before Ansible returns: CONFIRM seconds leave the
    # check of the new table a wide margin on a busy machine; the revert is then waited for, not slept on.
    load(ns, "vmguard-web")  # an earlier, different table inet vmguard (SSH only from management sets)
    original = ns.run(["nft", "list", "ruleset"])
    original_digest = evidence_of(ns)["digest"]
    args = web_args(tmp_path, confirm_timeout=CONFIRM, service_ports=[8443])
    done = ns.module("guest_firewall", args)
    assert done["changed"] and done["pending"] and done["digest"] != original_digest
    assert "8443" in ns.run(["nft", "list", "table", "inet", "vmguard"])
    assert wait_for(lambda: ns.run(["nft", "list", "ruleset"]) == original, CONFIRM + 20, 0.1)
    assert evidence_of(ns)["digest"] == original_digest
    late = ns.module("guest_firewall", {"state": "confirmed", "path": args["path"], "state_dir": args["state_dir"]})
    assert late.get("failed") and "already reverted" in late["msg"], late
    assert "not confirmed within %d seconds" % CONFIRM in late["msg"], late
    assert not os.path.exists(args["path"])
    # From a guest with no vmguard table, the revert removes the table again.
    ns.run(["nft", "flush", "ruleset"])
    ns.module("guest_firewall", args)
    assert "8443" in ns.run(["nft", "list", "ruleset"])
    assert wait_for(lambda: ns.run(["nft", "list", "ruleset"]).strip() == "", CONFIRM + 20, 0.1)


CONFIRM = 8


def test_check_mode_changes_nothing(ns, tmp_path):
    load(ns, "debian-default")
    before = ns.run(["nft", "list", "ruleset"])
    args = web_args(tmp_path)
    dry = ns.module("guest_firewall", args, check=True)
    assert dry["changed"] is True and dry["digest"] is None and dry["pending"] is False, dry
    assert "tcp dport { 80, 443 } accept" in dry["diff"][0]["after"] and dry["diff"][0]["before"] == ""
    assert ns.run(["nft", "list", "ruleset"]) == before
    assert not os.path.exists(args["state_dir"]) and not os.path.exists(args["path"])


def test_a_ruleset_the_kernel_refuses_never_lands(ns, tmp_path):
    """Without an interface named lo the rendered `iif "lo"` does not load: nft -c says so before anything changes."""
    load(ns, "vmguard-web")
    ns.run(["ip", "link", "set", "lo", "name", "notlo"])
    before = ns.run(["nft", "list", "ruleset"])
    args = web_args(tmp_path)
    res = ns.module("guest_firewall", args)
    assert res.get("failed") and res["msg"].startswith("nft -c refuses the rendered ruleset, nothing was applied or written"), res
    assert "Interface does not exist" in res["msg"]
    assert ns.run(["nft", "list", "ruleset"]) == before
    assert sorted(os.listdir(args["state_dir"])) == ["lock"] and not os.path.exists(args["path"])


@pytest.mark.parametrize("change, message", [
    ({"service_ports": [80, 70000]}, "service_ports[1]: 70000 is not a port number (1-65535)"),
    ({"client_ports": [0]}, "client_ports[0]: 0 is not a port number (1-65535)"),
    ({"management_ports": []}, "management_ports: empty; the ruleset would cut off every management connection"),
    ({"confirm_timeout": -1}, "confirm_timeout: -1 is negative"),
])
def test_bad_parameters_are_named_and_change_nothing(ns, tmp_path, change, message):
    res = ns.module("guest_firewall", web_args(tmp_path, **change))
    assert res.get("failed") and res["msg"].startswith(message), res
    assert ns.run(["nft", "list", "ruleset"]).strip() == ""


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare (util-linux) to hide nft in a private mount namespace")
def test_missing_nft_is_a_clear_error(ns, tmp_path):
    """nft hidden in a private mount namespace (/dev/null bound over it: not executable) for the module only."""
    hide = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"',
            os.path.realpath(shutil.which("nft"))]
    res = ns.module("guest_firewall", web_args(tmp_path), wrap=hide)
    assert res.get("failed") and res["msg"] == "nft is not installed (package nftables): the guest firewall needs it", res


def test_a_second_apply_while_pending_waits_and_a_lost_reverter_is_made_good(ns, tmp_path):
    """The same apply again before confirmation changes nothing (still pending); another ruleset is refused while
    one awaits confirmation; a pending apply whose reverter is gone (killed, or a reboot) is reverted by the next
    run before it applies again, so the saved table is never lost."""
    load(ns, "vmguard-web")
    original = ns.run(["nft", "list", "ruleset"])
    args = web_args(tmp_path, confirm_timeout=60)
    first = ns.module("guest_firewall", args)
    assert first["pending"] is True
    same = ns.module("guest_firewall", args)
    assert same["changed"] is False and same["pending"] is True and same["revert_at"] == first["revert_at"], same
    other = ns.module("guest_firewall", web_args(tmp_path, service_ports=[25]))
    assert other.get("failed") and "an earlier apply of another ruleset awaits confirmation" in other["msg"], other
    pending = json.load(open(str(tmp_path / "state" / "pending.json")))
    os.kill(pending["pid"], 9)
    _wait_gone(pending["pid"])
    again = ns.module("guest_firewall", args)
    assert any("had lost its revert process and was reverted now" in w for w in again.get("warnings", [])), again
    assert again["changed"] is True and again["pending"] is True
    saved = open(str(tmp_path / "state" / "revert.nft")).read()
    assert "192.0.2.0/24" in saved  # the table saved for the revert is still the original one, not the unconfirmed apply
    ns.module("guest_firewall", {"state": "confirmed", "path": args["path"], "state_dir": args["state_dir"]})
    assert ns.run(["nft", "list", "ruleset"]) != original
