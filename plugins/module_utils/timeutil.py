# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time helpers shared by the policy, the rules and the reports (standard library only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re


def utc(timestamp):
    """Naive UTC datetime of a POSIX timestamp (no deprecated utcfromtimestamp)."""
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=timestamp)


def parse_date(value):
    """A YYYY-MM-DD string (or a date) as a date; ValueError otherwise."""
    if isinstance(value, datetime.date):
        return value if not isinstance(value, datetime.datetime) else value.date()
    if not isinstance(value, str) or not re.match(r"\A\d{4}-\d{2}-\d{2}\Z", value):
        raise ValueError("expected a date YYYY-MM-DD, got %r" % (value,))
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as e:  # 2099-02-30, month 13: the shape is right but there is no such day
        raise ValueError("expected a date YYYY-MM-DD, got %r (%s)" % (value, e))
