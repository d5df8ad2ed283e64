"""A guest that stops answering mid-harden, with real guests reached over SSH (no lab needed).

Each "guest" is a network namespace of its own (PREFIX + N, a veth to the host) running its own sshd
(generated host key, one authorized key, listening only on the namespace's veth address), started under
``unshare --mount`` with a PRIVATE /var/lib/vmguard (bind-mounted from the guest's temp directory) and a
private /run (sshd's privilege separation directory): each guest's epoch file is its own, and the host's
/var/lib/vmguard is never written. Ansible reaches them over SSH with strict host key checking (a known_hosts
file built from the generated host keys) and no connection sharing, so every task opens its own connection.

The playbook does what roles/guest/tasks/ledger.yml does: the ledger's ``prepare`` on the "hypervisor"
(localhost, a temporary ledger directory), the guest's /var/lib/vmguard, the pending epoch written to the
guest's epoch file over SSH, then ``commit``. In the faulty run the test waits for every guest's prepared
record, kills every process of one guest's namespace (its sshd), then lets the play go on.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import pytest

from conftest import COLLECTIONS, ROOT, ansible_playbook, pid_alive, playbook_env, wait_for

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

_spec = importlib.util.spec_from_file_location("fault_evidence", os.path.join(ROOT, "tests", "unit", "rules", "evidence.py"))
E = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(E)

PREFIX = os.environ.get("VMGUARD_GUEST_FAULTS_PREFIX", "vmg-h9-")
GUESTS = 3
VICTIM = 2
EPOCH_FILE = "/var/lib/vmguard/epoch.json"
NET = "10.91.9.%d"  # guest N: host side .4N+1, guest side .4N+2 (a /30 each)

SSHD_CONFIG = """ListenAddress {addr}
Port 22
HostKey {d}/ssh_host_ed25519_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
"""

START = """set -e
mount --bind {d}/run /run
mkdir -p -m 0755 /run/sshd
mount --bind {d}/root/var/lib/vmguard /var/lib/vmguard
exec /usr/sbin/sshd -D -e -f {d}/sshd_config
"""

PLAYBOOK = """- name: Harden's ledger step (roles/guest/tasks/ledger.yml) on guests reached over SSH
  hosts: guests
  gather_facts: false
  tasks:
    - name: Record a pending epoch in the ledger (prepare)
      vmguard.hardening.ledger:
        uuid: "{{ uuid }}"
        dir: "{{ ledger_dir }}"
        record: {disabled_accounts: [games]}
        epoch: prepare
      delegate_to: localhost
      register: prepared

    - name: Fault injection point (the test kills a guest, then creates the gate file)
      ansible.builtin.wait_for:
        path: "{{ gate }}"
        timeout: 120
      delegate_to: localhost
      run_once: true
      when: gate is defined

    - name: Create the guest's vmguard directory
      ansible.builtin.file:
        path: /var/lib/vmguard
        state: directory
        mode: "0755"

    - name: Write the pending epoch to the guest's epoch file
      ansible.builtin.copy:
        content: "{{ {'epoch': prepared.pending_epoch} | to_json }}\\n"
        dest: /var/lib/vmguard/epoch.json
        mode: "0644"

    - name: Commit the epoch and record the hardening
      vmguard.hardening.ledger:
        uuid: "{{ uuid }}"
        dir: "{{ ledger_dir }}"
        epoch: commit
        hardened: true
      delegate_to: localhost
"""


def sh(*cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True).stdout


class NamespaceGuest(object):
    """Guest N: namespace PREFIX+N, veth PREFIX+hN (host) / PREFIX+gN (guest), sshd with a private /var/lib/vmguard."""

    def __init__(self, base, n, client_pub):
        self.n, self.ns = n, "%s%d" % (PREFIX, n)
        self.host_if, self.guest_if = "%sh%d" % (PREFIX, n), "%sg%d" % (PREFIX, n)
        self.host_addr, self.addr = NET % (4 * n + 1), NET % (4 * n + 2)
        self.uuid = "6a0c1f52-3b1e-4d8e-9f00-0000000fa1%02d" % n
        self.dir = os.path.join(base, "g%d" % n)
        self.root = os.path.join(self.dir, "root")
        for d in ("run", "root/var/lib/vmguard"):
            os.makedirs(os.path.join(self.dir, d))
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, "ssh_host_ed25519_key"))
        shutil.copy(client_pub, os.path.join(self.dir, "authorized_keys"))
        with open(os.path.join(self.dir, "sshd_config"), "w") as f:
            f.write(SSHD_CONFIG.format(addr=self.addr, d=self.dir))
        with open(os.path.join(self.dir, "start.sh"), "w") as f:
            f.write(START.format(d=self.dir))
        self.proc = None

    def known_host(self):
        with open(os.path.join(self.dir, "ssh_host_ed25519_key.pub")) as f:
            return "%s %s\n" % (self.addr, " ".join(f.read().split()[:2]))

    def network(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.guest_if)
        sh("ip", "link", "set", self.guest_if, "netns", self.ns)
        sh("ip", "addr", "add", self.host_addr + "/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "-n", self.ns, "addr", "add", self.addr + "/30", "dev", self.guest_if)
        sh("ip", "-n", self.ns, "link", "set", self.guest_if, "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    def start_sshd(self):
        log = open(os.path.join(self.dir, "sshd.log"), "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
                                      "sh", os.path.join(self.dir, "start.sh")],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if not wait_for(self._listening, 20, 0.05):
            raise RuntimeError("sshd of %s does not listen on %s:22; see %s/sshd.log" % (self.ns, self.addr, self.dir))

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError("sshd of %s exited with %s; see %s/sshd.log" % (self.ns, self.proc.returncode, self.dir))
        return ":22 " in sh("ip", "netns", "exec", self.ns, "ss", "-Htln")

    def pids(self):
        """Every process in the guest's network namespace (its sshd and any session): all started here."""
        p = subprocess.run(["ip", "netns", "pids", self.ns], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, check=False)
        return [int(x) for x in p.stdout.split()]

    def kill(self):
        """The guest stops answering: SIGKILL to every process of its namespace."""
        pids = self.pids()
        assert self.proc.pid in pids, (self.proc.pid, pids)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        assert wait_for(lambda: not any(pid_alive(p) for p in pids), 10)
        return pids

    def epoch_file(self):
        with open(os.path.join(self.root, EPOCH_FILE.lstrip("/"))) as f:
            return json.load(f)["epoch"]

    def record(self, ledger_dir):
        return ledger.read_record(ledger_dir, self.uuid)

    def rb05(self, ledger_dir, error=None):
        """RB-05 as the next audit evaluates it: the guest's own epoch file (guestscan, as guest_facts reads it),
        or, when the guest cannot be reached, the guest's evidence error."""
        facts = None
        if error is None:
            epoch, err = guestscan.epoch(EPOCH_FILE, self.root)
            facts = E.guest_facts(self.n, epoch=epoch, epoch_error=err)
        ev = E.fleet([E.domain("web%d" % self.n, uuid=self.uuid, ledger=self.record(ledger_dir))],
                     {"web%d" % self.n: E.guest("web%d" % self.n, facts=facts, error=error)})
        return E.by_subject(E.run("RB-05", ev))["web%d" % self.n]

    def teardown(self):
        for pid in self.pids():
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["ip", "link", "del", self.host_if], stderr=subprocess.DEVNULL, check=False)


@pytest.fixture
def guests():
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd") or not shutil.which("unshare"):
        pytest.skip("needs root, openssh-server (/usr/sbin/sshd) and unshare")
    if not os.path.isdir("/var/lib/vmguard"):
        pytest.skip("needs /var/lib/vmguard to exist as a mount point for the guests' private copies")
    base = tempfile.mkdtemp(prefix=PREFIX + "guests-", dir="/tmp")
    made = []
    try:
        key = os.path.join(base, "client_key")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        for n in range(1, GUESTS + 1):
            g = NamespaceGuest(base, n, key + ".pub")
            made.append(g)
            g.network()
            g.start_sshd()
        with open(os.path.join(base, "known_hosts"), "w") as f:
            f.writelines(g.known_host() for g in made)
        lines = ["[guests]"] + ["guest%d ansible_host=%s uuid=%s" % (g.n, g.addr, g.uuid) for g in made]
        lines += ["", "[guests:vars]", "ansible_user=root", "ansible_ssh_private_key_file=%s" % key,
                  "ansible_python_interpreter=%s" % sys.executable, "ledger_dir=%s" % os.path.join(base, "ledger"),
                  "", "[local]", "localhost ansible_connection=local ansible_python_interpreter=%s" % sys.executable]
        with open(os.path.join(base, "inventory.ini"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(base, "ledger.yml"), "w") as f:
            f.write(PLAYBOOK)
        yield base, made
    finally:
        for g in made:
            g.teardown()
        shutil.rmtree(base, ignore_errors=True)


def harden(base, gate=None):
    env = playbook_env(ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_TIMEOUT="10", ANSIBLE_PIPELINING="True",
                       ANSIBLE_SSH_ARGS="-o ControlMaster=no -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
                       % os.path.join(base, "known_hosts"),
                       ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    cmd = [ansible_playbook(), "-i", os.path.join(base, "inventory.ini"), os.path.join(base, "ledger.yml")]
    if gate:
        cmd += ["-e", json.dumps({"gate": gate})]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          cwd=base, timeout=600, check=False)


def read_or_none(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def recap(out):
    """host -> {ok, changed, unreachable, failed, ...} from the PLAY RECAP."""
    res = {}
    for line in out.split("PLAY RECAP", 1)[-1].splitlines():
        if " : " in line:
            host, counts = line.split(" : ", 1)
            res[host.strip()] = dict((k, int(v)) for k, v in (c.split("=") for c in counts.split()))
    return res


def test_guest_killed_mid_harden_errors_alone_and_the_next_run_finishes_its_epoch(guests):
    base, gs = guests
    ld = os.path.join(base, "ledger")
    host_epoch = os.path.join("/var/lib/vmguard", "epoch.json")
    host_before = read_or_none(host_epoch)
    victim, others = gs[VICTIM - 1], [g for g in gs if g.n != VICTIM]

    # Run 1: every guest converges to epoch 1, each in its own private epoch file.
    p = harden(base)
    assert p.returncode == 0, p.stdout + p.stderr
    for g in gs:
        assert g.record(ld)["epoch"] == 1 and g.epoch_file() == 1
        assert g.rb05(ld)["message"] == "guest and ledger at epoch 1"

    # Run 2: once every guest's prepare is recorded, the victim's sshd (every process of its namespace) dies.
    gate = os.path.join(base, "gate")
    killed = {}

    def inject():
        if wait_for(lambda: all(g.record(ld).get("pending_epoch") == 2 for g in gs), 120, 0.05):
            killed["pids"] = victim.kill()
        with open(gate, "w") as f:
            f.write("go\n")

    t = threading.Thread(target=inject)
    t.start()
    p = harden(base, gate=gate)
    t.join(130)
    out = p.stdout + p.stderr
    assert killed.get("pids"), "the fault was not injected: " + out
    r = recap(p.stdout)
    assert p.returncode == 4, out  # ansible-playbook: a host was unreachable
    assert r["guest%d" % VICTIM]["unreachable"] == 1 and r["guest%d" % VICTIM]["failed"] == 0, r
    assert "UNREACHABLE" in p.stdout and victim.addr in p.stdout
    for g in others:  # the others converge: epoch 2 committed, written to their own epoch file
        assert r["guest%d" % g.n]["unreachable"] == 0 and r["guest%d" % g.n]["failed"] == 0, r
        rec = g.record(ld)
        assert rec["epoch"] == 2 and rec["pending_epoch"] is None and g.epoch_file() == 2
        assert g.rb05(ld)["message"] == "guest and ledger at epoch 2"
    rec = victim.record(ld)
    assert rec["epoch"] == 1 and rec["pending_epoch"] == 2 and victim.epoch_file() == 1, rec
    # No false alarm: unreachable, RB-05 is an error (missing evidence), never a rollback failure; on the
    # epoch file the guest holds (the old epoch), RB-05 passes.
    f = victim.rb05(ld, error="UNREACHABLE: ssh: connect to host %s port 22: Connection refused" % victim.addr)
    assert f["status"] == "error", f
    f = victim.rb05(ld)
    assert f["status"] == "pass", f

    # Run 3: the guest is back (a new sshd and mount namespace over the same private directory).
    victim.start_sshd()
    p = harden(base)
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(c["unreachable"] == 0 and c["failed"] == 0 for c in recap(p.stdout).values())
    rec = victim.record(ld)  # the pending epoch 2 of the interrupted run is abandoned, never reused
    assert rec["epoch"] == 3 and rec["pending_epoch"] is None and victim.epoch_file() == 3, rec
    f = victim.rb05(ld)
    assert f["status"] == "pass" and f["message"] == "guest and ledger at epoch 3", f
    for g in others:
        assert g.record(ld)["epoch"] == 3 and g.epoch_file() == 3 and g.rb05(ld)["status"] == "pass"
    # The guests' epoch files were their own: the host's /var/lib/vmguard/epoch.json is as it was.
    assert read_or_none(host_epoch) == host_before
