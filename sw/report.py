"""Writing results as JSON files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .spec.errors import UserError


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path``; an unwritable path is a :class:`UserError`."""
    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def checkout_commit() -> str:
    """The commit of the checkout swattn runs from (with "+dirty" if it has uncommitted changes
    to tracked files), or "unknown" outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        git = ["git", "-C", str(here)]
        head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
