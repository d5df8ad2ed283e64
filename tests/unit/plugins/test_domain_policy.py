"""domain_policy on libvirt's test driver (no daemon): the module accounts for every domain it is asked to fix -
a fix a fixer refuses (a boot disk) is named and the domain's other fixes are applied."""

import json

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python")
pytest.importorskip("lxml", reason="needs lxml")

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.common.text.converters import to_bytes  # noqa: E402

from ansible_collections.vmguard.hardening.plugins.modules import domain_policy  # noqa: E402

libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are asserted, not printed

OPEN_CONSOLE = "<graphics type='vnc' port='5901' listen='0.0.0.0'/>"
DOMAIN = """<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>
<devices>{devices}</devices></domain>"""


def disk(path, dev, boot=""):
    return ("<disk type='file' device='disk'><source file='%s'/><target dev='%s' bus='virtio'/>%s</disk>"
            % (path, dev, boot))


@pytest.fixture
def conn(tmp_path):
    """A test-driver node with no domain; the module is handed this very connection (its close() is a no-op)."""
    node = tmp_path / "node.xml"
    node.write_text("<node></node>")
    c = libvirt.open("test://%s" % node)
    real_close = c.close
    c.close = lambda: 0
    yield c
    real_close()


def run(monkeypatch, capsys, conn, **args):
    """domain_policy.main() with ``args``: (its JSON result with the module's warnings under "warned", whether it
    failed). The warnings are caught at module.warn: where ansible's controller code was imported (other tests),
    ansible-core prints them instead of returning them."""
    warned = []
    monkeypatch.setattr(domain_policy.AnsibleModule, "warn", lambda self, msg: warned.append(msg))
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    monkeypatch.setattr(domain_policy.libvirt, "open", lambda uri: conn)
    with pytest.raises(SystemExit) as exit_:
        domain_policy.main()
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]), warned=warned), exit_.value.code != 0


def test_a_refused_boot_disk_is_named_and_the_other_fixes_are_applied(monkeypatch, capsys, conn, tmp_path):
    # web1 boots from vdb (<boot order='1'/>), which domain_fixes asks ISO-06 to detach: the disk stays, the
    # refusal is reported (result and warning), and LEAK-02 is applied (before: the whole domain failed).
    boot = disk("/srv/shared/boot.img", "vdb", "<boot order='1'/>")
    xml = DOMAIN.format(name="web1", devices=disk("/srv/a.img", "vda") + boot + OPEN_CONSOLE)
    conn.defineXML(xml)
    res, failed = run(monkeypatch, capsys, conn, uri="test:///x", backup_dir=str(tmp_path / "backup"),
                      domain_fixes={"web1": {"ISO-06": {"detach": ["/srv/shared/boot.img"]}, "LEAK-02": {}}})
    assert not failed and res["changed"] and res["failed_domains"] == {}
    entry = res["domains"]["web1"]
    assert entry["changes"] == ["LEAK-02: vnc console listen attribute 0.0.0.0 -> 127.0.0.1, <listen> 0.0.0.0 -> "
                                "127.0.0.1"]
    refusal = ("ISO-06: not detaching boot disk vdb (/srv/shared/boot.img): boot disk shared: give the domain its own "
               "image")
    assert entry["not_enforced"] == [refusal]
    assert res["warned"] == ["domain web1: " + refusal]
    now = conn.lookupByName("web1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "/srv/shared/boot.img" in now and "listen='127.0.0.1'" in now
