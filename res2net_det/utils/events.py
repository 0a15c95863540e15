"""A training run's metrics as Detectron2 writes them: ``metrics.json`` (one JSON object a line, with
its ``iteration``) and TensorBoard events, so ``tools/compare_runs.py``, TensorBoard and Detectron2's
own readers take runs of either engine alike. The torchvision engine's trainer writes through
:class:`MetricsWriter`; Detectron2 has its own writers (``detectron2.utils.events``)."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict

from .io import atomic_write, strict_json

logger = logging.getLogger(__name__)

__all__ = ["MetricsWriter", "flatten_results"]


def flatten_results(results: Dict[str, Any], prefix: str = "") -> Dict[str, float]:
    """``{"bbox": {"AP": 1}}`` -> ``{"bbox/AP": 1}`` (Detectron2's metric names)."""
    flat = {}
    for k, v in results.items():
        if isinstance(v, dict):
            flat.update(flatten_results(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            flat[f"{prefix}{k}"] = float(v)
    return flat


class MetricsWriter:
    """``metrics.json`` (one JSON object a line, Detectron2's format) and TensorBoard, main process only."""

    def __init__(self, output_dir: str, enabled: bool, start_iter: int = 0) -> None:
        self.enabled = enabled
        self.json_path = os.path.join(output_dir, "metrics.json")
        self.tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops the events a killed run wrote after its last checkpoint.
            self.tb = SummaryWriter(output_dir, purge_step=start_iter or None)

    @staticmethod
    def truncate(output_dir: str, iteration: int) -> None:
        """Drops the metrics.json lines written after ``iteration`` (by a run killed later than its
        last checkpoint), so the resumed run does not write them twice."""
        path = os.path.join(output_dir, "metrics.json")
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        kept = []
        for line in lines:
            try:
                if json.loads(line)["iteration"] <= iteration:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by the kill
        if len(kept) < len(lines):
            logger.info("resume: dropped %d metrics.json lines written after iteration %d",
                        len(lines) - len(kept), iteration)
            with atomic_write(path, fsync=True) as f:
                f.writelines(kept)

    def write(self, iteration: int, metrics: Dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.json_path, "a", encoding="utf-8") as f:
            record = strict_json({"iteration": iteration, **metrics})
            f.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, iteration)
        self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
