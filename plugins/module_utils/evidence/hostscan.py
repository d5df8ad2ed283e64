# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hypervisor host evidence from the local file system and /proc (standard library only):
libvirt configuration files, sockets, QEMU processes, the revert watcher, image files and
directories, backing chains and the offline seal check of base images.

libvirt's own files (config, status and pid files) are opened without following a final symbolic
link, must be regular files and are size-capped; of the config and status files only the presence
of a console password is kept (graphics_passwords), never its value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import errno
import fcntl
import grp
import json
import os
import pwd
import re
import socket
import stat
import string
import struct
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml, image_seal
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

LIBVIRT_TCP_PORTS = {16509: False, 16514: True}  # port -> TLS
MAX_DOMAIN_FILE = 4 * 1024 * 1024
MAX_SMALL_FILE = 64 * 1024
WATCHER_LOCK = "/run/vmguard/watcher.lock"
WATCHER_HEARTBEAT = "/run/vmguard/watcher.heartbeat"
# The account QEMU runs as when qemu.conf sets no user: a build-time default of the distribution's libvirt.
QEMU_USER_DEFAULTS = (
    (("debian", "ubuntu"), "libvirt-qemu", "libvirt-qemu", "Debian's libvirt build default"),
    (("fedora", "rhel", "centos", "rocky", "almalinux", "alma"), "qemu", "qemu",
     "Fedora/Red Hat's libvirt build default"),
    (("suse", "opensuse", "sles", "opensuse-leap", "opensuse-tumbleweed"), "qemu", "qemu",
     "SUSE's libvirt build default"),
)
DEFAULT_IMAGE_DIRS = ("/var/lib/libvirt/images", "/var/lib/libvirt/qemu/save",
                      "/var/lib/libvirt/qemu/snapshot", "/var/lib/libvirt/qemu/dump")
# Where libvirt's daemons (libvirtd and every modular virt*d: virtqemud, virtproxyd, virtsecretd, virtstoraged,
# virtnetworkd, virtnodedevd, virtnwfilterd, virtinterfaced, virtlxcd, virtchd..., and virtlogd, virtlockd) make
# their management sockets in system mode: <name>-sock (read-write), <name>-sock-ro (read-only) and
# <name>-admin-sock (admin), all directly in this directory (the per-driver subdirectories hold state files and
# per-guest sockets, no management socket).
SOCKET_DIRS = ("/run/libvirt",)
SOCKETS = SOCKET_DIRS  # the name of 0.2.7 and before (then a list of four socket paths)


class ConfSyntaxError(ValueError):
    """Text libvirt's own parser (src/util/virconf.c, virConfParse) refuses as a whole: a daemon reading it does
    not start, and no value in it can be trusted (an error for the rules, never their default)."""

    def __init__(self, line, why):
        ValueError.__init__(self, "line %d: %s" % (line, why))
        self.line, self.why = line, why


# One statement of a libvirt configuration file: ``key``, ``typed`` value (("int", n), ("str", s) or
# ("list", (typed, ...))), and the offsets of the statement (``start``: its name, ``vstart``: its value, ``end``:
# just after the value; the separator and a trailing comment are not part of it).
ConfEntry = collections.namedtuple("ConfEntry", "key typed start vstart end")

_BLANK = " \t"
_EOL = "\r\n"
_LETTERS = string.ascii_letters
_DIGITS = string.digits
_NAME = _LETTERS + _DIGITS + "_"


class _ConfParser(object):
    """virConfParse's grammar (default flags, as libvirtd, virtqemud, virtproxyd and the QEMU driver read their
    files): statements ``name = value`` separated by a line end or ';', a name starting with an ASCII letter,
    values an integer (optional sign), a string in 'single', "double" (neither with escapes nor spanning lines)
    or \"\"\"triple\"\"\" quotes (which may span lines), or a list [v, v, ...] (line ends allowed, comments not);
    '#' starts a comment running to the line end, alone or after a value."""

    def __init__(self, text):
        self.text, self.pos, self.end = text, 0, len(text)

    def fail(self, why):
        raise ConfSyntaxError(self.text.count("\n", 0, self.pos) + 1, why)

    def cur(self):
        return self.text[self.pos] if self.pos < self.end else ""

    def skip(self, chars):
        while self.pos < self.end and self.text[self.pos] in chars:
            self.pos += 1

    def entries(self):
        out = []
        while self.pos < self.end:
            entry = self.statement()
            if entry is not None:
                out.append(entry)
            self.separator()
        return out

    def statement(self):
        self.skip(_BLANK + _EOL)
        if self.cur() == "#":
            self.to_eol()
            return None
        start = self.pos
        if not self.cur() or self.cur() not in _LETTERS:
            self.fail("expecting a name")
        self.skip(_NAME)
        key = self.text[start:self.pos]
        self.skip(_BLANK)
        if self.cur() != "=":
            self.fail("expecting an assignment")
        self.pos += 1
        self.skip(_BLANK)
        vstart = self.pos
        typed = self.value()
        end = self.pos
        self.skip(_BLANK)
        if self.cur() == "#":
            self.to_eol()
        return ConfEntry(key, typed, start, vstart, end)

    def to_eol(self):
        while self.pos < self.end and self.text[self.pos] not in _EOL:
            self.pos += 1

    def separator(self):
        self.skip(_BLANK)
        if self.pos >= self.end:
            return
        if self.cur() in _EOL:
            self.skip(_BLANK + _EOL)
        elif self.cur() == ";":
            self.pos += 1
            self.skip(_BLANK + _EOL)
        else:
            self.fail("expecting a separator")

    def value(self):
        self.skip(_BLANK)
        c = self.cur()
        if not c:
            self.fail("expecting a value")
        if c in "'\"":
            return ("str", self.string())
        if c == "[":
            return ("list", self.list_())
        if c in _DIGITS or c in "+-":
            return ("int", self.number())
        self.fail("expecting a value")

    def string(self):
        text = self.text
        if text[self.pos] == '"' and self.pos + 6 < self.end and text.startswith('"""', self.pos):
            close = text.find('"""', self.pos + 3)
            if close < 0:
                self.pos = self.end
                self.fail("unterminated string")
            value, self.pos = text[self.pos + 3:close], close + 3
            return value
        quote, self.pos = text[self.pos], self.pos + 1
        base = self.pos
        while self.pos < self.end and text[self.pos] != quote and text[self.pos] not in _EOL:
            self.pos += 1
        if self.cur() != quote:
            self.fail("unterminated string")
        self.pos += 1
        return text[base:self.pos - 1]

    def list_(self):
        self.pos += 1
        self.skip(_BLANK + _EOL)
        items = []
        if self.pos < self.end and self.cur() != "]":
            items.append(self.value())
            self.skip(_BLANK + _EOL)
        while self.pos < self.end and self.cur() != "]":
            if self.cur() != ",":
                self.fail("expecting a separator in list")
            self.pos += 1
            self.skip(_BLANK + _EOL)
            if self.cur() == "]":
                break
            items.append(self.value())
            self.skip(_BLANK + _EOL)
        if self.cur() != "]":
            self.fail("list is not closed with ]")
        self.pos += 1
        return tuple(items)

    def number(self):
        base = self.pos
        if self.cur() in "+-":
            self.pos += 1
        digits = self.pos
        self.skip(_DIGITS)
        if self.pos == digits:
            self.fail("unterminated number")
        return int(self.text[base:self.pos])


def conf_entries(text):
    """Every statement of libvirt configuration ``text`` in file order ([ConfEntry]); ConfSyntaxError when libvirt
    would refuse the file."""
    return _ConfParser(text).entries()


def plain(typed):
    """The evidence form of a parsed value: integers as their decimal text ("1"), strings as they are, lists as
    lists of those."""
    kind, value = typed
    if kind == "int":
        return str(value)
    if kind == "list":
        return [plain(v) for v in value]
    return value


def parse_libvirt_conf(text):
    """{key: value} of libvirt configuration ``text`` as libvirt reads it: the FIRST statement of a repeated key
    is the one it uses (virConfGetValue returns the first matching entry); values in plain() form.
    ConfSyntaxError when libvirt would refuse the file."""
    out = {}
    for e in conf_entries(text):
        if e.key not in out:
            out[e.key] = plain(e.typed)
    return out


# libvirt configuration keys holding a secret (qemu.conf's vnc_password, spice_password): their values never
# leave the module. A *_secret_uuid names a libvirt secret object; it is no secret itself.
SECRET_CONF_KEY = re.compile(r"(?:password|passwd|secret)\Z", re.I)
REDACTED = "<redacted>"
MAX_CONF = 1 << 20  # bytes of a libvirt configuration file read


def redact_conf(conf):
    """``conf`` (parse_libvirt_conf) with each secret's value replaced: REDACTED when set, "" when empty (a
    console default password is judged by its presence only: host_password)."""
    return dict((k, (REDACTED if v else "") if SECRET_CONF_KEY.search(k) else v) for k, v in conf.items())


def redact_conf_text(text):
    """libvirt configuration text with the value of every secret key replaced by "<redacted>" (for a diff): the
    value as libvirt's parser delimits it (single, double and triple quotes, lists over several lines), each
    statement of the key, so no quote or '#' inside a secret can end the redaction early. Text libvirt cannot
    parse is replaced whole: where its values end cannot be known."""
    try:
        entries = conf_entries(text)
    except ConfSyntaxError as e:
        return "%s (libvirt cannot parse this text: %s)\n" % (REDACTED, e)
    out, pos = [], 0
    for e in entries:
        if SECRET_CONF_KEY.search(e.key):
            out.append(text[pos:e.vstart] + '"%s"' % REDACTED)
            pos = e.end
    out.append(text[pos:])
    return "".join(out)


def _read_conf_text(path):
    """The text of a configuration file: a regular file of at most MAX_CONF bytes, opened without blocking (a
    FIFO there must not hang the module). Links are followed: these are root's own paths (/etc/libvirt, or the
    --config of a daemon running as root), which distributions may link into place."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONF:
            raise OSError(errno.EINVAL, "not a regular file of at most %d bytes" % MAX_CONF)
        data = os.read(fd, MAX_CONF + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONF:
        raise OSError(errno.EFBIG, "larger than %d bytes" % MAX_CONF)
    return data.decode("utf-8", "replace")


def load_conf(path):
    """(parsed configuration, None), (None, None) when ``path`` does not exist, or (None, why) when it cannot be
    read or libvirt's parser refuses it ("<path>: line N: expecting a separator")."""
    try:
        return parse_libvirt_conf(_read_conf_text(path)), None
    except ConfSyntaxError as e:
        return None, "%s: %s (libvirt refuses the whole file)" % (path, e)
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT and not os.path.lexists(path):
            return None, None
        return None, "%s: %s" % (path, _why(e))


def read_conf(path):
    """The parsed configuration at ``path``, or None (absent, unreadable or unparsable: load_conf says which)."""
    return load_conf(path)[0]


def load_qemu_conf(path):
    """(qemu.conf parsed with secrets redacted (redact_conf), None); ({}, None) when it does not exist (every
    setting at its default); (None, why) when it cannot be read or parsed."""
    conf, why = load_conf(path)
    if conf is None:
        return ({}, None) if why is None else (None, why)
    return redact_conf(conf), None


def read_qemu_conf(path):
    """qemu.conf as load_qemu_conf gives it, None when unreadable or unparsable."""
    return load_qemu_conf(path)[0]


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


# What a QEMU binary is called: qemu-system-<arch> upstream, qemu-kvm on Red Hat, kvm on Debian (once a program of
# its own, now a link to qemu-system-x86_64).
QEMU_BINARY = re.compile(r"^(?:qemu-system-[A-Za-z0-9_.-]+|qemu-kvm|kvm)$")


def exe_target(pid, proc="/proc"):
    """Where /proc/<pid>/exe points (the program the kernel runs, whatever argv says), read with readlink only:
    the executable is never opened or followed. None when unreadable (another user's process without root,
    a kernel thread, a process gone). A replaced binary's " (deleted)" suffix is dropped."""
    try:
        target = os.readlink(os.path.join(proc, str(pid), "exe"))
    except (IOError, OSError):
        return None
    return target[:-len(" (deleted)")] if target.endswith(" (deleted)") else target


def _qemu_by(pid, argv, exe):
    """(matched_by, exe target) when process ``pid`` is a QEMU, else None: by the basename of its executable
    (exe: /usr/bin/kvm and "exec -a anything" resolve to qemu-system-*), by argv[0] only when the executable
    cannot be read."""
    target = exe(pid)
    if target is not None:
        return ("exe", target) if QEMU_BINARY.match(os.path.basename(target)) else None
    return ("argv0", None) if QEMU_BINARY.match(os.path.basename(argv[0])) else None


def qemu_processes(procs, exe=exe_target):
    """The QEMU processes of ``procs`` ((pid, uid, argv)): {pid, uid, user, name, uuid (what argv's -name/-uuid
    claim), exe (the executable's path, None when unreadable), matched_by ("exe" or "argv0": what told it is a
    QEMU)}. ``exe(pid)``: the executable's path or None (exe_target)."""
    out = []
    for pid, uid, argv in procs:
        by = _qemu_by(pid, argv, exe)
        if by is None:
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
        out.append(dict(pid=pid, uid=uid, user=user, name=name, uuid=uuid, exe=by[1], matched_by=by[0]))
    return out


def _addr(hexaddr):
    """Address of a /proc/net/tcp{,6} entry (kernel byte order, 32-bit words)."""
    words = [int(hexaddr[i:i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = struct.pack("<%dI" % len(words), *words)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    return "[%s]" % socket.inet_ntop(socket.AF_INET6, raw)


def _proc_tcp_listeners(paths):
    """[(listener, socket inode)] of the listening sockets on libvirt's ports in /proc/net/tcp{,6}."""
    found = {}
    for p in paths:
        try:
            with open(p) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, st = parts[1], parts[3]
                    addr, port = local.rsplit(":", 1)
                    port = int(port, 16)
                    if st == "0A" and port in LIBVIRT_TCP_PORTS:
                        what = "%s %s:%d" % ("tcp6" if p.endswith("6") else "tcp", _addr(addr), port)
                        inode = parts[9] if len(parts) > 9 and parts[9].isdigit() else None
                        found[what] = (dict(port=port, tls=LIBVIRT_TCP_PORTS[port], what=what), inode)
        except (IOError, OSError, StopIteration, ValueError, IndexError):
            continue
    return [found[k] for k in sorted(found)]


def libvirt_tcp_listeners(paths=("/proc/net/tcp", "/proc/net/tcp6")):
    """Listening sockets on libvirt's ports: [{port, tls, what}] (16509 plain, 16514 TLS)."""
    return [entry for entry, _inode in _proc_tcp_listeners(paths)]


def _listen_flag(arg):
    return arg in ("-l", "--listen") or bool(re.match(r"^-[dv]*l[dv]*$", arg))


def _config_arg(argv):
    for i, a in enumerate(argv):
        if a in ("-f", "--config") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def _port(value, default):
    value = (value if value is not None else str(default)).strip()
    return int(value) if value.isdigit() else None


REMOTE_DAEMONS = ("libvirtd", "virtproxyd")  # the daemons that accept remote (TCP) connections


def remote_daemons(procs, conf_dir="/etc/libvirt"):
    """[(pid, daemon, configuration path, argv)] of root's libvirtd and virtproxyd processes: the file each reads
    is its --config, else <conf_dir>/<daemon>.conf. Only root's: any user can start a process named libvirtd
    whose --config names a file for root to read (or a FIFO to hang on)."""
    out = []
    for pid, uid, argv in procs:
        prog = os.path.basename(argv[0])
        if uid == 0 and prog in REMOTE_DAEMONS:
            out.append((pid, prog, _config_arg(argv) or os.path.join(conf_dir, prog + ".conf"), argv))
    return out


def daemon_listeners(procs, conf_dir="/etc/libvirt"):
    """libvirtd/virtproxyd started with --listen: the listeners its configuration opens, each with the
    ``daemon`` and the ``config`` file it reads.

    listen_tcp defaults to 0 (plain TCP, port tcp_port or 16509), listen_tls to 1 (TLS, tls_port or 16514).
    """
    out = []
    for pid, prog, path, argv in remote_daemons(procs, conf_dir):
        # The sockets a user's own daemon really opens are in /proc/net.
        if not any(_listen_flag(a) for a in argv[1:]):
            continue
        conf = read_conf(path) or {}
        what = "%s --listen (pid %d, %s)" % (prog, pid, path)
        if conf.get("listen_tcp", "0").strip() == "1":
            out.append(dict(port=_port(conf.get("tcp_port"), 16509), tls=False, what=what + ": listen_tcp",
                            daemon=prog, config=path))
        if conf.get("listen_tls", "1").strip() != "0":
            out.append(dict(port=_port(conf.get("tls_port"), 16514), tls=True, what=what + ": listen_tls",
                            daemon=prog, config=path))
    return out


def socket_owners(daemons, inodes, proc="/proc"):
    """{socket inode: (daemon, configuration path)} for the sockets of ``inodes`` one of ``daemons``
    (remote_daemons) holds open: its /proc/<pid>/fd entries, read with readlink only. A socket only systemd
    holds (socket activation, the daemon not started yet) has no owner here."""
    owners, wanted = {}, set(i for i in inodes if i)
    for pid, prog, path, _argv in daemons:
        fd_dir = os.path.join(proc, str(pid), "fd")
        try:
            fds = os.listdir(fd_dir)
        except (IOError, OSError):
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except (IOError, OSError):
                continue
            if link.startswith("socket:[") and link[8:-1] in wanted:
                owners.setdefault(link[8:-1], (prog, path))
    return owners


def tcp_listeners(procs, conf_dir="/etc/libvirt", paths=("/proc/net/tcp", "/proc/net/tcp6"), proc="/proc"):
    """Open sockets on libvirt's ports, plus what a --listen daemon opens on ports not seen open. Each carries
    the ``daemon`` (libvirtd, virtproxyd) holding it and the ``config`` file that daemon reads, both None when
    no running daemon holds it (socket activation: the unit's daemon is not started yet)."""
    daemons = remote_daemons(procs, conf_dir)
    listening = _proc_tcp_listeners(paths)
    owners = socket_owners(daemons, [inode for _e, inode in listening], proc)
    found = []
    for entry, inode in listening:
        daemon, config = owners.get(inode, (None, None))
        found.append(dict(entry, daemon=daemon, config=config))
    seen = set(f["port"] for f in found)
    for d in daemon_listeners(procs, conf_dir):
        if d["port"] is None or d["port"] not in seen:
            found.append(d)
    return found


# A file of libvirt's or the watcher's that is not what it must be (a link, not a regular file,
# too large): the one definition in common/fsutil, under the name this module's callers use.
UnsafeFile = fsutil.UnsafePathError


def read_regular(path, limit=MAX_SMALL_FILE):
    """Bytes of a regular file opened without following a symbolic link, at most ``limit`` bytes.

    Raises OSError (e.g. ENOENT) or UnsafeFile (a link, not a regular file, too large).
    """
    return fsutil.read_regular(path, limit)


def _why(e):
    return getattr(e, "strerror", None) or str(e)


def flock_holder(st, locks_path="/proc/locks"):
    """pid holding an exclusive flock on the file of stat result ``st``, from /proc/locks, or None."""
    try:
        with open(locks_path) as f:
            lines = f.read().splitlines()
    except (IOError, OSError):
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue  # waiters ("->") and other lock kinds
        try:
            major, minor, ino = fields[5].split(":")
            pid = int(fields[4])
            if (int(major, 16), int(minor, 16), int(ino)) == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino):
                return pid if pid > 0 else None
        except ValueError:
            continue
    return None


def lock_state(path, locks_path="/proc/locks"):
    """(held, holder_pid, error) of an flock lock file. Never creates the file; the test lock
    (LOCK_EX|LOCK_NB on a read-only descriptor) is released at once."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False, None, None
        if e.errno == errno.ELOOP:
            return False, None, "%s: is a symbolic link, not followed" % path
        return False, None, "%s: %s" % (path, _why(e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False, None, "%s: not a regular file" % path
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True, flock_holder(st, locks_path), None
            return False, None, "%s: %s" % (path, _why(e))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None, None
    finally:
        os.close(fd)


def _read_heartbeat(path):
    """(heartbeat object or None, error or None)."""
    try:
        data = read_regular(path, MAX_SMALL_FILE)
    except UnsafeFile as e:
        return None, str(e)
    except OSError as e:
        return None, (None if e.errno == errno.ENOENT else "%s: %s" % (path, _why(e)))
    try:
        hb = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return None, "%s: not valid JSON (%s)" % (path, e)
    if not isinstance(hb, dict):
        return None, "%s: not a JSON object" % path
    return hb, None


def heartbeat(path, now=None):
    """(age_seconds, pid, error) of the watcher's heartbeat file (JSON {"pid": N, "time": epoch})."""
    hb, err = _read_heartbeat(path)
    if hb is None:
        return None, None, err
    pid, when = hb.get("pid"), hb.get("time")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        return None, pid, "%s: no numeric time" % path
    now = time.time() if now is None else now
    return round(now - when, 3), pid, None


def heartbeat_link(path):
    """(connected, uri) the watcher's heartbeat reports: connected True/False, or None when the heartbeat
    has no boolean "connected" (missing file, older watcher); uri a string or None."""
    hb = _read_heartbeat(path)[0] or {}
    connected, uri = hb.get("connected"), hb.get("uri")
    return (connected if isinstance(connected, bool) else None), (uri if isinstance(uri, str) else None)


def heartbeat_mgmt_networks(path):
    """The management networks the watcher's heartbeat says it keeps up (a sorted list), or None when the
    heartbeat does not say (missing file, a watcher from before 0.2.4, not a list of names)."""
    nets = (_read_heartbeat(path)[0] or {}).get("mgmt_networks")
    if not isinstance(nets, list) or not all(isinstance(n, str) for n in nets):
        return None
    return sorted(nets)


def watcher(lock_path=WATCHER_LOCK, heartbeat_path=WATCHER_HEARTBEAT, now=None, locks_path="/proc/locks"):
    """The revert watcher as its lock and heartbeat files show it (see the evidence contract): also
    whether it is connected to libvirt, at which URI, and which management networks it leaves up, as its
    heartbeat says."""
    held, holder, lock_err = lock_state(lock_path, locks_path)
    age, hb_pid, hb_err = heartbeat(heartbeat_path, now)
    connected, uri = heartbeat_link(heartbeat_path)
    errors = [e for e in (lock_err, hb_err) if e]
    return dict(lock_path=lock_path, lock_held=held, holder_pid=holder, heartbeat_path=heartbeat_path,
                heartbeat_age_seconds=age, heartbeat_pid=hb_pid, connected=connected, uri=uri,
                mgmt_networks=heartbeat_mgmt_networks(heartbeat_path), error="; ".join(errors) or None)


def qemu_user_default(os_release=("/etc/os-release", "/usr/lib/os-release")):
    """The user/group QEMU runs as when qemu.conf sets none, from the distribution (os-release), or None."""
    ident = None
    for path in os_release:
        try:
            with open(path) as f:
                ident = dict((k.strip().lower(), v.strip().strip('"').strip("'").lower()) for k, _sep, v in
                             (line.strip().partition("=") for line in f) if k)
            break
        except (IOError, OSError):
            continue
    if not ident:
        return None
    ids = [ident.get("id", "")] + ident.get("id_like", "").split()
    for candidate in ids:
        for names, user, group, source in QEMU_USER_DEFAULTS:
            if candidate in names:
                return dict(user=user, group=group, source=source)
    return None


def socket_kind(name):
    """"ro" for libvirt's read-only socket (<name>-sock-ro), "admin" for its admin socket (<name>-admin-sock, to
    be root-only) and "rw" for any other (a read-write socket: full management, root-equivalent in system mode)."""
    if name.endswith("-ro"):
        return "ro"
    if name.endswith("-admin-sock"):
        return "admin"
    return "rw"


def _libvirt_named(name):
    return name.endswith(("-sock", "-sock-ro"))


def _socket_entry(path, st):
    """The evidence of one socket: ``rw`` false only for a read-only socket (LEAK-06 judges every other one as
    read-write, admin sockets included); ``link``: the target of a symbolic link standing where a socket is
    expected (never followed: its own mode is reported, which is no socket's)."""
    kind = socket_kind(os.path.basename(path))
    entry = dict(path=path, mode=stat.S_IMODE(st.st_mode), rw=kind != "ro", kind=kind)
    if stat.S_ISLNK(st.st_mode):
        try:
            entry["link"] = os.readlink(path)
        except OSError:
            entry["link"] = None
    return entry


def _listed(path, named_only):
    """[(path, lstat)] of the sockets directly in the directory ``path`` (no entry is followed): every socket,
    or (``named_only``) the ones named as libvirt names its sockets; with them, the symbolic links named as
    libvirt names its sockets. A final link of ``path`` is followed only when ``named_only`` (a daemon's
    configured unix_sock_dir, which the daemon follows too). [] when it does not exist or is no directory;
    None when it cannot be listed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0) | (0 if named_only else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return [] if e.errno in (errno.ENOENT, errno.ENOTDIR) else None
    try:
        out = []
        for name in sorted(os.listdir(fd)):
            st = fsutil.lstat_at(fd, name)
            if st is None:
                continue
            if (stat.S_ISSOCK(st.st_mode) and (_libvirt_named(name) or not named_only)) or \
                    (stat.S_ISLNK(st.st_mode) and _libvirt_named(name)):
                out.append((os.path.join(path, name), st))
        return out
    except OSError:
        return None
    finally:
        os.close(fd)


def sockets(paths=SOCKET_DIRS, named_dirs=()):
    """Mode of every libvirt socket: each of ``paths`` is a directory whose sockets are all taken (libvirt's
    own, /run/libvirt) or one socket; each of ``named_dirs`` (a daemon's unix_sock_dir) a directory whose sockets
    named as libvirt's (<name>-sock, <name>-sock-ro, <name>-admin-sock) are taken. Nothing is followed: a symbolic
    link named as a socket is reported with its own mode and target (``link``). A socket met twice (the same
    directory under two names) is reported once. [] when none exists; None when a directory that exists cannot
    be listed or is a link of ``paths`` (the modes are not known)."""
    out, seen = [], set()
    for p, named_only in [(p, False) for p in paths] + [(p, True) for p in named_dirs]:
        try:
            st = None if named_only else os.lstat(p)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            return None
        if st is None or stat.S_ISDIR(st.st_mode):
            found = _listed(p, named_only)
            if found is None:
                return None
        elif stat.S_ISLNK(st.st_mode) and not _libvirt_named(os.path.basename(p)):
            return None  # a directory behind a link, never followed: its sockets are not known
        else:
            found = [(p, st)] if stat.S_ISSOCK(st.st_mode) or stat.S_ISLNK(st.st_mode) else []
        for path, fst in found:
            key = path if stat.S_ISLNK(fst.st_mode) else (fst.st_dev, fst.st_ino)
            if key not in seen:
                seen.add(key)
                out.append(_socket_entry(path, fst))
    return out


def shared_dir(mode):
    """Whether a directory of ``mode`` is shared with everyone (sticky or world-writable, as /tmp and /var/tmp): its
    files are not all disk images, and tightening it would break its other users."""
    return bool(mode & (stat.S_ISVTX | stat.S_IWOTH))


def _image(path, st):
    return dict(path=path, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, size=st.st_size)


def _add_regular(p, seen, images):
    """Add path ``p`` (lstat: a link is not followed) to ``images`` once, when it is a regular file."""
    try:
        fst = os.lstat(p)
    except OSError:
        return
    if stat.S_ISREG(fst.st_mode) and p not in seen:
        seen.add(p)
        images.append(_image(p, fst))


def scan_images(dirs, files=()):
    """(images, dirs): mode and owner of each directory of ``dirs`` (libvirt's image, save, snapshot and dump
    directories, storage pools: ``shared`` when sticky or world-writable) and of every regular file directly in
    one that is not shared; and of each file of ``files`` (the domains' disk images and their backing files,
    wherever they are), by its real path, when it is a regular file. No symbolic link in a directory is
    taken for an image."""
    images, seen_dirs, seen = [], [], set()
    for d in sorted(set(dirs)):
        try:
            st = os.stat(d)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        seen_dirs.append(dict(path=d, mode=mode, uid=st.st_uid, gid=st.st_gid, shared=shared_dir(mode)))
        if shared_dir(mode):
            continue  # a disk in it is judged as one of ``files``; the other files are not images
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            _add_regular(os.path.join(d, n), seen, images)
    for f in sorted(set(files)):
        if not f.startswith("/"):
            continue  # a network volume's name, a json: or nbd: backing: no file of this host
        _add_regular(os.path.realpath(f), seen, images)
    return sorted(images, key=lambda i: i["path"]), seen_dirs


def disk_files(domains):
    """The file disks' images of every definition (device disk) and every file in their backing chains (the XML's
    <backingStore>, or what qemu-img found: fill_backing): the files LEAK-01 judges wherever they are."""
    out = set()
    for d in domains:
        for defn in definitions(d):
            for disk in defn.get("disks") or []:
                if disk.get("device") != "disk":
                    continue
                if disk.get("type") == "file":
                    top = disk.get("source")
                elif disk.get("type") == "volume" and disk.get("volume_type") == "file":
                    top = disk.get("volume_path")  # a directory pool's volume (hypervisor_facts.resolve_volumes)
                else:
                    continue
                for p in [top] + list(disk.get("backing") or []):
                    if p and p.startswith("/"):
                        out.add(p)
    return out


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


# --- local qemu driver: libvirt's own files -------------------------------------------------------------

def qemu_driver_dirs(uri, env=None):
    """{"config", "state"} directories of a local qemu driver URI (qemu:///system, qemu:///session), else None."""
    m = re.match(r"^qemu(?:\+unix)?:///(system|session)$", uri or "")
    if not m:
        return None
    if m.group(1) == "system":
        return dict(config="/etc/libvirt/qemu", state="/run/libvirt/qemu")
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    config = os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "libvirt", "qemu")
    runtime = os.path.join(env["XDG_RUNTIME_DIR"], "libvirt") if env.get("XDG_RUNTIME_DIR") else \
        os.path.join(home, ".cache", "libvirt")
    return dict(config=config, state=os.path.join(runtime, "qemu", "run"))


def _domain_file(directory, name, suffix):
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise UnsafeFile(repr(name), "not a usable domain file name")
    return os.path.join(directory, name + suffix)


def domain_pid(dirs, name):
    """pid libvirt recorded for a running domain (<state>/<name>.pid), or None."""
    try:
        text = read_regular(_domain_file(dirs["state"], name, ".pid"), 64).decode("ascii", "replace").strip()
    except (OSError, UnsafeFile):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def passwd_flags(dirs, name, kind):
    """[(graphics type, passwd present)] from libvirt's persistent config (kind "config") or status file
    (kind "state") of a domain; None when the file cannot be read. Values are never kept."""
    try:
        data = read_regular(_domain_file(dirs[kind], name, ".xml"), MAX_DOMAIN_FILE)
        return domxml.graphics_passwords(data)
    except (OSError, UnsafeFile, domxml.DomainXMLError):
        return None


def host_password(qemu_conf, gtype):
    """Whether qemu.conf gives consoles of this type a default password (None: qemu.conf unknown)."""
    if qemu_conf is None:
        return None
    key = {"vnc": "vnc_password", "spice": "spice_password"}.get(gtype)
    return bool(key and qemu_conf.get(key))


def resolve_passwd_set(graphics, flags, qemu_conf):
    """Set graphics[i]["passwd_set"]: True when the domain (flags, matched by index and type) or the host
    default sets a password, False when neither does, None when it cannot be known."""
    for i, g in enumerate(graphics):
        own = flags[i][1] if flags is not None and i < len(flags) and flags[i][0] == g["type"] else None
        default = host_password(qemu_conf, g["type"])
        if own is True or default is True:
            g["passwd_set"] = True
        elif own is False and default is False:
            g["passwd_set"] = False
        else:
            g["passwd_set"] = None


# --- backing chains and base images -----------------------------------------------------------------------

def definitions(domain):
    """The parsed definitions of a domain: the live (or only) one, and the persistent one when separate."""
    out = [domain]
    if domain.get("inactive"):
        out.append(domain["inactive"])
    return out


def _qemu_img_info(argv, path, run):
    rc, out, err = run(argv)
    if rc != 0:
        return None, "qemu-img info %s: %s" % (path, (err or "").strip() or "exit status %d" % rc)
    try:
        return json.loads(out), None
    except ValueError:
        return None, "qemu-img info %s: output is not JSON" % path


def redact_image_name(name):
    """A backing image name as the evidence may show it. A file of this host (an absolute path) stays as it is;
    any other name an image header holds (https://user:password@host/base.img, json:{...,"password": ...},
    rbd:pool/img:key=..., iscsi://user%password@...) has its secrets redacted as QEMU arguments are
    (domxml.redact_arg): the name is the image's creator's text and may carry credentials."""
    if not name or name.startswith("/"):
        return name
    if name.startswith("json:"):
        return "json:" + domxml.redact_arg(name[len("json:"):])[0]
    return domxml.redact_arg(name)[0]


def _redact_names(text, names):
    """``text`` (qemu-img's error output) with every name of ``names`` that redact_image_name changes
    replaced by its redacted form, then whatever else reads as a secret (a URL's userinfo, key=value)."""
    if not text:
        return text
    for name in sorted(set(n for n in names if n), key=len, reverse=True):
        shown = redact_image_name(name)
        if shown != name:
            text = text.replace(name, shown)
    return domxml.redact_arg(text)[0]


def backing_chain(path, fmt, run, qemu_img="qemu-img"):
    """(chain, error): [{path, format}] of an image, top first, from qemu-img info --backing-chain -U.

    The top's format is pinned (no probing of a file a guest writes). When the chain cannot be read
    (a base is missing or broken) but the top can, the chain is the top and the base its header
    names, that base carrying the error. A base that is no file of this host is named with its secrets
    redacted (redact_image_name), in the error too."""
    chain, err, names = _backing_chain(path, fmt, run, qemu_img)
    if chain is not None:
        for layer in chain:
            layer["path"] = redact_image_name(layer["path"])
            if layer.get("error"):
                layer["error"] = _redact_names(layer["error"], names)
    return chain, _redact_names(err, names)


def _backing_chain(path, fmt, run, qemu_img):
    """backing_chain's (chain, error) unredacted, and every backing name qemu-img reported."""
    if not os.path.lexists(path):  # nothing to open: no qemu-img run (two, with the fallback below) to learn it
        return None, "qemu-img info %s: no such file" % path, []
    pin = ["-f", fmt] if fmt else []
    info, err = _qemu_img_info([qemu_img, "info", "--backing-chain", "-U", "--output=json"] + pin + [path], path, run)
    if err is not None:
        top, top_err = _qemu_img_info([qemu_img, "info", "-U", "--output=json"] + pin + [path], path, run)
        if top_err is not None or not isinstance(top, dict):
            return None, err, []
        chain = [dict(path=path, format=top.get("format"))]
        names = [top.get("full-backing-filename"), top.get("backing-filename")]
        base = names[0] or names[1]
        if base:
            chain.append(dict(path=base, format=top.get("backing-filename-format"), error=err))
        return chain, err, names
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list):
        return None, "qemu-img info %s: unexpected output" % path, []
    chain, prev = [], None
    names = [i.get(k) for i in info if isinstance(i, dict)
             for k in ("full-backing-filename", "backing-filename", "filename")]
    for i in info:
        if not isinstance(i, dict):
            return None, "qemu-img info %s: unexpected output" % path, names
        # A layer's own filename may be relative (as written in its overlay): prefer the path qemu-img
        # resolved from the overlay (full-backing-filename), and the path we asked about for the top.
        name = path if prev is None else (prev.get("full-backing-filename") or i.get("filename"))
        chain.append(dict(path=name, format=i.get("format")))
        prev = i
    return chain, None, names


def disk_chains(domains, run, qemu_img="qemu-img"):
    """{source: (chain, error)} for every distinct file disk of every definition whose format can have a
    backing file (raw and unspecified formats - which libvirt treats as raw - cannot)."""
    chains = {}
    for d in domains:
        for defn in definitions(d):
            for disk in defn.get("disks") or []:
                src, fmt = disk.get("source"), disk.get("format")
                if disk.get("type") != "file" or not src or fmt in (None, "raw") or src in chains:
                    continue
                chains[src] = backing_chain(src, fmt, run, qemu_img)
    return chains


def fill_backing(domains, chains):
    """Disks whose XML names no backing store get the chain qemu-img found (nearest first)."""
    for d in domains:
        for defn in definitions(d):
            for disk in defn.get("disks") or []:
                chain = chains.get(disk.get("source"), (None, None))[0] if disk.get("type") == "file" else None
                if not disk.get("backing") and chain:
                    disk["backing"] = [c["path"] for c in chain[1:] if c.get("path")]


def base_images(domains, chains, run, verify=True, work_dir=None, qemu_img="qemu-img", debugfs="debugfs"):
    """One entry per distinct base (backing) image of any domain disk, verified offline and read-only."""
    bases = {}
    for d in domains:
        for defn in definitions(d):
            for disk in defn.get("disks") or []:
                if disk.get("type") != "file" or not disk.get("source"):
                    continue
                chain, err = chains.get(disk["source"], (None, None))
                layers = chain[1:] if chain else [dict(path=p, format=None, why=err) for p in disk.get("backing") or []]
                for layer in layers:
                    if not layer.get("path"):
                        continue
                    e = bases.setdefault(layer["path"], dict(path=layer["path"], format=layer.get("format"), used_by=[],
                                                             sealed=None, findings=[], error=None))
                    e["format"] = e["format"] or layer.get("format")
                    if layer.get("error"):
                        e["error"] = layer["error"]
                    elif layer.get("why") and not e["format"]:
                        e["error"] = "format unknown: %s" % layer["why"]
                    user = "%s:%s" % (d.get("name"), disk.get("target"))
                    if user not in e["used_by"]:
                        e["used_by"].append(user)
    out = [bases[k] for k in sorted(bases)]
    for e in out:
        verify_base(e, run, verify, work_dir, qemu_img, debugfs)
    return out


def verify_base(entry, run, verify=True, work_dir=None, qemu_img="qemu-img", debugfs="debugfs"):
    if entry["error"]:
        return
    if not verify:
        entry["error"] = "not verified (verify_base_images: false)"
        return
    if not entry["format"]:
        entry["error"] = entry["error"] or "format unknown: not probed"
        return
    try:
        findings = image_seal.verify_image(entry["path"], run, work_dir=work_dir, qemu_img=qemu_img,
                                           debugfs=debugfs, fmt=entry["format"])
    except image_seal.ImageError as e:
        entry["error"] = str(e)
        return
    except (OSError, IOError) as e:
        entry["error"] = "%s: %s" % (entry["path"], _why(e))
        return
    entry["error"] = None
    entry["findings"] = sorted(f["path"] for f in findings)
    entry["sealed"] = not findings


def mark_referenced(images, domains):
    """images[].referenced: the path is a disk source or in a backing chain of any definition."""
    refs = set()
    for d in domains:
        for defn in definitions(d):
            for disk in defn.get("disks") or []:
                for p in [disk.get("source")] + list(disk.get("backing") or []):
                    if p:
                        refs.add(p)
                        refs.add(os.path.realpath(p))
    for img in images:
        img["referenced"] = img["path"] in refs or os.path.realpath(img["path"]) in refs
    return images
