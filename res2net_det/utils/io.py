"""Reading small files with errors that name the file."""
from __future__ import annotations

import json
import os
from typing import Any, Type


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
