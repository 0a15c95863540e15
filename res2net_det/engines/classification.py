"""A small image-classification trainer (plain PyTorch) for CAM experiments on WSOL data.

Kept deliberately small: AdamW, cosine schedule with warm-up, horizontal flips, cross-entropy,
an optional wall-clock budget. It exists for the CAM quickstart, which must train a classifier
on CPU in minutes; a generic config-driven trainer (``engines/torchvision``) is the candidate to
absorb it.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..data.wsol import WSOLDataset, collate_wsol

logger = logging.getLogger(__name__)

__all__ = ["train_classifier", "classification_accuracy", "save_model_card"]


def train_classifier(
    model: nn.Module,
    records: Sequence[dict],
    image_size: Tuple[int, int] = (128, 128),
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup_iters: int = 50,
    max_seconds: Optional[float] = None,
    seed: int = 0,
    log_every: int = 20,
) -> Dict[str, object]:
    """Trains ``model`` in place on dataset dicts with a ``label``; returns a history dict.

    Args:
        model: a classifier returning logits.
        records: training dataset dicts (:func:`res2net_det.data.wsol.load_ilsvrc_wsol`).
        image_size: ``(H, W)`` the images are resized to.
        epochs: passes over ``records``.
        batch_size, lr, weight_decay: AdamW settings; the learning rate follows a cosine
            schedule to zero after ``warmup_iters`` of linear warm-up.
        max_seconds: stop early (logged, and reported in the history) once training has run
            this long; None trains all epochs.
        seed: seeds shuffling, flips and the order of batches.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        WSOLDataset(records, image_size, augment=True), batch_size=batch_size, shuffle=True,
        drop_last=True, collate_fn=collate_wsol, generator=generator,
    )
    total_iters = max(1, epochs * len(loader))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)

    def lr_factor(it: int) -> float:
        if it < warmup_iters:
            return (it + 1) / warmup_iters
        return 0.5 * (1 + math.cos(math.pi * (it - warmup_iters) / max(1, total_iters - warmup_iters)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    history: Dict[str, object] = {"loss": [], "epochs_done": 0, "stopped_early": False}
    losses: List[float] = history["loss"]  # type: ignore[assignment]
    start = time.perf_counter()
    it = 0
    model.train()
    for epoch in range(epochs):
        for images, labels, _, _ in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            it += 1
            if it % log_every == 0:
                logger.info("epoch %d iter %d/%d loss %.3f lr %.2e %.0fs", epoch, it, total_iters,
                            sum(losses[-log_every:]) / log_every, scheduler.get_last_lr()[0],
                            time.perf_counter() - start)
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                history["stopped_early"] = True
                break
        history["epochs_done"] = epoch + 1
        if history["stopped_early"]:
            logger.warning("training stopped after %.0f s (max_seconds) in epoch %d of %d",
                           time.perf_counter() - start, epoch + 1, epochs)
            break
    model.eval()
    history.update(iterations=it, seconds=round(time.perf_counter() - start, 1))
    return history


@torch.no_grad()
def classification_accuracy(
    model: nn.Module, records: Sequence[dict], image_size: Tuple[int, int] = (128, 128), batch_size: int = 64
) -> float:
    """Top-1 accuracy (percent) of ``model`` on dataset dicts with a ``label``."""
    model.eval()
    loader = torch.utils.data.DataLoader(WSOLDataset(records, image_size), batch_size=batch_size,
                                         collate_fn=collate_wsol)
    correct = total = 0
    for images, labels, _, _ in loader:
        correct += int((model(images).argmax(1) == labels).sum())
        total += len(labels)
    return 100.0 * correct / max(1, total)


def save_model_card(
    path: str, model: nn.Module, name: str, num_classes: int, kwargs: Optional[dict] = None,
    label: Optional[str] = None, extra: Optional[dict] = None,
) -> str:
    """Saves ``model``'s state dict next to a JSON model card that
    :func:`res2net_det.modeling.cam.parse_model_spec` reads back; returns the card's path.

    ``path`` is the card (``*.json``); the weights go to the same name with ``.pth``.
    """
    if not path.endswith(".json"):
        raise ValueError(f"a model card path ends with .json, got {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    weights = os.path.splitext(path)[0] + ".pth"
    torch.save(model.state_dict(), weights)
    card = {"name": name, "weights": os.path.basename(weights), "num_classes": num_classes,
            "kwargs": kwargs or {}, "label": label or os.path.splitext(os.path.basename(path))[0]}
    card.update(extra or {})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1)
    return path
