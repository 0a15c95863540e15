"""THE variant table: every published Res2Net architecture (and the ResNet-50 baseline) as one
:class:`Variant` row, with its official checkpoint name, timm name, published ImageNet accuracy,
params and MACs; plain data, read by the model's named constructors (:mod:`.res2net`), the weights
table (:mod:`.pretrained`) and the tools. A new variant is one row here and its three-line
constructor in :mod:`.res2net`.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ["DEPTHS", "Variant", "MODEL_TABLE", "VARIANTS", "ALIASES", "OFFICIAL_CHECKPOINTS", "list_models",
           "resolve_name", "variant_args", "official_checkpoint", "find_variant", "stage_blocks"]

# Blocks per stage of each depth.
DEPTHS: Mapping[int, Tuple[int, int, int, int]] = MappingProxyType(
    {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)})


def stage_blocks(depth: int) -> Tuple[int, int, int, int]:
    """Blocks per stage of a Res2Net ``depth`` (50, 101 or 152)."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")
    return DEPTHS[depth]


@dataclass(frozen=True)
class Variant:
    """One row of :data:`MODEL_TABLE`: a published architecture and where its weights come from.

    Args:
        depth: 50, 101 or 152.
        base_width: split width per 64 planes (the "26w").
        scale: number of splits (the "4s"); 1 with width 64 is ResNet.
        cardinality: groups of the split 3x3 convs (Res2NeXt).
        deep_stem: v1b / "d": three 3x3 convs as the stem.
        stem_width: channels of the deep stem's first two convs.
        avg_down: v1b / "d": average-pool shortcuts.
        checkpoint: file name of the official Res2Net-PretrainedModels checkpoint (None: none published).
        timm_name: timm's name for the same architecture and weights (None: timm has none).
        top1, top5: published ImageNet-1k val accuracy (%) of the official weights, single 224
            centre crop of the short side resized to 256 (None: none published).
        accuracy_source: where ``top1``/``top5`` come from: "official" (Res2Net-PretrainedModels
            README, 100 - error), "mmcls" (the mmcls / mmpretrain model page, the seed table) or
            "torchvision" (its ``ResNet50_Weights.IMAGENET1K_V1``, the baseline's weights).
        params: parameters of the 1000-class classifier.
        gmacs: multiply-accumulates of its convolutions and classifier at 224 x 224, in billions
            (torchvision's ``_ops`` convention; ``tools/model_stats.py`` prints the other counts).
        Both are this architecture's own counts, checked against the built model by a test.
    """

    depth: int
    base_width: int
    scale: int
    cardinality: int = 1
    deep_stem: bool = False
    stem_width: int = 32
    avg_down: bool = False
    checkpoint: Optional[str] = None
    timm_name: Optional[str] = None
    top1: Optional[float] = None
    top5: Optional[float] = None
    accuracy_source: Optional[str] = None
    params: Optional[int] = None
    gmacs: Optional[float] = None

    def res2net_args(self) -> Dict[str, Any]:
        """The :class:`Res2Net` arguments of this architecture."""
        return dict(layers=stage_blocks(self.depth), base_width=self.base_width, scale=self.scale,
                    cardinality=self.cardinality, deep_stem=self.deep_stem, stem_width=self.stem_width,
                    avg_down=self.avg_down)

    def aliases(self, name: str) -> Tuple[str, ...]:
        """Other names of this row: timm's, and the official file's stem (``res2next50_4s``)."""
        others = [self.timm_name, self.checkpoint.rsplit("-", 1)[0] if self.checkpoint else None]
        return tuple(dict.fromkeys(a for a in others if a and a != name))


# THE variant table: name -> architecture, official checkpoint file, timm name, published ImageNet
# accuracy. Constructors, create_model, list_models, the aliases, the checkpoint names and
# tools/eval_imagenet.py's published column all read it. Official file names and accuracies from
# Res2Net-PretrainedModels; where the mmcls page is the seed table's source (14w_8s, 26w_8s,
# 101_26w_4s) its figures (official Top-5 there: 93.86, 94.37, 94.43).
MODEL_TABLE: Mapping[str, Variant] = MappingProxyType({
    "res2net50_26w_4s": Variant(50, 26, 4, checkpoint="res2net50_26w_4s-06e79181.pth", timm_name="res2net50_26w_4s",
        top1=77.99, top5=93.85, accuracy_source="official", params=25_699_120, gmacs=4.26),
    "res2net50_48w_2s": Variant(50, 48, 2, checkpoint="res2net50_48w_2s-afed724a.pth", timm_name="res2net50_48w_2s",
        top1=77.32, top5=93.53, accuracy_source="official", params=25_287_304, gmacs=4.16),
    "res2net50_14w_8s": Variant(50, 14, 8, checkpoint="res2net50_14w_8s-6527dddc.pth", timm_name="res2net50_14w_8s",
        top1=78.14, top5=93.85, accuracy_source="mmcls", params=25_059_816, gmacs=4.18),
    "res2net50_26w_6s": Variant(50, 26, 6, checkpoint="res2net50_26w_6s-19041792.pth", timm_name="res2net50_26w_6s",
        top1=78.58, top5=94.13, accuracy_source="official", params=37_051_448, gmacs=6.3),
    "res2net50_26w_8s": Variant(50, 26, 8, checkpoint="res2net50_26w_8s-2c7c9f12.pth", timm_name="res2net50_26w_8s",
        top1=79.2, top5=94.36, accuracy_source="mmcls", params=48_403_776, gmacs=8.34),
    "res2net101_26w_4s": Variant(101, 26, 4, checkpoint="res2net101_26w_4s-02a759a1.pth",
                                 timm_name="res2net101_26w_4s",
        top1=79.19, top5=94.44, accuracy_source="mmcls", params=45_206_688, gmacs=8.07),
    "res2next50": Variant(50, 4, 4, cardinality=8, checkpoint="res2next50_4s-6ef7e7bf.pth", timm_name="res2next50",
        top1=78.24, top5=93.91, accuracy_source="official", params=24_671_464, gmacs=4.17),
    "res2net50_v1b_26w_4s": Variant(50, 26, 4, deep_stem=True, avg_down=True,
                                    checkpoint="res2net50_v1b_26w_4s-3cf99910.pth", timm_name="res2net50d",
        top1=80.27, top5=95.04, accuracy_source="official", params=25_718_352, gmacs=4.49),
    "res2net101_v1b_26w_4s": Variant(101, 26, 4, deep_stem=True, avg_down=True,
                                     checkpoint="res2net101_v1b_26w_4s-0812c246.pth", timm_name="res2net101d",
        top1=81.23, top5=95.36, accuracy_source="official", params=45_225_920, gmacs=8.31),
    "res2net152_v1b_26w_4s": Variant(152, 26, 4, deep_stem=True, avg_down=True, params=61_294_480, gmacs=12.12),
    # scale 1, width 64: exactly torchvision's (and timm's) ResNet-50 (stride on the 3x3), the
    # baseline; their weights (resnet50-*.pth) load with a rename (modeling/weights.py).
    "resnet50": Variant(50, 64, 1, timm_name="resnet50", top1=76.13, top5=92.86, accuracy_source="torchvision",
        params=25_557_032, gmacs=4.09),
    # The ResNet-101 baseline of the Cascade R-CNN and Panoptic FPN rows (torchvision's ResNet-101,
    # IMAGENET1K_V1 weights: torchvision://resnet101).
    "resnet101": Variant(101, 64, 1, top1=77.374, top5=93.546, accuracy_source="torchvision",
        params=44_549_160, gmacs=7.8),
})

# Read-only views of the table for callers that want one column.
ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: name for name, v in MODEL_TABLE.items() for alias in v.aliases(name)})
OFFICIAL_CHECKPOINTS: Mapping[str, str] = MappingProxyType(
    {name: v.checkpoint for name, v in MODEL_TABLE.items() if v.checkpoint})
VARIANTS: Mapping[str, Dict[str, Any]] = MappingProxyType({
    name: dict(depth=v.depth, base_width=v.base_width, scale=v.scale, cardinality=v.cardinality,
               deep_stem=v.deep_stem, stem_width=v.stem_width, avg_down=v.avg_down)
    for name, v in MODEL_TABLE.items()
})


def list_models() -> List[str]:
    """Names accepted by :func:`create_model`: the rows of :data:`MODEL_TABLE` (aliases excluded)."""
    return sorted(MODEL_TABLE)


def resolve_name(name: str) -> str:
    """The table's name for ``name`` or an alias (timm's, the official file's); raises a helpful KeyError."""
    canonical = ALIASES.get(name, name)
    if canonical not in MODEL_TABLE:
        raise KeyError(
            f"unknown model {name!r}; available: {list_models()} (aliases: {sorted(ALIASES)})"
        )
    return canonical


def variant_args(name: str) -> Dict[str, Any]:
    """Constructor arguments of :class:`Res2Net` for a variant name or alias."""
    return MODEL_TABLE[resolve_name(name)].res2net_args()


def official_checkpoint(name: str) -> Optional[str]:
    """The official Res2Net-PretrainedModels file name of a variant (None when none was published)."""
    return MODEL_TABLE[resolve_name(name)].checkpoint


def find_variant(depth: int = 50, base_width: int = 26, scale: int = 4, cardinality: int = 1,
                 deep_stem: bool = False, avg_down: bool = False) -> Optional[str]:
    """The table's name of an architecture given by its hyper-parameters, or None."""
    wanted = (depth, base_width, scale, cardinality, deep_stem, avg_down)
    for name, v in MODEL_TABLE.items():
        if (v.depth, v.base_width, v.scale, v.cardinality, v.deep_stem, v.avg_down) == wanted:
            return name
    return None
