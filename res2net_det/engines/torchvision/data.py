"""Generic data loaders of the torchvision engine: list-of-dicts batches, a resumable infinite
sampler for training (Detectron2's ``TrainingSampler`` idea, plus a start position), a
rank-sharded sequential loader for inference."""
from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ...utils import comm

__all__ = ["MappedDataset", "TrainingSampler", "GroupedTrainingSampler", "aspect_ratio_groups",
           "trivial_batch_collator", "build_batch_train_loader", "build_batch_test_loader"]


class MappedDataset(Dataset):
    """``mapper(records[i], rng)``. The training sampler hands out ``(index, seed)`` pairs, so each
    sample's augmentation depends on its place in the data stream alone: the same with any number
    of workers, and the same again after ``--resume``. Plain indices (inference) seed with the index."""

    def __init__(self, records: Sequence[dict], mapper: Callable) -> None:
        self.records = list(records)
        self.mapper = mapper

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: Union[int, Tuple[int, int]]):
        idx, seed = key if isinstance(key, tuple) else (key, key)
        return self.mapper(self.records[idx], np.random.default_rng(seed))


class TrainingSampler(Sampler):
    """An endless stream of ``(index, seed)`` for one process, resumable at any position.

    Epoch ``e`` of the global stream is a permutation of the data set drawn from ``(seed, e)``;
    process ``rank`` of ``world`` takes every ``world``-th item. :meth:`set_start` skips the first
    ``n`` items of this process's share, so a resumed run sees exactly the items the killed run
    would have seen next (the trainer calls it with the number of items already consumed).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> None:
        if size <= 0:
            raise ValueError("the training set is empty")
        self.size, self.seed, self.rank, self.world, self.shuffle = size, seed, rank, world, shuffle
        self.start = 0

    def set_start(self, consumed: int) -> None:
        """Continue after the first ``consumed`` items of this process's stream."""
        self.start = consumed

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        position = self.start * self.world + self.rank  # in the global stream
        epoch, order = -1, None
        while True:
            if position // self.size != epoch:
                epoch = position // self.size
                order = (np.random.default_rng([self.seed, epoch]).permutation(self.size)
                         if self.shuffle else np.arange(self.size))
            item_seed = int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])
            yield int(order[position % self.size]), item_seed
            position += self.world

def aspect_ratio_groups(records: Sequence[dict]) -> List[int]:
    """Detectron2's aspect ratio groups (``DATALOADER.ASPECT_RATIO_GROUPING``): 0 for a landscape
    image (width > height), 1 otherwise, from each record's ``width`` and ``height``."""
    groups = []
    for record in records:
        if "width" not in record or "height" not in record:
            raise ValueError(f"record {record.get('file_name', record)!r} has no width/height, which "
                             "DATALOADER.ASPECT_RATIO_GROUPING needs; set it to False or add them to the data set")
        groups.append(0 if record["width"] > record["height"] else 1)
    return groups


class GroupedTrainingSampler(Sampler):
    """:class:`TrainingSampler`'s stream regrouped so that every ``batch_size`` consecutive items
    share a group (Detectron2's ``AspectRatioGroupedDataset``): items wait in their group's bucket
    until it holds a batch, which is then served whole. A batch of the loader is one group, so
    images of one orientation are padded together.

    Resumable like the stream: :meth:`set_start` skips the first ``n`` items of the grouped
    stream by replaying the index stream from its start (indices only, no image is read).
    """

    def __init__(self, stream: TrainingSampler, group_ids: Sequence[int], batch_size: int) -> None:
        if len(group_ids) != stream.size:
            raise ValueError(f"{len(group_ids)} group ids for a stream over {stream.size} items")
        self.stream, self.group_ids, self.batch_size = stream, list(group_ids), batch_size
        self.start = 0

    def set_start(self, consumed: int) -> None:
        """Continue after the first ``consumed`` items of this process's grouped stream."""
        self.start = consumed

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        self.stream.set_start(0)
        buckets: dict = {}
        served = 0
        for index, seed in self.stream:
            bucket = buckets.setdefault(self.group_ids[index], [])
            bucket.append((index, seed))
            if len(bucket) == self.batch_size:
                for item in bucket:
                    if served >= self.start:
                        yield item
                    served += 1
                bucket.clear()


def trivial_batch_collator(batch: List) -> List:
    """Batches stay lists of dicts (Detectron2's convention); models pad images themselves."""
    return batch


def build_batch_train_loader(dataset: Dataset, batch_size: int, num_workers: int, seed: int,
                             group_ids: Optional[Sequence[int]] = None) -> DataLoader:
    """Endless shuffled batches of ``batch_size`` per process (:class:`TrainingSampler`), sharded
    across the processes of ``torchrun``. ``seed`` (``SEED``, or the one the trainer drew for a
    run with ``SEED -1``, kept in its checkpoints) fixes the order and the augmentations; a
    negative seed draws one. With ``group_ids`` (one per item), every batch holds one group's items
    (:class:`GroupedTrainingSampler`)."""
    if len(dataset) < batch_size:
        raise ValueError(f"the training set has {len(dataset)} items, fewer than one batch of {batch_size}")
    if seed < 0:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    sampler: Sampler = TrainingSampler(len(dataset), seed, comm.get_rank(), comm.get_world_size())
    if group_ids is not None and batch_size > 1:
        sampler = GroupedTrainingSampler(sampler, group_ids, batch_size)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        collate_fn=trivial_batch_collator, drop_last=True, persistent_workers=num_workers > 0,
        # Its own generator: starting an iterator draws a worker base seed, which must not come
        # from torch's global generator (the model's, e.g. the RPN's sampling, restored on resume).
        generator=torch.Generator().manual_seed(seed),
    )


def build_batch_test_loader(dataset: Dataset, num_workers: int, batch_size: int = 1) -> DataLoader:
    """Every process gets a contiguous share of the items, in order (Detectron2's InferenceSampler)."""
    n, world, rank = len(dataset), comm.get_world_size(), comm.get_rank()
    share = (n + world - 1) // world
    indices = list(range(rank * share, min(n, (rank + 1) * share)))
    subset = torch.utils.data.Subset(dataset, indices)
    return DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=trivial_batch_collator)
