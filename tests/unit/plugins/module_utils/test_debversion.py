"""Debian version ordering (deb-version(7)), checked against dpkg itself where it exists."""

import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.debversion import compare

CASES = [
    ("1.0", "1.0", 0), ("1.0", "1.1", -1), ("1:1.0", "2.0", 1), ("1.0~rc1", "1.0", -1),
    ("1.0-1", "1.0-1~deb12u1", 1), ("3.0.15-1~deb12u1", "3.0.11-1~deb12u2", 1),
    ("3.0.15-1~deb12u1+b1", "3.0.15-1~deb12u1", 1), ("1.0a", "1.0", 1), ("1.0+", "1.0", 1),
    ("9.2p1-2+deb12u5", "9.2p1-2+deb12u3", 1), ("1.10", "1.9", 1), ("0", "0:0", 0), ("2.36-9+deb12u14", "2.36-9+deb12u4", 1),
]


@pytest.mark.parametrize("a,b,want", CASES)
def test_compare(a, b, want):
    assert compare(a, b) == want
    reverse_a, reverse_b = b, a
    assert compare(reverse_a, reverse_b) == -want


@pytest.mark.skipif(not shutil.which("dpkg"), reason="needs dpkg to cross-check (Debian hosts)")
@pytest.mark.parametrize("a,b,want", CASES)
def test_agrees_with_dpkg(a, b, want):
    op = {-1: "lt", 0: "eq", 1: "gt"}[want]
    assert subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


def test_rejects_garbage():
    with pytest.raises(ValueError):
        compare("", "1")
