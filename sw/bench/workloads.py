"""The benchmark's workloads: one attention head each, from the workload table
(:mod:`.kinds`), and the heads sized to a board's engine."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..spec.engine_params import EngineParams
from ..spec.pattern import HybridPattern
from ..spec.sizes import SIZES
from .kinds import HEAD_DIM, KINDS, N_DEFAULT, VALIDATION

#: engine sizes (lanes) of the figures; each workload runs on the smallest engine of that many
#: lanes that takes its pattern (:meth:`Workload.params`)
LANES_DEFAULT = (8, 64, 128, 1024)

#: the one build the validation patterns share, at each simulated lane count
VALIDATION_ENGINE = SIZES["bench_validation"]

#: the kinds ``--rtl-kinds`` accepts
KIND_NAMES = tuple(k[0] for k in KINDS) + tuple(v[0] for v in VALIDATION)


@dataclass(frozen=True)
class Workload:
    """One attention head: ``n`` tokens, window ``radius`` per side in steps of ``dilation``,
    ``globals`` global tokens (the first ones), head dim ``head_dim``."""

    name: str
    kind: str
    n: int
    radius: int
    dilation: int
    globals: int
    head_dim: int = HEAD_DIM
    left: int | None = None  # asymmetric windows (MiniLM mappings); None: radius
    right: int | None = None
    global_idx: tuple[int, ...] | None = None
    #: the engine, when several workloads share one build (the RTL validation runs, MiniLM's
    #: heads), at any lane count; None: the smallest engine that takes the pattern
    engine: EngineParams | None = None

    def pattern(self) -> HybridPattern:
        g = self.global_idx if self.global_idx is not None else tuple(range(self.globals))
        left = self.radius if self.left is None else self.left
        right = self.radius if self.right is None else self.right
        return HybridPattern(self.n, left, right, self.dilation, g)

    def params(self, lanes: int) -> EngineParams:
        """The engine of ``lanes`` lanes this workload runs on: :attr:`engine` at that lane
        count, or the smallest engine that takes the pattern; either with the global rows'
        max passes paired (EngineParams.pair_max) at every lane count, one-unit engines
        included (only the boards' leave it out, for lack of room)."""
        if self.engine is not None:
            return replace(self.engine, lanes=lanes, pair_max=True)
        p = self.pattern()
        reach = max(p.left, p.right) * p.dilation
        return EngineParams(head_dim=self.head_dim, lanes=lanes, max_radius=max(reach, 1),
                            max_globals=len(p.globals_), max_dilation=p.dilation,
                            seq_width=max(17, self.n.bit_length() + 1), pair_max=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Workload":
        """The inverse of :func:`dataclasses.asdict` (through JSON)."""
        d = dict(d)
        if d.get("global_idx") is not None:
            d["global_idx"] = tuple(d["global_idx"])
        if d.get("engine") is not None:
            d["engine"] = EngineParams(**d["engine"])
        return cls(**d)


def table_workloads(ns=N_DEFAULT) -> list[Workload]:
    """Every table kind at each n of ``ns``, then the validation patterns."""
    out = [Workload(f"{k}-n{n}", k, n, r, dil, g) for n in ns for k, r, dil, g in KINDS]
    out += [Workload(f"{k}-n{n}", "validation", n, r, dil, g, head_dim=VALIDATION_ENGINE.head_dim,
                     engine=VALIDATION_ENGINE)
            for k, n, r, dil, g in VALIDATION]
    return out


def board_heads(params: EngineParams) -> list[Workload]:
    """Heads sized to a board's engine (its head dim, n_max, max_radius, max_globals): the
    Longformer-like window at the engine's largest radius with no globals and with all of them,
    and the dilated window at the largest dilation, all at n = n_max."""
    n, r, g, dil = params.n_max, params.max_radius, params.max_globals, params.max_dilation
    out = [Workload(f"longformer-g0-n{n}", "board", n, r, 1, 0, head_dim=params.head_dim),
           Workload(f"longformer-g{g}-n{n}", "board", n, r, 1, g, head_dim=params.head_dim)]
    if dil > 1:
        out.append(Workload(f"dilated{dil}-g{g}-n{n}", "board", n, r // dil, dil, g,
                            head_dim=params.head_dim))
    return out
