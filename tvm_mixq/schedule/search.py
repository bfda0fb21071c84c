"""The search: patch stage, grid and channel splits for an SRAM limit, or the smallest peak.

For every candidate (stage end, grid) the schedule is built and its buffers placed
(:mod:`tvm_mixq.schedule.builder`, :mod:`tvm_mixq.schedule.memory`); the arena size is the peak.

* With ``mixq.sram_limit_kb``: among the candidates whose peak fits the limit, the one with the
  fewest MACs (recomputation included), then the smaller peak. When none fits,
  :class:`tvm_mixq.errors.MixqError` names the smallest peak that can be reached.
* Without a limit: the smallest peak among candidates with at most ``mixq.max_extra_macs``
  extra work, then the least work.

Work is MACs (halo recomputation included) plus the fixed cost of every extra kernel call a patch
loop makes: a call prepares per-channel requantization constants (and, for sub-byte kernels,
thresholds and re-spaced weights) before its first MAC, which :data:`CALL_MACS_PER_CHANNEL` prices
in MACs per output channel. With ``op_weights`` (the deploy flow passes the measured kernels'
instructions per MAC of each op relative to the model's mean, :func:`tvm_mixq.quant.cost.mac_weights`)
a recomputed MAC of an op costs its weight: VWW-96's first conv (3 input channels) runs at about
3x the model's instructions per MAC, so its halo is dearer than a pointwise layer's. Without the
call cost a stage of many small patches looked free (a later stage of
a depthwise + pointwise pair recomputes nothing) while it ran two to three times the instructions
of its ops on the emulated core. So without a limit VWW-96's streamed plan takes a 5x5 grid
(13,984 B); the 3x3 grid of the memory targets (18,432 B, 14.6% recomputation plus about 3% of
calls) is what ``mixq.sram_limit_kb=18`` gets.

Channel splits never add MACs. In ``auto`` they are chosen greedily: while the step with the most
live bytes lies in a chain that can run in slices, try split factors for that chain and keep the best, until
the peak stops falling. Splits are chosen for the few stage ends that are best without splits
(on their finest grid within the budget) and then kept for all grids of that stage end.

Later patch stages (:attr:`tvm_mixq.plan.Plan.later_stages`, :meth:`_Planner.relieve`): deeper
blocks whose whole tensors do not fit run patch by patch from a whole intermediate tensor. For a
target of live bytes, :meth:`_Planner._segments` finds the cheapest cover of the graph, in order,
by segments that each hold at most the target: a first stage (or none), plain ops, channel-split
chains and later stages, every stage measured on its own (with the tensors live across it) on a
stage holding one patch per tile shape, grids cheapest first (square and row-heavy). The target
is bisected from the whole input (the floor with the input counted) to the best peak so far;
covers are placed (with and without their output-over-input overlaps) and the best has its grids
re-tuned against the placed arena (:meth:`_Planner.polish`). A forced stage (``patch_grid`` or
``patch_stage_end`` set) is the whole patch decision: no later stages then.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import MixqError
from ..graph import Graph
from ..plan import MODE_INPUT_COUNTED, MODE_STREAMED_INPUT, MemoryPlan, PatchStage, Plan, PlanOptions, TensorPrecision
from .builder import build_schedule, overlap_delta
from .channel_split import SplitChain, disjoint, find_split_chains
from .memory import align_up, live_per_step, make_memory_plan, place_greedy, timeline
from .opinfo import ScratchFn, default_scratch_bytes, graph_macs
from .options import OptionsLike, plan_options
from .patches import (StageCut, build_patch_stage, later_stage_cuts, parse_grid, raster_extents, stage_cuts,
                      stage_macs)

log = logging.getLogger(__name__)

Splits = tuple[tuple[SplitChain, int], ...]  # chains and their factors

#: Largest square grid tried per axis in ``auto``.
MAX_GRID = 16
#: Random placement orders tried per candidate inside the search (the final plan tries more).
SEARCH_RESTARTS = 8
#: Smallest relative peak reduction for which a patch stage is chosen over none (no limit set).
MIN_STAGE_GAIN = 0.01
#: Stage ends (the best without splits) for which channel splits are searched.
SPLIT_CUTS = 6
SPLIT_CUTS_LATER = 2
#: Under an SRAM limit, the search widens the recomputation budget only when the usual budget's
#: smallest peak is within this factor of the limit.
WIDEN_WITHIN = 1.5
#: Split factors tried in ``auto``.
SPLIT_FACTORS = (2, 3, 4, 6, 8, 12, 16, 24, 32)


#: Fixed cost of one kernel call, in MACs per output channel of the op. Measured on the emulated
#: Cortex-M7 (KWS, later stage of 45 patches on a 64-channel depthwise + pointwise pair): about 200
#: instructions per channel and call above the whole-layer call, about 130 MACs at the int8 kernels'
#: rate.
CALL_MACS_PER_CHANNEL = 128
#: Ops whose calls :data:`CALL_MACS_PER_CHANNEL` prices.
WORK_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

#: Later patch stages at most (deeper blocks run patch by patch, :attr:`Plan.later_stages`).
MAX_LATER_STAGES = 3
#: Ops in a later stage at most.
LATER_STAGE_OPS = 8
#: Most grid rows of a row-heavy rectangular grid.
MAX_RECT_ROWS = 40
#: Grids evaluated per stage and round when re-tuning the grids of a plan with later stages.
POLISH_GRIDS = 8
#: Covers of the segment search whose grids are re-tuned (the best placed ones).
POLISH_COVERS = 2
#: Bisection steps on the live-bytes target of the segment search, and the relative width at
#: which it stops.
BISECT_STEPS = 10
BISECT_TOLERANCE = 0.01

Later = tuple[tuple[StageCut, tuple[int, int]], ...]  # later stages and their grids


@dataclass
class _Candidate:
    cut: Optional[StageCut]
    grid: Optional[tuple[int, int]]
    splits: tuple[tuple[SplitChain, int], ...]
    peak: int
    macs: int  # work: MACs with recomputation plus the extra calls' cost (module docstring)
    later: Later = ()
    overlap: frozenset = frozenset()  # split tensors of later stages whose output overlaps their input


class _Planner:
    def __init__(self, graph: Graph, opts: PlanOptions, precision: dict[int, TensorPrecision],
                 scratch_fn: ScratchFn, op_weights: Optional[dict[int, float]] = None) -> None:
        self.g = graph
        self.op_weights = op_weights
        self.opts = opts
        self.precision = precision
        self.scratch_fn = scratch_fn
        self.base_macs = graph_macs(graph)
        self.evaluated: list[_Candidate] = []
        self._stages: dict = {}
        self._cut_splits: dict[int, tuple] = {}
        self._memo: dict[tuple, _Candidate] = {}
        self._stage_macs: dict[tuple, int] = {}
        self._phase: dict[tuple, tuple[list, list[int], int]] = {}
        self._later_cuts: Optional[list[StageCut]] = None
        self._build_cache: dict = {}
        self._axis_memo: dict = {}
        self._stage_phase: dict[tuple, int] = {}

    def call_work(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]]) -> int:
        """Work of the extra kernel calls of a stage on a grid (every op called once per patch
        instead of once), in MACs (:data:`CALL_MACS_PER_CHANNEL`)."""
        if cut is None or grid is None:
            return 0
        channels = sum(self.g.tensors[self.g.ops[o].outputs[0]].shape[-1] for o in cut.ops
                       if self.g.ops[o].kind in WORK_OPS)
        return (grid[0] * grid[1] - 1) * channels * CALL_MACS_PER_CHANNEL

    def work(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]], later: Later = ()) -> float:
        """The model's MACs plus every stage's recomputation (weighted) and extra calls."""
        stages = ([(cut, grid)] if cut is not None and grid is not None else []) + list(later)
        return self.base_macs + sum(self.stage_extra_macs(c, gr) for c, gr in stages)

    def bits_of(self, t: int) -> int:
        p = self.precision.get(t)
        return p.bits if p is not None else self.g.tensors[t].bits

    def mode(self, cut: Optional[StageCut]) -> str:
        return MODE_STREAMED_INPUT if self.opts.stream_input and cut is not None else MODE_INPUT_COUNTED

    def stage(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]], loop: str = "patch"):
        if cut is None or grid is None:
            return None
        key = (cut.key, grid, loop)
        if key not in self._stages:
            self._stages[key] = build_patch_stage(self.g, cut, grid, loop, memo=self._axis_memo)
        return self._stages[key]

    def later_stages(self, later: Later) -> list:
        ordered = sorted(later, key=lambda e: e[0].start)
        return [self.stage(c, gr, f"patch:{k + 1}") for k, (c, gr) in enumerate(ordered)]

    def schedule(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]], splits: Splits, later: Later = (),
                 overlap: frozenset = frozenset()):
        stage = self.stage(cut, grid)
        chans = [c.with_factor(self.g, f) for c, f in splits]
        mode = self.mode(cut if stage is not None else None)
        stages = self.later_stages(later)
        steps, buffers = build_schedule(self.g, stage, chans, mode, self.bits_of, self.scratch_fn, self.opts.alignment,
                                        self.opts.in_place_conv, self.opts.stage_overlap, stages, overlap,
                                        cache=self._build_cache)
        macs = self.base_macs + (stage.recompute_macs if stage else 0) + sum(st.recompute_macs for st in stages)
        return stage, stages, chans, mode, steps, buffers, macs

    def build(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]],
              splits: tuple[tuple[SplitChain, int], ...], final: bool = True, later: Later = (),
              overlap: frozenset = frozenset()):
        """Schedule and arena of a candidate. ``final=False`` (inside the search): fewer
        random placement orders and no timeline, to keep the search fast."""
        stage, stages, chans, mode, steps, buffers, macs = self.schedule(cut, grid, splits, later, overlap)
        if final:
            memory = make_memory_plan(buffers, steps, mode, self.opts.alignment)
        else:
            memory = MemoryPlan(mode, self.opts.alignment, buffers,
                                place_greedy(buffers, self.opts.alignment, restarts=SEARCH_RESTARTS), [])
        return stage, chans, steps, memory, macs

    def evaluate(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]],
                 splits: tuple[tuple[SplitChain, int], ...], later: Later = (),
                 overlap: frozenset = frozenset()) -> _Candidate:
        overlap = frozenset(t for t in overlap if any(c.split_tensor == t for c, _ in later))
        key = (cut.end if cut else None, grid, tuple((c.producer, f) for c, f in splits),
               tuple(sorted((c.key, gr) for c, gr in later)), overlap)
        if key in self._memo:
            return self._memo[key]
        _, _, _, memory, _ = self.build(cut, grid, splits, final=False, later=later, overlap=overlap)
        work = self.work(cut, grid, later)
        cand = _Candidate(cut, grid, splits, memory.peak, work, tuple(sorted(later, key=lambda e: e[0].start)),
                          overlap)
        self.evaluated.append(cand)
        self._memo[key] = cand
        return cand

    def phase(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]], splits: Splits,
              later: Later = (), overlap: frozenset = frozenset()) -> tuple[list, list[int], int]:
        """Steps, live bytes per step (no placement: a lower bound of the arena at each step) and
        MACs of a candidate; memoised."""
        key = (cut.end if cut else None, grid, tuple((c.producer, f) for c, f in splits),
               tuple(sorted((c.key, gr) for c, gr in later)), overlap)
        if key not in self._phase:
            _, _, _, _, steps, buffers, _ = self.schedule(cut, grid, splits, later, overlap)
            work = self.work(cut, grid, later)
            self._phase[key] = (steps, live_per_step(buffers, len(steps)), work)
        return self._phase[key]

    # -- channel splits -------------------------------------------------------------------
    def chains(self, cut: Optional[StageCut], later: Later = ()) -> list[SplitChain]:
        if self.opts.channel_split == "off":
            return []
        return find_split_chains(self.g, (cut.ops if cut else ()) + tuple(o for c, _ in later for o in c.ops))

    def forced_splits(self, cut: Optional[StageCut]) -> tuple[tuple[SplitChain, int], ...]:
        factor = int(self.opts.channel_split)
        chosen: list[SplitChain] = []
        # longest chains first: expand -> depthwise -> project before a bare conv -> conv pair
        for c in sorted(self.chains(cut), key=lambda c: (-len(c.ops), c.producer)):
            if disjoint([c], chosen):
                chosen.append(c)
        chosen.sort(key=lambda c: c.producer)
        return tuple((c, min(factor, c.channels)) for c in chosen)

    def initial_splits(self, cut: Optional[StageCut]) -> tuple[tuple[SplitChain, int], ...]:
        """Splits every candidate starts with: the forced ones, or none (auto searches later)."""
        return self.forced_splits(cut) if self.opts.channel_split not in ("auto", "off") else ()

    def auto_splits(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]], later: Later = (),
                    start: Splits = (), overlap: frozenset = frozenset()) -> Splits:
        chains = self.chains(cut, later)
        chosen: dict[SplitChain, int] = dict(start)
        if not chains:
            return ()
        _, _, steps, memory, _ = self.build(cut, grid, tuple(chosen.items()), final=False, later=later,
                                            overlap=overlap)
        best = memory.peak
        for _ in range(len(chains) + 1):
            # the step holding the most live bytes is what a split must relieve
            busiest = max(timeline(memory.buffers, steps), key=lambda e: (e.live_bytes, e.high_water))
            peak_op = steps[busiest.step].op
            near = [c for c in chains if peak_op in c.ops and (c in chosen or disjoint([c], chosen))]
            improved = None
            for c in near:
                chain_best, worse = None, 0
                for f in SPLIT_FACTORS:  # the peak falls with the factor, then the accumulator rules
                    if f > c.channels or f == chosen.get(c):
                        continue
                    trial = dict(chosen)
                    trial[c] = f
                    _, _, st, mem, _ = self.build(cut, grid, tuple(trial.items()), final=False, later=later,
                                                  overlap=overlap)
                    if mem.peak < best:
                        best, improved, steps, memory = mem.peak, trial, st, mem
                    if chain_best is None or mem.peak < chain_best:
                        chain_best, worse = mem.peak, 0
                    else:
                        worse += 1
                        if worse >= 2:
                            break
            if improved is None:
                break
            chosen = improved
        return tuple(chosen.items())

    def splits_for(self, cut: Optional[StageCut], grid: Optional[tuple[int, int]]) -> Splits:
        if self.opts.channel_split == "off":
            return ()
        if self.opts.channel_split == "auto":
            return self.auto_splits(cut, grid)
        return self.forced_splits(cut)


    # -- later stages ---------------------------------------------------------------------
    def later_cuts(self) -> list[StageCut]:
        if self._later_cuts is None:
            self._later_cuts = later_stage_cuts(self.g, -1, LATER_STAGE_OPS)
        return self._later_cuts

    def _phase_of(self, cut: StageCut, grid: tuple[int, int], first: bool, overlap: bool) -> int:
        """Bytes live while a stage's loop runs, measured with that stage alone (its input and
        output are the only tensors crossing it, so nothing else changes what is live then), on
        a stage holding one patch per distinct tile shape; the overlap of output and input is
        computed from every patch."""
        loop = "patch" if first else "patch:1"
        stage = build_patch_stage(self.g, cut, grid, loop, representative=True, memo=self._axis_memo)
        key = ("overlap", id(stage), self.opts.alignment)
        extents = raster_extents(self.g, cut, grid, self._axis_memo)
        self._build_cache[key] = align_up(overlap_delta(self.g, stage, self.bits_of, extents), self.opts.alignment)
        mode = self.mode(cut if first else None)
        steps, buffers = build_schedule(self.g, stage if first else None, [], mode, self.bits_of, self.scratch_fn,
                                        self.opts.alignment, self.opts.in_place_conv, self.opts.stage_overlap,
                                        [] if first else [stage], [cut.split_tensor] if overlap else [],
                                        cache=self._build_cache, only_ops=set(cut.ops))
        for k in [k for k in self._build_cache if isinstance(k, tuple) and len(k) > 1 and k[1] == id(stage)]:
            del self._build_cache[k]  # the representative stage dies here: its id may be reused
        region = set(cut.ops)
        live = live_per_step(buffers, len(steps))
        return max((v for st, v in zip(steps, live) if st.op in region), default=0) + self._across(cut)

    def _across(self, cut: StageCut) -> int:
        """Bytes of the tensors live across a stage (made before it, read after it: a skip
        connection over it), which a stage measured on its own does not see."""
        key = ("across", cut.key)
        if key not in self._stage_phase:
            consumers = self.g.consumers()
            made_before = [t for op in self.g.ops[:cut.start] for t in op.outputs] + list(self.g.inputs)
            total = 0
            for t in set(made_before):
                if t == cut.input_tensor:
                    continue
                if t in self.g.outputs or any(u.index > cut.end for u in consumers.get(t, [])):
                    total += self._bytes(t)
            self._stage_phase[key] = total
        return self._stage_phase[key]

    def stage_phase(self, cut: StageCut, grid: tuple[int, int], first: bool) -> int:
        """Bytes live while a stage's loop runs (see :meth:`_phase_of`); memoised."""
        key = (cut.key, grid, first)
        if key not in self._stage_phase:
            self._stage_phase[key] = self._phase_of(cut, grid, first, False)
        return self._stage_phase[key]

    def polish(self, cand: _Candidate, cap: float, only: Optional[int] = None, rounds: int = 2) -> _Candidate:
        """Re-tune the grid of each stage of a plan with later stages against the placed arena
        (which also pays for overlaps chained from one stage to the next), a few grids per stage:
        those within the MAC cap whose own loop could stay under the current peak, cheapest first.
        ``only``: just that later stage (index in ``cand.later``)."""
        if not cand.later:
            return cand
        for _ in range(rounds):
            improved = False
            for slot in ([*range(len(cand.later)), -1] if only is None else (only,)):  # later ones free MACs first
                cut, grid = (cand.cut, cand.grid) if slot < 0 else cand.later[slot]
                if cut is None or grid is None:
                    continue
                spent = cand.macs - self.base_macs - self.stage_extra_macs(cut, grid)
                tried = 0
                for gr in self.wide_grids(cut):
                    if tried >= POLISH_GRIDS or self.base_macs + spent + self.stage_extra_macs(cut, gr) > cap:
                        break
                    if gr == grid or self.stage_phase(cut, gr, slot < 0) >= cand.peak:
                        continue
                    tried += 1
                    if slot < 0:
                        trial = self.evaluate(cut, gr, cand.splits, cand.later, cand.overlap)
                    else:
                        later = cand.later[:slot] + ((cut, gr),) + cand.later[slot + 1:]
                        trial = self.evaluate(cand.cut, cand.grid, cand.splits, later, cand.overlap)
                    if (trial.peak, trial.macs) < (cand.peak, cand.macs):
                        cand, improved = trial, True
                        grid = gr
            if not improved:
                break
        return cand

    def stage_phase_ov(self, cut: StageCut, grid: tuple[int, int]) -> int:
        """:meth:`stage_phase` of a later stage whose output overlaps its input."""
        key = (cut.key, grid, "overlap")
        if key not in self._stage_phase:
            self._stage_phase[key] = self._phase_of(cut, grid, False, True)
        return self._stage_phase[key]

    def later_search_on(self) -> bool:
        """Whether :meth:`relieve` will look for later patch stages."""
        return self.opts.patch_grid == "auto" and self.opts.patch_stage_end == "auto" and self.opts.later_stages \
            and bool(self.later_cuts())

    def input_floor(self) -> int:
        """Bytes every plan holds at its first step: the whole input, unless it is streamed."""
        if self.opts.stream_input or len(self.g.inputs) != 1:
            return 0
        return self._bytes(self.g.inputs[0])

    def _bytes(self, t: int) -> int:
        return self.bits_of(t) * self.g.tensors[t].size // 8

    def delta(self, cut: StageCut, grid: tuple[int, int]) -> int:
        """Bytes the stage output starts before its input when the two overlap (aligned)."""
        key = ("delta", cut.key, grid)
        if key not in self._stage_phase:
            shim = PatchStage(list(cut.ops), cut.input_tensor, cut.split_tensor, grid, [], 0, 0)
            d = overlap_delta(self.g, shim, self.bits_of, raster_extents(self.g, cut, grid, self._axis_memo))
            self._stage_phase[key] = align_up(max(d, 0), self.opts.alignment)
        return self._stage_phase[key]

    def _cheapest_grid(self, cut: StageCut, first: bool, target: int, budget: float,
                       max_delta: Optional[int] = None) -> Optional[tuple[tuple[int, int], int, bool]]:
        """(grid, recomputation, overlap) of the cheapest grid of ``cut`` whose loop holds at
        most ``target`` live bytes, recomputation within ``budget``; ``None`` if there is none.
        Grids go cheapest first; the scan stops after four grids without a smaller phase.
        ``max_delta``: an overlapping output may start at most that many bytes before its input
        (it is chained to the overlap of the stage before, whose loop pays for it)."""
        out_bytes = self.bits_of(cut.split_tensor) * self.g.tensors[cut.split_tensor].size // 8
        in_bytes = self.bits_of(cut.input_tensor) * self.g.tensors[cut.input_tensor].size // 8
        if not (first and self.opts.stream_input) and in_bytes > target:
            return None  # the whole input alone is over the target
        best_phase, stale = None, 0
        for gr in self.wide_grids(cut):
            extra = self.stage_extra_macs(cut, gr)
            if extra > budget:
                break
            ph = self.stage_phase(cut, gr, first)
            if ph <= target:
                return gr, extra, False
            if not first and self.opts.stage_overlap and ph - out_bytes <= target \
                    and (max_delta is None or self.delta(cut, gr) <= max_delta):  # overlap saves < out_bytes
                pho = self.stage_phase_ov(cut, gr)
                if pho <= target:
                    return gr, extra, True
                ph = min(ph, pho)
            if best_phase is None or ph < best_phase:
                best_phase, stale = ph, 0
            else:
                stale += 1
                if stale >= 4:
                    break
        return None

    def _chain_phase(self, chain: SplitChain, factor: int) -> int:
        key = ("chain", chain.producer, factor)
        if key not in self._stage_phase:
            steps, live, _ = self.phase(None, None, ((chain, factor),))
            region = set(chain.ops)
            self._stage_phase[key] = max((v for st, v in zip(steps, live) if st.op in region), default=0)
        return self._stage_phase[key]

    def _segments(self, target: int, budget: float):
        """Cheapest cover of the ops, in graph order, by segments each holding at most ``target``
        live bytes: a first patch stage (or none), then plain ops, channel-split chains
        (no recomputation) and later patch stages. Returns (recomputation, first (cut, grid) or
        None, later stages, overlaps, splits), or ``None`` when no cover fits."""
        n = len(self.g.ops)
        steps, live, _ = self.phase(None, None, ())
        plain = [0] * n
        for st, v in zip(steps, live):
            plain[st.op] = max(plain[st.op], v)
        inf = float("inf")
        dp: list[float] = [inf] * (n + 1)
        back: list = [None] * (n + 1)
        dp[0] = 0
        if self.opts.patch_stage_end == "auto" and self.opts.patch_grid == "auto":
            for fc in self.cuts():
                got = self._cheapest_grid(fc, True, target, budget)
                if got is not None and got[1] < dp[fc.end + 1]:
                    dp[fc.end + 1] = got[1]
                    back[fc.end + 1] = ("first", fc, got[0], 0)
        later_at: dict[int, list[StageCut]] = {}
        for lc in self.later_cuts():
            later_at.setdefault(lc.start, []).append(lc)
        chains_at: dict[int, list[SplitChain]] = {}
        for c in self.chains(None):
            if c.ops == tuple(range(c.producer, c.producer + len(c.ops))):
                chains_at.setdefault(c.producer, []).append(c)
        for pos in range(n):
            if dp[pos] == inf:
                continue
            if plain[pos] <= target and dp[pos] < dp[pos + 1]:
                dp[pos + 1], back[pos + 1] = dp[pos], ("plain", pos)
            for c in chains_at.get(pos, []):
                end = pos + len(c.ops)
                if dp[pos] >= dp[end] or max(plain[o] for o in c.ops) <= target:
                    continue
                for f in SPLIT_FACTORS:
                    if f <= c.channels and self._chain_phase(c, f) <= target:
                        dp[end], back[end] = dp[pos], ("split", pos, c, f)
                        break
            for lc in later_at.get(pos, []):
                end = lc.end + 1
                if max(plain[o] for o in lc.ops) <= target:
                    continue  # nothing to relieve: plain ops do it without recomputation
                # an overlap chained to the previous stage's overlap widens that stage's loop:
                # input + its delta + this delta must stay within the target
                prev = back[pos]
                max_delta = None
                if prev is not None and prev[0] == "first" and self.opts.stage_overlap \
                        and not self.opts.stream_input:
                    max_delta = target - self._bytes(prev[1].input_tensor) - self.delta(prev[1], prev[2])
                elif prev is not None and prev[0] == "later" and prev[4]:
                    max_delta = target - self._bytes(prev[2].input_tensor) - self.delta(prev[2], prev[3])
                got = self._cheapest_grid(lc, False, target, budget - dp[pos], max_delta)
                if got is not None and dp[pos] + got[1] < dp[end]:
                    dp[end], back[end] = dp[pos] + got[1], ("later", pos, lc, got[0], got[2])
        if dp[n] == inf:
            return None
        first, later, overlap, splits = None, [], set(), []
        pos = n
        while pos > 0:
            b = back[pos]
            if b[0] == "first":
                first = (b[1], b[2])
                pos = 0
            elif b[0] == "plain":
                pos = b[1]
            elif b[0] == "split":
                splits.append((b[2], b[3]))
                pos = b[1]
            else:
                later.append((b[2], b[3]))
                if b[4]:
                    overlap.add(b[2].split_tensor)
                pos = b[1]
        return dp[n], first, tuple(reversed(later)), frozenset(overlap), tuple(reversed(splits))

    def relieve(self, best: _Candidate, cap: float, limit: Optional[int] = None) -> _Candidate:
        """Patch stages deeper in the graph (:attr:`Plan.later_stages`) where whole tensors do not
        fit: for a target of live bytes, the cheapest cover of the graph by segments that hold
        at most that many (:meth:`_segments`, each segment measured on its own); the target
        is bisected between the whole input (the floor with the input counted) and ``best``'s
        peak, every cover found is placed, and the best placed arenas (their grids re-tuned,
        :meth:`polish`) are compared with ``best``. With ``limit``, the cheapest cover under the
        limit itself is tried first."""
        if not self.later_search_on():
            return best  # a forced patch stage is the whole patch decision
        budget = cap - self.base_macs
        lo = self.input_floor()  # with the input counted, the whole input is live before anything runs
        hi = best.peak - 1
        found: list[_Candidate] = []
        if limit is not None and lo <= limit < hi:  # the cheapest cover under the limit itself first
            cover = self._segments(limit, budget)
            if cover is not None:
                cand = self._place_cover(cover)
                if cand.peak <= limit:
                    return cand
                found.append(cand)
        for _ in range(BISECT_STEPS):
            if lo > hi or (found and hi - lo < BISECT_TOLERANCE * hi):
                break
            mid = (lo + hi) // 2
            cover = self._segments(mid, budget)
            if cover is None:
                lo = mid + 1
                continue
            cand = self._place_cover(cover)
            found.append(cand)
            if limit is not None and cand.peak <= limit:
                break
            hi = mid - 1
        if not found:
            return best
        found.sort(key=lambda c: (c.peak, c.macs))
        cand = min((self.polish(c, cap) for c in found[:POLISH_COVERS]), key=lambda c: (c.peak, c.macs))
        if cand.peak < best.peak and self.opts.channel_split == "auto":
            sp = self.auto_splits(cand.cut, cand.grid, cand.later, cand.splits, cand.overlap)
            if sp != cand.splits:
                c2 = self.evaluate(cand.cut, cand.grid, sp, cand.later, cand.overlap)
                cand = c2 if c2.peak < cand.peak else cand
        return cand if cand.peak < best.peak else best

    def _place_cover(self, cover) -> _Candidate:
        """The placed arena of a cover from :meth:`_segments`: with the overlaps it assumed, and
        without them, overlaps then added one by one where they help (an overlap pins its two
        buffers together, which the placer cannot always afford); the better of the two."""
        _, first, later, overlap, splits = cover
        cut, grid = first if first is not None else (None, None)
        with_ov = self.evaluate(cut, grid, splits, later, overlap)
        if not overlap:
            return with_ov
        plain = self.with_overlaps(self.evaluate(cut, grid, splits, later, frozenset()))
        return min((with_ov, plain), key=lambda c: (c.peak, c.macs))

    def with_overlaps(self, cand: _Candidate) -> _Candidate:
        """Later stages whose output overlapping their input lowers the placed peak (a fixed
        overlap saves bytes in its own loop but pins buffers for the placer, so not always)."""
        if not self.opts.stage_overlap:
            return cand
        for c, _ in cand.later:
            if c.split_tensor in cand.overlap:
                continue
            trial = self.evaluate(cand.cut, cand.grid, cand.splits, cand.later, cand.overlap | {c.split_tensor})
            if trial.peak < cand.peak:
                cand = trial
        return cand

    # -- stage and grid -------------------------------------------------------------------
    def cuts(self) -> list[StageCut]:
        if self.opts.patch_grid == "off":
            return []
        cuts = stage_cuts(self.g)
        end = self.opts.patch_stage_end
        if end != "auto":
            chosen = [c for c in cuts if str(c.end) == end or self.g.tensors[c.split_tensor].name == end]
            if not chosen:
                valid = ", ".join(f"{c.end} ({self.g.tensors[c.split_tensor].name})" for c in cuts) or "none"
                raise MixqError(f"mixq.patch_stage_end={end!r} is not a valid end of a patch stage; valid: {valid}")
            cuts = chosen
        if not cuts and self.opts.patch_grid != "auto":
            raise MixqError(f"mixq.patch_grid={self.opts.patch_grid}: the model has no stage that can run in patches")
        return cuts

    def wide_grids(self, cut: StageCut) -> list[tuple[int, int]]:
        """Grids for later stages and for re-tuning a stage: the square ones and row-heavy
        rectangles (rows 2, 4 or 5 times the columns: thin strips keep the part of the output
        written ahead of the input rows still to be read small), by recomputation, cheapest first."""
        forced = parse_grid(self.opts.patch_grid)
        if forced is not None:
            return self.grids(cut)
        key = ("wide", cut.key)
        if key not in self._stage_macs:
            h, w = self.g.tensors[cut.split_tensor].shape[1:3]
            out = set(self.grids(cut))
            for c in range(1, min(w, MAX_GRID // 2) + 1):
                for k in (2, 4, 5):
                    if k * c <= min(h, MAX_RECT_ROWS):
                        out.add((k * c, c))
            self._stage_macs[key] = sorted(out, key=lambda gr: (self.stage_extra_macs(cut, gr), gr))
        return self._stage_macs[key]

    def grids(self, cut: StageCut) -> list[tuple[int, int]]:
        h, w = self.g.tensors[cut.split_tensor].shape[1:3]
        forced = parse_grid(self.opts.patch_grid)
        if forced is not None:
            return [forced] if forced[0] <= h and forced[1] <= w else []
        return [(g, g) for g in range(2, min(h, w, MAX_GRID) + 1)]

    def better(self, a: _Candidate, b: Optional[_Candidate], limit: Optional[int],
               extra_fraction: Optional[float] = None) -> bool:
        if b is None:
            return True
        if limit is not None:
            fa, fb = a.peak <= limit, b.peak <= limit
            if fa != fb:
                return fa
            if fa:
                return (a.macs, a.peak) < (b.macs, b.peak)
            return (a.peak, a.macs) < (b.peak, b.macs)
        fraction = self.opts.max_extra_macs if extra_fraction is None else extra_fraction
        cap = self.base_macs * (1 + fraction)
        oa, ob = a.macs <= cap, b.macs <= cap
        if oa != ob:
            return oa
        return (a.peak, a.macs) < (b.peak, b.macs)

    def stage_extra_macs(self, cut: StageCut, grid: tuple[int, int]) -> int:
        """Recomputation of a stage on a grid (memoised: the search asks many times)."""
        key = (cut.key, grid)
        if key not in self._stage_macs:
            base = (cut.key, (1, 1))
            if base not in self._stage_macs:
                self._stage_macs[base] = stage_macs(self.g, cut, (1, 1), self._axis_memo, self.op_weights)
            self._stage_macs[key] = (stage_macs(self.g, cut, grid, self._axis_memo, self.op_weights)
                                     - self._stage_macs[base] + self.call_work(cut, grid))
        return self._stage_macs[key]

    def _scan_grids(self, cut: StageCut, grids: list[tuple[int, int]],
                    splits: tuple[tuple[SplitChain, int], ...], best: Optional[_Candidate] = None
                    ) -> tuple[list[_Candidate], int]:
        """Grids from coarse to fine; finer grids lower the stage's share of the peak until the
        rest of the graph dominates, so the scan stops after two grids without a new best.
        With ``best`` (a candidate within the MAC cap), a grid whose live bytes alone exceed
        its peak is not placed. Returns the placed candidates and the smallest peak or bound."""
        cands: list[_Candidate] = []
        low = None
        stale = 0
        for gr in grids:
            if best is not None and best.macs <= self.base_macs * (1 + self.opts.max_extra_macs):
                _, live, macs = self.phase(cut, gr, splits)
                bound = max(live, default=0)
                if bound > best.peak or (bound == best.peak and macs >= best.macs):
                    low = bound if low is None else min(low, bound)
                    stale += 1
                    if stale >= 2:
                        break
                    continue
            c = self.evaluate(cut, gr, splits)
            if low is not None and c.peak >= low or any(c.peak >= o.peak for o in cands):
                stale += 1
                if stale >= 2:
                    break
            else:
                stale = 0
            cands.append(c)
            low = c.peak if low is None else min(low, c.peak)
            if self.better(c, best, None):
                best = c
        return cands, (low if low is not None else 1 << 62)

    def _smallest_peak(self, cuts: list[StageCut], best: Optional[_Candidate],
                       extra_fraction: Optional[float] = None) -> Optional[_Candidate]:
        """Every stage end and grid within the recomputation budget (``extra_fraction`` of the
        model's MACs, default ``max_extra_macs``); the smallest peak wins. Channel splits are
        searched for the stage ends that look best without them."""
        fraction = self.opts.max_extra_macs if extra_fraction is None else extra_fraction
        cap = self.base_macs * (1 + fraction)
        per_cut: list[tuple[int, StageCut, list[tuple[int, int]]]] = []
        for cut in cuts:
            grids = self.grids(cut)
            if len(grids) > 1:  # grids whose recomputation alone breaks the budget cannot win
                grids = [gr for gr in grids if self.base_macs + self.stage_extra_macs(cut, gr) <= cap] or grids[:1]
            if not grids:
                continue
            usual = best if extra_fraction is None else None  # the live-bytes filter assumes the usual cap
            cands, low = self._scan_grids(cut, grids, self.initial_splits(cut), usual)
            for c in cands:
                if self.better(c, best, None, fraction):
                    best = c
            per_cut.append((low, cut, grids))
        if self.opts.channel_split == "auto":
            per_cut.sort(key=lambda e: e[0])
            # with later stages searched afterwards (they choose splits of their own), fewer
            n_cuts = SPLIT_CUTS_LATER if self.later_search_on() else SPLIT_CUTS
            for _, cut, grids in per_cut[:n_cuts]:
                splits = self.cut_splits(cut, grids[-1])
                if not splits:
                    continue
                for c in self._scan_grids(cut, grids, splits, best if extra_fraction is None else None)[0]:
                    if self.better(c, best, None, fraction):
                        best = c
        return best

    def cut_splits(self, cut: StageCut, finest: tuple[int, int]) -> tuple[tuple[SplitChain, int], ...]:
        """Auto splits of a stage end, chosen once on its finest grid (where the stage takes the
        least memory, so the rest of the graph, which splits relieve, is exposed)."""
        if cut.end not in self._cut_splits:
            self._cut_splits[cut.end] = self.splits_for(cut, finest)
        return self._cut_splits[cut.end]

    def _fewest_macs(self, cuts: list[StageCut], best: Optional[_Candidate], limit: int) -> Optional[_Candidate]:
        """First the smallest peak within the recomputation budget, then (if that does not fit)
        with recomputation up to doubling the work; when even that does not fit, the limit cannot
        be met. Then, per stage end, grids from coarse to fine
        (MACs grow with the grid) until one fits: the first fit is that stage end's cheapest;
        grids costing more than the best fit so far are skipped. Splits found for a stage end
        by the first pass are tried when a candidate does not fit without them."""
        if best is not None and best.peak <= limit:
            return best  # no stage: no recomputation, nothing can be cheaper
        low = self._smallest_peak(cuts, best)
        if low is not None and low.peak > limit and self.later_search_on():
            # later patch stages within the usual budget: the cheapest cover under the limit
            relieved = self.relieve(low, self.base_macs * (1 + self.opts.max_extra_macs), limit)
            if relieved.peak <= limit:
                return relieved
            low = relieved if relieved.peak < low.peak else low
        # beyond the usual budget, up to doubling the work; not when the limit is far below what the
        # usual budget reaches (more recomputation never closes such a gap: it only trims halos)
        if low is not None and limit < low.peak <= WIDEN_WITHIN * limit:
            wide = self._smallest_peak(cuts, best, max(1.0, self.opts.max_extra_macs))
            low = wide if wide is not None and wide.peak < low.peak else low
        if low is None or low.peak > limit:
            return low
        fit = low
        for cut in cuts:
            for gr in self.grids(cut):
                macs = self.base_macs + self.stage_extra_macs(cut, gr)
                if macs >= fit.macs:
                    break
                c = self.evaluate(cut, gr, self.initial_splits(cut))
                splits = self._cut_splits.get(cut.end)
                if c.peak > limit and splits:
                    c2 = self.evaluate(cut, gr, splits)
                    c = c2 if c2.peak < c.peak else c
                if c.peak <= limit:
                    if self.better(c, fit, limit):
                        fit = c
                    break
        return fit

    def search(self) -> _Candidate:
        limit = int(self.opts.sram_limit_kb * 1024) if self.opts.sram_limit_kb is not None else None
        forced = self.opts.patch_grid not in ("auto", "off") or self.opts.patch_stage_end != "auto"
        cuts = self.cuts()
        best: Optional[_Candidate] = None
        if not (forced and cuts):
            best = self.evaluate(None, None, self.splits_for(None, None))
        if limit is None:
            plain = best
            best = self._smallest_peak(cuts, best)
            # a patch stage that saves next to nothing is not worth its loops
            if plain is not None and best is not plain and plain.peak <= best.peak * (1 + MIN_STAGE_GAIN):
                best = plain
            if best is not None:
                relieved = self.relieve(best, self.base_macs * (1 + self.opts.max_extra_macs))
                if relieved.peak < best.peak * (1 - MIN_STAGE_GAIN):
                    best = relieved
        elif limit < self.input_floor():
            # nothing fits below the whole input: the usual smallest-peak search tells how far
            best = self._smallest_peak(cuts, best)
            if best is not None:
                best = self.relieve(best, self.base_macs * (1 + self.opts.max_extra_macs))
        else:
            best = self._fewest_macs(cuts, best, limit)
            if best is not None and limit < best.peak <= WIDEN_WITHIN * limit:
                relieved = self.relieve(best, self.base_macs * (1 + max(1.0, self.opts.max_extra_macs)), limit)
                best = relieved if relieved.peak < best.peak else best
        if best is None:
            raise MixqError(f"mixq.patch_grid={self.opts.patch_grid}: no patch stage output has that many rows and "
                            "columns")
        if limit is not None and best.peak > limit:
            # a candidate the search measured on its way fits, with more recomputation than the
            # budgets above allow: a plan that fits the limit beats a refusal
            fits = [c for c in self.evaluated if c.peak <= limit]
            if fits:
                best = min(fits, key=lambda c: (c.macs, c.peak))
                log.info("SRAM limit met beyond the recomputation budget: %.1f%% extra work",
                         100 * (best.macs / self.base_macs - 1))
                return best
            low = min(self.evaluated, key=lambda c: c.peak)
            floor = self.input_floor()
            raise MixqError(
                f"SRAM limit {self.opts.sram_limit_kb:g} KiB ({limit:,} B) cannot be met: the smallest reachable "
                f"peak is {low.peak:,} B ({math.ceil(low.peak / 1024)} KiB)"
                + (f"; the whole input alone takes {floor:,} B" if limit < floor else "")
            )
        return best


def default_precision(graph: Graph, bits: int = 8) -> dict[int, TensorPrecision]:
    """Every activation tensor at its graph bitwidth (8-bit unless the graph says otherwise)."""
    out = {}
    for t in graph.tensors:
        if not t.is_const:
            out[t.index] = TensorPrecision(t.index, t.bits if bits == 8 else bits, t.signed)
    return out


def plan_memory(
    graph: Graph,
    config: OptionsLike = None,
    precision: Optional[dict[int, TensorPrecision]] = None,
    scratch_fn: ScratchFn = default_scratch_bytes,
    *,
    max_extra_macs: Optional[float] = None,
    alignment: Optional[int] = None,
    in_place_conv: Optional[bool] = None,
    stage_overlap: Optional[bool] = None,
    later_stages: Optional[bool] = None,
    op_weights: Optional[dict[int, float]] = None,
) -> Plan:
    """Plan patches, channel splits and the arena of ``graph``.

    Parameters
    ----------
    graph
        The model (batch 1, NHWC).
    config
        ``mixq.*`` options: a mapping, :class:`tvm_mixq.options.MixqOptions` or :class:`PlanOptions`
        (see :mod:`tvm_mixq.schedule.options`).
    precision
        Bitwidth per activation tensor (defaults to the graph's, 8-bit); buffers are sized at it.
    scratch_fn
        Kernel scratch bytes per op (the kernel library's formula; a conservative default).
    max_extra_macs
        Recomputation allowed when minimising the peak without a limit (default 0.15 = 15%).
    alignment
        Arena alignment of every buffer in bytes (default 8).
    in_place_conv, stage_overlap
        ``False`` turns off running 1x1 projections in place, or overlapping the stage output
        with consumed input rows (both on by default).
    later_stages
        ``False``: one patch stage at most (from the graph input); by default deeper blocks may
        run as later patch stages (:attr:`Plan.later_stages`) when that lowers the peak.
    op_weights
        Cost of a recomputed MAC per op (mean 1; see the module docstring); None: every MAC alike.

    Raises
    ------
    MixqError
        Invalid options, or an SRAM limit no candidate meets (the message gives the smallest
        reachable peak).
    """
    t0 = time.perf_counter()
    opts = plan_options(config, max_extra_macs=max_extra_macs, alignment=alignment)
    if in_place_conv is not None:
        opts.in_place_conv = in_place_conv
    if stage_overlap is not None:
        opts.stage_overlap = stage_overlap
    if later_stages is not None:
        opts.later_stages = later_stages
    if not graph.inputs:
        raise MixqError("the model has no input")
    precision = precision if precision is not None else default_precision(graph)
    planner = _Planner(graph, opts, precision, scratch_fn, op_weights)
    best = planner.search()
    plan = _make_plan(planner, best)
    plan.planning_seconds = time.perf_counter() - t0
    log.info("planned %s in %.2f s (%d candidates): peak %d B", graph.name, plan.planning_seconds,
             len(planner.evaluated), plan.peak)
    return plan


def _make_plan(planner: _Planner, best: _Candidate) -> Plan:
    graph, opts = planner.g, planner.opts
    stage, chans, steps, memory, macs = planner.build(best.cut, best.grid, best.splits, later=best.later,
                                                      overlap=best.overlap)
    base = _Planner(graph, PlanOptions(patch_grid="off", channel_split="off", alignment=opts.alignment,
                                       in_place_conv=opts.in_place_conv),
                    planner.precision, planner.scratch_fn)
    _, _, _, base_mem, _ = base.build(None, None, ())
    return Plan(
        graph=graph,
        options=opts,
        patch_stage=stage,
        channel_splits=chans,
        precision=planner.precision,
        steps=steps,
        memory=memory,
        macs=macs,
        baseline_macs=planner.base_macs,
        baseline_peak=base_mem.peak,
        later_stages=[dataclasses.replace(st, input_overlap=st.split_tensor in best.overlap)
                      for st in planner.later_stages(best.later)],
    )


def plan_stages(graph: Graph, first: Optional[tuple[int, tuple[int, int]]],
                later: Sequence[tuple[int, int, tuple[int, int], bool]], config: OptionsLike = None) -> Plan:
    """A plan with the patch stages given rather than searched (tests, experiments, code
    generators exercising a layout): ``first`` = (last op, grid) of the stage from the graph
    input or ``None``; ``later`` = (first op, last op, grid, output overlaps input) per later
    stage. Channel splits follow ``mixq.channel_split`` (``auto`` searched around the stages).

    Raises
    ------
    MixqError
        A range that is not a valid stage.
    """
    t0 = time.perf_counter()
    opts = plan_options(config)
    planner = _Planner(graph, opts, default_precision(graph), default_scratch_bytes)
    cut = None
    if first is not None:
        cut = next((c for c in stage_cuts(graph) if c.end == first[0]), None)
        if cut is None:
            raise MixqError(f"ops 0..{first[0]} are not a valid first patch stage")
    chosen: list[tuple[StageCut, tuple[int, int]]] = []
    overlap = set()
    for a, b, grid, ov in later:
        lc = next((c for c in later_stage_cuts(graph, -1, len(graph.ops)) if c.key == (a, b)), None)
        if lc is None:
            raise MixqError(f"ops {a}..{b} are not a valid later patch stage")
        chosen.append((lc, grid))
        if ov:
            overlap.add(lc.split_tensor)
    grid = first[1] if first is not None else None
    later_t = tuple(chosen)
    if opts.channel_split == "off":
        splits: Splits = ()
    elif opts.channel_split == "auto":
        splits = planner.auto_splits(cut, grid, later_t, (), frozenset(overlap))
    else:
        factor = int(opts.channel_split)
        splits = tuple((c, min(factor, c.channels)) for c in planner.chains(cut, later_t))
        used: set[int] = set()
        kept = []
        for c, f in splits:
            if not used.intersection(c.ops):
                kept.append((c, f))
                used.update(c.ops)
        splits = tuple(kept)
    cand = planner.evaluate(cut, grid, splits, later_t, frozenset(overlap))
    plan = _make_plan(planner, cand)
    plan.planning_seconds = time.perf_counter() - t0
    return plan


def replan_memory(plan: Plan, precision: Optional[dict[int, TensorPrecision]] = None,
                  scratch_fn: ScratchFn = default_scratch_bytes) -> Plan:
    """The same patch stage and channel splits, the arena planned again: after the bitwidths
    (``precision``, or per-patch ``Patch.bits`` overrides, whose kernels' scratch is that of
    ``plan.outlier_graph``) or the kernels' scratch changed.

    Returns a new :class:`Plan`; the patch stage object is shared with ``plan``.
    """
    t0 = time.perf_counter()
    graph = plan.graph
    precision = precision if precision is not None else plan.precision
    planner = _Planner(graph, plan.options, precision, scratch_fn)
    stage = plan.patch_stage
    mode = plan.memory.mode
    steps, buffers = build_schedule(graph, stage, plan.channel_splits, mode, planner.bits_of, scratch_fn,
                                    plan.options.alignment, plan.options.in_place_conv, plan.options.stage_overlap,
                                    list(plan.later_stages),
                                    [st.split_tensor for st in plan.later_stages if st.input_overlap],
                                    outlier_graph=plan.outlier_graph)
    memory = make_memory_plan(buffers, steps, mode, plan.options.alignment)
    base = _Planner(graph, PlanOptions(patch_grid="off", channel_split="off", alignment=plan.options.alignment,
                                       in_place_conv=plan.options.in_place_conv), precision, scratch_fn)
    _, _, _, base_mem, _ = base.build(None, None, ())
    return Plan(graph, plan.options, stage, list(plan.channel_splits), precision, steps, memory, plan.macs,
                plan.baseline_macs, base_mem.peak, time.perf_counter() - t0,
                outlier_graph=plan.outlier_graph, later_stages=list(plan.later_stages))
