"""Calibration: input validation, the synthetic fallback, tensor and patch statistics."""
import logging

import numpy as np
import pytest

from paths import MLPERF_INT8
from tvm_mixq.errors import InputDataError, MixqError
from tvm_mixq.quant.calibration import (
    FALLBACK_SAMPLES,
    TensorStats,
    calibrate,
    entropy_bits,
    fallback_inputs,
    load_calibration_data,
    validate_inputs,
)
from tvm_mixq.quant.execute import BatchRunner, run_all
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter
from tvm_mixq.schedule.search import plan_memory


@pytest.fixture(scope="module")
def kws():
    return read_tflite(MLPERF_INT8["kws"])


def _samples(graph, n, seed=0):
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + tuple(shape)).astype(np.int8)


def test_shape_mismatch_names_both(kws, tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, input_0=np.zeros((4, 10, 49, 1), np.int8))
    with pytest.raises(InputDataError, match=r"\(4, 10, 49, 1\).*\(1, 49, 10, 1\)"):
        load_calibration_data(kws, path)


def test_dtype_mismatch_names_both(kws):
    with pytest.raises(InputDataError, match="uint8.*int8"):
        validate_inputs(kws, np.zeros((2, 49, 10, 1), np.uint8))


def test_nan_refused(kws):
    data = np.zeros((2, 49, 10, 1), np.float32)
    data[1, 3, 3, 0] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        validate_inputs(kws, data)


def test_empty_refused(kws):
    with pytest.raises(InputDataError, match="empty"):
        validate_inputs(kws, np.zeros((0, 49, 10, 1), np.int8))


def test_missing_array_refused(kws, tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, images=np.zeros((2, 49, 10, 1), np.int8))
    with pytest.raises(MixqError, match="input_0"):
        load_calibration_data(kws, path)


def test_single_sample_without_batch_axis(kws):
    assert validate_inputs(kws, np.zeros((49, 10, 1), np.int8)).shape == (1, 49, 10, 1)


def test_fallback_warns_and_is_deterministic(kws, caplog):
    with caplog.at_level(logging.WARNING):
        a = fallback_inputs(kws)
    assert "no calibration data" in caplog.text
    b = fallback_inputs(kws)
    assert a.shape == (FALLBACK_SAMPLES, 49, 10, 1) and a.dtype == np.int8
    assert np.array_equal(a, b)
    assert a.min() >= -128 and a.max() <= 127 and a.std() > 10


def test_batched_run_equals_single_sample_interpreter(kws):
    x = _samples(kws, 5)
    batched = BatchRunner(kws).run(x, batch=3)[0]
    single = Interpreter(kws).run([x])[0]
    assert np.array_equal(batched, single)


def test_tensor_stats_match_numpy(kws):
    x = _samples(kws, 6, seed=3)
    calib = calibrate(kws, x, batch=4)
    values = run_all(kws, x)
    for t, s in calib.tensors.items():
        v = values[t].astype(np.int64)
        real = s.scale * (v - s.zero_point)
        assert s.count == v.size
        assert s.hist.sum() == v.size
        assert s.qmin == v.min() and s.qmax == v.max()
        assert s.mean == pytest.approx(real.mean(), rel=1e-9, abs=1e-9)
        assert s.std == pytest.approx(real.std(), rel=1e-9, abs=1e-9)
        _, counts = np.unique(v, return_counts=True)
        assert s.entropy == pytest.approx(entropy_bits(counts))


def test_entropy_bits():
    assert entropy_bits(np.array([1, 1, 1, 1])) == pytest.approx(2.0)
    assert entropy_bits(np.array([5, 0, 0])) == 0.0
    s = TensorStats(0, "t", 0.5, 0)
    s.add(np.array([-2, 0, 2, 4]))
    assert s.percentile_q(50) in (0, 2)
    assert s.real_to_q(1.0) == pytest.approx(2.0)


def test_patch_stats_follow_the_plan_grid(kws):
    plan = plan_memory(kws, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "3"})
    x = _samples(kws, 3, seed=5)
    calib = calibrate(kws, x, plan)
    values = run_all(kws, x)
    assert len(calib.patches) == 4
    for patch, ps in zip(plan.patch_stage.patches, calib.patches):
        for t, tile in patch.tensor_tiles.items():
            v = values[t][:, tile.h.start:tile.h.stop, tile.w.start:tile.w.stop, :]
            assert ps.qmax[t] == list(v.reshape(3, -1).max(axis=1))
            assert ps.qmin[t] == list(v.reshape(3, -1).min(axis=1))


def test_fallback_inputs_for_a_float_input_model() -> None:
    """A float-input model (QUANTIZE first) gets float inputs spanning its quantized range."""
    from paths import OPS_FIXTURES
    from tvm_mixq.quant.calibration import fallback_inputs
    from tvm_mixq.reader import read_tflite

    graph = read_tflite(OPS_FIXTURES / "conv2d_3x3_float_io.tflite")
    x = fallback_inputs(graph, samples=4)
    t = graph.tensors[graph.inputs[0]]
    assert x.dtype == np.float32 and x.shape == (4,) + tuple(t.shape[1:])
    quant = next(op for op in graph.ops if op.kind == "QUANTIZE")
    scale, zp = graph.tensors[quant.outputs[0]].quant.scalar()
    assert x.min() >= scale * (-128 - zp) - 1e-6 and x.max() <= scale * (127 - zp) + 1e-6
    assert x.max() - x.min() > 0.5 * scale * 255


def _two_input_samples(graph, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (n,) + tuple(graph.tensors[i].shape[1:])).astype(np.int8) for i in graph.inputs]


def test_two_input_model_calibrates_every_input():
    from model_builder import two_input_graph

    g = two_input_graph()
    x = _two_input_samples(g, 5)
    cal = calibrate(g, x)
    assert cal.samples == 5 and len(cal.inputs) == 5
    expected = Interpreter(g).run_all([a[:1] for a in x])
    # the statistics cover both inputs and the tensors computed from them
    for t in (0, 1, 2, 5):
        assert cal.tensors[t].count == 5 * int(np.prod(g.tensors[t].shape))
    first = run_all(g, cal.inputs[:1])
    for t in (2, 5, 8):
        np.testing.assert_array_equal(first[t], expected[t])


def test_two_input_npz_needs_every_input(tmp_path):
    from model_builder import two_input_graph

    g = two_input_graph()
    x = _two_input_samples(g, 3)
    path = tmp_path / "c.npz"
    np.savez(path, input_0=x[0])
    with pytest.raises(InputDataError, match="input_1"):
        load_calibration_data(g, path)
    np.savez(path, input_0=x[0], input_1=x[1][:2])
    with pytest.raises(InputDataError, match="different numbers of samples"):
        load_calibration_data(g, path)
    np.savez(path, input_0=x[0], input_1=x[1])
    data = load_calibration_data(g, path)
    np.testing.assert_array_equal(data.arrays[1], x[1])
    with pytest.raises(InputDataError, match="2 inputs"):
        validate_inputs(g, x[0])


def test_two_input_fallback_is_synthetic_for_each_input():
    from model_builder import two_input_graph

    g = two_input_graph()
    data = fallback_inputs(g, samples=4)
    assert [a.shape for a in data.arrays] == [(4, 8, 8, 8), (4, 8, 8, 8)]
    assert not np.array_equal(data.arrays[0], data.arrays[1])
