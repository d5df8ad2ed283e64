"""Domain XML remediations keep everything they do not own, and apply once."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix

etree = pytest.importorskip("lxml.etree", reason="needs lxml (in the toolchain's requirements)")

XML = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web1</name>
  <uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10</uuid>
  <metadata><app:info xmlns:app="urn:example:app"><app:team>blue</app:team></app:info></metadata>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <graphics type='vnc' listen='127.0.0.1' passwd='s3cret'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>"""


def test_div09_and_rb01_add_only_their_elements():
    new, changes = domfix.apply(XML, ["DIV-09", "RB-01"], etree)
    assert [c.split(":")[0] for c in changes] == ["DIV-09", "RB-01"]
    d = domxml.parse_domain(new)
    assert d["rng"] == ["virtio"] and d["genid"] is True
    # Everything else survives: foreign metadata, the qemu namespace, the console password.
    assert "urn:example:app" in new and "<app:team>blue</app:team>" in new
    assert d["qemu_commandline"] == ["-no-hpet"] and "passwd=\"s3cret\"" in new.replace("'", '"')
    assert d["disks"][0]["source"] == "/var/lib/libvirt/images/web1.qcow2"
    # genid goes right after uuid.
    assert new.index("<genid/>") > new.index("</uuid>") and new.index("<genid/>") < new.index("<metadata>")


def test_applying_twice_changes_nothing():
    new, changes = domfix.apply(XML, ["DIV-09"], etree)
    again, changes2 = domfix.apply(new, ["DIV-09"], etree)
    assert again is None and changes2 == []


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="no domain remediation for ISO-99"):
        domfix.apply(XML, ["ISO-99"], etree)


TRANSIENT = XML.replace(
    "<target dev='vda' bus='virtio'/></disk>",
    "<target dev='vda' bus='virtio'/><transient shareBacking='yes'/></disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2' cache='none'/>\n"
    "      <source file='/var/lib/libvirt/images/scratch.qcow2'/>\n"
    "      <transient/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "      <serial>scratch-1</serial>\n"
    "    </disk>")


def test_rb12_removes_transient_from_every_disk_and_keeps_the_rest():
    before = domxml.parse_domain(TRANSIENT)
    assert [d["transient"] for d in before["disks"]] == [True, True]  # the evidence RB-12 fails on
    new, changes = domfix.apply(TRANSIENT, ["RB-12"], etree)
    assert changes == ["RB-12: removed <transient/> from disk(s) vda, vdb: they now keep the guest's writes"]
    after = domxml.parse_domain(new)
    assert [d["transient"] for d in after["disks"]] == [False, False]
    assert "transient" not in new
    # Everything else of the disks and the domain is kept, in order, with its layout.
    assert [(d["target"], d["source"]) for d in after["disks"]] == [
        ("vda", "/var/lib/libvirt/images/web1.qcow2"), ("vdb", "/var/lib/libvirt/images/scratch.qcow2")]
    assert ("      <source file=\"/var/lib/libvirt/images/scratch.qcow2\"/>\n      <target dev=\"vdb\" bus=\"virtio\"/>\n"
            "      <serial>scratch-1</serial>") in new.replace("'", '"')
    assert "cache=\"none\"" in new.replace("'", '"') and "urn:example:app" in new and "s3cret" in new
    assert domfix.apply(new, ["RB-12"], etree) == (None, [])  # idempotent


def test_rb12_changes_nothing_without_transient_disks():
    assert domfix.apply(XML, ["RB-12"], etree) == (None, [])
    no_devices = "<domain type='kvm'><name>bare</name><uuid>0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a11</uuid></domain>"
    assert domfix.apply(no_devices, ["RB-12"], etree) == (None, [])
