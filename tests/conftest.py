import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: unit tests run on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
