"""Fixtures several integration test files share: libvirt's test-suite corpus loaded into one
test-driver node file and audited once by a real `ansible-playbook vmguard.hardening.audit` run
(about a thousand domains: the run is shared, not repeated per file)."""

import collections
import json
import os
import re
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "output")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "corpus"))


VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def ansible_env(tmp_path, **extra):
    """The environment of an ansible-playbook run of these tests: the toolchain first on PATH, the collection
    through the repository's symlink tree and ansible.cfg, no colour, Ansible's local temp files under
    ``tmp_path``; ``extra`` adds or overrides variables."""
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp"))
    env.update(extra)
    return env


def wait_for(test, seconds, step=0.02):
    """Whether ``test()`` became true within ``seconds`` (polled every ``step``; asked once more at the end)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if test():
            return True
        time.sleep(step)
    return test()


@pytest.fixture(scope="session")
def corpus_node(tmp_path_factory):
    """(xml paths, node file, accepted {path: name}, rejected {path: libvirt's reason}); how many load
    and why the rest do not is written to tests/output/corpus-load.json."""
    pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")
    import corpus
    paths = corpus.find_domains()
    node, accepted, rejected = corpus.build_node(paths, str(tmp_path_factory.mktemp("corpus")))
    os.makedirs(OUT, exist_ok=True)
    reasons = collections.Counter(re.sub(r"'[^']*'", "'…'", r) for r in rejected.values())
    with open(os.path.join(OUT, "corpus-load.json"), "w") as f:
        json.dump({"xml_files": len(paths), "loaded": len(accepted), "rejected": len(rejected),
                   "rejected_by_reason": reasons.most_common(),
                   "rejected_files": dict((os.path.basename(p), r) for p, r in sorted(rejected.items()))}, f, indent=2)
    print("\ncorpus: %d XML files, %d loaded by the test driver, %d rejected (see tests/output/corpus-load.json)"
          % (len(paths), len(accepted), len(rejected)))
    return paths, node, accepted, rejected


@pytest.fixture(scope="session")
def corpus_audit(corpus_node, tmp_path_factory):
    """One real audit playbook run over the corpus node: (report directory, report.json, the run's
    return code, the end of its output). Each user asserts what it needs of it."""
    import test_audit_gate as gate
    node = corpus_node[1]
    tmp_path = tmp_path_factory.mktemp("corpus-audit")
    inv = tmp_path / "inventory.yml"
    inv.write_text("all:\n  children:\n    vmguard_hypervisors:\n      hosts:\n        corpus:\n"
                   "          ansible_connection: local\n          ansible_python_interpreter: %s\n"
                   "          vmguard_libvirt_uri: test://%s\n" % (sys.executable, node))
    out = str(tmp_path / "report")
    started = time.time()
    rc, log = gate.audit(tmp_path, str(inv), "-e", "vmguard_audit_fail=false", report_dir=out)
    print("\ncorpus audit: %d domains in %.1f s" % (len(corpus_node[2]), time.time() - started))
    report = None
    if os.path.exists(os.path.join(out, "report.json")):
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
    return out, report, rc, log[-4000:]
