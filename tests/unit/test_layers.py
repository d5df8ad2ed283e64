"""The layers of plugins/module_utils stay visible and one-directional:

- audit/ (policy, rules, engine, planning, reports) is pure: evidence in, findings and plans out. It
  imports neither evidence/ nor remediation/ nor the Ansible runtime (ansible.*), so it runs in
  unit tests, in the controller's action plugin and anywhere else unchanged.
- common/ (atomic writes, time) imports no other layer of the collection.
- the status vocabulary is spelled out once (audit/status.py).
- one atomic-write helper and one set of time helpers: no module writes its own temp-file dance or
  formats times itself.
"""

import ast
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MU = os.path.join(ROOT, "plugins", "module_utils")
PREFIX = "ansible_collections.vmguard.hardening.plugins.module_utils."
LAYERS = ("audit", "common", "evidence", "remediation", "lab")


def python_files(*parts):
    base = os.path.join(*parts)
    for dirpath, dirnames, filenames in os.walk(base):
        for f in sorted(filenames):
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            if node.module + "." == PREFIX:  # from ...module_utils import evidence
                for a in node.names:
                    yield PREFIX + a.name


def layer_of(module):
    if not module.startswith(PREFIX):
        return None
    return module[len(PREFIX):].split(".")[0]


def test_module_utils_has_only_the_layers():
    entries = sorted(e for e in os.listdir(MU) if not e.startswith(("_", ".")))
    assert entries == sorted(LAYERS), entries


@pytest.mark.parametrize("path", list(python_files(MU, "audit")), ids=lambda p: os.path.relpath(p, MU))
def test_pure_audit_layer_imports_no_other_layer_and_no_ansible(path):
    bad = [m for m in imports(path) if layer_of(m) in ("evidence", "remediation", "lab")
           or m == "ansible" or m.startswith("ansible.")]
    assert bad == [], "%s imports %s" % (os.path.relpath(path, ROOT), bad)


@pytest.mark.parametrize("path", list(python_files(MU, "common")), ids=lambda p: os.path.relpath(p, MU))
def test_common_layer_imports_no_other_layer(path):
    bad = [m for m in imports(path) if layer_of(m) not in (None, "common") or m.startswith("ansible.")]
    assert bad == [], "%s imports %s" % (os.path.relpath(path, ROOT), bad)


def test_every_plugin_imports_module_utils_through_a_layer():
    for path in python_files(ROOT, "plugins"):
        for m in imports(path):
            if m.startswith(PREFIX):
                assert layer_of(m) in LAYERS, "%s imports %s" % (os.path.relpath(path, ROOT), m)


def _code_files():
    for path in python_files(ROOT, "plugins"):
        with open(path) as f:
            yield os.path.relpath(path, ROOT), f.read()


def test_status_vocabulary_is_defined_once():
    for rel, text in _code_files():
        if rel.endswith(os.path.join("audit", "status.py")):
            continue
        code = re.sub(r'"""[\s\S]*?"""', "", text)  # docstrings may mention statuses
        assert not re.search(r'"waived",\s*"not_applicable"', code), rel
        assert not re.search(r'"pass",\s*"fail"', code), rel
        assert not re.search(r'^SEVERITIES\s*=|^AREAS\s*=|^STATUSES\s*=', code, re.M), rel


def test_one_atomic_write_and_one_set_of_time_helpers():
    for rel, text in _code_files():
        if rel.endswith(os.path.join("common", "fsutil.py")) or rel.endswith(os.path.join("common", "timeutil.py")):
            continue
        code = re.sub(r'"""[\s\S]*?"""', "", text)
        assert not re.search(r"\bos\.(rename|replace)\(", code) or rel.endswith(("report.py", "reseal.py")), \
            "%s renames files itself: use common/fsutil.atomic_write" % rel
        assert not re.search(r"time\.(strftime|gmtime|mktime|strptime)\(|\.strptime\(|\.strftime\(", code), \
            "%s formats or parses times itself: use common/timeutil" % rel
