"""Shared test options and fixtures.

``pytest --update-goldens`` rewrites the golden files under tests/golden/ from
the current output instead of comparing against them (see test_listing.py).
Hypothesis runs derandomized (profile "ci"); ``HYPOTHESIS_PROFILE=explore``
draws fresh examples.
"""

import os

import pytest
from hypothesis import settings

# Property tests draw the same examples on every machine and run (derandomize):
# CI time and results do not depend on luck or on a local example database.
# HYPOTHESIS_PROFILE=explore draws new examples each run (and keeps failures).
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output instead of comparing")


@pytest.fixture
def update_goldens(request) -> bool:
    """True when the run was started with --update-goldens."""
    return request.config.getoption("--update-goldens")
