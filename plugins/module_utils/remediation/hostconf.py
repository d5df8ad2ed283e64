# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hypervisor's libvirt configuration files, edited the way a person would: the pure logic of the
host_config module (ISO-04 host part, ISO-05, LEAK-01, LEAK-04 host part, LEAK-06, LEAK-08).

The file is read as libvirt reads it (evidence/hostscan.conf_entries: quotes, lists, ';', comments; the
FIRST statement of a repeated key is the one libvirt uses). A key this module owns is replaced where that
first statement is (a comment after it stays) and its later statements are removed, or it is appended at
the end under a comment naming the collection; every comment and every statement of a key it does not own
stays byte for byte. A key whose value libvirt already reads as wanted is left as it is. Before a new file
lands, augeas parses it with the lens libvirt ships for that file (/usr/share/augeas/lenses/libvirtd_qemu.aug,
libvirtd.aug, ...): a candidate the lens rejects is never renamed into place.

Image permissions (LEAK-01) are re-derived at run time with the rule's own criteria, walking each
directory from the root without following any symbolic link (openat with O_NOFOLLOW per component)
and changing modes through descriptors (fchmod), so a link planted meanwhile cannot redirect a chmod.
libvirt's image directories are judged with every file in them; a disk image or backing file elsewhere
is judged by itself, its directory left alone; a shared directory (sticky or world-writable, as /tmp) is
never chmodded.

Standard library only, Python 3.6+ (module_utils used by a module).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import errno
import os
import re
import shutil
import stat
import tempfile
import time
from xml.etree import ElementTree

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil, timeutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import hostscan

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

MAX_CONF = 1024 * 1024
QEMU_CONF = "qemu.conf"
# The modular daemons with unix sockets of their own (unix_sock_rw_perms, unix_sock_admin_perms): LEAK-06 judges every
# /etc/libvirt/virt*d.conf, so the fix reaches each of them (virtlogd and virtlockd have no such setting).
MODULAR_DAEMONS = ("virtqemud", "virtproxyd", "virtnetworkd", "virtnodedevd", "virtnwfilterd", "virtsecretd", "virtstoraged",
                   "virtinterfaced", "virtlxcd", "virtchd", "virtxend", "virtvboxd", "virtvzd", "virtbhyved")
DAEMON_CONFS = ("libvirtd.conf",) + tuple("%s.conf" % d for d in MODULAR_DAEMONS)
# Which running daemon reads which configuration file (a changed file is read again only at its start).
READERS = dict([("qemu.conf", ("libvirtd", "virtqemud")), ("libvirtd.conf", ("libvirtd",))] +
               [("%s.conf" % d, (d,)) for d in MODULAR_DAEMONS])
# The augeas lens libvirt ships per file: (lens file, its module). A daemon without its own lens
# (older libvirt ships libvirtd.aug only) is parsed with libvirtd's, whose keys are a superset.
LENSES = dict([("qemu.conf", (("libvirtd_qemu.aug", "Libvirtd_qemu"),)), ("libvirtd.conf", (("libvirtd.aug", "Libvirtd"),))] +
              [("%s.conf" % d, (("%s.aug" % d, d.capitalize()), ("libvirtd.aug", "Libvirtd"))) for d in MODULAR_DAEMONS])
MARK = "# Set by vmguard.hardening (host_config)"
# Keys only the daemons that accept remote connections read (virtqemud has no TCP listener).
NETWORK_KEYS = ("listen_tcp", "listen_tls", "tls_no_verify_certificate", "auth_tcp", "auth_tls", "tcp_port", "tls_port")
REMOTE_DAEMON_CONFS = ("libvirtd.conf", "virtproxyd.conf")
ROOT_NAMES = ("root", "0", "+0")
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # virConfParseName: a letter first


class HostConfError(Exception):
    """A configuration file or directory that cannot be changed safely; the message names it."""


# --- values ---------------------------------------------------------------------------------------

def secret_key(key):
    """A key whose value is a secret (qemu.conf's vnc_password, spice_password; hostscan.SECRET_CONF_KEY)."""
    return bool(hostscan.SECRET_CONF_KEY.search(key))


def shown(key, value):
    """``value`` of ``key`` as a change, a result or a message may show it: a secret key's value as "<redacted>"
    (None and "" stay: whether a password is set is no secret)."""
    return hostscan.REDACTED if secret_key(key) and value not in (None, "") else value


def render(value, key=None):
    """libvirt's configuration syntax for a value: integers bare, strings quoted, lists of strings. A value that
    cannot be written is named in the error, unless it is the value of a secret ``key``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[ %s ]" % ", ".join(render(str(v), key) for v in value)
    text = str(value)
    if '"' in text or "\n" in text or "\\" in text:
        raise HostConfError("%s cannot be written as a libvirt configuration string (no '\"', newline or backslash)"
                            % ("the value of %s" % key if key and secret_key(key) else "value %r" % text))
    return '"%s"' % text


def world_accessible(perms):
    """True when octal permission text (e.g. "0777") lets others in; None when it is no octal number."""
    try:
        return bool(int(str(perms), 8) & 0o007)
    except ValueError:
        return None


def _root_only(perms):
    """Whether a socket permission setting lets only its owner (root) in; False when it cannot be parsed."""
    try:
        return not int(str(perms), 8) & 0o077
    except ValueError:
        return False


def keeps(key, current):
    """Whether the current value of ``key`` (parsed, or None when unset) already satisfies the policy, so a
    stricter setting is never loosened: unix_sock_rw_perms that is not world-accessible stays, an existing
    unix_sock_group stays, unix_sock_admin_perms stays unset (libvirt's default, 0700) or root-only."""
    if key == "unix_sock_admin_perms":
        return current is None or _root_only(current)
    if current is None:
        return False
    if key == "unix_sock_rw_perms":
        return world_accessible(current) is False
    if key == "unix_sock_group":
        return True
    return False


def daemon_settings(name, settings):
    """The part of ``settings`` daemon configuration file ``name`` takes (no network keys for virtqemud.conf)."""
    if name in REMOTE_DAEMON_CONFS:
        return dict(settings)
    return dict((k, v) for k, v in settings.items() if k not in NETWORK_KEYS)


# --- key replace / remove / append -------------------------------------------------------------------

def _entries(text):
    """libvirt's own reading of ``text`` (hostscan.conf_entries): what the audit reads is what this module edits.
    HostConfError when libvirt refuses the text (no value in it can be trusted, nor can an edit be placed)."""
    try:
        return hostscan.conf_entries(text)
    except hostscan.ConfSyntaxError as e:
        raise HostConfError("libvirt cannot parse the file (%s): fix it by hand first" % e)


def _typed(key, rendered):
    """The parsed value of ``rendered`` (render's text), to compare with what a file sets."""
    return hostscan.conf_entries("%s = %s\n" % (key, rendered))[0].typed


def _first(text):
    """{key: the ConfEntry libvirt reads (the first statement of the key)}."""
    return dict((e.key, e) for e in reversed(_entries(text)))


def _remove(text, entry):
    """``text`` without ``entry``'s statement: its whole lines (a comment after it included) when nothing else
    is set on them, else the statement and the ';' separating it from its neighbour. Blank text left is made
    empty (libvirt's parser refuses a file of blank lines only)."""
    out = _cut(text, entry)
    return out if out.strip() else ""


def _cut(text, entry):
    line_start = text.rfind("\n", 0, entry.start) + 1
    line_end = text.find("\n", entry.end)
    line_end = len(text) if line_end < 0 else line_end
    before, after = text[line_start:entry.start], text[entry.end:line_end]
    sep = re.match(r"[ \t]*(?:;[ \t]*)?", after).end()
    rest = after[sep:]
    if not before.strip():
        if not rest.strip() or rest.startswith("#"):
            return text[:line_start] + text[line_end + 1:]
        return text[:entry.start] + text[entry.end + sep:]
    cut = before.rstrip(" \t")
    if cut.endswith(";"):  # "a = 1; key = 2  # c" -> "a = 1  # c"
        return text[:line_start + len(cut) - 1] + text[entry.end:]
    return text[:entry.start] + text[entry.end:]


def _set(text, key, rendered):
    """``text`` where libvirt reads ``rendered`` for ``key``: the later statements of the key removed (one at a
    time, the text re-parsed after each), then the first one (the one libvirt reads) rewritten in place."""
    while True:
        mine = [e for e in _entries(text) if e.key == key]
        if len(mine) <= 1:
            break
        text = _remove(text, mine[-1])
    return text[:mine[0].start] + "%s = %s" % (key, rendered) + text[mine[0].end:]


def _unset(text, key):
    """``text`` without any statement of ``key`` (libvirt's built-in default applies)."""
    while True:
        mine = [e for e in _entries(text) if e.key == key]
        if not mine:
            return text
        text = _remove(text, mine[-1])


def edit(text, settings):
    """(new text, changes) with every key of ``settings`` set (see the module docstring), or removed where its
    value is None. ``changes``: [{"key", "old", "new"}] for the keys whose value changes (old None: appended); the
    old and new values of a secret key (vnc_password) are "<redacted>" there, and in every error raised.

    A key is judged by the value libvirt reads (its first statement), compared as parsed values: a comment after
    it or another spelling of the same value is no change. A change rewrites that first statement and removes
    the later statements of the key. Raises HostConfError for a text libvirt cannot parse and, as a last check,
    when the new text does not read back as ``settings``."""
    for key in settings:
        if not KEY.match(key):
            raise HostConfError("%r is not a libvirt configuration key" % key)
    current = _first(text)
    changes, appended = [], []
    for key in sorted(settings):
        entry = current.get(key)
        old = hostscan.plain(entry.typed) if entry else None
        if settings[key] is None:  # remove: libvirt's built-in default applies
            if entry:
                text = _unset(text, key)
                changes.append({"key": key, "old": shown(key, old), "new": None})
            continue
        new = render(settings[key], key)
        if keeps(key, old) or (entry and entry.typed == _typed(key, new)):
            continue
        if entry:
            text = _set(text, key, new)
        else:
            appended.append("%s = %s\n" % (key, new))
        changes.append({"key": key, "old": shown(key, old), "new": shown(key, settings[key])})
    if appended:
        if text and not text.endswith("\n"):
            text += "\n"
        if text.strip():
            text += "\n"
        text += MARK + "\n" + "".join(appended)
    _check_reads_back(text, settings)
    return text, changes


def _check_reads_back(text, settings):
    """HostConfError unless libvirt would read ``text`` as ``settings`` asks (a kept stricter value counts)."""
    got = _first(text)
    for key, value in settings.items():
        entry = got.get(key)
        if value is None:
            if entry:
                raise HostConfError("%s: still set after its removal" % key)
        elif not keeps(key, hostscan.plain(entry.typed) if entry else None) and \
                (entry is None or entry.typed != _typed(key, render(value, key))):
            raise HostConfError("%s: the edited text does not read back as %s" % (key, shown(key, render(value, key))))


def unified_diff(path, before, after):
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), path + " (before)",
                                        path + " (after)"))


# --- augeas validation ------------------------------------------------------------------------------

def lens_for(name, lens_dir):
    """The augeas module (e.g. "Libvirtd_qemu") that parses configuration file ``name``, or raise."""
    for fname, module in LENSES.get(name, ()):
        if os.path.isfile(os.path.join(lens_dir, fname)):
            return module
    raise HostConfError("no augeas lens for %s in %s (libvirt ships %s): cannot validate the file before writing it"
                        % (name, lens_dir, " or ".join(f for f, _m in LENSES.get(name, (("?", None),)))))


def augtool_script():
    return "print /augeas//error\nprint /augeas/files\n"


def augtool_argv(augtool, directory, base, lens):
    """augtool parsing exactly ``directory``/``base`` with ``lens`` (no autoload of other lenses): its
    output names the file under /augeas/files when it was read and an error node when the lens failed."""
    return [augtool, "--noautoload", "--root", directory, "--transform", "%s.lns incl /%s" % (lens, base)]


def check_augtool_output(out, base, path):
    """Raise HostConfError unless augtool's output shows ``base`` parsed without an error."""
    errors = [ln.strip() for ln in out.splitlines() if "/error" in ln]
    if errors:
        detail = dict((ln.split(" = ", 1)[0].rsplit("/", 1)[-1], ln.split(" = ", 1)[1].strip('"'))
                      for ln in errors if " = " in ln)
        raise HostConfError("%s: the new content does not parse with libvirt's augeas lens (%s at line %s, char %s)"
                            % (path, detail.get("message") or detail.get("error") or "; ".join(errors),
                               detail.get("line", "?"), detail.get("char", "?")))
    if ("/augeas/files/%s/path = " % base) not in out:
        raise HostConfError("%s: augeas did not read the candidate file (augtool output: %s)" % (path, out.strip()[:300]))


# --- write: candidate, validate, backup, rename -------------------------------------------------------

def read_conf(path):
    """(text, stat) of a configuration file: no link followed, a regular file, capped; (None, None) when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None, None
        if e.errno == errno.ELOOP:
            raise HostConfError("%s: is a symbolic link, refusing to follow it" % path)
        raise HostConfError("%s: %s" % (path, e.strerror or e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HostConfError("%s: not a regular file" % path)
        if st.st_size > MAX_CONF:
            raise HostConfError("%s: %d bytes, larger than the %d allowed" % (path, st.st_size, MAX_CONF))
        data = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8"), st
    except UnicodeDecodeError:
        raise HostConfError("%s: not UTF-8 text" % path)


def backup_path(backup_dir, name, now=None):
    """<backup_dir>/<name>-<UTC stamp>; -N added when a backup of the same second exists (never replaced)."""
    base = os.path.join(backup_dir, "%s-%s" % (name, timeutil.stamp(now if now is not None else time.time())))
    path, n = base, 1
    while os.path.lexists(path):
        path, n = "%s-%d" % (base, n), n + 1
    return path


def validate_copy(text, name, validate):
    """``validate(directory, basename)`` on the exact new bytes, written under ``name`` in a private
    temporary directory (0700) that is removed afterwards; raises what ``validate`` raises."""
    tmpdir = tempfile.mkdtemp(prefix="vmguard-hostconf-")
    try:
        fsutil.atomic_write(os.path.join(tmpdir, name), text, 0o600)
        validate(tmpdir, name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def write_validated(path, text, st, validate, backup_dir=None):
    """Replace ``path`` (read with read_conf, stat ``st``) with ``text`` once ``validate`` accepted the exact
    new bytes (validate_copy): the old content is first copied to ``backup_dir`` (mode 0600), then the new
    one lands atomically with the old mode and owner (common/fsutil.atomic_write: private temporary
    file in the same directory, rename, no link followed). Returns the backup path or None."""
    name = os.path.basename(path)
    validate_copy(text, name, validate)
    old, now_st = read_conf(path)
    if now_st is None or now_st.st_ino != st.st_ino or now_st.st_mtime != st.st_mtime:
        raise HostConfError("%s: changed while it was being edited, not replaced" % path)
    backup = None
    if backup_dir:
        if not os.path.isdir(backup_dir):
            os.makedirs(backup_dir, 0o700)
        backup = fsutil.atomic_write(backup_path(backup_dir, name), old, 0o600)
    try:
        fsutil.atomic_write(path, text, stat.S_IMODE(st.st_mode), owner=(st.st_uid, st.st_gid))
    except fsutil.UnsafePathError as e:
        raise HostConfError(str(e))
    return backup


# --- restart ----------------------------------------------------------------------------------------

def daemons_to_restart(files):
    """The daemons that read any of ``files`` (basenames), sorted."""
    return sorted(set(d for f in files for d in READERS.get(f, ())))


def boot_time(proc="/proc"):
    with open(os.path.join(proc, "stat")) as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise HostConfError("%s/stat has no btime" % proc)


def running_daemons(proc="/proc"):
    """{daemon name: earliest start time (epoch seconds)} of libvirt's daemons running on this host."""
    ticks = os.sysconf("SC_CLK_TCK")
    btime = boot_time(proc)
    out = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, "stat")) as f:
                raw = f.read()
        except (IOError, OSError):
            continue
        comm = raw[raw.find("(") + 1:raw.rfind(")")]
        if comm not in ("libvirtd", "virtqemud", "virtproxyd"):
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        started = btime + int(fields[19]) / float(ticks)  # field 22 of stat(5): starttime in clock ticks
        out[comm] = min(started, out.get(comm, started))
    return out


def stale_daemons(running, conf_mtimes):
    """Daemons running since before a configuration file they read was last changed: [(daemon, file)].
    ``running``: {daemon: start time}; ``conf_mtimes``: {basename: mtime}."""
    out = []
    for name, mtime in sorted(conf_mtimes.items()):
        for d in READERS.get(name, ()):
            if d in running and running[d] < mtime:
                out.append((d, name))
    return out


# --- LEAK-01: image and directory permissions ---------------------------------------------------------

def image_mode(mode, gid, qemu_gid):
    """The mode LEAK-01 accepts for a disk image: no access for others, no group access unless the group is
    the QEMU group or root."""
    new = mode & ~0o007
    if gid not in (qemu_gid, 0):
        new &= ~0o070
    return new if (mode & 0o006 or (mode & 0o040 and gid not in (qemu_gid, 0))) else mode


def dir_mode(mode):
    """The mode LEAK-01 accepts for an image directory: not readable or writable by others (search stays)."""
    return mode & ~0o006


def _open_dir(root, path):
    """A descriptor of directory ``path`` under ``root``, each component opened with O_NOFOLLOW."""
    rel = [c for c in os.path.normpath(path).split("/") if c and c != "."]
    if ".." in rel:
        raise HostConfError("%s: contains '..'" % path)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    walked = root.rstrip("/") or "/"
    try:
        for comp in rel:
            walked = os.path.join(walked, comp)
            try:
                nfd = os.open(comp, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise HostConfError("%s: is a symbolic link or not a directory, not followed" % walked)
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def shared_dir(mode):
    """A directory shared with everyone (sticky or world-writable, as /tmp): never chmodded (hostscan.shared_dir)."""
    return hostscan.shared_dir(mode)


def fix_permissions(root, dirs, qemu_gid, check_mode=False, files=(), skipped=None):
    """chmod what LEAK-01 flags (paths as the host sees them, under ``root``): each directory of ``dirs`` (libvirt's
    image directories) and each regular file directly in it, and each file of ``files`` (a disk or backing file
    outside them) by itself. Returns [{"path", "old", "new"}] (octal strings) of the changes (made unless
    ``check_mode``), and [errors]. A directory or file that does not exist is skipped. A directory of ``dirs``
    that is shared (sticky or world-writable) is neither chmodded nor are its files: it is appended to
    ``skipped`` ({"path", "mode", "reason"}) when given."""
    changes, errors, done = [], [], set()
    for d in sorted(set(dirs)):
        fd = _open_or_report(root, d, errors)
        if fd is None:
            continue
        try:
            st = os.fstat(fd)
            if shared_dir(stat.S_IMODE(st.st_mode)):
                if skipped is not None:
                    skipped.append({"path": d, "mode": "%04o" % stat.S_IMODE(st.st_mode),
                                    "reason": "shared directory (sticky or world-writable): never chmodded"})
                continue
            done.add(os.path.normpath(d))
            new = dir_mode(stat.S_IMODE(st.st_mode))
            if new != stat.S_IMODE(st.st_mode):
                changes.append(_change(d + "/", st.st_mode, new))
                if not check_mode:
                    os.fchmod(fd, new)
            for name in sorted(os.listdir(fd)):
                _fix_file(fd, d, name, qemu_gid, check_mode, changes, errors)
        finally:
            os.close(fd)
    for f in sorted(set(files)):
        d, name = os.path.split(os.path.normpath(f))
        if d in done or not name:
            continue  # already judged with its directory
        fd = _open_or_report(root, d, errors)
        if fd is None:
            continue
        try:
            _fix_file(fd, d, name, qemu_gid, check_mode, changes, errors, named=True)
        finally:
            os.close(fd)
    return changes, errors


def _open_or_report(root, d, errors):
    """_open_dir, or None with the reason appended to ``errors`` (nothing for a directory that does not exist)."""
    try:
        return _open_dir(root, d)
    except HostConfError as e:
        errors.append(str(e))
    except OSError as e:
        if e.errno != errno.ENOENT:
            errors.append("%s: %s" % (d, e.strerror or e))
    return None


def _change(path, old, new):
    return {"path": path, "old": "%04o" % stat.S_IMODE(old), "new": "%04o" % new}


def _fix_file(dfd, d, name, qemu_gid, check_mode, changes, errors, named=False):
    """chmod file ``name`` of directory ``dfd`` (path ``d``) as LEAK-01 requires, through a descriptor opened
    without following a link. ``named``: the file was named as a disk image (not found in an image directory),
    so one that is no longer a regular file is an error, not something else in the directory."""
    path = os.path.join(d, name)
    try:
        lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return
    if not stat.S_ISREG(lst.st_mode):
        if named:
            errors.append("%s: is a symbolic link or not a regular file, not followed" % path)
        return  # links, sub-directories, sockets: not the rule's images
    new = image_mode(stat.S_IMODE(lst.st_mode), lst.st_gid, qemu_gid)
    if new == stat.S_IMODE(lst.st_mode):
        return
    changes.append(_change(path, lst.st_mode, new))
    if check_mode:
        return
    try:
        ffd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=dfd)
    except OSError as e:
        errors.append("%s: %s" % (path, e.strerror or e))
        return
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode) or st.st_ino != lst.st_ino:
            errors.append("%s: replaced while it was being checked, left alone" % path)
            return
        os.fchmod(ffd, new)
    finally:
        os.close(ffd)


# --- nwfilters ----------------------------------------------------------------------------------------

NWFILTER_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _filter_xml(name, nwfilter_dir):
    if not NWFILTER_NAME.match(name or ""):
        raise HostConfError("%r is not an nwfilter name" % (name,))
    path = os.path.join(nwfilter_dir, name + ".xml")
    text, _st = read_conf(path)
    if text is None:
        raise HostConfError("nwfilter %s is not defined in libvirt and %s does not exist to define it from" % (name, path))
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise HostConfError("%s: not valid XML (%s)" % (path, e))
    if root.tag != "filter" or root.get("name") != name:
        raise HostConfError("%s: not the definition of nwfilter %s" % (path, name))
    return text, [r.get("filter") for r in root.iter("filterref") if r.get("filter")]


def nwfilters_to_define(names, existing, nwfilter_dir):
    """[(name, xml)] to define, referenced filters before the filters that reference them, for the
    ``names`` not in ``existing`` (and the filters they reference that are missing too)."""
    order, seen = [], set(existing)

    def visit(name, path):
        if name in seen:
            return
        if name in path:
            raise HostConfError("nwfilter %s references itself (through %s)" % (name, " -> ".join(path)))
        xml, refs = _filter_xml(name, nwfilter_dir)
        for ref in refs:
            visit(ref, path + (name,))
        seen.add(name)
        order.append((name, xml))
    for n in names:
        visit(n, ())
    return order
