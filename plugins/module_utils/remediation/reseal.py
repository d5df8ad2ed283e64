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

Nothing under ``root`` is reached through a path string: every directory is opened one component
at a time from the root's descriptor with O_NOFOLLOW|O_DIRECTORY, and every read, write, rename
and unlink is made relative to that directory's descriptor. A directory component that is a
symbolic link (``img/etc -> /elsewhere/etc``) is refused before anything changes
(fsutil.LinkRefusedError): running as root, nothing follows a link out of the tree. A final component
that is a link is never written through: /etc/machine-id and the random seed are refused, a
host key or the D-Bus machine-id link is replaced as a directory entry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import os
import shutil
import stat
import struct
import tempfile
import uuid

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan

ITEMS = ("machine_id", "ssh_host_keys", "random_seed")
SEED_BYTES = 512  # what systemd-random-seed writes
MACHINE_ID_LIMIT = 4096


def _p(root, path):
    """The path string of root/path, for messages only: nothing is opened through it."""
    return os.path.join(root, path.lstrip("/"))


def plan(root, duplicated, force=()):
    """What would be resealed: {item: reason}, from the current state and the duplicated values.

    ``duplicated`` = {"machine_id_digest": str, "ssh_fingerprints": [str], "random_seed_digest": str}; the
    machine-id digest matches /etc/machine-id or a D-Bus copy that is a file of its own (both are resealed).
    """
    todo = {}
    force = set(ITEMS) if "all" in force else set(force)
    mid = guestscan.machine_id(root)
    if "machine_id" in force:
        todo["machine_id"] = "forced"
    elif duplicated.get("machine_id_digest") and mid.get("machine_id_digest") == duplicated["machine_id_digest"]:
        todo["machine_id"] = "shared with another guest"
    elif duplicated.get("machine_id_digest") and mid.get("dbus_machine_id_digest") == duplicated["machine_id_digest"]:
        # libdbus reads /var/lib/dbus/machine-id first: a shared copy of its own is a shared D-Bus identity
        todo["machine_id"] = "D-Bus copy (/var/lib/dbus/machine-id) shared with another guest"
    keys, err = guestscan.read_ssh_host_keys(root)
    if err:
        raise ValueError(err)
    dup_fps = set(duplicated.get("ssh_fingerprints") or [])
    if "ssh_host_keys" in force:
        if keys:  # no host key (no SSH server): nothing to rotate, nothing changed, no sshd to validate
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


def _machine_id_digest(raw):
    """The digest guestscan.machine_id reports for these bytes (None when missing, empty or uninitialized)."""
    if raw is None:
        return None
    value = raw.decode("utf-8", "replace").strip()
    if not value or value == "uninitialized":
        return None
    return guestscan.sha256(value)


def _dbus_needs_link(dfd, path):
    """Whether var/lib/dbus/machine-id exists and is not yet the link to /etc/machine-id."""
    st = fsutil.lstat_at(dfd, "machine-id")
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink("machine-id", dir_fd=dfd) != "/etc/machine-id"
    if stat.S_ISDIR(st.st_mode):
        raise fsutil.UnsafePathError(path, "is a directory, refusing to replace it")
    return True


def reseal_machine_id(root):
    """A fresh random machine-id in /etc/machine-id; the D-Bus copy becomes a link to it.

    /etc and /var/lib/dbus are opened (no link followed) and checked before anything changes; an
    /etc/machine-id that is a link is refused, a D-Bus copy is replaced as a directory entry."""
    path = _p(root, "/etc/machine-id")
    etc = dbus = None
    try:
        etc = fsutil.open_dir_under(root, "etc")
        dbus = fsutil.open_dir_under(root, "var/lib/dbus", missing_ok=True)
        fsutil.check_target_at(etc, "machine-id", path)
        relink = dbus is not None and _dbus_needs_link(dbus, _p(root, "/var/lib/dbus/machine-id"))
        old = _machine_id_digest(fsutil.read_regular_at(etc, "machine-id", path, MACHINE_ID_LIMIT))
        mid = new_machine_id()
        fsutil.atomic_write_at(etc, "machine-id", path, (mid + "\n").encode("ascii"), 0o444)
        if relink:
            fsutil.link_at(dbus, "machine-id", "/etc/machine-id")
    finally:
        fsutil.close_all((etc, dbus))
    return {"old_digest": old, "new_digest": guestscan.sha256(mid)}


def reseal_random_seed(root, urandom=os.urandom):
    """A fresh seed in /var/lib/systemd/random-seed (missing directories made 0755, never through a link)."""
    path = _p(root, "/var/lib/systemd/random-seed")
    dfd = fsutil.open_dir_under(root, "var/lib/systemd", create=True)
    try:
        data = urandom(SEED_BYTES)
        fsutil.atomic_write_at(dfd, "random-seed", path, data, 0o600)
    finally:
        os.close(dfd)
    return {"new_digest": guestscan.sha256(data) if data else None}


KEYGEN_TYPES = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "ecdsa-sha2-nistp384": "ecdsa",
                "ecdsa-sha2-nistp521": "ecdsa", "ssh-rsa": "rsa"}
OLD_SUFFIX = ".vmguard-old"
# ssh-keygen -b per key type: an ECDSA key keeps its curve (ssh-keygen makes P-256 without -b).
KEYGEN_BITS = {"ecdsa-sha2-nistp256": 256, "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521}
RSA_MIN_BITS = 3072  # an RSA key keeps its modulus size, never below ssh-keygen's default
PUB_LIMIT = 65536


def _rsa_bits(pub_line):
    """Modulus size of an ssh-rsa public key line (wire format: string type, mpint e, mpint n)."""
    blob = base64.b64decode(pub_line.split()[1])
    pos, fields = 0, []
    for _field in range(3):
        size = struct.unpack(">I", blob[pos:pos + 4])[0]
        fields.append(blob[pos + 4:pos + 4 + size])
        pos += 4 + size
    return int(binascii.hexlify(fields[2]), 16).bit_length()


def keygen_bits(ktype, pub_line):
    """The -b to give ssh-keygen for a new key of ``ktype`` replacing the key ``pub_line`` (None: no -b)."""
    if ktype == "ssh-rsa":
        try:
            return max(RSA_MIN_BITS, _rsa_bits(pub_line))
        except (IndexError, ValueError, TypeError, struct.error, binascii.Error):
            return RSA_MIN_BITS
    return KEYGEN_BITS.get(ktype)


def _key_entry(pub_file):
    """(directory under root, private key name) of a public key file such as /etc/ssh/ssh_host_ed25519_key.pub."""
    directory, pub = os.path.split(pub_file.lstrip("/"))
    if not pub.endswith(".pub") or pub == ".pub":
        raise ValueError("%s is not a public key file (*.pub)" % pub_file)
    return directory, pub[:-len(".pub")]


def _open_key_dirs(root, pub_files):
    """{directory: descriptor} of every key's directory, all opened (no link followed) before anything changes."""
    fds = {}
    try:
        for pub_file in pub_files:
            directory = _key_entry(pub_file)[0]
            if directory not in fds:
                fds[directory] = fsutil.open_dir_under(root, directory)
    except BaseException:
        fsutil.close_all(fds.values())
        raise
    return fds


def _keygen(label, ktype, run, bits=None):
    """(private key bytes, public key bytes) of a new key pair.

    ssh-keygen writes into a private directory (mkdtemp, 0700) of the system's temporary directory, never
    under root, so it resolves no path a link in the tree could redirect; the directory is removed."""
    work = tempfile.mkdtemp(prefix=".vmguard-keygen-")
    try:
        new = os.path.join(work, "key")
        args = ["ssh-keygen", "-q", "-t", ktype, "-N", "", "-C", "", "-f", new]
        if bits:
            args[4:4] = ["-b", str(bits)]
        rc, out, err = run(args)
        if rc != 0:
            raise RuntimeError("ssh-keygen for %s failed: %s" % (label, err.strip()))
        with open(new, "rb") as f:
            private = f.read()
        with open(new + ".pub", "rb") as f:
            public = f.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return private, public


def _rotate_key(root, dfd, directory, name, key, run):
    """Put a new key pair at ``name``/``name``.pub in ``dfd``; the old files are renamed to *.vmguard-old.

    The new key has the old one's type and size (ECDSA curve, RSA modulus); the old public key line is
    returned (old_public_key) so the controller can unpin it from known_hosts."""
    raw = fsutil.read_regular_at(dfd, name + ".pub", os.path.join(root, directory, name + ".pub"), PUB_LIMIT)
    old_pub = " ".join((raw or b"").decode("ascii", "replace").split()[:2]) or None
    private, public = _keygen(os.path.join(root, directory, name), KEYGEN_TYPES[key["type"]], run,
                              keygen_bits(key["type"], old_pub or ""))
    pub = " ".join(public.decode("ascii").split()[:2])
    made = [fsutil.write_new_at(dfd, name, private, 0o600)]
    moved = []  # old files renamed aside: put back if this key's rotation stops half way
    try:
        made.append(fsutil.write_new_at(dfd, name + ".pub", public, 0o644))
        for src in (name, name + ".pub"):
            if fsutil.lstat_at(dfd, src) is not None:
                os.replace(src, src + OLD_SUFFIX, src_dir_fd=dfd, dst_dir_fd=dfd)
                moved.append(src)
        os.replace(made[0], name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.replace(made[1], name + ".pub", src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        for tmp in made:
            fsutil.unlink_quietly(dfd, tmp)
        for src in moved:  # this key stays the old pair, whole
            os.replace(src + OLD_SUFFIX, src, src_dir_fd=dfd, dst_dir_fd=dfd)
        raise
    os.fsync(dfd)
    return {"type": key["type"], "file": key["file"], "old_fingerprint": key["fingerprint"],
            "new_fingerprint": guestscan.ssh_fingerprint(pub)[1], "new_public_key": pub, "old_public_key": old_pub}


def reseal_host_keys(root, keys, run, rotated=None):
    """Regenerate the given host keys in place (same types, same files). Returns per-key old/new
    fingerprints. Old key files are kept as *.vmguard-old until ``commit_host_keys``/``rollback``
    (renames replace directory entries: nothing is ever written through a link). A key directory
    that is, or lies below, a symbolic link is refused before anything changes.

    ``rotated``: a list each key's entry is appended to as soon as that key is rotated, so a caller
    still knows which keys are new (and which *.vmguard-old files exist) when a later key fails: the
    exception propagates, the failing key stays its old pair, whole."""
    for k in keys:
        if k["type"] not in KEYGEN_TYPES:
            raise ValueError("cannot regenerate host key type %s" % k["type"])
    fds = _open_key_dirs(root, [k["file"] for k in keys])
    out = [] if rotated is None else rotated
    try:
        for k in keys:
            directory, name = _key_entry(k["file"])
            out.append(_rotate_key(root, fds[directory], directory, name, k, run))
    finally:
        fsutil.close_all(fds.values())
    return out


def _old_names(rotated):
    """(directory, current name, kept old name) of every file a rotation kept aside."""
    for r in rotated:
        directory, name = _key_entry(r["file"])
        yield directory, name, name + OLD_SUFFIX
        yield directory, name + ".pub", name + ".pub" + OLD_SUFFIX


def _each_old(root, rotated, action):
    """``action(dfd, current, old)`` for every kept old file that exists, in directories opened without
    following a link (all of them before the first change)."""
    fds = _open_key_dirs(root, [r["file"] for r in rotated])
    try:
        for directory, cur, old in _old_names(rotated):
            if fsutil.lstat_at(fds[directory], old) is not None:
                action(fds[directory], cur, old)
        for fd in fds.values():
            os.fsync(fd)
    finally:
        fsutil.close_all(fds.values())


def _unlink_old(dfd, cur, old):
    os.unlink(old, dir_fd=dfd)


def _restore_old(dfd, cur, old):
    os.replace(old, cur, src_dir_fd=dfd, dst_dir_fd=dfd)


def commit_host_keys(root, rotated):
    """Remove the old keys a rotation kept (*.vmguard-old)."""
    _each_old(root, rotated, _unlink_old)


def rollback_host_keys(root, rotated):
    """Put the old keys a rotation kept back in place."""
    _each_old(root, rotated, _restore_old)
