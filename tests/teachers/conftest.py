import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models train far faster on one thread than on oversubscribed cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
