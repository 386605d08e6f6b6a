"""The GPU figures kept from ``bench/gpu_baseline.py`` (``docs/gpu_baseline.json``)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPU_JSON = REPO / "docs" / "gpu_baseline.json"


def read_gpu(path: Path) -> dict | None:
    """The kept figures, with ``by_kind_n``: each row by its (kind, n); None without a file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    data["by_kind_n"] = {(r["kind"], r["n"]): r for r in data.get("rows", [])}
    return data
