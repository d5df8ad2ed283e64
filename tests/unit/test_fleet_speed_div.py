"""Fleet evaluation speed (issue 12): DIV-01..04 judged in one pass over the fleet give, byte for byte, the
findings of a straightforward implementation kept here (one index per rule, value -> set of guests, and
each guest judged on its own), on generated fleets with duplicates of every kind, missing evidence and
malformed evidence."""

import copy
import json
import random

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, div

NOW = 1795000000.0
IDENTITY = ("DIV-01", "DIV-02", "DIV-03", "DIV-04")


# ---- the reference: the rules as written before the one-pass evaluation, run guest by guest ----

def ref_machine_id(f):
    """The machine-id and, when it is a file of its own (not the link to /etc/machine-id), the D-Bus copy."""
    mid, dbus = f.get("machine_id_digest"), f.get("dbus_machine_id_digest")
    return (mid, dbus) if dbus and dbus != mid else (mid,)


def ref_host_keys(f):
    return [k["fingerprint"] for k in f.get("ssh_host_keys") or ()]


def ref_hash(a):
    """An account's hash, or the one behind its '!' lock (unlocking gives it back)."""
    return a.get("hash_digest") or a.get("locked_hash_digest")


def ref_hashes(f):
    return [ref_hash(a) for a in f.get("accounts") or () if ref_hash(a)]


def ref_seed(f):
    return (f.get("random_seed_digest"),)


class RefIndex(object):
    """value -> set of every guest with evidence having it; built when a guest first needs it, and a build that
    raises raises again for every guest that needs it (as a check called per guest would)."""

    def __init__(self, guests, values_of):
        self.guests, self.values_of, self.idx = guests, values_of, None

    def others(self, guest, f):
        if self.idx is None:
            idx = {}
            for g, rec in self.guests.items():
                if not rec.get("error") and rec.get("facts"):
                    for v in self.values_of(rec["facts"]):
                        if v:
                            idx.setdefault(v, set()).add(g)
            self.idx = idx
        shared = {}
        for v in self.values_of(f):
            if v and len(self.idx.get(v, ())) > 1:
                shared[v] = sorted(self.idx[v] - {guest})
        return shared


def all_others(shared):
    return sorted(set(o for v in shared.values() for o in v))


def some(names):
    """A message names ten of them, then how many more (the evidence carries them all)."""
    return ", ".join(names[:10]) + (" and %d more" % (len(names) - 10) if len(names) > 10 else "")


def ref_div01(f, guest, index):
    if not f.get("machine_id_digest"):
        if f.get("machine_id_state") == "empty":
            return "fail", "/etc/machine-id is empty or missing (uninitialized identity)", {}
        return "error", "machine-id not collected%s" % (": %s" % f["machine_id_error"] if f.get("machine_id_error") else ""), {}
    shared = index.others(guest, f)
    if shared:
        others = all_others(shared)
        copies = [p for p, v in zip(("/etc/machine-id", "/var/lib/dbus/machine-id"), ref_machine_id(f)) if v in shared]
        what = "machine-id" if copies[0] == "/etc/machine-id" else \
            "D-Bus machine-id (/var/lib/dbus/machine-id, which libdbus reads first)"
        return "fail", "%s is shared with %s" % (what, some(others)), {
            "shared_with": others, "digest": f["machine_id_digest"][:16], "copies": copies}
    return "pass", "machine-id is unique in the fleet", {"digest": f["machine_id_digest"][:16]}


def ref_div02(f, guest, index):
    keys = f.get("ssh_host_keys")
    if keys is None:
        return "error", "SSH host keys not collected: %s" % (f.get("ssh_host_keys_error") or "missing"), {}
    if not keys:
        return "not_applicable", "no SSH host keys (no SSH server)", {}
    shared = index.others(guest, f)
    if shared:
        return "fail", "%d SSH host key(s) shared with %s" % (len(shared), some(all_others(shared))), {"shared": dict(shared)}
    return "pass", "%d SSH host key(s), none shared" % len(keys), {"fingerprints": [k["fingerprint"] for k in keys]}


def ref_div03(f, guest, index):
    accounts = f.get("accounts")
    if accounts is None or f.get("accounts_error"):
        return "error", "password hashes not collected: %s" % (
            f.get("accounts_error") or "accounts missing (is /etc/shadow readable? guest_facts needs become)"), {}
    hashed = [a for a in accounts if ref_hash(a)]
    if not hashed:
        return "not_applicable", "no account has a password hash: nothing to compare", {}
    shared = index.others(guest, f)
    if shared:
        dup = sorted((a["name"], not a.get("hash_digest")) for a in hashed if ref_hash(a) in shared)
        said = ", ".join(name + (" (locked)" if locked else "") for name, locked in dup)
        return "fail", "password hash of %s identical on %s" % (said, some(all_others(shared))), {
            "accounts": [name for name, locked in dup], "shared_with": all_others(shared)}
    return "pass", "%d password hash(es), none shared" % len(hashed), {}


def ref_div04(f, guest, index):
    if "random_seed_digest" not in f:
        return "error", "random seed not collected", {}
    if f.get("random_seed_error"):
        return "error", f["random_seed_error"], {}
    if not f["random_seed_digest"]:
        return "not_applicable", "no systemd random seed file on this guest", {}
    shared = index.others(guest, f)
    if shared:
        others = all_others(shared)
        return "fail", "random seed identical on %s" % some(others), {"shared_with": others}
    return "pass", "random seed is unique in the fleet", {}


REFERENCE = {"DIV-01": (ref_div01, ref_machine_id), "DIV-02": (ref_div02, ref_host_keys),
             "DIV-03": (ref_div03, ref_hashes), "DIV-04": (ref_div04, ref_seed)}


def reference_findings(pol, evidence, rids):
    guests = evidence["guests"]
    out = []
    for rid in IDENTITY:
        if rid not in rids:
            continue
        judge, values_of = REFERENCE[rid]
        index = RefIndex(guests, values_of)
        rule = RULES[rid]
        for g in sorted(guests):
            rec = guests[g]
            err = rec.get("error") or (None if rec.get("facts") else "no guest evidence collected")
            if err:
                status, message, detail = "error", "cannot evaluate: %s" % err, {}
            else:
                try:
                    status, message, detail = judge(rec["facts"], g, index)
                except Exception as e:  # pylint: disable=broad-except
                    status, message, detail = "error", "check failed: %s: %s" % (type(e).__name__, e), {}
            out.append({"rule": rid, "area": rule.area, "severity": pol["rules"][rid]["severity"], "status": status,
                        "subject": {"kind": "guest", "id": g}, "message": message,
                        "remediation": rule.remediation if status in ("fail", "error") else "", "evidence": detail})
        unproven(out, rid, rule, len(guests), [g for g in guests if unknown_alone(guests[g], g, judge)])
    return out


class Alone(object):
    """An index in which a guest shares nothing: what it is judged against alone."""

    def others(self, guest, f):
        return {}


def unknown_alone(rec, g, judge):
    """Whether the guest's value is unknown: no evidence, or judged alone an error (or a broken check)."""
    if rec.get("error") or not rec.get("facts"):
        return True
    try:
        return judge(rec["facts"], g, Alone())[0] == "error"
    except Exception:  # pylint: disable=broad-except
        return True


COMPARED = {"DIV-01": "machine-id was", "DIV-02": "SSH host keys were", "DIV-03": "password hashes were",
            "DIV-04": "random seed was"}


def unproven(out, rid, rule, total, unknown):
    """A guest whose value is unknown may share it: every pass of the rule becomes an error."""
    unknown = sorted(unknown)
    if not unknown:
        return
    for f in out:
        if f["rule"] == rid and f["status"] == "pass":
            message = "shared with none of the %d other guest(s) compared, but the %s not collected for %d guest(s) (%s): " \
                "not proven unique in the fleet" % (total - len(unknown) - 1, COMPARED[rid], len(unknown), some(unknown))
            f.update(status="error", remediation=rule.remediation, evidence=dict(not_collected=len(unknown), **f["evidence"]),
                     message=message)


# ---- generated fleets ----

def facts(rnd, i):
    return {
        "machine_id_state": "set",
        "machine_id_digest": "%064x" % rnd.getrandbits(256),
        "random_seed_digest": "%064x" % rnd.getrandbits(256),
        "ssh_host_keys": [{"type": "ssh-ed25519", "fingerprint": "SHA256:%x" % rnd.getrandbits(128)},
                          {"type": "ecdsa-sha2-nistp256", "fingerprint": "SHA256:%x" % rnd.getrandbits(128)}],
        "accounts": [{"name": "root", "locked": True, "hash_digest": None},
                     {"name": "admin", "locked": False, "hash_digest": "%064x" % rnd.getrandbits(256)}],
        "accounts_error": None,
        "sysctl": {"kernel.randomize_va_space": "2"},
        "lineage": {"build_id": "b%d" % (i % 7), "build_time": "2026-11-01T00:00:00Z", "seal": "verified"},
    }


def other_facts(rnd, guests, names):
    while True:
        f = guests[rnd.choice(names)]["facts"]
        if f:
            return f


# The kinds of generated guest whose value of some DIV rule is unknown (no evidence, or a field not collected).
SILENT_KINDS = (1, 2, 4, 6, 7, 9, 10)


def generated_fleet(n=400, seed=12, silent=True):
    """n guests: careless clones, values shared across guests for every DIV kind, a value repeated on one
    guest only, unreachable guests, guests without facts, every missing or unreadable evidence field (``silent``
    false: no unknown value, so the unique guests pass)."""
    rnd = random.Random(seed)
    names = ["g%04d" % i for i in range(n)]
    rnd.shuffle(names)  # inventory order is not name order
    guests = {}
    for i, g in enumerate(names):
        guests[g] = {"vars": {"service": "web", "hypervisor": None, "domain": None}, "error": None, "facts": facts(rnd, i)}
    for i, g in enumerate(names):
        f = guests[g]["facts"]
        kind = i % 23
        if not silent and (kind in SILENT_KINDS or kind == 3):
            if kind == 3:
                f.update(machine_id_digest=None, machine_id_state="empty")
            continue
        if kind == 0:
            guests[g]["facts"] = copy.deepcopy(other_facts(rnd, guests, names))  # a clone: every identity shared
        elif kind == 1:
            guests[g]["error"] = "unreachable: ssh timed out"
        elif kind == 2:
            guests[g]["facts"] = rnd.choice([None, {}])
        elif kind == 3:
            f.update(machine_id_digest=None, machine_id_state=rnd.choice(["empty", "unreadable"]))
        elif kind == 4:
            f.update(ssh_host_keys=None, ssh_host_keys_error=rnd.choice([None, "Permission denied"]))
        elif kind == 5:
            f["ssh_host_keys"] = []
        elif kind == 6:
            f.update(accounts=None, accounts_error=rnd.choice([None, "/etc/shadow exists but cannot be read"]))
        elif kind == 7:
            f["accounts_error"] = "/etc/shadow: Permission denied"
        elif kind == 8:
            f["accounts"][1]["hash_digest"] = None
        elif kind == 9:
            del f["random_seed_digest"]
        elif kind == 10:
            f["random_seed_error"] = "random seed unreadable: Permission denied"
        elif kind == 11:
            f["random_seed_digest"] = rnd.choice([None, ""])
        elif kind == 12:
            f["machine_id_digest"] = other_facts(rnd, guests, names)["machine_id_digest"] or "m0"
        elif kind == 13:
            f["ssh_host_keys"][1] = dict(rnd.choice(other_facts(rnd, guests, names)["ssh_host_keys"] or f["ssh_host_keys"]))
        elif kind == 14:
            f["accounts"].append({"name": "ops", "locked": False, "hash_digest": "common-%d" % rnd.randrange(3)})
        elif kind == 15:
            f["random_seed_digest"] = "seed-%d" % rnd.randrange(3)
        elif kind == 16:  # the same value twice on this guest only: not shared with anyone
            f["ssh_host_keys"].append(dict(f["ssh_host_keys"][0]))
            f["accounts"].append({"name": "admin2", "locked": False, "hash_digest": f["accounts"][1]["hash_digest"]})
        elif kind == 17:
            f["accounts"] = copy.deepcopy(other_facts(rnd, guests, names)["accounts"] or f["accounts"])
        elif kind == 18:  # a D-Bus machine-id copy of its own, shared with other guests' copies
            f["dbus_machine_id_digest"] = "dbus-common-%d" % rnd.randrange(2)
        elif kind == 19:  # the D-Bus copy is the link to /etc/machine-id: the machine-id's own digest
            f["dbus_machine_id_digest"] = f["machine_id_digest"]
        elif kind == 20:  # the D-Bus copy holds another guest's /etc/machine-id
            f["dbus_machine_id_digest"] = other_facts(rnd, guests, names)["machine_id_digest"] or "m1"
        elif kind == 21:  # a D-Bus copy of its own nobody else has
            f["dbus_machine_id_digest"] = "%064x" % rnd.getrandbits(256)
        elif kind == 22:  # a locked account whose hash (behind the '!') is another guest's, or of its own
            hashed = [a for a in other_facts(rnd, guests, names)["accounts"] or () if a.get("hash_digest")]
            f["accounts"].append({"name": "old", "locked": True, "hash_digest": None, "locked_hash_digest": (
                hashed[0]["hash_digest"] if hashed and rnd.random() < 0.5 else "%064x" % rnd.getrandbits(256))})
    return {"hypervisors": {}, "guests": guests}


def findings_json(findings):
    return json.dumps(findings, sort_keys=False)


def statuses(findings, rid):
    return set(f["status"] for f in findings if f["rule"] == rid)


def test_generated_fleet_findings_identical_to_the_reference():
    pol = policy.load_policy({})
    answered = generated_fleet(silent=False)
    got = engine.evaluate(pol, copy.deepcopy(answered), now=NOW, only=set(IDENTITY))
    assert findings_json(got) == findings_json(reference_findings(pol, answered, IDENTITY))
    for rid in IDENTITY:  # every value known: duplicates fail, the unique ones pass
        assert {"pass", "fail"} <= statuses(got, rid), rid
    ev = generated_fleet()
    got = engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only=set(IDENTITY))
    want = reference_findings(pol, ev, IDENTITY)
    assert findings_json(got) == findings_json(want)
    # The fleet exercises what it must: duplicates of every kind fail, missing evidence is an error, and beside
    # an unknown value no guest passes as unique.
    for rid in IDENTITY:
        assert {"fail", "error"} <= statuses(got, rid) and "pass" not in statuses(got, rid), rid
    assert sum(1 for f in got if "not proven unique" in f["message"]) > 100
    # A locked account's hash behind its '!' shared with another guest fails too (one unlock from a shared password).
    assert any(f["rule"] == "DIV-03" and f["status"] == "fail" and "old (locked)" in f["message"] for f in got)
    for rid in ("DIV-02", "DIV-03", "DIV-04"):
        assert "not_applicable" in statuses(got, rid), rid
    # A D-Bus copy shared (with another copy or another guest's /etc/machine-id) fails DIV-01.
    dbus_fails = [f for f in got if f["rule"] == "DIV-01" and f["status"] == "fail"
                  and f["evidence"].get("copies") == ["/var/lib/dbus/machine-id"]]
    assert len(dbus_fails) >= 5 and "libdbus reads first" in dbus_fails[0]["message"]
    assert any(f["message"] == "cannot evaluate: no guest evidence collected" for f in got)
    assert any(f["message"] == "cannot evaluate: unreachable: ssh timed out" for f in got)
    assert not any("check failed" in f["message"] for f in got)
    # ... and the one pass did it (no fallback to the per-guest checks).
    ctx = engine.Context(pol, ev, NOW)
    assert sorted(div._identity_findings(ctx)) == list(IDENTITY)


def test_a_value_repeated_on_one_guest_only_is_not_a_duplicate():
    pol = policy.load_policy({})
    rnd = random.Random(3)
    f1, f2 = facts(rnd, 1), facts(rnd, 2)
    f1["ssh_host_keys"].append(dict(f1["ssh_host_keys"][0]))
    f1["accounts"].append({"name": "admin2", "locked": False, "hash_digest": f1["accounts"][1]["hash_digest"]})
    ev = {"hypervisors": {}, "guests": {g: {"vars": {}, "error": None, "facts": f} for g, f in (("a", f1), ("b", f2))}}
    got = engine.evaluate(pol, ev, now=NOW, only=set(IDENTITY))
    assert [f["status"] for f in got] == ["pass"] * 8
    f2["ssh_host_keys"][1] = dict(f1["ssh_host_keys"][0])  # now shared with b
    got = dict(((f["rule"], f["subject"]["id"]), f) for f in engine.evaluate(pol, ev, now=NOW, only=set(IDENTITY)))
    assert got[("DIV-02", "a")]["status"] == got[("DIV-02", "b")]["status"] == "fail"
    assert got[("DIV-02", "a")]["evidence"]["shared"] == {f1["ssh_host_keys"][0]["fingerprint"]: ["b"]}


def test_each_rule_alone_identical_to_the_reference():
    pol = policy.load_policy({})
    ev = generated_fleet(n=150, seed=5)
    for rids in (["DIV-01"], ["DIV-02"], ["DIV-03"], ["DIV-04"], ["DIV-02", "DIV-04"]):
        got = engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only=set(rids))
        assert findings_json(got) == findings_json(reference_findings(pol, ev, rids)), rids


def test_disabled_rule_is_not_judged_and_the_others_are_identical():
    pol = policy.load_policy({"rules": {"DIV-03": {"enabled": False}}})
    ev = generated_fleet(n=120, seed=8)
    got = engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only=set(IDENTITY))
    assert "DIV-03" not in set(f["rule"] for f in got)
    assert findings_json(got) == findings_json(reference_findings(pol, ev, ["DIV-01", "DIV-02", "DIV-04"]))


@pytest.mark.parametrize("silent", [True, False], ids=["some-values-unknown", "every-value-known"])
def test_per_guest_check_equals_the_batch_finding(silent):
    pol = policy.load_policy({})
    ev = generated_fleet(n=200, seed=9, silent=silent)
    ctx = engine.Context(pol, ev, NOW)
    batch = div._identity_findings(ctx)
    fresh = engine.Context(pol, ev, NOW)  # the per-guest checks build their own indexes
    for rid in IDENTITY:
        good, bad = ctx.finding_templates(rid, "guest")
        for (subject, g, err), finding in zip(ctx.guest_subjects(), batch[rid]):
            rec = ev["guests"][g]
            if rec.get("error") or not rec.get("facts"):
                assert err and finding is None  # the engine makes the finding of a guest without evidence
                continue
            status, message, detail = RULES[rid].checks["guest"](fresh, g)
            want = dict(bad if status in ("fail", "error") else good, status=status, subject=subject, message=message, evidence=detail)
            assert json.dumps(finding) == json.dumps(want), (rid, g)
            assert finding["subject"] is subject  # the run's one subject dict per guest


def malformed(n, seed, how):
    ev = generated_fleet(n=n, seed=seed)
    names = sorted(g for g, rec in ev["guests"].items() if rec["facts"] and not rec["error"]
                   and rec["facts"].get("ssh_host_keys") and rec["facts"].get("accounts"))
    how(ev["guests"], names)
    return ev


def _key_without_fingerprint(guests, names):
    guests[names[3]]["facts"]["ssh_host_keys"][0] = {"type": "ssh-ed25519"}


def _unhashable_digests(guests, names):
    guests[names[4]]["facts"]["machine_id_digest"] = ["not", "a", "digest"]
    guests[names[5]]["facts"]["random_seed_digest"] = {"a": 1}


def _shared_hash_on_an_account_without_name(guests, names):
    a, b = guests[names[6]]["facts"], guests[names[7]]["facts"]
    a["accounts"] = [{"hash_digest": "h-shared"}]
    b["accounts"].append({"name": "ops", "hash_digest": "h-shared"})


def _facts_not_a_mapping(guests, names):
    guests[names[8]]["facts"] = ["not", "a", "mapping"]


def test_malformed_evidence_is_a_check_failure_identical_to_the_reference():
    pol = policy.load_policy({})
    for how in (_key_without_fingerprint, _unhashable_digests, _shared_hash_on_an_account_without_name, _facts_not_a_mapping):
        ev = malformed(160, 11, how)
        got = engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only=set(IDENTITY))
        assert findings_json(got) == findings_json(reference_findings(pol, ev, IDENTITY)), how.__name__
        assert any(f["status"] == "error" and f["message"].startswith("check failed: ") for f in got), how.__name__
        assert div._identity_findings(engine.Context(pol, ev, NOW)) is None, how.__name__


def test_the_fleet_benchmark_data_identical_to_the_reference():
    # The benchmark's own generator (clones every 50th guest) at a size a unit test affords.
    pol = policy.load_policy({})
    guests = {}
    rnd = random.Random(7)
    prev = None
    for i in range(2000):
        f = dict(prev) if prev is not None and i % 50 == 0 else facts(rnd, i)
        prev = f
        guests["g%06d" % i] = {"vars": {}, "error": None, "facts": f}
    ev = {"hypervisors": {}, "guests": guests}
    got = engine.evaluate(pol, ev, now=NOW, only=set(IDENTITY))
    assert findings_json(got) == findings_json(reference_findings(pol, ev, IDENTITY))
    assert sum(1 for f in got if f["status"] == "fail") == 4 * 2 * 39


# ---- DIV-07 (its build-id count changed too): a reference written from its documented behaviour, on the same fleets ----

def some(names, n=10):
    names = sorted(names)
    return ", ".join(names[:n]) + (" and %d more" % (len(names) - n) if len(names) > n else "")


def ref_div07(guests, p):
    """DIV-07 as documented: no lineage record counts in the fleet and in no build; a record not collected,
    unreadable ({"error": ...}), not an object or naming no build, or a guest without evidence, is an unknown build:
    a build over the limits fails; else the unknown guests added to the largest build decide: over the limits, an
    error; within them, a pass."""
    builds, total, unknown, unseen = {}, 0, [], []
    for g, rec in guests.items():
        total += 1
        f = rec.get("facts") or {}
        if rec.get("error") or not f:
            unseen.append(g)
            continue
        lineage = f.get("lineage", {"error": "not collected"})
        if lineage is None:
            continue
        if not isinstance(lineage, dict) or "error" in lineage or not lineage.get("build_id"):
            unknown.append(g)
            continue
        builds.setdefault(lineage["build_id"], []).append(g)
    if not total:
        return "not_applicable", "no guest in the inventory", {}

    def over_limits(n):
        return n > p["max_clones_per_build"] or (n / float(total) > p["max_fleet_share"] and total > 1)

    shares = dict((b, {"guests": len(gs), "share": round(len(gs) / float(total), 3)}) for b, gs in builds.items())
    more = {}
    if unknown:
        more["unknown_build"] = sorted(unknown)
    if unseen:
        more["no_evidence"] = sorted(unseen)
    what = "; ".join((["%s (lineage record unreadable or naming no build)" % some(unknown)] if unknown else [])
                     + (["%s (no evidence collected)" % some(unseen)] if unseen else []))
    k = len(unknown) + len(unseen)
    over = dict((b, s) for b, s in shares.items() if over_limits(s["guests"]))
    detail = dict({"builds": shares, "guests": total}, **more)
    if over:
        return "fail", "blast radius too large: %s (limits %d guests, %.0f%% of %d)%s" % (
            ", ".join("build %s on %d guests (%.0f%%)" % (b, s["guests"], s["share"] * 100) for b, s in sorted(over.items())),
            p["max_clones_per_build"], p["max_fleet_share"] * 100, total, "; build unknown on %s" % what if k else ""), detail
    largest = max([len(gs) for gs in builds.values()] or [0])
    if k and over_limits(largest + k):
        return "error", ("image build unknown on %d of %d guest(s): %s: the blast radius of their build cannot be established "
                         "(with the largest known build they would be %d guests, over the limits of %d guests, %.0f%% of %d)" % (
                             k, total, what, largest + k, p["max_clones_per_build"], p["max_fleet_share"] * 100, total)), detail
    if not shares and not k:
        return "not_applicable", "no guest carries a lineage record", {}
    message = "%d image build(s) over %d guests, each within the limits" % (len(shares), total)
    if k:
        message += ", even if the %d guest(s) of unknown build all belong to the largest (%s)" % (k, what)
    return "pass", message, detail


def div07_json(pol, ev):
    return findings_json(engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only={"DIV-07"}))


def ref_div07_json(pol, ev):
    try:
        status, message, detail = ref_div07(ev["guests"], pol["params"]["diversity"])
    except Exception as e:  # pylint: disable=broad-except
        status, message, detail = "error", "check failed: %s: %s" % (type(e).__name__, e), {}
    rule = RULES["DIV-07"]
    return findings_json([{"rule": "DIV-07", "area": rule.area, "severity": pol["rules"]["DIV-07"]["severity"], "status": status,
                           "subject": {"kind": "fleet", "id": "fleet"}, "message": message,
                           "remediation": rule.remediation if status in ("fail", "error") else "", "evidence": detail}])


def test_div07_identical_to_the_reference():
    ev = generated_fleet(n=300, seed=21)  # builds b0..b6, in inventory (not name) order
    names = list(ev["guests"])
    for i, g in enumerate(names):
        f = ev["guests"][g]["facts"]
        if f and i % 11 == 0:
            f["lineage"] = None
        elif f and i % 13 == 0:
            f["lineage"] = {"build_time": "2026-11-01T00:00:00Z"}  # no build id: unknown build
        elif f and i % 17 == 0:
            f["lineage"] = {"error": "unparsable /etc/vmguard/lineage.json"}  # guestscan.json_file's: unknown build
    strict = policy.load_policy({})
    lax = policy.load_policy({"params": {"diversity": {"max_clones_per_build": 1000, "max_fleet_share": 0.9}}})
    # Between the two: the largest known build is within the share, not once the guests of unknown build join it.
    status, message, detail = ref_div07(ev["guests"], lax["params"]["diversity"])
    largest = max(b["guests"] for b in detail["builds"].values())
    k = len(detail.get("unknown_build", [])) + len(detail.get("no_evidence", []))
    assert k and detail.get("no_evidence"), "the fleet has guests of unknown build and guests without evidence"
    mid = policy.load_policy({"params": {"diversity": {"max_clones_per_build": 1000,
                                                       "max_fleet_share": (largest + k / 2.0) / detail["guests"]}}})
    for pol in (strict, lax, mid):
        assert div07_json(pol, ev) == ref_div07_json(pol, ev)
    assert json.loads(div07_json(strict, ev))[0]["status"] == "fail"  # over the limits whatever the unknown builds are
    assert json.loads(div07_json(mid, ev))[0]["status"] == "error"  # within them only if the unknown builds are spread
    assert json.loads(div07_json(lax, ev))[0]["status"] == "pass"  # within them even if they all join the largest
    readable = copy.deepcopy(ev)
    for rec in readable["guests"].values():
        if rec["facts"] and (rec["facts"]["lineage"] or {}).get("build_id") is None:
            rec["facts"]["lineage"] = None
    assert div07_json(lax, readable) == ref_div07_json(lax, readable)
    assert json.loads(div07_json(lax, readable))[0]["status"] == "pass"
    unknown = copy.deepcopy(ev)
    for rec in unknown["guests"].values():
        if rec["facts"]:
            rec["facts"]["lineage"] = None
    assert div07_json(strict, unknown) == ref_div07_json(strict, unknown)
    # No reachable guest carries a record, but the guests nobody saw could all be one build over the limits.
    assert json.loads(div07_json(strict, unknown))[0]["status"] == "error"
    for g in [g for g, rec in unknown["guests"].items() if rec["error"] or not rec["facts"]]:
        del unknown["guests"][g]
    assert div07_json(strict, unknown) == ref_div07_json(strict, unknown)
    assert json.loads(div07_json(strict, unknown))[0]["status"] == "not_applicable"
    broken = copy.deepcopy(ev)
    next(rec for rec in broken["guests"].values() if rec["facts"] and not rec["error"])["facts"]["lineage"] = {"build_id": ["b1"]}
    assert div07_json(strict, broken) == ref_div07_json(strict, broken)
    assert json.loads(div07_json(strict, broken))[0]["message"].startswith("check failed: TypeError")


# ---- the pieces the one pass relies on ----

def test_guest_facts_follow_the_subjects():
    pol = policy.load_policy({})
    ev = generated_fleet(n=90, seed=4)
    ctx = engine.Context(pol, ev, NOW)
    subjects, facts = ctx.guest_subjects(), ctx.guest_facts()
    assert [g for subject, g, err in subjects] == sorted(ev["guests"]) and len(facts) == len(subjects)
    for (subject, g, err), f in zip(subjects, facts):
        assert subject == {"kind": "guest", "id": g}
        if err:
            assert f is None
        else:
            assert f is ev["guests"][g]["facts"]
    assert any(err for subject, g, err in subjects) and any(f for f in facts)


def test_a_value_shared_by_three_guests_out_of_inventory_order():
    pol = policy.load_policy({})
    rnd = random.Random(17)
    fs = dict((g, facts(rnd, i)) for i, g in enumerate(("c", "a", "d", "b", "e")))
    for g in ("a", "b", "e"):  # the first in name order is neither the first in the inventory nor alone with it
        fs[g]["random_seed_digest"] = "seed-shared"
    fs["d"]["random_seed_error"] = "random seed unreadable: Permission denied"
    fs["d"]["random_seed_digest"] = "seed-shared"  # unreadable on d: an error there, yet d shares it with the others
    ev = {"hypervisors": {}, "guests": dict((g, {"vars": {}, "error": None, "facts": f}) for g, f in fs.items())}
    got = engine.evaluate(pol, copy.deepcopy(ev), now=NOW, only={"DIV-04"})
    assert findings_json(got) == findings_json(reference_findings(pol, ev, ["DIV-04"]))
    by = dict((f["subject"]["id"], f) for f in got)
    # c shares nothing with the guests whose seed is known, but d's is unreadable: c is not proven unique.
    assert [by[g]["status"] for g in "abcde"] == ["fail", "fail", "error", "error", "fail"]
    assert by["a"]["evidence"] == {"shared_with": ["b", "d", "e"]}
    assert by["c"]["message"].endswith("but the random seed was not collected for 1 guest(s) (d): not proven unique in the fleet")
    assert by["a"]["remediation"] == RULES["DIV-04"].remediation


def test_no_value_met_twice_leaves_the_indexes_empty():
    pol = policy.load_policy({})
    rnd = random.Random(23)
    ev = {"hypervisors": {}, "guests": dict(("g%d" % i, {"vars": {}, "error": None, "facts": facts(rnd, i)}) for i in range(30))}
    ctx = engine.Context(pol, ev, NOW)
    found = div._identity_findings(ctx)
    assert set(f["status"] for rid in IDENTITY for f in found[rid]) == {"pass"}
    for name in ("div01", "div02", "div03", "div04"):  # the per-guest checks of this run reuse them
        assert ctx.index("div:duplicates:" + name, None) == (({}, set()), None)
