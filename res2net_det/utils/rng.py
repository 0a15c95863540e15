"""Every random generator a training step draws from, captured and restored: what a checkpoint
needs so that a resumed run continues bit for bit (the torchvision engine's ``--resume``)."""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> Dict[str, Any]:
    """Every random generator a training step draws from (torch's, CUDA's, NumPy's and Python's),
    as tensors, ints and tuples of ints, which ``torch.load(weights_only=True)`` reads back."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restores what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
