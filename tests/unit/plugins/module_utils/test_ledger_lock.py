"""ledger.locked: the per-record lock every read-modify-write of a ledger record holds."""

import os
import threading
import time

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

U = "0b7d2c61-3a8e-4f7e-9d1a-5c2b9e8f7a10"


def test_lock_file_is_private_and_beside_the_record(tmp_path):
    d = str(tmp_path / "ledger")
    with ledger.locked(d, U) as path:
        assert path == os.path.join(d, U + ".lock") == ledger.lock_path_for(d, U)
        assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(d).st_mode & 0o777 == 0o700
    with ledger.locked(d, U.upper()):  # the same record whatever the case of its UUID
        pass
    assert os.listdir(d) == [U + ".lock"]


def test_second_writer_times_out_with_a_clear_error_and_gets_it_after_release(tmp_path):
    d = str(tmp_path)
    with ledger.locked(d, U):
        t0 = time.time()
        with pytest.raises(ledger.LockTimeout, match=r"%s\.lock: the ledger record is locked by another writer \(waited 0\.3s\)" % U):
            with ledger.locked(d, U, timeout=0.3):
                pass
        assert 0.3 <= time.time() - t0 < 2
    with ledger.locked(d, U, timeout=0):
        pass


def test_a_waiting_writer_proceeds_when_the_holder_releases(tmp_path):
    d, order = str(tmp_path), []
    held = threading.Event()

    def holder():
        with ledger.locked(d, U):
            held.set()
            time.sleep(0.3)
            order.append("holder done")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with ledger.locked(d, U, timeout=5):
        order.append("waiter in")
    t.join()
    assert order == ["holder done", "waiter in"]


def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path):
    d = tmp_path / "ledger"
    d.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    os.symlink(str(target), str(d / (U + ".lock")))
    with pytest.raises(ledger.LedgerError, match="the ledger lock is a symbolic link, refusing to use it"):
        with ledger.locked(str(d), U):
            pass
    assert target.read_text() == "keep"


def test_a_dangling_symlink_lock_is_refused_and_never_created_through(tmp_path):
    d = tmp_path / "ledger"
    d.mkdir()
    os.symlink(str(tmp_path / "planted"), str(d / (U + ".lock")))
    with pytest.raises(ledger.LedgerError, match="symbolic link"):
        with ledger.locked(str(d), U):
            pass
    assert not (tmp_path / "planted").exists()


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path):
    d = tmp_path / "ledger"
    d.mkdir()
    os.mkfifo(str(d / (U + ".lock")))
    with pytest.raises(ledger.LedgerError, match="not a regular file"):
        with ledger.locked(str(d), U):
            pass


def test_a_bad_uuid_is_refused_before_anything_is_created(tmp_path):
    with pytest.raises(ValueError, match="not a domain UUID"):
        with ledger.locked(str(tmp_path / "ledger"), "../../etc/passwd"):
            pass
    assert not (tmp_path / "ledger").exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with ledger.locked(str(tmp_path), U):
            raise RuntimeError("boom")
    with ledger.locked(str(tmp_path), U, timeout=0):
        pass
