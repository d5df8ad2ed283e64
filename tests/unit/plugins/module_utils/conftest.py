"""Fixtures shared by the module_utils tests."""

import signal

import pytest


@pytest.fixture
def no_hang():
    """Turn a hang (what a FIFO does to a blocking open or read) into a test failure after 5 seconds."""
    def boom(signum, frame):
        raise AssertionError("blocked: a FIFO was opened for a blocking read")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
