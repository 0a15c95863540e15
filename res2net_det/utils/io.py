"""Reading small files with errors that name the file, and writing files atomically.

:func:`atomic_write` (a file object) and :func:`atomic_path` (a path, for libraries that want a
file name) are the package's one way of writing a file that readers may look at while it is
written, or that a crash must not leave half-written: the data go to a temporary file beside the
target, which ``os.replace`` renames onto it only when everything was written; on an error the
temporary file is removed and the target is left as it was.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import uuid
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


def temporary_path(path: str, suffix: str = ".tmp") -> str:
    """A fresh name beside ``path`` for writing it: ``<path>.<random hex><suffix>``; unique even
    between the threads of one process, and on the same file system (``os.replace`` needs that)."""
    return f"{path}.{uuid.uuid4().hex}{suffix}"


#: The name :func:`temporary_path` gives (default suffix): a process killed while writing leaves
#: one behind (an error in-process removes it), which a later run may recognise and remove.
TEMPORARY_NAME = re.compile(r"(?P<target>.+)\.[0-9a-f]{32}\.tmp")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yields a temporary path beside ``path`` (:func:`temporary_path`; nothing is created there)
    for the caller to write. When the block ends normally the file is renamed onto ``path``; when
    it raises, the temporary file (if written) is removed and ``path`` is left as it was. For
    writers that take a file name (``safetensors``, ``np.savez``, a download that checks the file
    before it counts); otherwise :func:`atomic_write`."""
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", *, encoding: Optional[str] = None, fsync: bool = False,
                 suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, atomically (:func:`atomic_path`): readers see the old file
    or the whole new one, never a part, and an error leaves no file behind. Text modes default to
    UTF-8. ``fsync`` flushes the data to disk before the rename, so that a power cut cannot leave
    the renamed file empty either."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_write writes a new file; mode must contain 'w' or 'x', got {mode!r}")
    if encoding is None and "b" not in mode:
        encoding = "utf-8"
    with atomic_path(path, suffix) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def write_json_file(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """Writes ``obj`` as strict JSON (NaN -> null) atomically: a crash never leaves a torn file."""
    with atomic_write(path, fsync=True) as f:
        json.dump(strict_json(obj), f, indent=indent, allow_nan=False)
