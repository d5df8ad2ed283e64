"""hypervisor_facts read in the controller's own worker (plugins/plugin_utils/inline.py) when the target is the
controller itself, and sent as a module otherwise: real ansible-playbook runs against libvirt's test driver
(no daemon) for which path a task takes, and against the local qemu:///system daemon for the evidence both
paths return - domains, live and persistent definitions, pids, console passwords, and the base images
verified offline with qemu-img and debugfs (the commands the inline path runs itself)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ansible_env
import test_hypervisor_facts as thf

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

PYTHON = sys.executable
NODE = """<node>
<domain type='test'><name>inline-a</name><uuid>6f1c1e2a-1d7e-4c55-9a51-0d6b1a8c0001</uuid><memory>65536</memory>
<os><type>hvm</type></os><genid>6f1c1e2a-1d7e-4c55-9a51-0d6b1a8c00aa</genid>
<devices><graphics type='vnc' listen='0.0.0.0' passwd='hunter2'/></devices><seclabel type='none'/></domain>
<domain type='test'><name>inline-b</name><uuid>6f1c1e2a-1d7e-4c55-9a51-0d6b1a8c0002</uuid><memory>65536</memory><os><type>hvm</type></os>
<devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>
</node>"""

PLAY = """---
- hosts: here
  gather_facts: false
  tasks:
    - name: inline (the controller itself)
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s"}
      register: r_inline
    - name: inline false
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", inline: false}
      register: r_module
    - name: inline "no", a string
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", inline: "no"}
      register: r_module_string
    - name: a task environment
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s"}
      environment: {VMGUARD_TEST: "1"}
      register: r_environment
    - name: another interpreter path
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s"}
      vars: {ansible_python_interpreter: "%(other)s"}
      register: r_interpreter
    - name: delegated
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s"}
      delegate_to: here
      register: r_delegated
    - name: published
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", publish: ev_published}
      register: r_published
    - name: bad parameter
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", work_dir: /nonexistent/vmguard}
      register: r_bad
      ignore_errors: true
    - name: bad parameter, as a module
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", work_dir: /nonexistent/vmguard, inline: false}
      register: r_bad_module
      ignore_errors: true
    - name: unknown option
      vmguard.hardening.hypervisor_facts: {uri: "%(uri)s", nosuch: 1}
      register: r_unknown
      ignore_errors: true
    - name: keep the results
      ansible.builtin.copy:
        dest: "%(out)s"
        content: "{{ {'inline': r_inline, 'module': r_module, 'module_string': r_module_string, 'environment': r_environment, 'interpreter': r_interpreter,
                      'delegated': r_delegated, 'published': r_published, 'published_evidence': ev_published,
                      'bad': r_bad, 'bad_module': r_bad_module, 'unknown': r_unknown} | to_json }}"
        mode: "0600"
"""


def _other_interpreter():
    """The controller's Python under another name in its own bin directory (python3 for python): the same
    interpreter and packages, but not the path of sys.executable, so the module must be sent."""
    bindir, name = os.path.split(PYTHON)
    for other in ("python3", "python", "python3.%d" % sys.version_info[1]):
        if other != name and os.path.exists(os.path.join(bindir, other)):
            return os.path.join(bindir, other)
    pytest.skip("needs a second name of the controller's Python in %s" % bindir)
    return None


def run_play(tmp_path, uri):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % PYTHON)
    out = tmp_path / "results.json"
    play = tmp_path / "play.yml"
    play.write_text(PLAY % dict(uri=uri, other=_other_interpreter(), out=out))
    p = subprocess.run(["ansible-playbook", "-i", str(inventory), str(play)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, check=False, env=ansible_env(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:]
    with open(str(out)) as f:
        return json.load(f), p.stdout


def _same(evidence):
    """The evidence less what changes from one read to the next (the time it took)."""
    return dict((k, v) for k, v in evidence.items() if k != "seconds")


def test_the_controller_itself_is_read_inline_and_anything_else_gets_the_module(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    res, log = run_play(tmp_path, "test://%s" % node)
    assert res["inline"]["inline"] is True
    for sent in ("module", "module_string", "environment", "interpreter", "delegated"):
        assert res[sent]["inline"] is False, sent
        assert _same(res[sent]["evidence"]) == _same(res["inline"]["evidence"]), sent
    names = [d["name"] for d in res["inline"]["evidence"]["domains"]]
    assert names == ["inline-a", "inline-b"]
    a = res["inline"]["evidence"]["domains"][0]
    assert a["genid"] is True and a["graphics"][0]["listens"][0]["address"] == "0.0.0.0" and a["graphics"][0]["passwd_set"] is None
    # published: the evidence in the variable, not the result; read inline all the same
    assert res["published"]["inline"] is True and res["published"]["published"] == "ev_published"
    assert "evidence" not in res["published"]
    assert _same(res["published_evidence"]) == _same(res["inline"]["evidence"])
    assert "hunter2" not in log and "hunter2" not in json.dumps(res)


def test_bad_parameters_fail_inline_as_the_module_fails(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    res, _log = run_play(tmp_path, "test://%s" % node)
    assert res["bad"]["failed"] is True and res["bad"]["inline"] is True
    assert res["bad"]["msg"] == res["bad_module"]["msg"] == "work_dir /nonexistent/vmguard is not a directory"
    assert res["unknown"]["failed"] is True and "nosuch" in res["unknown"]["msg"]


def test_an_unreachable_uri_is_evidence_with_a_warning_inline_too(tmp_path):
    res, log = run_play(tmp_path, "test:///nonexistent/vmguard-node.xml")
    for path in ("inline", "module"):
        ev = res[path]["evidence"]
        assert ev["domains"] == [] and ev["error"].startswith("cannot connect to test:///nonexistent/vmguard-node.xml")
    assert res["inline"]["warnings"] == [res["inline"]["evidence"]["error"]]
    # shown under the inline task itself (Ansible shows a repeated warning once)
    first = log[log.index("TASK [inline (the controller itself)]"):log.index("TASK [inline false]")]
    assert "[WARNING]: cannot connect to test:///nonexistent/vmguard-node.xml" in first


lab = thf.lab  # the qemu:///system lab of test_hypervisor_facts (domains, overlays, base images), as a fixture here


def test_a_real_host_gives_the_same_evidence_inline_and_as_a_module(lab, tmp_path):  # pylint: disable=redefined-outer-name
    work = lab["work"]
    play = tmp_path / "play.yml"
    out = tmp_path / "results.json"
    play.write_text("""---
- hosts: here
  gather_facts: false
  tasks:
    - vmguard.hardening.hypervisor_facts: {image_dirs: ["%(work)s"], work_dir: "%(tmp)s"}
      register: r_inline
    - vmguard.hardening.hypervisor_facts: {image_dirs: ["%(work)s"], work_dir: "%(tmp)s", inline: false}
      register: r_module
    - ansible.builtin.copy:
        dest: "%(out)s"
        content: "{{ {'inline': r_inline, 'module': r_module} | to_json }}"
        mode: "0600"
""" % dict(work=work, tmp=tmp_path, out=out))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % PYTHON)
    p = subprocess.run(["ansible-playbook", "-i", str(inventory), str(play)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, check=False, env=ansible_env(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:]
    with open(str(out)) as f:
        res = json.load(f)
    assert res["inline"]["inline"] is True and res["module"]["inline"] is False
    inline, module = res["inline"]["evidence"], res["module"]["evidence"]

    def ours(ev):
        return [d for d in ev["domains"] if d["name"].startswith(thf.PREFIX)]
    assert ours(inline) == ours(module) and len(ours(inline)) == 2
    run = [d for d in ours(inline) if d["name"] == thf.PREFIX + "run"][0]
    assert run["pid"] == lab["run"]["pid"] and run["inactive"]["definition"] == "persistent"
    assert [g["passwd_set"] for g in run["graphics"]] == [True] and run["inactive"]["graphics"][0]["passwd_set"] is False

    def bases(ev):
        return sorted((b for b in ev["host"]["base_images"] if b["path"].startswith(work)), key=lambda b: b["path"])
    assert bases(inline) == bases(module)
    verdicts = dict((b["path"], (b["sealed"], b["findings"])) for b in bases(inline))
    assert verdicts == {lab["unsealed"]: (False, ["/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key"]),
                        lab["sealed"]: (True, [])}

    def images(ev):
        return sorted((i for i in ev["host"]["images"] if i["path"].startswith(work)), key=lambda i: i["path"])
    assert images(inline) == images(module) and len(images(inline)) == 5
    assert os.listdir(str(tmp_path)) and not [n for n in os.listdir(str(tmp_path)) if n.startswith("vmguard-seal-")]
    for secret in thf.SECRETS:
        assert secret not in p.stdout and secret not in json.dumps(res)
