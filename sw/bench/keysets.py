"""Heads whose patterns are key sets (bands beside the window, key-only columns, the 2D grid): the
engine's cycles from the cycle model, which equals the engine's cycle counter on such patterns
(tests/test_cycle_model.py), beside SALO's model running the smallest hybrid pattern that holds
the same keys (SALO has neither bands nor key-only columns: its window spans every band, and
each column is one of its global tokens)."""

from __future__ import annotations

from .. import salo
from ..cycles import predict_cycles, useful_macs
from ..spec.engine_params import EngineParams
from ..spec.keyset import EngineForm, window_2d
from ..spec.pattern import HybridPattern

#: engine lane counts of the figures
LANES = (64, 256)


def vertical_slash(n: int = 4096) -> EngineForm:
    """A "vertical-slash" head of a long-context model: a local window of 64 keys, 7 slash lines
    (diagonals) of 8 keys each at far offsets and 16 key-only columns (8 bands, 16 columns)."""
    bands = tuple((a, 8) for a in (-1000, -700, -400, -200, 100, 300, 600))
    return EngineForm(n, 32, 31, 1, bands, tuple(range(0, n, n // 16)), ())


def vil_stage1() -> EngineForm:
    """Vision Longformer's first stage (SALO's ViL case): a 15 x 15 window on a 56 x 56 token
    grid, exact at the image's edges (14 bands beside the window and the 2D grid)."""
    return EngineForm.from_pattern(window_2d(56, 56, 15))


HEADS = {"vertical-slash-n4096": (vertical_slash, 64), "vil-56x56-k15": (vil_stage1, 64)}


def engine_for(form: EngineForm, head_dim: int, lanes: int) -> EngineParams:
    """The smallest engine of ``lanes`` lanes that takes ``form``."""
    return EngineParams(head_dim=head_dim, lanes=lanes, max_radius=max(form.reach, 1),
                        max_globals=len(form.globals_), max_dilation=form.dilation,
                        seq_width=max(17, form.n.bit_length() + 1),
                        max_bands=1 + len(form.bands), max_columns=len(form.columns),
                        grid=form.grid is not None)


def salo_pattern(form: EngineForm) -> HybridPattern:
    """The smallest window-and-globals pattern that holds ``form``'s keys."""
    lo = min([-form.left] + [a for a, _ in form.bands])
    hi = max([form.right] + [a + c - 1 for a, c in form.bands])
    return HybridPattern(form.n, -lo, hi, form.dilation,
                         tuple(sorted(set(form.globals_) | set(form.columns))))


def keyset_figures(lanes_list=LANES) -> list[dict]:
    """Per head and lane count: useful MACs, engine cycles and utilisation, SALO's."""
    rows = []
    for name, (make, head_dim) in HEADS.items():
        form = make()
        useful = useful_macs(form, head_dim)
        sp = salo_pattern(form)
        for lanes in lanes_list:
            p = engine_for(form, head_dim, lanes)
            cyc = predict_cycles(p, form)
            arr = salo.SaloArray.for_lanes(lanes)
            sc = salo.pattern_cycles(sp, head_dim, arr)
            rows.append({"head": name, "n": form.n, "head_dim": head_dim, "lanes": lanes,
                         "bands": 1 + len(form.bands), "columns": len(form.columns),
                         "grid": None if form.grid is None else list(form.grid),
                         "useful_macs": useful, "engine_cycles": cyc,
                         "engine_utilisation": useful / (lanes * cyc),
                         "salo_cycles": sc, "salo_utilisation": salo.utilisation(useful, sc, arr)})
    return rows
