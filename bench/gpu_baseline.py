"""GPU baseline: PyTorch FlexAttention with the hybrid pattern as a block mask, and dense SDPA.

For each workload (d = 64, bf16, batch 1, ``--heads`` heads) it times

* ``flex``: ``torch.nn.attention.flex_attention`` (compiled) with a ``BlockMask`` built from the
  same hybrid pattern the engine runs (window radius r per side, dilation, global tokens), and
* ``sdpa``: dense ``scaled_dot_product_attention`` (all n^2 pairs, the fastest dense kernel
  PyTorch picks),

each replayed from a CUDA graph (so that Python and dispatch overhead are not timed; the eager
loop time of flex is kept too), and reports useful TFLOP/s = 4 * d * pairs * heads / time, where ``pairs`` counts only the
(query, key) pairs of the pattern (2 d FLOPs for q.k and 2 d for p.v each), and that rate as a
fraction of the GPU's dense bf16 matrix-product rate measured here (8192^3 ``torch.mm``).

Correctness: at small n the flex output is compared with a masked dense reference (float32
softmax over the same boolean mask) for every pattern kind; a mismatch makes the script fail.

Runs wherever torch sees a GPU. Without one it prints why and exits 0 with no figures.
Needs torch only, so it runs on a machine where swattn is not installed: the workloads (kinds,
sequence lengths, head dim) are ``swattn bench``'s table, read from ``sw/bench/kinds.py`` of the
same checkout (a file of constants, loaded by its path), so that the figures join by (kind, n):

    python bench/gpu_baseline.py [--json FILE] [--heads 12] [--quick]

Global tokens are the first G positions (Longformer's question tokens / CLS); a global query
attends to every key and every query attends to every global key.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import platform
import sys
import time
from pathlib import Path


def _load_kinds():
    """``sw/bench/kinds.py`` of this checkout, by its path (swattn need not be installed)."""
    path = Path(__file__).resolve().parent.parent / "sw" / "bench" / "kinds.py"
    spec = importlib.util.spec_from_file_location("swattn_bench_kinds", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_kinds = _load_kinds()
D = _kinds.HEAD_DIM
N_LIST = _kinds.N_DEFAULT
KINDS = _kinds.KINDS


def mask_fn(radius, dilation, n_globals):
    """The hybrid pattern as a FlexAttention ``mask_mod(b, h, q, k)``.

    The parameters are Python ints, so that the compiled kernel specialises on them (one compile
    per pattern). 0-d tensors also work, but on an H100 with torch 2.11 the kernel then loaded
    them inside its inner loop and ran 12-17x slower (n = 16384: 1.43 against 0.12 ms, no
    globals), which would have measured the capture, not FlexAttention.
    """
    reach = radius * dilation

    def mask_mod(b, h, q_idx, kv_idx):
        diff = kv_idx - q_idx
        win = (diff <= reach) & (diff >= -reach) & (diff % dilation == 0)
        return win | (q_idx < n_globals) | (kv_idx < n_globals)

    return mask_mod


def dense_mask(n: int, radius: int, dilation: int, n_globals: int, device="cpu"):
    import torch
    idx = torch.arange(n, device=device)
    return mask_fn(radius, dilation, n_globals)(0, 0, idx[:, None], idx[None, :])


def count_pairs(n: int, radius: int, dilation: int, n_globals: int) -> int:
    """Allowed (query, key) pairs, counted without the n^2 mask (vectorised over queries)."""
    import torch
    g = min(n_globals, n)
    q = torch.arange(g, n, dtype=torch.int64)[:, None]  # non-global rows
    lo = q - torch.clamp(q // dilation, max=radius) * dilation
    hi = q + torch.clamp((n - 1 - q) // dilation, max=radius) * dilation
    win = (hi - lo) // dilation + 1
    kg = torch.arange(g, dtype=torch.int64)[None, :]
    in_win = (kg >= lo) & (kg <= hi) & ((kg - q) % dilation == 0)
    return int(g * n + win.sum() + (g - in_win.sum(dim=1)).sum())


def _sync_time(fn, min_time: float = 0.25, reps: int = 5) -> float:
    """Median seconds per call, each sample a loop long enough to dwarf launch overhead."""
    import torch
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = max(time.perf_counter() - t0, 1e-6)
    loops = max(1, int(min_time / once / reps))
    samples = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(loops):
            fn()
        stop.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(stop) / 1e3 / loops)
    samples.sort()
    return samples[len(samples) // 2]


def _graph_time(fn) -> tuple[float, str]:
    """Seconds per call of ``fn`` replayed from a CUDA graph (no Python or dispatch overhead
    between kernels), or timed eagerly if capture fails; returns (seconds, method)."""
    import torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # compiles and autotunes outside the capture
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
    except Exception as exc:  # noqa: BLE001 - any capture failure falls back to eager timing
        print(f"  (CUDA graph capture failed: {type(exc).__name__}; timing eagerly)")
        return _sync_time(fn), "eager"
    return _sync_time(graph.replay), "cuda-graph"


def matmul_rate(size: int = 8192) -> float:
    """Measured dense bf16 matrix-product rate in FLOP/s (random data)."""
    import torch
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    t = _sync_time(lambda: torch.mm(a, b), min_time=0.5)
    return 2.0 * size ** 3 / t


def check_correctness(flex, create_block_mask, device, n: int = 1024, heads: int = 2) -> list:
    """Flex output against a masked dense float32 reference for every pattern kind."""
    import torch
    torch.manual_seed(0)
    out = []
    for name, r, dil, g in KINDS:
        # a shorter window at small n so the mask is not dense
        r_small = min(r, n // 8)
        q, k, v = (torch.randn(1, heads, n, D, device=device, dtype=torch.bfloat16)
                   for _ in range(3))
        bm = create_block_mask(mask_fn(r_small, dil, g), None, None, n, n, device=device)
        got = flex(q, k, v, block_mask=bm).float()
        m = dense_mask(n, r_small, dil, g, device)
        z = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(D)
        ref = torch.softmax(z.masked_fill(~m, float("-inf")), dim=-1) @ v.float()
        err = (got - ref).abs().max().item()
        ok = err < 2e-2  # bf16 output of unit-scale values: 8 mantissa bits
        out.append(dict(kind=name, n=n, radius=r_small, dilation=dil, globals=g,
                        max_abs_err=err, ok=ok))
        print(f"  check {name:15s} n={n} r={r_small} dil={dil} G={g}: max |flex - ref| = "
              f"{err:.2e} {'ok' if ok else 'FAIL'}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--heads", type=int, default=12, help="heads per call (batch 1)")
    ap.add_argument("--quick", action="store_true", help="n = 1024 only (a smoke run)")
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("gpu_baseline: torch is not installed: no GPU figures")
        return 0
    if not torch.cuda.is_available():
        print(f"gpu_baseline: torch {torch.__version__} sees no GPU: no GPU figures")
        return 0
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    import torch.nn.functional as F

    torch._dynamo.config.cache_size_limit = 64
    # Static shapes: with automatic dynamic shapes, Inductor 2.11 failed to lower a mask whose
    # int parameters had become symbolic after the second pattern. Static, it compiles once per
    # (n, pattern), a few seconds each.
    flex = torch.compile(flex_attention, dynamic=False)
    dev = torch.cuda.get_device_properties(0)
    res = {
        "device": torch.cuda.get_device_name(0),
        "sms": dev.multi_processor_count,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "head_dim": D, "dtype": "bfloat16", "batch": 1, "heads": args.heads,
        "globals_at": "first G tokens",
        "flops_per_pair": 4 * D,
    }
    print(f"gpu_baseline: {res['device']}, torch {res['torch']} (CUDA {res['cuda']})", flush=True)
    peak = matmul_rate()
    res["matmul_bf16_tflops"] = peak / 1e12
    print(f"  dense bf16 mm 8192^3: {peak / 1e12:.0f} TFLOP/s (measured)", flush=True)

    res["checks"] = check_correctness(flex, create_block_mask, "cuda")
    if not all(c["ok"] for c in res["checks"]):
        print("gpu_baseline: flex attention disagrees with the masked reference", file=sys.stderr)
        if args.json:
            json.dump(res, open(args.json, "w"), indent=2)
        return 1

    rows = []
    sdpa_done = {}
    for n in (N_LIST[:1] if args.quick else N_LIST):
        q, k, v = (torch.randn(1, args.heads, n, D, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        if n not in sdpa_done:
            sdpa_done[n] = _graph_time(lambda: F.scaled_dot_product_attention(q, k, v))
        t_sdpa, sdpa_how = sdpa_done[n]
        for name, r, dil, g in KINDS:
            t0 = time.perf_counter()
            bm = create_block_mask(mask_fn(r, dil, g), None, None, n, n, device="cuda")
            t_flex, flex_how = _graph_time(lambda: flex(q, k, v, block_mask=bm))
            t_flex_eager = _sync_time(lambda: flex(q, k, v, block_mask=bm))
            wall = time.perf_counter() - t0
            pairs = count_pairs(n, r, dil, g)
            useful = 4.0 * D * pairs * args.heads
            row = dict(kind=name, n=n, radius=r, dilation=dil, globals=g, pairs=pairs,
                       block_sparsity=float(bm.sparsity()) / 100.0,
                       flex_s=t_flex, flex_timing=flex_how, flex_s_eager_loop=t_flex_eager,
                       flex_s_per_head=t_flex / args.heads,
                       flex_useful_tflops=useful / t_flex / 1e12,
                       flex_fraction_of_mm=useful / t_flex / peak,
                       sdpa_s=t_sdpa, sdpa_timing=sdpa_how, sdpa_s_per_head=t_sdpa / args.heads,
                       sdpa_dense_tflops=4.0 * D * n * n * args.heads / t_sdpa / 1e12,
                       sdpa_useful_tflops=useful / t_sdpa / 1e12,
                       sdpa_fraction_of_mm=useful / t_sdpa / peak)
            rows.append(row)
            print(f"  {name:15s} n={n:6d} pairs={pairs:>11,d}  flex {t_flex * 1e3:8.3f} ms "
                  f"{row['flex_useful_tflops']:7.1f} TFLOP/s useful "
                  f"({100 * row['flex_fraction_of_mm']:5.1f}% of mm)  |  sdpa dense "
                  f"{t_sdpa * 1e3:8.3f} ms {row['sdpa_useful_tflops']:7.1f} useful "
                  f"({100 * row['sdpa_fraction_of_mm']:5.1f}%)  [{flex_how}; eager loop "
                  f"{t_flex_eager * 1e3:.3f} ms; {wall:.0f} s]", flush=True)
            if args.json:  # keep what is done so far if the run is cut off
                json.dump(dict(res, rows=rows), open(args.json, "w"), indent=2)
        del q, k, v
        torch.cuda.empty_cache()
    res["rows"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
