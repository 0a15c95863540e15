"""Checkpoints of the torchvision engine: atomic writes, ``last_checkpoint``, MODEL.WEIGHTS loading.

Files follow Detectron2's layout (``OUTPUT_DIR/model_0004999.pth``, ``model_final.pth`` and a
``last_checkpoint`` text file naming the newest), and hold ``{"model": state dict, "optimizer",
"scheduler", "scaler", "iteration"}``, so ``MODEL.WEIGHTS`` can point at either engine's files.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

import torch
from torch import nn

from ...config.from_scratch import FROM_SCRATCH_HINT
from ...modeling.weights import CheckpointError, describe_state_dict, load_weights, read_state_dict

logger = logging.getLogger(__name__)

__all__ = ["Checkpointer", "load_model_weights", "atomic_save"]


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file, flushed to disk, then renamed: neither a crash nor a
    power cut leaves a half-written file under ``path``."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def load_model_weights(model: nn.Module, path: str) -> Dict[str, list]:
    """Loads ``MODEL.WEIGHTS`` into a detector, a saliency model or a classifier.

    Accepts a detector checkpoint (keys ``backbone.bottom_up.*``, ... as written by
    ``tools/convert_weights.py`` or by a training run of either engine) or a plain official / timm
    Res2Net ``.pth`` (loaded into ``backbone.bottom_up``, or ``backbone`` for a saliency model or a classifier). Tensors whose shape differs (a box
    predictor for another number of classes) are skipped; everything not loaded is logged.
    """
    model = _unwrap(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.WEIGHTS file not found: {path}. Convert an official Res2Net or timm checkpoint "
            f"with `python tools/convert_weights.py <downloaded.pth> {path}` (see README). {FROM_SCRATCH_HINT}."
        )
    state = read_state_dict(path)
    if not any(k.startswith(("backbone.", "rpn.", "roi_heads.")) for k in state):
        if "layer1.0.conv1.weight" not in state:
            raise CheckpointError(
                f"{path} is neither a detector checkpoint (backbone.bottom_up.* keys) nor a Res2Net "
                f"backbone checkpoint: {describe_state_dict(state)}"
            )
        # The Res2Net sits at backbone.bottom_up in a detector (under its FPN) and at backbone
        # in the saliency model and the classifier.
        prefix = "backbone.bottom_up." if hasattr(model.backbone, "bottom_up") else "backbone."
        report = load_weights(model.backbone.bottom_up if prefix == "backbone.bottom_up." else model.backbone, path)
        return {"missing": [f"{prefix}{k}" for k in report.missing], "unexpected": report.unexpected,
                "skipped": []}
    own = model.state_dict()
    to_load, skipped, unexpected = {}, [], []
    for k, v in state.items():
        if k not in own:
            if not k.endswith("num_batches_tracked"):
                unexpected.append(k)
        elif own[k].shape != v.shape:
            skipped.append(f"{k} {tuple(v.shape)} -> {tuple(own[k].shape)}")
        else:
            to_load[k] = v
    missing = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked")]
    model.load_state_dict(to_load, strict=False)
    logger.info("loaded %d tensors from %s", len(to_load), path)
    if skipped:
        logger.warning("not loaded, shape differs (e.g. another number of classes): %s", ", ".join(skipped))
    bottom_up_missing = [k for k in missing if k.startswith("backbone.bottom_up.")]
    if bottom_up_missing:
        logger.warning("backbone keys missing in %s: %s", path, ", ".join(bottom_up_missing))
    if missing:
        logger.info("%d model tensors not in %s (initialised fresh), e.g. %s", len(missing), path, missing[:5])
    if unexpected:
        logger.warning("%d tensors in %s that the model does not have, e.g. %s", len(unexpected), path, unexpected[:5])
    return {"missing": missing, "unexpected": unexpected, "skipped": skipped}


def _describe_backbone(state: Dict[str, torch.Tensor]) -> str:
    """The Res2Net variant inside a whole model's state dict (at any prefix)."""
    anchor = "layer1.0.conv1.weight"
    prefix = next((k[: -len(anchor)] for k in state if k.endswith(anchor)), None)
    if prefix is None:
        return "no Res2Net backbone"
    return describe_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


class Checkpointer:
    """Saves and restores a model and its training state.

    Args:
        model: the model (a DDP wrapper is unwrapped).
        save_dir: folder of the checkpoints and of ``last_checkpoint``.
        save_to_disk: False on processes other than the main one.
        **checkpointables: objects with ``state_dict()`` / ``load_state_dict()`` (optimizer, scheduler, scaler).
    """

    def __init__(self, model: nn.Module, save_dir: str, save_to_disk: bool = True, keep: int = 0,
                 **checkpointables: Any) -> None:
        self.model = _unwrap(model)
        self.save_dir = save_dir
        self.save_to_disk = save_to_disk
        self.keep = keep  # periodic checkpoints kept (SOLVER.CHECKPOINT_KEEP); 0 keeps all
        self.checkpointables = checkpointables
        if save_to_disk and os.path.isdir(save_dir):
            self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of a run killed while writing: never complete, never read."""
        for name in os.listdir(self.save_dir):
            if ".tmp." in name and (name.startswith("last_checkpoint") or name.split(".tmp.")[0].endswith(".pth")):
                os.remove(os.path.join(self.save_dir, name))
                logger.info("removed %s, left by an interrupted checkpoint write", name)

    def _prune(self) -> None:
        """Keeps the newest ``keep`` periodic checkpoints (``model_final`` is never removed)."""
        if self.keep <= 0:
            return
        periodic = sorted(n for n in os.listdir(self.save_dir) if n.startswith("model_") and n.endswith(".pth")
                          and n[len("model_"):-len(".pth")].isdigit())
        for name in periodic[:-self.keep]:
            os.remove(os.path.join(self.save_dir, name))

    def save(self, name: str, **extra: Any) -> Optional[str]:
        if not self.save_to_disk:
            return None
        os.makedirs(self.save_dir, exist_ok=True)
        data = {"model": self.model.state_dict()}
        data.update({k: obj.state_dict() for k, obj in self.checkpointables.items()})
        data.update(extra)
        path = os.path.join(self.save_dir, f"{name}.pth")
        atomic_save(data, path)
        tmp = os.path.join(self.save_dir, f"last_checkpoint.tmp.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(os.path.basename(path))
        os.replace(tmp, os.path.join(self.save_dir, "last_checkpoint"))
        logger.info("saved checkpoint %s", path)
        self._prune()
        return path

    def last_checkpoint(self) -> Optional[str]:
        """The newest checkpoint of ``save_dir``, or None."""
        marker = os.path.join(self.save_dir, "last_checkpoint")
        if not os.path.isfile(marker):
            return None
        with open(marker, encoding="utf-8", errors="replace") as f:
            name = f.read().strip()
        if not name or os.sep in name or "\n" in name or not name.endswith(".pth"):
            raise CheckpointError(
                f"{marker} is garbled: it should hold the file name of the newest checkpoint "
                f"(e.g. model_0004999.pth), but holds {name[:80]!r}. Write the right name into it, or delete "
                "it to start from MODEL.WEIGHTS"
            )
        path = os.path.join(self.save_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{marker} names {path}, which does not exist")
        return path

    def resume_or_load(self, weights: str, resume: bool) -> Dict[str, Any]:
        """With ``resume`` and a checkpoint in ``save_dir``: restore everything and return its extra
        fields (``iteration``); else load ``weights`` (if any) into the model only and return ``{}``."""
        last = self.last_checkpoint() if resume else None
        if last is not None:
            return self.load(last)
        if resume:
            logger.info("--resume: no checkpoint in %s, starting from MODEL.WEIGHTS", self.save_dir)
        if weights:
            load_model_weights(self.model, weights)
        return {}

    def _load_model_state(self, state: Dict[str, torch.Tensor], path: str) -> None:
        """The whole model, strictly: a checkpoint of another architecture (a run of another
        variant in the same OUTPUT_DIR, say) fails naming the file and what each side looks like."""
        own = self.model.state_dict()
        mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if mismatched or missing or unexpected:
            details = []
            if mismatched:
                k = mismatched[0]
                details.append(f"{len(mismatched)} tensors of another shape, e.g. {k} {tuple(state[k].shape)} in the "
                               f"file but {tuple(own[k].shape)} in the model")
            if missing:
                details.append(f"{len(missing)} model tensors missing, e.g. {missing[0]}")
            if unexpected:
                details.append(f"{len(unexpected)} unknown tensors, e.g. {unexpected[0]}")
            raise CheckpointError(
                f"checkpoint {path} was written by another model and can't be resumed: {'; '.join(details)}. "
                f"The checkpoint's backbone looks like: {_describe_backbone(state)}; this config builds: "
                f"{_describe_backbone(own)}. Use another OUTPUT_DIR, or the config the checkpoint was trained with."
            )
        self.model.load_state_dict(state)

    def load(self, path: str) -> Dict[str, Any]:
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise CheckpointError(f"could not read checkpoint {path}: {type(e).__name__}: {e}") from e
        self._load_model_state(data.pop("model"), path)
        for k, obj in self.checkpointables.items():
            if k in data:
                obj.load_state_dict(data.pop(k))
            else:
                logger.warning("checkpoint %s has no %s state", path, k)
        logger.info("resumed from %s (iteration %s)", path, data.get("iteration"))
        return data
