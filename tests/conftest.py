"""Shared test options and fixtures.

``pytest --update-goldens`` rewrites the golden files under tests/golden/ from
the current output instead of comparing against them (see test_listing.py).
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output instead of comparing")


@pytest.fixture
def update_goldens(request) -> bool:
    """True when the run was started with --update-goldens."""
    return request.config.getoption("--update-goldens")
