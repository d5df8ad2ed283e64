# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time helpers shared by the policy, the rules and the reports (standard library only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re


ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"     # ledger times, report times: 2026-11-27T10:00:00Z
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"       # file names: 20261127T100000Z
_EPOCH = datetime.datetime(1970, 1, 1)
# A time written at most this far ahead of the reader's clock still counts (a small NTP step correction
# between the write and the read); anything further is no proof of an age: a clock gone wrong or a forged time.
CLOCK_SKEW_SECONDS = 5


def ahead(timestamp, now, skew=CLOCK_SKEW_SECONDS):
    """Seconds ``timestamp`` lies ahead of ``now`` beyond ``skew``, else 0 (0: an age can be judged)."""
    return timestamp - now if timestamp - now > skew else 0


def utc(timestamp):
    """Naive UTC datetime of a POSIX timestamp (no deprecated utcfromtimestamp)."""
    return _EPOCH + datetime.timedelta(seconds=timestamp)


def iso(timestamp):
    """A POSIX timestamp as ISO 8601 UTC text (ISO_FORMAT)."""
    return utc(timestamp).strftime(ISO_FORMAT)


def stamp(timestamp):
    """A POSIX timestamp as a compact UTC stamp for file names (STAMP_FORMAT)."""
    return utc(timestamp).strftime(STAMP_FORMAT)


def parse_iso(text):
    """ISO_FORMAT text as a POSIX timestamp (UTC, no local time zone or DST involved); ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError("expected a UTC time YYYY-MM-DDTHH:MM:SSZ, got %r" % (text,))
    return (datetime.datetime.strptime(text, ISO_FORMAT) - _EPOCH).total_seconds()


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


# A recorded time (an image build, a last hardening) more than this many days ahead of the reader's clock gives no
# age at all - a clock gone wrong when it was written, or a forged record - and is reported as such (DIV-08, VIS-04,
# the start gate) instead of counting as "not old yet" for ever. Within it, it counts: a clock somewhat ahead, a
# local time taken for UTC.
FUTURE_TOLERANCE_DAYS = 1


def too_far_ahead(age_days):
    """Whether an age in days (negative: in the future) lies more than FUTURE_TOLERANCE_DAYS in the future."""
    return age_days < -FUTURE_TOLERANCE_DAYS
