"""Checkpoint files: the one reader, the one loader and the one architecture guesser.

* :func:`resolve_weights` turns a weights name (``res2net://``, ``timm://``, ``torchvision://``,
  an ``http(s)://`` URL; :mod:`.pretrained`) into a local file, downloaded once into the cache,
  checksummed and checked to read as a checkpoint before it is kept; every reader below takes
  such names wherever it takes a path.
* :func:`load_checkpoint` is the only ``torch.load`` of the package, always with
  ``weights_only=True``; ``.safetensors`` files (timm's hub format) are read by
  ``safetensors``: a ``.pth`` is a pickle, and unpickling a file from the internet with
  ``weights_only=False`` runs whatever its author put in it. A file that needs more than tensors
  and plain Python values is refused with :class:`UnsafeCheckpointError`, which names the file
  and gives the one-line command that converts it for a user who trusts it. No flag turns the
  check off.
* :func:`read_state_dict` returns a flat ``{key: tensor}`` from any of the usual wrappings
  (bare, ``state_dict``, ``model``, DataParallel's ``module.``).
* :func:`load_weights` loads a file (or state dict) into a Res2Net, a detector, a saliency model
  or a classifier: a plain backbone file goes to the model's Res2Net (``backbone.bottom_up`` or
  ``backbone``); layout conversions (torchvision ResNet names, and any registered with
  :func:`register_layout`) are applied first; every problem is reported by key.
* :func:`infer_res2net_args` reads the architecture off a state dict; :func:`describe_state_dict`
  words it for error messages.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import pickle
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import safetensors.torch
import torch
from torch import nn

from ..utils.download import cached_file
from .pretrained import is_weights_name, weights_source

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "LoadReport",
    "backbone_of",
    "UnsafeCheckpointError",
    "check_safe_to_load",
    "conversion_command",
    "describe_state_dict",
    "from_torchvision_resnet",
    "infer_res2net_args",
    "load_checkpoint",
    "load_weights",
    "read_state_dict",
    "register_layout",
    "resolve_weights",
]

_CLASSIFIER_PREFIXES = ("fc.",)
_BACKBONE_KEY = "layer1.0.conv1.weight"  # present in every Res2Net / ResNet state dict


class CheckpointError(RuntimeError):
    """A checkpoint file that can't be read or doesn't fit the model; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose unpickling would create objects other than tensors and plain values,
    i.e. could run code. Refused; the message says how to convert a trusted file."""


# ---------------------------------------------------------------------------- reading
def conversion_command(path: str, out: Optional[str] = None) -> str:
    """A one-line shell command that loads ``path`` with ``weights_only=False`` (only for a file
    one trusts) and saves its tensors as a plain state dict that the safe loader reads."""
    out = out or re.sub(r"(\.pth|\.pt|\.pth\.tar|\.ckpt|\.bin)?$", ".state_dict.pth", path, count=1)
    code = (
        f"import torch; c = torch.load({json.dumps(path)}, map_location='cpu', weights_only=False); "
        "c = c.state_dict() if hasattr(c, 'state_dict') else c.get('state_dict', c.get('model', c)); "
        f"torch.save({{k: v for k, v in c.items() if isinstance(v, torch.Tensor)}}, {json.dumps(out)})"
    )
    return f"python -c {shlex.quote(code)}"


def _is_safetensors(path: str) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then the JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path)


def _check_downloaded_checkpoint(path: str) -> None:
    """A download is kept only if it reads as a state dict (not an HTML page, not a pickle of objects)."""
    try:
        read_state_dict(path)
    except UnsafeCheckpointError:
        raise CheckpointError("it does not read as a checkpoint: unpickling it would create objects other than "
                              "tensors (or it is no pickle at all, e.g. an HTML page)") from None
    except CheckpointError as e:
        raise CheckpointError(f"it does not read as a checkpoint ({e})") from None


def resolve_weights(spec: str, *, accept_checksum_mismatch: bool = False, progress: Optional[bool] = None) -> str:
    """The local file behind a weights argument: a ``res2net://`` / ``timm://`` / ``torchvision://``
    name or an ``http(s)://`` URL is fetched into the cache once (checksummed, and refused unless it
    reads as a checkpoint; :func:`res2net_det.utils.download.cached_file`), a local path comes back
    as it is.

    Args:
        accept_checksum_mismatch: keep a file whose sha256 disagrees with the expected one (a file
            you trust; ``MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH``), logged as a warning.
        progress: a progress bar while downloading (default: when stderr is a terminal).

    Raises ``KeyError`` for an unknown name and :class:`~res2net_det.utils.download.DownloadError`
    (an ``OSError``) when no source delivers the file; its message names every URL tried, the
    mirror variable and the cache path where a file placed by hand is used.
    """
    source = weights_source(spec)
    if source is None:
        return spec
    urls, path, label = source
    local = cached_file(urls, path, accept_checksum_mismatch=accept_checksum_mismatch, progress=progress,
                        validate=_check_downloaded_checkpoint)
    logger.info("weights %s: %s", label, local)  # its sha256 was logged where it was checked
    return local


def load_checkpoint(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU (or ``safetensors`` for a ``.safetensors``
    file), with errors that name the file; weights names and URLs are fetched first
    (:func:`resolve_weights`).

    Raises ``FileNotFoundError`` for a missing file, :class:`UnsafeCheckpointError` for a file
    that would need unsafe unpickling (its objects are never created, so no code in it runs) and
    :class:`CheckpointError` for a truncated or foreign file.
    """
    if is_weights_name(path):
        path = resolve_weights(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if _is_safetensors(path):
        try:
            return safetensors.torch.load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own error types for truncated headers / data
            raise CheckpointError(f"could not read safetensors file {path}: {type(e).__name__}: {e}") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" not in str(e).lower():
            raise CheckpointError(f"could not read checkpoint {path}: {e}") from e
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise UnsafeCheckpointError(
            f"checkpoint {path} would need unsafe unpickling (it holds "
            f"{found.group(1) if found else 'a Python object other than tensors and plain values'}), "
            "which can run arbitrary code; it is refused. If you trust the file, convert it once to a "
            f"plain state dict and use the result:\n  {conversion_command(path)}"
        ) from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"could not read checkpoint {path}: {type(e).__name__}: {e}. "
            "The file may be truncated (an interrupted download?) or not a PyTorch checkpoint."
        ) from e


# Types the weights-only unpickler rebuilds by default, compared exactly (np.float64 is a float
# subclass, a namedtuple a tuple subclass: both are refused by the loader). What our checkpoints
# hold is made of these - Python's random.getstate() is a tuple of ints, NumPy's
# bit_generator.state a dict of str/int - so no type needs torch.serialization.add_safe_globals.
_SAFE_SCALARS = (bool, int, float, complex, str, bytes, type(None), torch.Size, torch.dtype, torch.device)
_SAFE_CONTAINERS = (dict, collections.OrderedDict, list, tuple, set, frozenset)


def check_safe_to_load(obj: Any, where: str = "checkpoint") -> None:
    """Raises ``TypeError`` naming the entry (``checkpoint['rng']['numpy']``) of the first value
    :func:`load_checkpoint` would refuse, so a checkpoint that can't be resumed is never written."""
    kind = type(obj)
    if kind in _SAFE_SCALARS or isinstance(obj, torch.Tensor):  # nn.Parameter included
        return
    if kind in _SAFE_CONTAINERS:
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            if isinstance(obj, dict):
                check_safe_to_load(k, f"{where} key {k!r}")
            check_safe_to_load(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}, which the safe checkpoint loader "
        "(torch.load(weights_only=True)) refuses; store it as tensors or plain Python values "
        "(e.g. .tolist(), float(...), a dict of its state)"
    )


def _unwrap(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    for wrapper in ("state_dict", "model", "model_state"):
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"checkpoint {path} holds no state dict (got {type(obj).__name__})")
    state = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            state[key[len("module."):] if key.startswith("module.") else key] = value
    if not state:
        raise CheckpointError(f"checkpoint {path} holds no tensors")
    return state


def read_state_dict(source: Union[str, Mapping[str, Any]]) -> Dict[str, torch.Tensor]:
    """A flat ``{key: tensor}`` state dict from a checkpoint path (read by :func:`load_checkpoint`)
    or an already loaded object.

    Accepts a bare state dict, or one wrapped under ``state_dict`` / ``model`` (timm's, ours and
    Detectron2's training checkpoints), with or without DataParallel's ``module.`` prefix.
    """
    if isinstance(source, str):
        return _unwrap(load_checkpoint(source), source)  # names and URLs are fetched there
    return _unwrap(source, "<state dict>")


# ---------------------------------------------------------------------------- layouts
_TORCHVISION_3X3 = re.compile(r"^(layer\d+\.\d+\.)(conv2|bn2)\.")


def from_torchvision_resnet(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Renames a torchvision ResNet state dict's block 3x3 conv keys to ours (scale 1).

    ``layerX.Y.conv2`` -> ``layerX.Y.convs.0`` and ``bn2`` -> ``bns.0``; everything else is
    already shared. A Res2Net state dict (no ``conv2`` keys) comes back unchanged.
    """
    def rename(key: str) -> str:
        return _TORCHVISION_3X3.sub(lambda m: m.group(1) + ("convs.0." if m.group(2) == "conv2" else "bns.0."), key)

    return {rename(k): v for k, v in state.items()}


# (name, applies(state, model), convert(state[, model]), with_model) in order; see register_layout.
_LAYOUTS: List[Tuple[str, Callable[[Mapping[str, torch.Tensor], nn.Module], bool], Callable, bool]] = []


def register_layout(
    name: str,
    applies: Callable[[Mapping[str, torch.Tensor], nn.Module], bool],
    convert: Callable[..., Dict[str, torch.Tensor]],
    with_model: bool = False,
) -> None:
    """Teaches :func:`load_weights` another checkpoint layout (e.g. a paper's released weights):
    when ``applies(state, model)``, ``convert(state)`` renames the keys to the model's before
    matching (``convert(state, model)`` with ``with_model``, for a conversion that depends on the
    model, e.g. its anchors). Registering a name again replaces it."""
    _LAYOUTS[:] = [entry for entry in _LAYOUTS if entry[0] != name] + [(name, applies, convert, with_model)]


def _torchvision_file_for_our_blocks(state: Mapping[str, torch.Tensor], model: nn.Module) -> bool:
    # A torchvision ResNet file, and a model whose ResNet (anywhere in it) is ours, not torchvision's.
    return any(_TORCHVISION_3X3.match(k) for k in state) and not any(
        re.search(r"(^|\.)layer\d+\.\d+\.(conv2|bn2)\.", k) for k in model.state_dict())


register_layout("torchvision resnet", _torchvision_file_for_our_blocks, from_torchvision_resnet)


# ---------------------------------------------------------------------------- architecture
def infer_res2net_args(state: Mapping[str, torch.Tensor]) -> dict:
    """:class:`~res2net_det.modeling.res2net.Res2Net` arguments (``layers``, ``base_width``,
    ``scale``, ``cardinality``, ``deep_stem``, ``stem_width``, ``avg_down``) that fit an
    official-layout state dict; :class:`CheckpointError` when it is no Res2Net/ResNet."""
    try:
        blocks = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5))
        conv1 = state[_BACKBONE_KEY]
        conv3x3 = state["layer1.0.convs.0.weight"]
        width = conv3x3.shape[0]  # split width (x cardinality) of layer1, whose planes are 64
        cardinality = width // conv3x3.shape[1]
        deep_stem = "conv1.0.weight" in state
        return dict(
            layers=blocks,
            base_width=width // cardinality,
            scale=conv1.shape[0] // width,
            cardinality=cardinality,
            deep_stem=deep_stem,
            stem_width=state["conv1.0.weight"].shape[0] if deep_stem else 32,
            avg_down="layer2.0.downsample.2.weight" in state,
        )
    except KeyError as e:
        raise CheckpointError(
            f"not a Res2Net/ResNet backbone: key {e.args[0]!r} is missing (first keys: {sorted(state)[:5]})"
        ) from None
    except (IndexError, ZeroDivisionError) as e:
        raise CheckpointError(f"not a Res2Net/ResNet backbone: its layer1 shapes don't fit one ({e})") from None


def describe_state_dict(state: Mapping[str, torch.Tensor]) -> str:
    """A short description of the Res2Net variant a state dict is, or holds (a detector's
    ``backbone.bottom_up.*``, a saliency model's ``backbone.*``), for error messages."""
    prefix = next((k[: -len(_BACKBONE_KEY)] for k in state if k.endswith(_BACKBONE_KEY)
                   and (len(k) == len(_BACKBONE_KEY) or k[-len(_BACKBONE_KEY) - 1] == ".")), None)
    try:
        if prefix is None:
            raise CheckpointError("no Res2Net")
        args = infer_res2net_args({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    except CheckpointError:
        return "not a Res2Net checkpoint (no layer1.0.conv1 / convs keys)"
    depth = 3 * sum(args["layers"]) + 2  # 3 convs per bottleneck + stem + classifier
    groups = f", cardinality {args['cardinality']}" if args["cardinality"] > 1 else ""
    stem = "deep stem" if args["deep_stem"] else "7x7 stem"
    where = f" (at {prefix.rstrip('.')})" if prefix else ""
    return f"depth {depth}, {args['base_width']}w x {args['scale']}s{groups}, {stem}{where}"


# ---------------------------------------------------------------------------- loading
@dataclass
class LoadReport:
    """What :func:`load_weights` did. Keys are the model's (with ``prefix`` for a backbone file)."""

    path: str
    prefix: str = ""
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    skipped_classifier: List[str] = field(default_factory=list)
    skipped_shape: List[str] = field(default_factory=list)  # "key (file shape) -> (model shape)"
    layouts: List[str] = field(default_factory=list)

    def summary(self) -> str:
        into = f" into {self.prefix.rstrip('.')}" if self.prefix else ""
        lines = [f"loaded {len(self.loaded)} tensors from {self.path}{into}"
                 + (f" (converted from the {', '.join(self.layouts)} layout)" if self.layouts else "")]
        return "\n".join(lines + self.problems())

    def problems(self) -> List[str]:
        """One line per kind of key that was not loaded."""
        lines = []
        for what, keys in (("missing in checkpoint", self.missing), ("unexpected in checkpoint", self.unexpected),
                           ("not loaded, shape differs (e.g. another number of classes)", self.skipped_shape)):
            if keys:
                lines.append(f"{what} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}")
        if self.skipped_classifier:
            lines.append("classifier not loaded (model has a different number of classes or none): "
                         + ", ".join(self.skipped_classifier))
        return lines


def backbone_of(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Tuple[nn.Module, str]:
    """Where a plain Res2Net file goes: the model itself, else its ``backbone.bottom_up`` (a
    detector's Res2Net under the FPN) or ``backbone`` (saliency model, classifier task model)."""
    own = model.state_dict()
    if _BACKBONE_KEY in own or not any(k.startswith(("layer1.", "conv1.")) for k in state):
        return model, ""
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "bottom_up"):
        return backbone.bottom_up, "backbone.bottom_up."
    if backbone is not None:
        return backbone, "backbone."
    return model, ""


def load_weights(
    model: nn.Module,
    source: Union[str, Mapping[str, Any]],
    strict: bool = False,
    skip_mismatched: bool = False,
    convert: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None,
    name: Optional[str] = None,
) -> LoadReport:
    """Loads a checkpoint (path, or loaded object/state dict) into ``model``; the package's one loader.

    Args:
        strict: any missing, unexpected or differently shaped key raises :class:`CheckpointError`
            (inference: predictions of a partly loaded model would be silently wrong).
        skip_mismatched: tensors whose shape differs are skipped and reported (fine-tuning a
            detector on another number of classes); otherwise the first one raises, naming the
            key and both architectures. A classifier (``fc``) of another size, or one the model
            doesn't have, is always skipped unless ``strict``, so ImageNet weights can start a
            model with other classes.
        convert: renames the file's keys to the model's before matching, for a layout not
            registered with :func:`register_layout`.
        name: how messages name ``source`` when it is not a path (e.g. the checkpoint it came from).

    Unless ``strict``, a plain Res2Net / timm / torchvision ResNet file loaded into a detector,
    saliency model or classifier task model goes to its Res2Net (see :func:`backbone_of`).
    """
    path = source if isinstance(source, str) else (name or "<state dict>")
    state = read_state_dict(source)
    layouts = []
    if convert is not None:
        state = convert(state)
        layouts.append("given")
    for layout, applies, layout_convert, with_model in _LAYOUTS:
        try:
            if applies(state, model):
                state = layout_convert(state, model) if with_model else layout_convert(state)
                layouts.append(layout)
        except CheckpointError as e:  # a layout's own check: the message gets the file's name
            raise CheckpointError(f"{path}: {e}") from None
    # Strict loading is for a whole model: a backbone file must not pass for one.
    target, prefix = (model, "") if strict else backbone_of(model, state)
    report = LoadReport(path=path, prefix=prefix, layouts=layouts)
    own = target.state_dict()
    to_load: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        is_classifier = key.startswith(_CLASSIFIER_PREFIXES) and not strict
        if key not in own:
            if not key.endswith("num_batches_tracked"):
                (report.skipped_classifier if is_classifier else report.unexpected).append(prefix + key)
        elif own[key].shape != value.shape:
            if is_classifier:
                report.skipped_classifier.append(prefix + key)
            elif skip_mismatched and not strict:
                report.skipped_shape.append(f"{prefix}{key} {tuple(value.shape)} -> {tuple(own[key].shape)}")
            else:
                raise CheckpointError(
                    f"checkpoint {path} does not fit this model: key {prefix + key!r} has shape "
                    f"{tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} in the model. "
                    f"The checkpoint looks like: {describe_state_dict(state)}; "
                    f"the model is: {describe_state_dict(own)}."
                )
        else:
            to_load[key] = value
    not_loaded = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked")]
    report.missing = [prefix + k for k in not_loaded if not k.startswith(_CLASSIFIER_PREFIXES)]
    report.missing += [prefix + k for k in not_loaded if k.startswith(_CLASSIFIER_PREFIXES)]
    if not to_load:
        raise CheckpointError(
            f"no tensor of {path} fits the model ({len(state)} tensors, e.g. {sorted(state)[:3]}; the model "
            f"has e.g. {sorted(own)[:3]}). The file looks like: {describe_state_dict(state)}."
        )
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(
            f"{path} does not fit the model (strict loading):\n  " + "\n  ".join(report.problems())
            + "\nIs the config the one the weights were trained with?"
        )
    target.load_state_dict(to_load, strict=False)
    report.loaded = sorted(prefix + k for k in to_load)
    noisy = report.missing or report.unexpected or report.skipped_classifier or report.skipped_shape
    (logger.warning if noisy else logger.info)(report.summary())
    return report
