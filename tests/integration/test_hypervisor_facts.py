"""hypervisor_facts against real libvirt (the test driver, no daemon): faults and evidence."""

import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

from ansible_collections.vmguard.hardening.plugins.modules import hypervisor_facts as hf  # noqa: E402

DOMAIN = """<domain type='test'><name>{name}</name><memory>65536</memory>
<os><type>hvm</type></os><genid/>
<devices><graphics type='vnc' listen='0.0.0.0' passwd='hunter2'/></devices></domain>"""


@pytest.fixture
def conn():
    c = libvirt.open("test:///default")
    yield c
    c.close()


def test_domain_that_vanishes_mid_run_is_reported_not_fatal(conn):
    dom = conn.defineXML(DOMAIN.format(name="short-lived"))
    dom.undefine()  # gone between listing and reading
    d = hf.collect_domain(dom, "/nonexistent-ledger")
    assert d["name"] == "short-lived"
    assert "vanished" in d["error"]


def test_live_domain_fields_and_no_secret(conn, tmp_path):
    conn.defineXML(DOMAIN.format(name="web9"))
    dom = conn.lookupByName("web9")
    dom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    ledger = tmp_path / ("%s.json" % dom.UUIDString())
    ledger.write_text('{"epoch": 4, "last_hardened": "2026-11-01T00:00:00Z"}')
    d = hf.collect_domain(dom, str(tmp_path))
    assert d["error"] is None and d["genid"] is True and d["state"] == "shutoff"
    assert d["graphics"][0]["passwd_set"] is True and "hunter2" not in repr(d)
    assert [s["name"] for s in d["snapshots"]] == ["s1"] and d["snapshots"][0]["creation_time"] > 0
    assert d["ledger"]["epoch"] == 4


def test_corrupt_ledger_is_visible(conn, tmp_path):
    dom = conn.defineXML(DOMAIN.format(name="web8"))
    (tmp_path / ("%s.json" % dom.UUIDString())).write_text("{not json")
    d = hf.collect_domain(dom, str(tmp_path))
    assert "unreadable ledger" in d["ledger"]["error"]
