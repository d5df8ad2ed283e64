"""The AWX / Ansible Automation Platform path (issue 14 item 5):

- meta/execution-environment.yml is a valid ansible-builder 3 definition: `ansible-builder create`
  writes its build context (no container engine needed) with the collection's Python and system
  requirements and its Galaxy dependencies;
- the audit playbook runs through ansible-runner with a private data directory laid out as AWX
  lays it out (project/, inventory/, env/), against libvirt's test driver: the report set is
  written and the gate's failure is the run's status.
"""

import json
import os
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
BUILDER = os.path.join(VENV_BIN, "ansible-builder")
ansible_runner = pytest.importorskip("ansible_runner", reason="needs ansible-runner (make setup installs it)")
pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")


def _lines(path):
    with open(path) as f:
        return [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]


def test_execution_environment_build_context(tmp_path):
    if not os.path.exists(BUILDER):
        pytest.skip("needs ansible-builder (make setup installs it)")
    ctx = tmp_path / "context"
    run = subprocess.run([BUILDER, "create", "-f", os.path.join(ROOT, "meta", "execution-environment.yml"),
                          "-c", str(ctx), "--output-filename", "Containerfile"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert run.returncode == 0, run.stdout
    build = ctx / "_build"
    # The modules' Python libraries and the packages that build them, as the collection declares them.
    assert _lines(str(build / "requirements.txt")) == _lines(os.path.join(ROOT, "requirements.txt"))
    assert _lines(str(build / "bindep.txt")) == _lines(os.path.join(ROOT, "bindep.txt"))
    with open(str(build / "requirements.yml")) as f:
        galaxy = dict((c["name"], c.get("version")) for c in yaml.safe_load(f)["collections"])
    with open(os.path.join(ROOT, "galaxy.yml")) as f:
        assert galaxy == yaml.safe_load(f)["dependencies"]
    containerfile = (ctx / "Containerfile").read_text()
    assert "ansible-core" in containerfile and "ansible-runner" in containerfile
    assert "install-from-bindep" in containerfile and "ansible-galaxy" in containerfile


NESTED_INVENTORY = {"all": {
    "vars": {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
             "vmguard_libvirt_uri": "test:///default"},
    "children": {"vmguard_hypervisors": {"hosts": {"nested": {}}},
                 "vmguard_guests": {"hosts": {"nested": {"vmguard_service": "web", "vmguard_hypervisor": "nested",
                                                         "vmguard_domain": "test"}}}}}}


def private_data_dir(tmp_path, extravars):
    """project/ (the checkout, as AWX syncs a project), inventory/hosts, env/extravars and env/envvars."""
    pdd = tmp_path / "pdd"
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "env").mkdir()
    os.symlink(ROOT, str(pdd / "project"))
    (pdd / "inventory" / "hosts").write_text(json.dumps(NESTED_INVENTORY))
    (pdd / "env" / "extravars").write_text(json.dumps(extravars))
    (pdd / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".cache", "collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}))
    return str(pdd)


@pytest.mark.parametrize("fail, status", [(True, "failed"), (False, "successful")])
def test_audit_through_ansible_runner(tmp_path, fail, status):
    out = str(tmp_path / "reports")
    pdd = private_data_dir(tmp_path, {"vmguard_report_dir": out, "vmguard_audit_fail": fail})
    r = ansible_runner.run(private_data_dir=pdd, playbook="playbooks/audit.yml", quiet=True,
                           artifact_dir=str(tmp_path / "artifacts"), timeout=300)
    stdout = r.stdout.read()
    assert r.status == status, stdout[-3000:]
    assert (r.rc != 0) == fail
    assert sorted(os.listdir(out)) == ["junit.xml", "report.html", "report.json", "report.oscal.json", "report.sarif"]
    with open(os.path.join(out, "report.json")) as f:
        rep = json.load(f)
    assert rep["summary"]["total"] > 0 and rep["summary"]["fail"] > 0
    # The gate decided the run: its task failed (or, with vmguard_audit_fail false, was skipped).
    gate = [e for e in r.events if e.get("event_data", {}).get("task") == "AUDIT | Fail the play on findings at or above the gate"
            and e["event"] in ("runner_on_failed", "runner_on_skipped", "runner_on_ok")]
    assert [e["event"] for e in gate] == ["runner_on_failed" if fail else "runner_on_skipped"], [e["event"] for e in gate]
    assert os.path.isdir(os.path.join(str(tmp_path / "artifacts")))
