"""Generated patch stage with VDPC outlier patches (per-patch bitwidths): outlier patches run the
stage's ops with the outlier graph's quantization, bit-exact with the plan's Python reference
(:class:`tvm_mixq.quant.execute.PlanRunner`), on the host and in QEMU."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from paths import ROOT
from tvm_mixq.codegen import generate_c, run_host
from tvm_mixq.codegen.emitter import kernel_scratch_fn
from tvm_mixq.codegen.layers import CodegenError
from tvm_mixq.emu import tools_available
from tvm_mixq.options import MixqOptions
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.execute import PlanRunner
from tvm_mixq.quant.precision import PrecisionAssignment, write_to_plan
from tvm_mixq.quant.vdpc import stage_internal_tensors
from tvm_mixq.quant.vdqs import build_graphs
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import ReferenceOptions
from tvm_mixq.schedule import plan_memory, replan_memory
from tvm_mixq.schedule.execute import PlanExecutor

REF = ReferenceOptions(tflite_float_fc=False)
_NO_TOOLS = tools_available()
FMNIST = ROOT / "models" / "fmnist_dsconv_int8.tflite"
CALIB = ROOT / "models" / "fmnist_calib.npz"
OUTLIERS = [1, 3]


def _images(n: int, start: int = 0) -> np.ndarray:
    return np.load(CALIB)["input_0"][start:start + n]


def _int8_plan(graph, *config: str):
    return plan_memory(graph, MixqOptions.from_strings(["mixq.channel_split=off", "mixq.patch_grid=3x3", *config]))


def _mixed_plan(*config: str):
    """FMNIST's first three layers as a 3x3 patch stage, inner feature maps at 4 and 2 bits, the
    stage output at 4, sub-byte weights; patches 1 and 3 outliers (their inner tensors at 8 bits).
    Returns (plan with outlier patches, normal graph, outlier graph)."""
    graph = read_tflite(FMNIST)
    plan = _int8_plan(graph, *config)
    inner = stage_internal_tensors(plan)
    assert plan.patch_stage.grid == (3, 3) and inner == [26, 27]
    calib = calibrate(graph, _images(16), plan)
    a = PrecisionAssignment(act_bits={26: 4, 27: 2, 28: 4}, weight_bits={0: 4, 1: 4, 2: 2},
                            outlier_patches=OUTLIERS, outlier_tensors=inner)
    normal, outlier = build_graphs(graph, a, calib)
    plan.graph = normal
    write_to_plan(plan, a)
    plan.outlier_graph = outlier
    return replan_memory(plan, scratch_fn=kernel_scratch_fn()), normal, outlier


@pytest.fixture(scope="module")
def mixed():
    return _mixed_plan()


def _reference(plan, normal, outlier, x):
    return PlanRunner(normal, outlier, plan, [p.index for p in plan.patch_stage.patches if p.bits]).run(x)


def test_outlier_patches_bit_exact_on_the_host(mixed, tmp_path: Path) -> None:
    plan, normal, outlier = mixed
    assert [p.index for p in plan.patch_stage.patches if p.bits] == OUTLIERS
    model = generate_c(normal, tmp_path, name="fmnist", plan=plan)
    x = _images(6, start=100)
    got = run_host(model, [x])[0]
    np.testing.assert_array_equal(got, _reference(plan, normal, outlier, x)[0])
    # the plan's own patch-by-patch reference runs outlier patches alike
    np.testing.assert_array_equal(got[:2], np.concatenate([PlanExecutor(plan, REF).run([x[s:s + 1]])[0]
                                                           for s in range(2)]))
    # outlier patches did not run the normal layers: the all-normal plan gives other outputs
    assert not np.array_equal(got, PlanRunner(normal).run(x)[0])
    source = model.source.read_text()
    assert "if (stage_outlier[p])" in source
    assert "static const uint8_t stage_outlier[9]" in source
    fns = {ol.op.index: ol.p["fn"] for ol in model.outlier_layers}
    normal_fns = {la.op.index: la.p["fn"] for la in model.layers if la.op.index in fns}
    assert fns == {0: "mixq_conv2d_a8w4o8", 1: "mixq_depthwise_a8w4o8", 2: "mixq_pointwise_a8w2o4"}
    assert normal_fns == {0: "mixq_conv2d_a8w4o4", 1: "mixq_depthwise_a4w4o2", 2: "mixq_pointwise_a2w2o4"}


def test_outlier_patches_with_the_input_streamed(tmp_path: Path) -> None:
    """The input tile of each patch is read (callback) before the branch: both sets of layers read it."""
    plan, normal, outlier = _mixed_plan("mixq.stream_input=1")
    model = generate_c(normal, tmp_path, plan=plan)
    assert model.stage.streamed and model.stage.has_outliers and model.inputs[0].offset == -1
    x = _images(4, start=120)
    expected = _reference(plan, normal, outlier, x)[0]
    np.testing.assert_array_equal(run_host(model, [x], streamed=True)[0], expected)
    np.testing.assert_array_equal(run_host(model, [x])[0], expected)


def test_outlier_layers_share_unchanged_constants(mixed, tmp_path: Path) -> None:
    plan, normal, _ = mixed
    model = generate_c(normal, tmp_path, plan=plan)
    names = {a.name for a in model.consts}
    by_op = {la.op.index: la for la in model.layers}
    for ol in model.outlier_layers:
        assert ol.cname == f"l{ol.op.index}_o"
        # requantization changes with the input and output scales: their own multipliers
        assert ol.p["mult"] == f"{ol.cname}_m" and ol.p["mult"] in names
        assert ol.scratch == by_op[ol.op.index].scratch > 0
    # the first conv's weights do not depend on the activation bitwidths: one copy in flash
    assert model.outlier_layers[0].p["weights"] == "l0_w" and "l0_o_w" not in names


def test_arena_sized_for_both_and_the_planner_agrees(mixed, tmp_path: Path) -> None:
    plan, normal, _ = mixed
    model = generate_c(normal, tmp_path / "mixed", plan=plan)
    assert model.arena_size == plan.peak
    # without outlier patches (same bitwidths otherwise) the tiles hold 4 / 2-bit pixels only
    st = plan.patch_stage
    plain_stage = dataclasses.replace(st, patches=[dataclasses.replace(p, bits={}) for p in st.patches])
    plain = replan_memory(dataclasses.replace(plan, patch_stage=plain_stage, outlier_graph=None),
                          scratch_fn=kernel_scratch_fn())
    plain_model = generate_c(normal, tmp_path / "plain", plan=plain)
    assert plain_model.arena_size == plain.peak <= plan.peak  # (FMNIST's peak is after the stage)
    tiles = {b.name: b.size for b in model.arena.buffers}
    plain_tiles = {b.name: b.size for b in plain_model.arena.buffers}
    for t in (26, 27):  # 4 and 2 bits, 8 in outlier patches: the largest tile over both
        name = f"t{t}:{normal.tensors[t].name}"
        c = normal.tensors[t].shape[-1]
        sizes = [(p.tensor_tiles[t].area * c * p.bits.get(t, normal.tensors[t].bits) + 7) // 8 for p in st.patches]
        assert tiles[name] == max(sizes) > plain_tiles[name] == max((p.tensor_tiles[t].area * c *
                                                                     normal.tensors[t].bits + 7) // 8
                                                                    for p in st.patches)
        # the planner's tile of the tensor is the generated one
        assert next(b.size for b in plan.memory.buffers if b.name == f"tile:t{t}") == tiles[name]
        assert next(b.size for b in plain.memory.buffers if b.name == f"tile:t{t}") == plain_tiles[name]


def test_per_patch_bits_without_an_outlier_graph_are_refused(mixed, tmp_path: Path) -> None:
    plan, normal, _ = mixed
    with pytest.raises(CodegenError, match="outlier graph"):
        generate_c(normal, tmp_path, plan=dataclasses.replace(plan, outlier_graph=None))


def test_vdpc_classified_patches_bit_exact(tmp_path: Path) -> None:
    """VDPC on real images (the 99.9th percentile rule) marks some of the 3x3 patches as outliers;
    the deployment's path: assignment -> plan -> generated stage."""
    from tvm_mixq.quant.assign import assign_precision

    graph = read_tflite(FMNIST)
    plan = _int8_plan(graph)
    mp = assign_precision(graph, plan, calib_path=CALIB, cost_budget=0.3)
    outliers = mp.assignment.outlier_patches
    assert 0 < len(outliers) < 9 and mp.outlier_graph is not None
    mp.apply_to(plan)
    assert {p.index for p in plan.patch_stage.patches if p.bits} == set(outliers)
    plan = replan_memory(plan, scratch_fn=kernel_scratch_fn())
    model = generate_c(mp.graph, tmp_path, plan=plan)
    x = _images(8, start=150)
    got = run_host(model, [x])[0]
    np.testing.assert_array_equal(got, mp.runner(plan).run(x)[0])


@pytest.mark.skipif(_NO_TOOLS is not None, reason=str(_NO_TOOLS))
def test_outlier_patches_bit_exact_on_cortex_m7(mixed, tmp_path: Path) -> None:
    from tvm_mixq.codegen.firmware import build_firmware, run_firmware

    plan, normal, outlier = mixed
    model = generate_c(normal, tmp_path, name="fmnist", plan=plan)
    x = _images(2, start=180)
    expected = _reference(plan, normal, outlier, x)
    assert not np.array_equal(expected[0], PlanRunner(normal).run(x)[0])
    fw = build_firmware(model, "cortex-m7", [[x[s:s + 1] for s in range(2)]],
                        [[e[s:s + 1] for s in range(2)] for e in expected])
    run = run_firmware(fw, len(model.layers))
    assert run.passed, run.console[-400:]
