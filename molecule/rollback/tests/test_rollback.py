"""Revert, catch, heal: the watcher quarantines the reverted guest's service links within 5 s while
management keeps working; the audit fails exactly RB-05..RB-10 on that guest (and RB-04 on its
domain: the snapshot predates the epoch); harden reconverges it, lifts the quarantine, and the audit
passes those rules again."""

import json
import os
import sys

import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))
from vmguard_reports import EPHEMERAL, INVENTORY, failing, finding, load, status  # noqa: E402

RUNNER = AnsibleRunner(INVENTORY)
HV = sorted(RUNNER.get_hosts("vmguard_hypervisors"))[0]
GUEST = "web1"
GVARS = RUNNER.get_variables(GUEST)
DOMAIN = GVARS["vmguard_domain"]
DOMAIN_ID = "%s/%s" % (HV, DOMAIN)
ROLLED_BACK = {"RB-05", "RB-06", "RB-07", "RB-08", "RB-09", "RB-10"}
PACKAGE, ACCOUNT, UNIT = "vmguard-rbtest", "vmguard-rbtest", "vmguard-rbtest.service"

testinfra_hosts = [GUEST]


def _hv():
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (HV, INVENTORY))


def _ledger():
    hv = _hv()
    uuid = hv.check_output("virsh -q -c qemu:///system domuuid %s" % DOMAIN)
    return json.loads(hv.file("/var/lib/vmguard/ledger/%s.json" % uuid).content_string)


def _revert():
    with open(os.path.join(EPHEMERAL, "revert.json")) as f:
        return json.load(f)


def test_quarantine_within_five_seconds_of_the_revert():
    r = _revert()
    assert float(r["seconds"]) <= 5.0, r
    assert r["links"] and all(link.endswith("down") for link in r["links"]), r["links"]
    svc_mac = r["quarantine"]["interfaces"][0]
    # Seen from inside the guest, over management: the service NIC has no carrier.
    (nic,) = [link for link in r["guest_links"] if link.get("address") == svc_mac]
    assert "LOWER_UP" not in nic["flags"] and "NO-CARRIER" in nic["flags"], nic


def test_the_revert_is_in_the_ledger():
    events = [e["event"] for e in _ledger()["events"]]
    assert "revert" in events and "quarantine" in events and "lift" in events, events
    assert events.index("revert") < events.index("quarantine") < len(events) - 1 - events[::-1].index("lift")


def test_audit_fails_exactly_the_rolled_back_state():
    before = failing(load("before"))  # the state the snapshot holds
    reverted = failing(load("reverted"))
    assert {r for r, s in reverted - before if s == GUEST} == ROLLED_BACK
    # On the domain: the revert target predates the security epoch (RB-04); nothing else is new anywhere.
    assert {r for r, s in reverted - before if s == DOMAIN_ID} == {"RB-04"}, sorted(reverted - before)
    assert {(r, s) for r, s in reverted - before if s not in (GUEST, DOMAIN_ID)} == set()
    assert finding(load("reverted"), "RB-04", DOMAIN_ID)["status"] == "fail"


def test_rollback_findings_name_what_came_back():
    rep = load("reverted")
    assert "1" in finding(rep, "RB-08", GUEST)["message"] and "2" in finding(rep, "RB-08", GUEST)["message"]
    assert ACCOUNT in finding(rep, "RB-07", GUEST)["message"]
    assert UNIT in finding(rep, "RB-09", GUEST)["message"]


def test_harden_reconverges_and_lifts_the_quarantine():
    after = load("harden")
    for rule in sorted(ROLLED_BACK | {"ISO-10"}):
        assert status(after, rule, GUEST) == "pass", (rule, finding(after, rule, GUEST)["message"])
    assert _ledger()["quarantine"] is None
    hv = _hv()
    for line in hv.check_output("virsh -q -c qemu:///system domiflist %s" % DOMAIN).splitlines():
        mac = line.split()[-1]
        assert hv.check_output("virsh -q -c qemu:///system domif-getlink %s %s" % (DOMAIN, mac)).endswith("up")


def test_guest_is_back_at_its_security_state(host):
    assert host.package(PACKAGE).version == "2"
    with host.sudo():
        assert host.check_output("passwd -S %s" % ACCOUNT).split()[1] == "L"
        assert host.check_output("systemctl is-enabled %s || true" % UNIT) == "masked"
        assert host.check_output("systemctl is-active %s || true" % UNIT) != "active"
        assert host.run("nft list ruleset").stdout.strip()


def test_epoch_moved_past_the_reverted_one(host):
    ledger = _ledger()
    with host.sudo():
        guest_epoch = json.loads(host.file("/var/lib/vmguard/epoch.json").content_string)["epoch"]
    assert ledger.get("pending_epoch") is None
    assert guest_epoch == ledger["epoch"] >= 2  # after the security changes (1), reconverged (2)


def test_retired_keys_rotated_again(host):
    retired = set(_ledger()["retired_fingerprints"])
    with host.sudo():
        fps = {line.split()[1] for line in host.check_output(
            "for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $f; done").splitlines()}
    assert fps and not fps & retired
