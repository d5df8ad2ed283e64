"""The ledger module's epoch commit (plugins/modules/ledger.py update()) on a real ledger directory, with the
module's clock set: a revert or restore the watcher recorded after the audit the run acts on, or after the
run's prepare, fails the commit and leaves the hardening unrecorded; RB-05 then fails the guest at that epoch.
The module as a process against a real libvirtd: tests/faults/test_watcher_faults.py."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import watcher as W
from ansible_collections.vmguard.hardening.plugins.modules import ledger as lmod
from tests.unit.rules import evidence as E

U = E.domain("web1")["uuid"]
MAC = "52:54:00:00:01:b8"


class Failed(Exception):
    pass


class Module(object):
    """What update() uses of AnsibleModule: params (the argument spec's defaults), check_mode, _diff, fail_json."""
    check_mode, _diff = False, False

    def __init__(self, **params):
        self.params = dict(dict(retire_fingerprints=[], epoch=None, record=None, hardened=False, event=None,
                                detail=None, seen_reverts=None), **params)

    def fail_json(self, **kw):
        raise Failed(kw)


@pytest.fixture
def clock(monkeypatch):
    now = [E.NOW]
    monkeypatch.setattr(lmod.time, "time", lambda: now[0])
    return now


def call(d, **params):
    """One module run under the record's lock, saved as the module saves it; its result."""
    with ledger.locked(d, U):
        return lmod.update(Module(uuid=U, dir=d, **params), ledger.path_for(d, U))


def watcher_revert(d, now):
    """The watcher's record of a revert of the running domain (the service link taken down)."""
    res = {"live": [MAC], "config": [MAC], "chosen": {"live": [MAC], "config": [MAC]}}
    with ledger.locked(d, U):
        new, unused = W.ledger_update(ledger.load(d, U), now, "revert", "STARTED/FROM_SNAPSHOT", res, False, True)
        ledger.save(d, new)


def rb05(d, guest_epoch):
    fleet = E.fleet([E.domain("web1", ledger=ledger.read_record(d, U))],
                    {"web1": E.guest("web1", facts=E.guest_facts(1, epoch=guest_epoch))})
    return E.by_subject(E.run("RB-05", fleet, now=E.NOW + 400))["web1"]


def audited_record(d):
    """The ledger as the audit read it at E.NOW: epoch 3, no revert event (the plan's seen_reverts: [])."""
    ledger.save(d, dict(ledger.empty(U), **E.ledger(epoch=3)))
    return []


def test_a_revert_between_the_audit_and_the_prepare_fails_the_commit(tmp_path, clock):
    d = str(tmp_path)
    seen = audited_record(d)
    clock[0] = E.NOW + 60  # the revert lands while the hypervisor role runs, before the guest role's prepare
    watcher_revert(d, clock[0])
    clock[0] = E.NOW + 300
    prepared = call(d, epoch="prepare")
    assert prepared["pending_epoch"] == 4  # the guest's epoch file gets 4: on the reverted guest
    clock[0] = E.NOW + 302
    with pytest.raises(Failed) as e:
        call(d, epoch="commit", hardened=True, seen_reverts=seen)
    msg = e.value.args[0]["msg"]
    assert "epoch 4 committed but the hardening is not recorded" in msg and "after the audit" in msg, msg
    rec = ledger.read_record(d, U)
    assert rec["epoch"] == 4 and rec["last_hardened"] == E.ledger()["last_hardened"]
    assert rec["events"][-1]["event"] == "revert_during_run" and rec["events"][-1]["detail"]["epoch"] == 4
    # The next audit: the guest holds epoch 4, written onto the reverted guest - RB-05 must not pass it.
    f = rb05(d, 4)
    assert f["status"] == "fail" and "reverted" in f["message"], f


def test_reverts_the_audit_saw_do_not_fail_the_commit(tmp_path, clock):
    d = str(tmp_path)
    watcher_revert(d, E.NOW - 3600)  # reverted an hour before the audit: the audit saw it
    seen = [e["time"] for e in ledger.read_record(d, U)["events"] if e["event"] == "revert"]
    call(d, epoch="prepare")
    clock[0] = E.NOW + 30
    done = call(d, epoch="commit", hardened=True, seen_reverts=seen)
    assert done["epoch"] == 1 and any(c.startswith("hardened at") for c in done["changes"]), done
    assert rb05(d, 1)["status"] == "pass"


def test_without_seen_reverts_only_reverts_since_the_prepare_count(tmp_path, clock):
    d = str(tmp_path)
    audited_record(d)
    watcher_revert(d, E.NOW + 60)
    clock[0] = E.NOW + 300
    call(d, epoch="prepare")
    clock[0] = E.NOW + 302
    assert call(d, epoch="commit", hardened=True)["epoch"] == 4  # the caller vouches for nothing before its prepare
    clock[0] = E.NOW + 400
    call(d, epoch="prepare")
    watcher_revert(d, E.NOW + 401)
    clock[0] = E.NOW + 402
    with pytest.raises(Failed, match="after the audit this run acted on or after it prepared the epoch"):
        call(d, epoch="commit", hardened=True)


def test_unseen_reverts_is_a_multiset_difference():
    rec = ledger.empty(U)
    for t, ev in ((E.NOW, "revert"), (E.NOW, "quarantine"), (E.NOW + 9, "restore"), (E.NOW + 9, "restore")):
        ledger.add_event(rec, t, ev)
    times = [e["time"] for e in rec["events"]]
    assert ledger.unseen_reverts(rec, [times[0], times[2], times[3]]) == []
    assert [e["time"] for e in ledger.unseen_reverts(rec, [times[0], times[2]])] == [times[3]]  # two in one second
    assert [e["event"] for e in ledger.unseen_reverts(rec, [])] == ["revert", "restore", "restore"]
