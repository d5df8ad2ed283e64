"""The snapshot_policy module's run-time checks of a plan entry (work_on) on stand-in libvirt objects: a
snapshot the audit flagged is deleted only while it is the one the audit judged (same creation time, same
domain UUID); the pure choice of snapshots is tested in module_utils/test_snapshots.py, deletion on libvirt in
tests/integration/test_snapshot_policy.py."""

from ansible_collections.vmguard.hardening.plugins.modules import snapshot_policy as sp

NOW = 1795000000
UUID = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"
SNAP = ("<domainsnapshot><name>{name}</name><state>shutoff</state><creationTime>{ct}</creationTime>"
        "<memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>")


class Snap(object):
    def __init__(self, dom, name, ct, current=False):
        self.dom, self.name, self.ct, self.current = dom, name, ct, current

    def getXMLDesc(self, flags):
        return SNAP.format(name=self.name, ct=self.ct)

    def isCurrent(self):
        return self.current

    def delete(self, flags):
        self.dom.snaps.remove(self)
        self.dom.deleted.append(self.name)


class Dom(object):
    def __init__(self, uuid=UUID):
        self.uuid, self.snaps, self.deleted = uuid, [], []

    def add(self, name, ct, current=False):
        self.snaps.append(Snap(self, name, ct, current))
        return self

    def listAllSnapshots(self, flags):
        return list(self.snaps)

    def name(self):
        return "web1"

    def UUIDString(self):
        return self.uuid


class Module(object):
    check_mode = False
    _diff = False

    def __init__(self, domains):
        self.params = dict(domains=domains, pinned=[], prune=True, max_age_hours=None, max_count=None,
                           ledger_dir=None, allow_memory=None)


def plan_entry(**kw):
    """The plan's entry for web1: 'nightly' flagged by RB-02 when it was 100 h old."""
    entry = {"delete": ["nightly"], "why": {"nightly": "RB-02 older than 72h (100h)"}, "uuid": UUID,
             "created": {"nightly": NOW - 100 * 3600}}
    entry.update(kw)
    return {"web1": entry}


def test_a_planned_snapshot_recreated_under_its_name_is_not_deleted():
    dom = Dom().add("nightly", NOW - 600).add("now", NOW - 60, current=True)  # deleted and taken again since the audit
    entry, err = sp.work_on(Module(plan_entry()), dom, 9007000, NOW)
    assert dom.deleted == [] and entry["deleted"] == [] and err is None
    assert entry["refused"]["nightly"].startswith("not deleted: re-created since the audit (created 2026-11-18T")
    assert sorted(entry["kept"]) == ["nightly", "now"]


def test_a_planned_snapshot_of_a_replaced_domain_is_not_deleted():
    dom = Dom(uuid="11111111-2222-4333-8444-555555555555").add("nightly", NOW - 100 * 3600).add("now", NOW, True)
    entry, _err = sp.work_on(Module(plan_entry()), dom, 9007000, NOW)
    assert dom.deleted == [] and "replaced since the audit" in entry["refused"]["nightly"]


def test_the_snapshot_the_audit_judged_is_deleted():
    dom = Dom().add("nightly", NOW - 100 * 3600).add("now", NOW - 60, current=True)
    entry, err = sp.work_on(Module(plan_entry()), dom, 9007000, NOW)
    assert dom.deleted == ["nightly"] and entry["deleted"] == ["nightly"] and entry["refused"] == {} and err is None
    # A plan entry written by hand (names only) is carried out as before.
    dom = Dom().add("nightly", NOW - 600).add("now", NOW - 60, current=True)
    sp.work_on(Module({"web1": {"delete": ["nightly"]}}), dom, 9007000, NOW)
    assert dom.deleted == ["nightly"]


def test_rule_mode_keeps_and_names_a_snapshot_from_the_future():
    dom = Dom().add("ahead", NOW + 365 * 86400).add("old", NOW - 100 * 3600).add("now", NOW - 60, current=True)
    module = Module(None)
    module.params.update(max_age_hours=72)
    entry, _err = sp.work_on(module, dom, 9007000, NOW)
    assert dom.deleted == ["old"]
    assert entry["refused"] == {"ahead": "creation time 2027-11-18T11:06:40Z is 8760h in the future (more than 5s of "
                                         "clock skew): its age cannot be judged (RB-02, RB-04)"}


class VanishingDom(Dom):
    """A domain undefined right after its snapshot was deleted: listing its snapshots again fails."""

    def listAllSnapshots(self, flags):
        if self.deleted:
            raise sp.libvirt.libvirtError("Domain not found: no domain with matching name 'web1'")
        return list(self.snaps)


class Conn(object):
    def __init__(self, *doms):
        self.doms = dict((d.name(), d) for d in doms)

    def getLibVersion(self):
        return 9007000

    def lookupByName(self, name):
        return self.doms[name]


def test_a_deletion_followed_by_a_failed_re_read_is_reported_changed():
    """nightly is deleted, then libvirt cannot list the domain's snapshots again: the run reports the deletion
    (changed, deleted) with the error; it reported changed=false and lost the deletion."""
    dom = VanishingDom().add("nightly", NOW - 100 * 3600).add("now", NOW - 60, current=True)
    result = sp.run(Module(plan_entry()), Conn(dom))
    assert dom.deleted == ["nightly"]
    assert result["changed"] is True and result["domains"]["web1"]["deleted"] == ["nightly"]
    assert result["domains"]["web1"]["kept"] == ["now"]
    assert "cannot list its snapshots after the deletion" in result["failed_domains"]["web1"]
