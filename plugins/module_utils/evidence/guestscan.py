# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest evidence (standard library only; runs under the guest's Python, 3.6 and later).

Secrets never leave the guest: machine-id, random seed and password hashes are reduced to
SHA-256 digests (enough to compare across guests), SSH host keys to their public fingerprints.
Every reader takes a root path so tests run it on real trees built in a temporary directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import hashlib
import io
import json
import os
import re
import socket
import struct
import time

SYSCTLS = ("kernel.randomize_va_space", "kernel.kptr_restrict", "kernel.dmesg_restrict",
           "net.ipv4.ip_forward", "kernel.yama.ptrace_scope")
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


def _read(root, path, binary=False):
    try:
        with open(os.path.join(root, path.lstrip("/")), "rb" if binary else "r") as f:
            return f.read()
    except (IOError, OSError):
        return None


def sha256(data):
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def machine_id(root="/"):
    raw = _read(root, "/etc/machine-id")
    if raw is None:
        return dict(machine_id_state="missing", machine_id_digest=None)
    value = raw.strip()
    if not value or value == "uninitialized":
        return dict(machine_id_state="empty", machine_id_digest=None)
    dbus = _read(root, "/var/lib/dbus/machine-id")
    return dict(machine_id_state="set", machine_id_digest=sha256(value),
                dbus_machine_id_digest=sha256(dbus.strip()) if dbus and dbus.strip() else None)


def random_seed(root="/"):
    """Digest of the systemd random seed; a seed that exists but cannot be read is an error, not "no seed"."""
    path = os.path.join(root, "var/lib/systemd/random-seed")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (IOError, OSError) as e:
        if not os.path.lexists(path):
            return dict(random_seed_digest=None, random_seed_error=None)
        return dict(random_seed_digest=None, random_seed_error="cannot read /var/lib/systemd/random-seed: %s" % e)
    return dict(random_seed_digest=sha256(raw) if raw else None, random_seed_error=None)


def ssh_fingerprint(pub_line):
    """OpenSSH SHA256 fingerprint of a public key line ('type base64 [comment]')."""
    parts = pub_line.split()
    blob = base64.b64decode(parts[1])
    return parts[0], "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def ssh_host_keys(root="/"):
    """Host key fingerprints; [] when there is no /etc/ssh (no SSH server), None when a key cannot be read."""
    keys, err = read_ssh_host_keys(root)
    return None if err else keys


def read_ssh_host_keys(root="/"):
    """(keys, error): an unreadable /etc/ssh or key file is an error, never "no keys" (DIV-02, RB-06)."""
    d = os.path.join(root, "etc/ssh")
    keys = []
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        if not os.path.lexists(d):
            return [], None
        return None, "cannot list /etc/ssh: %s" % e
    for n in names:
        if n.startswith("ssh_host_") and n.endswith("_key.pub"):
            line = _read(root, "/etc/ssh/" + n)
            if line is None:
                return None, "cannot read /etc/ssh/%s" % n
            if line.strip():
                try:
                    ktype, fp = ssh_fingerprint(line.strip())
                except (IndexError, ValueError, TypeError):
                    return None, "/etc/ssh/%s is not an OpenSSH public key" % n
                keys.append(dict(type=ktype, fingerprint=fp, file="/etc/ssh/" + n))
    return keys, None


def _read_required(root, path):
    """(text, None) of a file; (None, "") when it does not exist; (None, why) when it exists but cannot be read."""
    full = os.path.join(root, path.lstrip("/"))
    try:
        with io.open(full, "r", encoding="utf-8", errors="replace") as f:
            return f.read(), None
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT:
            return None, ""
        return None, "%s exists but cannot be read: %s" % (path, e.strerror or e)


def read_accounts(root="/", today=None):
    """(accounts, None), or (None, why) when /etc/passwd is missing or unreadable or /etc/shadow exists but
    cannot be read (without shadow every account would look password-locked and no hash could be compared)."""
    passwd, why = _read_required(root, "/etc/passwd")
    if passwd is None:
        return None, why or "/etc/passwd does not exist"
    shadow_text, why = _read_required(root, "/etc/shadow")
    if why:
        return None, why
    return _accounts(passwd, shadow_text or "", today), None


def accounts(root="/", today=None):
    """Accounts with lock state and a digest of their crypt string (never the string itself); None when
    they cannot be read (read_accounts says why)."""
    return read_accounts(root, today)[0]


def _accounts(passwd, shadow_text, today=None):
    today = int(time.time() // 86400) if today is None else today
    shadow = {}
    for line in shadow_text.splitlines():
        f = line.split(":")
        if len(f) >= 8:
            shadow[f[0]] = f
    out = []
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) < 7 or not f[2].isdigit():
            continue
        name, uid, shell = f[0], int(f[2]), f[6]
        s = shadow.get(name)
        pw = s[1] if s else f[1]
        expire = s[7] if s and len(s) > 7 else ""
        password_locked = pw.startswith(("!", "*")) or pw == "x"
        expired = expire.isdigit() and int(expire) <= today
        real_hash = pw.startswith("$") and not password_locked
        out.append(dict(
            name=name, uid=uid, shell=shell,
            password_locked=password_locked,
            empty_password=(pw == ""),
            expired=expired,
            locked=(password_locked or expired) and (expired or shell in NOLOGIN_SHELLS),
            hash_digest=sha256(pw) if real_hash else None,
        ))
    return out


def _decode_addr(hexaddr, v6):
    if not v6:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))
    raw = b"".join(struct.pack("<I", int(hexaddr[i:i + 8], 16)) for i in range(0, 32, 8))
    return socket.inet_ntop(socket.AF_INET6, raw)


def socket_pids(root="/"):
    """{socket inode: sorted [pid]} over every process's open descriptors (/proc/<pid>/fd links)."""
    owners = {}
    proc = os.path.join(root, "proc")
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:[") and target.endswith("]"):
                owners.setdefault(target[8:-1], set()).add(int(pid))
    return dict((k, sorted(v)) for k, v in owners.items())


def _socket_owners(root="/"):
    """{socket inode: the process name of its lowest pid}."""
    return dict((inode, (_read(root, "/proc/%d/comm" % pids[0]) or "?").strip())
                for inode, pids in socket_pids(root).items())


def listening(root="/"):
    """TCP sockets in LISTEN and bound UDP sockets, with the owning process name."""
    owners = _socket_owners(root)
    out = []
    for proto, v6 in (("tcp", False), ("tcp6", True), ("udp", False), ("udp6", True)):
        text = _read(root, "/proc/net/" + proto)
        if not text:
            continue
        for line in text.splitlines()[1:]:
            f = line.split()
            if len(f) < 10:
                continue
            local, state, inode = f[1], f[3], f[9]
            if proto.startswith("tcp") and state != "0A":
                continue
            if proto.startswith("udp") and state != "07":
                continue
            addr, port = local.rsplit(":", 1)
            out.append(dict(proto=proto.rstrip("6"), address=_decode_addr(addr, v6), port=int(port, 16),
                            process=owners.get(inode)))
    return sorted(out, key=lambda s: (s["proto"], s["port"], s["address"]))


def packages(root="/"):
    out = {}
    text = _read(root, "/var/lib/dpkg/status") or ""
    for para in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", para, re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields and "Version" in fields:
            out[fields["Package"]] = fields["Version"]
    return out


def sysctls(root="/", keys=SYSCTLS):
    out = {}
    for k in keys:
        v = _read(root, "/proc/sys/" + k.replace(".", "/"))
        out[k] = v.strip() if v is not None else None
    return out


def epoch(path, root="/"):
    """(epoch, error) from the guest's epoch file: (None, None) when there is none; an unreadable or
    malformed file is an error, so a damaged file never reads as "rolled back to before hardening"."""
    data = json_file(root, path)
    if data is None:
        full = os.path.join(root, path.lstrip("/"))
        return None, ("cannot read %s" % path) if os.path.lexists(full) else None
    if not isinstance(data, dict) or "error" in data:
        return None, "%s: %s" % (path, data.get("error") if isinstance(data, dict) else "not a JSON object")
    value = data.get("epoch")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None, "%s: epoch is not a non-negative integer: %r" % (path, value)
    return value, None


def json_file(root, path):
    raw = _read(root, path)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": "unparsable %s" % path}


def firewall(nft_json, management=None):
    """The `firewall` evidence of an `nft -j list ruleset` document: digest and the inbound posture decided
    semantically by module_utils/nftables.py (which NEW connections to which ports are accepted from a
    non-management source). `management` lists management source CIDRs (none by default). Never raises:
    output that is not an nft JSON ruleset gives {"error": ..., "digest": None, ...}."""
    # Imported here so this file also loads on its own (tests run it standalone as an unprivileged user).
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables
    return nftables.evaluate_text(nft_json, management)


def vmgenid(root="/"):
    d = os.path.join(root, "sys/bus/acpi/drivers/vmgenid")
    try:
        return any(n.startswith("QEMUVGID") for n in os.listdir(d))
    except OSError:
        return False
