"""common/timeutil: the one set of time helpers (UTC only, no local time zone or DST involved)."""

import os
import subprocess
import sys

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.common import timeutil

T = 1795000000  # 2026-11-18T11:06:40Z


def test_iso_stamp_and_back():
    assert timeutil.iso(T) == "2026-11-18T11:06:40Z"
    assert timeutil.stamp(T) == "20261118T110640Z"
    assert timeutil.parse_iso(timeutil.iso(T)) == T


@pytest.mark.parametrize("bad", ["2026-11-18 08:26:40", "2026-11-18T08:26:40", "yesterday", None, 5])
def test_parse_iso_rejects_other_forms(bad):
    with pytest.raises(ValueError):
        timeutil.parse_iso(bad)


def test_parse_iso_ignores_the_local_time_zone_and_dst():
    # The ledger's old parser used mktime (local time, DST) minus time.timezone: an hour off in summer.
    collections = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".cache", "collections")
    code = ("import sys; sys.path.insert(0, %r); from ansible_collections.vmguard.hardening.plugins.module_utils."
            "common import timeutil as t; print(t.parse_iso('2026-07-01T12:00:00Z'))" % os.path.abspath(collections))
    for tz in ("UTC", "Europe/Berlin", "America/New_York"):
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TZ=tz), check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        assert float(out) == 1782907200.0, tz


def test_too_far_ahead_allows_one_day_of_clock_skew():
    assert not timeutil.too_far_ahead(5) and not timeutil.too_far_ahead(-timeutil.FUTURE_TOLERANCE_DAYS)
    assert timeutil.too_far_ahead(-timeutil.FUTURE_TOLERANCE_DAYS - 0.01) and timeutil.too_far_ahead(-1138.5)
