# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Confirm-or-revert for the guest firewall (module guest_firewall).

An apply that is not confirmed in time is undone by the guest itself: before applying, the module
saves what restores table inet vmguard as it was (``revert.nft``) in its private state directory
(0700 root) and starts a detached reverter: a double-forked process in its own session, with no
file descriptor of the module left open (Ansible sees the module end), that sleeps until the
deadline, then takes the state lock and, if the apply it belongs to is still pending (same
token in ``pending.json``), loads ``revert.nft`` with nft and records ``reverted.json``. The
confirming call takes the same lock, removes ``pending.json`` (the reverter then finds nothing to
do) and ends the reverter (SIGTERM, only when its pid still has the start time recorded, so a
recycled pid is never signalled). No shell and no systemd are involved; nft gets an argument
vector, the files are private and written atomically.

Standard library only, Python 3.6+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import fcntl
import json
import os
import signal
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

PENDING, REVERT, STAGED, APPLIED, REVERTED, LOCK = (
    "pending.json", "revert.nft", "staged.nft", "applied.json", "reverted.json", "lock")
RECORD_LIMIT = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class StateError(ValueError):
    """The state directory or one of its files cannot be trusted (message names the path)."""


def ensure_dir(path, create=True, repair=True):
    """``path`` as a private directory of this user (0700, not a link, not writable by others).
    Returns False when it does not exist and ``create`` is false.

    The directory is opened without following a link and its mode is checked and tightened through that
    descriptor (fstat, fchmod), so a link put in its place after a check is never chmodded through.
    ``repair`` false (check mode): a directory others may read is left as it is - nothing changes."""
    try:
        fd = _open_dir(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        if not create:
            return False
        parent = os.path.dirname(path.rstrip("/"))
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        os.mkdir(path, 0o700)
        fd = _open_dir(path)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise StateError("%s: is owned by uid %d, not by uid %d" % (path, st.st_uid, os.geteuid()))
        if st.st_mode & 0o077 and repair:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return True


def _open_dir(path):
    """A descriptor of the directory ``path`` (never through a final link); StateError for a link or a
    non-directory, OSError ENOENT when it does not exist."""
    try:
        return os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StateError("%s: is not a directory (a link or a file), refusing to use it" % path)
        if e.errno == errno.ENOENT:
            raise
        raise StateError("%s: cannot be read: %s" % (path, e.strerror or e))


class Lock(object):
    """flock on <state dir>/lock (created 0600, never through a link)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK)
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
        except OSError as e:
            raise StateError("%s: cannot be opened: %s" % (self.path, e.strerror or e))
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing the last descriptor releases the lock
        self.fd = None


def read_text(path, limit=RECORD_LIMIT):
    """Text of a regular file, None when it does not exist; StateError for a link or anything else."""
    try:
        data = fsutil.read_regular(path, limit, missing_ok=True)
    except fsutil.UnsafePathError as e:
        raise StateError(str(e))
    return None if data is None else data.decode("utf-8", "replace")


def read_json(directory, name):
    text = read_text(os.path.join(directory, name))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise StateError("%s: not JSON" % os.path.join(directory, name))
    if not isinstance(data, dict):
        raise StateError("%s: not a JSON object" % os.path.join(directory, name))
    return data


def write(directory, name, data, mode=0o600):
    if isinstance(data, dict):
        data = json.dumps(data, sort_keys=True) + "\n"
    return fsutil.atomic_write(os.path.join(directory, name), data, mode=mode)


def remove(directory, name):
    try:
        os.unlink(os.path.join(directory, name))
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


def new_token():
    return binascii.hexlify(os.urandom(16)).decode("ascii")


def proc_start(pid):
    """Start time (clock ticks since boot) of process ``pid``, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            text = f.read()
    except (IOError, OSError, ValueError, TypeError):
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def alive(pid, start):
    """Whether the process ``pid`` that started at ``start`` still runs (not a zombie, not a recycled pid)."""
    if not pid or start is None:
        return False
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            text = f.read()
    except (IOError, OSError, ValueError, TypeError):
        return False
    state = text[text.rfind(")") + 2:].split()[:1]
    return proc_start(pid) == start and state != ["Z"]


def end(pid, start):
    """SIGTERM the reverter ``pid`` when it is still the process that started at ``start``."""
    if alive(pid, start):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except OSError:
            pass


def run(argv):
    """(exit code, stderr text) of ``argv`` (an absolute program path and its arguments; no shell, no PATH
    lookup), stdin and stdout on /dev/null. Used where no AnsibleModule exists: in the detached reverter."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(wfd, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    status = os.waitpid(pid, 0)[1]
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return code, b"".join(chunks).decode("utf-8", "replace").strip()


def revert_now(nft, directory, token, why):
    """Load revert.nft when ``token`` is still the pending apply (caller holds the lock). Records
    reverted.json {token, time, why, ok, error} and removes the pending apply. Returns that record,
    or None when the apply is no longer pending (confirmed meanwhile)."""
    pending = read_json(directory, PENDING)
    if not pending or pending.get("token") != token:
        return None
    rc, err = run([nft, "-f", os.path.join(directory, REVERT)])
    record = {"token": token, "time": time.time(), "why": why, "ok": rc == 0,
              "error": None if rc == 0 else "nft -f revert.nft failed (rc %d): %s" % (rc, err),
              "applied_at": pending.get("applied_at")}
    write(directory, REVERTED, record)
    remove(directory, PENDING)
    remove(directory, STAGED)
    return record


def _reverter(nft, directory, token, seconds):
    """Body of the detached process: wait, then revert unless confirmed. Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 1.0))
        with Lock(directory):
            revert_now(nft, directory, token, "not confirmed within %d seconds" % seconds)
    except BaseException:  # pylint: disable=broad-except
        code = 1
    os._exit(code)


def _detach():
    """In the grandchild: no controlling terminal, no inherited descriptors, cwd /."""
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    os.closerange(3, _max_fd())


def _max_fd():
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


def spawn_reverter(nft, directory, token, seconds):
    """Start the detached reverter; returns (pid, start time) of the process that will revert."""
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # intermediate: new session, fork the reverter, report its pid, exit
        try:
            os.close(rfd)
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.close(wfd)
                _detach()
                _reverter(nft, directory, token, seconds)
            os.write(wfd, str(grandchild).encode("ascii"))
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 64)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(child, 0)
    try:
        pid = int(b"".join(chunks))
    except ValueError:
        raise StateError("the revert process could not be started")
    return pid, proc_start(pid)
