"""Shared test set-up: quiet TensorFlow logs, real-data location."""

import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Ends the test process with pytest's status, skipping native libraries' exit handlers.

    After every test and report is done, TensorFlow's, LiteRT's and MuJoCo's static
    destructors sometimes abort at interpreter exit ("free(): invalid pointer") in a process
    that loaded them all; that crash is after the results and says nothing about them.
    """
    if _EXIT_STATUS in config.stash:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS])
