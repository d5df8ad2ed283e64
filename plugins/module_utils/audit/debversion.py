# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian version comparison (deb-version(7)): [epoch:]upstream[-revision], with '~' sorting
before everything, even the end of the string. Standard library only; the guest has no
python3-apt requirement for auditing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


def _order(c):
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a, b):
    """Compare upstream or revision strings: alternating non-digit and digit runs."""
    while a or b:
        na = re.match(r"^[^0-9]*", a).group(0)
        nb = re.match(r"^[^0-9]*", b).group(0)
        a, b = a[len(na):], b[len(nb):]
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        da = re.match(r"^[0-9]*", a).group(0)
        db = re.match(r"^[0-9]*", b).group(0)
        a, b = a[len(da):], b[len(db):]
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
    return 0


def split(version):
    version = version.strip()
    if not version:
        raise ValueError("empty version")
    epoch = 0
    if ":" in version:
        e, version = version.split(":", 1)
        if not e.isdigit():
            raise ValueError("bad epoch in %r" % version)
        epoch = int(e)
    if "-" in version:
        upstream, revision = version.rsplit("-", 1)
    else:
        upstream, revision = version, ""
    return epoch, upstream, revision


def compare(a, b):
    """-1, 0 or 1 as Debian version a sorts before, equal to, or after b."""
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)
