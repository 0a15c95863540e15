"""``tools/train_net.py`` as a module of the package: train or evaluate a config on the engine it picks.

    python -m res2net_det.engines.train_net --config-file quickstart.yaml [--resume] [--eval-only] [KEY VALUE ...]

The same flags and behaviour as the tool (:func:`res2net_det.engines.default_argument_parser`,
:func:`res2net_det.engines.main`); it needs no checkout of the repository, so
:mod:`res2net_det.engines.reproduce` runs its trainings this way (under ``torchrun -m`` for several
processes on the torchvision engine).
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from ..modeling.weights import CheckpointError
from ..utils.download import DownloadError
from . import default_argument_parser
from . import main as run_config

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parses ``argv`` (else the command line) and runs it; a weights file that can't be used or
    fetched exits with its one-line message (it says why and what to do; a traceback would hide it)."""
    try:
        run_config(default_argument_parser().parse_args(argv))
    except (CheckpointError, DownloadError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
