#!/usr/bin/env python
"""Fleet evaluation speed: the engine over 10,000 and 100,000 synthetic guest evidence records.

Measures (all in this one run, best of --repeat):
  * fleet rules (DIV-01, DIV-02, DIV-03, DIV-04, DIV-07) at 10k and 100k guests, and the ratio
    100k/10k (10.0 means linear);
  * every guest and fleet rule at 100k guests (all 17 checks per guest);
  * the baseline a user would write: pairwise comparison of every guest with every other for
    the same duplicates (O(n^2)), at a size it can finish (--baseline-n), against the engine at
    that same size.

Target (issue "Audit"): fleet evaluation of 100,000 guests under 2 s, and linear.
Run: .venv/bin/python bench/bench_fleet_eval.py
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
_link = os.path.join(ROOT, ".cache", "collections", "ansible_collections", "vmguard", "hardening")
if not os.path.exists(_link):
    os.makedirs(os.path.dirname(_link))
    os.symlink(ROOT, _link)

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402

FLEET_RULES = {"DIV-01", "DIV-02", "DIV-03", "DIV-04", "DIV-07"}


def synthetic(n, dup_every=50, builds=40, seed=7):
    """n guests; every dup_every-th guest is a careless clone of its predecessor."""
    rnd = random.Random(seed)
    guests = {}
    prev = None
    for i in range(n):
        if prev is not None and i % dup_every == 0:
            facts = dict(prev)
        else:
            facts = {
                "machine_id_state": "set",
                "machine_id_digest": "%032x" % rnd.getrandbits(128),
                "random_seed_digest": "%032x" % rnd.getrandbits(128),
                "ssh_host_keys": [{"type": "ssh-ed25519", "fingerprint": "SHA256:%x" % rnd.getrandbits(128)},
                                  {"type": "ecdsa-sha2-nistp256", "fingerprint": "SHA256:%x" % rnd.getrandbits(128)}],
                "accounts": [{"name": "root", "locked": True, "hash_digest": None},
                             {"name": "admin", "locked": False, "hash_digest": "%032x" % rnd.getrandbits(128)}],
                "listening": [{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"}],
                "services": {"enabled": [], "masked": []},
                "packages": {},
                "firewall": {"digest": "f", "input_policy": "drop", "accepted_ports": [22], "accepts_all": False, "error": None},
                "sysctl": {"kernel.randomize_va_space": "2"},
                "epoch": None,
                "lineage": {"build_id": "b%d" % (i % builds), "build_time": "2026-11-01T00:00:00Z", "seal": "verified"},
            }
        prev = facts
        guests["g%06d" % i] = {"vars": {"service": "web", "hypervisor": None, "domain": None}, "error": None, "facts": facts}
    return {"hypervisors": {}, "guests": guests}


def timed(fn, repeat):
    best, out = None, None
    for dummy in range(repeat):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best, out


def pairwise_duplicates(evidence):
    """The baseline: compare every guest with every other one (what a Jinja loop does)."""
    items = list(evidence["guests"].items())
    dups = set()
    for i, (a, ra) in enumerate(items):
        fa = ra["facts"]
        for b, rb in items[i + 1:]:
            fb = rb["facts"]
            if (fa["machine_id_digest"] == fb["machine_id_digest"]
                    or fa["random_seed_digest"] == fb["random_seed_digest"]
                    or set(k["fingerprint"] for k in fa["ssh_host_keys"]) & set(k["fingerprint"] for k in fb["ssh_host_keys"])):
                dups.update((a, b))
    return dups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-n", type=int, default=3000)
    args = ap.parse_args()
    pol = policy.load_policy({})
    now = time.time()
    rows = []
    results = {}
    for n in (10000, 100000):
        ev = synthetic(n)
        secs, findings = timed(lambda: engine.evaluate(pol, ev, now=now, only=FLEET_RULES), args.repeat)
        fails = sum(1 for f in findings if f["status"] == "fail")
        results[n] = secs
        rows.append(("engine, fleet rules, %d guests" % n, secs, "%d findings, %d fail" % (len(findings), fails)))
    ev = synthetic(100000)
    all_secs, findings = timed(lambda: engine.evaluate(pol, ev, now=now), 1)
    rows.append(("engine, all guest+fleet rules, 100000 guests", all_secs, "%d findings" % len(findings)))

    small = synthetic(args.baseline_n)
    base_secs, dups = timed(lambda: pairwise_duplicates(small), 1)
    eng_small, f_small = timed(lambda: engine.evaluate(pol, small, now=now, only={"DIV-01", "DIV-02", "DIV-04"}), args.repeat)
    eng_dups = set(f["subject"]["id"] for f in f_small if f["status"] == "fail")
    assert eng_dups == dups, "engine and baseline disagree on the duplicates"
    rows.append(("baseline: pairwise O(n^2), %d guests" % args.baseline_n, base_secs, "%d duplicated guests" % len(dups)))
    rows.append(("engine, same duplicates, %d guests" % args.baseline_n, eng_small, "%d duplicated guests" % len(eng_dups)))

    print("%-50s %10s  %s" % ("measurement", "seconds", "detail"))
    for name, secs, detail in rows:
        print("%-50s %10.3f  %s" % (name, secs, detail))
    print()
    print("linearity: 100k/10k time ratio = %.1f (10.0 = linear)" % (results[100000] / results[10000]))
    print("speed-up over the pairwise baseline at %d guests: %.0fx" % (args.baseline_n, base_secs / eng_small))
    print("projected pairwise time at 100000 guests: %.0f s (x%.0f the engine's %.2f s)" % (
        base_secs * (100000.0 / args.baseline_n) ** 2, base_secs * (100000.0 / args.baseline_n) ** 2 / results[100000],
        results[100000]))
    print("target: fleet evaluation of 100k guests < 2 s: %s" % ("MET" if results[100000] < 2 else "NOT MET"))


if __name__ == "__main__":
    main()
