# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root-safe file writes and reads, the one place the project writes or reads state files.

``atomic_write`` never uses a predictable temporary name: the new content goes to a private file
made by mkstemp in the target's own directory (O_EXCL, mode set before any byte is written),
is fsynced, renamed over the target (a rename replaces the directory entry and never follows a
link), and the directory is fsynced. It refuses a target that is a symbolic link or not a
regular file, so a planted link cannot redirect a root write.

``read_regular`` opens without following a final symbolic link and without blocking (a FIFO
cannot hang the caller), requires a regular file and caps the size.

Standard library only, Python 3.6+ (module_utils used by modules).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import tempfile

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class UnsafePathError(ValueError):
    """A path that is not what it must be (a link, not a regular file, too large...).

    ``str()`` is "<path>: <why>"."""

    def __init__(self, path, why):
        ValueError.__init__(self, "%s: %s" % (path, why))
        self.path = path
        self.why = why


def _kind(mode):
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _check_target(path):
    """Refuse a target that exists as anything but a regular file (links are never followed)."""
    try:
        st = os.lstat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(path, "is %s, refusing to write through it" % _kind(st.st_mode))


def fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o600, owner=None):
    """Replace ``path`` with ``data`` (bytes, or text written as UTF-8) atomically, at ``mode``.

    ``owner`` = (uid, gid) to chown the new file to before it is renamed into place (root only).
    Raises UnsafePathError when ``path`` is a symbolic link or not a regular file, OSError when
    the directory cannot be written. On failure the target is untouched and no temporary file
    is left behind.
    """
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    _check_target(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % base[:64], suffix=".vmguard-tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, owner[0], owner[1])
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        _check_target(path)  # again: nothing may have put a link there meanwhile (rename would replace it anyway)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return path


def open_regular(path, limit=None):
    """Open ``path`` for reading: no link followed, no blocking, a regular file of at most
    ``limit`` bytes. Returns (fd, os.stat_result); the caller closes fd.

    Raises OSError ENOENT when it does not exist, UnsafePathError for anything else wrong.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(path, "is a symbolic link, refusing to follow it")
        if e.errno == errno.ENOENT:
            raise
        raise UnsafePathError(path, "cannot be opened: %s" % (e.strerror or e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(path, "is %s, not a regular file" % _kind(st.st_mode))
        if limit is not None and st.st_size > limit:
            raise UnsafePathError(path, "is %d bytes, larger than the %d allowed" % (st.st_size, limit))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(path, limit, missing_ok=False):
    """The bytes of the regular file ``path`` (see open_regular), at most ``limit`` bytes.

    Returns None when it does not exist and ``missing_ok``; raises OSError ENOENT otherwise.
    A file that grows past ``limit`` while it is read is refused too.
    """
    try:
        fd, st = open_regular(path, limit)
    except OSError as e:
        if missing_ok and e.errno == errno.ENOENT:
            return None
        raise
    try:
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise UnsafePathError(path, "grew larger than the %d bytes allowed while it was read" % limit)
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
