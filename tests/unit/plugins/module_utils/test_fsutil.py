"""fsutil on real files: atomic writes never at a predictable name and never through a link;
reads of regular files only (a FIFO fails at once, never hangs), with a size cap."""

import errno
import os
import stat
import time

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil

CANARY = "canary: must never change\n"


@pytest.fixture
def canary(tmp_path_factory):
    d = tmp_path_factory.mktemp("outside")
    p = d / "canary"
    p.write_text(CANARY)
    os.utime(str(p), (1000000000, 1000000000))
    return p


def untouched(p):
    st = os.lstat(str(p))
    return stat.S_ISREG(st.st_mode) and p.read_text() == CANARY and st.st_mtime == 1000000000


def test_atomic_write_creates_and_replaces_at_mode(tmp_path):
    target = tmp_path / "state.json"
    old = os.umask(0)
    try:
        fsutil.atomic_write(str(target), "one\n", 0o600)
    finally:
        os.umask(old)
    assert target.read_text() == "one\n" and os.stat(str(target)).st_mode & 0o777 == 0o600
    fsutil.atomic_write(str(target), b"two\n", 0o444)
    assert target.read_bytes() == b"two\n" and os.stat(str(target)).st_mode & 0o777 == 0o444
    assert os.listdir(str(tmp_path)) == ["state.json"]  # no temporary file left


@pytest.mark.parametrize("planted", [".tmp", ".vmguard-new", ".new", "~"])
def test_predictable_temporary_names_are_never_used(tmp_path, canary, planted):
    target = tmp_path / "state.json"
    link = tmp_path / ("state.json" + planted)
    os.symlink(str(canary), str(link))
    fsutil.atomic_write(str(target), "data\n", 0o600)
    assert untouched(canary) and os.path.islink(str(link))
    assert target.read_text() == "data\n" and not os.path.islink(str(target))


def test_target_that_is_a_link_is_refused(tmp_path, canary):
    target = tmp_path / "state.json"
    os.symlink(str(canary), str(target))
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.atomic_write(str(target), "data\n", 0o600)
    assert str(target) in str(e.value) and "symbolic link" in str(e.value)
    assert untouched(canary) and os.path.islink(str(target))
    assert sorted(os.listdir(str(tmp_path))) == ["state.json"]


def test_target_that_is_a_dangling_link_is_refused(tmp_path):
    target = tmp_path / "state.json"
    victim = tmp_path / "outside-created"
    os.symlink(str(victim), str(target))
    with pytest.raises(fsutil.UnsafePathError):
        fsutil.atomic_write(str(target), "data\n")
    assert not os.path.lexists(str(victim))


def test_target_that_is_a_fifo_is_refused_without_blocking(tmp_path, no_hang):
    target = tmp_path / "state.json"
    os.mkfifo(str(target))
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.atomic_write(str(target), "data\n")
    assert "FIFO" in str(e.value)


def test_failed_write_leaves_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old\n")
    with pytest.raises(OverflowError):
        fsutil.atomic_write(str(target), "new\n", owner=(2 ** 40, 0))
    assert target.read_text() == "old\n" and os.listdir(str(tmp_path)) == ["state.json"]


def test_read_regular(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert fsutil.read_regular(str(p), 10) == b"abc"
    assert fsutil.read_regular(str(tmp_path / "missing"), 10, missing_ok=True) is None
    with pytest.raises(OSError) as e:
        fsutil.read_regular(str(tmp_path / "missing"), 10)
    assert e.value.errno == errno.ENOENT


def test_read_regular_refuses_a_link_even_to_a_regular_file(tmp_path, canary):
    link = tmp_path / "f"
    os.symlink(str(canary), str(link))
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.read_regular(str(link), 1024)
    assert str(e.value) == "%s: is a symbolic link, refusing to follow it" % link


def test_read_regular_fifo_fails_fast(tmp_path, no_hang):
    fifo = tmp_path / "f"
    os.mkfifo(str(fifo))
    t0 = time.monotonic()
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.read_regular(str(fifo), 1024)
    assert time.monotonic() - t0 < 1
    assert str(e.value) == "%s: is a FIFO, not a regular file" % fifo


def test_read_regular_size_cap_and_directory(tmp_path):
    big = tmp_path / "big"
    with open(str(big), "wb") as f:
        f.truncate(2 * 1024 * 1024)
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.read_regular(str(big), 1024 * 1024)
    assert "2097152 bytes, larger than the 1048576 allowed" in str(e.value)
    with pytest.raises(fsutil.UnsafePathError) as e:
        fsutil.read_regular(str(tmp_path), 1024)
    assert "a directory" in str(e.value)
