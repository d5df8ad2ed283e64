"""guest_facts read piped (plugins/plugin_utils/piped.py): the collector's sources go on the standard input of
one real Python process that imports them from memory, never from the disk, and never an AnsiballZ payload.

The collector and what it imports are the standard library and the collection's own files only; the command
line is fixed text (no parameter in it); a connection that does not pipeline, an async task or piped=false sends
the module instead; a bad option fails clearly; the result says which way it ran, and hands back the interpreter
Ansible discovered; the evidence is the module's (same gather function, same keys)."""

import ast
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestcollect
from ansible_collections.vmguard.hardening.plugins.plugin_utils import piped

ENTRY = "ansible_collections.vmguard.hardening.plugins.module_utils.evidence.guestcollect"
MODULE = os.path.join(os.path.dirname(guestcollect.__file__), "..", "..", "modules", "guest_facts.py")
# Pythons a guest may run: this one, and Debian's own where it is installed (the lab guests' 3.11).
PYTHONS = [sys.executable] + [p for p in ("/usr/bin/python3",) if os.path.exists(p)]


def params(tmp_path, **kw):
    p = dict(epoch_file=str(tmp_path / "epoch.json"), lineage_file=str(tmp_path / "lineage.json"), piped=True)
    p.update(kw)
    return p


def boot(python, data, cwd):
    """Run BOOT as the action plugin does: the command line fixed, the payload on standard input; no
    PYTHONPATH and a directory of its own, so the collection cannot come from the disk."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PYTHON"))
    proc = subprocess.run([python, "-c", piped.BOOT], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=str(cwd), env=env, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_the_payload_is_the_collector_and_its_collection_imports_only():
    src = piped.sources(ENTRY)
    assert ENTRY in src
    assert ENTRY.rsplit(".", 1)[0] + ".guestscan" in src and ENTRY.rsplit(".", 1)[0] + ".nftables" in src
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for name, text in src.items():
        for node in ast.walk(ast.parse(text)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for m in mods:
                top = m.split(".")[0]
                assert m in src or top in stdlib, "%s imports %s: not sent with the collector" % (name, m)
                assert top != "ansible", "%s imports %s (the payload must not need ansible)" % (name, m)
    # the files of the hypervisor, the audit engine or the remediation never travel to a guest
    assert not [n for n in src if ".audit" in n or ".remediation" in n or "hostscan" in n]


def test_a_module_outside_the_collection_is_never_sent():
    assert piped._collection_imports("import os\nfrom ansible.module_utils.basic import AnsibleModule\n", "x") == set()
    found = piped._collection_imports(
        "def f():\n    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables\n", "x")
    assert found == {"ansible_collections.vmguard.hardening.plugins.module_utils.evidence",
                     "ansible_collections.vmguard.hardening.plugins.module_utils.evidence.nftables"}


@pytest.mark.parametrize("python", PYTHONS)
def test_boot_imports_from_memory_and_prints_the_module_result(tmp_path, python):
    (tmp_path / "epoch.json").write_text(json.dumps({"epoch": 7}))
    (tmp_path / "lineage.json").write_text(json.dumps({"build_id": "b-1"}))
    rc, out, err = boot(python, piped.payload(ENTRY, params(tmp_path)), tmp_path)
    assert rc == 0, err
    result = json.loads(out)
    assert result["changed"] is False and "failed" not in result
    ev = result["evidence"]
    assert ev["epoch"] == 7 and ev["epoch_error"] is None and ev["lineage"] == {"build_id": "b-1"}
    assert ev["root"] is (os.geteuid() == 0)
    # every key the module documents, and the firewall in its shape whatever nft says
    assert {"machine_id_digest", "ssh_host_keys", "accounts", "listening", "services", "packages", "firewall",
            "sysctl", "vmgenid"} <= set(ev)
    assert set(ev["firewall"]) >= {"digest", "error", "default_deny", "open", "input_policy"}
    assert sorted(os.listdir(str(tmp_path))) == ["epoch.json", "lineage.json"]  # nothing written where it ran


def test_boot_without_the_sources_cannot_import_the_collection(tmp_path):
    """The control of the test above: without the payload's sources the collector is not importable there."""
    data = json.dumps(dict(sources={}, entry=ENTRY, params=params(tmp_path))).encode()
    rc, out, err = boot(sys.executable, data, tmp_path)
    assert rc != 0 and "ModuleNotFoundError" in err and out == ""


def test_paths_are_expanded_on_the_target_not_on_the_controller(tmp_path, monkeypatch):
    (tmp_path / "epoch.json").write_text(json.dumps({"epoch": 3}))
    spec = piped.controller_spec(guestcollect.ARGUMENT_SPEC)
    assert spec["epoch_file"]["type"] == "str" and guestcollect.ARGUMENT_SPEC["epoch_file"]["type"] == "path"
    monkeypatch.setenv("VMG_EPOCH_DIR", str(tmp_path))
    out = Out()
    guestcollect.piped_main(params(tmp_path, epoch_file="$VMG_EPOCH_DIR/epoch.json"), out)
    assert json.loads(out.text)["evidence"]["epoch"] == 3


class Out(object):
    text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_collector_failure_is_a_failed_result_not_a_traceback():
    out = Out()
    guestcollect.piped_main({"lineage_file": "/x"}, out)  # epoch_file missing: KeyError in the collector
    result = json.loads(out.text)
    assert result["failed"] is True and "KeyError" in result["msg"] and "evidence" not in result


class Bits(object):
    shebang = "#!/usr/bin/python3"


class Task(object):
    async_val = 0


class Shell(object):
    SHELL_FAMILY = "sh"


class Connection(object):
    _shell = Shell()


class Action(object):
    """The parts of ActionBase piped.run uses; _low_level_execute_command runs the command for real with sh."""

    def __init__(self, pipelining=True, discovered=None):
        self._task, self._connection, self.pipelining = Task(), Connection(), pipelining
        self._discovered_interpreter_key = "discovered_interpreter_python" if discovered else None
        self._discovered_interpreter = discovered
        self.commands = []

    def _is_pipelining_enabled(self, style):
        assert style == "new"
        return self.pipelining

    def _configure_module(self, module_name, module_args, task_vars):
        assert module_name == "vmguard.hardening.guest_facts"
        bits = Bits()
        bits.shebang = "#!" + sys.executable
        return bits, MODULE

    def _compute_environment_string(self):
        return "LC_ALL=C "

    def _low_level_execute_command(self, cmd, sudoable=True, in_data=None):
        self.commands.append((cmd, in_data))
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PYTHON"))
        proc = subprocess.run(["/bin/sh", "-c", cmd], input=in_data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd="/", check=False)
        return dict(rc=proc.returncode, stdout=proc.stdout.decode(), stderr=proc.stderr.decode())


def run(action, args):
    return piped.run(action, "vmguard.hardening.guest_facts", ENTRY, guestcollect.ARGUMENT_SPEC, args, {})


def test_run_reads_the_evidence_piped_with_no_parameter_on_the_command_line(tmp_path):
    marker = tmp_path / "epoch-MARKER-7f3a.json"
    marker.write_text(json.dumps({"epoch": 11}))
    action = Action(discovered="/usr/bin/python3")
    result = run(action, {"epoch_file": str(marker)})
    assert result["piped"] is True and result["changed"] is False, result
    assert result["evidence"]["epoch"] == 11
    (cmd, data), = action.commands
    assert "MARKER-7f3a" not in cmd and b"MARKER-7f3a" in data
    assert cmd == "LC_ALL=C %s -c %s" % (sys.executable, piped.shlex.quote(piped.BOOT))
    # the interpreter Ansible discovered for this host goes back as its fact, as a module's result does
    assert result["ansible_facts"] == {"discovered_interpreter_python": "/usr/bin/python3"}


@pytest.mark.parametrize("why, action, args", [
    ("piped is false", Action(), {"piped": False}),
    ("piped is false", Action(), {"piped": "no"}),
    ("does not pipeline", Action(pipelining=False), {}),
])
def test_the_module_is_sent_when_piping_is_off_or_impossible(why, action, args):
    assert run(action, args) is None and action.commands == []
    assert why in piped.why_not(action, dict(piped=args.get("piped", True) not in (False, "no")))


def test_an_async_task_sends_the_module():
    action = Action()
    action._task.async_val = 30
    assert run(action, {}) is None and action.commands == []


def test_bad_options_fail_before_anything_runs():
    action = Action()
    result = run(action, {"epoch_fle": "/x"})
    assert result["failed"] is True and "epoch_fle" in result["msg"] and action.commands == []
    result = run(action, {"piped": "maybe"})
    assert result["failed"] is True and "piped" in result["msg"] and action.commands == []


def test_output_that_is_not_a_result_is_a_failure_showing_it():
    result = piped._parse(dict(rc=127, stdout="", stderr="/usr/bin/python3: not found"))
    assert result["failed"] is True and "not found" in result["msg"] and result["rc"] == 127
    assert piped._parse(dict(rc=0, stdout="[1]", stderr=""))["failed"] is True


def test_the_module_and_the_piped_collector_share_one_gather():
    with open(MODULE) as f:
        text = f.read()
    assert "guestcollect.gather(" in text and "guestcollect.ARGUMENT_SPEC" in text
