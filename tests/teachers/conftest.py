import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """Every teacher test runs on one thread (tests/conftest.py)."""
