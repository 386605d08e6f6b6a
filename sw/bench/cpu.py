"""CPU baselines, one thread, time per head: the bit-exact golden model and a float32 NumPy
sparse attention over the pattern's pairs only.

The timing runs in a subprocess (``python -m swattn.sw.bench``, :func:`cpu_worker`) pinned to
one BLAS thread, which must be set before NumPy is imported.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..spec.pattern import HybridPattern
from .workloads import Workload


def sparse_attention_f32(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                         pattern: HybridPattern, block: int = 256) -> np.ndarray:
    """Float32 softmax attention over the pattern's pairs only (no n^2 mask), scale 1/sqrt(d).

    The same blocking as the golden model: tokens reordered by residue class mod dilation so a
    dilated window is a band, rows in blocks of ``block`` against their band plus the global
    keys; global rows against every key.
    """
    q, k, v = (np.ascontiguousarray(a, dtype=np.float32) for a in (q, k, v))
    n, d = q.shape
    scale = np.float32(1.0 / math.sqrt(d))
    out = np.empty((n, d), dtype=np.float32)
    dil, left, right = pattern.dilation, pattern.left, pattern.right
    g = pattern.global_array
    idx = np.arange(n, dtype=np.int64)
    perm = np.lexsort((idx // dil, idx % dil))
    cls, pos = perm % dil, perm // dil
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        rows = perm[b0:b1]
        c0, c1 = max(b0 - left, 0), min(b1 + right, n)
        cols = perm[c0:c1]
        dpos = pos[c0:c1][None, :] - pos[b0:b1][:, None]
        valid = (cls[c0:c1][None, :] == cls[b0:b1][:, None]) & (dpos >= -left) & (dpos <= right)
        if g.size:
            cols = np.concatenate([cols, g])
            valid = np.concatenate([valid, ~pattern.in_window(rows[:, None], g[None, :])], axis=1)
        s = np.where(valid, (q[rows] @ k[cols].T) * scale, -np.inf)
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[rows] = p @ v[cols]
    if g.size:
        s = (q[g] @ k.T) * scale
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[g] = p @ v
    return out


def cpu_worker() -> None:
    """Times one spec read from stdin (run in a subprocess pinned to one BLAS thread)."""
    from .. import golden
    from ..spec import numerics as nx

    spec = json.loads(sys.stdin.read())
    res = []
    for w in spec["workloads"]:
        wl = Workload.from_dict(w)
        pat = wl.pattern()
        rng = np.random.default_rng(0)
        x = [rng.standard_normal((wl.n, wl.head_dim)) for _ in range(3)]
        qi, ki, vi = (nx.quantise(a)[0] for a in x)
        cfg = nx.SoftmaxConfig(mult_mant=47000, mult_shift=24, out_shift=1)
        xf = [a.astype(np.float32) for a in x]
        row = {"name": wl.name}
        for label, fn in (("golden_s", lambda: golden.attention(qi, ki, vi, pat, cfg)),
                          ("f32_s", lambda: sparse_attention_f32(*xf, pat))):
            best = float("inf")
            for _ in range(spec["repeat"]):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            row[label] = best
        print(f"  cpu {wl.name:28s} golden {row['golden_s']:8.3f} s   float32 "
              f"{row['f32_s']:8.3f} s", file=sys.stderr, flush=True)
        res.append(row)
    print(json.dumps(res))


def time_cpu(wls: list[Workload], repeat: int = 1) -> dict:
    """``{name: {"golden_s", "f32_s"}}``, one BLAS thread, best of ``repeat``, per head."""
    if not wls:
        return {}
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = "1"
    spec = {"repeat": repeat, "workloads": [asdict(w) for w in wls]}
    proc = subprocess.run([sys.executable, "-m", "swattn.sw.bench"], input=json.dumps(spec),
                          capture_output=False, stdout=subprocess.PIPE, text=True, env=env,
                          check=True)
    return {r["name"]: r for r in json.loads(proc.stdout)}


def cpu_name() -> str:
    """The CPU's model name (for the report's machine line)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
