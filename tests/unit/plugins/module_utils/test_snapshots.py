"""The snapshot pruning logic of the snapshot_policy module (remediation/snapshots.py) on snapshot XML as
libvirt writes it; deletion itself runs on libvirt in tests/integration/test_snapshot_policy.py."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import snapshots

NOW = 1795000000

INTERNAL = """<domainsnapshot>
  <name>{name}</name><state>{state}</state>{parent}<creationTime>{ct}</creationTime>
  <memory snapshot='{memory}'/>
  <disks><disk name='vda' snapshot='internal'/></disks>
  <domain type='kvm'><name>web1</name><uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid></domain>
</domainsnapshot>"""

EXTERNAL_DISK = """<domainsnapshot>
  <name>ext</name><state>disk-snapshot</state><creationTime>{ct}</creationTime>
  <memory snapshot='no'/>
  <disks><disk name='vda' snapshot='external' type='file'><source file='/var/lib/libvirt/images/web1.ext'/></disk>
         <disk name='vdb' snapshot='no'/></disks>
</domainsnapshot>"""

EXTERNAL_MEMORY = """<domainsnapshot>
  <name>extmem</name><state>running</state><creationTime>{ct}</creationTime>
  <memory snapshot='external' file='/var/lib/libvirt/qemu/snapshot/web1/extmem.mem'/>
  <disks><disk name='vda' snapshot='no'/></disks>
</domainsnapshot>"""


def snap_xml(name, hours_ago, parent=None, memory="no"):
    return INTERNAL.format(name=name, state="running" if memory != "no" else "shutoff", ct=NOW - hours_ago * 3600,
                           memory=memory, parent="<parent><name>%s</name></parent>" % parent if parent else "")


def view(*items):
    """A run-time view as snapshot_view builds it (without libvirt handles)."""
    out = []
    for xml, current in items:
        s = domxml.parse_snapshot(xml)
        s.update(current=current, external=snapshots.is_external(xml))
        out.append(s)
    return out


def test_external_is_read_from_memory_or_any_disk():
    assert snapshots.is_external(EXTERNAL_DISK.format(ct=NOW)) is True
    assert snapshots.is_external(EXTERNAL_MEMORY.format(ct=NOW)) is True
    assert snapshots.is_external(snap_xml("a", 1, memory="internal")) is False
    with pytest.raises(domxml.DomainXMLError, match="malformed snapshot XML"):
        snapshots.is_external("<domainsnapshot><name>x</name>")


def test_external_snapshots_are_refused_before_libvirt_9_7():
    v = view((snap_xml("old", 200), False), (EXTERNAL_DISK.format(ct=NOW - 300 * 3600), False), (snap_xml("now", 1), True))
    flagged = snapshots.flag_by_rules(v, NOW, max_age_hours=72)
    assert sorted(flagged) == ["ext", "old"]
    delete, refused = snapshots.decide("web1", v, flagged, 9000000)
    assert delete == {"old": "RB-02 older than 72h (200h)"}
    assert refused == {"ext": "cannot prune an external snapshot with this libvirt (9.0.0; needs 9.7.0): "
                              "it would delete the metadata only"}
    delete, refused = snapshots.decide("web1", v, flagged, 9007000)
    assert sorted(delete) == ["ext", "old"] and refused == {}


def test_rules_flag_age_epoch_and_memory_like_the_audit():
    v = view((snap_xml("a", 100), False), (snap_xml("b", 50, "a", memory="internal"), False), (snap_xml("c", 1, "b"), True),
             (EXTERNAL_MEMORY.format(ct=NOW - 3600), False))
    assert snapshots.flag_by_rules(v, NOW) == {}
    assert snapshots.flag_by_rules(v, NOW, max_age_hours=72) == {"a": ["RB-02 older than 72h (100h)"]}
    assert snapshots.flag_by_rules(v, NOW, epoch_time=NOW - 60 * 3600, epoch=4) == {
        "a": ["RB-04 older than security epoch 4"]}
    assert snapshots.flag_by_rules(v, NOW, allow_memory=False) == {
        "b": ["RB-13 memory-state snapshot"], "extmem": ["RB-13 memory-state snapshot"]}
    assert snapshots.flag_by_rules(v, NOW, allow_memory=True) == {}
    both = snapshots.flag_by_rules(v, NOW, max_age_hours=72, epoch_time=NOW - 60 * 3600, epoch=4)
    assert both == {"a": ["RB-02 older than 72h (100h)", "RB-04 older than security epoch 4"]}
    no_time = view(("<domainsnapshot><name>x</name><state>shutoff</state></domainsnapshot>", False))
    assert snapshots.flag_by_rules(no_time, NOW, max_age_hours=0, epoch_time=NOW) == {}  # not judged by age


def taken_at(name, ct):
    return INTERNAL.format(name=name, state="shutoff", ct=int(ct), memory="no", parent="")


def test_a_snapshot_from_the_future_is_not_judged_by_age():
    v = view((snap_xml("ahead", -365 * 24), False), (taken_at("skewed", NOW + 3), False), (snap_xml("old", 100), False))
    assert snapshots.age_unknown(v, NOW) == {
        "ahead": "creation time 2027-11-18T11:06:40Z is 8760h in the future (more than 5s of clock skew): its age "
                 "cannot be judged (RB-02, RB-04)"}
    assert snapshots.flag_by_rules(v, NOW, max_age_hours=72, epoch_time=NOW - 3600, epoch=3) == {
        "old": ["RB-02 older than 72h (100h)", "RB-04 older than security epoch 3"]}
    no_time = view(("<domainsnapshot><name>x</name><state>shutoff</state></domainsnapshot>", False))
    assert snapshots.age_unknown(no_time, NOW) == {"x": "no creation time: its age cannot be judged (RB-02, RB-04)"}


def test_a_plan_entry_is_carried_out_only_on_the_snapshots_the_audit_judged():
    v = view((taken_at("nightly", NOW - 600), False), (snap_xml("old", 100), False))
    entry = {"delete": ["nightly", "old"], "uuid": "0B7D2C61-3A8E-4F7E-9D1A-5C2B9E8F7A10",
             "created": {"nightly": NOW - 100 * 3600, "old": NOW - 100 * 3600}}
    assert snapshots.not_as_planned(entry, "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10", v) == {
        "nightly": "not deleted: re-created since the audit (created 2026-11-18T10:56:40Z; the audit judged the one "
                   "created 2026-11-14T07:06:40Z)"}
    other = snapshots.not_as_planned(entry, "11111111-2222-4333-8444-555555555555", v)
    assert sorted(other) == ["nightly", "old"] and "replaced since the audit" in other["old"]
    assert snapshots.not_as_planned({"delete": ["nightly"]}, "any", v) == {}  # names only: not compared


def test_current_pinned_and_parents_of_kept_children_stay():
    v = view((snap_xml("base", 300), False), (snap_xml("mid", 200, "base"), False), (snap_xml("leaf", 150, "mid"), False),
             (snap_xml("cur", 100, "base"), True))
    flagged = snapshots.flag_by_rules(v, NOW, max_age_hours=72)
    assert sorted(flagged) == ["base", "cur", "leaf", "mid"]
    delete, refused = snapshots.decide("web1", v, flagged, 9000000)
    assert sorted(delete) == ["leaf", "mid"]
    assert refused == {"base": "has child snapshot(s) that stay: cur", "cur": "the current snapshot"}
    delete, refused = snapshots.decide("web1", v, flagged, 9000000, pinned=["web1/le*"])
    assert delete == {} and refused["leaf"] == "pinned (web1/le*)" and refused["mid"] == "has child snapshot(s) that stay: leaf"
    # A plan naming a snapshot that is gone, or that became current since the audit.
    planned = snapshots.flag_planned(["leaf", "gone", "cur"], {"leaf": "RB-02 older than 72h (150h)"})
    delete, refused = snapshots.decide("web1", v, planned, 9000000)
    assert delete == {"leaf": "RB-02 older than 72h (150h)"}
    assert refused == {"gone": "no such snapshot", "cur": "the current snapshot"}
    assert snapshots.flag_planned(["x"], None) == {"x": ["planned"]}


def test_leaves_go_before_their_parents():
    v = view((snap_xml("a", 5), False), (snap_xml("b", 4, "a"), False), (snap_xml("c", 3, "b"), False),
             (snap_xml("d", 2, "a"), False), (snap_xml("z", 1), False))
    assert snapshots.leaves_first(["a", "b", "c", "d", "z"], v) == ["c", "b", "d", "a", "z"]
    assert snapshots.leaves_first([], v) == []


def test_version_text():
    assert snapshots.version_text(9000000) == "9.0.0" and snapshots.version_text(10002001) == "10.2.1"
