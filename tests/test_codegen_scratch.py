"""The planner counts the kernel scratch the generated code places (``kernel_scratch_fn``): on
layer-by-layer models its peak is the generated arena, where the default estimate fell far short."""
from __future__ import annotations

from pathlib import Path

import pytest

from paths import MLPERF_INT8
from tvm_mixq.codegen import generate_c
from tvm_mixq.codegen.emitter import build_layers, kernel_scratch_fn
from tvm_mixq.reader import read_tflite
from tvm_mixq.schedule import plan_memory


@pytest.mark.parametrize("key", ["ad", "kws"])
def test_planned_peak_is_the_generated_arena(key: str, tmp_path: Path) -> None:
    graph = read_tflite(MLPERF_INT8[key])
    plan = plan_memory(graph, {"mixq.channel_split": "off"}, scratch_fn=kernel_scratch_fn())
    assert plan.patch_stage is None
    model = generate_c(graph, tmp_path, plan=plan)
    assert plan.peak == model.arena_size
    biggest = max(layer.scratch for layer in build_layers(graph))
    assert plan.peak >= biggest
    assert plan_memory(graph, {"mixq.channel_split": "off"}).peak < plan.peak  # the default estimate


def test_scratch_fn_follows_the_bitwidths() -> None:
    from tvm_mixq.deploy import mixed_precision_graph
    from tvm_mixq.options import MixqOptions

    graph = read_tflite(MLPERF_INT8["kws"])
    options = MixqOptions.from_strings(["mixq.bits=8,4", "mixq.lambda=0.1", "mixq.cost_model=bitops"])
    mixed = mixed_precision_graph(graph, options, None, lambda msg: None)
    fn = kernel_scratch_fn()
    int8 = {la.op.index: la.scratch for la in build_layers(graph)}
    sub_byte = 0
    for layer in build_layers(mixed):
        op = layer.op
        if op.kind != "CONV_2D":
            continue
        assert fn(mixed, op, (25, 5), (25, 5), False) == layer.scratch > 0
        assert fn(mixed, op, (25, 5), (25, 5), True) > layer.scratch  # in place: rows held back on top
        if min(layer.p["bits"]) < 8:
            sub_byte += 1
        if layer.p["bits"][:2] == (4, 4):
            # W4A4 weights go to flash in lane words: two lane rows, no re-spaced copy (was Cpad * kp
            # bytes more), less than int8's two int16 im2col rows
            assert layer.p["fn"].endswith("_lanes")
            assert layer.scratch < int8[op.index]
    assert sub_byte > 0
