# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root-safe file writes and reads, the one place the project writes or reads state files.

``atomic_write`` never uses a predictable temporary name: the new content goes to a private file
made in the target's own directory (O_EXCL, a random name, mode set before any byte is written),
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
import uuid

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


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
    is left behind. (atomic_write_at in the directory of ``path``, which is the caller's own.)
    """
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    dfd = os.open(directory, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        atomic_write_at(dfd, base, path, data, mode, owner)
    finally:
        os.close(dfd)
    return path


# Under a root the caller owns (an offline image, a guest's /): every directory opened one component at a time
# from the root's descriptor with O_NOFOLLOW|O_DIRECTORY, every read, write, rename and unlink made relative to
# a directory descriptor, so a symbolic link planted anywhere in the tree is never followed out of it.

class LinkRefusedError(UnsafePathError):
    """A directory component under root that is a symbolic link: never followed, it could lead out of the tree.

    ``str()`` is "<root>/etc/ssh is a symbolic link: refusing to follow it out of the image"."""

    def __init__(self, root, path):
        UnsafePathError.__init__(self, path, "is a symbolic link")
        where = "" if os.path.realpath(root) == "/" else " out of the image"
        self.args = ("%s is a symbolic link: refusing to follow it%s" % (path, where),)


def lstat_at(dfd, name):
    """os.lstat of ``name`` in the directory ``dfd``; None when it does not exist."""
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise


def _open_sub(root, dfd, name, path, create):
    """Descriptor of the directory ``name`` in ``dfd`` (never through a link); None when missing and not ``create``."""
    for attempt in (1, 2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dfd)
        except OSError as e:
            st = lstat_at(dfd, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise LinkRefusedError(root, path)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(path, "is %s, not a directory" % _kind(st.st_mode))
            if st is not None or e.errno != errno.ENOENT:
                raise
        if not create:
            return None
        try:
            os.mkdir(name, 0o755, dir_fd=dfd)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
    raise OSError(errno.ENOENT, "could not create the directory", path)


def open_dir_under(root, rel, create=False, missing_ok=False):
    """Descriptor of the directory root/rel, each component below root opened with O_NOFOLLOW from its parent's
    descriptor (the root itself is the caller's and may be reached any way).

    A component that is a symbolic link raises LinkRefusedError, one that is not a directory UnsafePathError.
    A missing component is created (0755) with ``create``; otherwise None with ``missing_ok``, else OSError ENOENT.
    """
    names = [n for n in rel.strip("/").split("/") if n]
    if [n for n in names if n in (".", "..")]:
        raise ValueError("%s: a path under the root may not contain . or .." % os.path.join(root, rel.lstrip("/")))
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    path = root
    try:
        for name in names:
            path = os.path.join(path, name)
            sub = _open_sub(root, fd, name, path, create)
            os.close(fd)
            fd = sub
            if fd is None:
                if missing_ok:
                    return None
                raise OSError(errno.ENOENT, "No such file or directory", path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return fd


def close_all(fds):
    for fd in fds:
        if fd is not None:
            os.close(fd)


def check_target_at(dfd, name, path):
    """Refuse a target that exists as anything but a regular file (links are never followed)."""
    st = lstat_at(dfd, name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(path, "is %s, refusing to write through it" % _kind(st.st_mode))


def read_regular_at(dfd, name, path, limit):
    """The bytes of the regular file ``name`` in ``dfd`` (no link followed, no blocking); None when missing."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        if e.errno == errno.ELOOP:
            raise UnsafePathError(path, "is a symbolic link, refusing to follow it")
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(path, "is not a regular file")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnsafePathError(path, "is larger than the %d bytes allowed" % limit)
    return data


def _temp_name(base):
    return ".%s.%s.vmguard-tmp" % (base[:64], uuid.uuid4().hex[:12])


def _at_free_name(base, make):
    """(name, make(name)) for the first unused random temporary name after ``base`` (make raises EEXIST when taken)."""
    for attempt in range(100):
        tmp = _temp_name(base)
        try:
            return tmp, make(tmp)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
    raise OSError(errno.EEXIST, "no free temporary name", base)


def write_new_at(dfd, base, data, mode, owner=None):
    """A new private file (O_EXCL, never through a link) named after ``base`` in ``dfd`` holding ``data`` at
    ``mode``, fsynced; returns its name. Nothing is left behind on failure."""
    tmp, fd = _at_free_name(base, lambda name: os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dfd))
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
    except BaseException:
        unlink_quietly(dfd, tmp)
        raise
    return tmp


def unlink_quietly(dfd, name):
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def atomic_write_at(dfd, name, path, data, mode, owner=None):
    """Replace ``name`` in ``dfd`` with ``data`` at ``mode``: a private temporary file in the same directory,
    renamed over it. A target that is a link or not a regular file is refused (UnsafePathError naming ``path``)."""
    check_target_at(dfd, name, path)
    tmp = write_new_at(dfd, name, data, mode, owner)
    try:
        check_target_at(dfd, name, path)  # again: nothing may have put a link there meanwhile (rename would replace it anyway)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        unlink_quietly(dfd, tmp)
        raise
    os.fsync(dfd)


def link_at(dfd, name, target):
    """Make ``name`` in ``dfd`` a symbolic link to ``target``: made at a private name, renamed over the entry."""
    tmp, dummy = _at_free_name(name, lambda free: os.symlink(target, free, dir_fd=dfd))
    try:
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        unlink_quietly(dfd, tmp)
        raise
    os.fsync(dfd)


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
        return read_fd(fd, limit, path)
    finally:
        os.close(fd)


def read_fd(fd, limit, path):
    """The bytes of the open file ``fd`` (``path`` names it), at most ``limit``: UnsafePathError past it."""
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
    return b"".join(chunks)
