import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: unit tests run on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_wsol(tmp_path_factory):
    """A generated WSOL-layout set small enough for a few training steps: 16 train / 8 val images
    of 64 px, 4 classes (``DATASETS.WSOL_SPLITS`` entries point at it)."""
    from res2net_det.data.shapes_wsol import generate_shapes_wsol

    return generate_shapes_wsol(str(tmp_path_factory.mktemp("wsol") / "shapes"), num_train=16, num_val=8,
                                image_size=64, seed=3)
