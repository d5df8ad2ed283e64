"""Seed, catch, fix, prove: the audit fails exactly the seeded isolation and leakage violations,
harden fixes them, the audit passes them, and the isolation holds by behaviour: web1 no longer
reaches mail1's SMTP port, and mail1's spoofed traffic no longer arrives, while management SSH works."""

import json
import os
import subprocess
import sys

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))
from vmguard_reports import EPHEMERAL, INVENTORY, failing, finding, load, status  # noqa: E402

SCENARIO = os.path.join(os.path.dirname(__file__), "..")
RUNNER = AnsibleRunner(INVENTORY)
HV = sorted(RUNNER.get_hosts("vmguard_hypervisors"))[0]
DOM = dict((g, "%s/%s" % (HV, RUNNER.get_variables(g)["vmguard_domain"])) for g in ("web1", "mail1"))
SEEDED = {
    ("ISO-01", "web1"),              # the extra listener on 8080
    ("ISO-02", DOM["web1"]), ("ISO-02", DOM["mail1"]),  # one network for two services
    ("ISO-03", DOM["mail1"]),        # no clean-traffic on mail1's interface
    ("ISO-06", DOM["web1"]), ("ISO-06", DOM["mail1"]),  # one disk in both
    ("LEAK-01", HV),                 # the shared image readable by everyone
    ("LEAK-02", DOM["web1"]),        # VNC and SPICE on 0.0.0.0
    ("LEAK-03", DOM["web1"]),        # SPICE clipboard and file transfer on
}

testinfra_hosts = ["web1", "mail1"]


def _probe(label):
    path = os.path.join(EPHEMERAL, "probe-%s.json" % label)
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def after():
    """Run the behaviour probe now (after harden) with the inventory Molecule gave the scenario."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           "--extra-vars=@%s" % os.path.join(SCENARIO, "..", "resources", "lab-vars.yml"),
           "-e", "iso_probe_label=after", "-e", "iso_probe_bridge_network=%s.svc-mail" % _lab_name(),
           os.path.join(SCENARIO, "probe.yml")]
    env = dict(os.environ, MOLECULE_SCENARIO_DIRECTORY=os.path.abspath(SCENARIO))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env, check=False)
    assert p.returncode == 0, p.stdout[-4000:]
    return _probe("after")


def _lab_name():
    return RUNNER.get_variables("web1")["vmguard_lab_name"]


def test_audit_fails_exactly_the_seeds():
    added = failing(load("seeded")) - failing(load("baseline"))
    assert added == SEEDED, sorted(added ^ SEEDED)


def test_harden_fixes_every_seed():
    after = load("harden")
    for rule, subject in sorted(SEEDED):
        assert status(after, rule, subject) == "pass", (rule, subject, finding(after, rule, subject)["message"])
    # Harden never deletes data: the disk it detached from both guests stays on the hypervisor, now
    # referenced by no domain (VIS-07, audit only) until a person removes it. Nothing else is new.
    new = failing(after) - failing(load("baseline"))
    assert new <= {("VIS-07", HV)}, sorted(new)
    if new:
        assert "shared-across-services.img" in finding(after, "VIS-07", HV)["message"]


def test_harden_puts_the_filter_on_the_moved_interface_live():
    # The lab writes vmguard_service_address as CIDR (10.254.x.y/24): the filter's IP is the bare address.
    want = RUNNER.get_variables("mail1")["vmguard_service_address"].split("/")[0]
    name = DOM["mail1"].split("/", 1)[1]
    hv = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (HV, INVENTORY))
    live = hv.check_output("virsh -c qemu:///system dumpxml %s" % name)
    assert "<filterref filter='clean-traffic'>" in live and "<parameter name='IP' value='%s'/>" % want in live, live
    assert "clean-traffic" in hv.check_output("virsh -c qemu:///system nwfilter-binding-list")


def test_before_harden_web_reached_mail_and_spoofing_arrived():
    before = _probe("before")
    assert before["smtp_from_web"] is True, before
    assert set(before["received"]) == {"genuine", "spoof-ip", "spoof-mac"}, before


def test_after_harden_web_cannot_reach_mail(after):
    assert after["smtp_from_web"] is False, after


def test_after_harden_spoofed_traffic_does_not_arrive(after):
    # The genuine probe is the control: the observer does hear mail1 on its own network.
    assert set(after["received"]) == {"genuine"}, after
    assert set(after["received"]["genuine"]) == {RUNNER.get_variables("mail1")["vmguard_service_address"].split("/")[0]}


def test_extra_listener_stopped_and_masked():
    host = testinfra.get_host("ansible://web1?ansible_inventory=%s" % INVENTORY)
    with host.sudo():
        assert host.check_output("systemctl is-enabled vmguard-extra.service || true") == "masked"
        assert not host.socket("tcp://0.0.0.0:8080").is_listening


def test_management_ssh_still_works(host):
    assert host.check_output("hostname") == host.backend.get_hostname()
