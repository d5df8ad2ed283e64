"""Fault injection (issue 11): shared pieces.

PrivateLibvirtd is a libvirtd of the suite's own, so faults that kill or restart the daemon never touch
the system one (qemu:///system, shared with the lab, Molecule and the revert watcher of scripts/services.sh):
it runs in a mount namespace of its own (``unshare --mount``) with libvirt's directories (/etc/libvirt,
/run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt) bind-mounted from a temporary
directory, so it neither sees nor autostarts the system daemon's domains and networks, and its state
survives a kill and a restart (a new namespace binds the same directories). Clients reach it at
``qemu+unix:///system?socket=<dir>/run/libvirt-sock``. QEMU's stdio goes to files (no virtlogd needed).

Every domain, network namespace and veth made here is named with PREFIX and removed afterwards.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

import pytest

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
BIN = os.path.dirname(sys.executable)
PREFIX = os.environ.get("VMGUARD_FAULTS_PREFIX", "vmg-h6-")


def _collection_link():
    link = os.path.join(COLLECTIONS, "ansible_collections", "vmguard", "hardening")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_collection_link()
libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are asserted, not printed

START = """set -e
mount --bind {b}/etc /etc/libvirt
mount --bind {b}/run /run/libvirt
mount --bind {b}/lib /var/lib/libvirt
mount --bind {b}/cache /var/cache/libvirt
mount --bind {b}/log /var/log/libvirt
exec libvirtd -d -f /etc/libvirt/libvirtd.conf -p {b}/libvirtd.pid
"""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (IOError, OSError):
        return False


def wait_for(test, seconds, step=0.02):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if test():
            return True
        time.sleep(step)
    return test()


class PrivateLibvirtd(object):
    """A libvirtd of the test's own (see the module docstring): start, kill (SIGKILL), restart, stop."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix=PREFIX + "lv-", dir="/tmp")  # short: a socket path has 108 bytes
        os.chmod(self.base, 0o711)
        for d in ("etc/qemu/networks/autostart", "run", "lib/qemu", "cache", "log/qemu", "images"):
            os.makedirs(os.path.join(self.base, d))
        with open(os.path.join(self.base, "etc", "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s/run"\nlisten_tls = 0\nlisten_tcp = 0\n'
                    'log_outputs = "3:file:%s/log/libvirtd.log"\n' % (self.base, self.base))
        with open(os.path.join(self.base, "etc", "qemu.conf"), "w") as f:
            f.write('stdio_handler = "file"\nuser = "root"\ngroup = "root"\nsecurity_driver = "none"\n')
        with open(os.path.join(self.base, "start.sh"), "w") as f:
            f.write(START.format(b=self.base))
        self.socket = os.path.join(self.base, "run", "libvirt-sock")
        self.uri = "qemu+unix:///system?socket=%s" % self.socket
        self.images = os.path.join(self.base, "images")

    @property
    def pid(self):
        try:
            with open(os.path.join(self.base, "libvirtd.pid")) as f:
                return int(f.read().strip())
        except (IOError, OSError, ValueError):
            return None

    def start(self):
        for path in (self.socket, os.path.join(self.base, "libvirtd.pid")):
            if os.path.exists(path):
                os.unlink(path)
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", os.path.join(self.base, "start.sh")],
                       check=True)
        if not wait_for(self._answers, 20, 0.1):
            raise RuntimeError("private libvirtd did not answer at %s; log: %s" % (self.uri, self.log()[-2000:]))
        return self

    def _answers(self):
        try:
            libvirt.open(self.uri).close()
            return True
        except libvirt.libvirtError:
            return False

    def connect(self):
        return libvirt.open(self.uri)

    def preload(self, xmls):
        """Persistent definitions written before the daemon starts (it loads them at start): fast for many domains."""
        for name, xml in xmls:
            with open(os.path.join(self.base, "etc", "qemu", name + ".xml"), "w") as f:
                f.write(xml)

    def clients(self):
        """How many clients are connected now: the connected sockets on the daemon's socket path (ss, a few
        milliseconds a poll; virt-admin took long enough to miss a short reader)."""
        # Its accepted connections carry its socket's path and its pid.
        sock = os.path.join(self.base, "run", "libvirt-sock")
        p = subprocess.run(["ss", "-xp", "-H", "state", "connected"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, check=False)
        mine = "pid=%d," % (self.pid or -1)
        return sum(1 for line in p.stdout.splitlines() if sock in line.split() and mine in line)

    def kill(self, sig=signal.SIGKILL):
        pid = self.pid
        assert pid and pid_alive(pid), "private libvirtd not running"
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            assert wait_for(lambda: not pid_alive(pid), 10), "libvirtd %d survived SIGKILL" % pid
        return pid

    def restart(self):
        if self.pid and pid_alive(self.pid):
            self.kill()
        return self.start()

    def log(self):
        try:
            with open(os.path.join(self.base, "log", "libvirtd.log")) as f:
                return f.read()
        except IOError:
            return ""

    def qemu_pids(self):
        out = []
        state = os.path.join(self.base, "run", "qemu")
        for name in os.listdir(state) if os.path.isdir(state) else ():
            if name.endswith(".pid"):
                try:
                    with open(os.path.join(state, name)) as f:
                        out.append(int(f.read().strip()))
                except (IOError, ValueError):
                    pass
        return out

    def stop(self):
        if self.pid and pid_alive(self.pid):
            try:
                conn = self.connect()
                for dom in conn.listAllDomains(0):
                    if dom.isActive():
                        dom.destroy()
                conn.close()
            except libvirt.libvirtError:
                pass
            self.kill()
        for pid in self.qemu_pids():  # QEMU outlives a killed libvirtd
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def private_libvirtd():
    if os.geteuid() != 0 or not shutil.which("libvirtd") or not shutil.which("unshare"):
        pytest.skip("needs root, libvirtd and unshare for a private libvirtd")
    d = PrivateLibvirtd()
    try:
        d.start()
        yield d
    finally:
        d.stop()


def domain_xml(name, disk=None, extra="", iface_mac=None):
    """A small QEMU domain with no OS: under TCG it sits in SeaBIOS, which is all a libvirt-level fault needs."""
    devices = ""
    if disk:
        devices += ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                    "<target dev='vda' bus='virtio'/></disk>" % disk)
    if iface_mac:
        devices += "<interface type='user'><mac address='%s'/><model type='virtio'/></interface>" % iface_mac
    uuid = "<uuid>%s</uuid>" % uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name)
    return ("<domain type='qemu'><name>%s</name>%s<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os><devices>%s%s</devices></domain>" % (name, uuid, devices, extra))


def make_disk(path):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "8M"], check=True)
    return path


def run_module(name, args, wrap=None, timeout=300):
    """A collection module as Ansible runs it (python -m, arguments on stdin): (result dict or None, process).
    ``wrap`` prefixes the command (for example a mount namespace)."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    cmd = (wrap or []) + [sys.executable, "-m", "ansible_collections.vmguard.hardening.plugins.modules.%s" % name]
    p = subprocess.run(cmd, input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=timeout, check=False)
    try:
        return json.loads(p.stdout[p.stdout.index("{"):]), p
    except ValueError:
        return None, p


def start_module(name, args):
    """The module as a background process (its arguments on stdin from a file): Popen."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    with tempfile.TemporaryFile("w+") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
        f.seek(0)
        return subprocess.Popen([sys.executable, "-m", "ansible_collections.vmguard.hardening.plugins.modules.%s" % name],
                                stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)


def playbook_env(**extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_NOCOLOR="1")
    env.update(extra)
    return env


def ansible_playbook():
    path = os.path.join(BIN, "ansible-playbook")
    return path if os.path.exists(path) else "ansible-playbook"
