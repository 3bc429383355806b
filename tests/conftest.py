"""Fixtures shared across the test packages."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Tiny models train far faster on one thread than on oversubscribed cores, and give the same numbers on
    every machine (a reduction's order follows the thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
