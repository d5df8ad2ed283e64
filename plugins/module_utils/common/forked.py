# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one function in a forked child while the caller goes on, and get its result back.

report.write_all renders and writes part of the report set this way: the five reports of a 1,000-domain
audit are 85 MB of text, and two processes write them in about half the time of one. hypervisor_facts
reads half of a large host's domains this way, on a libvirt connection the child opens itself. The child shares
the parent's data (copy on write: nothing is serialized on the way in); its return value, or the
exception it raised, comes back pickled through a pipe (pickle is safe here: the bytes come from a child
of this process, never from a file or the network). The child leaves with os._exit: no atexit handler,
no buffered output of the parent's flushed twice.

Pure: no Ansible import. Where fork is missing (not POSIX), ``start`` returns None and the caller runs the
function itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import os
import pickle
import signal
import threading


class ChildFailed(Exception):
    """The child ended without an answer (killed, or its answer could not be read)."""


def usable():
    """Whether a child can be forked safely: POSIX fork, and no other thread in this process (a fork
    copies only the calling thread; another thread's held locks would stay held in the child), neither a
    Python thread nor one a C library started (Linux: /proc/self/task lists every thread)."""
    return hasattr(os, "fork") and threading.active_count() == 1 and _os_threads() <= 1


def _os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # no /proc (not Linux): the Python threads are what can be known
        return 1


def start(fn, *args):
    """Fork a child that runs fn(*args); return its handle for ``finish``, or None (not usable here)."""
    if not usable():
        return None
    r, w = os.pipe()
    _freeze()
    try:
        pid = os.fork()
    except OSError:
        _unfreeze()
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: what it shares stays frozen
        os.close(r)
        _child(w, fn, args)
    _unfreeze()
    os.close(w)
    return (pid, r)


def _freeze():
    """Move every object the collector tracks out of its reach (gc.freeze, Python 3.7+), so that the child's
    collections never walk - and write to, page by page - the objects it shares with this process: each
    write would copy a page the child otherwise only reads."""
    if hasattr(gc, "freeze"):
        gc.freeze()


def _unfreeze():
    """This process's objects back under the collector once the child is forked."""
    if hasattr(gc, "unfreeze"):
        gc.unfreeze()


def _child(w, fn, args):
    code = 0
    try:
        try:
            answer = (True, fn(*args))
        except BaseException as e:  # pylint: disable=broad-except
            answer = (False, e)
        try:
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # pylint: disable=broad-except
            data = pickle.dumps((False, ChildFailed("the child's answer cannot be sent back (%s: %s)" % (type(e).__name__, e))),
                                pickle.HIGHEST_PROTOCOL)
        write_all(w, data)
    except BaseException:  # pylint: disable=broad-except
        code = 1
    finally:
        os._exit(code)  # pylint: disable=protected-access


def write_all(fd, data):
    """Write every byte of ``data`` to ``fd`` (a pipe takes it in pieces)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def finish(handle):
    """Wait for the child; return what its function returned, or raise what it raised (ChildFailed when it
    died without an answer)."""
    pid, r = handle
    chunks = []
    try:
        while True:
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _pid, status = os.waitpid(pid, 0)
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception:  # pylint: disable=broad-except
        raise ChildFailed("the child process (pid %d) ended without an answer (wait status %d)" % (pid, status))
    if ok:
        return value
    raise value


def abandon(handle):
    """Stop a child whose answer is no longer wanted (the caller failed meanwhile), and reap it."""
    pid, r = handle
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass  # already gone
    os.close(r)
    os.waitpid(pid, 0)
