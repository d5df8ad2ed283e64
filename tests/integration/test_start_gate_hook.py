"""The start gate hook (VIS-04) run exactly as libvirt runs a qemu hook: the shipped entry point
roles/hypervisor/files/vmguard_start_gate.py as a process (/usr/bin/python3 -I, as the hook's /bin/sh
wrapper runs it), argv "<name> <operation> <sub-operation> -", the
domain XML on stdin, against real ledger files, break-glass files and configuration in a private
directory (the configuration path through VMGUARD_START_GATE_CONFIG; libvirt gives hooks a clean
environment, so on a hypervisor it is always /etc/vmguard/start-gate.json)."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
HOOK = os.path.join(ROOT, "roles", "hypervisor", "files", "vmguard_start_gate.py")
UUID = "5d1c2a9e-0b7f-4c3e-8a21-9f0e1d2c3b4a"
NAME = "vmg-h3-gate"
DAY = 86400


def _collection_link():
    link = os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_collection_link()
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="break-glass files must be owned by root: run as root")

XML = ("<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
       "<os><type arch='x86_64'>hvm</type></os></domain>" % (NAME, UUID))


@pytest.fixture
def gate(tmp_path):
    """(run(argv, xml), paths): a configuration, a ledger directory and a break-glass directory of the test's own."""
    paths = {"ledger": str(tmp_path / "ledger"), "glass": str(tmp_path / "break-glass"), "config": str(tmp_path / "start-gate.json")}
    os.makedirs(paths["ledger"], 0o700)
    os.makedirs(paths["glass"], 0o700)
    with open(paths["config"], "w") as f:
        json.dump({"ledger_dir": paths["ledger"], "max_dormant_days": 30, "break_glass_dir": paths["glass"]}, f)

    def run(op=("prepare", "begin"), xml=XML, name=NAME):
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "VMGUARD_START_GATE_ROOT": COLLECTIONS, "VMGUARD_START_GATE_CONFIG": paths["config"]}
        t0 = time.time()
        p = subprocess.run(["/usr/bin/python3", "-I", HOOK, name, op[0], op[1], "-"], input=xml, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=env, timeout=30, check=False)
        return p.returncode, p.stderr, p.stdout, time.time() - t0
    return run, paths


def hardened(paths, days_ago, **extra):
    rec = ledger.empty(UUID)
    rec["last_hardened"] = iso(time.time() - days_ago * DAY)
    rec.update(extra)
    ledger.save(paths["ledger"], rec)


def glass(paths, text, mode=0o600):
    p = os.path.join(paths["glass"], NAME)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)
    return p


def events(paths):
    return [(e["event"], e.get("detail")) for e in ledger.load(paths["ledger"], UUID)["events"]]


def test_stale_domain_is_refused_with_the_reason_and_the_refusal_is_recorded(gate):
    run, paths = gate
    hardened(paths, 41)
    rc, err, out, _secs = run()
    assert rc == 1 and out == ""
    assert err.startswith("vmguard start gate: domain %s (%s) not started: it was last hardened 41 days ago" % (NAME, UUID))
    assert "more than max_dormant_days 30 (VIS-04)" in err and os.path.join(paths["glass"], NAME) in err
    assert [e for e, _d in events(paths)] == ["start_refused"]
    run()  # a second attempt within the hour is refused again but not recorded again
    assert [e for e, _d in events(paths)] == ["start_refused"]


def test_fresh_domain_starts(gate):
    run, paths = gate
    hardened(paths, 2)
    rc, err, _out, _secs = run()
    assert (rc, err) == (0, "")
    assert events(paths) == []


@pytest.mark.parametrize("op", [("started", "begin"), ("stopped", "end"), ("release", "end"), ("migrate", "begin"),
                                ("restore", "begin"), ("reconnect", "begin"), ("attach", "begin"), ("prepare", "end")])
def test_other_operations_pass_at_once_even_for_a_stale_domain(gate, op):
    run, paths = gate
    hardened(paths, 400)
    rc, err, out, secs = run(op)
    assert (rc, err, out) == (0, "", "") and secs < 5
    assert events(paths) == []


def test_break_glass_allows_once_is_consumed_and_recorded(gate):
    run, paths = gate
    hardened(paths, 41)
    path = glass(paths, "by: alice\nharden after 41 days dormant (CHG-1234)\n")
    rc, err, _out, _secs = run()
    assert (rc, err) == (0, "") and not os.path.exists(path)
    (kind, detail), = events(paths)
    assert kind == "break_glass" and detail["by"] == "alice" and detail["reason"] == "harden after 41 days dormant (CHG-1234)"
    assert "41 days ago" in detail["overrode"]
    rc, err, _out, _secs = run()  # one-shot: the next start is refused again
    assert rc == 1 and "not started" in err


def test_unusable_break_glass_files_are_not_used(gate, tmp_path):
    run, paths = gate
    hardened(paths, 41)
    path = glass(paths, "\n\n")
    rc, err, _out, _secs = run()
    assert rc == 1 and "The break-glass file there was not used: it holds no reason." in err and os.path.exists(path)
    glass(paths, "reason", mode=0o666)
    rc, err, _out, _secs = run()
    assert rc == 1 and "writable by group or others" in err
    os.unlink(path)
    target = tmp_path / "reason"
    target.write_text("a reason planted elsewhere")
    os.symlink(str(target), path)
    rc, err, _out, _secs = run()
    assert rc == 1 and "is not a regular file (a link is never followed)" in err and target.exists()


def test_no_ledger_record_is_allowed_by_default_and_refused_when_configured(gate):
    run, paths = gate
    assert run()[:2] == (0, "")
    with open(paths["config"]) as f:
        cfg = json.load(f)
    cfg["no_record"] = "refuse"
    with open(paths["config"], "w") as f:
        json.dump(cfg, f)
    rc, err, _out, _secs = run()
    assert rc == 1 and "no ledger record: never hardened by vmguard (no_record: refuse)" in err


def test_unreadable_ledger_fails_closed_and_break_glass_still_works(gate):
    run, paths = gate
    with open(ledger.path_for(paths["ledger"], UUID), "w") as f:
        f.write("{not json")
    rc, err, _out, _secs = run()
    assert rc == 1 and "its ledger record cannot be trusted" in err and "not valid JSON" in err
    with open(ledger.path_for(paths["ledger"], UUID)) as f:
        assert f.read() == "{not json"  # never replaced
    path = glass(paths, "ledger restored from backup next")
    rc, err, _out, _secs = run()
    assert rc == 0 and not os.path.exists(path)


def test_unusable_configuration_or_xml_fails_closed(gate):
    run, paths = gate
    hardened(paths, 2)
    with open(paths["config"], "w") as f:
        json.dump({"max_dormant_days": "30", "ledger_dir": paths["ledger"]}, f)
    rc, err, _out, _secs = run()
    assert rc == 1 and "configuration is unusable" in err and "max_dormant_days is \"30\"" in err
    with open(paths["config"], "w") as f:
        json.dump({"ledger_dir": paths["ledger"], "break_glass_dir": paths["glass"]}, f)
    rc, err, _out, _secs = run(xml="<domain><name>x</name></domain>")
    assert rc == 1 and "has no <uuid>" in err


def test_a_locked_record_delays_the_hook_only_briefly(gate):
    """The watcher or a harden holds the record's lock: the refusal is still given within the lock timeout."""
    run, paths = gate
    hardened(paths, 41)
    with ledger.locked(paths["ledger"], UUID):
        rc, err, _out, secs = run()
    assert rc == 1 and "could not be recorded in the ledger" in err and secs < 10
