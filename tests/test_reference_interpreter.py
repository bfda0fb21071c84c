"""The reference interpreter against TFLite's reference kernels (ai-edge-litert BUILTIN_REF).

Per-op fixtures (tests/models/ops/), the four MLPerf Tiny int8 models on random and edge inputs,
intermediate tensors, batches, and the sub-byte semantics.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from paths import MLPERF_INT8, OPS_FIXTURES
from tvm_mixq.errors import InputDataError, UnsupportedOpError
from tvm_mixq.graph import QuantParams
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.compare import EDGE_CASES, check_model, model_inputs, output_difference
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions, find_unsupported
from tvm_mixq.reference.subbyte import qrange
from tvm_mixq.reference.tflite_runner import TFLiteRunner

MANIFEST_PATH = OPS_FIXTURES / "manifest.json"


def _fixture_names() -> list[str]:
    if not MANIFEST_PATH.exists():
        return []
    return sorted(json.loads(MANIFEST_PATH.read_text())["models"])


FIXTURES = _fixture_names()


def _compare(path, samples: int, seed: int = 0) -> None:
    graph = read_tflite(path)
    interp, runner = Interpreter(graph), TFLiteRunner(path)
    for label, inputs in model_inputs(graph, samples, seed):
        exact, worst = output_difference(graph, interp.run(inputs), runner.run(inputs))
        assert exact, f"{path.name}: outputs differ on {label} (max {worst} steps)"


@pytest.mark.skipif(not FIXTURES, reason="op fixtures not generated (tests/models/ops/manifest.json missing)")
@pytest.mark.parametrize("name", FIXTURES or ["none"])
def test_op_fixture_bit_exact(name: str) -> None:
    entry = json.loads(MANIFEST_PATH.read_text())["models"][name]
    _compare(OPS_FIXTURES / entry["file"], samples=6, seed=hash(name) % 1000)


def test_fixtures_cover_every_interpreter_op() -> None:
    if not FIXTURES:
        pytest.skip("op fixtures not generated")
    from tvm_mixq.reference.interpreter import OP_PREPARERS

    manifest = json.loads(MANIFEST_PATH.read_text())["models"]
    covered = {op for entry in manifest.values() for op in entry["ops"]}
    assert set(OP_PREPARERS) <= covered, sorted(set(OP_PREPARERS) - covered)


@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_mlperf_int8_bit_exact_random_and_edge(name: str) -> None:
    _compare(MLPERF_INT8[name], samples=2, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_mlperf_int8_check_20_samples(name: str) -> None:
    result = check_model(MLPERF_INT8[name], samples=20, seed=1)
    assert result.bit_exact and result.max_abs_diff == 0, result.mismatched
    assert result.compared == 20 + len(EDGE_CASES)


@pytest.mark.slow
def test_every_fixture_check_20_samples() -> None:
    if not FIXTURES:
        pytest.skip("op fixtures not generated")
    failures = []
    for path in sorted(OPS_FIXTURES.glob("*.tflite")):
        result = check_model(path, samples=20, seed=3)
        if not (result.bit_exact and result.max_abs_diff == 0):
            failures.append((path.name, result.max_abs_diff, result.unsupported_ops))
    assert not failures


def test_fixed_point_fc_option_differs_only_by_rounding() -> None:
    """TFLM-style fixed-point FULLY_CONNECTED stays within one step of TFLite's double rounding."""
    graph = read_tflite(MLPERF_INT8["ad"])
    inputs = model_inputs(graph, 1, 0)[-1][1]
    ours = Interpreter(graph, ReferenceOptions(tflite_float_fc=False)).run_all(inputs)
    first_fc = graph.ops[0]
    theirs = Interpreter(graph).run_all(inputs)
    out = first_fc.outputs[0]
    assert np.abs(ours[out].astype(int) - theirs[out].astype(int)).max() <= 1


def test_run_all_returns_every_activation() -> None:
    graph = read_tflite(MLPERF_INT8["kws"])
    interp = Interpreter(graph)
    inputs = model_inputs(graph, 1, 0)[-1][1]
    values = interp.run_all(inputs)
    for op in graph.ops:
        for t in op.outputs:
            assert values[t].shape == tuple(graph.tensors[t].shape)
            assert values[t].dtype.name == graph.tensors[t].dtype
    np.testing.assert_array_equal(values[graph.outputs[0]], interp.run(inputs)[0])


def test_batch_axis_runs_every_sample() -> None:
    graph = read_tflite(MLPERF_INT8["ad"])
    interp = Interpreter(graph)
    sets = [s for _, s in model_inputs(graph, 3, 5)]
    batch = [np.concatenate([s[0] for s in sets], axis=0)]
    out = interp.run(batch)[0]
    assert out.shape[0] == len(sets)
    for n, s in enumerate(sets):
        np.testing.assert_array_equal(out[n:n + 1], interp.run(s)[0])
    stacked = interp.run_batch_all(batch)
    np.testing.assert_array_equal(stacked[graph.outputs[0]], out)


def test_bad_inputs_rejected() -> None:
    graph = read_tflite(MLPERF_INT8["ad"])
    interp = Interpreter(graph)
    shape = graph.tensors[graph.inputs[0]].shape
    with pytest.raises(InputDataError, match="dtype int8"):
        interp.run([np.zeros(shape, np.float32)])
    with pytest.raises(InputDataError, match="shape"):
        interp.run([np.zeros((1, 3), np.int8)])
    with pytest.raises(InputDataError, match="inputs"):
        interp.run([])


def test_unsupported_fused_activation_named() -> None:
    graph = read_tflite(OPS_FIXTURES / "conv2d_1x1_relu6.tflite")
    graph.ops[0].attrs.activation = "TANH"
    problems = find_unsupported(graph)
    assert problems and problems[0].startswith("CONV_2D at index 0")
    with pytest.raises(UnsupportedOpError, match="CONV_2D at index 0"):
        Interpreter(graph)


# ---------------------------------------------------------------------------------------------
# Sub-byte semantics.


def _conv_graph_with_bits(out_bits: int, signed: bool, w_bits: int = 8):
    graph = read_tflite(OPS_FIXTURES / "conv2d_3x3_same_s1_relu.tflite")
    graph = copy.deepcopy(graph)
    op = graph.ops[0]
    out = graph.tensors[op.outputs[0]]
    out.bits, out.signed = out_bits, signed
    if not signed:
        out.quant = QuantParams(np.array([out.quant.scale[0] * 2], np.float32), np.array([0], np.int64))
    w = graph.tensors[op.inputs[1]]
    if w_bits < 8:
        lo, hi = qrange(w_bits, True)
        w.data = np.clip(np.round(w.data.astype(np.float64) / 128 * hi), lo, hi).astype(np.int8)
        w.bits = w_bits
    return graph


@pytest.mark.parametrize("out_bits,signed", [(4, False), (2, False), (4, True), (2, True)])
def test_sub_byte_output_clamped_to_its_range(out_bits: int, signed: bool) -> None:
    graph = _conv_graph_with_bits(out_bits, signed)
    interp = Interpreter(graph)
    lo, hi = qrange(out_bits, signed)
    rng = np.random.default_rng(0)
    x_t = graph.tensors[graph.inputs[0]]
    seen = set()
    for _ in range(4):
        x = rng.integers(-128, 128, x_t.shape).astype(np.int8)
        y = interp.run([x])[0].astype(int)
        assert y.min() >= lo and y.max() <= hi
        seen |= set(np.unique(y).tolist())
    assert hi in seen  # the clamp is reached, so it is really exercised


def test_sub_byte_matches_int8_where_in_range() -> None:
    """A 4-bit signed output equals the int8 result clamped to [-8, 7] (same scale and zero point)."""
    base = read_tflite(OPS_FIXTURES / "conv2d_3x3_same_s1_relu.tflite")
    sub = copy.deepcopy(base)
    sub.tensors[sub.ops[0].outputs[0]].bits = 4
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, base.tensors[base.inputs[0]].shape).astype(np.int8)
    full = Interpreter(base).run([x])[0].astype(int)
    low = Interpreter(sub).run([x])[0].astype(int)
    np.testing.assert_array_equal(low, np.clip(full, -8, 7))


def test_sub_byte_weights_checked_and_used() -> None:
    graph = _conv_graph_with_bits(8, True, w_bits=2)
    x = np.ones(graph.tensors[graph.inputs[0]].shape, np.int8)
    assert Interpreter(graph).run([x])[0].shape == tuple(graph.tensors[graph.outputs[0]].shape)
    w = graph.tensors[graph.ops[0].inputs[1]]
    w.data = w.data.copy()
    w.data.flat[0] = 5  # outside the 2-bit range
    with pytest.raises(UnsupportedOpError, match="2-bit range"):
        Interpreter(graph)


def test_sub_byte_avg_pool_requantizes_to_another_scale() -> None:
    graph = copy.deepcopy(read_tflite(OPS_FIXTURES / "avgpool_2x2_s2_valid.tflite"))
    x_t = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.ops[0].outputs[0]]
    out.bits, out.signed = 4, False
    s_in, z_in = float(x_t.quant.scale[0]), int(x_t.quant.zero_point[0])
    out.quant = QuantParams(np.array([s_in * 16], np.float32), np.array([8], np.int64))
    x = np.random.default_rng(2).integers(-128, 128, x_t.shape).astype(np.int8)
    y = Interpreter(graph).run([x])[0].astype(float)
    pooled = x.astype(float).reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, -1).mean(axis=(2, 4))
    expected = np.clip(np.round((pooled - z_in) / 16) + 8, 0, 15)
    assert np.abs(y - expected).max() <= 1
    assert y.min() >= 0 and y.max() <= 15
