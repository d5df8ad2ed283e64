"""Every role keeps its contract: argument specs match defaults (no drift), variables carry the
collection-qualified prefix vmguard_<role>_ (internal: __vmguard_<role>_), every task is named
with a rule id or the role's tag, and the role README matches the specs."""

import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(d for d in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.isdir(os.path.join(ROOT, "roles", d)))
TASK_NAME = re.compile(r"^((DIV|RB|ISO|LEAK|VIS)-\d{2}|LAB|AUDIT) \| ")


def load(role, *parts):
    path = os.path.join(ROOT, "roles", role, *parts)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return yaml.safe_load(f)


def test_there_are_roles():
    assert {"golden_image", "lab"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    defaults = load(role, "defaults", "main.yml") or {}
    specs = load(role, "meta", "argument_specs.yml")
    assert specs, "%s has no meta/argument_specs.yml" % role
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), (
        "defaults without spec: %s; specs without default: %s"
        % (sorted(set(defaults) - set(options)), sorted(set(options) - set(defaults))))
    for name, spec in options.items():
        assert "description" in spec, name
        assert spec.get("default") == defaults[name], "%s: spec default %r != defaults %r" % (
            name, spec.get("default"), defaults[name])


@pytest.mark.parametrize("role", ROLES)
def test_variable_prefixes(role):
    public = "vmguard_%s_" % role
    for name in (load(role, "defaults", "main.yml") or {}):
        assert name.startswith(public), name
    for name in (load(role, "vars", "main.yml") or {}):
        assert name.startswith("__" + public), name


def _tasks(items):
    for t in items or []:
        yield t
        for key in ("block", "rescue", "always"):
            if key in t:
                yield from _tasks(t[key])


@pytest.mark.parametrize("role", ROLES)
def test_task_names_carry_rule_id_or_role_tag(role):
    tasks_dir = os.path.join(ROOT, "roles", role, "tasks")
    count = 0
    for fname in sorted(os.listdir(tasks_dir)):
        for task in _tasks(load(role, "tasks", fname)):
            count += 1
            assert "name" in task, "%s/%s: unnamed task %r" % (role, fname, task)
            assert TASK_NAME.match(task["name"]), "%s/%s: %s" % (role, fname, task["name"])
    assert count > 0


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_is_generated_from_specs(role):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "role_readme.py"), "--check", role],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
