"""Applying a precision assignment: bit-exact int8, sub-byte ranges, weights, biases, patch plans."""
import numpy as np
import pytest

from paths import MLPERF_FLOAT, MLPERF_INT8, MODELS
from tvm_mixq.errors import MixqError
from tvm_mixq.plan import TensorPrecision
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.execute import BatchRunner, PlanRunner, run_all
from tvm_mixq.quant.float_weights import float_weights_for
from tvm_mixq.quant.precision import PrecisionAssignment, write_to_plan
from tvm_mixq.quant.requantize import activation_quant, apply_assignment, quantize_weights
from tvm_mixq.quant.vdqs import build_graphs, candidate_tensors, candidate_weight_ops, uniform_assignment
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.subbyte import qrange
from tvm_mixq.schedule.search import plan_memory


@pytest.fixture(scope="module")
def kws():
    g = read_tflite(MLPERF_INT8["kws"])
    return g, calibrate(g, None)


@pytest.fixture(scope="module")
def resnet():
    g = read_tflite(MLPERF_INT8["resnet"])
    plan = plan_memory(g, {"mixq.patch_grid": "2x2"})
    return g, plan, calibrate(g, None, plan)


def _samples(graph, n, seed=0):
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + tuple(shape)).astype(np.int8)


def test_all_8bit_assignment_is_bit_exact(kws):
    g, calib = kws
    a = PrecisionAssignment({t: 8 for t in candidate_tensors(g, calib)}, {o: 8 for o in candidate_weight_ops(g)})
    normal, outlier = build_graphs(g, a, calib)
    assert outlier is None
    x = _samples(g, 6)
    assert np.array_equal(BatchRunner(normal).run(x)[0], BatchRunner(g).run(x)[0])
    for t_new, t_old in zip(normal.tensors, g.tensors):
        assert t_new.bits == t_old.bits and t_new.quant is t_old.quant


def test_input_graph_is_not_modified(kws):
    g, calib = kws
    before = [(t.bits, t.quant, None if t.data is None else t.data.copy()) for t in g.tensors]
    build_graphs(g, uniform_assignment(g, calib, 4), calib)
    for (bits, quant, data), t in zip(before, g.tensors):
        assert t.bits == bits and t.quant is quant
        assert (data is None) == (t.data is None) and (data is None or np.array_equal(data, t.data))


@pytest.mark.parametrize("bits", [4, 2])
def test_subbyte_values_stay_in_range(kws, bits):
    g, calib = kws
    a = uniform_assignment(g, calib, bits)
    normal, _ = build_graphs(g, a, calib)
    values = run_all(normal, _samples(g, 4))
    lo, hi = qrange(bits, False)
    for t in a.act_bits:
        assert normal.tensors[t].bits == bits and not normal.tensors[t].signed
        assert values[t].min() >= lo and values[t].max() <= hi
    wlo, whi = -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    for o in a.weight_bits:
        w = normal.tensors[normal.ops[o].inputs[1]]
        assert w.bits == bits and w.signed and w.data.min() >= wlo and w.data.max() <= whi
        assert np.all(w.quant.zero_point == 0)


def test_w8a4_mostly_agrees_with_int8(kws):
    g, calib = kws
    x = calib_inputs = None  # noqa: F841 - the fallback inputs are what calibration saw
    from tvm_mixq.quant.calibration import fallback_inputs

    x = fallback_inputs(g)
    a = uniform_assignment(g, calib, 4, weights=False)
    normal, _ = build_graphs(g, a, calib)
    ref = BatchRunner(g).run(x)[0].argmax(-1)
    low = BatchRunner(normal).run(x)[0].argmax(-1)
    assert (ref == low).mean() >= 0.7


def test_activation_quant_keeps_zero_exact():
    hist = np.zeros(256)
    hist[128 + 0: 128 + 100] = 1.0  # int8 values 0..99, zero point -20 => reals from 20*s
    qp = activation_quant(hist, 0.1, -20, 4)
    s, zp = qp.scalar()
    assert 0 <= zp <= 15 and s > 0
    hist2 = np.zeros(256)
    hist2[128 - 50: 128 + 50] = 1.0  # symmetric around zero point 0
    s2, zp2 = activation_quant(hist2, 0.1, 0, 4).scalar()
    assert 5 <= zp2 <= 10  # zero in the middle of the 4-bit range
    assert activation_quant(hist2, 0.1, 0, 8).scalar() == pytest.approx((0.1, 0))


def test_quantize_weights_per_channel_symmetric():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 2)) * np.array([1, 10, 0.1, 0])[:, None, None, None]
    q, s = quantize_weights(w, 4, 0)
    assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7 and s.shape == (4,)
    err = np.abs(q * s[:, None, None, None] - w).max(axis=(1, 2, 3))
    assert np.all(err[:3] <= np.abs(w).max(axis=(1, 2, 3))[:3] * 0.3)
    q2, _ = quantize_weights(w, 2, 0)
    assert set(np.unique(q2)) <= {-1, 0, 1}
    _, s3 = quantize_weights(w, 4, 0, min_scale=np.full(4, 5.0))
    assert np.all(s3 >= 5.0)


def test_bias_follows_new_scales(kws):
    g, calib = kws
    op = g.ops[2]  # 1x1 conv after a depthwise
    a = PrecisionAssignment({op.inputs[0]: 4}, {op.index: 4})
    normal, _ = build_graphs(g, a, calib)
    old_b, new_b = g.tensors[op.inputs[2]], normal.tensors[op.inputs[2]]
    s_in_old = g.tensors[op.inputs[0]].quant.scale[0]
    s_in_new = normal.tensors[op.inputs[0]].quant.scale[0]
    s_w_old = np.broadcast_to(g.tensors[op.inputs[1]].quant.scale, (old_b.shape[0],))
    s_w_new = normal.tensors[op.inputs[1]].quant.scale
    real_old = old_b.data * s_in_old * s_w_old
    real_new = new_b.data * s_in_new.astype(np.float64) * s_w_new
    assert np.allclose(real_old, real_new, atol=float(s_in_new * s_w_new.max()))


def test_bad_assignments_refused(kws):
    g, calib = kws
    with pytest.raises(MixqError, match="without calibrated"):
        apply_assignment(g, PrecisionAssignment({22: 4}), {})
    with pytest.raises(MixqError, match="not a conv"):
        apply_assignment(g, PrecisionAssignment({}, {9: 4}), {})
    with pytest.raises(MixqError, match="not an activation"):
        apply_assignment(g, PrecisionAssignment({1: 4}), {})
    with pytest.raises(MixqError, match="bitwidth 3"):
        PrecisionAssignment({22: 3})


def test_float_weights_match_and_requantize(kws):
    g, calib = kws
    fw = float_weights_for(g, MLPERF_FLOAT["kws"])
    assert set(fw) == set(candidate_weight_ops(g))
    a = PrecisionAssignment({}, {o: 4 for o in fw})
    normal, _ = build_graphs(g, a, calib, fw)
    x = _samples(g, 4)
    assert BatchRunner(normal).run(x)[0].shape == (4, 12)
    with pytest.raises(MixqError, match="weighted ops"):
        float_weights_for(g, MLPERF_FLOAT["ad"])


def test_plan_with_outlier_patches_all_8bit_is_bit_exact(resnet):
    g, plan, calib = resnet
    stage = plan.patch_stage
    inner = sorted({t for p in stage.patches for t in p.tensor_tiles} - {stage.input_tensor, stage.split_tensor})
    # inner stage tensors at 4 bits for normal patches, every patch an outlier: int8 numerics again
    a = PrecisionAssignment({t: 4 for t in inner if t in candidate_tensors(g, calib)}, {},
                            [p.index for p in stage.patches], inner)
    assert a.act_bits
    normal, outlier = build_graphs(g, a, calib)
    x = _samples(g, 3)
    got = PlanRunner(normal, outlier, plan, a.outlier_patches).run(x)[0]
    assert np.array_equal(got, BatchRunner(g).run(x)[0])
    # one outlier patch: its tile of the stage output is the int8 one, the others the 4-bit one
    one = PrecisionAssignment(dict(a.act_bits), {}, [1], inner)
    n1, o1 = build_graphs(g, one, calib)
    runner = PlanRunner(n1, o1, plan, [1])
    vals_n, vals_o = run_all(n1, x), run_all(o1, x)
    split = stage.split_tensor
    tile = stage.patches[1].output
    sl = (slice(None), slice(tile.h.start, tile.h.stop), slice(tile.w.start, tile.w.stop))
    assert np.array_equal(vals_o[split][sl], run_all(g, x)[split][sl])
    assert not np.array_equal(vals_n[split], vals_o[split])
    out = runner.run(x)[0]
    assert out.shape == (3, 10)


def test_write_to_plan(resnet):
    g, plan, calib = resnet
    stage = plan.patch_stage
    t = stage.split_tensor
    a = PrecisionAssignment({t: 4}, {}, [0], [t])
    saved = dict(plan.precision)
    try:
        write_to_plan(plan, a)
        assert plan.precision[t] == TensorPrecision(t, 4, False)
        assert stage.patches[0].bits == {t: 8} and stage.patches[1].bits == {}
    finally:
        plan.precision.clear()
        plan.precision.update(saved)
        for p in stage.patches:
            p.bits = {}


@pytest.mark.skipif(not (MODELS / "fmnist_dsconv_int8.tflite").exists(), reason="Fashion-MNIST model not built")
def test_fmnist_w4a4_agrees_mostly():
    from tvm_mixq.datasets import fashion_mnist_available, load_fashion_mnist, preprocess

    if not fashion_mnist_available():
        pytest.skip("dataset-fashion-mnist is not installed")
    g = read_tflite(MODELS / "fmnist_dsconv_int8.tflite")
    calib = calibrate(g, np.load(MODELS / "fmnist_calib.npz")["input_0"])
    s, zp = g.tensors[g.inputs[0]].quant.scalar()
    images, _ = load_fashion_mnist("test")
    x = preprocess(images[:300], s, zp)
    normal, _ = build_graphs(g, uniform_assignment(g, calib, 4), calib)
    ref = BatchRunner(g).run(x)[0].argmax(-1)
    low = BatchRunner(normal).run(x)[0].argmax(-1)
    assert (ref == low).mean() >= 0.8


def test_bias_correction_removes_the_mean_shift(kws):
    g, calib = kws
    op = g.ops[2]  # 1x1 conv
    a = PrecisionAssignment({}, {op.index: 2})
    plain, _ = build_graphs(g, a, calib, weight_rounding="nearest")
    corrected, _ = build_graphs(g, a, calib, bias_correction=True, weight_rounding="nearest")
    w8 = g.tensors[op.inputs[1]]
    w2 = plain.tensors[op.inputs[1]]
    real8 = w8.data.astype(np.float64) * w8.quant.scale.reshape(-1, 1, 1, 1)
    real2 = w2.data.astype(np.float64) * w2.quant.scale.reshape(-1, 1, 1, 1)
    mean = calib.tensors[op.inputs[0]].channel_mean
    expected_shift = (real8 - real2).sum(axis=(1, 2)) @ mean
    s_acc = g.tensors[op.inputs[0]].quant.scale[0] * w2.quant.scale.astype(np.float64)
    got_shift = (corrected.tensors[op.inputs[2]].data - plain.tensors[op.inputs[2]].data) * s_acc
    assert np.allclose(got_shift, expected_shift, atol=float(s_acc.max()))
    # ops whose weights stay 8-bit keep their bias
    other = g.ops[4]
    assert np.array_equal(corrected.tensors[other.inputs[2]].data, g.tensors[other.inputs[2]].data)


def test_channel_means(kws):
    g, calib = kws
    x = np.random.default_rng(2).integers(-128, 128, (4, 49, 10, 1)).astype(np.int8)
    c = calibrate(g, x)
    values = run_all(g, x)
    for t in (22, 23, 30):
        s = c.tensors[t]
        real = s.scale * (values[t].astype(np.float64) - s.zero_point)
        assert np.allclose(s.channel_mean, real.reshape(-1, real.shape[-1]).mean(axis=0))
