"""Every module's DOCUMENTATION, EXAMPLES and RETURN is valid YAML (ansible-doc and the sanity test
validate-modules fail on a single stray ': ' in a plain scalar; this catches it in the unit stage)."""

import ast
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = os.path.join(ROOT, "plugins", "modules")


def docs(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                yield name, node.value.value


@pytest.mark.parametrize("module", sorted(f for f in os.listdir(MODULES) if f.endswith(".py") and f != "__init__.py"))
def test_module_documentation_is_valid_yaml(module):
    found = dict(docs(os.path.join(MODULES, module)))
    assert set(found) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, module
    doc = yaml.safe_load(found["DOCUMENTATION"])
    assert doc["module"] == module[:-3] and doc["short_description"] and doc["description"]
    yaml.safe_load(found["EXAMPLES"])
    ret = yaml.safe_load(found["RETURN"])
    assert ret is None or isinstance(ret, dict), module
