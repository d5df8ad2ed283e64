"""The lab role's two inventories come from one structure, and its services from the policy.

- The templates of roles/lab (plan.yml.j2 -> hosts.yml.j2 -> inventory.yml.j2) are rendered with Jinja2
  and Ansible's own filters from sample data; the static inventory is then read by Ansible's inventory
  parser, and the in-memory hosts are made the way the role's add_host task makes them (its name, loop
  and args as written in tasks/inventory.yml). Both must carry the same keys and values per guest.
- The inventory's vmguard_policy is the policy the lab was made with plus the lab's ISO-09 waiver, and a
  rerun fed with the generated inventory's policy writes the same file (no waiver piles up).
- tasks/validate.yml runs for real (ansible-playbook, no libvirt needed): a guest whose service the
  effective policy does not define is refused with its name and service; vmguard_policy can add one.
"""

import json
import os
import subprocess
import sys
import textwrap

import jinja2
import pytest
import yaml
from ansible.inventory.helpers import get_group_vars
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.filter.core import FilterModule as CoreFilters
from ansible.plugins.filter.mathstuff import FilterModule as MathFilters

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "roles", "lab")
BIN = os.path.dirname(sys.executable)
GUESTS = ["web1", "mail1", "dir1"]
# Variables Ansible gives every inventory host by itself.
MAGIC = ("inventory_hostname", "inventory_hostname_short", "group_names", "inventory_file", "inventory_dir")


def _env():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(LAB, "templates")),
                             trim_blocks=True, undefined=jinja2.StrictUndefined)
    # Ansible's filters where Jinja2 has none (to_json, to_nice_yaml, hash, combine, dict2items, ...);
    # Jinja2's own default, map, unique stay: Ansible's versions need its templar.
    for plugin in (CoreFilters(), MathFilters()):
        for name, fn in plugin.filters().items():
            env.filters.setdefault(name, fn)
    return env


def render(name, variables):
    return _env().get_template(name).render(**variables)


def expression(text, variables):
    """Evaluate one '{{ ... }}' task argument the way Ansible does for a whole-template string."""
    inner = text.strip()
    assert inner.startswith("{{") and inner.endswith("}}"), text
    return _env().compile_expression(inner[2:-2].strip(), undefined_to_none=False)(**variables)


def lab_vars(**extra):
    with open(os.path.join(LAB, "defaults", "main.yml")) as f:
        v = yaml.safe_load(f)
    v.update(
        vmguard_lab_name="vmg-lab-t1",
        vmguard_lab_ssh_port_base=22900,
        vmguard_lab_hypervisor_name="kvm-lab",
        vmguard_lab_guests=[{"name": "web1", "service": "web"},
                            {"name": "mail1", "service": "mail", "port": 23111},
                            {"name": "dir1", "service": "ldap", "memory_mib": 512}],
        __vmguard_lab_root="/var/lib/vmguard/lab/vmg-lab-t1",
        __vmguard_lab_known_hosts="/var/lib/vmguard/lab/vmg-lab-t1/known_hosts",
        __vmguard_lab_mgmt_user="vmguard",
        __vmguard_lab_service_net_prefix="10.254",
        __vmguard_lab_accel={"accelerator": "tcg", "domain_type": "qemu", "reason": "sample"},
        __vmguard_lab_expires="2027-01-31",
        ansible_playbook_python="/opt/venv/bin/python",
        vmguard_lab_uri="qemu:///system",
    )
    v.update(extra)
    v["__vmguard_lab_plan"] = yaml.safe_load(render("plan.yml.j2", v))
    v["__vmguard_lab_hosts"] = yaml.safe_load(render("hosts.yml.j2", v))
    return v


def add_host_task():
    with open(os.path.join(LAB, "tasks", "inventory.yml")) as f:
        tasks = yaml.safe_load(f)
    found = [t for t in tasks if "ansible.builtin.add_host" in t]
    assert len(found) == 1, "tasks/inventory.yml must add the guests with exactly one add_host task"
    return found[0]


def in_memory_hosts(v):
    """What the role's add_host task gives the running play: {name: (groups, host vars)}."""
    task = add_host_task()
    module_args = task["ansible.builtin.add_host"]
    extra = sorted(set(module_args) - {"name", "groups"})
    assert not extra, "add_host sets %s outside the shared structure" % extra
    out = {}
    for item in expression(task["loop"], v):
        iv = dict(v, item=item)
        host_vars = dict(expression(task["args"], iv))
        out[expression(module_args["name"], iv)] = (module_args["groups"], host_vars)
    return out


def file_hosts(path):
    """The static inventory as Ansible reads it: {name: (groups, effective vars)}."""
    inv = InventoryManager(loader=DataLoader(), sources=[path])
    out = {}
    for host in inv.get_hosts():
        groups = sorted(g.name for g in host.get_groups() if g.name not in ("all", "ungrouped"))
        merged = dict(get_group_vars(host.get_groups()))
        merged.update((k, val) for k, val in host.get_vars().items()
                      if k not in MAGIC)
        out[host.name] = (groups, merged)
    return out


def kind(value):
    """The YAML type of a value (Ansible's parser tags its strings: a subclass of str)."""
    return next(t.__name__ for t in (bool, int, float, str, list, dict, type(None)) if isinstance(value, t))


def write_inventory(tmp_path, v, name="inventory.yml"):
    path = tmp_path / name
    path.write_text(render("inventory.yml.j2", v))
    return str(path)


def test_hosts_structure_has_every_guest_and_its_connection():
    v = lab_vars()
    hosts = v["__vmguard_lab_hosts"]
    assert list(hosts) == GUESTS
    assert hosts["mail1"]["ansible_port"] == 23111
    assert hosts["web1"]["ansible_port"] == 22900
    assert hosts["dir1"]["ansible_port"] == 22902
    for name, hv in hosts.items():
        assert hv["ansible_host"] == "127.0.0.1"
        assert hv["vmguard_domain"] == "vmg-lab-t1." + name
        assert hv["vmguard_hypervisor"] == "kvm-lab"
        assert hv["ansible_ssh_private_key_file"] == "/var/lib/vmguard/lab/vmg-lab-t1/keys/%s_ed25519" % name
        assert "-o HostKeyAlias=vmg-lab-t1.%s " % name in hv["ansible_ssh_common_args"]
        assert "StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
        assert hv["vmguard_guest_known_hosts_name"] == hv["vmguard_domain"]
    assert hosts["dir1"]["vmguard_service"] == "ldap"


def test_in_memory_hosts_equal_the_static_inventory(tmp_path):
    v = lab_vars()
    memory = in_memory_hosts(v)
    on_file = file_hosts(write_inventory(tmp_path, v))
    assert sorted(memory) == sorted(GUESTS)
    for name in GUESTS:
        groups, host_vars = memory[name]
        file_groups, file_vars = on_file[name]
        assert groups == file_groups == ["vmguard_guests"]
        policy = file_vars.pop("vmguard_policy")  # the audit's policy, for every host of the file
        assert isinstance(policy, dict)
        assert set(host_vars) == set(file_vars), name
        for key in host_vars:
            assert host_vars[key] == file_vars[key], "%s: %s: in memory %r, on file %r" % (
                name, key, host_vars[key], file_vars[key])
            assert kind(host_vars[key]) == kind(file_vars[key]), (name, key)


def test_a_changed_structure_changes_both_forms(tmp_path):
    """No key of the file form is written by the template on its own: a key added to the structure
    reaches both forms, and a value changed in it changes both."""
    v = lab_vars()
    v["__vmguard_lab_hosts"]["web1"]["vmguard_data_class"] = "confidential"
    v["__vmguard_lab_hosts"]["mail1"]["ansible_port"] = 24000
    memory = in_memory_hosts(v)
    on_file = file_hosts(write_inventory(tmp_path, v))
    for name, key, want in (("web1", "vmguard_data_class", "confidential"), ("mail1", "ansible_port", 24000)):
        assert memory[name][1][key] == want
        assert on_file[name][1][key] == want


def test_hypervisor_host_in_the_inventory(tmp_path):
    on_file = file_hosts(write_inventory(tmp_path, lab_vars()))
    groups, hv = on_file["kvm-lab"]
    assert groups == ["vmguard_hypervisors"]
    assert hv["ansible_connection"] == "local"
    assert hv["ansible_become"] is False
    assert hv["vmguard_libvirt_uri"] == "qemu:///system"
    assert hv["ansible_python_interpreter"] == "/opt/venv/bin/python"


def test_inventory_policy_is_the_lab_policy_plus_its_waiver(tmp_path):
    user = {"params": {"isolation": {"services": {"ldap": {"ports": [389, 636]}}}},
            "waivers": [{"rule": "LEAK-08", "subject": "*", "reason": "lab", "expires": "2027-02-01"}]}
    v = lab_vars(vmguard_policy=user)
    policy = file_hosts(write_inventory(tmp_path, v))["web1"][1]["vmguard_policy"]
    # ISO-02 moves service interfaces to the networks the lab made (plan.yml.j2: <lab>.svc-<service>).
    assert policy["params"] == {"isolation": dict(user["params"]["isolation"], service_network="vmg-lab-t1.svc-{service}")}
    assert policy["waivers"][0] == user["waivers"][0]
    lab_waiver = policy["waivers"][1]
    assert (lab_waiver["rule"], lab_waiver["subject"], lab_waiver["expires"]) == ("ISO-09", "kvm-lab/vmg-lab-t1.*",
                                                                                  "2027-01-31")
    assert "passthrough" in lab_waiver["reason"]
    assert len(policy["waivers"]) == 2


def test_default_policy_carries_only_the_waiver(tmp_path):
    policy = file_hosts(write_inventory(tmp_path, lab_vars()))["web1"][1]["vmguard_policy"]
    assert list(policy) == ["params", "waivers"]
    assert policy["params"] == {"isolation": {"service_network": "vmg-lab-t1.svc-{service}"}}
    assert [w["rule"] for w in policy["waivers"]] == ["ISO-09"]


def test_rerun_with_the_generated_policy_writes_the_same_inventory(tmp_path):
    """A lab play that runs with the lab's own inventory (Molecule's converge) sees the waiver again:
    it replaces it instead of adding a second one, so the file does not change."""
    user = {"rules": {"DIV-09": {"severity": "medium"}},
            "waivers": [{"rule": "ISO-09", "subject": "other/*", "reason": "kept", "expires": "2027-03-01"}]}
    first = write_inventory(tmp_path, lab_vars(vmguard_policy=user), "first.yml")
    policy = file_hosts(first)["web1"][1]["vmguard_policy"]
    second = write_inventory(tmp_path, lab_vars(vmguard_policy=policy), "second.yml")
    with open(first) as a, open(second) as b:
        assert a.read() == b.read()
    assert [w["subject"] for w in policy["waivers"]] == ["other/*", "kvm-lab/vmg-lab-t1.*"]


# --- tasks/validate.yml for real --------------------------------------------------------------

def _run_validate(tmp_path, extra_vars):
    if not os.path.exists(os.path.join(BIN, "ansible-playbook")):
        pytest.skip("needs the venv's ansible-playbook (make setup)")
    play = tmp_path / "validate.yml"
    play.write_text(textwrap.dedent("""\
        - name: Validate a lab definition
          hosts: localhost
          connection: local
          gather_facts: false
          vars:
            ansible_python_interpreter: "{{ ansible_playbook_python }}"
          tasks:
            - name: Validate
              ansible.builtin.include_role:
                name: vmguard.hardening.lab
                tasks_from: validate.yml
        """))
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(extra_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(play), "-e", "@%s" % varfile],
                       cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120, check=False)
    return p.returncode, " ".join(p.stdout.split())


LDAP_GUESTS = [{"name": "web1", "service": "web"}, {"name": "dir1", "service": "ldap"}]


def test_validate_refuses_a_service_the_policy_does_not_define(tmp_path):
    rc, out = _run_validate(tmp_path, {"vmguard_lab_guests": LDAP_GUESTS})
    assert rc != 0, out
    assert "Guest 'dir1' declares service 'ldap', which the effective policy does not define" in out
    assert "db, dns, mail, web" in out
    assert "web1" not in out.split("Guest 'dir1'")[1].split("The services")[0]


def test_validate_accepts_a_service_the_policy_adds(tmp_path):
    rc, out = _run_validate(tmp_path, {
        "vmguard_lab_guests": LDAP_GUESTS,
        "vmguard_policy": {"params": {"isolation": {"services": {"ldap": {"ports": [389, 636]}}}}}})
    assert rc == 0, out
    assert "failed=0" in out


def test_validate_refuses_the_retired_services_variable(tmp_path):
    rc, out = _run_validate(tmp_path, {"vmguard_lab_services": {"ldap": {"ports": [389]}}})
    assert rc != 0, out
    assert "vmguard_lab_services is no longer read" in out


def test_validate_names_a_bad_policy(tmp_path):
    rc, out = _run_validate(tmp_path, {"vmguard_policy": {"params": {"isolation": {"services": {"ldap": {}}}}}})
    assert rc != 0, out
    assert "params.isolation.services.ldap.ports" in out


def test_teardown_is_not_blocked_by_the_policy(tmp_path):
    rc, out = _run_validate(tmp_path, {"vmguard_lab_state": "absent", "vmguard_lab_guests": LDAP_GUESTS,
                                       "vmguard_policy": {"params": {"nope": 1}}})
    assert rc == 0, out
