"""Logging set-up for tools: the package's messages to the console and OUTPUT_DIR/log.txt."""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

__all__ = ["setup_logger"]


def setup_logger(output_dir: Optional[str] = None, rank: int = 0, name: str = "res2net_det") -> logging.Logger:
    """Console output on the main process; ``log.txt`` (``log.txt.rankN`` for others) in ``output_dir``."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s", datefmt="%m/%d %H:%M:%S")
    if rank == 0:
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(fmt)
        logger.addHandler(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "log.txt" if rank == 0 else f"log.txt.rank{rank}")
        fh = logging.FileHandler(path)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger
