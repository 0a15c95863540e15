"""Checkpoints of the torchvision engine: atomic writes, ``last_checkpoint``, MODEL.WEIGHTS loading.

Files follow Detectron2's layout (``OUTPUT_DIR/model_0004999.pth``, ``model_final.pth`` and a
``last_checkpoint`` text file naming the newest), and hold ``{"model": state dict, "optimizer",
"scheduler", "scaler", "iteration", "seed", "rng"}``, so ``MODEL.WEIGHTS`` can point at either
engine's files. Everything in them is tensors and plain Python values (checked when saving), so they
are read back with ``weights_only=True`` like any other file; no checkpoint is unpickled unsafely.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

import torch
from torch import nn

from ...config.from_scratch import FROM_SCRATCH_HINT, WEIGHTS_HINT
from ...modeling.detector_layouts import check_fully_loaded, partial_load_note
from ...modeling.saliency import OFFICIAL_LAYOUT_CONFIGS
from ...modeling.weights import CheckpointError, check_safe_to_load, load_checkpoint, load_weights, resolve_weights
from ...utils.io import TEMPORARY_NAME, atomic_write

logger = logging.getLogger(__name__)

__all__ = ["Checkpointer", "load_model_weights"]


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def load_model_weights(model: nn.Module, path: str, allow_partial: bool = False,
                       inference: bool = False, accept_checksum_mismatch: bool = False) -> Dict[str, list]:
    """Loads ``MODEL.WEIGHTS`` into a detector, a saliency model or a classifier with
    :func:`res2net_det.modeling.weights.load_weights` (safe unpickling only).

    Accepts a full-model checkpoint (as written by ``tools/convert_weights.py`` or by a training
    run of either engine), a plain official / timm / torchvision file (``.pth`` or
    ``.safetensors``, loaded into the model's Res2Net), or a weights name or URL (``res2net://``,
    ``timm://``, ``torchvision://``, ``http(s)://``), fetched into the cache first
    (``accept_checksum_mismatch``: ``MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH``). Head tensors whose
    shape differs (a box predictor for another number of classes) are skipped and logged; a backbone
    tensor of another shape (another variant's checkpoint) fails naming the file, unless ``allow_partial``
    (``MODEL.WEIGHTS_ALLOW_PARTIAL``). With
    ``inference`` (``--eval-only``, predictors, export), a file that leaves any tensor of a detector
    unloaded fails too (:func:`~res2net_det.modeling.detector_layouts.check_fully_loaded`), unless
    ``allow_partial``; in training it is said once in the log. Returns ``{"missing",
    "unexpected", "skipped"}`` key lists.
    """
    path = resolve_weights(path, accept_checksum_mismatch=accept_checksum_mismatch)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MODEL.WEIGHTS file not found: {path}. {WEIGHTS_HINT} {FROM_SCRATCH_HINT}.")
    report = load_weights(_unwrap(model), path, skip_mismatched=True)
    authors = [layout for layout in report.layouts if layout in OFFICIAL_LAYOUT_CONFIGS]
    if authors and (report.missing or report.unexpected or report.skipped_shape):
        # The authors' released PoolNet is a whole model: loaded in part, it gives other maps.
        raise CheckpointError(f"MODEL.WEIGHTS {path} ({authors[0]}) does not fit this model: "
                              + "; ".join(report.problems()) + f". Use {OFFICIAL_LAYOUT_CONFIGS[authors[0]]}")
    backbone = [k for k in report.skipped_shape if k.startswith("backbone.")]
    if backbone and not allow_partial:
        raise CheckpointError(
            f"MODEL.WEIGHTS {path} does not fit this model's backbone: {len(backbone)} tensors have other "
            f"shapes, e.g. {backbone[0]} (file -> model); it was trained with another variant or width. Use "
            "the config it was trained with, or set MODEL.WEIGHTS_ALLOW_PARTIAL True to load only what fits"
        )
    _check_detector_loaded(_unwrap(model), report, path, inference and not allow_partial)
    return {"missing": report.missing, "unexpected": report.unexpected,
            "skipped": report.skipped_shape + report.skipped_classifier}


def _check_detector_loaded(model: nn.Module, report, path: str, require_complete: bool) -> None:
    """Refuses (inference) or notes once in the log (training) a detector that ``report`` left partly unloaded."""
    shape_keys = [entry.split(" ")[0] for entry in report.skipped_shape]
    file_keys = report.loaded + report.unexpected + shape_keys + report.skipped_classifier
    model_keys = list(model.state_dict())
    if require_complete:
        check_fully_loaded(model_keys, report.loaded, file_keys, f"MODEL.WEIGHTS {path}", mismatched=shape_keys)
        return
    note = partial_load_note(model_keys, report.loaded, file_keys, f"MODEL.WEIGHTS {path}")
    if note:
        logger.info(note)


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
            torn = TEMPORARY_NAME.fullmatch(name)
            if torn and (torn["target"] == "last_checkpoint" or torn["target"].endswith(".pth")):
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
        # Written only in forms torch.load(weights_only=True) reads back, so --resume never needs
        # unsafe unpickling; a state that isn't (a NumPy array, an object) fails here, named.
        check_safe_to_load(data, f"checkpoint {name}")
        path = os.path.join(self.save_dir, f"{name}.pth")
        with atomic_write(path, "wb", fsync=True) as f:  # a crash never leaves a half-written checkpoint
            torch.save(data, f)
        with atomic_write(os.path.join(self.save_dir, "last_checkpoint"), fsync=True) as f:
            f.write(os.path.basename(path))
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

    def resume_or_load(self, weights: str, resume: bool, allow_partial: bool = False,
                       inference: bool = False, accept_checksum_mismatch: bool = False) -> Dict[str, Any]:
        """With ``resume`` and a checkpoint in ``save_dir``: restore everything and return its extra
        fields (``iteration``); else load ``weights`` (if any) into the model only and return ``{}``
        (``inference``: refusing a detector it leaves partly unloaded, see :func:`load_model_weights`)."""
        last = self.last_checkpoint() if resume else None
        if last is not None:
            return self.load(last)
        if resume:
            logger.info("--resume: no checkpoint in %s, starting from MODEL.WEIGHTS", self.save_dir)
        if weights:
            load_model_weights(self.model, weights, allow_partial=allow_partial, inference=inference,
                               accept_checksum_mismatch=accept_checksum_mismatch)
        return {}

    def load(self, path: str) -> Dict[str, Any]:
        """Restores the model and every checkpointable from ``path``; returns the rest (``iteration``,
        ``rng``, ...). The file is read with safe unpickling only
        (:func:`~res2net_det.modeling.weights.load_checkpoint`), the model strictly: a checkpoint of
        another architecture (a run of another variant in the same OUTPUT_DIR, say) fails naming the
        file and what each side looks like."""
        data = load_checkpoint(path)
        if not isinstance(data, dict) or "model" not in data:
            raise CheckpointError(f"{path} is not a training checkpoint of this project (no 'model' entry); "
                                  "give it as MODEL.WEIGHTS instead of resuming from it")
        try:
            load_weights(self.model, data.pop("model"), strict=True, name=path)
        except CheckpointError as e:
            raise CheckpointError(
                f"checkpoint {path} was written by another model and can't be resumed: {e} "
                "Use another OUTPUT_DIR, or the config the checkpoint was trained with."
            ) from None
        for k, obj in self.checkpointables.items():
            if k in data:
                obj.load_state_dict(data.pop(k))
            else:
                logger.warning("checkpoint %s has no %s state", path, k)
        logger.info("resumed from %s (iteration %s)", path, data.get("iteration"))
        return data
