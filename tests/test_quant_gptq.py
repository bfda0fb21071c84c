"""Hessian-aware rounding of sub-byte weights (tvm_mixq.quant.gptq) and the statistics it needs."""
import numpy as np
import pytest

from paths import MODELS
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.execute import BatchRunner, run_all
from tvm_mixq.quant.gptq import accumulate_hessian, layer_patches, new_hessian, quantize_rows, rows_per_batch
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.requantize import activation_quant, activation_shift, quantize_weights
from tvm_mixq.quant.vdqs import build_graphs, uniform_assignment
from tvm_mixq.reader import read_tflite

FMNIST = MODELS / "fmnist_dsconv_int8.tflite"


@pytest.fixture(scope="module")
def fmnist():
    g = read_tflite(FMNIST)
    x = np.load(MODELS / "fmnist_calib.npz")["input_0"][:48]
    return g, x, calibrate(g, x)


def _correlated(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    return np.maximum(0.0, 0.8 * base + 0.6 * rng.normal(size=(n, k)))  # ReLU-like, correlated


@pytest.mark.parametrize("bits", [4, 2])
def test_error_feedback_beats_nearest_rounding_on_the_output(bits):
    x = _correlated(4000, 24)
    w = np.random.default_rng(1).normal(size=(16, 24))
    bias = np.random.default_rng(2).normal(size=16)
    aug = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    h = aug.T @ aug / len(x)
    q, scale, new_bias = quantize_rows(w, bias, h, bits, correct_bias=True)
    qmax = (1 << (bits - 1)) - 1
    assert q.dtype == np.int8 and np.abs(q).max() <= qmax
    y = x @ w.T + bias
    err_gptq = np.mean((x @ (q * scale[:, None]).T + new_bias - y) ** 2)
    qn, sn = quantize_weights(w, bits, 0)
    err_near = np.mean((x @ (qn * sn[:, None].astype(np.float64)).T + bias - y) ** 2)
    assert err_gptq < 0.8 * err_near
    # without the bias column the bias is left alone, and the error is still lower than nearest
    q2, s2, b2 = quantize_rows(w, bias, h, bits, correct_bias=False)
    assert np.array_equal(b2, bias)
    assert np.mean((x @ (q2 * s2[:, None]).T + bias - y) ** 2) < err_near


def test_scales_never_finer_than_the_floor():
    x = _correlated(500, 8)
    w = np.random.default_rng(3).normal(size=(4, 8)) * 1e-3
    aug = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    floor = np.full(4, 0.01)
    _, scale, _ = quantize_rows(w, np.zeros(4), aug.T @ aug, 4, min_scale=floor)
    assert (scale >= floor - 1e-12).all()


@pytest.mark.parametrize("op_index", [0, 1, 3])  # 3x3 SAME conv, stride-2 depthwise, stride-1 depthwise
def test_receptive_fields_reproduce_the_reference(fmnist, op_index):
    """Patches @ real weights + bias, requantized, equals the interpreter's int8 output (+-1 LSB)."""
    g, x, _ = fmnist
    op = g.ops[op_index]
    values = run_all(g, x[:4])
    xt, wt, bt, yt = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    s_in, zp_in = xt.quant.scalar()
    real_x = s_in * (values[xt.index].astype(np.float64) - zp_in)
    p = layer_patches(g, op, real_x, max_rows=10 ** 9)
    axis = 3 if op.kind == "DEPTHWISE_CONV_2D" else 0
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    w_real = wt.data.astype(np.float64) * np.asarray(wt.quant.scale, np.float64).reshape(shape)
    b_real = bt.data.astype(np.float64) * s_in * np.asarray(wt.quant.scale, np.float64)
    if op.kind == "DEPTHWISE_CONV_2D":
        acc = np.einsum("rkc,kc->rc", p, w_real.reshape(-1, w_real.shape[3])) + b_real
    else:
        acc = p @ w_real.reshape(w_real.shape[0], -1).T + b_real
    s_out, zp_out = yt.quant.scalar()
    q = np.clip(np.round(acc / s_out) + zp_out, -128, 127)
    q = np.clip(q, zp_out, zp_out + round(6.0 / s_out))  # RELU6
    got = values[yt.index].reshape(-1, yt.shape[-1])
    assert np.abs(q - got).max() <= 1
    assert np.mean(q == got) > 0.97


def test_calibration_collects_hessians_and_channel_histograms(fmnist):
    g, x, calib = fmnist
    weighted = [op for op in g.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert set(calib.hessians) == {op.index for op in weighted}
    op = g.ops[2]  # 1x1 conv, 16x16 output, 48 samples
    h = calib.hessians[op.index]
    assert h.count == min(48 * 16 * 16, rows_per_batch(16, 64, 48))  # one batch of 48, subsampled
    assert np.allclose(h.matrix, h.matrix.T) and h.matrix[-1, -1] == h.count
    xtx, rows = accumulate_hessian(g, op, np.ones((1, 16, 16, 16)))
    assert rows == 256 and np.allclose(xtx, 256.0)
    dw = new_hessian(g, g.ops[1])
    assert dw.matrix.shape == (16, 10, 10)
    xr = np.random.default_rng(4).random((2, 32, 32, 16))
    xtx, rows = accumulate_hessian(g, g.ops[1], xr, max_rows=10 ** 9)
    p = layer_patches(g, g.ops[1], xr, max_rows=10 ** 9)
    aug = np.concatenate([p, np.ones((rows, 1, 16))], axis=1)
    assert rows == 2 * 16 * 16 and np.allclose(xtx, np.einsum("rkc,rlc->ckl", aug, aug))
    sub = layer_patches(g, g.ops[1], xr, max_rows=100)
    assert sub.shape == (100, 9, 16) and all(any(np.array_equal(r, q) for q in p) for r in sub[:5])
    for t, s in calib.tensors.items():
        if s.channel_hist is not None:
            assert np.array_equal(s.channel_hist.sum(axis=0), s.hist)
    assert calib.inputs is not None and calib.inputs.shape[0] == 48


def test_activation_shift_is_the_mean_requantization_error(fmnist):
    g, x, calib = fmnist
    t = 29
    s = calib.tensors[t]
    qp = activation_quant(s.hist, s.scale, s.zero_point, 4)
    shift = activation_shift(s.channel_hist, s.scale, s.zero_point, qp, 4)
    v = run_all(g, x)[t].astype(np.float64).reshape(-1, g.tensors[t].shape[-1])
    real = s.scale * (v - s.zero_point)
    s4, zp4 = qp.scalar()
    back = s4 * (np.clip(np.round(real / s4) + zp4, 0, 15) - zp4)
    assert np.allclose(shift, (back - real).mean(axis=0))


def test_hessian_rounding_keeps_the_weight_format_and_helps_accuracy(fmnist):
    g, x, calib = fmnist
    a = uniform_assignment(g, calib, 4, activations=False)
    hess, _ = build_graphs(g, a, calib, weight_rounding="hessian")
    near, _ = build_graphs(g, a, calib, weight_rounding="nearest")
    for op in g.ops:
        if op.index in a.weight_bits:
            w = hess.tensors[op.inputs[1]]
            assert w.bits == 4 and w.signed and np.abs(w.data).max() <= 7
            assert w.quant.per_channel and not np.any(w.quant.zero_point)
            assert (w.quant.scale >= g.tensors[op.inputs[1]].quant.scale - 1e-12).all()
    # outputs closer to int8 on calibration samples the rounding did not see
    held_out = np.load(MODELS / "fmnist_calib.npz")["input_0"][100:200]
    ref = BatchRunner(g).run(held_out)[0].astype(np.float64)
    err_h = np.abs(BatchRunner(hess).run(held_out)[0] - ref).mean()
    err_n = np.abs(BatchRunner(near).run(held_out)[0] - ref).mean()
    assert err_h < err_n
    with pytest.raises(Exception, match="weight rounding"):
        build_graphs(g, a, calib, weight_rounding="stochastic")


def test_all_8bit_is_still_bit_exact_with_hessians(fmnist):
    g, x, calib = fmnist
    normal, _ = build_graphs(g, PrecisionAssignment(), calib)
    assert np.array_equal(BatchRunner(normal).run(x[:8])[0], BatchRunner(g).run(x[:8])[0])
