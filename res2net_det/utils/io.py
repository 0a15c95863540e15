"""Reading small files with errors that name the file, and writing files (strict JSON among them)
atomically."""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from typing import IO, Any, Iterator, Optional, Type


def read_json_file(path: str, what: str, error: Type[Exception] = ValueError) -> Any:
    """Parses the JSON file ``path`` (a ``what``: "annotation file", "model card", ...).

    A missing file raises FileNotFoundError and a malformed one ``error``, both naming the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise error(f"{what} {path} is not valid JSON ({e}); is it truncated?") from e


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None: JSON has no NaN, and readers in
    other languages (and ``json.loads(..., parse_constant=...)``-strict ones) reject it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


@contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
    """A file to write ``path`` through: written as ``<path>.tmp.<pid>``, flushed to disk, then
    renamed over ``path``, so neither a crash nor a power cut leaves a torn ``path``. ``mode`` is
    ``"w"`` (UTF-8 text) or ``"wb"``."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_file(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """Writes ``obj`` as strict JSON (NaN -> null) atomically: a crash never leaves a torn file."""
    with atomic_open(path) as f:
        json.dump(strict_json(obj), f, indent=indent, allow_nan=False)
