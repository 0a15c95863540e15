"""``MODEL.DEVICE`` to a ``torch.device``: the one place that decides what runs where.

Both engines (and the tools that run a model) call :func:`resolve_device`, so a config means the
same device everywhere:

* ``"auto"``: the GPU when there is one, else the CPU, silently (what the quickstarts use);
* ``"cuda"`` / ``"cuda:N"``: the GPU; on a machine without one, the CPU with a warning (the config
  asked for a GPU explicitly, so the user should know it did not get one);
* anything else (``"cpu"``, ``"mps"``, ...): passed to ``torch.device`` as is.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch

logger = logging.getLogger(__name__)

__all__ = ["AUTO", "resolve_device"]

AUTO = "auto"


def resolve_device(name: str, local_rank: Optional[int] = None) -> torch.device:
    """The device for ``MODEL.DEVICE`` value ``name``.

    Args:
        name: ``"auto"``, ``"cuda"``, ``"cuda:N"``, ``"cpu"``, ... (case and spaces ignored).
        local_rank: under data-parallel training, this process's GPU; a bare ``"cuda"`` (or
            ``"auto"`` on a GPU machine) then becomes ``cuda:<local_rank>``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"MODEL.DEVICE must name a device ('auto', 'cuda', 'cpu', ...), got {name!r}")
    name = name.strip().lower()
    if name == AUTO:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("MODEL.DEVICE is %r but no GPU is available: running on the CPU", name)
        return torch.device("cpu")
    if name == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"MODEL.DEVICE {name!r} is not a device torch knows: {e}") from e
