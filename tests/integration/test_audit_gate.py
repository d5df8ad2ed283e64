"""The audit's CI gate cannot be passed by accident, and guest data cannot put hostile text on the
console or into the reports: real `ansible-playbook vmguard.hardening.audit` runs against libvirt's
test driver (test:///default, no daemon), every host on the local connection.

- an inventory whose groups match no host fails and names the groups it looked for;
- a host in both vmguard_hypervisors and vmguard_guests (a nested hypervisor) keeps its domain
  findings and its guest findings;
- --tags DIV-2 (a typo) is an error naming DIV-2, not a full audit; --skip-tags is honoured;
- vmguard_report_dir: "" is an error before anything runs;
- reports are 0640 in a 0750 directory, no temp file is left, and a set that cannot be written
  leaves the previous set unchanged;
- a listening process named with a terminal escape (in a network namespace of the test's own)
  shows escaped on the console and in junit.xml.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import ansible_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(VENV_BIN, "ansible-playbook")

pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")
if not os.path.exists(PLAYBOOK):
    pytest.skip("needs the toolchain in .venv (make setup)", allow_module_level=True)

HOST_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
    "vmguard_libvirt_uri": "test:///default",
}
# test:///default always has one running domain named "test".
TEST_DOMAIN = "nested/test"
EVIL = "\x1b[31mEVIL\x1b[0m"  # 13 bytes: fits a process name (comm, 15 bytes)


def inventory(tmp_path, groups, name="inventory.json"):
    """A JSON (hence YAML) inventory: {group: {host: vars}}."""
    doc = {"all": {"vars": HOST_VARS, "children": dict(
        (g, {"hosts": dict((h, v or {}) for h, v in hosts.items())}) for g, hosts in groups.items())}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


NESTED = {"vmguard_hypervisors": {"nested": {}},
          "vmguard_guests": {"nested": {"vmguard_service": "web", "vmguard_hypervisor": "nested",
                                        "vmguard_domain": "test"}}}


def audit(tmp_path, inv, *args, report_dir=None, prefix=()):
    env = ansible_env(tmp_path, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_FORCE_COLOR="0")
    cmd = list(prefix) + [PLAYBOOK, "vmguard.hardening.audit", "-i", inv]
    if report_dir is not None:
        cmd += ["-e", json.dumps({"vmguard_report_dir": report_dir})]
    out = subprocess.run(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         cwd=str(tmp_path), check=False, timeout=120)
    return out.returncode, out.stdout.decode("utf-8", "replace")


def load(report_dir):
    with open(os.path.join(report_dir, "report.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    """One full audit of a nested hypervisor (shared by the tests that only read its result)."""
    tmp_path = tmp_path_factory.mktemp("nested")
    out = str(tmp_path / "reports" / "run1")
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), report_dir=out)
    return rc, log, out


def test_inventory_matching_no_host_fails_and_names_the_groups(tmp_path):
    # A typo: the group is "vmguard_hypervisor", the audit looks for "vmguard_hypervisors".
    inv = inventory(tmp_path, {"vmguard_hypervisor": {"hv1": {}}})
    out = str(tmp_path / "out")
    rc, log = audit(tmp_path, inv, report_dir=out)
    assert rc != 0, log
    assert "nothing to audit" in log and "'vmguard_hypervisors'" in log and "'vmguard_guests'" in log, log
    assert not os.path.exists(out)


def test_nested_hypervisor_keeps_domain_and_guest_findings(nested_run):
    rc, log, out = nested_run
    rep = load(out)
    assert rc != 0, log  # the test driver's domain has no genid etc.: the gate fails, as it must
    by_kind = {}
    for f in rep["findings"]:
        by_kind.setdefault(f["subject"]["kind"], []).append(f)
    domain = [f for f in by_kind.get("domain", []) if f["subject"]["id"] == TEST_DOMAIN]
    assert len({f["rule"] for f in domain}) >= 10, sorted(f["rule"] for f in domain)
    assert any(f["status"] != "error" for f in domain)  # evaluated, not "no evidence collected"
    assert [f for f in by_kind.get("hypervisor", []) if f["subject"]["id"] == "nested"]
    guest = [f for f in by_kind.get("guest", []) if f["subject"]["id"] == "nested"]
    assert guest and not any("no guest evidence collected" in f["message"] for f in guest), guest[:3]
    assert "vmguard audit:" in log and "report.html" in log


def test_reports_are_private_and_no_temp_file_is_left(nested_run):
    _rc, _log, out = nested_run
    assert sorted(os.listdir(out)) == ["junit.xml", "report.html", "report.json", "report.oscal.json", "report.sarif"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o750
    for name in os.listdir(out):
        assert stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode) == 0o640, name
    ET.parse(os.path.join(out, "junit.xml"))


def test_tag_naming_no_rule_is_an_error_not_a_full_audit(tmp_path):
    out = str(tmp_path / "out")
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), "--tags", "DIV-2", report_dir=out)
    assert rc != 0, log
    assert "unknown tag(s): --tags DIV-2" in log, log
    assert not os.path.exists(out)  # failed before anything ran
    assert "Read every domain" not in log


@pytest.mark.parametrize("skip, gone, kept", [("diversity", "DIV-", "ISO-"), ("DIV-02", "DIV-02", "DIV-01")])
def test_skip_tags_are_honoured(tmp_path, skip, gone, kept):
    out = str(tmp_path / "out")
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), "--skip-tags", skip, report_dir=out)
    rep = load(out)
    rules = {f["rule"] for f in rep["findings"]}
    assert not [r for r in rules if r.startswith(gone)], sorted(rules)
    assert [r for r in rules if r.startswith(kept)], sorted(rules)
    assert gone not in rep["rules_selected"] and rc != 0


def test_skipping_the_audit_itself_fails_instead_of_passing_silently(tmp_path):
    out = str(tmp_path / "out")
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), "--skip-tags", "always", report_dir=out)
    assert rc != 0, log
    assert "the evaluation did not run" in log, log
    assert not os.path.exists(os.path.join(out, "report.json"))


def test_empty_report_dir_is_an_error_before_anything_runs(tmp_path):
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), report_dir="")
    assert rc != 0, log
    assert "report_dir (vmguard_report_dir / vmguard_audit_report_dir) is empty" in log, log
    assert "Read every domain" not in log
    # Nothing was written: not into the working directory (what "" would have meant) nor anywhere else.
    for _dirpath, _dirs, files in os.walk(str(tmp_path)):
        assert not set(files) & {"report.json", "junit.xml", "report.html", "report.sarif", "report.oscal.json"}, files


def test_unwritable_set_leaves_the_previous_set_unchanged(tmp_path, nested_run):
    _rc, _log, first = nested_run
    out = str(tmp_path / "reports")
    shutil.copytree(first, out)
    os.unlink(os.path.join(out, "report.html"))
    os.mkdir(os.path.join(out, "report.html"))  # report.html cannot be replaced
    before = dict((n, open(os.path.join(out, n), "rb").read()) for n in ("report.json", "junit.xml", "report.sarif"))
    time.sleep(1.1)  # a new set would carry a different generated_at
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), report_dir=out)
    assert rc != 0, log
    assert "cannot write the reports" in log and "previous reports there are unchanged" in log, log
    assert sorted(os.listdir(out)) == ["junit.xml", "report.html", "report.json", "report.oscal.json", "report.sarif"]
    after = dict((n, open(os.path.join(out, n), "rb").read()) for n in ("report.json", "junit.xml", "report.sarif"))
    assert after == before


NETNS = "vmg-gate-1"


@pytest.fixture
def evil_listener():
    """A process named with a terminal escape listening on 0.0.0.0:4444, inside a network namespace
    of our own (nothing is exposed outside it)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    subprocess.run(["ip", "netns", "delete", NETNS], stderr=subprocess.DEVNULL, check=False)
    if subprocess.run(["ip", "netns", "add", NETNS], check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    code = ("import socket, sys, time\n"
            "open('/proc/self/comm', 'w').write(%r)\n"
            "s = socket.socket(); s.bind(('0.0.0.0', 4444)); s.listen(1)\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(120)\n" % EVIL)
    proc = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        yield ["ip", "netns", "exec", NETNS]
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["ip", "netns", "delete", NETNS], check=False)


def test_terminal_escape_in_guest_data_is_shown_escaped(tmp_path, evil_listener):
    out = str(tmp_path / "out")
    rc, log = audit(tmp_path, inventory(tmp_path, NESTED), "-v", report_dir=out, prefix=evil_listener)
    assert rc != 0, log
    assert "\x1b" not in log and "\x9b" not in log  # ANSIBLE_NOCOLOR: any ESC would be the guest's
    assert "tcp/4444 \\x1b[31mEVIL\\x1b[0m" in log, log
    with open(os.path.join(out, "junit.xml"), "rb") as f:
        raw = f.read()
    assert b"\x1b" not in raw and b"tcp/4444 \\x1b[31mEVIL\\x1b[0m" in raw
    ET.fromstring(raw)
    iso = [f for f in load(out)["findings"] if f["rule"] == "ISO-01" and f["subject"]["id"] == "nested"]
    assert iso and EVIL in iso[0]["message"]  # report.json keeps the data as collected


def test_playbook_runs_from_the_checkout_without_collection_settings(tmp_path):
    """ansible-playbook playbooks/audit.yml from the repository root finds the collection through the
    project's ansible.cfg alone (after make setup), as a new user runs it."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    env.update(PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp"))
    out = str(tmp_path / "report")
    run = subprocess.run([PLAYBOOK, "playbooks/audit.yml", "-i", inventory(tmp_path, NESTED),
                          "-e", json.dumps({"vmguard_report_dir": out, "vmguard_audit_fail": False})],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False, timeout=180)
    log = run.stdout.decode("utf-8", "replace")
    assert run.returncode == 0, log[-3000:]
    assert load(out)["summary"]["total"] > 0


INJ_NODE = """<node><domain type='test'><name>inj{{ 7 * 7 }}</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
<memory>65536</memory><os><type>hvm</type></os><devices><graphics type='vnc' listen='0.0.0.0'/></devices></domain></node>"""
INJ_PLAY = """- hosts: vmguard_hypervisors
  gather_facts: false
  roles:
    - role: vmguard.hardening.audit
      vmguard_audit_fail: false
  tasks:
    - name: The published result keeps guest data as data
      ansible.builtin.assert:
        that:
          - vmguard_audit.findings | length == vmguard_audit.summary.total
          - vmguard_audit.gate | length == __vmguard_audit_result.gate_count
          - (vmguard_audit.findings | map(attribute='subject') | map(attribute='id') | select('search', 'inj') | first) == inj
          - (vmguard_audit.gate | map(attribute='subject') | select('search', 'inj') | first) == inj
      vars:
        inj: "{{ 'hv/inj{' ~ '{ 7 * 7 }' ~ '}' }}"
"""


def test_published_result_is_complete_and_guest_data_is_never_templated(tmp_path):
    """The evidence (hypervisor_facts publish=) and the audit result (audit_evaluate publish=) reach the
    play as host variables: complete, and a domain named like a Jinja expression stays that text (no
    variable the action sets is trusted as a template)."""
    node = tmp_path / "node.xml"
    node.write_text(INJ_NODE)
    inv = inventory(tmp_path, {"vmguard_hypervisors": {"hv": {"vmguard_libvirt_uri": "test://%s" % node}}})
    play = tmp_path / "play.yml"
    play.write_text(INJ_PLAY)
    env = ansible_env(tmp_path)
    run = subprocess.run([PLAYBOOK, str(play), "-i", inv, "-e", json.dumps({"vmguard_report_dir": str(tmp_path / "out")})],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path), check=False, timeout=180)
    log = run.stdout.decode("utf-8", "replace")
    assert run.returncode == 0, log[-3000:]
    assert "All assertions passed" in log and "inj49" not in log
    assert any(f["subject"]["id"] == "hv/inj{{ 7 * 7 }}" for f in load(str(tmp_path / "out"))["findings"])
