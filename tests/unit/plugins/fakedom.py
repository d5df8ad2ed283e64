"""A stand-in libvirt domain for the quarantine module and the revert watcher: a service interface and a management
one, each with its link state in the live and in the persistent definition; updateDeviceFlags edits them as libvirt
does (virsh domif-setlink), and can be made to fail for one definition. No libvirt-python needed: FakeLibvirt is
what the code under test reads of the libvirt module (libvirtError)."""

import xml.etree.ElementTree as ET

U = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"
SVC = "52:54:00:00:01:b8"
MGMT = "52:54:00:00:01:01"
LIVE, CONFIG = 1, 2  # VIR_DOMAIN_AFFECT_LIVE / _CONFIG (and XML_INACTIVE for XMLDesc)

XML = """<domain type='kvm'><name>web1</name><uuid>%s</uuid><devices>
<interface type='network'><mac address='%s'/><source network='svc'/>%s</interface>
<interface type='network'><mac address='%s'/><source network='mgmt'/></interface>
</devices></domain>"""


class FakeLibvirt(object):
    class libvirtError(Exception):
        def get_error_message(self):
            return str(self)


class FakeDom(object):
    def __init__(self, live="up", config="up", active=True, fail_config=False):
        self.state = {"live": live, "config": config}
        self.active = active
        self.fail_config = fail_config
        self.updates = []

    def _xml(self, scope):
        st = self.state[scope]
        return XML % (U, SVC, "<link state='%s'/>" % st if st else "", MGMT)

    def XMLDesc(self, flags=0):
        return self._xml("config" if flags & 2 else "live")

    def updateDeviceFlags(self, xml, affect):
        el = ET.fromstring(xml)
        assert el.find("mac").get("address") == SVC, "only the service interface is ever changed"
        if affect & CONFIG and self.fail_config:
            raise FakeLibvirt.libvirtError("persistent update failed")
        for scope, bit in (("live", LIVE), ("config", CONFIG)):
            if affect & bit:
                self.state[scope] = el.find("link").get("state")
        self.updates.append((el.find("link").get("state"), affect))

    def isActive(self):
        return self.active

    def isPersistent(self):
        return True

    def UUIDString(self):
        return U

    def name(self):
        return "web1"

    def snapshotCurrent(self, flags=0):
        raise FakeLibvirt.libvirtError("no current snapshot")
