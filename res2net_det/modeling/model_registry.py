"""Named constructors by name, as timm's registry: :func:`register_model` files each constructor of
:mod:`.res2net` under its function name (a row of :data:`~.variants.MODEL_TABLE`), and
:func:`create_model` builds a model by that name or an alias. Names and rows: :mod:`.variants`;
the constructors themselves: the end of :mod:`.res2net`, which imports this module and is the
place to import ``create_model`` from (importing it files every constructor).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, TypeVar

from torch import nn

from .variants import MODEL_TABLE, resolve_name

__all__ = ["create_model", "register_model"]

_Constructor = TypeVar("_Constructor", bound=Callable[..., nn.Module])
_CONSTRUCTORS: Dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: _Constructor) -> _Constructor:
    """Registers a named constructor under its function name, which must be a row of
    :data:`MODEL_TABLE` (as timm's ``register_model``), and appends the row to its docstring."""
    name = fn.__name__
    if name not in MODEL_TABLE:
        raise KeyError(f"constructor {name} has no row in MODEL_TABLE")
    v = MODEL_TABLE[name]
    accuracy = (f"ImageNet top-1 {v.top1:.2f} / top-5 {v.top5:.2f} ({v.accuracy_source}); " if v.top1 is not None
                else "no published weights; ")
    fn.__doc__ = (fn.__doc__ or name).rstrip() + (
        f"\n\n    Architecture: depth {v.depth}, {v.base_width}w x {v.scale}s, cardinality {v.cardinality}, "
        f"deep stem {v.deep_stem}, avg-down {v.avg_down}; {v.params / 1e6:.2f} M parameters, {v.gmacs:.2f} GMACs "
        f"at 224 x 224. {accuracy}official checkpoint: {v.checkpoint}; timm: {v.timm_name}.\n"
    )
    _CONSTRUCTORS[name] = fn
    return fn


def create_model(name: str, weights: Optional[str] = None, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    """Builds a Res2Net variant by name, optionally loading a checkpoint.

    Args:
        name: a row of :data:`MODEL_TABLE` such as ``"res2net50_26w_4s"`` (:func:`list_models`), or
            an alias: timm's name (``"res2net50d"``) or the official file's (``"res2next50_4s"``).
        weights: an official Res2Net ``.pth``, a timm state dict (``.pth`` / ``.safetensors``), or
            (for ``resnet50``) torchvision's ResNet-50 file; or a name fetched once into the cache
            and checked: ``res2net://<variant>``, ``timm://<name>``, ``torchvision://resnet50``, a URL
            (:mod:`res2net_det.modeling.pretrained`).
        num_classes: classifier outputs; 0 builds a feature backbone without ``fc``.
        **kwargs: any :class:`~.res2net.Res2Net` argument (``norm``, ``freeze_at``, ``out_features``,
            ``dilate_last_stage``, or ``base_width`` / ``layers`` ... over the variant's own).

    Returns a :class:`~.res2net.Res2Net`: ``model(x)`` returns logits; ``model.forward_features(x)``
    returns ``{"res2", "res3", "res4", "res5"}`` features at strides 4/8/16/32.
    """
    return _CONSTRUCTORS[resolve_name(name)](weights=weights, num_classes=num_classes, **kwargs)
