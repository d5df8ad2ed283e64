"""Every role keeps its contract: argument specs match defaults (no drift), variables carry the
collection-qualified prefix vmguard_<role>_ (internal: __vmguard_<role>_), every task is named
with the rule ids it enforces (and tagged with them) or with the role's own prefix, and the role README
matches the specs."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import firewall

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(d for d in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.isdir(os.path.join(ROOT, "roles", d)))


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


def _rule_ids():
    """Rule ids of the registry (the engine registers every rule when it is imported)."""
    try:
        from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine
    except ImportError:  # the layout before module_utils had sub-packages
        from ansible_collections.vmguard.hardening.plugins.module_utils import engine
    return frozenset(engine.RULES)


RULE_IDS = _rule_ids()
RULE_NAME = re.compile(r"^(?P<ids>[A-Z]+-\d{2}(?:, [A-Z]+-\d{2})*) \| \S")
ROLE_NAME = re.compile(r"^(?P<prefix>[A-Z][A-Z_]*) \| \S")
# Files another change is rewriting: their offenders are known (strict=False: a fixed file shows XPASS).
TASK_NAME_XFAIL = {}


def _tags(task):
    tags = task.get("tags", [])
    return {str(tags)} if isinstance(tags, (str, int)) else set(str(t) for t in tags)


def _walk(items, inherited):
    """(task, effective tags) for every task, into blocks; tags of blocks are inherited."""
    for t in items or []:
        yield t, inherited | _tags(t)
        for key in ("block", "rescue", "always"):
            if key in t:
                yield from _walk(t[key], inherited | _tags(t))


def _child_file(task):
    """(file, tags its tasks inherit from this task) for import_tasks / include_tasks of a literal file."""
    for action in ("ansible.builtin.import_tasks", "import_tasks"):
        if action in task:
            arg = task[action]
            return (arg if isinstance(arg, str) else arg.get("file")), _tags(task)
    for action in ("ansible.builtin.include_tasks", "include_tasks"):
        if action in task:
            arg = task[action]
            if isinstance(arg, str):
                return arg, set()  # an include's own tags select only the include
            return arg.get("file"), _tags(arg.get("apply") or {})
    return None, set()


def role_task_contexts(role):
    """{file name: [(task, effective tags)]}: every task file of the role, each task with the tags it
    carries when it runs, following imports and includes from main.yml (files reached from nowhere
    count with their own tags only; a file reached twice is checked in every context)."""
    tasks_dir = os.path.join(ROOT, "roles", role, "tasks")
    out = dict((f, []) for f in sorted(os.listdir(tasks_dir)) if f.endswith((".yml", ".yaml")))
    reached = set()

    def visit(fname, inherited, depth=0):
        if fname not in out or depth > 10:
            return
        reached.add(fname)
        for task, tags in _walk(load(role, "tasks", fname), inherited):
            out[fname].append((task, tags))
            child, passed = _child_file(task)
            if child and "{{" not in child:
                visit(child, (tags - _tags(task)) | passed, depth + 1)

    if "main.yml" in out:
        visit("main.yml", set())
    for fname in sorted(set(out) - reached):
        visit(fname, set())
    return out


def task_name_problems(role, fname, contexts):
    problems = []
    for task, tags in contexts:
        name = task.get("name")
        if not name:
            problems.append("unnamed task %r" % (dict((k, v) for k, v in task.items() if k != "block"),))
            continue
        rule = RULE_NAME.match(name)
        if rule:
            ids = rule.group("ids").split(", ")
            unknown = [i for i in ids if i not in RULE_IDS]
            missing = [i for i in ids if i not in tags]
            if unknown:
                problems.append("%r: %s not in the rule registry" % (name, ", ".join(unknown)))
            if missing:
                problems.append("%r: named for %s but not tagged %s (tags: %s)" % (
                    name, ", ".join(ids), ", ".join(missing), ", ".join(sorted(tags)) or "none"))
            continue
        prefix = ROLE_NAME.match(name)
        if prefix and prefix.group("prefix") == role.upper():
            continue
        problems.append("%r: starts with neither rule ids from the registry ('DIV-02 | ...', 'DIV-01, DIV-02 | "
                        "...') nor the role prefix '%s | '" % (name, role.upper()))
    return ["roles/%s/tasks/%s: %s" % (role, fname, p) for p in problems]


def _task_files():
    for role in ROLES:
        for fname in sorted(f for f in os.listdir(os.path.join(ROOT, "roles", role, "tasks"))
                            if f.endswith((".yml", ".yaml"))):
            path = "roles/%s/tasks/%s" % (role, fname)
            marks = ([pytest.mark.xfail(strict=False, reason=TASK_NAME_XFAIL[path])]
                     if path in TASK_NAME_XFAIL else [])
            yield pytest.param(role, fname, id=path, marks=marks)


@pytest.mark.parametrize("role, fname", list(_task_files()))
def test_task_names_tell_the_truth(role, fname):
    """Every task is named 'RULE-ID[, RULE-ID...] | ...' (ids of the registry) or '<ROLE> | ...' (the
    role's own upper-case prefix: LAB, AUDIT, HYPERVISOR, GUEST, GOLDEN_IMAGE); a task named for rule
    ids carries each of them as a tag (its own, its blocks' or the importing task's)."""
    contexts = role_task_contexts(role)[fname]
    assert contexts, "roles/%s/tasks/%s has no task" % (role, fname)
    problems = task_name_problems(role, fname, contexts)
    assert not problems, "\n".join(problems)


def test_task_name_check_finds_offenders():
    """The convention check itself: each kind of offender is reported with file and task name."""
    contexts = [
        ({"name": "DIV-06 | golden image | Create the cache directory"}, {"golden_image"}),
        ({"name": "DIV-01, DIV-02 | ENFORCE | Reseal"}, {"DIV-01"}),
        ({"name": "XYZ-99 | ENFORCE | Nothing"}, {"XYZ-99"}),
        ({"name": "AUDIT | Borrowed prefix"}, set()),
        ({"name": "Lab | lower-case prefix"}, set()),
        ({"ansible.builtin.debug": {"msg": "x"}}, set()),
        ({"name": "LAB | Fine"}, set()),
        ({"name": "DIV-01, DIV-02 | ENFORCE | Fine"}, {"DIV-01", "DIV-02", "diversity"}),
    ]
    problems = task_name_problems("lab", "sample.yml", contexts)
    assert all(p.startswith("roles/lab/tasks/sample.yml: ") for p in problems)
    text = "\n".join(problems)
    assert "'DIV-06 | golden image | Create the cache directory': named for DIV-06 but not tagged DIV-06" in text
    assert "'DIV-01, DIV-02 | ENFORCE | Reseal': named for DIV-01, DIV-02 but not tagged DIV-02" in text
    assert "'XYZ-99 | ENFORCE | Nothing': XYZ-99 not in the rule registry" in text
    assert "'AUDIT | Borrowed prefix': starts with neither" in text
    assert "'Lab | lower-case prefix': starts with neither" in text
    assert "unnamed task" in text
    assert "Fine" not in text
    assert len(problems) == 6


def test_tags_are_inherited_as_ansible_does():
    """import_tasks passes its tags on, include_tasks only its apply tags, blocks their tags."""
    ctx = role_task_contexts("golden_image")
    tags = dict((t["name"], tg) for t, tg in ctx["build.yml"])
    assert {"DIV-06", "diversity", "golden_image"} <= tags["DIV-06 | ENFORCE | Seal the image tree"]
    assert "DIV-06" not in tags["GOLDEN_IMAGE | Create the cache directory"]
    assert "golden_image" in tags["GOLDEN_IMAGE | Create the cache directory"]
    lab = role_task_contexts("lab")
    assert all({"lab", "lab_access"} <= tg for _name, tg in lab["access.yml"])


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_is_generated_from_specs(role):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "role_readme.py"), "--check", role],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


# Modules that edit a file in place (read, change, write back) without a lock of their own.
EDITORS = {"known_hosts", "lineinfile", "blockinfile", "replace", "ini_file", "xml"}


def shared_file_races(contexts):
    """Tasks that edit one controller file for every host of the play at once: delegated to localhost, an
    in-place editor, and neither run_once nor throttle: 1 (concurrent hosts lose each other's edits)."""
    out = []
    for task, _tags_ in contexts:
        if task.get("delegate_to") not in ("localhost", "127.0.0.1"):
            continue
        module = next((k.rsplit(".", 1)[-1] for k in task if k.rsplit(".", 1)[-1] in EDITORS), None)
        if module and not task.get("run_once") and task.get("throttle") != 1:
            out.append("%r: %s on the controller from every host at once (add throttle: 1 or run_once)"
                       % (task.get("name"), module))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_no_two_hosts_edit_one_controller_file_at_once(role):
    problems = []
    for fname, contexts in role_task_contexts(role).items():
        problems += ["roles/%s/tasks/%s: %s" % (role, fname, p) for p in shared_file_races(contexts)]
    assert not problems, "\n".join(problems)


def test_shared_file_race_check_finds_offenders():
    contexts = [
        ({"name": "A", "ansible.builtin.known_hosts": {}, "delegate_to": "localhost"}, set()),
        ({"name": "B", "community.general.ini_file": {}, "delegate_to": "localhost", "throttle": 2}, set()),
        ({"name": "C", "ansible.builtin.known_hosts": {}, "delegate_to": "localhost", "throttle": 1}, set()),
        ({"name": "D", "ansible.builtin.lineinfile": {}, "delegate_to": "localhost", "run_once": True}, set()),
        ({"name": "E", "ansible.builtin.lineinfile": {}}, set()),
        ({"name": "F", "ansible.builtin.copy": {}, "delegate_to": "localhost"}, set()),
    ]
    problems = shared_file_races(contexts)
    assert [p.split(":")[0] for p in problems] == ["'A'", "'B'"]


def test_pin_host_keys_unpins_every_rotated_keys_old_line_whatever_its_type():
    """known_hosts (state present) replaces only a line of the new key's type: the retired P-384 line stayed next
    to the new P-256 one. The unpin task's regexp (rendered as Ansible renders it) removes this guest's old line of
    any type, keeps other keys and other hosts' lines with the same (shared) key."""
    import jinja2
    from ansible.plugins.filter.core import FilterModule
    tasks = load("guest", "tasks", "pin_host_keys.yml")
    unpin = [t for t in tasks if t.get("ansible.builtin.lineinfile", {}).get("state") == "absent"]
    assert len(unpin) == 1 and unpin[0].get("throttle") == 1 and unpin[0]["delegate_to"] == "localhost"
    env = jinja2.Environment()
    env.filters.update(FilterModule().filters())
    old384 = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQ+old/key="
    item = {"type": "ecdsa-sha2-nistp384", "old_public_key": old384,
            "new_public_key": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY+new="}
    names = dict(item=item, vmguard_guest_known_hosts_name="web1.example")
    for var, template in (unpin[0].get("vars") or {}).items():
        names[var] = env.from_string(template).render(**names)
    regexp = env.from_string(unpin[0]["ansible.builtin.lineinfile"]["regexp"]).render(**names)
    lines = {"web1.example " + old384: True, "web1.example,10.0.0.5 " + old384 + " comment": True,
             "10.0.0.5,web1.example\t" + old384: True,
             "web1.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5+still/in/use=": False,
             "mail1.example " + old384: False, "web1Xexample " + old384: False, "web1.example.org " + old384: False}
    for line, removed in lines.items():
        assert bool(re.search(regexp, line)) is removed, line


def test_the_golden_image_cache_key_covers_the_seal_code():
    """A cached build is republished only while its inputs are the same: the seal's code (what identifies a guest,
    how a tree and an image are checked) is one of them, so an upgrade that changes it builds, seals and verifies a
    new image instead of republishing one an older seal passed. Every module the seal is made of is listed."""
    listed = load("golden_image", "vars", "main.yml")["__vmguard_golden_image_seal_code"]
    assert sorted(listed) == ["plugins/module_utils/evidence/image_seal.py", "plugins/module_utils/remediation/image_seal.py"]
    assert all(os.path.isfile(os.path.join(ROOT, p)) for p in listed)
    with open(os.path.join(ROOT, "roles", "golden_image", "tasks", "cache.yml")) as f:
        tasks = yaml.safe_load(f)
    inputs = [t for t in tasks if t["name"].startswith("GOLDEN_IMAGE | Compute the input digest")][0]["vars"]
    assert "__vmguard_golden_image_seal_code" in inputs["__vmguard_golden_image_inputs"]["seal_code"]


def test_the_audit_preflight_checks_every_setting_the_evaluation_validates():
    """The preflight runs before any evidence is read: a setting the evaluation validates that the preflight is not
    given (fail_on was not) fails only after the whole fleet was read. Evidence variables and publish are the
    evaluation's own."""
    def args(name):
        (task,) = [t for t in load("audit", "tasks", name) if "vmguard.hardening.audit_evaluate" in t]
        return set(task["vmguard.hardening.audit_evaluate"])
    own = {"hypervisor_evidence_var", "guest_evidence_var", "vcenter_evidence_var", "publish"}
    assert args("evaluate.yml") - own <= args("preflight.yml"), sorted(args("evaluate.yml") - own - args("preflight.yml"))
    specs = load("audit", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert specs["vmguard_audit_fail_on"]["choices"] == ["low", "medium", "high", "critical"]


def _unit_file(text):
    """{(section, key): [values]} of a systemd unit file's text."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def test_the_guest_firewall_unit_follows_every_nftables_ruleset_load():
    """nftables.service loads /etc/nftables.conf, which starts with "flush ruleset" (Debian's), at start, restart and
    reload: table inet vmguard is gone after each unless vmguard-firewall.service loads it again after it. PartOf=
    propagates stop and restart only: `systemctl reload nftables` left the guest without its table until the reboot.
    The unit is the module's (guest_firewall writes and enables it); the role leaves path and boot_unit at their
    defaults, so the unit loads the file the module persists."""
    u = _unit_file(firewall.boot_unit("/usr/sbin/nft", "/etc/vmguard/firewall.nft"))
    assert u[("Unit", "After")] == ["nftables.service"]
    assert u[("Unit", "PartOf")] == ["nftables.service"]
    assert u[("Unit", "ReloadPropagatedFrom")] == ["nftables.service"]
    assert u[("Service", "ExecStart")] == u[("Service", "ExecReload")] == ["/usr/sbin/nft -f /etc/vmguard/firewall.nft"]
    assert u[("Unit", "ConditionPathExists")] == ["/etc/vmguard/firewall.nft"]
    tasks = load("guest", "tasks", "firewall.yml")
    calls = [t["vmguard.hardening.guest_firewall"] for t in tasks if "vmguard.hardening.guest_firewall" in t]
    assert calls and all("path" not in args and "boot_unit" not in args for args in calls)
    assert not [t for t in tasks if {"ansible.builtin.copy", "ansible.builtin.systemd_service"} & set(t)]


def test_every_role_writes_the_ledger_the_audit_reads():
    """The watcher (revert events, RB-05/RB-11), the start gate (VIS-04) and the guest's ledger step write the ledger
    the audit reads: three variables with the same literal default split as soon as one was set (a watcher writing revert
    events where the audit does not look leaves RB-05 blind; a gate reading an empty directory lets every dormant domain
    start as "never hardened"). The hypervisor's and the guest's follow the audit's."""
    import jinja2
    audit = load("audit", "defaults", "main.yml")["vmguard_audit_ledger_dir"]
    env = jinja2.Environment()
    for role, var in (("hypervisor", "vmguard_hypervisor_ledger_dir"), ("guest", "vmguard_guest_ledger_dir")):
        template = env.from_string(load(role, "defaults", "main.yml")[var])
        assert template.render() == audit
        assert template.render(vmguard_audit_ledger_dir="/srv/vmguard/ledger") == "/srv/vmguard/ledger"
    with open(os.path.join(ROOT, "docs", "DESIGN.md")) as f:
        assert "vmguard_ledger_dir" not in f.read()  # a variable nothing reads


def _read_variables():
    """Every vmguard_* name the collection's roles, playbooks and plugins read: mentioned outside their documentation
    (meta/) and outside the keys of the roles' defaults (which declare a variable, not read it)."""
    names = set()
    for top in ("roles", "playbooks", "plugins"):
        for base, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml", ".py", ".j2")) and "meta" not in base.split(os.sep):
                    with open(os.path.join(base, name)) as f:
                        text = f.read()
                    if base.split(os.sep)[-1] == "defaults":
                        text = re.sub(r"(?m)^vmguard_\w+:", "", text)
                    names.update(re.findall(r"\bvmguard_[a-z0-9_]*[a-z0-9]\b", text))
    return names


def documented_but_unread(texts, read):
    """The `vmguard_*` variables ``texts`` (name -> text) name in backquotes that nothing in ``read`` is."""
    out = []
    for where, text in sorted(texts.items()):
        for var in sorted(set(re.findall(r"`(vmguard_[a-z0-9_]*[a-z0-9])`", text))):
            if var not in read:
                out.append("%s names `%s`, which no role, playbook or plugin reads" % (where, var))
    return out


def test_every_variable_the_docs_name_exists():
    """A variable named in the docs that nothing reads is a toggle that does nothing: DESIGN.md named a
    `vmguard_ledger_dir` and a `vmguard_mgmt_networks` no code ever read (the ledger dir and the management networks
    are other variables), so setting them changed nothing."""
    texts = {}
    for rel in ["README.md", "docs/DESIGN.md", "docs/CATALOG.md", "docs/RELIABILITY.md"] + [
            "roles/%s/README.md" % r for r in ROLES]:
        if os.path.exists(os.path.join(ROOT, rel)):
            with open(os.path.join(ROOT, rel)) as f:
                texts[rel] = f.read()
    read = _read_variables()
    assert not documented_but_unread(texts, read), "\n".join(documented_but_unread(texts, read))
    assert documented_but_unread({"x.md": "set `vmguard_nothing_reads_this` and `vmguard_guest_mode`"}, read) == [
        "x.md names `vmguard_nothing_reads_this`, which no role, playbook or plugin reads"]


SPEC_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict, "float": (int, float)}


def spec_default_problems(options, defaults):
    """Defaults the role's own argument spec would refuse or convert: a value of another type (an "int" default
    written as a string, a "bool" one as "yes"), outside its choices, or a list element of another type. A templated
    default (a Jinja expression) is judged at run time only. Equal default and spec values (the check above) do not
    find these: both sides can carry the same wrong value."""
    out = []
    for name, spec in sorted(options.items()):
        value = defaults.get(name)
        if value is None or isinstance(value, str) and "{{" in value:
            continue
        kind = SPEC_TYPES.get(spec.get("type", "str"))
        if kind is not None and (not isinstance(value, kind) or kind is int and isinstance(value, bool)):
            out.append("%s: default %r is not of type %s" % (name, value, spec.get("type", "str")))
        elif "choices" in spec and value not in spec["choices"]:
            out.append("%s: default %r is not one of its choices %s" % (name, value, spec["choices"]))
        elif isinstance(value, list) and spec.get("elements") in SPEC_TYPES:
            bad = [e for e in value if not isinstance(e, SPEC_TYPES[spec["elements"]])]
            if bad:
                out.append("%s: element(s) %r are not of type %s" % (name, bad, spec["elements"]))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_have_their_type_and_choices(role):
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    problems = spec_default_problems(options, load(role, "defaults", "main.yml") or {})
    assert not problems, "\n".join(problems)


def test_spec_default_check_finds_offenders():
    options = {"a": {"type": "int"}, "b": {"type": "bool"}, "c": {"type": "str", "choices": ["x", "y"]},
               "d": {"type": "list", "elements": "int"}, "e": {"type": "int"}, "f": {"type": "str"}}
    defaults = {"a": "120", "b": "yes", "c": "z", "d": [22, "80"], "e": "{{ other | int }}", "f": "fine"}
    assert spec_default_problems(options, defaults) == [
        "a: default '120' is not of type int", "b: default 'yes' is not of type bool",
        "c: default 'z' is not one of its choices ['x', 'y']", "d: element(s) ['80'] are not of type int"]
