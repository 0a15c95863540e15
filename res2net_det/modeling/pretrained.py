"""Pretrained weights by name: the weights table and the one resolver of weight names.

Wherever weights are read (``MODEL.WEIGHTS`` on both engines, ``create_model(weights=...)``, the
detection builders, the tools), a weights argument may be:

* ``res2net://<variant>``: the official Res2Net-PretrainedModels file of a :data:`MODEL_TABLE`
  row (``res2net://res2net50_26w_4s``, aliases too: ``res2net://res2net50d``), tried under every
  host that serves that same file name, in order; its name's sha256 prefix is checked;
* ``timm://<timm name>[.<tag>]``: timm's Hugging Face hub file of the same weights
  (``timm://res2net50d`` is ``timm/res2net50d.in1k``, ``model.safetensors``); its sha256 is
  recorded at the first download and checked afterwards;
* ``torchvision://resnet50``: torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` file, the classic
  recipe the paper's ResNet-50 baseline was trained with (V2's 80.9 top-1 comes from a newer
  training recipe that would flatter the baseline); ``torchvision://resnet101`` likewise
  (``ResNet101_Weights.IMAGENET1K_V1``), the baseline of the Cascade R-CNN and Panoptic FPN rows;
* an ``http(s)://`` URL (a torch.hub-style ``name-<hash>.ext`` is checked like the official files);
* a local path, as before.

:func:`res2net_det.modeling.weights.resolve_weights` turns any of them into a local file
(downloading once into the cache of :mod:`res2net_det.utils.download`); :func:`weights_entry`
finds the table's entry of a name, URL or file, whose :class:`Preprocessing` the config checks
against ``INPUT.FORMAT`` / ``PIXEL_MEAN`` / ``PIXEL_STD`` (:mod:`res2net_det.config.weights`).
"""
from __future__ import annotations

import logging
import os
import urllib.parse
from dataclasses import dataclass
from types import MappingProxyType
from typing import Dict, List, Mapping, Optional, Tuple

from torchvision.models import ResNet50_Weights, ResNet101_Weights

from ..utils.download import cache_dir, hash_prefix_of, mirrored
from .variants import MODEL_TABLE, Variant, resolve_name

logger = logging.getLogger(__name__)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_PREPROCESSING", "OFFICIAL_HOSTS", "Preprocessing", "WEIGHTS",
           "WEIGHT_SCHEMES", "Weights", "is_weights_name", "weights_entry", "weights_source", "weights_table"]

WEIGHT_SCHEMES = ("res2net://", "timm://", "torchvision://")

# Hosts serving the official files under the same names (../shared/reference facts, "Published
# weight files"), in the order they are tried: Res2Net-PretrainedModels' model_urls today, the
# older README links (often down), timm's first port of Res2Net.
OFFICIAL_HOSTS = (
    "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/",
    "http://mc.nankai.edu.cn/projects/res2net/pretrainmodels/",
    "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/",
)
_TIMM_HUB = "https://huggingface.co/{repo}/resolve/main/model.safetensors"
# ImageNet's channel mean and std (RGB, 0-1 scale): what every file of the table was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How weights were trained and evaluated on ImageNet: channel order, mean / std on the
    0-1 scale, and the evaluation transform (resize the short side, centre crop)."""

    input_format: str = "RGB"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"

    @property
    def pixel_mean(self) -> Tuple[float, ...]:
        """``MODEL.PIXEL_MEAN`` (0-255 scale, in ``input_format`` order)."""
        return tuple(round(v * 255, 3) for v in self.mean)

    @property
    def pixel_std(self) -> Tuple[float, ...]:
        """``MODEL.PIXEL_STD`` (0-255 scale)."""
        return tuple(round(v * 255, 3) for v in self.std)

    def describe(self) -> str:
        return (f"{self.input_format}, mean {list(self.mean)}, std {list(self.std)}, resize {self.resize} "
                f"{self.interpolation}, crop {self.crop}")


# Every file of the table: RGB in [0, 1] with ImageNet mean / std, short side 256, centre crop 224,
# bilinear (timm's pretrained_cfg says the same for its copies: crop_pct 0.875; a test compares).
IMAGENET_PREPROCESSING = Preprocessing()


@dataclass(frozen=True)
class Weights:
    """One file of published weights, as torchvision's ``Weights`` describes one.

    Args:
        name: how configs and tools name it (``res2net://res2net50_26w_4s``).
        variant: its :data:`MODEL_TABLE` row (architecture, published accuracy, params, MACs).
        file: the file name in the cache (the official name, with its sha256 prefix, where it has one).
        urls: sources of that same file, tried in order (each under ``$RES2NET_DET_WEIGHTS_MIRROR``
            when it is set).
        source: ``official``, ``timm`` or ``torchvision``.
        license: as the source states it; ``unknown`` where it states none.
        preprocessing: what the weights were trained with.
        size_bytes: the file's size where known.
    """

    name: str
    variant: str
    file: str
    urls: Tuple[str, ...]
    source: str
    license: str = "unknown"
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    size_bytes: Optional[int] = None

    @property
    def row(self) -> Variant:
        return MODEL_TABLE[self.variant]

    @property
    def sha256_prefix(self) -> Optional[str]:
        """The checksum the file name carries (None: recorded at the first download instead)."""
        return hash_prefix_of(self.file)

    @property
    def cache_path(self) -> str:
        """Where the file is (or will be) in the cache; a file placed there by hand is used."""
        folder = self.name.split("://", 1)[1] if self.source == "timm" else ""
        return os.path.join(cache_dir(), self.source, folder, self.file)


def _table() -> Dict[str, Weights]:
    table: Dict[str, Weights] = {}
    for variant, row in MODEL_TABLE.items():
        if row.checkpoint:
            table[f"res2net://{variant}"] = Weights(
                f"res2net://{variant}", variant, row.checkpoint,
                tuple(host + row.checkpoint for host in OFFICIAL_HOSTS), "official")
        if row.checkpoint and row.timm_name:  # timm's hub copies of the official weights
            repo = f"timm/{row.timm_name}.in1k"
            table[f"timm://{row.timm_name}.in1k"] = Weights(
                f"timm://{row.timm_name}.in1k", variant, "model.safetensors", (_TIMM_HUB.format(repo=repo),), "timm")
    # The file and its checksum from torchvision itself: the classic V1 recipe of the paper-era baselines.
    for variant, classic in (("resnet50", ResNet50_Weights.IMAGENET1K_V1),
                             ("resnet101", ResNet101_Weights.IMAGENET1K_V1)):
        table[f"torchvision://{variant}"] = Weights(
            f"torchvision://{variant}", variant, os.path.basename(classic.url), (classic.url,), "torchvision",
            license="BSD-3-Clause (torchvision)", size_bytes=None)
    table["timm://resnet50.tv_in1k"] = Weights(  # timm's copy of the same torchvision weights
        "timm://resnet50.tv_in1k", "resnet50", "model.safetensors",
        (_TIMM_HUB.format(repo="timm/resnet50.tv_in1k"),), "timm", license="bsd-3-clause")
    return table


# THE weights table: name -> file, sources, checksum, licence, preprocessing (accuracy, params and
# MACs through its MODEL_TABLE row). tools/download_weights.py --list prints it.
WEIGHTS: Mapping[str, Weights] = MappingProxyType(_table())


def is_weights_name(spec: str) -> bool:
    """``res2net://``, ``timm://``, ``torchvision://`` names and ``http(s)://`` URLs."""
    return str(spec).startswith(WEIGHT_SCHEMES + ("http://", "https://"))


def _lookup(spec: str) -> Weights:
    """The table's entry of a ``res2net://`` / ``timm://`` / ``torchvision://`` name (aliases and
    a missing timm tag resolved); a KeyError listing what there is otherwise."""
    scheme, _, name = spec.partition("://")
    known = sorted(w for w in WEIGHTS if w.startswith(scheme + "://"))
    try:
        if scheme == "res2net":
            candidate = f"res2net://{resolve_name(name)}"
        elif scheme == "timm":
            model, _, tag = name.partition(".")
            row = MODEL_TABLE.get(resolve_name(model)) if model else None
            default = "tv_in1k" if model == "resnet50" else "in1k"
            candidate = f"timm://{row.timm_name if row and row.timm_name else model}.{tag or default}"
        else:
            candidate = spec
    except KeyError:
        candidate = spec
    if candidate not in WEIGHTS:
        resnet = next((v for v in ("resnet50", "resnet101") if v in name), None)
        hint = f" (the {resnet} baseline's ImageNet weights: torchvision://{resnet})" if resnet else ""
        raise KeyError(f"no published weights named {spec!r}{hint}; known {scheme}:// names: {known}")
    return WEIGHTS[candidate]


def weights_entry(spec: str) -> Optional[Weights]:
    """The table's entry of a weights name, of a URL or local file carrying an official file's
    name (``.../res2net50_26w_4s-06e79181.pth``), else None (e.g. a trained detector)."""
    spec = str(spec).strip()
    if spec.startswith(WEIGHT_SCHEMES):
        return _lookup(spec)
    name = os.path.basename(urllib.parse.urlsplit(spec).path if "://" in spec else spec)
    if hash_prefix_of(name) is None:
        return None  # "model.safetensors", "model_final.pth": no file of the table is named so
    return next((w for w in WEIGHTS.values() if w.file == name), None)


def _url_cache_path(url: str) -> str:
    """A plain URL's place in the cache: ``urls/<host>/<path>``, readable and free of collisions."""
    parts = urllib.parse.urlsplit(url)
    safe_host = parts.netloc.replace(":", "_")
    return os.path.join(cache_dir(), "urls", safe_host, *[p for p in parts.path.split("/") if p not in ("", "..")])


def weights_source(spec: str) -> Optional[Tuple[List[str], str, str]]:
    """``(urls, cache path, label)`` of a weights name or URL (the table's URLs under
    ``$RES2NET_DET_WEIGHTS_MIRROR`` when it is set; a plain URL is used as given), None for a local
    path. :func:`res2net_det.modeling.weights.resolve_weights` fetches it."""
    spec = str(spec).strip()
    if spec.startswith(WEIGHT_SCHEMES):
        entry = _lookup(spec)
        return [mirrored(u) for u in entry.urls], entry.cache_path, entry.name
    if spec.startswith(("http://", "https://")):
        return [spec], _url_cache_path(spec), spec
    return None


def weights_table() -> str:
    """The printed weights table (``tools/download_weights.py --list``)."""
    header = (f"{'name':32s} {'variant':22s} {'top-1':>6s} {'top-5':>6s} {'params':>7s} {'GMACs':>6s} "
              f"{'sha256':9s} {'licence':26s} file / sources")
    lines = [header]
    for w in WEIGHTS.values():
        row = w.row
        acc = (f"{row.top1:6.2f} {row.top5:6.2f}" if row.top1 is not None else f"{'-':>6s} {'-':>6s}")
        lines.append(
            f"{w.name:32s} {w.variant:22s} {acc} {row.params / 1e6:6.2f}M {row.gmacs:6.2f} "
            f"{w.sha256_prefix or 'on use':9s} {w.license:26s} {w.file}")
        lines.extend(f"{'':32s} <- {url}" for url in w.urls)
    lines.append(f"preprocessing of every file: {IMAGENET_PREPROCESSING.describe()} "
                 f"(MODEL.PIXEL_MEAN {list(IMAGENET_PREPROCESSING.pixel_mean)}, "
                 f"PIXEL_STD {list(IMAGENET_PREPROCESSING.pixel_std)}, INPUT.FORMAT RGB)")
    lines.append(f"cache: {cache_dir()} ($RES2NET_DET_CACHE); mirror: $RES2NET_DET_WEIGHTS_MIRROR")
    return "\n".join(lines)
