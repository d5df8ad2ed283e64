"""Clone, catch, fix: the audit fails exactly DIV-01/02/04 on the clones, the harden run
reseals them, the audit passes them, old keys are retired in the ledger, and the guests stay
reachable over strictly pinned host keys."""

import json
import os
import re
import sys

import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))
from vmguard_reports import INVENTORY, failing, load, status  # noqa: E402

RUNNER = AnsibleRunner(INVENTORY)
GUESTS = sorted(RUNNER.get_hosts("vmguard_guests"))
HV = sorted(RUNNER.get_hosts("vmguard_hypervisors"))[0]
CLONED = {(r, g) for r in ("DIV-01", "DIV-02", "DIV-04") for g in ("web1", "mail1")}

testinfra_hosts = GUESTS


def test_audit_fails_exactly_the_cloned_identity():
    added = failing(load("cloned")) - failing(load("baseline"))
    assert added == CLONED, sorted(added ^ CLONED)


def test_harden_fixes_the_clone_and_breaks_nothing():
    before = load("harden/before-harden")
    after = load("harden")
    for rule, guest in CLONED:
        # The second converge (idempotence) overwrote before-harden: it already shows the fixed state.
        assert status(after, rule, guest) == "pass", (rule, guest)
    assert failing(after) <= failing(load("baseline")), sorted(failing(after) - failing(load("baseline")))
    assert failing(before) <= failing(load("baseline"))


def test_identities_distinct_again():
    ids, seeds, fps = set(), set(), []
    for g in GUESTS:
        h = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (g, INVENTORY))
        with h.sudo():
            ids.add(h.check_output("cat /etc/machine-id"))
            seeds.add(h.check_output("sha256sum /var/lib/systemd/random-seed | cut -d' ' -f1"))
            fps.extend(line.split()[1] for line in h.check_output(
                "for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $f; done").splitlines())
        assert h.file("/var/lib/dbus/machine-id").linked_to in ("/etc/machine-id", None) or \
            not h.file("/var/lib/dbus/machine-id").exists
    assert len(ids) == len(GUESTS) and len(seeds) == len(GUESTS)
    assert len(set(fps)) == len(fps) == 2 * len(GUESTS)


def test_guest_reachable_with_strict_host_keys(host):
    # testinfra connects with the inventory's ssh args: StrictHostKeyChecking=yes on the lab's known_hosts.
    v = host.ansible.get_variables()
    assert "StrictHostKeyChecking=yes" in v["ansible_ssh_common_args"]
    assert host.check_output("hostname") == v["inventory_hostname"]


def test_old_keys_retired_in_the_ledger():
    cloned = load("cloned")
    (div02,) = [f for f in cloned["findings"] if f["rule"] == "DIV-02" and f["subject"]["id"] == "mail1"]
    shared = set(div02["evidence"]["shared"])
    assert len(shared) == 2
    hv = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (HV, INVENTORY))
    for g in GUESTS:
        dom = RUNNER.get_variables(g)["vmguard_domain"]
        uuid = hv.check_output("virsh -c qemu:///system domuuid %s" % dom)
        rec = json.loads(hv.file("/var/lib/vmguard/ledger/%s.json" % uuid).content_string)
        assert set(rec["retired_fingerprints"]) >= shared, (g, rec["retired_fingerprints"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["last_hardened"])
        assert hv.file("/var/lib/vmguard/ledger/%s.json" % uuid).mode == 0o600


def test_retired_keys_do_not_come_back():
    after = load("harden")
    for g in GUESTS:
        assert status(after, "RB-06", g) == "pass"
