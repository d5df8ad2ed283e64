# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hypervisor host evidence from the local file system and /proc (standard library only):
libvirt configuration files, sockets, QEMU processes, image files and directories."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import stat

LIBVIRT_TCP_PORTS = (16509, 16514)
DEFAULT_IMAGE_DIRS = ("/var/lib/libvirt/images", "/var/lib/libvirt/qemu/save",
                      "/var/lib/libvirt/qemu/snapshot", "/var/lib/libvirt/qemu/dump")
SOCKETS = ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock",
           "/run/libvirt/libvirt-sock-ro", "/run/libvirt/virtqemud-sock-ro")


def parse_libvirt_conf(text):
    """Parse libvirt's key = value configuration (strings, integers, lists); comments skipped."""
    out = {}
    for m in re.finditer(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^#\n]+)', text, re.M):
        key, raw = m.group(1), m.group(2).strip()
        if raw.startswith('"'):
            out[key] = raw[1:-1]
        elif raw.startswith("["):
            out[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', raw)
        else:
            out[key] = raw
    return out


def read_conf(path):
    try:
        with open(path) as f:
            return parse_libvirt_conf(f.read())
    except (IOError, OSError):
        return None


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except (IOError, OSError):
        return None


def processes():
    """(pid, uid, argv) of every process we can read."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        argv = _cmdline(pid)
        if not argv:
            continue
        try:
            uid = os.stat("/proc/%s" % pid).st_uid
        except OSError:
            continue
        yield int(pid), uid, argv


def qemu_processes(procs):
    out = []
    for pid, uid, argv in procs:
        if not os.path.basename(argv[0]).startswith(("qemu-system", "qemu-kvm")):
            continue
        name = uuid = None
        for i, a in enumerate(argv[:-1]):
            if a == "-name":
                v = argv[i + 1]
                m = re.search(r"(?:^|,)guest=((?:[^,]|,,)*)", v)
                name = (m.group(1) if m else v.split(",")[0]).replace(",,", ",")
            elif a == "-uuid":
                uuid = argv[i + 1].lower()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        out.append(dict(pid=pid, user=user, name=name, uuid=uuid))
    return out


def watcher(procs, marker="vmguard-revert-watcher"):
    for pid, uid, argv in procs:
        if any(marker in a for a in argv):
            return dict(running=True, pid=pid)
    return dict(running=False, pid=None)


def libvirt_tcp_listeners(paths=("/proc/net/tcp", "/proc/net/tcp6")):
    found = []
    for p in paths:
        try:
            with open(p) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, st = parts[1], parts[3]
                    port = int(local.rsplit(":", 1)[1], 16)
                    if st == "0A" and port in LIBVIRT_TCP_PORTS:
                        found.append("%s:%d" % ("tcp6" if p.endswith("6") else "tcp", port))
        except (IOError, OSError, StopIteration):
            continue
    return sorted(set(found))


def sockets(paths=SOCKETS):
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.append(dict(path=p, mode=stat.S_IMODE(st.st_mode), rw=not p.endswith("-ro")))
    return out


def scan_images(dirs):
    """Mode and owner of every regular file directly in ``dirs``, and of the dirs themselves."""
    images, seen_dirs = [], []
    for d in sorted(set(dirs)):
        try:
            st = os.stat(d)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        seen_dirs.append(dict(path=d, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid))
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                fst = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(fst.st_mode):
                images.append(dict(path=p, mode=stat.S_IMODE(fst.st_mode), uid=fst.st_uid, gid=fst.st_gid,
                                   size=fst.st_size))
    return images, seen_dirs


def lsm_state():
    return dict(apparmor=os.path.exists("/sys/kernel/security/apparmor"),
                selinux=os.path.exists("/sys/fs/selinux/enforce"),
                securityfs=os.path.isdir("/sys/kernel/security") and bool(os.listdir("/sys/kernel/security"))
                if os.path.isdir("/sys/kernel/security") else False)


def group_gid(name):
    if not name:
        return None
    try:
        return grp.getgrnam(name.lstrip("+")).gr_gid
    except (KeyError, ValueError):
        return None
