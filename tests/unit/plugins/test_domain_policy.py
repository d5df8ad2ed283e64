"""domain_policy on libvirt's test driver (no daemon): the module accounts for every domain it is asked to fix -
a transient domain gets its live fixes and the others are named as not enforceable there, a domain libvirt does not
have is a failure of that domain, and a fix a fixer refuses (a boot disk) is named while the domain's other fixes
are applied."""

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


def transient_web1(conn):
    """A running transient domain with an open console and a disk shared with another service."""
    xml = DOMAIN.format(name="web1", devices=disk("/srv/a.img", "vda") + disk("/srv/shared.img", "vdb") + OPEN_CONSOLE)
    return conn.createXML(xml, 0)


TRANSIENT_FIXES = {"web1": {"ISO-06": {"detach": ["/srv/shared.img"]}, "LEAK-02": {}}}
LEAK02_ON_TRANSIENT = ("LEAK-02: cannot be enforced on a transient domain: it has no persistent definition to change "
                       "and libvirt cannot make this change on the running domain (define it persistently, or fix it "
                       "where it is created); needed: vnc console listen attribute 0.0.0.0 -> 127.0.0.1, <listen> "
                       "0.0.0.0 -> 127.0.0.1")


def test_a_transient_domain_gets_its_live_fixes_and_the_others_are_named(monkeypatch, capsys, conn, tmp_path):
    # Before: only persistent domains were listed, so web1 was skipped in silence ({"domains": {}}).
    dom = transient_web1(conn)
    res, failed = run(monkeypatch, capsys, conn, uri="test:///x", backup_dir=str(tmp_path / "backup"),
                      domain_fixes=TRANSIENT_FIXES)
    assert not failed and res["failed_domains"] == {}
    entry = res["domains"]["web1"]
    assert entry["transient"] is True and entry["changes"] == [] and entry["restart_pending"] is False
    assert entry["not_enforced"] == [LEAK02_ON_TRANSIENT] and res["warned"] == ["domain web1: " + LEAK02_ON_TRANSIENT]
    # ISO-06 is a live fix: it was tried on the running domain (the test driver cannot detach, and says so).
    assert entry["live"] == [] and entry["live_pending"].startswith("ISO-06: live detach refused: ")
    assert res["changed"] is False and not dom.isPersistent() and not (tmp_path / "backup").exists()


def test_check_mode_predicts_a_transient_domain_s_live_fixes(monkeypatch, capsys, conn, tmp_path):
    transient_web1(conn)
    res, failed = run(monkeypatch, capsys, conn, uri="test:///x", backup_dir=str(tmp_path / "backup"),
                      domain_fixes=TRANSIENT_FIXES, _ansible_check_mode=True)
    assert not failed and res["changed"] is True
    entry = res["domains"]["web1"]
    assert entry["live"] == ["ISO-06: detached disk(s) shared with other services: vdb (/srv/shared.img)"]
    assert entry["not_enforced"] == [LEAK02_ON_TRANSIENT]


def test_a_requested_domain_libvirt_does_not_have_fails_for_that_domain(monkeypatch, capsys, conn, tmp_path):
    conn.defineXML(DOMAIN.format(name="web1", devices=OPEN_CONSOLE))
    res, failed = run(monkeypatch, capsys, conn, uri="test:///x", backup_dir=str(tmp_path / "backup"),
                      domain_fixes={"web1": ["LEAK-02"], "ghost": ["LEAK-02"], "gone": ["LEAK-02"], "idle": []},
                      exclude=["gone"])
    assert failed and res["failed_domains"] == {"ghost": {"error": "no such domain on test:///x", "backup": None}}
    assert list(res["domains"]) == ["web1"] and res["changed"] is True
    res, failed = run(monkeypatch, capsys, conn, uri="test:///x", backup_dir=str(tmp_path / "backup"),
                      fixes=["LEAK-02"], domains=["web1", "ghost"])
    assert failed and list(res["failed_domains"]) == ["ghost"] and res["domains"] == {}


class Failed(Exception):
    pass


class NetModule(object):
    check_mode = False

    def fail_json(self, **kw):
        raise Failed(kw)


def _error(code, message):
    e = libvirt.libvirtError(message)
    e.err = (code, 0, message, 2, None, None, None, 0, 0)
    return e


class Net(object):
    def __init__(self, conn, name):
        self.conn, self.name = conn, name

    def isActive(self):
        return False

    def create(self):
        if self.name in self.conn.refuse:
            raise _error(libvirt.VIR_ERR_INTERNAL_ERROR, "bridge %s: File exists" % self.name)
        self.conn.started.append(self.name)

    def setAutostart(self, on):
        pass


class NetConn(object):
    """No network defined yet; creating (starting) one of ``refuse`` fails."""

    def __init__(self, refuse):
        self.refuse, self.defined, self.started = refuse, [], []

    def networkLookupByName(self, name):
        raise _error(libvirt.VIR_ERR_NO_NETWORK, "Network not found: no network with matching name '%s'" % name)

    def networkDefineXML(self, xml):
        name = xml.split("<name>")[1].split("</name>")[0]
        self.defined.append(name)
        return Net(self, name)


def test_a_network_that_fails_to_start_after_another_was_made_reports_changed():
    """ISO-02: svc-a is defined and started, svc-b defined but libvirt refuses to start it: the failure says
    changed=true (it said changed=false although two networks had been defined)."""
    c = NetConn(refuse={"svc-b"})
    with pytest.raises(Failed) as e:
        domain_policy.ensure_networks(NetModule(), c, ["svc-a", "svc-b"])
    assert c.defined == ["svc-a", "svc-b"] and c.started == ["svc-a"]
    assert e.value.args[0]["changed"] is True and e.value.args[0]["networks"] == ["svc-a", "svc-b"]


def test_a_network_that_cannot_be_defined_first_is_no_change():
    class Refusing(NetConn):
        def networkDefineXML(self, xml):
            raise _error(libvirt.VIR_ERR_XML_ERROR, "XML error")

    with pytest.raises(Failed) as e:
        domain_policy.ensure_networks(NetModule(), Refusing(refuse=set()), ["svc-a"])
    assert e.value.args[0]["changed"] is False
