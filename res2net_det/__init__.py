"""res2net-det: the Res2Net backbone for detection, saliency and class activation mapping.

The core (this package minus ``engines/detectron2``) needs PyTorch and torchvision only.
"""
from typing import Optional

from .modeling import VARIANTS, Res2Net, load_weights, resolve_name, variant_args

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "Res2Net", "__version__"]


def list_models() -> list:
    """Names accepted by :func:`create_model` (aliases excluded)."""
    return sorted(VARIANTS)


def create_model(name: str, weights: Optional[str] = None, num_classes: int = 1000, **kwargs) -> Res2Net:
    """Builds a Res2Net variant by name, optionally loading a checkpoint.

    Args:
        name: a variant such as ``"res2net50_26w_4s"`` or a timm alias (``"res2net50d"``).
        weights: path to an official Res2Net ``.pth`` or a timm state dict file.
        num_classes: classifier outputs; 0 builds a feature backbone without ``fc``.
        **kwargs: any :class:`Res2Net` argument (``norm``, ``freeze_at``, ``out_features``,
            ``dilate_last_stage``, ...).

    ``model(x)`` returns logits; ``model.forward_features(x)`` returns
    ``{"res2", "res3", "res4", "res5"}`` features at strides 4/8/16/32.
    """
    args = variant_args(name)
    args.update(kwargs)
    freeze_at = args.pop("freeze_at", 0)
    model = Res2Net(num_classes=num_classes, **args)
    if weights is not None:
        # Load before freezing so frozen batch norm takes the checkpoint's statistics.
        load_weights(model, weights)
    model.freeze(freeze_at)
    return model
