"""Unit tests of tvm_mixq.reference.ops against slow direct formulas on tiny shapes."""
from __future__ import annotations

import numpy as np
import pytest

from tvm_mixq.reference import ops
from tvm_mixq.reference.fixedpoint import multiply_by_quantized_multiplier, quantize_multipliers
from tvm_mixq.reference.subbyte import qrange


def _direct_conv_acc(x, x_zp, w, stride, padding, dilation):
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    top, bottom, left, right = padding
    oh = (h + top + bottom - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (wd + left + right - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    acc = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(cout):
                    s = 0
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - top + ky * dilation[0]
                            ix = ox * stride[1] - left + kx * dilation[1]
                            if 0 <= iy < h and 0 <= ix < wd:
                                for ic in range(cin):
                                    s += (int(x[b, iy, ix, ic]) - x_zp) * int(w[oc, ky, kx, ic])
                    acc[b, oy, ox, oc] = s
    return acc


@pytest.mark.parametrize("stride,padding,dilation", [
    ((1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 2), (0, 1, 0, 1), (1, 1)),
    ((1, 2), (0, 0, 0, 0), (2, 1)),
    ((2, 1), (2, 2, 1, 1), (2, 2)),
])
def test_conv2d_matches_direct_formula(stride, padding, dilation):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 7, 6, 3))
    w = rng.integers(-127, 128, (4, 3, 3, 3))
    bias = rng.integers(-1000, 1000, 4)
    mult, shift = quantize_multipliers(rng.uniform(0.001, 0.01, 4))
    got = ops.conv2d(x, -5, w, bias, stride, padding, dilation, mult, shift, 3, -128, 127)
    acc = _direct_conv_acc(x, -5, w, stride, padding, dilation) + bias
    want = np.clip(multiply_by_quantized_multiplier(acc, mult, shift) + 3, -128, 127)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dm", [1, 2])
def test_depthwise_matches_direct_formula(dm):
    rng = np.random.default_rng(2)
    cin = 3
    x = rng.integers(-128, 128, (1, 6, 5, cin))
    w = rng.integers(-127, 128, (1, 3, 3, cin * dm))
    mult, shift = quantize_multipliers(rng.uniform(0.001, 0.01, cin * dm))
    padding = (1, 1, 1, 1)
    got = ops.depthwise_conv2d(x, 7, w, None, (2, 1), padding, (1, 1), dm, mult, shift, -2, -128, 127)
    # A depthwise conv is a grouped conv: build the equivalent dense weights.
    dense = np.zeros((cin * dm, 3, 3, cin), dtype=np.int64)
    for oc in range(cin * dm):
        dense[oc, :, :, oc // dm] = w[0, :, :, oc]
    acc = _direct_conv_acc(x, 7, dense, (2, 1), padding, (1, 1))
    want = np.clip(multiply_by_quantized_multiplier(acc, mult, shift) - 2, -128, 127)
    np.testing.assert_array_equal(got, want)


def test_fully_connected_matches_formula():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (3, 10))
    w = rng.integers(-127, 128, (5, 10))
    bias = rng.integers(-100, 100, 5)
    got = ops.fully_connected(x, 4, w, bias, 1 << 30, -6, 1, -128, 127)
    acc = (x - 4) @ w.T + bias
    want = np.clip(multiply_by_quantized_multiplier(acc, 1 << 30, -6) + 1, -128, 127)
    np.testing.assert_array_equal(got, want)


def test_sub_byte_clamp_intersects_activation_range():
    lo, hi = ops.activation_range("RELU6", 0.05, -3, "int8", bits=4, signed=False)
    assert (lo, hi) == (max(0, -3), min(15, -3 + 120))
    lo, hi = ops.activation_range("NONE", 0.05, 0, "int8", bits=2, signed=True)
    assert (lo, hi) == qrange(2, True)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 16, (1, 4, 4, 2))
    w = rng.integers(-8, 8, (3, 1, 1, 2))
    out = ops.conv2d(x, 0, w, None, (1, 1), (0, 0, 0, 0), (1, 1), [1 << 30] * 3, [0] * 3, 0, 0, 15)
    assert out.min() >= 0 and out.max() <= 15


def test_activation_range_relu_relu6():
    assert ops.activation_range("RELU", 0.1, -128) == (-128, 127)
    assert ops.activation_range("RELU", 0.1, 10) == (10, 127)
    assert ops.activation_range("RELU6", 0.1, -100) == (-100, -40)


def test_same_padding_like_tflite():
    (oh, ow), pad = ops.compute_padding((96, 96), (3, 3), (2, 2), (1, 1), "SAME")
    assert (oh, ow) == (48, 48) and pad == (0, 1, 0, 1)
    (oh, ow), pad = ops.compute_padding((5, 5), (3, 3), (1, 1), (2, 2), "SAME")
    assert (oh, ow) == (5, 5) and pad == (2, 2, 2, 2)
    (oh, ow), pad = ops.compute_padding((7, 7), (3, 3), (2, 2), (1, 1), "VALID")
    assert (oh, ow) == (3, 3) and pad == (0, 0, 0, 0)


def test_avg_pool_counts_valid_elements_and_rounds_away():
    x = np.array([[1, 2], [4, -8]]).reshape(1, 2, 2, 1)
    out = ops.avg_pool(x, (2, 2), (1, 1), (0, 1, 0, 1), -128, 127)
    # windows: {1,2,4,-8} sum -1 -> -0.25 -> 0; {2,-8} -> -3; {4,-8} -> -2; {-8} -> -8
    np.testing.assert_array_equal(out.ravel(), [0, -3, -2, -8])
    x = np.array([1, 2, 3, 4, 5, -5]).reshape(1, 1, 6, 1)
    out = ops.avg_pool(x, (1, 2), (1, 2), (0, 0, 0, 0), -128, 127)
    np.testing.assert_array_equal(out.ravel(), [2, 4, 0])  # 1.5 -> 2, 3.5 -> 4, 0 -> 0
    x = np.array([-1, -2]).reshape(1, 1, 2, 1)
    assert ops.avg_pool(x, (1, 2), (1, 1), (0, 0, 0, 0), -128, 127).item() == -2  # -1.5 -> -2


def test_max_pool_ignores_padding():
    x = -np.arange(1, 5).reshape(1, 2, 2, 1) - 100
    out = ops.max_pool(x, (3, 3), (1, 1), (1, 1, 1, 1), -128, 127)
    assert (out == -101).all()


def test_add_params_and_add():
    p = ops.add_params(0.05, 0.1, 0.12)
    x1 = np.arange(-128, 128).reshape(16, 16)
    x2 = x1.T
    out = ops.add(x1, -3, p.x1_mult, p.x1_shift, x2, 5, p.x2_mult, p.x2_shift, p.out_mult, p.out_shift, 2,
                  -128, 127)
    real = 0.05 * (x1 + 3) + 0.1 * (x2 - 5)
    approx = np.clip(np.round(real / 0.12) + 2, -128, 127)
    assert np.abs(out - approx).max() <= 1


def test_fully_connected_double_requantization_rounds_half_away():
    x = np.array([[1, 1]])
    w = np.array([[1, 2]])
    # acc = 3 (x_zp 0), real multiplier 0.5 -> 1.5 -> 2; -3 * 0.5 = -1.5 -> -2
    assert ops.fully_connected(x, 0, w, None, 0, 0, 0, -128, 127, real_multiplier=0.5).item() == 2
    assert ops.fully_connected(-x, 0, w, None, 0, 0, 0, -128, 127, real_multiplier=0.5).item() == -2
    per_channel = ops.fully_connected(x, 0, np.array([[1, 2], [2, 2]]), np.array([0, 1]), 0, 0, 0, -128, 127,
                                      real_multiplier=np.array([0.5, 2.0]))
    np.testing.assert_array_equal(per_channel, [[2, 10]])


def test_mul_broadcasts_and_clamps():
    x1 = np.arange(-4, 4).reshape(1, 8)
    x2 = np.array([[2], [-3]])
    out = ops.mul(x1, 0, x2, 0, 1 << 30, 1, 0, -5, 5)  # multiplier 1.0
    np.testing.assert_array_equal(out, np.clip(x1 * x2, -5, 5))


def test_avg_and_max_pool_requantization():
    x = np.array([0, 2, 4, 6]).reshape(1, 2, 2, 1)
    # centred on zero point 2: values -2, 0, 2, 4 -> mean 1 -> x2 (m 2^30, shift 2) -> 2 + out_zp 1 = 3
    assert ops.avg_pool(x, (2, 2), (2, 2), (0, 0, 0, 0), 0, 15, x_zp=2, multiplier=1 << 30, shift=2, out_zp=1).item() == 3
    assert ops.max_pool(x, (2, 2), (2, 2), (0, 0, 0, 0), 0, 15, x_zp=2, multiplier=1 << 30, shift=2, out_zp=1).item() == 9


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_conv2d_property_against_direct_formula(data):
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dh, dw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    h = data.draw(st.integers((kh - 1) * dh + 1, 7))
    w_ = data.draw(st.integers((kw - 1) * dw + 1, 7))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    cin, cout = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    bits = data.draw(st.sampled_from([8, 4, 2]))
    lo, hi = qrange(bits, True)
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, h, w_, cin))
    wt = rng.integers(lo, hi + 1, (cout, kh, kw, cin))
    mult, shift = quantize_multipliers(rng.uniform(0.001, 0.5, cout))
    x_zp = int(rng.integers(-128, 128))
    got = ops.conv2d(x, x_zp, wt, None, stride, padding, (dh, dw), mult, shift, 0, lo, hi)
    acc = _direct_conv_acc(x, x_zp, wt, stride, padding, (dh, dw))
    np.testing.assert_array_equal(got, np.clip(multiply_by_quantized_multiplier(acc, mult, shift), lo, hi))
