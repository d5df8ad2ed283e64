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


# --- the documentation says what the code accepts ---------------------------------------------------------

# Keys of an argument spec entry that the documentation states too (aliases, choices: ansible-doc shows them).
SPEC_KEYS = ("type", "elements", "default", "choices", "aliases", "required")


def spec_mismatches(spec, documented, where="options"):
    """How an argument spec (``ARGS`` of an action plugin, AnsibleModule style) and the options of a module's
    DOCUMENTATION differ, one message per difference naming the option's path; sub-options are compared too."""
    out = []
    documented = documented or {}
    for name in sorted(set(spec) - set(documented)):
        out.append("%s.%s: in the argument spec, not documented" % (where, name))
    for name in sorted(set(documented) - set(spec)):
        out.append("%s.%s: documented, not in the argument spec" % (where, name))
    for name in sorted(set(spec) & set(documented)):
        s, d = spec[name], documented[name]
        for key in SPEC_KEYS:
            want = s.get(key, "str" if key == "type" else False if key == "required" else None)
            got = d.get(key, "str" if key == "type" else False if key == "required" else None)
            if want != got:
                out.append("%s.%s: %s is %r in the argument spec, %r in the documentation" % (where, name, key, want, got))
        if s.get("options") or d.get("suboptions"):
            out += spec_mismatches(s.get("options") or {}, d.get("suboptions"), "%s.%s" % (where, name))
    return out


def test_spec_comparison_finds_offenders():
    spec = {"policy": {"type": "raw", "default": {}},
            "sarif_sources": {"type": "dict", "options": {"inventory": {"type": "list", "elements": "str"}}},
            "only_in_spec": {"type": "str"}}
    documented = {"policy": {"type": "dict", "default": {}, "description": "x"},
                  "sarif_sources": {"type": "dict", "description": "x"},
                  "only_in_docs": {"description": "x"}}
    assert spec_mismatches(spec, documented) == [
        "options.only_in_spec: in the argument spec, not documented",
        "options.only_in_docs: documented, not in the argument spec",
        "options.policy: type is 'raw' in the argument spec, 'dict' in the documentation",
        "options.sarif_sources.inventory: in the argument spec, not documented",
    ]
    documented["policy"]["type"] = "raw"
    documented["sarif_sources"]["suboptions"] = {"inventory": {"type": "list", "elements": "str", "description": "x"}}
    documented["only_in_spec"] = {"description": "x"}
    del documented["only_in_docs"]
    assert spec_mismatches(spec, documented) == []


def action_specs():
    """(module, ARGS) for every action plugin that validates its module's arguments itself with a
    module-level ARGS (the module file is documentation only: validate-modules cannot compare them)."""
    import importlib
    out = []
    for fname in sorted(os.listdir(os.path.join(ROOT, "plugins", "action"))):
        if fname.endswith(".py") and fname != "__init__.py":
            mod = importlib.import_module("ansible_collections.vmguard.hardening.plugins.action." + fname[:-3])
            if isinstance(getattr(mod, "ARGS", None), dict):
                out.append((fname[:-3], mod.ARGS))
    return out


def test_some_action_validates_its_own_arguments():
    assert "audit_evaluate" in dict(action_specs())


@pytest.mark.parametrize("module,spec", action_specs())
def test_action_argument_spec_is_documented(module, spec):
    doc = yaml.safe_load(dict(docs(os.path.join(MODULES, module + ".py")))["DOCUMENTATION"])
    problems = spec_mismatches(spec, doc.get("options"))
    assert not problems, "plugins/action/%s.py ARGS vs plugins/modules/%s.py DOCUMENTATION:\n  " % (module, module) \
        + "\n  ".join(problems)


def attributes_fragments():
    """Names of the attribute doc fragments (vmguard.hardening.attributes.<name>) plugins/doc_fragments offers."""
    from ansible_collections.vmguard.hardening.plugins.doc_fragments.attributes import ModuleDocFragment
    return set(name.lower() for name in vars(ModuleDocFragment) if name.isupper())


@pytest.mark.parametrize("module", sorted(f for f in os.listdir(MODULES) if f.endswith(".py") and f != "__init__.py"))
def test_module_documents_check_and_diff_mode(module):
    """Each module states its check and diff mode support: an attributes fragment of the collection, or its
    own attributes with both."""
    doc = yaml.safe_load(dict(docs(os.path.join(MODULES, module)))["DOCUMENTATION"])
    fragments = doc.get("extends_documentation_fragment") or []
    fragments = [fragments] if isinstance(fragments, str) else fragments
    used = [f for f in fragments if f.startswith("vmguard.hardening.attributes.")]
    assert set(f.rsplit(".", 1)[1] for f in used) <= attributes_fragments(), (module, used)
    own = doc.get("attributes") or {}
    assert len(used) == 1 or {"check_mode", "diff_mode"} <= set(own), \
        "%s: no vmguard.hardening.attributes.* fragment and no own check_mode/diff_mode attributes" % module
    assert not (used and own), "%s: both an attributes fragment and its own attributes" % module
