"""Writing results as JSON files."""

from __future__ import annotations

import json

from .spec.errors import UserError


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path``; an unwritable path is a :class:`UserError`."""
    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
