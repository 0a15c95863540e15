"""The image-classification task model: a Res2Net classifier behind the dict-in contract of the
engines (``MODEL.META_ARCHITECTURE: Res2NetClassifier``).

Built from a config by :func:`res2net_det.config.classification.build_classifier_model`; the
network itself is a plain :class:`~res2net_det.modeling.res2net.Res2Net`, so the CAM tools and
:func:`res2net_det.create_model` take its weights as they are.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .res2net import Res2Net

__all__ = ["Res2NetClassifier"]


class Res2NetClassifier(nn.Module):
    """A Res2Net classifier behind the engines' list-of-dicts contract (Detectron2's).

    Inputs are dicts with ``image`` (normalised ``3 x H x W``) and, in training, ``label``.
    Training returns ``{"loss_cls": cross-entropy}``; eval returns one dict per image with
    ``logits``, ``scores`` (softmax) and ``pred_class``.

    Args:
        net: the classifier (``net(images) -> logits``, features and ``fc``), kept as
            ``.backbone``: the attribute under which ``MODEL.WEIGHTS`` loaders put a plain
            official / timm Res2Net checkpoint (a classifier of another size is skipped).
    """

    def __init__(self, net: Res2Net) -> None:
        super().__init__()
        self.backbone = net

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def forward(self, batched_inputs: Sequence[dict]):
        device = self.device
        images = torch.stack([d["image"] for d in batched_inputs]).to(device)
        logits = self.backbone(images)
        if self.training:
            labels = torch.as_tensor([d["label"] for d in batched_inputs], device=device)
            return {"loss_cls": F.cross_entropy(logits, labels)}
        scores = logits.softmax(1)
        return [{"logits": lg, "scores": sc, "pred_class": int(sc.argmax())} for lg, sc in zip(logits, scores)]
