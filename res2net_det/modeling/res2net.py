"""Res2Net and Res2NeXt backbones (Gao et al., TPAMI 2021), in plain PyTorch.

One ``Res2Net`` class covers every published variant: depth 50/101/152, any base
width x scale, grouped 3x3 convs (Res2NeXt), and the v1b ("d") variant with a deep
stem and average-pool shortcuts. Module names follow the official
Res2Net-PretrainedModels checkpoints, which timm uses too, so both load without a
key map. The block and its faithfulness notes: :mod:`.bottle2neck`; the variant table:
:mod:`.variants`; a named constructor per row at the end of this file, filed by name for
:func:`create_model` (:mod:`.model_registry`).

Speed and memory: with frozen norms the split 3x3s run through :class:`~.split_convs.SplitConvs`
(fewer activations kept for backward, same gradients); ``channels_last`` and ``compile`` are options of the model;
for inference, :meth:`Res2Net.fuse_for_inference` folds batch norms into convs, merges each stage
block's split convs into one grouped conv and goes channels-last (``tools/benchmark.py backbone``
and ``detector`` measure them against timm and torchvision).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .bottle2neck import Bottle2neck
from .fuse import fold_block_norms_, fold_stem_norms_
from .model_registry import create_model, register_model
from .norm import NormSpec, convert_frozen_batchnorm, get_norm
from .variants import (
    ALIASES,
    MODEL_TABLE,
    OFFICIAL_CHECKPOINTS,
    VARIANTS,
    Variant,
    find_variant,
    list_models,
    official_checkpoint,
    resolve_name,
    stage_blocks,
    variant_args,
)
from .weights import CheckpointError, load_weights

__all__ = [
    "Bottle2neck", "Res2Net", "STAGE_NAMES", "Variant", "MODEL_TABLE", "VARIANTS", "ALIASES", "OFFICIAL_CHECKPOINTS",
    "create_model", "list_models", "register_model", "resolve_name", "variant_args", "official_checkpoint",
    "find_variant", "build_res2net", "stage_blocks", "stage_strides",
    "res2net50_26w_4s", "res2net50_48w_2s", "res2net50_14w_8s", "res2net50_26w_6s", "res2net50_26w_8s",
    "res2net101_26w_4s", "res2next50", "res2net50_v1b_26w_4s", "res2net101_v1b_26w_4s", "res2net152_v1b_26w_4s",
    "resnet50", "resnet101", "res2net50d", "res2net101d", "res2next50_4s",
]

STAGE_NAMES = ("res2", "res3", "res4", "res5")


def _stem(deep_stem: bool, stem_width: int, norm: NormSpec) -> Tuple[nn.Module, nn.Module]:
    """Returns ``(conv1, bn1)`` with the official key layout."""
    if not deep_stem:
        return nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False), get_norm(norm, 64)
    conv1 = nn.Sequential(
        nn.Conv2d(3, stem_width, 3, 2, 1, bias=False),
        get_norm(norm, stem_width),
        nn.ReLU(inplace=True),
        nn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False),
        get_norm(norm, stem_width),
        nn.ReLU(inplace=True),
        nn.Conv2d(stem_width, 64, 3, 1, 1, bias=False),
    )
    return conv1, get_norm(norm, 64)


def _shortcut(inplanes: int, outplanes: int, stride: int, avg_down: bool, norm: NormSpec) -> nn.Module:
    if not avg_down:
        # keys downsample.0 (conv), downsample.1 (norm)
        return nn.Sequential(
            nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False),
            get_norm(norm, outplanes),
        )
    # v1b: average pool then stride-1 conv; keys downsample.1 (conv), downsample.2 (norm)
    pool: nn.Module = (
        nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        if stride > 1
        else nn.Identity()
    )
    return nn.Sequential(
        pool,
        nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=1, bias=False),
        get_norm(norm, outplanes),
    )


def _compile_or_none(fn: Callable) -> Optional[Callable]:
    """``torch.compile(fn)``, or None (with a warning) where torch.compile is unavailable."""
    if not hasattr(torch, "compile"):
        warnings.warn("this PyTorch has no torch.compile; the Res2Net runs eagerly")
        return None
    try:
        return torch.compile(fn)
    except Exception as e:  # e.g. an unsupported Python version
        warnings.warn(f"torch.compile is unavailable ({type(e).__name__}: {e}); the Res2Net runs eagerly")
        return None


class Res2Net(nn.Module):
    """Res2Net classifier and multi-scale feature extractor.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for depth 50.
        base_width: split width per 64 planes (the "w" of "26w_4s").
        scale: number of splits (the "s").
        cardinality: groups in the split 3x3 convs (8 for Res2NeXt-50).
        deep_stem: three 3x3 convs instead of one 7x7 (v1b / "d").
        stem_width: channels of the deep stem's first two convs.
        avg_down: average-pool shortcuts (v1b / "d").
        num_classes: classifier outputs; 0 builds a backbone without ``fc``.
        norm: "BN", "FrozenBN", "SyncBN", "GN" or a callable ``channels -> module``.
        out_features: stages returned by :meth:`forward_features`.
        freeze_at: Detectron2's convention: 0 trains everything, 1 freezes the
            stem, 2 the stem and res2, ... 5 the whole backbone. Frozen parts get
            ``requires_grad=False`` and frozen batch norm.
        dilate_last_stage: res5 with stride 1 and dilation 2 (output stride 16); every res5
            block, the first included, dilates its 3x3 convs (PoolNet's and DeepLab's layout).
        zero_init_last: zero-init the last norm of every block (training from scratch).
        maxpool_ceil_mode: the stem's max pool rounds its output size up (Caffe's rounding,
            kept by Res2Net-PoolNet and PoolNet): one more row/column on even-sized stem maps.
        stride_in_1x1: stride on each block's first 1x1 conv (scale 1 only), see :class:`Bottle2neck`.
        checkpoint_activations: in training, recompute each trainable block's activations in the
            backward pass instead of storing them (``torch.utils.checkpoint`` per block): less
            memory, one more forward. Same gradients. Not with train-mode BN (its running
            statistics would update twice); FrozenBN, GN and eval BN are fine.
        compile: run ``forward_features`` through ``torch.compile`` (inductor); where compilation
            is unavailable or fails, a warning says so and the model runs eagerly.
        channels_last: keep the weights and run the activations in channels-last (NHWC) memory
            format: inputs are converted on entry, outputs come out NHWC (same values), and layers
            after the backbone (FPN, heads) follow them. Faster on CPU (oneDNN) and on tensor-core
            GPUs; see the README's detector benchmark.
    """

    def __init__(
        self,
        layers: Sequence[int],
        base_width: int = 26,
        scale: int = 4,
        cardinality: int = 1,
        deep_stem: bool = False,
        stem_width: int = 32,
        avg_down: bool = False,
        num_classes: int = 1000,
        norm: NormSpec = "BN",
        out_features: Sequence[str] = STAGE_NAMES,
        freeze_at: int = 0,
        dilate_last_stage: bool = False,
        zero_init_last: bool = False,
        maxpool_ceil_mode: bool = False,
        stride_in_1x1: bool = False,
        checkpoint_activations: bool = False,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 stages, got {tuple(layers)}")
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown out_features {unknown}; choose from {STAGE_NAMES}")
        if not 0 <= freeze_at <= 5:
            raise ValueError(f"freeze_at must be in 0..5, got {freeze_at}")
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.dilate_last_stage = dilate_last_stage
        self.stride_in_1x1 = stride_in_1x1
        self.checkpoint_activations = checkpoint_activations
        self.compile = compile
        self._compiled_features: Optional[Callable[[torch.Tensor], Dict[str, torch.Tensor]]] = None

        self.conv1, self.bn1 = _stem(deep_stem, stem_width, norm)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=maxpool_ceil_mode)

        self.inplanes = 64
        block_kwargs = dict(base_width=base_width, scale=scale, cardinality=cardinality, norm=norm,
                            stride_in_1x1=stride_in_1x1)
        self.layer1 = self._make_layer(64, layers[0], 1, 1, avg_down, block_kwargs)
        self.layer2 = self._make_layer(128, layers[1], 2, 1, avg_down, block_kwargs)
        self.layer3 = self._make_layer(256, layers[2], 2, 1, avg_down, block_kwargs)
        last_stride, last_dilation = (1, 2) if dilate_last_stage else (2, 1)
        self.layer4 = self._make_layer(512, layers[3], last_stride, last_dilation, avg_down, block_kwargs)
        self.num_features = 512 * Bottle2neck.expansion

        if num_classes > 0:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(self.num_features, num_classes)

        self._init_weights(zero_init_last)
        self.freeze(freeze_at)
        self.channels_last = channels_last
        if channels_last:  # load_state_dict copies into these tensors and keeps their format
            self.to(memory_format=torch.channels_last)

    def _make_layer(
        self, planes: int, blocks: int, stride: int, dilation: int, avg_down: bool, block_kwargs: dict
    ) -> nn.Sequential:
        outplanes = planes * Bottle2neck.expansion
        downsample = None
        if stride != 1 or self.inplanes != outplanes:
            downsample = _shortcut(self.inplanes, outplanes, stride, avg_down, block_kwargs["norm"])
        layers = [
            Bottle2neck(self.inplanes, planes, stride, downsample, dilation=dilation,
                        is_stage_block=True, **block_kwargs)
        ]
        self.inplanes = outplanes
        layers += [
            Bottle2neck(self.inplanes, planes, dilation=dilation, **block_kwargs)
            for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_last: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, Bottle2neck) and getattr(m.bn3, "weight", None) is not None:
                    nn.init.zeros_(m.bn3.weight)

    # ------------------------------------------------------------------ freezing
    def stages(self) -> List[Tuple[str, nn.Module]]:
        """``[(name, module)]`` for the stem and the four stages, in order."""
        stem = nn.ModuleList([self.conv1, self.bn1])
        return [("stem", stem), ("res2", self.layer1), ("res3", self.layer2),
                ("res4", self.layer3), ("res5", self.layer4)]

    def freeze(self, freeze_at: int = 0) -> "Res2Net":
        """Freezes the stem (``freeze_at >= 1``) and the first ``freeze_at - 1`` stages."""
        self.freeze_at = freeze_at
        for idx, (name, module) in enumerate(self.stages(), start=1):
            if idx > freeze_at:
                break
            for p in module.parameters():
                p.requires_grad_(False)
            if name == "stem":
                self.conv1 = convert_frozen_batchnorm(self.conv1)
                self.bn1 = convert_frozen_batchnorm(self.bn1)
            else:
                setattr(self, f"layer{idx - 1}", convert_frozen_batchnorm(module))
        return self

    # ------------------------------------------------------------------ inference
    def fuse_for_inference(self, channels_last: bool = True) -> "Res2Net":
        """Turns this model into a faster inference-only model, in place, and returns it.

        Every batch norm (BN, SyncBN or FrozenBN, with its running statistics) is folded
        into the conv before it, which then gets a bias; GroupNorm stays. With
        ``channels_last`` the weights go to NHWC, which oneDNN runs faster on CPU (outputs
        are NHWC tensors holding the same values). Outputs stay within float rounding of
        the unfused model (tested to 1e-4). The fused model has no norm keys in its
        ``state_dict`` and can't be trained: load weights before fusing, and keep the
        unfused model for training.
        """
        self.eval()
        fold_stem_norms_(self)
        for module in self.modules():
            if isinstance(module, Bottle2neck):
                fold_block_norms_(module)
        if channels_last:
            self.to(memory_format=torch.channels_last)
            self.channels_last = True
        self.fused_for_inference = True
        return self

    def train(self, mode: bool = True) -> "Res2Net":
        if mode and getattr(self, "fused_for_inference", False):
            raise RuntimeError(
                "this Res2Net was fused for inference (batch norms folded into convs) and can't be "
                "trained; build a new model and load its weights to train"
            )
        return super().train(mode)

    # ------------------------------------------------------------------ forward
    def _prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @staticmethod
    def _check_input(x: torch.Tensor) -> None:
        # Checks for eager callers only: TorchScript compiles just this branch (is_scripting is
        # resolved statically), and a traced or exported graph would bake them in or warn.
        if torch.jit.is_scripting():
            return
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            return
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Res2Net expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"Res2Net expects a 4-D N x 3 x H x W RGB tensor, got shape {tuple(x.shape)}"
                + (" (add a batch dimension with x[None])" if x.dim() == 3 else "")
                + (" (repeat a grayscale channel to 3 channels)" if x.dim() == 4 and x.shape[1] == 1 else "")
            )

    def forward_features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Returns ``{name: feature}`` for ``self.out_features`` (strides 4/8/16/32)."""
        x = self._prepare_input(x)
        if self.compile and not torch.jit.is_scripting() and not torch.jit.is_tracing():
            if self._compiled_features is None:
                self._compiled_features = _compile_or_none(self._forward_features)
            if self._compiled_features is not None:
                try:
                    return self._compiled_features(x)
                except Exception as e:  # inductor compiles lazily, on the first call: fall back once, loudly
                    warnings.warn(f"torch.compile of the Res2Net failed ({type(e).__name__}: {e}); running it eagerly")
                    self.compile = False
        return self._forward_features(x)

    def _forward_features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outputs: Dict[str, torch.Tensor] = {}
        last = self.out_features[-1] if self.out_features else "res5"
        # Checkpointing trades a second forward of each block for not storing its activations;
        # only worth it (and only valid) when a backward will follow.
        checkpointing = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        for name, layer in zip(STAGE_NAMES, (self.layer1, self.layer2, self.layer3, self.layer4)):
            if checkpointing and any(p.requires_grad for p in layer.parameters()):
                for block in layer:
                    x = checkpoint(block, x, use_reentrant=False)
            else:
                x = layer(x)
            if name in self.out_features:
                outputs[name] = x
            if name == last:
                break  # later stages are not needed
        return outputs

    def forward_head(self, res5: torch.Tensor) -> torch.Tensor:
        if self.num_classes == 0:
            raise RuntimeError("this Res2Net was built with num_classes=0 and has no classifier")
        return self.fc(torch.flatten(self.avgpool(res5), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a classifier, or the feature dict for a backbone (``num_classes=0``)."""
        if self.num_classes == 0:
            return self.forward_features(x)
        x = self._prepare_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.forward_head(x)

    def output_shape(self) -> Dict[str, Tuple[int, int]]:
        """``{name: (channels, stride)}`` for the returned features."""
        strides = stage_strides(self.dilate_last_stage)
        channels = {"res2": 256, "res3": 512, "res4": 1024, "res5": 2048}
        return {k: (channels[k], strides[k]) for k in self.out_features}


def stage_strides(dilate_last_stage: bool = False) -> Dict[str, int]:
    """``{stage: stride}`` of a Res2Net's outputs; a dilated res5 keeps res4's stride."""
    return {"res2": 4, "res3": 8, "res4": 16, "res5": 16 if dilate_last_stage else 32}


# ---------------------------------------------------------------------- variants
# The table lives in .variants (plain data, below the weights loader); its names stay importable here.


def build_res2net(
    depth: int = 50,
    base_width: int = 26,
    scale: int = 4,
    cardinality: int = 1,
    deep_stem: bool = False,
    avg_down: bool = False,
    **kwargs,
) -> Res2Net:
    """Builds any Res2Net from its hyper-parameters (what detection configs spell out)."""
    return Res2Net(stage_blocks(depth), base_width=base_width, scale=scale, cardinality=cardinality,
                   deep_stem=deep_stem, avg_down=avg_down, **kwargs)


def _create(name: str, weights: Optional[str], **kwargs: Any) -> Res2Net:
    """What every constructor does: the table's arguments, ``kwargs`` over them, then weights, then freezing."""
    args = {**MODEL_TABLE[name].res2net_args(), **kwargs}
    # Freeze after loading, so frozen batch norm takes the checkpoint's statistics.
    freeze_at = args.pop("freeze_at", 0)
    model = Res2Net(**args)
    if weights is not None:
        report = load_weights(model, weights)
        if not report.loaded:
            raise CheckpointError(
                f"checkpoint {weights} holds no tensor of {name}: {report.summary()}. A detector checkpoint "
                "(backbone.bottom_up.* keys) goes to the detection builders' weights= instead"
            )
    return model.freeze(freeze_at)


# ---------------------------------------------------------------------- named constructors
# One per row of MODEL_TABLE (checked below); keyword arguments as for create_model.
@register_model
def res2net50_26w_4s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 26w x 4s, the paper's main model."""
    return _create("res2net50_26w_4s", weights, **kwargs)


@register_model
def res2net50_48w_2s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 48w x 2s."""
    return _create("res2net50_48w_2s", weights, **kwargs)


@register_model
def res2net50_14w_8s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 14w x 8s."""
    return _create("res2net50_14w_8s", weights, **kwargs)


@register_model
def res2net50_26w_6s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 26w x 6s."""
    return _create("res2net50_26w_6s", weights, **kwargs)


@register_model
def res2net50_26w_8s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 26w x 8s."""
    return _create("res2net50_26w_8s", weights, **kwargs)


@register_model
def res2net101_26w_4s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-101 26w x 4s."""
    return _create("res2net101_26w_4s", weights, **kwargs)


@register_model
def res2next50(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2NeXt-50: 4w x 4s splits in 8 groups."""
    return _create("res2next50", weights, **kwargs)


@register_model
def res2net50_v1b_26w_4s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-50 v1b 26w x 4s: deep stem and average-pool shortcuts (timm: res2net50d)."""
    return _create("res2net50_v1b_26w_4s", weights, **kwargs)


@register_model
def res2net101_v1b_26w_4s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-101 v1b 26w x 4s: deep stem and average-pool shortcuts (timm: res2net101d)."""
    return _create("res2net101_v1b_26w_4s", weights, **kwargs)


@register_model
def res2net152_v1b_26w_4s(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """Res2Net-152 v1b 26w x 4s: deep stem and average-pool shortcuts (no published weights)."""
    return _create("res2net152_v1b_26w_4s", weights, **kwargs)


@register_model
def resnet50(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """ResNet-50 as a Res2Net of scale 1 and width 64: torchvision's ResNet-50, the paper's baseline
    (``weights`` may be torchvision's ``resnet50-*.pth``)."""
    return _create("resnet50", weights, **kwargs)


@register_model
def resnet101(*, weights: Optional[str] = None, **kwargs: Any) -> Res2Net:
    """ResNet-101 as a Res2Net of scale 1 and width 64: torchvision's ResNet-101, the baseline of the
    Cascade R-CNN and Panoptic FPN rows (``weights`` may be torchvision's ``resnet101-*.pth``)."""
    return _create("resnet101", weights, **kwargs)


# timm's names and the official files' names for the same constructors.
res2net50d = res2net50_v1b_26w_4s
res2net101d = res2net101_v1b_26w_4s
res2next50_4s = res2next50
