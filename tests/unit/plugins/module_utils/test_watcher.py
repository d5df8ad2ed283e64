"""The revert watcher's pure parts: the decision table (event, detail, active) -> action, its
configuration, the ledger update of a quarantine; its lock and heartbeat as hostscan (RB-11's
evidence) reads them; RB-11 on a watcher that is not connected. The daemon against a real libvirtd:
tests/integration/test_watcher.py."""

import json
import os
import subprocess
import sys
import threading

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import watcher as W
from tests.unit.plugins.module_utils.test_quarantine import BRIDGE_SVC_IF, HOSTDEV_IF, FakeDom, Refused
from tests.unit.rules import evidence as E
from tests.unit.rules.evidence import domain_xml

U = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"
NOW = 1795000000
MAC = "52:54:00:00:01:b8"


# --- decision table --------------------------------------------------------------------------------------

@pytest.mark.parametrize("event, detail, active, expected", [
    (W.STARTED, 3, True, (W.LIVE, "revert")),      # STARTED_FROM_SNAPSHOT
    (W.RESUMED, 2, True, (W.LIVE, "revert")),      # RESUMED_FROM_SNAPSHOT
    (W.SUSPENDED, 5, True, (W.LIVE, "revert")),    # reverted to a paused snapshot
    (W.STARTED, 2, True, (W.LIVE, "restore")),     # STARTED_RESTORED
    (W.SUSPENDED, 4, True, (W.LIVE, "restore")),   # restored paused
    (W.STOPPED, 6, False, (W.CONFIG, "revert")),   # reverted to shut-off
    (W.DEFINED, 3, False, (W.CONFIG, "revert")),   # a shut-off domain reverted
    # within the revert of a running domain: the resume event that follows is the one acted on
    (W.STOPPED, 6, True, (W.IGNORE, "revert")),
    (W.DEFINED, 3, True, (W.IGNORE, "revert")),
    (W.STARTED, 0, True, (W.PENDING_START, None)),  # STARTED_BOOTED: a pending quarantine takes effect
    (W.STARTED, 0, False, (W.IGNORE, None)),
    (W.RESUMED, 0, True, (W.IGNORE, None)),        # a plain resume
    (W.STOPPED, 1, False, (W.IGNORE, None)),       # destroyed
    (W.DEFINED, 1, False, (W.IGNORE, None)),       # an ordinary redefinition
    (W.SUSPENDED, 0, True, (W.IGNORE, None)),
])
def test_decision_table(event, detail, active, expected):
    assert W.decide(event, detail, active) == expected


def test_event_numbers_are_libvirts():
    libvirt = pytest.importorskip("libvirt")
    for name, value in (("STARTED", W.STARTED), ("RESUMED", W.RESUMED), ("SUSPENDED", W.SUSPENDED),
                        ("STOPPED", W.STOPPED), ("DEFINED", W.DEFINED)):
        assert getattr(libvirt, "VIR_DOMAIN_EVENT_" + name) == value, name
    for event, details in W.DETAIL_NAMES.items():
        for detail, name in details.items():
            const = "VIR_DOMAIN_EVENT_%s_%s" % (W.EVENT_NAMES[event], name)
            if hasattr(libvirt, const):
                assert getattr(libvirt, const) == detail, const
    assert libvirt.VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT == 3 and libvirt.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT == 6
    assert libvirt.VIR_DOMAIN_AFFECT_LIVE == W.qr.AFFECT_LIVE and libvirt.VIR_DOMAIN_AFFECT_CONFIG == W.qr.AFFECT_CONFIG
    assert libvirt.VIR_DOMAIN_XML_INACTIVE == W.qr.XML_INACTIVE
    assert W.event_label(W.STARTED, 3) == "STARTED/FROM_SNAPSHOT" and W.event_label(9, 9) == "9/9"


# --- configuration ---------------------------------------------------------------------------------------

def test_config_defaults_and_overrides():
    cfg = W.parse_config({"mgmt_networks": ["mgmt"], "heartbeat_seconds": 2})
    assert cfg["uri"] == "qemu:///system" and cfg["lock"] == hostscan.WATCHER_LOCK
    assert cfg["heartbeat"] == hostscan.WATCHER_HEARTBEAT and cfg["ledger_dir"] == "/var/lib/vmguard/ledger"
    assert cfg["mgmt_networks"] == ["mgmt"] and cfg["heartbeat_seconds"] == 2 and cfg["domains"] == ["*"]


def test_config_errors_name_every_bad_key(tmp_path):
    with pytest.raises(W.ConfigError) as e:
        W.parse_config({"mgmt_networks": "mgmt", "heartbeat_seconds": True, "lock": "run/x", "ledgerdir": "/x"},
                       "/etc/vmguard/watcher.json")
    msg = str(e.value)
    for part in ("/etc/vmguard/watcher.json: unknown key ledgerdir", "mgmt_networks is \"mgmt\"",
                 "heartbeat_seconds is true", "lock is \"run/x\", must be an absolute path"):
        assert part in msg, msg
    bad = tmp_path / "w.json"
    bad.write_text("{nope")
    with pytest.raises(W.ConfigError, match="w.json: not valid JSON"):
        W.load_config(str(bad))
    with pytest.raises(W.ConfigError, match="cannot read the configuration"):
        W.load_config(str(tmp_path / "missing.json"))


def test_a_bad_config_stops_the_command_with_its_reason(tmp_path):
    bad = tmp_path / "w.json"
    bad.write_text('{"uri": 5}')
    p = subprocess.run([sys.executable, "-m", W.MODULE, "--config", str(bad)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=dict(os.environ, PYTHONPATH=":".join(
                           p for p in sys.path if p)), check=False)
    assert p.returncode == 2 and "uri is 5, must be a libvirt URI" in p.stderr


def test_domain_name_patterns():
    assert W.wanted("vmg-rw-3", ["vmg-rw-*"]) and not W.wanted("web1", ["vmg-rw-*"]) and W.wanted("web1", ["*"])


# --- the ledger update of a quarantine --------------------------------------------------------------------

def result(live=(), config=(), chosen_live=(MAC,), chosen_config=(MAC,)):
    return {"live": list(live), "config": list(config),
            "chosen": {"live": list(chosen_live), "config": list(chosen_config)}}


def test_first_event_of_a_revert_records_revert_and_quarantine():
    rec, ch = W.ledger_update(ledger.empty(U), NOW, "revert", "STARTED/FROM_SNAPSHOT", result([MAC], [MAC]),
                              False, True, snapshot="before-upgrade")
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine"]
    assert rec["events"][0]["detail"] == {"libvirt_event": "STARTED", "libvirt_detail": "FROM_SNAPSHOT",
                                          "snapshot": "before-upgrade"}
    assert rec["events"][1]["detail"] == {"interfaces": [MAC], "live": True, "config": True}
    assert rec["quarantine"]["interfaces"] == [MAC] and rec["quarantine"]["pending_start"] is False
    assert rec["quarantine"]["reason"] == "revert (STARTED/FROM_SNAPSHOT)"
    # the RESUMED/FROM_SNAPSHOT of the same revert finds nothing to do: nothing recorded
    again, ch = W.ledger_update(rec, NOW + 1, "revert", "RESUMED/FROM_SNAPSHOT", result(), False, False)
    assert ch == [] and again == rec


def test_revert_to_shut_off_is_pending_until_the_start():
    rec, changes = W.ledger_update(ledger.empty(U), NOW, "revert", "STOPPED/FROM_SNAPSHOT",
                                   result(config=[MAC], chosen_live=()), True, True)
    assert rec["quarantine"]["pending_start"] is True
    assert rec["events"][-1]["detail"] == {"interfaces": [MAC], "live": False, "config": True}
    started, ch = W.ledger_update(rec, NOW + 60, "revert", "STARTED/BOOTED", result(chosen_config=()), False, False)
    assert started["quarantine"]["pending_start"] is False and started["quarantine"]["since"] == \
        rec["quarantine"]["since"]
    assert [e["event"] for e in started["events"]] == ["revert", "quarantine", "quarantine"] and ch


def test_restore_is_recorded_as_a_restore_and_interfaces_accumulate():
    other = "52:54:00:aa:00:03"
    rec, changes = W.ledger_update(ledger.empty(U), NOW, "revert", "STARTED/FROM_SNAPSHOT", result([MAC], [MAC]),
                                   False, True)
    rec, changes = W.ledger_update(rec, NOW + 99, "restore", "STARTED/RESTORED",
                                   result([other], [], chosen_live=[other], chosen_config=[]), False, True)
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine", "restore", "quarantine"]
    assert rec["quarantine"]["interfaces"] == sorted([MAC, other])
    assert ledger.validate(rec, U) is None


def test_a_new_revert_starts_a_new_quarantine():
    """A second revert (a new group) while the first quarantine is held: its since and reason are the new revert's,
    so a lift decided on the first (quarantine module option since) refuses it."""
    rec, unused = W.ledger_update(ledger.empty(U), NOW, "revert", "STARTED/FROM_SNAPSHOT", result([MAC], [MAC]),
                                  False, True, snapshot="s1")
    again, unused = W.ledger_update(rec, NOW + 600, "restore", "STARTED/RESTORED", result([MAC], [MAC]), False, True)
    assert again["quarantine"]["since"] == iso(NOW + 600) != rec["quarantine"]["since"]
    assert again["quarantine"]["reason"] == "restore (STARTED/RESTORED)"


# --- lock and heartbeat as RB-11's evidence reads them ----------------------------------------------------

def test_lock_is_exclusive_and_seen_by_hostscan(tmp_path):
    lock, hb = str(tmp_path / "run" / "watcher.lock"), str(tmp_path / "run" / "watcher.heartbeat")
    fd = W.acquire_lock(lock)
    try:
        assert W.lock_is_held(lock) and W.lock_pid(lock) == os.getpid()
        # another process cannot take it
        code = "import sys; from %s import acquire_lock, AlreadyRunning\ntry:\n    acquire_lock(sys.argv[1])\n" \
               "except AlreadyRunning as e:\n    print(e.pid)\n" % W.MODULE
        out = subprocess.run([sys.executable, "-c", code, lock], stdout=subprocess.PIPE, universal_newlines=True,
                             env=dict(os.environ, PYTHONPATH=":".join(p for p in sys.path if p)), check=False).stdout
        assert out.strip() == str(os.getpid())
        W.write_heartbeat(hb, True, "qemu:///system")
        w = hostscan.watcher(lock, hb)
        assert w["lock_held"] is True and w["holder_pid"] == os.getpid() == w["heartbeat_pid"]
        assert w["connected"] is True and w["uri"] == "qemu:///system" and w["heartbeat_age_seconds"] < 5
        assert oct(os.stat(hb).st_mode & 0o777) == "0o644"
        W.write_heartbeat(hb, False, "qemu:///system")
        assert hostscan.watcher(lock, hb)["connected"] is False
    finally:
        os.close(fd)
    assert not W.lock_is_held(lock) and hostscan.watcher(lock, hb)["lock_held"] is False


def test_heartbeat_says_what_the_watcher_watches(tmp_path):
    hb = str(tmp_path / "hb")
    w = W.Watcher(W.parse_config({"heartbeat": hb, "uri": "qemu:///system", "mgmt_networks": ["oob", "mgmt"]}), None)
    w.connected = True
    w.beat()
    body = json.loads(open(hb).read())
    assert (body["uri"], body["mgmt_networks"], body["connected"]) == ("qemu:///system", ["mgmt", "oob"], True)
    seen = hostscan.watcher(str(tmp_path / "lock"), hb)
    assert (seen["uri"], seen["mgmt_networks"]) == ("qemu:///system", ["mgmt", "oob"])
    with open(hb, "w") as f:  # a watcher from before 0.2.4
        json.dump({"pid": 7, "time": NOW, "connected": True, "uri": "qemu:///system"}, f)
    assert hostscan.watcher(str(tmp_path / "lock"), hb)["mgmt_networks"] is None


def test_heartbeat_without_connected_says_nothing_about_it(tmp_path):
    hb = tmp_path / "hb"
    hb.write_text(json.dumps({"pid": 7, "time": NOW, "connected": "yes"}))
    assert hostscan.heartbeat_link(str(hb)) == (None, None)
    assert hostscan.heartbeat_link(str(tmp_path / "missing")) == (None, None)


def rb11(**watcher):
    (f,) = E.run("RB-11", E.fleet(host_ev=E.host(watcher=E.watcher(**watcher))))
    return f


def test_rb11_fails_when_the_watcher_is_not_connected_to_libvirt():
    f = rb11(connected=False, uri="qemu:///system")
    assert f["status"] == "fail" and "watcher running but not connected to libvirt (qemu:///system)" in f["message"]
    assert f["evidence"]["connected"] is False


def test_rb11_passes_when_connected():
    f = rb11(connected=True, uri="qemu:///system")
    assert f["status"] == "pass" and "connected to qemu:///system" in f["message"]


# --- the daemon's threads ---------------------------------------------------------------------------------

class EndOfTest(BaseException):
    """Ends the event loop thread of a test (event_loop retries every Exception, by design)."""


class FailingOnceLoop(object):
    """libvirt-python's virEventRunDefaultImpl: it raises libvirtError where the C call returns -1."""

    class libvirtError(Exception):
        def get_error_message(self):
            return str(self)

    def __init__(self):
        self.calls = 0

    def virEventRunDefaultImpl(self):
        self.calls += 1
        if self.calls == 1:
            raise self.libvirtError("virEventRunDefaultImpl() failed")
        if self.calls == 3:
            raise EndOfTest()
        return 0


def test_a_failed_event_loop_iteration_is_retried_not_the_end_of_the_thread(capsys):
    lv = FailingOnceLoop()
    w = W.Watcher(W.parse_config({}), lv)

    def run():
        try:
            w.event_loop()
        except EndOfTest:
            pass
    t = threading.Thread(target=run)
    t.start()
    t.join(5)
    assert not t.is_alive()  # no thread is left behind (forked.usable needs this process single-threaded)
    assert lv.calls == 3  # the loop went on after the failed iteration
    assert "error=event_loop retry_in=0.1s virEventRunDefaultImpl() failed" in capsys.readouterr().out


def test_the_heartbeat_stops_when_a_vital_thread_has_ended(tmp_path, capsys):
    hb = str(tmp_path / "hb")
    w = W.Watcher(W.parse_config({"heartbeat": hb}), FailingOnceLoop())
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join()
    alive = threading.Event()
    live = threading.Thread(target=alive.wait)
    live.daemon = True
    live.start()
    w.threads = {"event_loop": live, "worker": live}
    w.beat()
    assert os.path.exists(hb)
    os.unlink(hb)
    w.threads["event_loop"] = ended  # the event loop died: no event will be delivered any more
    w.beat()
    alive.set()
    live.join(5)
    assert not os.path.exists(hb)  # RB-11 sees the heartbeat age, and the lock go when the watcher exits
    assert w.failed == "thread(s) event_loop ended" and w.stop.is_set()
    assert "error=thread(s) event_loop ended; heartbeat stopped" in capsys.readouterr().out


# --- a quarantine libvirt refuses in part -----------------------------------------------------------------

class LV(object):
    libvirtError = Refused


def revert(tmp_path, dom, capsys):
    """Deliver STARTED/FROM_SNAPSHOT for ``dom`` to a watcher and return (ledger record, its log)."""
    led = str(tmp_path / "ledger")
    os.makedirs(led)
    w = W.Watcher(W.parse_config({"ledger_dir": led, "mgmt_networks": ["mgmt"]}), LV)
    w.events.put((dom, W.STARTED, 3, NOW))
    w.events.put(None)
    w.worker()
    return ledger.read_record(led, U), capsys.readouterr().out


def test_a_hostdev_interface_does_not_cost_the_quarantine_nor_the_revert_record(tmp_path, capsys):
    # libvirt refuses any change to a hostdev (SR-IOV) interface: it is skipped and named, the rest goes down.
    dom = FakeDom(domain_xml("web1", uuid=U, mac=MAC, extra=HOSTDEV_IF))
    rec, out = revert(tmp_path, dom, capsys)
    assert dom.links("live")[MAC] == dom.links("config")[MAC] == "down"
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine"] and ledger.reverts_since(rec, iso(NOW))
    q = rec["quarantine"]
    assert q["interfaces"] == [MAC] and q["pending_start"] is False
    assert [(e["mac"], e["type"], e["scope"]) for e in q["not_down"]] == [
        ("52:54:00:aa:00:09", "hostdev", "config"), ("52:54:00:aa:00:09", "hostdev", "live")]
    assert rec["events"][-1]["detail"]["not_down"] == q["not_down"] and ledger.validate(rec, U) is None
    assert "error=not_down mac=52:54:00:aa:00:09 type=hostdev scope=live" in out and "ledger=saved" in out


def test_an_update_libvirt_refuses_is_named_and_the_others_still_go_down(tmp_path, capsys):
    svc2 = "52:54:00:aa:00:03"
    dom = FakeDom(domain_xml("web1", uuid=U, mac=MAC, extra=BRIDGE_SVC_IF), refuse={MAC})
    rec, out = revert(tmp_path, dom, capsys)
    assert dom.links("live")[svc2] == dom.links("config")[svc2] == "down" and dom.links("live")[MAC] == "up"
    assert [e["event"] for e in rec["events"]] == ["revert", "quarantine"]
    # the quarantine holds only what it took down (the lift brings up that and nothing else); the refused one is named
    assert rec["quarantine"]["interfaces"] == [svc2] and rec["quarantine"]["links"] == {svc2: ["live", "config"]}
    assert [(e["mac"], e["scope"]) for e in rec["quarantine"]["not_down"]] == [(MAC, "config"), (MAC, "live")]
    assert "cannot acquire state change lock" in rec["quarantine"]["not_down"][0]["reason"]
    assert "error=not_down mac=%s" % MAC in out


def test_not_down_follows_the_definitions_acted_on():
    q = ledger.quarantine_state(NOW, "revert", [MAC], False)
    q["not_down"] = [{"mac": MAC, "type": "network", "scope": "live", "reason": "x"},
                     {"mac": MAC, "type": "network", "scope": "config", "reason": "x"}]
    rec = dict(ledger.empty(U), quarantine=q)
    # a later live-only action (the start of a pending quarantine) took MAC down live: only config stays named
    live_ok = dict(result([MAC], [], chosen_config=()), scopes=["live"], skipped=[], failed=[])
    update = W.ledger_update(rec, NOW + 9, "revert", "STARTED/BOOTED", live_ok, False, False)
    new, changes = W.naming_not_down(rec, update, live_ok)
    assert [e["scope"] for e in new["quarantine"]["not_down"]] == ["config"] and "quarantine: not down" in changes[-1]
    both_ok = dict(result([], [MAC]), scopes=["live", "config"], skipped=[], failed=[])
    update = W.ledger_update(new, NOW + 19, "revert", "STARTED/FROM_SNAPSHOT", both_ok, False, True)
    new, changes = W.naming_not_down(new, update, both_ok)
    assert "not_down" not in new["quarantine"] and changes[-1] == "quarantine: not down none"
