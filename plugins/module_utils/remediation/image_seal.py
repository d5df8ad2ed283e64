# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DIV-06 remediation: seal a root file system tree (remove, empty or truncate what
evidence/image_seal.check_tree reports), through directory handles opened one component at a time
without following symbolic links, so nothing outside the tree is ever touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence.image_seal import (
    check_tree, _DIR_FLAGS, _FILE_FLAGS)


def seal_tree(root, check_mode=False, done=None):
    """Remove, empty or truncate every violation; return the list of actions taken (or due).

    Every change is made through directory descriptors opened one component at a time with
    O_NOFOLLOW: a link is unlinked, never written, truncated or descended through.

    ``done``: a list each action is appended to once it is carried out, so a caller still knows what
    changed when a later action fails (the exception propagates; the tree is then partly sealed).
    """
    actions = check_tree(root)
    if check_mode:
        return actions
    done = [] if done is None else done
    for item in actions:
        rel = item["path"].lstrip("/")
        if item["action"] in ("empty", "create-empty", "truncate"):
            _empty(root, rel, create=item["action"] != "truncate")
        else:
            _remove(root, rel)
        done.append(item)
    return actions


def _open_parent(root, rel):
    """(descriptor of the directory holding root/rel, last name); no link followed below root."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for name in parts[:-1]:
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                raise OSError(e.errno, "%s (refusing to follow a link or a non-directory)" % e.strerror,
                              os.path.join(root, rel))
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _empty(root, rel, create):
    """Truncate root/rel to 0 bytes in place (owner and mode kept). Anything but a regular file is
    removed (a link as a link); with ``create`` a missing file is then created empty, mode 0444."""
    dfd, name = _open_parent(root, rel)
    try:
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(0, "changed while it was sealed", os.path.join(root, rel))
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)
            return
        if st is not None:
            _remove_at(dfd, name)
        if create:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o444,
                         dir_fd=dfd)
            try:
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
    finally:
        os.close(dfd)


def _remove(root, rel):
    """Remove root/rel: a link or a file is unlinked, a directory removed with everything below
    it - links inside are unlinked, never followed."""
    dfd, name = _open_parent(root, rel)
    try:
        _remove_at(dfd, name)
    finally:
        os.close(dfd)


def _remove_at(dfd, name):
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    try:
        for child in os.listdir(sub):
            _remove_at(sub, child)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dfd)
