"""Later patch stages: deeper blocks run patch by patch from a whole intermediate tensor
(Plan.later_stages), their search, bit-exactness, and the helpers the search relies on."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_schedule_graphs import mcunet_block_graph, mixed_stage_graph, random_input
from tvm_mixq.errors import MixqError
from tvm_mixq.reference.interpreter import Interpreter
from tvm_mixq.schedule import default_precision, default_scratch_bytes, plan_memory, plan_stages, replan_memory
from tvm_mixq.schedule.builder import build_schedule, overlap_delta
from tvm_mixq.schedule.execute import PlanExecutor, check_plan
from tvm_mixq.schedule.memory import conflicts, live_per_step
from tvm_mixq.schedule.patches import build_patch_stage, later_stage_cuts, raster_extents, stage_cuts


@pytest.fixture(scope="module")
def g():
    return mcunet_block_graph()


def test_later_cuts_read_one_whole_tensor(g) -> None:
    cuts = later_stage_cuts(g)
    keys = {c.key for c in cuts}
    assert (7, 10) in keys  # expand -> depthwise -> project -> residual ADD
    assert (3, 6) in keys  # expand -> PAD -> stride-2 depthwise -> project
    consumers = g.consumers()
    for c in cuts:
        inside = set(c.ops)
        # every reader of the stage input is inside the stage, only the split tensor leaves it
        assert all(u.index in inside for u in consumers[c.input_tensor])
        for o in c.ops[:-1]:
            for t in g.ops[o].outputs:
                assert all(u.index in inside for u in consumers.get(t, []))
    # the residual block cannot start at its depthwise: the ADD reads the block input too
    assert (8, 10) not in keys


@pytest.mark.parametrize("overlap", [False, True])
def test_given_stages_bit_exact_and_conflict_free(g, overlap: bool) -> None:
    plan = plan_stages(g, (2, (4, 4)), [(3, 6, (4, 4), overlap), (7, 10, (2, 3), False)],
                       {"mixq.channel_split": "off"})
    assert [s.loop for s in plan.later_stages] == ["patch:1", "patch:2"]
    assert plan.later_stages[0].input_overlap == overlap
    assert {s.loop for s in plan.steps} >= {"patch", "patch:1", "patch:2"}
    assert conflicts(plan.memory.buffers) == []
    # each later stage's loop is one contiguous run of steps
    for st in plan.later_stages:
        idx = [s.index for s in plan.steps if s.loop == st.loop]
        assert idx == list(range(idx[0], idx[-1] + 1))
    for seed in range(2):
        x = random_input(g, seed)
        ref = Interpreter(g).run_all(x)
        ours = PlanExecutor(plan).run_all(x)
        for t, v in ours.items():
            assert np.array_equal(v, ref[t].astype(np.int64)), f"tensor {t} differs"
    # recomputation of every stage counted in the plan's MACs
    extra = sum(st.recompute_macs for st in plan.stages)
    assert plan.macs == plan.baseline_macs + extra


def test_overlap_lowers_the_later_stage_loop(g) -> None:
    kw = {"mixq.channel_split": "off"}
    apart = plan_stages(g, None, [(7, 10, (2, 2), False)], kw)
    over = plan_stages(g, None, [(7, 10, (2, 2), True)], kw)
    loop_live = [max(e.live_bytes for e in p.memory.timeline if p.steps[e.step].loop == "patch:1")
                 for p in (apart, over)]
    assert loop_live[1] < loop_live[0]
    b_in = over.memory.buffer_of(over.later_stages[0].input_tensor)
    b_out = over.memory.buffer_of(over.later_stages[0].split_tensor)
    assert b_in.offset < b_out.end and b_out.offset < b_in.end  # they share bytes
    assert check_plan(over, random_input(g, 3))


def test_search_finds_later_stages(g, monkeypatch) -> None:
    import tvm_mixq.schedule.search as search

    # the block is tiny: at the default price its extra kernel calls outweigh what the stage saves
    assert plan_memory(g).later_stages == []
    monkeypatch.setattr(search, "CALL_MACS_PER_CHANNEL", 0)
    plan = plan_memory(g)
    single = plan_memory(g, later_stages=False)
    assert plan.later_stages
    assert plan.peak < single.peak
    assert plan.extra_macs <= 0.15
    assert check_plan(plan, random_input(g, 1))
    assert conflicts(plan.memory.buffers) == []


def test_later_stage_calls_count_as_work(g, monkeypatch) -> None:
    import tvm_mixq.schedule.search as search

    monkeypatch.setattr(search, "CALL_MACS_PER_CHANNEL", 0)
    plan = plan_memory(g)
    stage = plan.later_stages[0]
    monkeypatch.setattr(search, "CALL_MACS_PER_CHANNEL", 128)
    cut = next(c for c in later_stage_cuts(g) if tuple(c.ops) == tuple(stage.ops))
    planner = search._Planner(g, plan.options, default_precision(g), default_scratch_bytes)
    channels = sum(g.tensors[g.ops[o].outputs[0]].shape[-1] for o in stage.ops
                   if g.ops[o].kind in search.WORK_OPS)
    calls = stage.grid[0] * stage.grid[1] - 1
    assert planner.call_work(cut, stage.grid) == calls * channels * 128 > 0
    first = stage_cuts(g)[0]
    assert planner.call_work(first, (4, 4)) > planner.call_work(first, (2, 2)) > planner.call_work(first, (1, 1)) == 0
    # priced high enough, the calls of a later stage break the recomputation budget: none is chosen
    monkeypatch.setattr(search, "CALL_MACS_PER_CHANNEL", 10 ** 6)
    assert plan_memory(g).later_stages == []


def test_forced_stage_keeps_one_stage(g) -> None:
    plan = plan_memory(g, {"mixq.patch_stage_end": 2, "mixq.patch_grid": "4x4"})
    assert plan.later_stages == []


def test_plan_views_name_later_stages(g) -> None:
    plan = plan_stages(g, (2, (4, 4)), [(7, 10, (2, 2), True)])
    d = json.loads(plan.to_json())
    assert d["later_stages"][0]["loop"] == "patch:1"
    assert d["later_stages"][0]["input_overlap"] is True
    assert d["patch_stage"]["loop"] == "patch"
    assert "later patch stage (patch:1)" in plan.summary()
    assert [s.loop for s in plan.stages] == ["patch", "patch:1"]


def test_replan_keeps_later_stages(g) -> None:
    plan = plan_stages(g, (2, (4, 4)), [(3, 6, (4, 4), True), (7, 10, (2, 2), False)])
    again = replan_memory(plan)
    assert again.later_stages == plan.later_stages
    assert again.peak == plan.peak
    prec = default_precision(g)
    for st in plan.later_stages:  # 4-bit intermediates shrink the tiles
        for o in st.ops[:-1]:
            prec[g.ops[o].outputs[0]].bits = 4
    assert replan_memory(plan, prec).peak <= plan.peak


def test_invalid_given_stage(g) -> None:
    with pytest.raises(MixqError, match="not a valid later patch stage"):
        plan_stages(g, None, [(8, 10, (2, 2), False)])


def test_extents_give_the_same_overlap(g) -> None:
    bits = lambda t: 8  # noqa: E731
    for c in [c for c in later_stage_cuts(g) if c.key in ((3, 6), (7, 10))] + stage_cuts(g)[:3]:
        for grid in ((2, 2), (4, 2), (3, 5)):
            st = build_patch_stage(g, c, grid)
            assert overlap_delta(g, st, bits) == overlap_delta(g, st, bits, raster_extents(g, c, grid))


def test_representative_patches_size_the_same_buffers() -> None:
    g = mixed_stage_graph(seed=2)
    cut = [c for c in stage_cuts(g) if c.end == 3][0]
    prec = default_precision(g)
    for grid in ((6, 6), (4, 3)):
        full = build_patch_stage(g, cut, grid)
        rep = build_patch_stage(g, cut, grid, representative=True)
        assert len(rep.patches) < len(full.patches)
        sizes = []
        for st in (full, rep):
            cache = {("overlap", id(st), 8): 0}
            _, bufs = build_schedule(g, st, [], "input counted", lambda t: prec[t].bits, default_scratch_bytes,
                                     cache=cache, only_ops=set(cut.ops))
            sizes.append(sorted((b.name, b.size) for b in bufs))
        assert sizes[0] == sizes[1]


def test_live_per_step_counts_groups_once() -> None:
    g = mixed_stage_graph(seed=1)
    plan = plan_memory(g, {"mixq.patch_stage_end": 5, "mixq.patch_grid": "3x3"})
    live = live_per_step(plan.memory.buffers, len(plan.steps))
    # a lower bound of the placed arena at every step, reached somewhere
    assert all(v <= e.live_bytes for v, e in zip(live, plan.memory.timeline))
    assert max(live) <= plan.peak
