"""forked.py: a function run in a real forked child gives back its value or its exception; a child that
dies without answering is an error, never a silent empty result; nothing is left running."""

import _thread
import errno
import os
import signal
import threading
import time

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked


def _child_pid():
    return os.getpid()


def test_value_comes_back_from_another_process():
    handle = forked.start(_child_pid)
    assert handle is not None
    pid = forked.finish(handle)
    assert pid == handle[0] and pid != os.getpid()


def test_large_value_is_read_whole():
    big = "x" * (3 << 20)  # larger than a pipe buffer: the parent must read while the child writes
    handle = forked.start(lambda n: {"text": big * n, "n": n}, 2)
    out = forked.finish(handle)
    assert out["n"] == 2 and len(out["text"]) == 6 << 20


def _raise_oserror(path):
    raise OSError(errno.ENOSPC, "No space left on device", path)


def test_exception_comes_back_with_its_type_and_message():
    handle = forked.start(_raise_oserror, "/reports/report.sarif")
    with pytest.raises(OSError) as e:
        forked.finish(handle)
    assert e.value.errno == errno.ENOSPC and e.value.filename == "/reports/report.sarif"


def test_child_that_dies_without_an_answer_is_an_error():
    handle = forked.start(lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(forked.ChildFailed) as e:
        forked.finish(handle)
    assert "without an answer" in str(e.value) and str(handle[0]) in str(e.value)


def test_unpicklable_value_is_an_error_not_a_hang():
    handle = forked.start(lambda: (lambda: None))
    with pytest.raises(forked.ChildFailed) as e:
        forked.finish(handle)
    assert "answer cannot be sent back" in str(e.value) and "local object" in str(e.value)


def test_abandoned_child_is_killed_and_reaped():
    r, w = os.pipe()
    handle = forked.start(lambda fd: os.read(fd, 1), r)  # blocks until killed
    forked.abandon(handle)
    with pytest.raises(ChildProcessError):
        os.waitpid(handle[0], os.WNOHANG)  # reaped: no such child any more
    os.close(r)
    os.close(w)


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not forked.usable() and forked.start(_child_pid) is None
    finally:
        stop.set()
        t.join()
    assert wait_until(forked.usable)  # the OS may list a joined thread in /proc a moment longer


def test_no_fork_while_a_thread_unknown_to_threading_runs():
    """A thread a C library starts (here: _thread, which threading does not count) is seen in /proc."""
    lock = _thread.allocate_lock()
    lock.acquire()
    started = _thread.allocate_lock()
    started.acquire()

    def hold():
        started.release()
        lock.acquire()
    _thread.start_new_thread(hold, ())
    started.acquire()
    try:
        assert threading.active_count() == 1  # invisible to threading
        assert not forked.usable() and forked.start(_child_pid) is None
    finally:
        lock.release()
    assert wait_until(forked.usable), "the thread did not end"


def wait_until(test, seconds=5.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if test():
            return True
        time.sleep(0.01)
    return test()
