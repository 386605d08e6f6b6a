"""Elaboration parameters of the engine and the sizes derived from them.

Shared by the RTL generator, the cycle model, the testbenches and the host driver, so that a
buffer depth or a lane split is computed in exactly one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import numerics as nx
from .pattern import PatternLimits


def _pow2_ceil(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


@dataclass(frozen=True)
class EngineParams:
    """Parameters fixed when the Verilog is generated.

    head_dim : 32, 64 or 128.
    lanes : int8 MAC lanes, a power of two from 4 to 4096. Half compute Q.K^T, half P.V. The
        stream engine (:mod:`swattn.hw.engine`) takes 8 or more; 4 is the serial engine's
        (:mod:`swattn.hw.serial`, two multipliers each, for 16-bit row buffers).
    max_radius : largest window reach per side in tokens (dilation * radius), >= 1.
    max_globals : largest number of global tokens, 0..64.
    max_dilation : largest dilation, >= 1.
    seq_width : sequence-length counter width; n may be 1 .. 2^seq_width - 1.
    dot_pipeline : extra register stages in the Q.K path, 0..5 (the stream engine): the first in
        the dot products' adder trees, the second between the key memories and the multipliers
        (the key rows registered beside the memories, :attr:`key_register`), the third in the
        trees again, the fourth in front of the key memories (their read addresses a cycle
        behind stage 1, :attr:`key_addr_register`). Each adds a cycle to a group's hand-over
        from stage 1 to stage 2; for FPGA builds whose multipliers and memories lie far apart
        (the ULX3S's). The fifth, on engines with bands beside the window, gives stage 1's
        switch from one band to the next a cycle of its own (:attr:`band_switch_register`): an
        idle issue cycle per band after a group's first, and no hand-over cycle.
    pv_pipeline : extra register stages in stage 2 (softmax and P.V), 0..5 (the stream engine),
        each a cycle more from a group's last issue to its accumulators, for the same FPGA
        builds: from 1, the exponential reaches the P.V multipliers through a register copy per
        8 lanes; from 2, the products reach the accumulators through a register; from 3, the
        exponential table's output is registered; from 4, the score read is registered; with 5,
        the softmax multiplier's product is two registered partial products, summed a cycle
        later.
    max_bands : bands of keys per job, the window included (1..16): the configuration's window
        (left, right, dilation) and up to ``max_bands - 1`` more bands at the window's step
        (:class:`swattn.sw.spec.keyset.EngineForm`).
    max_columns : key-only columns per job, 0..32: keys every query attends, each with no row
        of its own (their K/V rows are held beside the global rows).
    pair_max : the global rows' max passes two groups at a time (:attr:`paired_max`): None (the
        default) for engines of more than one unit, True or False to choose.
    grid : the configuration's 2D grid (``grid_width``, ``grid_radius``; engines with
        ``max_bands`` > 1): band keys are kept only within ``grid_radius`` columns of the query
        on a grid ``grid_width`` tokens wide, so k x k windows on an image are exact at its edges.
    """

    head_dim: int = 64
    lanes: int = 64
    max_radius: int = 128
    max_globals: int = 8
    max_dilation: int = 4
    seq_width: int = 17
    dot_pipeline: int = 0
    pv_pipeline: int = 0
    max_bands: int = 1
    max_columns: int = 0
    grid: bool = False
    pair_max: bool | None = None

    def __post_init__(self):
        def bad(name, allowed):
            raise ValueError(f"{name} = {getattr(self, name)!r} is out of range: allowed {allowed}")
        if self.head_dim not in nx.HEAD_DIMS:
            bad("head_dim", ", ".join(map(str, nx.HEAD_DIMS)))
        if not (4 <= self.lanes <= 4096 and self.lanes & (self.lanes - 1) == 0):
            bad("lanes", "a power of two, 4..4096 (4: the serial engine only)")
        if not 1 <= self.max_radius <= 4096:
            bad("max_radius", "1..4096")
        if not 0 <= self.max_globals <= 64:
            bad("max_globals", "0..64")
        if not 1 <= self.max_dilation <= 64:
            bad("max_dilation", "1..64")
        if not 2 <= self.seq_width <= 24:
            bad("seq_width", "2..24")
        if not 0 <= self.dot_pipeline <= 5:
            bad("dot_pipeline", "0..5")
        if not 0 <= self.pv_pipeline <= 5:
            bad("pv_pipeline", "0..5")
        if not 1 <= self.max_bands <= 16:
            bad("max_bands", "1..16 (the window is one)")
        if not 0 <= self.max_columns <= 32:
            bad("max_columns", "0..32")
        if self.pair_max not in (None, False, True):
            bad("pair_max", "None (more than one unit), False or True")
        if self.grid not in (False, True):
            bad("grid", "False or True")
        if self.grid and self.max_bands < 2:
            raise ValueError(f"grid = True with max_bands = {self.max_bands}: the grid applies to "
                             f"bands, allowed with max_bands 2..16")
        if self.serial and (self.max_columns or self.grid):
            raise ValueError(f"max_columns = {self.max_columns}, grid = {self.grid} with lanes "
                             f"4: the serial engine takes bands beside the window but no "
                             f"key-only columns and no grid: allowed max_columns 0 and grid "
                             f"False")

    #: lanes of the serial engine (two Q.K and two P.V multipliers on 16-bit buffer words)
    SERIAL_LANES = 4

    @property
    def serial(self) -> bool:
        """These parameters elaborate the serial engine (:mod:`swattn.hw.serial`), not the
        stream engine (:mod:`swattn.hw.engine`), and follow its cycle model."""
        return self.lanes == self.SERIAL_LANES

    # --- the lane split ---------------------------------------------------------------------
    @property
    def lane_width(self) -> int:
        """Lanes per query unit in each of the two arrays (Q.K and P.V)."""
        return min(self.lanes // 2, self.head_dim)

    @property
    def units(self) -> int:
        """Query units working side by side on consecutive queries of one residue class."""
        return max(1, self.lanes // (2 * self.head_dim))

    @property
    def chunks(self) -> int:
        """Cycles one key occupies a unit: head_dim / lane_width."""
        return self.head_dim // self.lane_width

    @property
    def out_lanes(self) -> int:
        """Output elements each unit normalises per cycle in the epilogue."""
        return max(1, self.lane_width // 8)

    @property
    def dot_latency(self) -> int:
        """Cycles of a unit's Q.K dot product from the key memories' read data: inputs
        registered, products, then the adder tree in one cycle up to eight lanes, in two above
        (the tree would otherwise hold five or more adder levels), and ``dot_pipeline`` more
        (up to four: the fifth is stage 1's band switch)."""
        return (3 if self.lane_width <= 8 else 4) + min(self.dot_pipeline, 4)

    @property
    def key_addr_register(self) -> bool:
        """The key memories' read addresses are registers a cycle behind stage 1's key position
        (the fourth of ``dot_pipeline``'s stages): plain copies beside the memories, with no
        issue logic in front of them."""
        return self.dot_pipeline >= 4

    @property
    def band_switch_register(self) -> bool:
        """Stage 1 loads a group's next band in a cycle of its own, after the last key of the
        band before (the fifth of ``dot_pipeline``'s stages, on engines with bands beside the
        window): the band's fields reach their registers from registers, not through the issue
        decision of the same cycle."""
        return self.dot_pipeline >= 5 and self.max_bands > 1

    @property
    def key_register(self) -> bool:
        """The key rows are registered beside the key memories before the multipliers (the
        second of ``dot_pipeline``'s stages; the others are the lanes' adder trees')."""
        return self.dot_pipeline >= 2

    # --- buffers -----------------------------------------------------------------------------
    @property
    def grid_steps(self) -> int:
        """The grid's checks: of the remainders they compute by restoring division (each
        band's first step and ``units`` mod the grid's width), the steps, one per bit of the
        largest dividend."""
        return max(self.max_radius.bit_length() + 1, self.units.bit_length())

    @property
    def n_max(self) -> int:
        return (1 << self.seq_width) - 1

    @property
    def held_rows(self) -> int:
        """K/V rows held beside the ring for the whole job: the globals' and the key-only
        columns' (at least one, so that the memories exist)."""
        return max(1, self.max_globals + self.max_columns)

    @property
    def score_depth(self) -> int:
        """Scores held per unit and bank: the longest key stream of one group (its bands'
        keys, at most ``2 max_radius + 1`` per row and ``units - 1`` more per band for the
        group's other rows, then its columns and global keys)."""
        return _pow2_ceil(2 * self.max_radius + 1 + (self.units - 1) * self.max_bands
                          + self.max_globals + self.max_columns)

    @property
    def ring_rows(self) -> int:
        """K/V rows held on chip (a ring): two groups' windows plus prefetch."""
        return _pow2_ceil(2 * self.max_radius + 3 * self.units * self.max_dilation + 8)

    @property
    def subgroup(self) -> int:
        """Keys per sub-group in the global-row passes (three must fit in the ring)."""
        return min(self.score_depth, 1 << ((self.ring_rows - 8) // 3).bit_length() - 1)

    @property
    def global_groups_max(self) -> int:
        return -(-self.max_globals // self.units)

    @property
    def paired_max(self) -> bool:
        """Global rows' max passes two groups at a time, before the main pass (engines of more
        than one unit): the Q.K lanes take one group of global queries, the P.V lanes, idle
        while no group is in stage 2, the next. One-unit engines (the boards') keep one max pass
        per group right before its P.V pass: pairing costs operand multiplexers in front of the
        P.V multipliers and a second adder tree, logic those designs cannot spare today (the
        iCE40's does not fit, the ECP5's clock is limited by routing congestion). ``pair_max``
        chooses otherwise (the serial engine has no max passes)."""
        if self.serial:
            return False
        return self.units > 1 if self.pair_max is None else self.pair_max

    def kv_passes(self, n_globals: int) -> int:
        """Passes over rows 0..n-1 in the K/V stream for ``n_globals`` global tokens: the main
        pass, then per global group a max pass and a P.V pass; with :attr:`paired_max` one max
        pass per pair of groups."""
        ggroups = -(-n_globals // self.units)
        if self.paired_max:
            return 1 + ggroups + (ggroups + 1) // 2
        return 1 + 2 * ggroups

    @property
    def pos_width(self) -> int:
        """Width of the K/V stream position: n rows per pass (:meth:`kv_passes`)."""
        return (self.n_max * self.kv_passes(self.max_globals)).bit_length()

    @property
    def acc_width(self) -> int:
        return nx.acc_width(self.n_max)

    @property
    def sum_width(self) -> int:
        return nx.sum_width(self.n_max)

    @property
    def score_width(self) -> int:
        return nx.score_width(self.head_dim)

    def limits(self) -> PatternLimits:
        return PatternLimits(max_n=self.n_max, max_radius=self.max_radius,
                             max_dilation=self.max_dilation, max_globals=self.max_globals,
                             max_bands=self.max_bands, max_columns=self.max_columns,
                             grid=self.grid)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(lane_width=self.lane_width, units=self.units, chunks=self.chunks,
                 out_lanes=self.out_lanes, score_depth=self.score_depth,
                 ring_rows=self.ring_rows, subgroup=self.subgroup, n_max=self.n_max)
        return d
