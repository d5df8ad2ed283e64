"""VIS-01 sees the domains of a user's own libvirt session: a real session libvirtd (the one virsh starts for a
qemu:///session connection) defines a domain as an unprivileged user, nobody; the collector, running as root,
reads that user's home as that user and finds it; the engine fails VIS-01 on the hypervisor naming it. Nothing is
started: the domain stays shut off, the case an audit of qemu:///system could not see at all (a running one is
also a QEMU process libvirt does not know, VIS-03)."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import sessions  # noqa: E402

VIRSH = shutil.which("virsh")
LIBVIRTD = os.path.exists("/usr/sbin/libvirtd")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not VIRSH or not LIBVIRTD,
                                reason="needs root (to become nobody), virsh and libvirtd (libvirt-daemon-system)")

DOMAIN = """<domain type='qemu'><name>hidden-lab</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os><devices><graphics type='vnc' passwd='hidden88'/></devices></domain>"""


class Entry(object):
    def __init__(self, pw, home):
        self.pw_name, self.pw_uid, self.pw_gid, self.pw_dir = pw.pw_name, pw.pw_uid, pw.pw_gid, home


def _session_daemons(uid):
    out = subprocess.run(["pgrep", "-u", str(uid), "-x", "libvirtd"], stdout=subprocess.PIPE, universal_newlines=True, check=False)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture
def nobody_session():
    """(nobody's pwd entry with a temporary home, the definition's path) after a real session libvirtd running as
    nobody defined the domain; the daemon is stopped and the home removed afterwards."""
    nobody = pwd.getpwnam("nobody")
    before = set(_session_daemons(nobody.pw_uid))
    base = tempfile.mkdtemp(prefix="vmguard-session-", dir="/tmp")
    os.chmod(base, 0o755)
    home = os.path.join(base, "home")
    os.mkdir(home)
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    xml = os.path.join(base, "hidden-lab.xml")
    with open(xml, "w") as f:
        f.write(DOMAIN)
    os.chmod(xml, 0o644)
    try:
        p = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups",
                            "env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + home,
                            VIRSH, "-c", "qemu:///session", "define", xml],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120, check=False)
        assert p.returncode == 0, p.stderr
        yield Entry(nobody, home), os.path.join(home, ".config", "libvirt", "qemu", "hidden-lab.xml")
    finally:
        for pid in set(_session_daemons(nobody.pw_uid)) - before:
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


def test_a_domain_a_user_defined_in_the_own_session_fails_vis01(nobody_session):
    entry, path = nobody_session
    assert os.path.isfile(path) and os.stat(path).st_uid == entry.pw_uid  # libvirt's own file, as nobody wrote it
    seen = sessions.scan(entries=[entry])
    assert seen["errors"] == [] and seen["users"] == 1
    (d,) = seen["domains"]
    assert (d["uri"], d["user"], d["name"], d["path"]) == ("qemu:///session", "nobody", "hidden-lab", path)
    assert len(d["uuid"]) == 36  # the UUID libvirt gave it
    assert "hidden88" not in repr(seen)
    evidence = {"hypervisors": {"hv1": {"uri": "qemu:///system", "error": None, "domains": [], "networks": {},
                                        "host": {"session_domains": seen}}},
                "guests": {}}
    (f,) = [f for f in engine.evaluate(policy.load_policy({}), evidence, only={"VIS-01"}) if f["subject"]["kind"] == "hypervisor"]
    assert f["status"] == "fail" and "hidden-lab of nobody (%s)" % path in f["message"]
    # The audited session itself (a hypervisor entry whose URI is that user's qemu:///session) is not outside.
    assert sessions.scan(skip=os.path.dirname(path), entries=[entry])["domains"] == []
