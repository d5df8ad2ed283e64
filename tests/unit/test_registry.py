"""The registry of what remediates each rule (rules/ ``remediated_by``) matches the catalogue, every
declared remediation exists, the shipped default modes follow from it, every remediation is planned
in at least one scenario of tests/unit/rules/test_plan.py, and the roles that carry the plan out name
the rule ids of every change they make."""

import os
import re
import sysconfig

import ansible
import pytest
import yaml

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.policy import load_policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import REMEDIATIONS, ROLE_TASK_FILES, RULES, Remediation, rule
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation.domfix import FIXERS

from rules import test_plan  # tests/unit is on sys.path (rootdir-relative test import)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROW = re.compile(r"^\| ((?:DIV|RB|ISO|LEAK|VIS)-\d\d) \|(.*)\|$", re.M)
# What the "enforced by" column adds after the module, per remediation.
NOTES = {"domain_policy": "{rid} fixer", "expire_passwords": "chage --lastday 0", "snapshot_policy": "with prune_snapshots",
         "revert_watcher": "role, tasks/{tasks}", "reconverge": "role, tasks/{tasks}"}


def catalogue_rows():
    """rule id -> the cells of its row in the rule tables (id, sev, layer, check, remediation, enforced by).

    The rule tables are those whose header starts with "| id | sev |" (not the vSphere mapping)."""
    with open(os.path.join(ROOT, "docs", "CATALOG.md")) as f:
        tables = re.findall(r"^\| id \| sev \|.*\n(?:\|.*\n?)+", f.read(), re.M)
    return dict((rid, [rid] + [c.strip() for c in cells.split(" | ")]) for t in tables for rid, cells in ROW.findall(t))


def enforced_by(r):
    """The catalogue's "enforced by" cell for rule ``r``, from the registry; a host part (host_remediated_by)
    follows after "; " with the note "host part"."""
    rb = r.remediated_by
    if rb is None:
        return "-"
    notes = [NOTES[rb["remediation"]].format(rid=r.id, tasks=ROLE_TASK_FILES.get(rb["remediation"]))] \
        if rb["remediation"] in NOTES else []
    notes += ["opt-in"] if rb["opt_in"] else []
    cell = "`%s`" % rb["module"] + (" (%s)" % ", ".join(notes) if notes else "")
    host = r.host_remediated_by
    if host is not None:
        cell += "; `%s` (%s)" % (host["module"], ", ".join(["host part"] + (["opt-in"] if host["opt_in"] else [])))
    return cell


def test_catalogue_enforced_by_column_equals_the_registry():
    rows = catalogue_rows()
    assert sorted(rows) == sorted(RULES) and len(rows) == 49
    for rid, cells in rows.items():
        assert len(cells) == 6, "%s: expected id | sev | layer | check | remediation | enforced by, got %r" % (rid, cells)
        assert cells[5] == enforced_by(RULES[rid]), rid
        assert cells[4] and cells[4] != "-", "%s: the remediation column keeps the human text" % rid


def test_catalogue_column_fails_on_a_wrong_entry():
    """The comparison sees a difference: a registry declaration differing from the row is caught."""
    r = RULES["DIV-10"]
    saved = r.remediated_by
    try:
        r.remediated_by = dict(Remediation("sysctl", "x", opt_in=True))
        assert catalogue_rows()["DIV-10"][5] != enforced_by(r)
        r.remediated_by = None
        assert catalogue_rows()["DIV-10"][5] != enforced_by(r)
    finally:
        r.remediated_by = saved


def module_path(fqcn):
    """Where the module ``fqcn`` lives: this collection, ansible-core's builtins, or the installed bundle."""
    ns, coll, name = fqcn.split(".")
    if (ns, coll) == ("vmguard", "hardening"):
        return os.path.join(ROOT, "plugins", "modules", name + ".py")
    if (ns, coll) == ("ansible", "builtin"):
        return os.path.join(os.path.dirname(ansible.__file__), "modules", name + ".py")
    return os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections", ns, coll, "plugins", "modules", name + ".py")


def role_task_file(remediation):
    """The task file of this collection's role that carries out ``remediation`` (ROLE_TASK_FILES), or None."""
    if remediation not in ROLE_TASK_FILES:
        return None
    ns, coll, role = REMEDIATIONS[remediation].split(".")
    assert (ns, coll) == ("vmguard", "hardening"), "%s: only this collection's roles carry out remediations" % remediation
    return os.path.join(ROOT, "roles", role, "tasks", ROLE_TASK_FILES[remediation])


def tagged_tasks(path):
    """(task name, effective tags) of every task in a task file, block tags inherited as Ansible does."""
    def walk(items, inherited):
        for t in items or []:
            if not isinstance(t, dict):
                continue
            tags = t.get("tags") or []
            tags = inherited | set(str(x) for x in ([tags] if isinstance(tags, str) else tags))
            blocks = [t[k] for k in ("block", "rescue", "always") if k in t]
            if not blocks:
                yield t.get("name"), tags
            for b in blocks:
                yield from walk(b, tags)
    with open(path) as f:
        yield from walk(yaml.safe_load(f), set())


def check_role_remediation(rid, remediation):
    """A remediation carried out by a role: its task file exists and holds a task tagged with the rule."""
    path = role_task_file(remediation)
    assert os.path.isfile(path), "%s: %s is carried out by %s, which does not exist" % (rid, remediation, path)
    assert any(rid in tags for _name, tags in tagged_tasks(path)), "%s: no task of %s is tagged %s" % (rid, path, rid)


@pytest.mark.parametrize("rid", [r for r in RULES if RULES[r].remediated_by])
def test_every_declared_remediation_exists(rid):
    rb = RULES[rid].remediated_by
    assert rb["remediation"] in REMEDIATIONS and rb["module"] == REMEDIATIONS[rb["remediation"]], rb
    if rb["remediation"] in ROLE_TASK_FILES:
        check_role_remediation(rid, rb["remediation"])
    else:
        assert os.path.isfile(module_path(rb["module"])), "%s: module %s not found at %s" % (
            rid, rb["module"], module_path(rb["module"]))
    assert rb["how"].strip()
    if rb["remediation"] == "domain_policy":
        assert rid in FIXERS, "%s is declared remediated by domain_policy but remediation/domfix.py has no fixer for it" % rid


def test_module_lookup_finds_the_bundle_and_rejects_a_missing_module():
    assert module_path("ansible.posix.sysctl").endswith(os.path.join("ansible_collections", "ansible", "posix", "plugins",
                                                                     "modules", "sysctl.py"))
    assert os.path.isfile(module_path("ansible.posix.sysctl"))
    assert not os.path.isfile(module_path("vmguard.hardening.no_such_module"))
    assert not os.path.isfile(module_path("ansible.posix.no_such_module"))


def test_role_remediation_check_fails_without_the_file_or_the_tag(tmp_path, monkeypatch):
    tasks = tmp_path / "roles" / "hypervisor" / "tasks"
    tasks.mkdir(parents=True)
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    with pytest.raises(AssertionError, match="does not exist"):
        check_role_remediation("RB-11", "revert_watcher")
    (tasks / "watcher.yml").write_text("- name: RB-11 | ENFORCE | x\n  ansible.builtin.debug: {}\n  tags: [RB-12]\n")
    with pytest.raises(AssertionError, match="no task of .* is tagged RB-11"):
        check_role_remediation("RB-11", "revert_watcher")
    (tasks / "watcher.yml").write_text("- block:\n  - name: RB-11 | ENFORCE | x\n    ansible.builtin.debug: {}\n  tags: [rollback, RB-11]\n")
    check_role_remediation("RB-11", "revert_watcher")


def test_every_domain_fixer_belongs_to_a_rule_remediated_by_domain_policy():
    declared = sorted(rid for rid, r in RULES.items() if (r.remediated_by or {}).get("remediation") == "domain_policy")
    assert sorted(FIXERS) == declared


def test_remediations_are_exactly_the_contract():
    by_name = {}
    for rid, r in RULES.items():
        if r.remediated_by:
            by_name.setdefault(r.remediated_by["remediation"], []).append(rid)
    assert by_name == {"domain_policy": ["DIV-09", "RB-01", "RB-12", "ISO-02", "ISO-03", "ISO-04", "ISO-06", "ISO-07", "ISO-08", "ISO-11",
                                         "LEAK-02", "LEAK-03", "LEAK-04", "LEAK-07", "VIS-05"],
                       "identity_reseal": ["DIV-01", "DIV-02", "DIV-04", "RB-06"],
                       "sysctl": ["DIV-10"], "expire_passwords": ["DIV-03"],
                       "snapshot_policy": ["RB-02", "RB-03", "RB-04", "RB-13"], "revert_watcher": ["RB-11"],
                       "guest_firewall": ["RB-10", "ISO-10"], "service_lockdown": ["ISO-01"],
                       "reconverge": ["RB-05", "RB-07", "RB-08", "RB-09"],
                       "host_config": ["ISO-05", "LEAK-01", "LEAK-06", "LEAK-08"]}
    assert dict((rid, r.host_remediated_by["remediation"]) for rid, r in RULES.items() if r.host_remediated_by) == {
        "ISO-04": "host_config", "LEAK-04": "host_config"}
    assert [rid for rid, r in RULES.items() if (r.remediated_by or {}).get("opt_in")] == [
        "DIV-03", "RB-02", "RB-03", "RB-04", "RB-13", "ISO-06", "ISO-07", "ISO-08", "ISO-11", "LEAK-08"]
    assert ROLE_TASK_FILES == {"revert_watcher": "watcher.yml", "reconverge": "reconverge.yml"}


def test_shipped_default_modes_are_enforce_exactly_where_a_non_opt_in_remediation_exists():
    p = load_policy({})
    assert p["mode"] == "enforce"
    for rid, r in RULES.items():
        expected = "enforce" if r.remediated_by and not r.remediated_by["opt_in"] else "audit"
        assert p["rules"][rid]["mode"] == expected, rid


def test_declarations_are_checked():
    with pytest.raises(ValueError):
        Remediation("reboot", "turn it off and on again")
    with pytest.raises(ValueError):
        Remediation("sysctl", " ")
    with pytest.raises(ValueError):
        rule("ZZZ-01", "diversity", "low", "GUEST", "t", "r", remediated_by={"remediation": "sysctl"})
    with pytest.raises(ValueError, match=r"host_remediated_by is for a HOST\+DOM rule"):
        rule("ZZZ-01", "diversity", "low", "HOST", "t", "r", host_remediated_by=Remediation("host_config", "x"))
    assert "ZZZ-01" not in RULES


# --- every remediation is exercised ---------------------------------------------------------------

def planned_rules():
    """remediation name -> rule ids planned for it over all scenarios of test_plan."""
    out = {}
    for name in test_plan.SCENARIOS:
        p, _findings = test_plan.scenario(name)
        for host in p["hosts"].values():
            for remediation, entry in host.items():
                out.setdefault(remediation, set()).update(entry["rules"])
    return out


def test_every_declared_remediation_is_planned_in_a_scenario():
    planned = planned_rules()
    for rid, r in RULES.items():
        for rb in (r.remediated_by, r.host_remediated_by):
            if rb:
                assert rid in planned.get(rb["remediation"], ()), \
                    "%s (%s) is planned in no scenario of tests/unit/rules/test_plan.py" % (rid, rb["remediation"])
    assert set(planned) == set(REMEDIATIONS) | {"ledger"}


# --- the roles name what they change --------------------------------------------------------------

TASK_KEYWORDS = frozenset((
    "name", "when", "loop", "loop_control", "register", "tags", "become", "become_user", "become_method",
    "check_mode", "diff", "changed_when", "failed_when", "notify", "vars", "delegate_to", "delegate_facts",
    "run_once", "no_log", "args", "environment", "ignore_errors", "ignore_unreachable", "until", "retries",
    "delay", "listen", "module_defaults", "any_errors_fatal", "throttle", "timeout", "connection", "async",
    "poll", "debugger", "collections", "block", "rescue", "always", "with_items", "with_dict", "with_list"))
# Modules that change nothing on any host (control flow, reading, reporting).
READ_ONLY = frozenset((
    "ansible.builtin.assert", "ansible.builtin.debug", "ansible.builtin.fail", "ansible.builtin.set_fact",
    "ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_role",
    "ansible.builtin.import_role", "ansible.builtin.include_vars", "ansible.builtin.meta", "ansible.builtin.stat",
    "ansible.builtin.slurp", "ansible.builtin.getent", "ansible.builtin.setup", "ansible.builtin.find",
    "ansible.builtin.package_facts", "ansible.builtin.service_facts", "ansible.builtin.validate_argument_spec",
    "ansible.builtin.wait_for", "ansible.builtin.wait_for_connection", "ansible.builtin.pause"))
IDS = re.compile(r"\b(?:DIV|RB|ISO|LEAK|VIS)-\d\d\b")
ENFORCING_ROLES = ("hypervisor", "guest")
# Preventive guards a role installs when the user turns them on (a role variable, not a plan step): their tasks
# name the audit-only rule they guard. (role, task file) -> those rule ids. The start gate refuses to start a
# domain VIS-04 would find dormant; VIS-04 itself is fixed by a harden run (the ledger step records it).
PREVENTIVE = {("hypervisor", "start_gate.yml"): {"VIS-04"}}


def tasks_of(items):
    for t in items or []:
        if not isinstance(t, dict):
            continue
        for key in ("block", "rescue", "always"):
            yield from tasks_of(t.get(key))
        if not any(k in t for k in ("block", "rescue", "always")):
            yield t


def module_of(task):
    keys = [k for k in task if k not in TASK_KEYWORDS]
    assert len(keys) == 1, "cannot tell the module of task %r (keys %s)" % (task.get("name"), keys)
    return keys[0] if "." in keys[0] else "ansible.builtin." + keys[0]


def changing_tasks(role):
    """(file, task, module) for every task of ``role`` that calls a module able to change something."""
    tasks_dir = os.path.join(ROOT, "roles", role, "tasks")
    for fname in sorted(os.listdir(tasks_dir)):
        if not fname.endswith((".yml", ".yaml")):
            continue
        with open(os.path.join(tasks_dir, fname)) as f:
            for task in tasks_of(yaml.safe_load(f)):
                module = module_of(task)
                if module not in READ_ONLY and not module.endswith(("_facts", "_info")):
                    yield fname, task, module


def remediation_of(task, module, role=None, fname=None):
    """The remediation name a task carries out, or None. A remediation carried out by a role (ROLE_TASK_FILES)
    is carried out by the changing tasks of its task file."""
    for name, tasks_file in ROLE_TASK_FILES.items():
        if REMEDIATIONS[name] == "vmguard.hardening.%s" % role and fname == tasks_file:
            return name
    for name, fqcn in REMEDIATIONS.items():
        if fqcn == module and (name != "expire_passwords" or "chage" in str(task[module])):
            return name
    return None


def test_task_classification_sees_a_change_and_its_remediation():
    task = {"name": "x", "ansible.builtin.command": {"argv": ["chage", "--lastday", "0", "admin"]}, "loop": []}
    assert module_of(task) == "ansible.builtin.command" and remediation_of(task, "ansible.builtin.command") == "expire_passwords"
    assert remediation_of({"name": "y", "ansible.builtin.command": "true"}, "ansible.builtin.command") is None
    assert module_of({"name": "z", "sysctl": {}}) == "ansible.builtin.sysctl"
    assert [t["name"] for t in tasks_of([{"block": [{"name": "a", "debug": {}}], "rescue": [{"name": "b", "fail": {}}]}])] == ["a", "b"]


def remediation_rules(remediation):
    return set(rid for rid, r in RULES.items() if (r.remediated_by or {}).get("remediation") == remediation)


def check_names_of(remediation, named, where, by_file=None):
    """A task carrying out a module's remediation names every rule it is declared for. A role's task file
    (ROLE_TASK_FILES) carries out its rules task by task: each task names some of them and nothing else,
    and its tasks together name all of them (``by_file`` collects {(remediation, where): names})."""
    wanted = remediation_rules(remediation)
    if remediation not in ROLE_TASK_FILES:
        assert wanted <= named, "%s: carries out %s, so it must name %s" % (where, remediation, sorted(wanted - named))
        return
    extra = sorted(named - wanted)
    assert named <= wanted, "%s: carries out %s, so it names only %s, not %s" % (where, remediation, sorted(wanted), extra)
    if by_file is not None:
        by_file.setdefault(remediation, set()).update(named)


def test_role_task_files_name_each_rule_in_some_task():
    by_file = {}
    check_names_of("reconverge", {"RB-07"}, "t1", by_file)
    check_names_of("reconverge", {"RB-08", "RB-09"}, "t2", by_file)
    assert by_file == {"reconverge": {"RB-07", "RB-08", "RB-09"}}
    with pytest.raises(AssertionError, match=r"names only .*not \['RB-10'\]"):
        check_names_of("reconverge", {"RB-09", "RB-10"}, "t3")
    with pytest.raises(AssertionError, match=r"must name \['DIV-04'\]"):
        check_names_of("identity_reseal", {"DIV-01", "DIV-02", "RB-06"}, "t4")


def test_enforcing_roles_name_the_rule_ids_of_every_change():
    """Every changing task names rule ids in its name (all known); a task that carries out a module's remediation names
    every rule that remediation is declared for, a role's task file names each of its rules in some task and nothing
    else; and each declared remediation is carried out by some task."""
    carried = set()
    by_file = {}
    for role in ENFORCING_ROLES:
        for fname, task, module in changing_tasks(role):
            where = "roles/%s/tasks/%s: %s" % (role, fname, task.get("name"))
            # Where in the name is test_role_contracts' concern (leading ids, or the role's prefix).
            named = set(IDS.findall(task.get("name") or ""))
            assert named, "%s: a changing task (%s) must name the rule ids it remediates" % (where, module)
            assert named <= set(RULES), "%s: unknown rule ids %s" % (where, sorted(named - set(RULES)))
            remediation = remediation_of(task, module, role, fname)
            if remediation:
                carried.add(remediation)
                check_names_of(remediation, named, where, by_file)
            else:
                # The ledger step records the state RB-05..10 compare against: its ledger calls and the guest's
                # epoch file (the middle of the two-phase epoch) name those audit-only rules.
                ledger_step = module == "vmguard.hardening.ledger" or (role, fname) == ("guest", "ledger.yml")
                guard = named <= PREVENTIVE.get((role, fname), set()) and not any(RULES[rid].remediated_by for rid in named)
                assert any(RULES[rid].remediated_by for rid in named) or ledger_step or guard, \
                    "%s: changes something (%s) for rules none of which has a remediation: %s" % (where, module, sorted(named))
    assert carried == set(REMEDIATIONS), "no task carries out %s" % sorted(set(REMEDIATIONS) - carried)
    for remediation, named in by_file.items():
        assert named == remediation_rules(remediation), "roles/*/tasks/%s: no task names %s" % (
            ROLE_TASK_FILES[remediation], sorted(remediation_rules(remediation) - named))


def test_reconverge_tasks_use_the_modules_the_registry_declares():
    """roles/guest/tasks/reconverge.yml: RB-05 by vmguard.hardening.ledger (a reconverge event), RB-07 by
    ansible.builtin.user (password lock, expiry day 1 - the module takes seconds -, shell untouched), RB-08 by
    ansible.builtin.apt (only-upgrade to the latest of the guest's own sources, no pinned version), RB-09 by
    ansible.builtin.systemd_service (masked); each module is named in its rule's "how"."""
    with open(os.path.join(ROOT, "roles", "guest", "tasks", ROLE_TASK_FILES["reconverge"])) as f:
        tasks = list(tasks_of(yaml.safe_load(f)))
    by_rule = {}
    for task in tasks:
        for rid in IDS.findall(task["name"]):
            by_rule.setdefault(rid, []).append((module_of(task), task[module_of(task)]))
    assert sorted(by_rule) == ["RB-05", "RB-07", "RB-08", "RB-09"]
    # RB-05 alone has nothing to lock, upgrade or mask: its task records the reconverge in the ledger (the ledger
    # step moves the epoch).
    expected = {"RB-05": "vmguard.hardening.ledger", "RB-07": "ansible.builtin.user", "RB-08": "ansible.builtin.apt",
                "RB-09": "ansible.builtin.systemd_service"}
    for rid, module in expected.items():
        assert set(m for m, _args in by_rule[rid]) == {module}, rid
        assert module in RULES[rid].remediated_by["how"], rid
    (_m, user), = by_rule["RB-07"]
    assert user["password_lock"] is True and user["expires"] // 86400 == 1 and "shell" not in user and "state" not in user
    (_m, apt), = by_rule["RB-08"]
    assert (apt["state"], apt["only_upgrade"], apt["update_cache"]) == ("latest", True, True) and "=" not in apt["name"]
    assert [args.get("masked") for _m, args in by_rule["RB-09"]] == [True, None]
    assert by_rule["RB-09"][1][1]["state"] == "stopped"


def guest_tasks(fname):
    with open(os.path.join(ROOT, "roles", "guest", "tasks", fname)) as f:
        return list(tasks_of(yaml.safe_load(f)))


def test_the_guest_role_prepares_the_epoch_before_any_step_changes_the_guest():
    """The ledger's prepare (its pending_since opens the commit's revert window) is the first step of main.yml, before
    every import that changes the guest; ledger.yml no longer prepares, and its commit passes the reverts the audit saw
    (a revert between the audit and the run fails the commit too). Both ledger imports run under any --tags."""
    main = guest_tasks("main.yml")
    imports = [t["ansible.builtin.import_tasks"] for t in main if "ansible.builtin.import_tasks" in t]
    assert imports[0] == "ledger_prepare.yml", imports
    assert imports.index("ledger_prepare.yml") < min(imports.index(f) for f in (
        "identity.yml", "sysctl.yml", "passwords.yml", "lockdown.yml", "firewall.yml", "reconverge.yml", "ledger.yml"))
    by_file = dict((t["ansible.builtin.import_tasks"], t) for t in main if "ansible.builtin.import_tasks" in t)
    assert "always" in by_file["ledger_prepare.yml"]["tags"] and "always" in by_file["ledger.yml"]["tags"]
    (prepare,) = guest_tasks("ledger_prepare.yml")
    assert prepare["vmguard.hardening.ledger"]["epoch"] == "prepare"
    assert prepare["register"] == "__vmguard_guest_ledger_prepared"
    calls = [t["vmguard.hardening.ledger"] for t in guest_tasks("ledger.yml") if "vmguard.hardening.ledger" in t]
    assert [c.get("epoch") for c in calls] == [None, "commit", None]
    assert "__vmguard_guest_plan.ledger.seen_reverts" in calls[1]["seen_reverts"]


def test_the_reconverge_event_is_recorded_after_every_reconverge_task():
    """The ledger's "reconverge" event says the guest was reconverged: it comes last in reconverge.yml, so a run
    whose lock, upgrade or mask task fails (the host stops there) records none."""
    tasks = guest_tasks(ROLE_TASK_FILES["reconverge"])
    modules = [module_of(t) for t in tasks]
    assert modules[-1] == "vmguard.hardening.ledger" and modules.count("vmguard.hardening.ledger") == 1, modules
    assert tasks[-1]["vmguard.hardening.ledger"]["event"] == "reconverge"
