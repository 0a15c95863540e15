"""torch.distributed helpers that also work in a single process (no process group)."""
from __future__ import annotations

import os
from typing import Any, List

import torch
import torch.distributed as dist

__all__ = ["get_world_size", "get_rank", "get_local_rank", "is_main_process", "synchronize",
           "all_gather", "init_from_env"]


def _ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _ready() else 1


def get_rank() -> int:
    return dist.get_rank() if _ready() else 0


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    if _ready() and get_world_size() > 1:
        dist.barrier()


def all_gather(obj: Any) -> List[Any]:
    """Every process's ``obj`` (picklable), in rank order."""
    if get_world_size() == 1:
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def init_from_env() -> bool:
    """Joins the process group torchrun describes (WORLD_SIZE > 1); returns whether it did."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or _ready():
        return _ready()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(get_local_rank())
    dist.init_process_group(backend=backend)
    return True
