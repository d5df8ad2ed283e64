"""One lock for a ledger record (remediation/ledger.py ``locked``), with real processes: the revert
watcher's write path (Watcher.record) and the ledger module run as a module process (python -m ...,
arguments on stdin, as Ansible runs it) hammer one record at the same time while a third process keeps
reading it. Afterwards every watcher event, every module event and every retired fingerprint is in the
record, and every read saw a whole, valid record. The watcher here is only its write path: no libvirt,
no lock or heartbeat of the running watcher (/run/vmguard) is touched."""

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
UUID = "6a0c1f52-3b1e-4d8e-9f00-00000000c0de"
WATCHER_EVENTS = 80  # two watcher writers: 160 events + 30 module events stay within ledger.MAX_EVENTS
MODULE_RUNS = 30


def _collection_link():
    link = os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_collection_link()
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import watcher  # noqa: E402


def watcher_writer(directory, go, out):
    """The watcher's path: Watcher.record (lock, load, update, save) once per event."""
    cfg = watcher.parse_config({"ledger_dir": directory, "lock": os.path.join(directory, "w.lock"),
                                "heartbeat": os.path.join(directory, "w.heartbeat")})
    w = watcher.Watcher(cfg, None)
    go.wait()
    results = []
    for n in range(WATCHER_EVENTS):
        results.append(w.record(UUID, lambda rec, now, n=n: ledger.apply(rec, now, event="revert", detail={"n": n})))
        time.sleep(0.002)
    out.put(("watcher", results))


def module_writer(directory, go, out):
    """The ledger module, as Ansible runs it: a python process reading its arguments on stdin."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    go.wait()
    results = []
    for n in range(MODULE_RUNS):
        args = {"ANSIBLE_MODULE_ARGS": {"uuid": UUID, "dir": directory, "event": "harden", "detail": {"n": n},
                                        "retire_fingerprints": ["SHA256:module-%d" % n], "hardened": True}}
        p = subprocess.run([sys.executable, "-m", "ansible_collections.vmguard.hardening.plugins.modules.ledger"],
                           input=json.dumps(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=env, check=False)
        results.append(json.loads(p.stdout) if p.stdout.strip().startswith("{") else {"failed": True, "msg": p.stderr})
    out.put(("module", results))


def reader(directory, stop, out):
    """Reads the record as fast as it can: each read must be a whole, valid record."""
    reads, bad = 0, []
    while not stop.is_set():
        rec = ledger.read_record(directory, UUID)
        if rec is not None:
            reads += 1
            if rec.get("error"):
                bad.append(rec["error"])
    out.put(("reader", (reads, bad)))


def test_watcher_and_ledger_module_hammering_one_record_lose_nothing(tmp_path):
    directory = str(tmp_path / "ledger")
    ctx = multiprocessing.get_context("fork")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=watcher_writer, args=(directory, go, out)),
             ctx.Process(target=watcher_writer, args=(directory, go, out)),
             ctx.Process(target=module_writer, args=(directory, go, out)),
             ctx.Process(target=reader, args=(directory, stop, out))]
    for p in procs:
        p.start()
    go.set()
    results = {}
    try:
        for _unused in range(3):
            kind, res = out.get(timeout=300)
            results.setdefault(kind, []).append(res)
    finally:
        stop.set()
        kind, res = out.get(timeout=30)
        results[kind] = [res]
        for p in procs:
            p.join(30)
    for batch in results["watcher"]:
        assert batch == ["saved"] * WATCHER_EVENTS, batch
    (runs,) = results["module"]
    assert [r.get("failed", False) for r in runs] == [False] * MODULE_RUNS, [r.get("msg") for r in runs if r.get("failed")]
    (reads, bad), = results["reader"]
    assert bad == [] and reads > 0
    rec = ledger.load(directory, UUID)  # valid JSON of the right shape
    events = [(e["event"], e["detail"]["n"]) for e in rec["events"]]
    assert sorted(n for kind, n in events if kind == "revert") == sorted(list(range(WATCHER_EVENTS)) * 2)
    assert sorted(n for kind, n in events if kind == "harden") == list(range(MODULE_RUNS))
    assert sorted(rec["retired_fingerprints"]) == sorted("SHA256:module-%d" % n for n in range(MODULE_RUNS))
    assert rec["last_hardened"] is not None
    lock = ledger.lock_path_for(directory, UUID)
    assert os.stat(lock).st_mode & 0o777 == 0o600 and sorted(os.listdir(directory)) == sorted(
        [UUID + ".json", UUID + ".lock"])


def test_the_module_waits_for_the_lock_and_then_records(tmp_path):
    """A record locked by another process (the watcher mid-update): the module waits, then writes."""
    directory = str(tmp_path / "ledger")
    ctx = multiprocessing.get_context("fork")
    held, out = ctx.Event(), ctx.Queue()

    def hold():
        with ledger.locked(directory, UUID):
            held.set()
            time.sleep(1.5)
            out.put(time.time())

    p = ctx.Process(target=hold)
    p.start()
    assert held.wait(10)
    args = {"ANSIBLE_MODULE_ARGS": {"uuid": UUID, "dir": directory, "event": "harden"}}
    done = subprocess.run([sys.executable, "-m", "ansible_collections.vmguard.hardening.plugins.modules.ledger"],
                          input=json.dumps(args), stdout=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    finished = time.time()
    released = out.get(timeout=10)
    p.join(10)
    result = json.loads(done.stdout)
    assert result["changed"] is True and finished >= released
    assert [e["event"] for e in ledger.load(directory, UUID)["events"]] == ["harden"]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
