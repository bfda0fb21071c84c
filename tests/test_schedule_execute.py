"""Executing a scheduled plan (patch by patch, slice by slice) gives the unscheduled interpreter's
outputs bit for bit: patching and channel splitting never change int8 numerics."""
from __future__ import annotations

from paths import MLPERF
import os

import numpy as np
import pytest

from test_schedule_graphs import float_input_graph, mixed_stage_graph, random_input, se_graph
from tvm_mixq.reference.interpreter import Interpreter
from tvm_mixq.schedule import plan_memory
from tvm_mixq.schedule.execute import PlanExecutor, check_plan

MODELS = str(MLPERF)


@pytest.mark.parametrize(
    "config",
    [
        {"mixq.patch_stage_end": 0, "mixq.patch_grid": "3x3"},
        {"mixq.patch_stage_end": 3, "mixq.patch_grid": "4x4"},  # residual ADD inside the stage
        {"mixq.patch_stage_end": 5, "mixq.patch_grid": "2x3"},  # PAD + VALID depthwise, uneven grid
        {"mixq.patch_stage_end": 7, "mixq.patch_grid": "4x5"},  # SAME pools at tile borders
        {"mixq.patch_stage_end": 8, "mixq.patch_grid": "6x6"},  # dilated conv, 1x1 tiles
        {"mixq.patch_grid": "off", "mixq.channel_split": 3},
        {"mixq.patch_stage_end": 5, "mixq.patch_grid": "3x3", "mixq.channel_split": 5, "mixq.stream_input": 1},
        {},
    ],
)
def test_scheduled_plan_is_bit_exact(config: dict) -> None:
    g = mixed_stage_graph(seed=1)
    plan = plan_memory(g, config)
    for seed in range(2):
        x = random_input(g, seed)
        ref = Interpreter(g).run_all(x)
        ours = PlanExecutor(plan).run_all(x)
        # every tensor the schedule materialises whole equals the reference, outputs included
        for t, v in ours.items():
            assert np.array_equal(v, ref[t].astype(np.int64)), f"tensor {t} differs ({config})"
        assert g.outputs[0] in ours


@pytest.mark.parametrize("config", [{}, {"mixq.patch_grid": "3x2", "mixq.stream_input": 1},
                                    {"mixq.patch_stage_end": 4, "mixq.patch_grid": "4x4"}])
def test_unary_and_se_graph_bit_exact(config: dict) -> None:
    g = se_graph(seed=3)
    plan = plan_memory(g, config)
    stage = plan.patch_stage
    if config:
        assert stage is not None
    if stage is not None:  # the stage stops before the squeeze-and-excitation block
        assert all(g.ops[o].kind not in ("MEAN", "LOGISTIC") for o in stage.ops)
    for seed in range(2):
        assert check_plan(plan, random_input(g, seed))


@pytest.mark.parametrize("config", [{}, {"mixq.stream_input": 1},
                                    {"mixq.patch_stage_end": 2, "mixq.patch_grid": "3x3"}])
def test_float_input_quantized_in_the_stage(config: dict) -> None:
    g = float_input_graph()
    plan = plan_memory(g, config)
    if config:  # (with the input counted, QUANTIZE in place over the float input already wins)
        assert plan.patch_stage is not None and plan.patch_stage.ops[0] == 0  # QUANTIZE per patch
    inp = next(b for b in plan.memory.buffers if 0 in b.tensors)
    if config.get("mixq.stream_input"):
        assert inp.size < 16 * 16 * 3 * 4
    else:
        assert inp.size == 16 * 16 * 3 * 4  # float32 bytes
    assert check_plan(plan, random_input(g, 4))


def test_split_chain_is_really_sliced() -> None:
    g = mixed_stage_graph(seed=2)
    plan = plan_memory(g, {"mixq.patch_grid": "off", "mixq.channel_split": 4})
    assert plan.channel_splits and plan.channel_splits[0].factor == 4
    values = PlanExecutor(plan).run_all(random_input(g))
    for c in plan.channel_splits:
        for t in c.tensors:  # sliced intermediates are never whole
            assert t not in values
    assert check_plan(plan, random_input(g, 3))


@pytest.mark.parametrize("model,config", [
    ("vww_96_int8.tflite", {}),
    ("vww_96_int8.tflite", {"mixq.stream_input": 1}),
    ("vww_96_int8.tflite", {"mixq.patch_grid": "5x7", "mixq.channel_split": 4}),
    ("pretrainedResnet_quant.tflite", {"mixq.patch_grid": "3x3"}),
])
def test_mlperf_tiny_plans_are_bit_exact(model: str, config: dict) -> None:
    path = os.path.join(MODELS, model)
    assert os.path.exists(path), f"{path} missing from the repository"
    from tvm_mixq.reader import read_tflite

    g = read_tflite(path)
    plan = plan_memory(g, config)
    assert plan.patch_stage is not None
    assert check_plan(plan, random_input(g, 5))


def test_int8_pool_ignores_another_output_scale_in_the_stage() -> None:
    """TFLite's int8 pooling ignores the output's (scale, zero point); so do pools run tile by tile."""
    from tvm_mixq.graph import QuantParams

    g = mixed_stage_graph(seed=1)
    pools = [op for op in g.ops if op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and op.index <= 7]
    assert pools
    for op in pools:
        o_t = g.tensors[op.outputs[0]]
        scale, zp = o_t.quant.scalar()
        o_t.quant = QuantParams(np.array([scale * 1.7], np.float32), np.array([zp + 3]))
    plan = plan_memory(g, {"mixq.patch_stage_end": 7, "mixq.patch_grid": "4x5"})
    assert plan.patch_stage is not None and any(op.index in plan.patch_stage.ops for op in pools)
    for seed in range(2):
        assert check_plan(plan, random_input(g, seed))
