"""Latency measurement that survives a shared, noisy machine.

Candidates run *interleaved* (A B C, B C A, C A B, ...), so that load from other processes
hits all of them alike, and each is summarised by its median. Ratios to a baseline are
computed from medians taken in the same run. Subcommands of ``tools/benchmark.py`` share
these helpers; the candidates they time are built in :mod:`res2net_det.evaluation.benchmark`.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch

__all__ = ["Timing", "time_interleaved", "format_timings", "set_threads"]


@dataclass
class Timing:
    """Latencies (seconds) of one candidate over the repeats."""

    name: str
    seconds: List[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy the run was."""
        if len(self.seconds) < 4:
            return float("nan")
        q = statistics.quantiles(self.seconds, n=4)
        return (q[2] - q[0]) / self.median


def set_threads(threads: Optional[int]) -> int:
    """Sets torch's intra-op threads (when given) and returns the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def time_interleaved(
    candidates: Mapping[str, Callable[[], object]], repeats: int = 10, warmup: int = 2
) -> Dict[str, Timing]:
    """Times each zero-argument callable ``repeats`` times, rotating the order every round.

    ``warmup`` untimed rounds go first (allocator caches, oneDNN primitive creation).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    timings = {name: Timing(name, []) for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            candidates[name]()
            timings[name].seconds.append(time.perf_counter() - start)
    return timings


def format_timings(timings: Mapping[str, Timing], baselines: Sequence[str] = ()) -> str:
    """A table of medians (ms), noise (IQR / median) and ratios to each baseline."""
    width = max(len(n) for n in timings)
    header = f"{'model':{width}s} {'median ms':>10s} {'IQR/med':>8s}" + "".join(f"  / {b}" for b in baselines)
    lines = [header]
    for name, t in timings.items():
        ratios = "".join(f"  {t.median / timings[b].median:{len(b) + 1}.3f}x" for b in baselines)
        lines.append(f"{name:{width}s} {t.median * 1e3:10.1f} {t.spread:8.2f}{ratios}")
    return "\n".join(lines)
