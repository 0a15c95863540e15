"""Generic data loaders of the torchvision engine: list-of-dicts batches, DistributedSampler
for training, a rank-sharded sequential loader for inference."""
from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from ...utils import comm

__all__ = ["MappedDataset", "trivial_batch_collator", "build_batch_train_loader", "build_batch_test_loader"]


class MappedDataset(Dataset):
    """``mapper(records[i], rng)``, with a random generator drawn from torch's (seeded) RNG so
    augmentations are reproducible with ``SEED`` and differ between workers and epochs."""

    def __init__(self, records: Sequence[dict], mapper: Callable) -> None:
        self.records = list(records)
        self.mapper = mapper

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int):
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        return self.mapper(self.records[idx], rng)


def trivial_batch_collator(batch: List) -> List:
    """Batches stay lists of dicts (Detectron2's convention); models pad images themselves."""
    return batch


def build_batch_train_loader(dataset: Dataset, batch_size: int, num_workers: int, seed: int = -1) -> DataLoader:
    """Shuffled batches of ``batch_size`` per process; DistributedSampler under torchrun."""
    if len(dataset) < batch_size:
        raise ValueError(f"the training set has {len(dataset)} items, fewer than one batch of {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(seed if seed >= 0 else int(torch.randint(0, 2**31 - 1, (1,)).item()))
    if comm.get_world_size() > 1:
        sampler = DistributedSampler(dataset, shuffle=True, seed=max(seed, 0), drop_last=True)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        collate_fn=trivial_batch_collator, drop_last=True, persistent_workers=num_workers > 0,
        generator=generator,
    )


def build_batch_test_loader(dataset: Dataset, num_workers: int, batch_size: int = 1) -> DataLoader:
    """Every process gets a contiguous share of the items, in order (Detectron2's InferenceSampler)."""
    n, world, rank = len(dataset), comm.get_world_size(), comm.get_rank()
    share = (n + world - 1) // world
    indices = list(range(rank * share, min(n, (rank + 1) * share)))
    subset = torch.utils.data.Subset(dataset, indices)
    return DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=trivial_batch_collator)
