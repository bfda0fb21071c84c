"""The mixq annotation passes and the pipeline: before/after on a small partitioned module.

Each test builds the module the pass should produce (``Expected``: the input with the composite
functions' attributes set by hand) and compares it structurally with what the pass made; the
"does not fire" cases compare the output with the input.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from paths import MLPERF_INT8, OPS_FIXTURES  # noqa: E402
import tvm_mixq  # noqa: E402
from tvm_mixq.options import MixqOptions, OptionError  # noqa: E402
from tvm_mixq.relax import passes  # noqa: E402
from tvm_mixq.relax.importer import from_tflite  # noqa: E402
from tvm_mixq.relax.planner import Annotations, MixqPlanner, PlanContext, layers, liveness_peak_bytes  # noqa: E402

BLOCK = OPS_FIXTURES / "mobilenet_block_int8_io.tflite"  # conv, conv, dw, conv, add, mean, fc, softmax


@pytest.fixture(scope="module")
def partitioned() -> tvm.IRModule:
    return passes.Partition()(from_tflite(BLOCK))


def _names(mod: tvm.IRModule) -> dict[str, str]:
    """op -> first layer name of that op."""
    out: dict[str, str] = {}
    for layer in layers(mod):
        out.setdefault(layer.op, layer.name)
    return out


def _expected(mod: tvm.IRModule, per_layer: Mapping[str, Mapping[str, Any]],
              module_attrs: Mapping[str, Any] = {}) -> tvm.IRModule:
    """``mod`` with attributes set by hand (independently of planner.apply)."""
    out = mod.clone()
    for name, attrs in per_layer.items():
        gv = out.get_global_var(name)
        out[gv] = out[gv].with_attrs(dict(attrs))
    for key, value in module_attrs.items():
        out = out.with_attr(key, value)
    return out


def _run(pass_obj: tvm.transform.Pass, mod: tvm.IRModule, config: Mapping[str, Any] | None = None) -> tvm.IRModule:
    with tvm_mixq.pass_context(config or {}):
        return pass_obj(mod)


def test_partitioned_fixture_has_the_expected_layers(partitioned) -> None:
    assert [layer.op for layer in layers(partitioned)] == ["conv2d", "conv2d", "depthwise_conv2d", "conv2d", "add",
                                                           "fully_connected"]
    assert [layer.op_index for layer in layers(partitioned)] == [0, 1, 2, 3, 4, 6]


# -- Calibrate ----------------------------------------------------------------------------------------


def test_calibrate_annotates_quantized_range(partitioned) -> None:
    after = _run(passes.Calibrate(), partitioned)
    expected = {}
    for layer in layers(partitioned):
        scale, zp = layer.attr("output_scale"), layer.attr("output_zero_point")
        expected[layer.name] = {"mixq.calib_min": scale * (layer.attr("activation_min") - zp),
                                "mixq.calib_max": scale * (layer.attr("activation_max") - zp)}
    tvm.ir.assert_structural_equal(after, _expected(partitioned, expected))


def test_calibrate_does_not_fire_for_int8_baseline(partitioned) -> None:
    after = _run(passes.Calibrate(), partitioned, {"mixq.enable": False})
    tvm.ir.assert_structural_equal(after, partitioned)


@pytest.mark.parametrize("pass_cls", [passes.Calibrate, passes.PatchPlan, passes.VDPC, passes.VDQS,
                                      passes.ChannelSplit, passes.MemoryPlan])
def test_no_composites_no_change(pass_cls) -> None:
    unpartitioned = from_tflite(BLOCK)
    after = _run(pass_cls(), unpartitioned, {"mixq.patch_grid": "2x2", "mixq.channel_split": "2"})
    tvm.ir.assert_structural_equal(after, unpartitioned)


# -- PatchPlan ----------------------------------------------------------------------------------------


def test_patch_plan_explicit_grid_until_stage_end(partitioned) -> None:
    names = [layer.name for layer in layers(partitioned)]
    after = _run(passes.PatchPlan(), partitioned, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "2"})
    expected = _expected(partitioned, {name: {"mixq.patch_grid": [2, 2]} for name in names[:3]})
    tvm.ir.assert_structural_equal(after, expected)


def test_patch_plan_stage_end_by_variable_name(partitioned) -> None:
    first = layers(partitioned)[0]
    after = _run(passes.PatchPlan(), partitioned, {"mixq.patch_grid": "1x2", "mixq.patch_stage_end": first.output})
    tvm.ir.assert_structural_equal(after, _expected(partitioned, {first.name: {"mixq.patch_grid": [1, 2]}}))


@pytest.mark.parametrize("config", [{"mixq.patch_grid": "off"}, {"mixq.patch_grid": "auto"},
                                    {"mixq.patch_grid": "2x2", "mixq.enable": False}],
                         ids=["off", "auto_stand_in", "int8_baseline"])
def test_patch_plan_does_not_fire(partitioned, config) -> None:
    tvm.ir.assert_structural_equal(_run(passes.PatchPlan(), partitioned, config), partitioned)


def test_patch_plan_unknown_stage_end_is_refused(partitioned) -> None:
    with pytest.raises(OptionError, match="names no layer"):
        _run(passes.PatchPlan(), partitioned, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "nowhere"})


# -- VDPC ---------------------------------------------------------------------------------------------


def test_vdpc_marks_patch_layers(partitioned) -> None:
    planned = _run(passes.PatchPlan(), partitioned, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "auto"})
    patched = [layer.name for layer in layers(planned) if layer.attr("patch_grid") is not None]
    assert patched  # 'auto' with the stand-in: the leading layers at least 2x2 in size
    after = _run(passes.VDPC(), planned)
    tvm.ir.assert_structural_equal(after, _expected(planned, {n: {"mixq.outlier_patches": []} for n in patched}))


@pytest.mark.parametrize("config", [{}, {"mixq.bits": "8"}], ids=["no_patch_plan", "int8_only"])
def test_vdpc_does_not_fire(partitioned, config) -> None:
    mod = partitioned
    if config:
        mod = _run(passes.PatchPlan(), partitioned, {"mixq.patch_grid": "2x2"})
    tvm.ir.assert_structural_equal(_run(passes.VDPC(), mod, config), mod)


# -- VDQS ---------------------------------------------------------------------------------------------


def test_vdqs_stand_in_keeps_int8(partitioned) -> None:
    after = _run(passes.VDQS(), partitioned)
    expected = {}
    for layer in layers(partitioned):
        attrs = {"mixq.in_bits": 8, "mixq.out_bits": 8}
        if layer.attr("weight_scale") is not None:
            attrs["mixq.w_bits"] = 8
        expected[layer.name] = attrs
    tvm.ir.assert_structural_equal(after, _expected(partitioned, expected))


def test_vdqs_does_not_fire_for_int8_baseline(partitioned) -> None:
    tvm.ir.assert_structural_equal(_run(passes.VDQS(), partitioned, {"mixq.enable": 0}), partitioned)


class _FourBitWeights(MixqPlanner):
    """A plugged-in planner: 4-bit weights on every convolution."""

    def assign_bitwidths(self, ctx: PlanContext) -> Annotations:
        ann = super().assign_bitwidths(ctx)
        for layer in ctx.layers:
            if layer.op in ("conv2d", "depthwise_conv2d"):
                ann.set(layer.name, "w_bits", 4)
        return ann


def test_vdqs_with_plugged_planner(partitioned) -> None:
    after = _run(passes.VDQS(planner=_FourBitWeights()), partitioned, {"mixq.bits": "8,4"})
    bits = {layer.op: layer.attr("w_bits") for layer in layers(after)}
    assert bits["conv2d"] == 4 and bits["depthwise_conv2d"] == 4 and bits["fully_connected"] == 8


def test_vdqs_refuses_bits_outside_the_allowed_set(partitioned) -> None:
    with pytest.raises(ValueError, match="outside mixq.bits"):
        _run(passes.VDQS(planner=_FourBitWeights()), partitioned, {"mixq.bits": "8,2"})


# -- ChannelSplit -------------------------------------------------------------------------------------


def test_channel_split_explicit_count(partitioned) -> None:
    after = _run(passes.ChannelSplit(), partitioned, {"mixq.channel_split": "2"})
    expected = {layer.name: {"mixq.channel_split": 2 if layer.op == "depthwise_conv2d" else 1}
                for layer in layers(partitioned)}
    assert _names(partitioned)["depthwise_conv2d"] and layers(partitioned)[2].out_channels % 2 == 0
    tvm.ir.assert_structural_equal(after, _expected(partitioned, expected))


@pytest.mark.parametrize("config", [{"mixq.channel_split": "off"}, {"mixq.enable": False}], ids=["off", "int8"])
def test_channel_split_does_not_fire(partitioned, config) -> None:
    tvm.ir.assert_structural_equal(_run(passes.ChannelSplit(), partitioned, config), partitioned)


# -- MemoryPlan ---------------------------------------------------------------------------------------


def test_memory_plan_peak_of_a_chain() -> None:
    mod = passes.Partition()(from_tflite(MLPERF_INT8["ad"]))  # 10 fully connected layers in a chain
    after = _run(passes.MemoryPlan(), mod, {"mixq.enable": False})  # runs for the baseline too
    sizes = [640] + [int(layer.output_shape[-1]) for layer in layers(mod)]
    peak = max(a + b for a, b in zip(sizes, sizes[1:]))  # int8: input + output of the widest step
    assert int(after.attrs["mixq.peak_sram_bytes"]) == peak == 768
    expected = _expected(mod, {layer.name: {"mixq.output_bytes": int(layer.output_shape[-1])} for layer in layers(mod)},
                         {"mixq.peak_sram_bytes": peak})
    tvm.ir.assert_structural_equal(after, expected)


def test_memory_plan_counts_sub_byte_outputs(partitioned) -> None:
    four = _run(passes.VDQS(planner=_HalfOutputs()), partitioned, {"mixq.bits": "8,4"})
    eight = int(liveness_peak_bytes(partitioned, layers(partitioned)))
    planned = _run(passes.MemoryPlan(), four)
    assert int(planned.attrs["mixq.peak_sram_bytes"]) < eight
    for layer in layers(planned):
        assert layer.attr("output_bytes") == (layer.attr("out_bits") * int(np.prod(layer.output_shape)) + 7) // 8


class _HalfOutputs(MixqPlanner):
    def assign_bitwidths(self, ctx: PlanContext) -> Annotations:
        ann = super().assign_bitwidths(ctx)
        for layer in ctx.layers[:-1]:
            ann.set(layer.name, "out_bits", 4)
        return ann


# -- pipeline ------------------------------------------------------------------------------------------


def test_pipeline_is_a_sequential_of_the_passes() -> None:
    seq = tvm_mixq.pipeline()
    assert isinstance(seq, tvm.transform.Sequential)
    assert seq.info.name == "mixq.Pipeline"


def test_pipeline_on_vww_with_options() -> None:
    mod = from_tflite(MLPERF_INT8["vww"])
    with tvm_mixq.pass_context({"mixq.patch_grid": "3x3", "mixq.patch_stage_end": "auto", "mixq.channel_split": "2"}):
        out = tvm_mixq.pipeline()(mod)
    layer_list = layers(out)
    assert len(layer_list) == 29
    assert all(layer.attr("out_bits") == 8 and layer.attr("channel_split") in (1, 2) for layer in layer_list)
    assert layer_list[0].attr("patch_grid") == [3, 3]
    # int8 layer by layer: the widest step is 48x48x8 in -> 48x48x16 out
    assert int(out.attrs["mixq.peak_sram_bytes"]) == 48 * 48 * 8 + 48 * 48 * 16
    script = out.script()
    assert '"mixq.patch_grid": [3, 3]' in script and '"mixq.out_bits": 8' in script


def test_pipeline_int8_baseline_only_plans_memory() -> None:
    mod = from_tflite(BLOCK)
    out = tvm_mixq.pipeline(options=MixqOptions(enable=False))(mod)
    for layer in layers(out):
        assert layer.attr("out_bits") is None and layer.attr("patch_grid") is None
        assert layer.attr("output_bytes") is not None
    assert "mixq.peak_sram_bytes" in out.attrs


def test_passes_take_fixed_options_over_context(partitioned) -> None:
    with tvm_mixq.pass_context({"mixq.channel_split": "off"}):
        after = passes.ChannelSplit(options=MixqOptions(channel_split=2))(partitioned)
    assert {layer.attr("channel_split") for layer in layers(after)} == {1, 2}


def test_pass_names_for_instrumentation() -> None:
    seen: list[str] = []

    @tvm.instrument.pass_instrument
    class Record:
        def run_before_pass(self, mod, info):
            seen.append(info.name)

    with tvm.transform.PassContext(instruments=[Record()]):
        tvm_mixq.pipeline()(from_tflite(BLOCK))
    assert [n for n in seen if n.startswith("mixq.")] == [
        "mixq.Pipeline", "mixq.Partition", "mixq.Calibrate", "mixq.PatchPlan", "mixq.VDPC", "mixq.VDQS",
        "mixq.ChannelSplit", "mixq.MemoryPlan"]


# -- the real algorithms behind the passes ------------------------------------------------------------


def _graph_pipeline(path, config: Mapping[str, Any]):
    from tvm_mixq.reader.tflite_reader import read_tflite
    from tvm_mixq.relax.graph_planner import GraphPlanner

    graph = read_tflite(path)
    planner = GraphPlanner()
    with tvm_mixq.pass_context(config):
        out = tvm_mixq.pipeline(planner=planner, graph=graph)(from_tflite(graph))
    return graph, planner, out


def test_graph_planner_attributes_follow_the_plan() -> None:
    graph, planner, out = _graph_pipeline(BLOCK, {"mixq.bits": "8,4,2"})
    assignment = planner.mixed.assignment
    for layer in layers(out):
        op = graph.ops[layer.op_index]
        assert layer.attr("out_bits") == assignment.bits_of_tensor(layer.tensor_index)
        assert layer.attr("in_bits") == assignment.bits_of_tensor(op.inputs[0])
        if layer.attr("weight_scale") is not None:
            assert layer.attr("w_bits") == assignment.bits_of_weights(op.index)
        stats = planner.calibration.tensors[layer.tensor_index]
        assert layer.attr("calib_max") == pytest.approx(stats.max)
    assert int(out.attrs["mixq.peak_sram_bytes"]) == planner.plan.peak
    assert int(out.attrs["mixq.int8_peak_sram_bytes"]) == planner.plan.baseline_peak


def test_graph_planner_int8_baseline() -> None:
    _, planner, out = _graph_pipeline(BLOCK, {"mixq.enable": 0})
    assert planner.mixed is None  # no precision search for the baseline
    assert all(layer.attr("out_bits") is None for layer in layers(out))
    assert int(out.attrs["mixq.peak_sram_bytes"]) == planner.plan.peak == planner.plan.baseline_peak


def test_graph_planner_needs_the_graph(partitioned) -> None:
    from tvm_mixq.errors import MixqError
    from tvm_mixq.relax.graph_planner import GraphPlanner

    with pytest.raises(MixqError, match="need the model's graph"):
        _run(passes.Calibrate(planner=GraphPlanner()), partitioned)


@pytest.mark.slow
def test_graph_planner_on_vww_patches_and_lowers_sram() -> None:
    graph, planner, out = _graph_pipeline(MLPERF_INT8["vww"], {})
    stage = planner.plan.patch_stage
    assert stage is not None
    patched = [layer for layer in layers(out) if layer.attr("patch_grid") is not None]
    assert [layer.op_index for layer in patched] == [op for op in stage.ops if op in {lyr.op_index for lyr in patched}]
    assert all(layer.attr("patch_grid") == list(stage.grid) for layer in patched)
    # the layers of the plan at the chosen bitwidths, not those of the int8 plan the passes began with
    assert {layer.op_index for layer in patched} == set(stage.ops) & {layer.op_index for layer in layers(out)}
    assert int(out.attrs["mixq.peak_sram_bytes"]) < int(out.attrs["mixq.int8_peak_sram_bytes"])
