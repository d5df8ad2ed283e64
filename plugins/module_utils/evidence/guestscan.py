# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest evidence (standard library only; runs under the guest's Python, 3.6 and later).

Secrets never leave the guest: machine-id, random seed and password hashes are reduced to
SHA-256 digests (enough to compare across guests), SSH host keys to their public fingerprints.
Every reader takes a root path so tests run it on real trees built in a temporary directory.

Files are opened without following a final symbolic link and without blocking (a FIFO or device is refused, never
read): on an offline image (identity_reseal's plan) a planted link such as img/etc/machine-id -> /etc/shadow would
otherwise be read from the host. Under a root that is not the guest's own / (an offline image), every directory
below the root is opened one component at a time without following a link either (fsutil.open_dir_under): an
image whose etc links to the host's /etc is refused, never read. A file that exists but cannot be read is
reported as such, never as "missing".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import socket
import stat
import struct
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

SYSCTLS = ("kernel.randomize_va_space", "kernel.kptr_restrict", "kernel.dmesg_restrict",
           "net.ipv4.ip_forward", "kernel.yama.ptrace_scope")


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
READ_LIMIT = 64 * 1024 * 1024  # no evidence file is near this (dpkg status: a few MiB); a bigger one is refused


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(full, path, dir_fd=None):
    """(descriptor, None) of the regular file ``full`` (a name in ``dir_fd`` when given); (None, None) when it does
    not exist; (None, why) when it exists but is refused or cannot be opened. A final symbolic link is never
    followed (O_NOFOLLOW: ELOOP)."""
    try:
        fd = os.open(full, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None, None
        if e.errno == errno.ELOOP:
            return None, "%s is a symbolic link: not followed" % path
        return None, "%s exists but cannot be read: %s" % (path, e.strerror or e)
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        return None, "%s exists but cannot be read: %s" % (path, e.strerror or e)
    if not stat.S_ISREG(mode):
        os.close(fd)
        return None, "%s exists but cannot be read: it is %s" % (path, _kind(mode))
    return fd, None


def _read_fd(fd, path):
    """(bytes, None) of an open file, at most READ_LIMIT (proc files report size 0: read to the end)."""
    chunks, total = [], 0
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks), None
            total += len(chunk)
            if total > READ_LIMIT:
                return None, "%s exists but cannot be read: larger than %d bytes" % (path, READ_LIMIT)
            chunks.append(chunk)
    except OSError as e:
        return None, "%s exists but cannot be read: %s" % (path, e.strerror or e)
    finally:
        os.close(fd)


def _read_file(root, path, binary=False):
    """(content, None) of the regular file root/``path``; (None, None) when it does not exist; (None, why) when it
    exists but cannot be read, is a symbolic link (never followed), a directory, a FIFO or a device. Text is
    decoded as UTF-8 (undecodable bytes replaced)."""
    if _offline(root):
        fd, why = _open_under(root, path)
    else:
        fd, why = _open_regular(os.path.join(root, path.lstrip("/")), path)
    if fd is None:
        return None, why
    data, why = _read_fd(fd, path)
    if data is None or binary:
        return data, why
    return data.decode("utf-8", "replace"), None


def _offline(root):
    """Whether ``root`` is an image's tree rather than this system's own /."""
    return os.path.realpath(root) != "/"


def _dir_under(root, directory, path):
    """(descriptor of root/``directory``, None), (None, None) when it does not exist, (None, why) when a component
    is a symbolic link (never followed out of the image) or cannot be opened."""
    try:
        return fsutil.open_dir_under(root, directory, missing_ok=True), None
    except (OSError, ValueError) as e:  # LinkRefusedError and UnsafePathError are ValueErrors
        return None, "%s cannot be read: %s" % (path, e)


def _open_under(root, path):
    """_open_regular of root/``path`` with every directory below ``root`` opened without following a link."""
    directory, name = os.path.split(path.strip("/"))
    dfd, why = _dir_under(root, directory, path)
    if dfd is None:
        return None, why
    try:
        return _open_regular(name, path, dir_fd=dfd)
    finally:
        os.close(dfd)


def _read(root, path, binary=False):
    """The content of root/``path`` (see _read_file), None when it is missing or cannot be read."""
    return _read_file(root, path, binary)[0]


def sha256(data):
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


MACHINE_ID = "/etc/machine-id"
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"


def machine_id(root="/"):
    """machine_id_state "set" (with its digest), "empty" (uninitialized), "missing", or "unreadable" (with
    machine_id_error: it exists but cannot be read, or is a symbolic link, which is not followed)."""
    raw, why = _read_file(root, MACHINE_ID)
    if why:
        return dict(machine_id_state="unreadable", machine_id_digest=None, machine_id_error=why)
    if raw is None:
        return dict(machine_id_state="missing", machine_id_digest=None)
    value = raw.strip()
    if not value or value == "uninitialized":
        return dict(machine_id_state="empty", machine_id_digest=None)
    digest = sha256(value)
    return dict(machine_id_state="set", machine_id_digest=digest, dbus_machine_id_digest=_dbus_digest(root, digest))


def _dbus_digest(root, mid_digest):
    """Digest of the D-Bus machine-id: the machine-id's own when it is a symbolic link to /etc/machine-id (as
    Debian installs it; the link is read, not followed), None when missing, empty, unreadable or linked elsewhere."""
    full = os.path.join(root, DBUS_MACHINE_ID.lstrip("/"))
    try:
        target = os.readlink(full)
    except OSError:
        target = None
    if target is not None:
        here = os.path.dirname(DBUS_MACHINE_ID)
        return mid_digest if os.path.normpath(os.path.join(here, target)) == MACHINE_ID else None
    dbus = _read(root, DBUS_MACHINE_ID)
    return sha256(dbus.strip()) if dbus and dbus.strip() else None


def random_seed(root="/"):
    """Digest of the systemd random seed; a seed that exists but cannot be read (or is a symbolic link, not
    followed) is an error, not "no seed"."""
    raw, why = _read_file(root, "/var/lib/systemd/random-seed", binary=True)
    if why:
        return dict(random_seed_digest=None, random_seed_error="cannot read /var/lib/systemd/random-seed: %s" % why)
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


def _list_dir(root, directory):
    """os.listdir of root/``directory`` (under an image's root, reached without following a link)."""
    if not _offline(root):
        return os.listdir(os.path.join(root, directory))
    dfd = fsutil.open_dir_under(root, directory)
    try:
        return os.listdir(dfd)
    finally:
        os.close(dfd)


def read_ssh_host_keys(root="/"):
    """(keys, error): an unreadable /etc/ssh or key file is an error, never "no keys" (DIV-02, RB-06).

    Fingerprints come from the public key files (ssh_host_*_key.pub). sshd needs only the private key, so a
    private host key without its .pub is a key in use whose fingerprint cannot be read here (this reader runs
    no ssh-keygen): an error naming it, never a guest with fewer (or no) keys. An empty (or blank) .pub beside a
    private key is the same: it hid a shared private key from DIV-02."""
    d = os.path.join(root, "etc/ssh")
    keys = []
    try:
        names = sorted(_list_dir(root, "etc/ssh"))
    except OSError as e:
        if not os.path.lexists(d) or e.errno == errno.ENOENT:
            return [], None
        return None, "cannot list /etc/ssh: %s" % e
    except ValueError as e:  # a linked directory in an image (fsutil.LinkRefusedError)
        return None, "cannot list /etc/ssh: %s" % e
    unpaired = [n for n in names if n.startswith("ssh_host_") and n.endswith("_key") and n + ".pub" not in names]
    if unpaired:
        return None, "%s without %s: its fingerprint cannot be read (regenerate the .pub with ssh-keygen -y -f)" % (
            ", ".join("/etc/ssh/" + n for n in unpaired), "a public key file" if len(unpaired) > 1 else "its .pub")
    pubs = ["/etc/ssh/" + n for n in names if n.startswith("ssh_host_") and n.endswith("_key.pub")]
    configured, why = configured_host_keys(root)
    if why:
        return None, why
    for key in configured:  # HostKey in sshd_config: sshd serves these (the ones that exist), wherever they are
        if key + ".pub" not in pubs and (_exists(root, key) or _exists(root, key + ".pub")):
            pubs.append(key + ".pub")
    for pub in pubs:
        line, why = _read_file(root, pub)
        if line is None:
            if why is None and pub[:-len(".pub")] in configured:
                return None, "%s (a HostKey of sshd_config) has no %s: its fingerprint cannot be read (regenerate the " \
                    ".pub with ssh-keygen -y -f)" % (pub[:-len(".pub")], pub)
            return None, "cannot read %s: %s" % (pub, why or "it vanished while /etc/ssh was read")
        if not line.strip():
            if os.path.basename(pub[:-len(".pub")]) in names or pub[:-len(".pub")] in configured:
                # sshd serves the private key: as if the .pub were missing
                return None, "%s is empty beside its private key %s: its fingerprint cannot be read (regenerate the " \
                    ".pub with ssh-keygen -y -f)" % (pub, pub[:-len(".pub")])
            continue  # a stray empty .pub and no key: nothing served
        try:
            ktype, fp = ssh_fingerprint(line.strip())
        except (IndexError, ValueError, TypeError):
            return None, "%s is not an OpenSSH public key" % pub
        keys.append(dict(type=ktype, fingerprint=fp, file=pub))
    return keys, None


SSHD_CONFIG = "/etc/ssh/sshd_config"


def _exists(root, path):
    """Whether root/``path`` exists (any file type; a link is not followed, nor is one below ``root``)."""
    directory, name = os.path.split(path.strip("/"))
    try:
        dfd = fsutil.open_dir_under(root, directory, missing_ok=True)
    except (OSError, ValueError):
        return True  # it cannot be told: read it, and let that say why
    if dfd is None:
        return False
    try:
        return fsutil.lstat_at(dfd, name) is not None
    finally:
        os.close(dfd)


def configured_host_keys(root="/"):
    """([path], None): the HostKey files sshd_config names (its Include files followed, as sshd reads them: a relative
    pattern under /etc/ssh, the matches in name order), normalised; ([], None) without sshd_config or HostKey;
    (None, why) when a configuration file exists but cannot be read (a key sshd serves could hide there). sshd serves
    exactly these when there is one; the keys in /etc/ssh are compared too (a superset: a stray file fails, never a
    served key passes unseen)."""
    keys, seen = [], set()
    why = _sshd_config_keys(root, SSHD_CONFIG, keys, seen, 0)
    return (None, why) if why else (keys, None)


def _sshd_config_keys(root, path, keys, seen, depth):
    """Add the HostKey paths of sshd configuration file ``path`` (and of its Include files) to ``keys``; why it cannot be
    read, else None."""
    if path in seen or depth > 16:
        return None  # sshd refuses an include loop; nothing more to read here
    seen.add(path)
    text, why = _read_file(root, path)
    if text is None:
        return "cannot read %s: %s" % (path, why) if why else None
    for line in text.splitlines():
        words = line.split("#", 1)[0].replace("=", " ", 1).split()
        if len(words) < 2:
            continue
        keyword = words[0].lower()
        if keyword == "hostkey":
            key = os.path.normpath(os.path.join("/etc/ssh", words[1].strip('"')))
            if key not in keys:
                keys.append(key)
        elif keyword == "include":
            for pattern in words[1:]:
                for match in _glob(root, os.path.join("/etc/ssh", pattern.strip('"'))):
                    why = _sshd_config_keys(root, match, keys, seen, depth + 1)
                    if why:
                        return why
    return None


def _glob(root, pattern):
    """The files matching an Include ``pattern`` (wildcards in its last component only, as Debian's
    sshd_config.d/*.conf), in name order."""
    directory, base = os.path.split(os.path.normpath(pattern))
    if not any(c in base for c in "*?["):
        return [os.path.join(directory, base)]
    try:
        names = _list_dir(root, directory.lstrip("/"))
    except (OSError, ValueError):
        return []
    return [os.path.join(directory, n) for n in sorted(names) if fnmatch.fnmatchcase(n, base)]


def _read_required(root, path):
    """(text, None) of a file; (None, "") when it does not exist; (None, why) when it exists but cannot be read
    (or is a symbolic link: not followed)."""
    text, why = _read_file(root, path)
    if text is None:
        return None, why or ""
    return text, None


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
    """One entry per account name, from its FIRST /etc/passwd and /etc/shadow lines: glibc's getpwnam and
    getspnam (login, sshd, su) stop at the first match, so a later line of the same name is never what a
    login uses. An account with more than one line of a name says so (``duplicate_lines``: the files and
    how many lines were ignored) - a planted second line must not decide whether it is locked."""
    today = int(time.time() // 86400) if today is None else today
    shadow, extra = {}, {}
    for line in shadow_text.splitlines():
        f = line.split(":")
        if len(f) >= 8:
            if f[0] in shadow:
                _count(extra, f[0], "shadow")
                continue
            shadow[f[0]] = f
    out, seen = [], {}
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) < 7 or not f[2].isdigit():
            continue
        if f[0] in seen:
            _count(extra, f[0], "passwd")
            continue
        name, uid, shell = f[0], int(f[2]), f[6]
        s = shadow.get(name)
        pw = s[1] if s else f[1]
        expire = s[7] if s and len(s) > 7 else ""
        password_locked = pw.startswith(("!", "*")) or pw == "x"
        expired = expire.isdigit() and int(expire) <= today
        out.append(dict(
            name=name, uid=uid, shell=shell,
            password_locked=password_locked,
            empty_password=(pw == ""),
            expired=expired,
            # Only an expired account is closed to every way in: sshd with UsePAM (Debian's default) lets a key in past
            # a locked password, and a nologin shell still allows "ssh -N" port forwarding; pam_unix refuses an
            # expired account whatever the method (the guest role's re-lock sets expiry day 1).
            locked=expired,
            hash_digest=sha256(pw) if crypt_string(pw) else None,
        ))
        behind = pw.lstrip("!") if pw.startswith("!") else ""
        if crypt_string(behind):
            # usermod -L / passwd -l put '!' (or '!!') before the hash: usermod -U gives it back as it was.
            out[-1]["locked_hash_digest"] = sha256(behind)
        seen[name] = out[-1]
    for name, account in seen.items():
        if name in extra:
            account["duplicate_lines"] = extra[name]
    return out


def crypt_string(pw):
    """Whether the password field ``pw`` is a crypt string a password can match: anything but empty (no password),
    'x' and a lock marker ('!...', '*...'). Not only the '$id$' hashes: traditional DES (13 characters of
    [./0-9A-Za-z]), BSDi extended DES ('_' and 19 characters) and bigcrypt are still verified by libxcrypt
    where built with them (Debian 12); a string no password matches shared by two guests is reported too, rather
    than a real hash of a scheme not known here passed."""
    return bool(pw) and pw != "x" and not pw.startswith(("!", "*"))


def _count(counts, name, what):
    per = counts.setdefault(name, {})
    per[what] = per.get(what, 0) + 1


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


def sctp_endpoints(root="/"):
    """[(address, port, socket inode)] of the SCTP endpoints in /proc/net/sctp/eps (none when the sctp module is not
    loaded: then no SCTP socket exists). Columns ENDPT SOCK STY SST HBKT LPORT UID INODE LADDRS...; of a multi-homed
    endpoint's addresses the first that is not loopback stands for it (0.0.0.0 or :: when bound to every address)."""
    out = []
    for line in (_read(root, "/proc/net/sctp/eps") or "").splitlines()[1:]:
        f = line.split()
        if len(f) < 9 or not f[5].isdigit():
            continue
        addrs = f[8:]
        exposed = [a for a in addrs if not _is_loopback_text(a)]
        out.append(((exposed or addrs)[0], int(f[5]), f[7]))
    return out


def _is_loopback_text(address):
    try:
        return ipaddress.ip_address(u"%s" % address).is_loopback
    except ValueError:
        return False


def listening(root="/"):
    """TCP sockets in LISTEN, bound UDP sockets and SCTP endpoints, with the owning process name."""
    owners = _socket_owners(root)
    out = [dict(proto="sctp", address=a, port=port, process=owners.get(inode))
           for a, port, inode in sctp_endpoints(root)]
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
        return None, None
    if not isinstance(data, dict) or "error" in data:
        return None, "%s: %s" % (path, data.get("error") if isinstance(data, dict) else "not a JSON object")
    value = data.get("epoch")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None, "%s: epoch is not a non-negative integer: %r" % (path, value)
    return value, None


def json_file(root, path):
    """The JSON document in root/``path``: None when the file does not exist; {"error": why} when it exists but
    cannot be read (or is a symbolic link: not followed) or is not JSON - never None for a file that is there."""
    raw, why = _read_file(root, path)
    if why:
        return {"error": why}
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
