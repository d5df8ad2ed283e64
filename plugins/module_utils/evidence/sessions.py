# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domains defined in the users' own libvirt sessions (qemu:///session), which an audit of qemu:///system never
lists (VIS-01): each user's persistent definitions, ~/.config/libvirt/qemu/<name>.xml, shut off or not. A running
one is also a QEMU process libvirt does not know (VIS-03); a shut-off one is seen here only.

A home directory is the user's tree, not this process's: read as root, a link planted in it could lead anywhere.
So each home is read by a forked child that has become the user (groups, gid, uid), with the user's own rights:
whatever the user links to, the child reads only what the user could read anyway. The child sends back JSON (never
pickle: the parent decodes nothing it would execute), a domain's name and UUID only, never the document (it may hold
passwords). A home without ~/.config is skipped without a child. Standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import pwd
import select
import signal
import stat
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml

SESSION_URI = "qemu:///session"
SESSION_DIR = os.path.join(".config", "libvirt", "qemu")
MAX_DEFINITION = 4 * 1024 * 1024
MAX_ANSWER = 8 * 1024 * 1024
TIMEOUT = 20.0  # seconds a child may take for one home (a hung network home directory: an error, not a hang)


def _read(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = os.read(fd, MAX_DEFINITION + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_DEFINITION:
        raise ValueError("larger than %d bytes" % MAX_DEFINITION)
    return data


def read_definitions(directory):
    """{"domains": [{name, uuid, path}], "unreadable": [{path, error}], "error": why the directory could not be
    listed or None}: the *.xml definitions in ``directory`` (missing: none), as the process's own user reads them."""
    out = dict(domains=[], unreadable=[], error=None)
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        if e.errno != errno.ENOENT:
            out["error"] = "cannot list %s: %s" % (directory, e.strerror)
        return out
    for n in names:
        if not n.endswith(".xml"):
            continue
        path = os.path.join(directory, n)
        try:
            name, uuid = domxml.identity(_read(path))
        except (OSError, ValueError) as e:
            out["unreadable"].append(dict(path=path, error=getattr(e, "strerror", None) or str(e)))
            continue
        out["domains"].append(dict(name=name, uuid=uuid, path=path))
    return out


def _become(pw):
    os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    if os.getuid() != pw.pw_uid or os.geteuid() != pw.pw_uid:
        raise OSError(errno.EPERM, "could not become %s" % pw.pw_name)


def _child(w, pw, directory):
    code = 0
    try:
        try:
            _become(pw)
            answer = read_definitions(directory)
        except Exception as e:  # pylint: disable=broad-except
            answer = dict(domains=[], unreadable=[], error="cannot read as %s: %s" % (pw.pw_name, e))
        forked.write_all(w, json.dumps(answer).encode("utf-8", "surrogatepass"))
    except BaseException:  # pylint: disable=broad-except
        code = 1
    finally:
        os._exit(code)  # pylint: disable=protected-access


def _collect(pid, r, timeout):
    """The child's bytes (at most MAX_ANSWER) before ``timeout``; None when it took longer (it is killed)."""
    chunks, size, deadline = [], 0, time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            return None
        chunk = os.read(r, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER:
            os.kill(pid, signal.SIGKILL)
            return None
        chunks.append(chunk)


def as_user(pw, directory, timeout=TIMEOUT):
    """read_definitions(directory) run by a forked child that has become the user ``pw`` (a pwd entry); an error
    when no child can be forked safely (another thread: forked.usable)."""
    if not forked.usable():
        return dict(domains=[], unreadable=[], error="%s not read: this process cannot fork a child safely to become %s" % (
            directory, pw.pw_name))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(w, pw, directory)
    os.close(w)
    try:
        data = _collect(pid, r, timeout)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if data is None:
        return dict(domains=[], unreadable=[], error="reading %s as %s took longer than %g s" % (directory, pw.pw_name, timeout))
    return _checked(json.loads(data.decode("utf-8", "surrogatepass")) if data else None, pw, directory)


def _checked(answer, pw, directory):
    """The child's answer if it has the expected shape, else an error: what comes back is data, never trusted."""
    bad = dict(domains=[], unreadable=[], error="the child reading %s as %s sent no usable answer" % (directory, pw.pw_name))
    if not isinstance(answer, dict) or not isinstance(answer.get("domains"), list) or not isinstance(answer.get("unreadable"), list) \
            or not isinstance(answer.get("error"), (str, type(None))):
        return bad
    for u in answer["unreadable"]:
        if not (isinstance(u, dict) and isinstance(u.get("path"), str) and isinstance(u.get("error"), str)):
            return bad
    for d in answer["domains"]:
        if not (isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("path"), str)
                and isinstance(d.get("uuid"), (str, type(None)))):
            return bad
    return answer


def _homes(entries, skip):
    """(pwd entry, session directory) of each distinct home with a ~/.config (lstat: nothing followed, nothing read),
    but the session directory ``skip`` (the audited one)."""
    seen = set()
    for pw in entries:
        home = pw.pw_dir
        if not home or not os.path.isabs(home) or os.path.normpath(home) == "/" or home in seen:
            continue
        seen.add(home)
        directory = os.path.join(home, SESSION_DIR)
        if skip and os.path.normpath(directory) == os.path.normpath(skip):
            continue
        try:
            os.lstat(os.path.join(home, ".config"))
        except OSError:
            continue
        yield pw, directory


def _own(pw, directory):
    return read_definitions(directory)


def scan(skip=None, entries=None, read=as_user):
    """{"domains": [{uri, user, name, uuid, path}], "errors": [{uri, user, path, error}], "users": homes looked into}
    of every user's qemu:///session definitions but the audited ``skip`` directory. As root every user's home is
    read by a child that became the user (``read``); otherwise only this user's own, directly."""
    if entries is None:
        entries = pwd.getpwall() if os.geteuid() == 0 else [pwd.getpwuid(os.geteuid())]
    if os.geteuid() != 0:
        read = _own  # no other user's home is read: this user's is its own tree
    out = dict(domains=[], errors=[], users=0)
    for pw, directory in _homes(entries, skip):
        out["users"] += 1
        got = read(pw, directory)
        where = dict(uri=SESSION_URI, user=pw.pw_name)
        if got.get("error"):
            out["errors"].append(dict(where, path=directory, error=got["error"]))
        for u in got["unreadable"]:
            out["errors"].append(dict(where, path=u.get("path"), error=u.get("error")))
        for d in got["domains"]:
            out["domains"].append(dict(where, name=d["name"], uuid=d.get("uuid"), path=d["path"]))
    return out
