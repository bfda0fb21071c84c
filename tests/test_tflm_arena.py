"""Offline replay of TFLM's greedy arena planner against figures TFLM itself reported."""
from __future__ import annotations

import pytest

from paths import MLPERF_INT8
from tvm_mixq.quant.calibration import activation_tensors
from tvm_mixq.reader import read_tflite
from tvm_mixq.tflm.arena import live_bytes_bound, tflm_arena_estimate

# `head` of TFLM's print_allocations() for the int8 models (tflite-micro, TFLM 90b983c headers) and
# for every feature map but the model's input/output at 4 bits (arena less the kernels' scratch).
TFLM_HEAD_INT8 = {"vww": 73_728, "kws": 16_000}
TFLM_HEAD_4BIT_NO_SCRATCH = {"vww": 36_864, "kws": 8_000}


@pytest.mark.parametrize("model", ["vww", "kws"])
def test_replay_matches_tflm(model):
    g = read_tflite(MLPERF_INT8[model])
    assert tflm_arena_estimate(g, {}) == TFLM_HEAD_INT8[model]
    io = set(g.inputs) | set(g.outputs)
    four = {t: 4 for t in activation_tensors(g) if t not in io}
    assert tflm_arena_estimate(g, four) == TFLM_HEAD_4BIT_NO_SCRATCH[model]


def test_greedy_placement_can_exceed_the_live_bound():
    g = read_tflite(MLPERF_INT8["vww"])
    assert live_bytes_bound(g, {}) == 55_296  # 48x48x8 + 48x48x16 alive together
    assert tflm_arena_estimate(g, {}) > live_bytes_bound(g, {})
    two = {t: 2 for t in activation_tensors(g) if t not in set(g.inputs) | set(g.outputs)}
    assert live_bytes_bound(g, two) <= tflm_arena_estimate(g, two) < tflm_arena_estimate(g, {}) // 2
