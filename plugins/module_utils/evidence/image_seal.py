# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DIV-06: what a sealed golden image must not contain, checked on a root file system tree.

Pure standard-library code (no Ansible imports): used by the image_seal module at build time,
and by unit tests on synthetic trees. Every item names the rule, the path and why it matters.
Sources: virt-sysprep(1) OPERATIONS, machine-id(5), systemd RANDOM_SEEDS.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import json
import os
import shutil
import stat
import tempfile

# (category, glob relative to the root, action, reason)
#   action "remove": the path must not exist
#   action "empty": the file must exist and be empty (machine-id: empty means "first boot")
#   action "truncate": may exist, must be empty (log files keep their owner and mode)
SEAL_ITEMS = (
    ("machine-id", "etc/machine-id", "empty",
     "a shared machine-id makes clones indistinguishable to systemd, journald and DHCP"),
    ("machine-id", "var/lib/dbus/machine-id", "remove",
     "the D-Bus copy of the machine-id must not survive the seal (or must link to /etc/machine-id)"),
    ("ssh-host-key", "etc/ssh/ssh_host_*", "remove",
     "SSH host keys baked into an image are shared by every clone (DIV-02)"),
    ("random-seed", "var/lib/systemd/random-seed", "remove",
     "a shared random seed gives clones the same initial entropy (DIV-04)"),
    ("random-seed", "var/lib/systemd/credential.secret", "remove",
     "the systemd credential secret must be generated per machine"),
    ("builder-key", "root/.ssh/*", "remove",
     "keys or authorized_keys of the builder must not reach guests"),
    ("builder-key", "home/*/.ssh/*", "remove",
     "keys or authorized_keys of the builder must not reach guests"),
    ("builder-key", "etc/ssl/private/*", "remove",
     "private TLS keys (e.g. the snakeoil certificate) would be shared by every clone"),
    ("history", "root/.*_history", "remove", "shell and tool histories leak what the builder did"),
    ("history", "home/*/.*_history", "remove", "shell and tool histories leak what the builder did"),
    ("history", "root/.lesshst", "remove", "shell and tool histories leak what the builder did"),
    ("history", "root/.viminfo", "remove", "shell and tool histories leak what the builder did"),
    ("lease", "var/lib/dhcp/*", "remove", "DHCP leases carry the builder's addresses and client ids"),
    ("lease", "var/lib/dhcpcd/*", "remove", "DHCP leases carry the builder's addresses and client ids"),
    ("lease", "var/lib/NetworkManager/*.lease", "remove",
     "DHCP leases carry the builder's addresses and client ids"),
    ("lease", "var/lib/systemd/network/*", "remove", "networkd state carries the builder's leases"),
    ("log", "var/log/journal/*", "remove", "journals carry the builder's machine-id and activity"),
    ("log", "var/log/**", "truncate", "logs carry the builder's activity"),
    ("secret", "var/cache/debconf/passwords.dat", "truncate", "debconf may keep passwords given at build"),
    ("temp", "tmp/*", "remove", "temporary files of the build"),
    ("temp", "var/tmp/*", "remove", "temporary files of the build"),
)


_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))
_FILE_FLAGS = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _expand(root, pattern):
    """Expand a glob relative to root without ever following a symbolic link.

    '**' matches any depth below its directory. A symbolic link met where the pattern needs a
    directory (root/.ssh -> /elsewhere for root/.ssh/*, var/log -> /elsewhere for var/log/**) is
    returned itself - nothing below it is looked at - so the caller reports and removes the link.
    Returns sorted relative paths.
    """
    parts = pattern.split("/")
    results = []

    def descend(rel, idx):
        """rel matched parts[idx - 1]; go on below it if it is a real directory."""
        if idx == len(parts):
            results.append(rel)
            return
        st = _lstat(os.path.join(root, rel))
        if st is None:
            return
        if stat.S_ISLNK(st.st_mode):
            results.append(rel)  # a link where a directory is needed: reported, never followed
        elif stat.S_ISDIR(st.st_mode):
            walk(rel, idx)

    def walk_all(base_rel):
        stack = [base_rel]
        while stack:
            d = stack.pop()
            try:
                names = os.listdir(os.path.join(root, d) if d else root)
            except OSError:
                continue
            for name in names:
                rel = os.path.join(d, name) if d else name
                st = _lstat(os.path.join(root, rel))
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(rel)
                else:  # files, links (to files or directories), FIFOs, devices: never entered
                    results.append(rel)

    def walk(base_rel, idx):
        part = parts[idx]
        if part == "**":
            walk_all(base_rel)
            return
        if not any(c in part for c in "*?["):
            rel = os.path.join(base_rel, part) if base_rel else part
            if idx + 1 == len(parts):
                if _lstat(os.path.join(root, rel)) is not None:
                    results.append(rel)
                return
            descend(rel, idx + 1)
            return
        try:
            names = sorted(os.listdir(os.path.join(root, base_rel) if base_rel else root))
        except OSError:
            return
        for name in names:
            if fnmatch.fnmatchcase(name, part):
                descend(os.path.join(base_rel, name) if base_rel else name, idx + 1)

    walk("", 0)
    return sorted(set(results))


def _size(path):
    """Size of a regular file; None for anything else (a link is never followed)."""
    st = _lstat(path)
    if st is not None and stat.S_ISREG(st.st_mode):
        return st.st_size
    return None


def _link_finding(category, root, rel, reason):
    try:
        target = os.readlink(os.path.join(root, rel))
    except OSError:
        target = "?"
    return dict(category=category, path="/" + rel, action="remove",
                reason="symbolic link to %s: the seal never follows a link out of the image, it removes "
                       "the link (%s)" % (target, reason))


def _check_one(root, category, pattern, action, rel, reason):
    """The finding for one expanded path, or None when it is fine."""
    full = os.path.join(root, rel)
    st = _lstat(full)
    if st is None:
        return None
    is_link = stat.S_ISLNK(st.st_mode)
    if is_link and category == "machine-id" and rel == pattern and action == "remove":
        if os.readlink(full) in ("/etc/machine-id", "../../../etc/machine-id"):
            return None
    if is_link and (rel != pattern or action != "empty"):
        return _link_finding(category, root, rel, reason)
    if action == "empty":
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            return None
        return dict(category=category, path="/" + rel, action="empty", reason=reason)
    if action == "truncate":
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                return None
            return dict(category=category, path="/" + rel, action="remove",
                        reason="not a regular file, removed (%s)" % reason)
        if st.st_size == 0:
            return None
    return dict(category=category, path="/" + rel, action=action, reason=reason)


def check_tree(root):
    """Return the list of seal violations in the root file system tree at ``root``.

    Each violation is a dict: category, path (absolute inside the image, e.g. /etc/machine-id),
    action (what sealing does about it) and reason. Symbolic links inside the tree are never
    followed: a link where the seal looks (a file or any directory on the way to it) is itself a
    violation, removed as a link.
    """
    if not os.path.isdir(root):
        raise ValueError("%s is not a directory" % root)
    found = []
    seen = set()
    removed = []  # directories and links queued for removal: nothing below them is listed again
    for category, pattern, action, reason in SEAL_ITEMS:
        paths = _expand(root, pattern)
        if action == "empty" and not paths:
            found.append(dict(category=category, path="/" + pattern, action="create-empty",
                              reason="missing: " + reason))
            continue
        for rel in paths:
            if rel in seen or any(rel.startswith(r + "/") for r in removed):
                continue
            item = _check_one(root, category, pattern, action, rel, reason)
            if item is None:
                continue
            found.append(item)
            seen.add(rel)
            if item["action"] == "remove":
                removed.append(rel)
    return found


# Offline audit of an image file: the paths the seal covers, pulled out of an ext4 file system
# with debugfs (no mount, no boot), into a temporary tree that check_tree() reads.
IMAGE_FILES = ("etc/machine-id", "var/lib/dbus/machine-id", "var/lib/systemd/random-seed",
               "var/lib/systemd/credential.secret", "var/cache/debconf/passwords.dat")
IMAGE_DIRS = ("etc/ssh", "etc/ssl/private", "root", "home", "var/lib/dhcp", "var/lib/dhcpcd",
              "var/lib/NetworkManager", "var/lib/systemd/network", "var/log", "tmp", "var/tmp")


def debugfs_script(dest):
    """debugfs commands that copy the seal-relevant paths of an image into ``dest``.

    Files too are copied with 'rdump', never 'dump': rdump recreates a symbolic link as a link
    (with the target text it has in the image, never resolved on the host), a directory as a
    directory and a regular file as a file, so check_tree() judges what the image holds. 'dump'
    writes a link as an empty regular file, which passed /etc/machine-id -> a fixed ID and failed
    a correct /var/lib/dbus/machine-id -> /etc/machine-id.
    """
    cmds = []
    for f in IMAGE_FILES:
        cmds.append("rdump /%s %s/%s" % (f, dest, os.path.dirname(f)))
    for d in IMAGE_DIRS:
        parent = os.path.dirname(d)
        cmds.append("rdump /%s %s/%s" % (d, dest, parent) if parent else "rdump /%s %s" % (d, dest))
    return cmds


_NOT_FOUND = ": File not found by ext2_lookup"


def debugfs_errors(err):
    """The lines of debugfs' error output that are real errors, not an absent path.

    debugfs -f exits 0 whatever its commands did: its error output is the only sign. Expected
    there: the version banner and "<path>: File not found by ext2_lookup" for a seal path the
    image does not have (a sealed image has no host keys, no random seed...). Anything else
    (a damaged inode, a directory that cannot be made, a short read) means the tree is not what
    the image holds, so the check would judge something else.
    """
    wanted = set("/" + p for p in IMAGE_FILES + IMAGE_DIRS)
    bad = []
    for line in err.splitlines():
        text = line.strip()
        if not text or (text.startswith("debugfs ") and text.endswith(")")):
            continue
        if text.endswith(_NOT_FOUND.strip()) and text[:-len(_NOT_FOUND.strip())].rstrip(": ") in wanted:
            continue
        bad.append(text)
    return bad


def prepare_dest(dest):
    for f in IMAGE_FILES:
        p = os.path.join(dest, os.path.dirname(f))
        if not os.path.isdir(p):
            os.makedirs(p)
    for d in IMAGE_DIRS:
        p = os.path.join(dest, os.path.dirname(d))
        if not os.path.isdir(p):
            os.makedirs(p)


class ImageError(Exception):
    """An image file that cannot be read offline; str() says why (no "DIV-06:" prefix)."""


def _json_format(out):
    try:
        info = json.loads(out)
    except ValueError:
        return None
    return info.get("format") if isinstance(info, dict) else None


def extract_image(image, work, run, qemu_img="qemu-img", debugfs="debugfs", fmt=None):
    """Copy the seal-relevant paths of an image file into work/tree, read-only; returns the tree.

    ``run(argv)`` returns (rc, stdout, stderr) (AnsibleModule.run_command in modules). ``fmt``
    pins the image format (no probing); None lets qemu-img probe (an administrator-named file).
    qcow2 and other formats are converted to a sparse raw file in ``work`` (a private directory).
    Raises ImageError.
    """
    pin = ["-f", fmt] if fmt else []
    rc, out, err = run([qemu_img, "info"] + pin + ["--output=json", image])
    if rc != 0 and "lock" in err:
        # A running QEMU keeps qcow2 metadata in memory: a shared read would see stale data.
        raise ImageError("%s is in use by a running guest; audit images at rest (%s)" % (image, err.strip()))
    if rc != 0:
        raise ImageError("%s is not a readable disk image: %s" % (image, err.strip()))
    fmt = _json_format(out)
    raw = image
    if fmt != "raw":
        raw = os.path.join(work, "image.raw")
        rc, out, err = run([qemu_img, "convert"] + (["-f", fmt] if fmt else []) + ["-O", "raw", image, raw])
        if rc != 0:
            raise ImageError("cannot read %s (%s): %s" % (image, fmt, err.strip()))
    rc, out, err = run([debugfs, "-R", "stats", raw])
    if rc != 0 or "Filesystem magic number" not in out:
        raise ImageError("%s holds no ext2/3/4 file system at offset 0 (partitioned images are not "
                         "supported offline; audit the unpacked tree instead)" % image)
    tree = os.path.join(work, "tree")
    os.makedirs(tree)
    prepare_dest(tree)
    script = os.path.join(work, "extract.debugfs")
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(debugfs_script(tree)) + "\n")
    rc, out, err = run([debugfs, "-f", script, raw])
    errors = debugfs_errors(err)
    if rc != 0 or errors:
        raise ImageError("debugfs failed on %s: %s" % (image, "; ".join(errors) or err.strip()))
    return tree


def verify_image(image, run, work_dir=None, qemu_img="qemu-img", debugfs="debugfs", fmt=None):
    """Offline seal check of an image file, read-only: the list of check_tree() findings.

    The raw copy and the extracted tree live in a private directory (mkdtemp, mode 0700) under
    ``work_dir`` (default: the system temporary directory), removed before returning.
    Raises ImageError when the image cannot be read.
    """
    work = tempfile.mkdtemp(prefix="vmguard-seal-", dir=work_dir)
    try:
        return check_tree(extract_image(image, work, run, qemu_img=qemu_img, debugfs=debugfs, fmt=fmt))
    finally:
        shutil.rmtree(work, ignore_errors=True)
