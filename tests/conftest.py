import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: unit tests run on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize_norm_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, so that loading them is actually checked.

    The ranges keep activations of 100+ layer networks in a sane range (residual branches
    shrink a little, so a missed key or a wrong op still moves outputs by far more than 1e-4).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
                n = m.weight.numel()
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.25)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model
