"""remediation/fwconfirm.py (guest_firewall's confirm-or-revert) on the real machine: the private state directory,
the pid identity check that keeps a recycled pid from being signalled, the fork/exec runner and the detached
reverter honouring or skipping its token. The whole flow with nft is in tests/integration/test_guest_firewall.py."""

import os
import stat
import time

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import fwconfirm


def test_state_dir_is_created_private_and_a_link_is_refused(tmp_path):
    d = str(tmp_path / "lib" / "firewall")
    assert fwconfirm.ensure_dir(d, create=False) is False and not os.path.exists(d)
    assert fwconfirm.ensure_dir(d) is True
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    os.chmod(d, 0o755)
    fwconfirm.ensure_dir(d)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    link = str(tmp_path / "link")
    os.symlink(d, link)
    with pytest.raises(fwconfirm.StateError, match="is not a directory"):
        fwconfirm.ensure_dir(link)


def test_records_are_private_and_a_planted_link_is_not_read(tmp_path):
    d = str(tmp_path)
    fwconfirm.write(d, fwconfirm.PENDING, {"token": "t"})
    assert fwconfirm.read_json(d, fwconfirm.PENDING) == {"token": "t"}
    assert stat.S_IMODE(os.stat(os.path.join(d, fwconfirm.PENDING)).st_mode) == 0o600
    assert fwconfirm.read_json(d, fwconfirm.APPLIED) is None
    os.symlink("/etc/hostname", os.path.join(d, fwconfirm.APPLIED))
    with pytest.raises(fwconfirm.StateError, match="symbolic link"):
        fwconfirm.read_json(d, fwconfirm.APPLIED)
    (tmp_path / fwconfirm.REVERTED).write_text("[1]")
    with pytest.raises(fwconfirm.StateError, match="not a JSON object"):
        fwconfirm.read_json(d, fwconfirm.REVERTED)


def test_a_process_is_known_by_pid_and_start_time():
    me, start = os.getpid(), fwconfirm.proc_start(os.getpid())
    assert isinstance(start, int) and fwconfirm.alive(me, start)
    assert not fwconfirm.alive(me, start + 1)  # same pid, another process: never signalled
    assert not fwconfirm.alive(None, start) and fwconfirm.proc_start(2 ** 22 + 7) is None


def test_run_execs_without_a_shell_and_returns_code_and_stderr():
    assert fwconfirm.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, "err")
    assert fwconfirm.run(["/nonexistent/nft", "-f", "x"])[0] == 127


def _wait(path, seconds=10):
    end = time.time() + seconds
    while time.time() < end and not os.path.exists(path):
        time.sleep(0.05)
    return os.path.exists(path)


def test_reverter_restores_only_its_own_pending_apply(tmp_path):
    """/bin/true stands in for nft: the reverter runs it on revert.nft when its token is still pending, and
    does nothing when the apply was confirmed (pending removed) meanwhile."""
    d = str(tmp_path)
    fwconfirm.write(d, fwconfirm.REVERT, "# nothing\n")
    fwconfirm.write(d, fwconfirm.PENDING, {"token": "t1", "applied_at": 1.0})
    pid, start = fwconfirm.spawn_reverter("/bin/true", d, "t1", 1)
    assert pid != os.getpid() and fwconfirm.alive(pid, start)
    assert _wait(os.path.join(d, fwconfirm.REVERTED))
    with fwconfirm.Lock(d):  # the reverter records and removes the pending apply under the lock
        rec = fwconfirm.read_json(d, fwconfirm.REVERTED)
        assert (rec["token"], rec["ok"], rec["why"]) == ("t1", True, "not confirmed within 1 seconds")
        assert fwconfirm.read_json(d, fwconfirm.PENDING) is None
    # Confirmed before the deadline: the reverter finds no pending apply of its token and leaves everything.
    os.unlink(os.path.join(d, fwconfirm.REVERTED))
    fwconfirm.write(d, fwconfirm.PENDING, {"token": "t2"})
    pid, start = fwconfirm.spawn_reverter("/bin/false", d, "t2", 1)
    with fwconfirm.Lock(d):
        fwconfirm.remove(d, fwconfirm.PENDING)
    fwconfirm.end(pid, start)
    time.sleep(1.5)
    assert not os.path.exists(os.path.join(d, fwconfirm.REVERTED))


def test_check_mode_leaves_a_readable_state_dir_as_it_is(tmp_path):
    """guest_firewall in check mode (repair=False) must change nothing: a state directory others may read is
    tightened only in a real run (ensure_dir chmodded it in check mode)."""
    d = str(tmp_path / "firewall")
    os.mkdir(d, 0o755)
    os.chmod(d, 0o755)
    assert fwconfirm.ensure_dir(d, create=False, repair=False) is True
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o755
    assert fwconfirm.ensure_dir(d, create=False) is True
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700


def test_a_link_swapped_in_after_the_check_is_never_chmodded_through(tmp_path, monkeypatch):
    """The mode is tightened through a descriptor of the directory opened without following a link: a link that
    replaces the checked directory before the chmod (lstat then chmod by path) no longer redirects it."""
    d, target = str(tmp_path / "firewall"), str(tmp_path / "elsewhere")
    os.mkdir(d)
    os.chmod(d, 0o755)
    os.mkdir(target)
    os.chmod(target, 0o755)
    real_lstat, real_open, swapped = os.lstat, os.open, []

    def swap(path):
        if path == d and not swapped:
            swapped.append(path)
            os.rmdir(d)
            os.symlink(target, d)

    def lstat_then_swap(path, *a, **kw):  # the old code: lstat, then chmod(path)
        st = real_lstat(path, *a, **kw)
        swap(path)
        return st

    def open_then_swap(path, *a, **kw):  # the new code: open, then fchmod(fd)
        fd = real_open(path, *a, **kw)
        swap(path)
        return fd

    monkeypatch.setattr(fwconfirm.os, "lstat", lstat_then_swap)
    monkeypatch.setattr(fwconfirm.os, "open", open_then_swap)
    fwconfirm.ensure_dir(d)
    monkeypatch.undo()
    assert swapped and stat.S_IMODE(os.stat(target).st_mode) == 0o755  # the link's target is left alone
