"""What a checkpoint keeps of the random generators brings every one of them back."""
import random

import numpy as np
import torch

from res2net_det.utils.rng import rng_state, set_rng_state


def test_restored_generators_draw_the_same_numbers():
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
