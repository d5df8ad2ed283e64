"""The ledger under faults, with the ledger module as Ansible runs it (a process per call) and the guest's
epoch file on a temporary root, read by guestscan as guest_facts reads it: a harden run killed between
the two phases, and two harden runs writing one record at once. RB-05 is evaluated by the engine on that
evidence (no real guest is needed: the epoch file is all RB-05 reads of the guest)."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

from conftest import ROOT, run_module, start_module

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

_spec = importlib.util.spec_from_file_location("fault_evidence", os.path.join(ROOT, "tests", "unit", "rules", "evidence.py"))
E = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(E)

UUID = "6a0c1f52-3b1e-4d8e-9f00-0000000fa017"
EPOCH_FILE = "/var/lib/vmguard/epoch.json"


class Guest(object):
    """A guest's epoch file on a temporary root, and the ledger record on the 'hypervisor' (a temp dir)."""

    def __init__(self, tmp_path):
        self.root = str(tmp_path / "guest")
        self.dir = str(tmp_path / "ledger")
        os.makedirs(os.path.join(self.root, "var", "lib", "vmguard"))

    def ledger(self, **args):
        result, p = run_module("ledger", dict(args, uuid=UUID, dir=self.dir))
        assert result is not None and "Traceback" not in p.stderr, p.stderr
        return result

    def write_epoch(self, n):  # the role's copy task (roles/guest/tasks/ledger.yml)
        with open(os.path.join(self.root, EPOCH_FILE.lstrip("/")), "w") as f:
            f.write(json.dumps({"epoch": n}) + "\n")

    def harden(self, stop_after=None):
        """roles/guest/tasks/ledger.yml's two phases; ``stop_after`` 'prepare' or 'epoch_file': the run dies there."""
        prepared = self.ledger(epoch="prepare", record={"disabled_accounts": ["games"]})
        assert not prepared.get("failed"), prepared
        if stop_after == "prepare":
            return prepared
        self.write_epoch(prepared["pending_epoch"])
        if stop_after == "epoch_file":
            return prepared
        return self.ledger(epoch="commit", hardened=True)

    def rb05(self):
        """RB-05 as the next audit evaluates it, on the evidence the evidence modules would read."""
        rec = ledger.read_record(self.dir, UUID)
        epoch, err = guestscan.epoch(EPOCH_FILE, self.root)
        facts = E.guest_facts(1, epoch=epoch, epoch_error=err)
        ev = E.fleet([E.domain("web1", uuid=UUID, ledger=rec)], {"web1": E.guest("web1", facts=facts)})
        return E.by_subject(E.run("RB-05", ev))["web1"]


def test_harden_killed_between_prepare_and_commit_raises_no_alarm_and_the_next_run_completes(tmp_path):
    for stop_after in ("prepare", "epoch_file"):
        g = Guest(tmp_path / stop_after)
        first = g.harden()
        assert first["epoch"] == 1 and first["pending_epoch"] is None
        assert g.rb05()["status"] == "pass"
        interrupted = g.harden(stop_after=stop_after)
        assert interrupted["pending_epoch"] == 2 and interrupted["epoch"] == 1
        f = g.rb05()
        assert f["status"] == "pass", f  # no rollback alarm: the guest holds the old epoch or the pending one
        assert ("pending epoch 2 of an unfinished run" in f["message"]) == (stop_after == "epoch_file"), f["message"]
        # The next harden completes: prepare abandons the pending epoch 2 (never reused) for 3, the guest gets it, commit.
        done = g.harden()
        assert done["epoch"] == 3 and done["pending_epoch"] is None and not done.get("failed"), done
        assert "epoch 3" in done["changes"] and "pending_since" not in done["record"]
        f = g.rb05()
        assert f["status"] == "pass" and f["message"] == "guest and ledger at epoch 3", f


def test_harden_process_killed_during_commit_leaves_a_whole_record(tmp_path):
    """SIGKILL to the ledger module while it waits for the record's lock (held here): nothing written, the
    record stays the prepared one, and the next run completes."""
    g = Guest(tmp_path)
    g.harden(stop_after="epoch_file")
    before = ledger.read_record(g.dir, UUID)
    with ledger.locked(g.dir, UUID):
        proc = start_module("ledger", {"uuid": UUID, "dir": g.dir, "epoch": "commit", "hardened": True})
        time.sleep(1.0)
        assert proc.poll() is None  # it waits for the lock
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert ledger.read_record(g.dir, UUID) == before
    assert g.rb05()["status"] == "pass"
    assert g.harden()["epoch"] == 2 and g.rb05()["message"] == "guest and ledger at epoch 2"  # pending 1 abandoned


def _harden_runs(directory, run, n, out):
    """One harden run's ledger calls, ``n`` times: prepare with a record, an event, commit."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".cache", "collections"))
    mod = [sys.executable, "-m", "ansible_collections.vmguard.hardening.plugins.modules.ledger"]
    results = []
    for i in range(n):
        for args in ({"epoch": "prepare", "record": {"masked_services": ["telnet.socket"]}},
                     {"event": "harden", "detail": {"run": run, "n": i}, "retire_fingerprints": ["SHA256:%s-%d" % (run, i)]},
                     {"epoch": "commit", "hardened": True}):
            p = subprocess.run(mod, input=json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, uuid=UUID, dir=directory)}),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
            results.append((p.returncode, p.stdout, p.stderr))
    out[run] = results


def test_two_harden_runs_at_once_lose_no_entry(tmp_path):
    directory = str(tmp_path / "ledger")
    out, n = {}, 6
    threads = [threading.Thread(target=_harden_runs, args=(directory, run, n, out)) for run in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    for run in ("a", "b"):
        assert len(out[run]) == 3 * n
        for rc, stdout, stderr in out[run]:
            assert rc == 0 and "Traceback" not in stderr, stdout + stderr
    with open(ledger.path_for(directory, UUID)) as f:
        rec = json.load(f)  # valid JSON
    assert ledger.validate(rec, UUID) is None
    got = sorted((e["detail"]["run"], e["detail"]["n"]) for e in rec["events"] if e["event"] == "harden")
    assert got == sorted((r, i) for r in ("a", "b") for i in range(n))
    assert sorted(rec["retired_fingerprints"]) == sorted("SHA256:%s-%d" % (r, i) for r in ("a", "b") for i in range(n))
    assert rec["pending_epoch"] is None and n <= rec["epoch"] <= 2 * n and rec["masked_services"] == ["telnet.socket"]


def test_a_writer_that_cannot_get_the_lock_waits_then_fails_naming_it(tmp_path):
    """The module waits for the lock (here held 2 s by another writer) and then writes; the library's
    bounded wait fails clearly, naming the lock, and writes nothing."""
    directory = str(tmp_path / "ledger")
    release, held = threading.Event(), threading.Event()

    def hold():
        with ledger.locked(directory, UUID):
            held.set()  # the lock is held from here (its file exists a moment before)
            release.wait(2.0)
    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    t0 = time.time()
    result, p = run_module("ledger", {"uuid": UUID, "dir": directory, "event": "harden"})
    waited = time.time() - t0
    holder.join()
    assert not result.get("failed") and result["changed"] and waited >= 1.5, (result, waited)
    with ledger.locked(directory, UUID):
        try:
            with ledger.locked(directory, UUID, timeout=0.3):
                raise AssertionError("two writers held the lock")
        except ledger.LockTimeout as e:
            assert ledger.lock_path_for(directory, UUID) in str(e) and "nothing was written" in str(e)
    assert [e["event"] for e in ledger.read_record(directory, UUID)["events"]] == ["harden"]
