"""The audit on real guests: the seeded violations are reported exactly, the gate exits non-zero,
check mode works, and unreachable guests / dead libvirt URIs are errors while the rest is audited."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))
from vmguard_reports import INVENTORY, failing, load  # noqa: E402

LAB = "vmguard-molecule"
HV = "hypervisor1"

# What the seeds must add to the baseline, and nothing else.
SEEDED = {
    ("DIV-02", "web1"), ("DIV-02", "mail1"),                 # cloned SSH host keys
    ("ISO-01", "web1"),                                     # extra listener on tcp/8081
    ("RB-02", "%s/%s.web1" % (HV, LAB)),                    # snapshot older than 72 h
    ("LEAK-02", "%s/%s.rogue" % (HV, LAB)),                 # VNC on 0.0.0.0
    ("VIS-01", "%s/%s.rogue" % (HV, LAB)),                  # domain not in the inventory
    ("VIS-04", "%s/%s.rogue" % (HV, LAB)),                  # ... and never hardened
}


def audit(*args, report_dir):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    cmd = ["ansible-playbook", "vmguard.hardening.audit", "-i", INVENTORY,
           "-e", "vmguard_report_dir=%s" % report_dir] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, check=False,
                          universal_newlines=True)


@pytest.fixture(scope="module")
def seeded():
    return load("seeded")


@pytest.fixture(scope="module")
def baseline():
    return load("baseline")


def test_seeds_are_reported_exactly(baseline, seeded):
    added = failing(seeded) - failing(baseline)
    removed = failing(baseline) - failing(seeded)
    assert added == SEEDED, sorted(added ^ SEEDED)
    assert removed == set(), sorted(removed)


def test_seeded_findings_say_why(seeded):
    by = {(f["rule"], f["subject"]["id"]): f for f in seeded["findings"]}
    assert "tcp/8081 python3" in by[("ISO-01", "web1")]["message"]
    assert "shared with mail1" in by[("DIV-02", "web1")]["message"]
    assert by[("DIV-02", "web1")]["severity"] == "critical"
    assert "seeded-old" in by[("RB-02", "%s/%s.web1" % (HV, LAB))]["message"]
    assert "0.0.0.0" in by[("LEAK-02", "%s/%s.rogue" % (HV, LAB))]["message"]
    assert "not in the inventory" in by[("VIS-01", "%s/%s.rogue" % (HV, LAB))]["message"]
    assert by[("ISO-09", "%s/%s.web1" % (HV, LAB))]["status"] == "waived"


def test_every_rule_on_every_subject(seeded):
    rules_per_kind = {}
    for f in seeded["findings"]:
        rules_per_kind.setdefault(f["subject"]["id"], set()).add(f["rule"])
    domain_rules = rules_per_kind["%s/%s.web1" % (HV, LAB)]
    for dom in ("web1", "mail1", "rogue"):
        assert rules_per_kind["%s/%s.%s" % (HV, LAB, dom)] == domain_rules
    assert len(domain_rules) == 25
    assert rules_per_kind["web1"] == rules_per_kind["mail1"] and len(rules_per_kind["web1"]) == 15
    assert len(rules_per_kind[HV]) == 11
    # DIV-06 judges the base image the guests' overlays come from, verified offline, one finding per image.
    images = [f for f in seeded["findings"] if f["subject"]["kind"] == "image"]
    assert len(images) == 1 and images[0]["rule"] == "DIV-06" and images[0]["status"] == "pass", images
    assert images[0]["subject"]["id"].startswith(HV + ":/var/lib/vmguard/images/")
    assert rules_per_kind["fleet"] == {"DIV-07"}
    assert {f["rule"] for f in seeded["findings"]} >= {"DIV-01", "RB-13", "ISO-11", "LEAK-08", "VIS-07"}
    assert seeded["summary"]["error"] == 0, [f for f in seeded["findings"] if f["status"] == "error"]


def test_gate_exits_non_zero_and_writes_all_reports(tmp_path):
    out = str(tmp_path / "gate")
    run = audit(report_dir=out)
    assert run.returncode == 2, run.stdout[-3000:]
    assert "vmguard audit:" in run.stdout and "DIV-02 web1" in run.stdout
    with open(os.path.join(out, "report.json")) as f:
        assert failing(json.load(f)) >= SEEDED
    ET.parse(os.path.join(out, "junit.xml"))
    with open(os.path.join(out, "report.html")) as f:
        assert "FAILED:" in f.read()


def test_tags_select_rules_and_drive_the_gate(tmp_path):
    only_div02 = audit("--tags", "DIV-02", report_dir=str(tmp_path / "div02"))
    assert only_div02.returncode == 2
    with open(str(tmp_path / "div02" / "report.json")) as f:
        rep = json.load(f)
    assert {f["rule"] for f in rep["findings"]} == {"DIV-02"}
    # A rule the seeds do not touch passes the gate on its own.
    only_div01 = audit("--tags", "DIV-01", report_dir=str(tmp_path / "div01"))
    assert only_div01.returncode == 0, only_div01.stdout[-3000:]


def test_check_mode_changes_nothing(tmp_path):
    run = audit("--check", "-e", "vmguard_fail_on=critical", "--tags", "DIV-02", report_dir=str(tmp_path / "check"))
    assert run.returncode == 2
    assert "changed=0" in run.stdout and "changed=1" not in run.stdout


def test_unreachable_guest_and_dead_uri_are_errors(tmp_path):
    extra = tmp_path / "faults.yml"
    extra.write_text(
        "all:\n"
        "  children:\n"
        "    vmguard_hypervisors:\n"
        "      hosts:\n"
        "        deadhv:\n"
        "          ansible_connection: local\n"
        "          ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n"
        "          vmguard_libvirt_uri: test:///nonexistent/node.xml\n"
        "    vmguard_guests:\n"
        "      hosts:\n"
        "        ghost:\n"
        "          ansible_host: 127.0.0.1\n"
        "          ansible_port: 1\n"
        "          ansible_user: nobody\n"
        "          ansible_ssh_common_args: -o ConnectTimeout=3 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null\n"
        "          vmguard_service: web\n"
        "          vmguard_hypervisor: deadhv\n"
        "          vmguard_domain: ghost\n")
    out = str(tmp_path / "faults")
    run = audit("-i", str(extra), report_dir=out)
    assert run.returncode == 2, run.stdout[-3000:]
    with open(os.path.join(out, "report.json")) as f:
        rep = json.load(f)
    ghost = [f for f in rep["findings"] if f["subject"]["id"] == "ghost"]
    assert ghost and all(f["status"] == "error" for f in ghost if f["rule"] != "VIS-02")
    assert any("unreachable" in f["message"] for f in ghost)
    dead = [f for f in rep["findings"] if f["subject"]["id"] == "deadhv"]
    assert dead and all(f["status"] == "error" for f in dead)
    assert any("cannot connect to test:///nonexistent/node.xml" in f["message"] for f in dead)
    # Everything else is still audited.
    assert failing(rep) >= SEEDED
