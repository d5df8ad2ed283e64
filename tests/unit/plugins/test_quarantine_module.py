"""The quarantine module (plugins/modules/quarantine.py) on a stand-in domain and a real ledger directory: which
quarantine a lift may lift (a second revert after the audit is refused), which links it brings up (only those the
quarantine took down), and what a failure part way reports. Against a real libvirtd: tests/integration/test_watcher.py."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import watcher as W
from ansible_collections.vmguard.hardening.plugins.modules import quarantine as qmod
from tests.unit.plugins.fakedom import SVC, U, FakeDom, FakeLibvirt

T0 = 1795000000


class Failed(Exception):
    pass


class Module(object):
    check_mode = False

    def __init__(self, d, **params):
        self.params = dict(dict(state="lifted", since=None, ledger_dir=d, mgmt_networks=["mgmt"], domain="web1"), **params)

    def fail_json(self, **kw):
        raise Failed(kw)


@pytest.fixture(autouse=True)
def fake_libvirt(monkeypatch):
    monkeypatch.setattr(qmod, "libvirt", FakeLibvirt, raising=False)


@pytest.fixture
def clock(monkeypatch):
    """The time the watcher and the module read (time.time, as both call it)."""
    now = [T0]
    monkeypatch.setattr(W.time, "time", lambda: now[0])
    return now


def watcher(tmp_path):
    """The revert watcher as it runs (its handle() of a libvirt lifecycle event), on a ledger directory."""
    cfg = W.parse_config({"ledger_dir": str(tmp_path), "mgmt_networks": ["mgmt"]})
    return W.Watcher(cfg, FakeLibvirt)


def run(d, dom, **params):
    """The module's change() as run() calls it under the record's lock: (result, before, after)."""
    with ledger.locked(d, U):
        return qmod.change(Module(d, **params), dom, U, ledger.path_for(d, U))


def test_a_second_revert_after_the_audit_is_not_lifted(tmp_path, clock):
    """Revert 1 quarantines web1; the audit reads since; harden reconverges. Revert 2 (a later libvirt revert, the
    snapshot's XML bringing the link back up) lands before the lift: the lift with the audit's since refuses it."""
    d, dom, w = str(tmp_path), FakeDom(), watcher(tmp_path)
    w.handle(dom, W.STARTED, 3, T0)  # STARTED_FROM_SNAPSHOT
    audit_since = ledger.read_record(d, U)["quarantine"]["since"]
    assert dom.state == {"live": "down", "config": "down"}
    clock[0] = T0 + 600
    dom.state = {"live": "up", "config": "up"}  # revert 2 restores the snapshot's definition
    w.handle(dom, W.STARTED, 3, clock[0])
    rec = ledger.read_record(d, U)
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine", "revert", "quarantine"]
    assert rec["quarantine"]["since"] == rec["events"][2]["time"] != audit_since
    with pytest.raises(Failed) as e:
        run(d, dom, since=audit_since)
    assert "not lifted" in e.value.args[0]["msg"] and e.value.args[0]["changes"] == []
    assert dom.state == {"live": "down", "config": "down"} and ledger.read_record(d, U)["quarantine"] == rec["quarantine"]
    # The next audit sees the new quarantine: its since lifts it.
    result, _b, after = run(d, dom, since=rec["quarantine"]["since"])
    assert result["changed"] and after["quarantine"] is None and dom.state == {"live": "up", "config": "up"}


def test_a_record_whose_since_an_older_watcher_kept_is_refused_by_its_later_revert(tmp_path):
    d, dom = str(tmp_path), FakeDom(live="down", config="down")
    rec = ledger.empty(U)
    rec, _c = ledger.apply(rec, T0, event="revert")
    q = ledger.quarantine_state(T0, "revert (STARTED/FROM_SNAPSHOT)", [SVC], False)
    rec, _c = ledger.apply(rec, T0, event="quarantine", quarantine=q)
    rec, _c = ledger.apply(rec, T0 + 600, event="revert")  # since kept at T0, as before 0.2.4
    ledger.save(d, rec)
    with pytest.raises(Failed, match="reverted at .*after the quarantine this run acted on started"):
        run(d, dom, since=q["since"])
    assert dom.state == {"live": "down", "config": "down"}


def test_a_link_that_was_down_before_the_quarantine_stays_down(tmp_path, clock):
    """The service link was down already (an operator's, or the reverted-to snapshot's), live and persistent: the
    quarantine changed nothing, so the lift brings nothing up."""
    d, dom = str(tmp_path), FakeDom(live="down", config="down")
    watcher(tmp_path).handle(dom, W.STARTED, 3, T0)
    q = ledger.read_record(d, U)["quarantine"]
    assert (q["links"], q["interfaces"]) == ({}, [])
    result, _b, after = run(d, dom, since=q["since"])
    assert dom.state == {"live": "down", "config": "down"} and dom.updates == []
    assert after["quarantine"] is None and not any(c.startswith("link up") for c in result["changes"])


def test_only_the_definitions_the_quarantine_changed_come_up(tmp_path, clock):
    d, dom = str(tmp_path), FakeDom(live="up", config="down")  # persistent link down by an operator
    watcher(tmp_path).handle(dom, W.STARTED, 3, T0)
    q = ledger.read_record(d, U)["quarantine"]
    assert q["links"] == {SVC: ["live"]} and dom.state == {"live": "down", "config": "down"}
    result, _b, _a = run(d, dom, since=q["since"])
    assert dom.state == {"live": "up", "config": "down"} and result["changes"][0] == "link up live on %s" % SVC
    assert result["interfaces"][SVC] == {"before": {"live": "down", "config": "down"}, "after": {"live": "up", "config": "down"}}


def test_a_domain_reverted_to_shut_off_and_started_gets_both_links_back(tmp_path, clock):
    d, dom, w = str(tmp_path), FakeDom(active=False), watcher(tmp_path)
    w.handle(dom, W.STOPPED, 6, T0)  # STOPPED_FROM_SNAPSHOT: the persistent link goes down, pending start
    assert ledger.read_record(d, U)["quarantine"]["links"] == {SVC: ["config"]}
    clock[0] = T0 + 60
    dom.active, dom.state["live"] = True, dom.state["config"]  # started: the live definition is the persistent one
    w.handle(dom, W.STARTED, 0, clock[0])  # STARTED_BOOTED
    q = ledger.read_record(d, U)["quarantine"]
    assert q["links"] == {SVC: ["live", "config"]} and q["pending_start"] is False
    run(d, dom, since=q["since"])
    assert dom.state == {"live": "up", "config": "up"}


def test_a_quarantine_recorded_before_links_lifts_its_interfaces_in_both_definitions(tmp_path):
    d, dom = str(tmp_path), FakeDom(live="down", config="down")
    q = ledger.quarantine_state(T0, "revert (STARTED/FROM_SNAPSHOT)", [SVC], False)
    assert "links" not in q
    rec, _c = ledger.apply(ledger.empty(U), T0, event="quarantine", quarantine=q)
    ledger.save(d, rec)
    run(d, dom, since=q["since"])
    assert dom.state == {"live": "up", "config": "up"}


def test_a_lift_that_fails_part_way_reports_what_it_changed(tmp_path, clock):
    d, dom = str(tmp_path), FakeDom()
    watcher(tmp_path).handle(dom, W.STARTED, 3, T0)
    q = ledger.read_record(d, U)["quarantine"]
    dom.fail_config = True
    with pytest.raises(Failed) as e:
        run(d, dom, since=q["since"])
    out = e.value.args[0]
    assert out["changed"] is True and out["changes"] == ["link up live on %s" % SVC], out
    assert "persistent link of %s: persistent update failed" % SVC in out["msg"] and "keeps the quarantine" in out["msg"]
    assert dom.state == {"live": "up", "config": "down"} and ledger.read_record(d, U)["quarantine"] == q
    dom.fail_config = False  # the next lift finishes the job
    result, _b, after = run(d, dom, since=q["since"])
    assert result["changes"][0] == "link up config on %s" % SVC and after["quarantine"] is None


def test_a_quarantine_that_fails_part_way_records_the_links_it_took_down(tmp_path):
    d, dom = str(tmp_path), FakeDom(fail_config=True)
    with pytest.raises(Failed) as e:
        run(d, dom, state="present")
    out = e.value.args[0]
    assert out["changed"] is True and out["changes"][0] == "link down live on %s" % SVC, out
    q = ledger.read_record(d, U)["quarantine"]
    assert q["links"] == {SVC: ["live"]} and out["quarantine"] == q and dom.state == {"live": "down", "config": "up"}
