"""Generated patch stage (table-driven patch loop, explicit padding, streamed input) bit-exact on
the host against the reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paths import MLPERF_INT8, OPS_FIXTURES, ROOT
from tvm_mixq.codegen import generate_c, run_host
from tvm_mixq.emu import tools_available
from tvm_mixq.options import MixqOptions
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions
from tvm_mixq.schedule import plan_memory
from tvm_mixq.schedule.execute import PlanExecutor

REF = ReferenceOptions(tflite_float_fc=False)
_NO_TOOLS = tools_available()
FMNIST = ROOT / "models" / "fmnist_dsconv_int8.tflite"


def _inputs(graph, samples: int = 2, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=(samples,) + tuple(graph.tensors[i].shape[1:])).astype(np.int8)
            for i in graph.inputs]


def _check(path: Path, tmp_path: Path, *config: str):
    graph = read_tflite(path)
    plan = plan_memory(graph, MixqOptions.from_strings(["mixq.channel_split=off", *config]))
    assert plan.patch_stage is not None
    model = generate_c(graph, tmp_path, name=path.stem, plan=plan)
    x = _inputs(graph)
    got = run_host(model, x)
    expected = Interpreter(graph, REF).run(x)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    planned = PlanExecutor(plan, REF).run([v[:1] for v in x])
    np.testing.assert_array_equal(got[0][:1], planned[0])
    return model, plan


@pytest.mark.parametrize("grid", ["2x2", "3x3"])
def test_patch_stage_bit_exact(grid: str, tmp_path: Path) -> None:
    model, plan = _check(FMNIST, tmp_path, f"mixq.patch_grid={grid}")
    rows, cols = (int(v) for v in grid.split("x"))
    assert model.stage.patches == rows * cols
    source = model.source.read_text()
    assert f"for (int32_t p = 0; p < {rows * cols}; p++)" in source
    assert "mixq_rt_gather" in source and "mixq_rt_scatter" in source


def test_patch_stage_lowers_the_arena(tmp_path: Path) -> None:
    graph = read_tflite(FMNIST)
    lbl = generate_c(graph, tmp_path / "lbl")
    model, plan = _check(FMNIST, tmp_path / "patch")
    assert model.arena_size < lbl.arena_size
    assert model.arena_size >= plan.peak  # the planner's in-place kernels are not generated


def test_streamed_input_keeps_the_input_out_of_the_arena(tmp_path: Path) -> None:
    model, _ = _check(FMNIST, tmp_path, "mixq.stream_input=1")
    assert model.stage.streamed and model.inputs[0].offset == -1
    assert "read(user, it[0], it[1], it[2], it[3]" in model.source.read_text()
    # the same model fed through invoke_streamed and its read callback, tile by tile
    graph = model.graph
    x = _inputs(graph)
    got = run_host(model, x, streamed=True)
    np.testing.assert_array_equal(got[0], Interpreter(graph, REF).run(x)[0])


def test_streamed_callback_without_patch_stage(tmp_path: Path) -> None:
    graph = read_tflite(OPS_FIXTURES / "conv2d_3x3_same_s1_relu.tflite")
    model = generate_c(graph, tmp_path)
    x = _inputs(graph)
    np.testing.assert_array_equal(run_host(model, x, streamed=True)[0], Interpreter(graph, REF).run(x)[0])


def test_padded_fixture_with_patches(tmp_path: Path) -> None:
    _check(OPS_FIXTURES / "pad_dwconv_s2.tflite", tmp_path, "mixq.patch_grid=2x2")


@pytest.mark.parametrize("path", [OPS_FIXTURES / "mobilenet_block_int8_io.tflite", FMNIST], ids=lambda p: p.stem)
def test_channel_splits_bit_exact(path: Path, tmp_path: Path) -> None:
    graph = read_tflite(path)
    plan = plan_memory(graph, MixqOptions.from_strings(["mixq.channel_split=2", "mixq.patch_grid=off"]))
    assert plan.channel_splits
    model = generate_c(graph, tmp_path, plan=plan)
    source = model.source.read_text()
    assert "mixq_rt_conv_accumulate" in source and "for (int32_t s = 0; s < 2; s++)" in source
    x = _inputs(graph)
    np.testing.assert_array_equal(run_host(model, x)[0], Interpreter(graph, REF).run(x)[0])


def _split_model(bits: int, factor: int, out_dir: Path):
    """The mobilenet block fixture at ``bits`` (8: as it is) with its block split in ``factor``
    channel slices, generated; returns (model, its graph, the plan)."""
    from tvm_mixq.quant.assign import realise
    from tvm_mixq.quant.calibration import calibrate
    from tvm_mixq.quant.vdqs import uniform_assignment

    graph = read_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite")
    if bits < 8:
        cal = calibrate(graph, _inputs(graph, samples=8, seed=3)[0])
        graph = realise(graph, uniform_assignment(graph, cal, bits), cal).graph
    plan = plan_memory(graph, MixqOptions.from_strings([f"mixq.channel_split={factor}", "mixq.patch_grid=off"]))
    assert plan.channel_splits
    chain = plan.channel_splits[0]
    assert chain.consumer is not None
    assert any(graph.tensors[t].bits == bits for o in chain.ops for t in graph.ops[o].outputs)
    model = generate_c(graph, out_dir, plan=plan)
    assert f"for (int32_t s = 0; s < {factor}; s++)" in model.source.read_text()
    return model, graph, plan


@pytest.mark.parametrize("bits,factor", [(4, 2), (2, 3), (4, 5)])
def test_sub_byte_channel_splits_bit_exact(bits: int, factor: int, tmp_path: Path) -> None:
    """A split chain whose slices, depthwise weights and consumer input are sub-byte (odd slice
    widths put pixels mid-byte) runs bit-exact against the plan's reference."""
    model, mixed, plan = _split_model(bits, factor, tmp_path)
    x = _inputs(mixed)
    got = run_host(model, x)
    expected = Interpreter(mixed, REF).run(x)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[0][:1], PlanExecutor(plan, REF).run([v[:1] for v in x])[0])


@pytest.mark.skipif(_NO_TOOLS is not None, reason=str(_NO_TOOLS))
@pytest.mark.parametrize("bits,factor", [(8, 3), (4, 5), (2, 2)])
def test_channel_splits_bit_exact_on_cortex_m7(bits: int, factor: int, tmp_path: Path) -> None:
    """The consumer's accumulation has a DSP path (SMLAD, 1x1 consumers) that only runs on the
    target: the split model in QEMU against the plan's reference."""
    from tvm_mixq.codegen.firmware import build_firmware, run_firmware

    model, mixed, plan = _split_model(bits, factor, tmp_path)
    x = _inputs(mixed, samples=2, seed=7)
    expected = [PlanExecutor(plan, REF).run([v[s:s + 1] for v in x]) for s in range(2)]
    fw = build_firmware(model, "cortex-m7", [[v[s:s + 1] for s in range(2)] for v in x],
                        [[e[i] for e in expected] for i in range(len(mixed.outputs))])
    run = run_firmware(fw, len(model.layers))
    assert run.passed, run.console[-400:]


@pytest.mark.slow
@pytest.mark.parametrize("config,target", [((), 36_864), (("mixq.stream_input=1",), 18_432)])
def test_vww_patch_stages_bit_exact_and_within_the_memory_targets(config: tuple[str, ...], target: int,
                                                                   tmp_path: Path) -> None:
    """Issue 5's VWW-96 targets (input counted / streamed), met by the generated arena itself."""
    model, plan = _check(MLPERF_INT8["vww"], tmp_path, *config)
    assert model.arena_size <= target


def test_every_stage_of_the_plan_is_generated(tmp_path: Path) -> None:
    graph = read_tflite(FMNIST)
    plan = plan_memory(graph, MixqOptions.from_strings(["mixq.channel_split=off"]))
    stages = getattr(plan, "stages", [plan.patch_stage])
    model, _ = _check(FMNIST, tmp_path)
    assert len(model.stages) == len(stages)
    assert model.source.read_text().count("for (int32_t p = 0;") == len(stages)


def test_in_place_rows_only_where_the_arena_needs_them(tmp_path: Path) -> None:
    """A row-by-row layer calls its kernel once per output row: it is kept only while the arena
    needs it (no limit: only where it lowers the arena; with ``arena_limit``: to stay within it)."""
    graph = read_tflite(FMNIST)
    plan = plan_memory(graph, MixqOptions.from_strings(["mixq.channel_split=off"]))
    tight = generate_c(graph, tmp_path / "tight", plan=plan)
    whole = generate_c(graph, tmp_path / "whole", plan=plan, in_place=False)
    assert any(la.template == "rows_conv" for la in tight.layers)
    assert tight.arena_size < whole.arena_size
    below = generate_c(graph, tmp_path / "below", plan=plan, arena_limit=whole.arena_size - 8)
    assert any(la.template == "rows_conv" for la in below.layers)
    assert below.arena_size <= whole.arena_size - 8
    loose = generate_c(graph, tmp_path / "loose", plan=plan, arena_limit=whole.arena_size)
    assert not any(la.template == "rows_conv" for la in loose.layers)
    assert loose.arena_size <= whole.arena_size
    x = _inputs(graph)
    expected = Interpreter(graph, REF).run(x)[0]
    for model in (tight, loose):
        np.testing.assert_array_equal(run_host(model, x)[0], expected)
