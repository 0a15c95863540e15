import itertools

import numpy as np

from res2net_det.engines.torchvision.data import MappedDataset, TrainingSampler


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_a_started_sampler_continues_the_stream():
    full = _take(TrainingSampler(7, seed=5), 30)
    resumed = TrainingSampler(7, seed=5)
    resumed.set_start(11)
    assert _take(resumed, 19) == full[11:]


def test_every_epoch_is_a_permutation_and_epochs_differ():
    stream = [i for i, _ in _take(TrainingSampler(6, seed=1), 18)]
    epochs = [stream[k:k + 6] for k in (0, 6, 12)]
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]
    assert stream != [i for i, _ in _take(TrainingSampler(6, seed=2), 18)]


def test_processes_share_the_global_stream():
    one = _take(TrainingSampler(5, seed=0), 10)
    parts = [_take(TrainingSampler(5, seed=0, rank=r, world=2), 5) for r in (0, 1)]
    assert [x for pair in zip(*parts) for x in pair] == one
    late = TrainingSampler(5, seed=0, rank=1, world=2)
    late.set_start(3)
    assert _take(late, 2) == parts[1][3:]


def test_augmentation_seed_follows_the_stream_position():
    seen = []
    dataset = MappedDataset([{"i": k} for k in range(4)], lambda record, rng: (record["i"], rng.integers(1 << 30)))
    for index, seed in _take(TrainingSampler(4, seed=9), 8):
        seen.append(dataset[(index, seed)])
    again = [dataset[key] for key in _take(TrainingSampler(4, seed=9), 8)]
    assert seen == again
    assert len({draw for _, draw in seen}) == 8  # a fresh draw per position, also for a repeated image
    assert dataset[2] == dataset[2]  # inference: seeded by the index
    assert isinstance(dataset[2][1], (int, np.integer))
