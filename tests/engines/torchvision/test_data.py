import itertools

import numpy as np
import pytest

from res2net_det.engines.torchvision.data import (
    GroupedTrainingSampler,
    MappedDataset,
    TrainingSampler,
    aspect_ratio_groups,
)


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


def test_aspect_ratio_grouping_batches_one_orientation_and_resumes_exactly():
    """DATALOADER.ASPECT_RATIO_GROUPING: Detectron2's landscape (w > h) / other groups, each batch one
    group, and a resumed stream continues where the grouped one stopped."""
    records = [{"file_name": f"{k}.jpg", "width": 200 if k % 3 else 100, "height": 150} for k in range(10)]
    groups = aspect_ratio_groups(records)
    assert groups == [1 if k % 3 == 0 else 0 for k in range(10)]
    full = _take(GroupedTrainingSampler(TrainingSampler(10, seed=4), groups, batch_size=3), 60)
    batches = [full[i:i + 3] for i in range(0, 60, 3)]
    assert all(len({groups[index] for index, _ in batch}) == 1 for batch in batches)
    assert {groups[b[0][0]] for b in batches} == {0, 1}
    plain = _take(TrainingSampler(10, seed=4), 60)
    assert full != plain and set(full) <= set(plain + _take(TrainingSampler(10, seed=4), 200))  # same items, regrouped
    resumed = GroupedTrainingSampler(TrainingSampler(10, seed=4), groups, batch_size=3)
    resumed.set_start(21)
    assert _take(resumed, 39) == full[21:]
    with pytest.raises(ValueError, match="no width/height.*ASPECT_RATIO_GROUPING"):
        aspect_ratio_groups([{"file_name": "a.jpg"}])
