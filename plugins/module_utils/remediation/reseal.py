# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reseal what a careless clone shares (DIV-01, DIV-02, DIV-04): machine-id and its D-Bus copy,
SSH host keys, the systemd random seed.

Idempotent by construction: an item is regenerated only when its current value is the one the
audit found duplicated (a digest or fingerprint handed in), or when forced. After a reseal the
current value differs, so a second run with the same evidence changes nothing.

Standard library only; every path is relative to ``root`` so tests run on real trees. Commands
(ssh-keygen, sshd -t) go through a ``run(argv) -> (rc, out, err)`` callable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile
import uuid

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan

ITEMS = ("machine_id", "ssh_host_keys", "random_seed")
SEED_BYTES = 512  # what systemd-random-seed writes


def _p(root, path):
    return os.path.join(root, path.lstrip("/"))


def _atomic_write(path, data, mode):
    """A private temporary file in the target's directory, renamed over it (fsutil.atomic_write):
    no predictable name a planted link could redirect; a target that is a link is refused."""
    fsutil.atomic_write(path, data, mode)


def plan(root, duplicated, force=()):
    """What would be resealed: {item: reason}, from the current state and the duplicated values.

    ``duplicated`` = {"machine_id_digest": str, "ssh_fingerprints": [str], "random_seed_digest": str}
    """
    todo = {}
    force = set(ITEMS) if "all" in force else set(force)
    mid = guestscan.machine_id(root)
    if "machine_id" in force:
        todo["machine_id"] = "forced"
    elif duplicated.get("machine_id_digest") and mid.get("machine_id_digest") == duplicated["machine_id_digest"]:
        todo["machine_id"] = "shared with another guest"
    keys, err = guestscan.read_ssh_host_keys(root)
    if err:
        raise ValueError(err)
    dup_fps = set(duplicated.get("ssh_fingerprints") or [])
    if "ssh_host_keys" in force:
        todo["ssh_host_keys"] = list(keys)
    else:
        shared = [k for k in keys if k["fingerprint"] in dup_fps]
        if shared:
            todo["ssh_host_keys"] = shared
    seed = guestscan.random_seed(root)
    if "random_seed" in force:
        todo["random_seed"] = "forced"
    elif duplicated.get("random_seed_digest") and seed.get("random_seed_digest") == duplicated["random_seed_digest"]:
        todo["random_seed"] = "shared with another guest"
    return todo


def new_machine_id():
    return uuid.uuid4().hex


def reseal_machine_id(root):
    """A fresh random machine-id in /etc/machine-id; the D-Bus copy becomes a link to it."""
    old = guestscan.machine_id(root).get("machine_id_digest")
    mid = new_machine_id()
    _atomic_write(_p(root, "/etc/machine-id"), (mid + "\n").encode("ascii"), 0o444)
    dbus = _p(root, "/var/lib/dbus/machine-id")
    if os.path.lexists(dbus) and not (os.path.islink(dbus) and os.readlink(dbus) == "/etc/machine-id"):
        os.unlink(dbus)
        os.symlink("/etc/machine-id", dbus)
    return {"old_digest": old, "new_digest": guestscan.sha256(mid)}


def reseal_random_seed(root, urandom=os.urandom):
    path = _p(root, "/var/lib/systemd/random-seed")
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d, 0o755)
    _atomic_write(path, urandom(SEED_BYTES), 0o600)
    return {"new_digest": guestscan.random_seed(root)["random_seed_digest"]}


KEYGEN_TYPES = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "ecdsa-sha2-nistp384": "ecdsa",
                "ecdsa-sha2-nistp521": "ecdsa", "ssh-rsa": "rsa"}


def _keygen(priv, ktype, run):
    """A new key pair in a private directory (mkdtemp, 0700) next to ``priv``; returns its path.

    Never at a predictable name: ssh-keygen would write through a link planted there."""
    work = tempfile.mkdtemp(prefix=".vmguard-keygen-", dir=os.path.dirname(priv))
    new = os.path.join(work, "key")
    args = ["ssh-keygen", "-q", "-t", ktype, "-N", "", "-C", "", "-f", new]
    if ktype == "rsa":
        args[4:4] = ["-b", "3072"]
    rc, o, err = run(args)
    if rc != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError("ssh-keygen for %s failed: %s" % (priv, err.strip()))
    os.chmod(new, 0o600)
    os.chmod(new + ".pub", 0o644)
    return new


def reseal_host_keys(root, keys, run):
    """Regenerate the given host keys in place (same types, same files). Returns per-key old/new
    fingerprints. Old key files are kept as *.vmguard-old until ``commit_host_keys``/``rollback``
    (renames replace directory entries: nothing is ever written through a link)."""
    out = []
    for k in keys:
        priv = _p(root, k["file"][:-len(".pub")])
        ktype = KEYGEN_TYPES.get(k["type"])
        if ktype is None:
            raise ValueError("cannot regenerate host key type %s" % k["type"])
        new = _keygen(priv, ktype, run)
        try:
            with open(new + ".pub") as f:
                pub = " ".join(f.read().split()[:2])
            for src, dst in ((priv, priv + ".vmguard-old"), (priv + ".pub", priv + ".pub.vmguard-old")):
                if os.path.lexists(src):
                    os.rename(src, dst)
            os.rename(new, priv)
            os.rename(new + ".pub", priv + ".pub")
        finally:
            shutil.rmtree(os.path.dirname(new), ignore_errors=True)
        fsutil.fsync_dir(os.path.dirname(priv))
        out.append({"type": k["type"], "file": k["file"], "old_fingerprint": k["fingerprint"],
                    "new_fingerprint": guestscan.ssh_fingerprint(pub)[1], "new_public_key": pub})
    return out


def _old_files(root, rotated):
    for r in rotated:
        priv = _p(root, r["file"][:-len(".pub")])
        yield priv, priv + ".vmguard-old"
        yield priv + ".pub", priv + ".pub.vmguard-old"


def commit_host_keys(root, rotated):
    for cur, old in _old_files(root, rotated):
        if os.path.lexists(old):
            os.unlink(old)


def rollback_host_keys(root, rotated):
    for cur, old in _old_files(root, rotated):
        if os.path.lexists(old):
            os.rename(old, cur)
