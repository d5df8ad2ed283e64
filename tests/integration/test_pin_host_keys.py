"""The guest role's re-pin of rotated SSH host keys (DIV-02, RB-06) when many guests rotate at once.

Every guest of a play pins into the same controller known_hosts file. ansible.builtin.known_hosts
edits that file without a lock (it finds the line to replace by number, writes a copy and renames it),
so guests pinning at the same time lost each other's edits: a new key missing (strict checking then
locks the controller out of that guest) or a retired key still trusted. Measured before the fix with 4
guests: a new key lost in 1 run of 15 and a retired key kept in 5 of 15; this test, without
the fix, failed in 3 runs of 3.

Here 8 local "guests" (ansible_connection local, 8 forks) each rotate both key types twice through
the role's real tasks file (roles/guest/tasks/pin_host_keys.yml, as identity.yml imports it), with real
ssh-keygen keys; after every round the file must hold exactly each guest's current keys.
"""

import json
import os
import shutil
import subprocess

import pytest
from conftest import ansible_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(VENV_BIN, "ansible-playbook")
GUESTS = ["g%d" % i for i in range(8)]
TYPES = ["ecdsa", "ed25519"]

if not os.path.exists(PLAYBOOK):
    pytest.skip("needs the toolchain in .venv (make setup)", allow_module_level=True)
if not shutil.which("ssh-keygen"):
    pytest.skip("needs ssh-keygen (openssh-client)", allow_module_level=True)

PLAY = """---
- name: Rotate | Pin each guest's new keys as the guest role does after a reseal
  hosts: all
  gather_facts: false
  tasks:
    - name: Rotate | The role's pin step
      ansible.builtin.include_role:
        name: vmguard.hardening.guest
        tasks_from: pin_host_keys
"""


def new_key(tmp_path, name):
    """(type, base64) of a fresh key pair made by ssh-keygen."""
    path = tmp_path / "keys" / name
    path.parent.mkdir(exist_ok=True)
    kind = name.rsplit("-", 1)[-1]
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)], check=True)
    with open(str(path) + ".pub") as f:
        return tuple(f.read().split()[:2])


def pinned(known_hosts):
    """{host: sorted [(type, base64)]} of the file."""
    out = {}
    for line in known_hosts.read_text().splitlines():
        host, kind, blob = line.split()[:3]
        out.setdefault(host, []).append((kind, blob))
    return dict((h, sorted(v)) for h, v in out.items())


def run_round(tmp_path, known_hosts, keys, old=None):
    """One play: every guest pins its ``keys[guest]`` (the reseal's result shape), the retired ``old[guest]`` (same
    order) as each entry's old_public_key when given (the module's result since it keeps it; without it, an older
    module's result: the unpin step has nothing to find and skips)."""
    hosts = {}
    for g in GUESTS:
        hosts[g] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
            "vmguard_guest_update_known_hosts": True,
            "vmguard_guest_known_hosts_file": str(known_hosts),
            "vmguard_guest_known_hosts_name": g,
            "__vmguard_guest_resealed": {"resealed": {"ssh_host_keys": [
                dict({"type": kind, "new_fingerprint": "-", "new_public_key": "%s %s" % (kind, blob)},
                     **({"old_public_key": "%s %s" % old[g][i]} if old else {}))
                for i, (kind, blob) in enumerate(keys[g])]}},
        }
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"all": {"hosts": hosts}}))
    play = tmp_path / "rotate.yml"
    play.write_text(PLAY)
    run = subprocess.run([PLAYBOOK, str(play), "-i", str(inv), "-f", str(len(GUESTS))], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=ansible_env(tmp_path), cwd=str(tmp_path), check=False, timeout=300)
    log = run.stdout.decode("utf-8", "replace")
    assert run.returncode == 0, log[-3000:]
    return log


def test_guests_rotating_at_once_leave_exactly_their_new_keys_pinned(tmp_path):
    known_hosts = tmp_path / "known_hosts"
    current = dict((g, sorted(new_key(tmp_path, "%s-0-%s" % (g, t)) for t in TYPES)) for g in GUESTS)
    known_hosts.write_text("".join("%s %s %s\n" % (g, k, b) for g in GUESTS for k, b in current[g]))
    assert pinned(known_hosts) == current
    for rnd in (1, 2):
        retired = current
        current = dict((g, sorted(new_key(tmp_path, "%s-%d-%s" % (g, rnd, t)) for t in TYPES)) for g in GUESTS)
        # round 1 as an older module's result (no old_public_key: the pin step replaces the line of the key's type);
        # round 2 with the retired keys named: the unpin step removes each, then the pin step adds the new one
        log = run_round(tmp_path, known_hosts, current, old=retired if rnd == 2 else None)
        assert log.count("changed: [") == len(GUESTS) * len(TYPES) * rnd, log[-3000:]
        got = pinned(known_hosts)
        missing = dict((g, sorted(set(current[g]) - set(got.get(g, [])))) for g in GUESTS)
        kept = dict((g, sorted(set(retired[g]) & set(got.get(g, [])))) for g in GUESTS)
        assert not any(missing.values()), "round %d: new keys lost: %s" % (rnd, missing)
        assert not any(kept.values()), "round %d: retired keys still trusted: %s" % (rnd, kept)
        assert got == current, "round %d" % rnd
    # A second run with the same keys changes nothing (idempotent).
    log = run_round(tmp_path, known_hosts, current, old=retired)
    assert "changed: [" not in log and log.count("ok: [") == 2 * len(GUESTS) * len(TYPES), log[-3000:]
    assert pinned(known_hosts) == current
