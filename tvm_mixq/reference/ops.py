"""Functional integer kernels: the oracle for the C kernel library and the generated code.

Every function takes *unpacked* integer NumPy arrays (any integer dtype; sub-byte values simply
lie in a smaller range) and returns an ``int64`` array of output values already clamped to
``[qmin, qmax]``. Nothing loops per multiply-accumulate in Python: convolutions use im2col and a
matrix product, depthwise convolution and pooling loop over the (few) filter taps only.

Layouts (TFLite's):

* activations ``[N, H, W, C]`` (NHWC), fully connected input ``[N, K]``;
* convolution weights ``[Cout, KH, KW, Cin]`` (OHWI), depthwise weights
  ``[1, KH, KW, Cin * depth_multiplier]`` with output channel ``oc`` reading input channel
  ``oc // depth_multiplier``, fully connected weights ``[Cout, K]``;
* ``padding`` is ``(top, bottom, left, right)``; padded positions contribute nothing to a sum,
  which is the same as padding the input with its zero point (TFLite skips them);
* ``multiplier``/``shift`` are TFLite quantized multipliers (``real = m * 2**(shift - 31)``), one
  per output channel or a scalar; :func:`tvm_mixq.reference.fixedpoint.quantize_multiplier` makes
  them.

Arithmetic is TFLite's reference integer kernels' (``reference_integer_ops``): int32
accumulators (held in int64 here; the values never exceed int32 for int8 models), int32 bias,
``MultiplyByQuantizedMultiplier`` with double rounding, the output zero point, then the clamp.

Sub-byte operands (4 and 2 bits) use the same formulas: the caller passes clamp bounds that are
the intersection of the fused activation's range and :func:`subbyte.qrange` of the output
bitwidth (:func:`activation_range` computes them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one,
    quantize_multiplier,
)
from .subbyte import qrange

IntPair = tuple[int, int]
Padding4 = tuple[int, int, int, int]

_DTYPE_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


# ---------------------------------------------------------------------------------------------
# Shapes, padding and activation ranges as TFLite computes them.


def conv_output_size(in_size: int, filter_size: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite ``ComputeOutSize``: output length of a window op along one axis.

    ``padding`` is ``"SAME"`` or ``"VALID"``.
    """
    effective = (filter_size - 1) * dilation + 1
    if stride <= 0:
        return 0
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    if padding == "VALID":
        return (in_size + stride - effective) // stride
    raise ValueError(f"unknown padding {padding!r}")


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> IntPair:
    """TFLite ``ComputePaddingWithOffset``: (before, after) padding along one axis.

    ``before`` is what the reference kernels use (``padding_values.height``/``width``); ``after``
    is ``before`` plus the odd remainder, implicit in the output size.
    """
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2, total // 2 + total % 2


def compute_padding(
    in_hw: IntPair,
    filter_hw: IntPair,
    stride: IntPair,
    dilation: IntPair,
    padding: str,
) -> tuple[IntPair, Padding4]:
    """TFLite ``ComputePaddingHeightWidth``: output (OH, OW) and (top, bottom, left, right)."""
    oh = conv_output_size(in_hw[0], filter_hw[0], stride[0], dilation[0], padding)
    ow = conv_output_size(in_hw[1], filter_hw[1], stride[1], dilation[1], padding)
    top, bottom = same_padding(in_hw[0], filter_hw[0], stride[0], dilation[0], oh)
    left, right = same_padding(in_hw[1], filter_hw[1], stride[1], dilation[1], ow)
    return (oh, ow), (top, bottom, left, right)


def _round_half_away_f32(x: np.float32) -> int:
    """``TfLiteRound`` (std::round) on a float32 value."""
    return int(np.sign(x) * np.floor(np.abs(np.float64(x)) + 0.5))


def activation_bound(f: float, scale: float, zero_point: int) -> int:
    """The quantized value of an activation bound ``f``: ``zero_point + round(f / scale)`` in float32, as TFLite."""
    return int(zero_point) + _round_half_away_f32(np.float32(f) / np.float32(scale))


def activation_range(
    activation: str,
    scale: float,
    zero_point: int,
    dtype: str = "int8",
    bits: int = 8,
    signed: bool = True,
) -> IntPair:
    """TFLite ``CalculateActivationRangeQuantized`` intersected with an n-bit range.

    ``dtype`` gives the storage type's range (int8, uint8, int16). For ``bits < 8`` the range is
    further limited to :func:`subbyte.qrange` ``(bits, signed)``. The activation bounds quantize
    0, 6, -1 and 1 as TFLite does: ``zero_point + round(f / scale)`` in float32.
    """
    if dtype not in _DTYPE_RANGES:
        raise ValueError(f"no integer activation range for dtype {dtype}")
    lo, hi = _DTYPE_RANGES[dtype]
    if bits < 8:
        blo, bhi = qrange(bits, signed)
        lo, hi = max(lo, blo), min(hi, bhi)
    def quant(f: float) -> int:
        return activation_bound(f, scale, zero_point)

    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quant(0.0)), hi
    if activation == "RELU6":
        return max(lo, quant(0.0)), min(hi, quant(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quant(-1.0)), min(hi, quant(1.0))
    raise ValueError(f"unsupported fused activation {activation}")


# ---------------------------------------------------------------------------------------------
# Helpers.


def _i64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.int64, copy=False)


def _pair(v: int | Sequence[int]) -> IntPair:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _windows(xp: np.ndarray, kh: int, kw: int, oh: int, ow: int, stride: IntPair, dilation: IntPair) -> np.ndarray:
    """View ``[N, OH, OW, KH, KW, C]`` of the padded input ``xp`` ``[N, Hp, Wp, C]`` (no copy)."""
    sn, sh, sw, sc = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(xp.shape[0], oh, ow, kh, kw, xp.shape[3]),
        strides=(sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False,
    )


def _pad_centered(x: np.ndarray, x_zp: int, padding: Padding4, oh: int, ow: int, kh: int, kw: int,
                  stride: IntPair, dilation: IntPair) -> np.ndarray:
    """``x - x_zp`` as int64, zero-padded so that every window of the output fits."""
    top, bottom, left, right = padding
    need_h = (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1
    need_w = (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1
    n, h, w, c = x.shape
    hp = max(need_h, top + h + bottom)
    wp = max(need_w, left + w + right)
    xp = np.zeros((n, hp, wp, c), dtype=np.int64)
    xp[:, top:top + h, left:left + w, :] = _i64(x) - np.int64(x_zp)
    return xp


def _matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ``a @ b`` in int64.

    ``np.einsum`` on int64 runs single-threaded in NumPy's own loops: exact, and on a loaded
    machine steadier than a multi-threaded BLAS call on small matrices.
    """
    return np.einsum("ij,jk->ik", a, b)


def _finish(acc: np.ndarray, bias: Optional[np.ndarray], multiplier, shift, out_zp: int, qmin: int,
            qmax: int) -> np.ndarray:
    if bias is not None:
        acc = acc + _i64(bias)
    out = multiply_by_quantized_multiplier(acc, _i64(multiplier), _i64(shift)) + np.int64(out_zp)
    return np.clip(out, qmin, qmax).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Kernels.


def conv2d_accumulate(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    stride: IntPair = (1, 1),
    padding: Padding4 = (0, 0, 0, 0),
    dilation: IntPair = (1, 1),
    w_zp: int = 0,
) -> np.ndarray:
    """The int32 accumulators of a convolution, without bias: ``[N, OH, OW, Cout]`` int64.

    ``acc = sum (x - x_zp) * (w - w_zp)`` over the window and the input channels, padded
    positions skipped. ``OH = (H + top + bottom - ((KH-1)*dh + 1)) // sh + 1`` (same for W).
    """
    stride, dilation = _pair(stride), _pair(dilation)
    n, h, wd, cin = x.shape
    cout, kh, kw, wcin = w.shape
    if wcin != cin:
        raise ValueError(f"conv2d: weights have {wcin} input channels, input has {cin}")
    top, bottom, left, right = padding
    oh = (h + top + bottom - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (wd + left + right - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    xp = _pad_centered(x, x_zp, padding, oh, ow, kh, kw, stride, dilation)
    cols = _windows(xp, kh, kw, oh, ow, stride, dilation).reshape(n * oh * ow, kh * kw * cin)
    wm = (_i64(w) - np.int64(w_zp)).reshape(cout, kh * kw * cin).T
    return _matmul_exact(cols, wm).reshape(n, oh, ow, cout)


def conv2d(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: Optional[np.ndarray],
    stride: IntPair,
    padding: Padding4,
    dilation: IntPair,
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zp: int,
    qmin: int,
    qmax: int,
    w_zp: int = 0,
) -> np.ndarray:
    """TFLite int8 CONV_2D (per-channel or per-tensor), output ``[N, OH, OW, Cout]`` int64.

    Parameters
    ----------
    x : ``[N, H, W, Cin]`` integers; x_zp : its zero point.
    w : ``[Cout, KH, KW, Cin]`` integers (zero point ``w_zp``, 0 for int8 per-channel).
    bias : ``[Cout]`` int32 or None.
    stride, dilation : (h, w); padding : (top, bottom, left, right).
    multiplier, shift : ``[Cout]`` or scalars; out_zp, qmin, qmax : output zero point and clamp.
    """
    acc = conv2d_accumulate(x, x_zp, w, stride, padding, dilation, w_zp)
    return _finish(acc, bias, multiplier, shift, out_zp, qmin, qmax)


def depthwise_conv2d_accumulate(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    stride: IntPair = (1, 1),
    padding: Padding4 = (0, 0, 0, 0),
    dilation: IntPair = (1, 1),
    depth_multiplier: int = 1,
    w_zp: int = 0,
) -> np.ndarray:
    """The accumulators of a depthwise convolution, without bias: ``[N, OH, OW, Cin*dm]``."""
    stride, dilation = _pair(stride), _pair(dilation)
    n, h, wd, cin = x.shape
    _, kh, kw, cout = w.shape
    if cout != cin * depth_multiplier:
        raise ValueError(f"depthwise: weights have {cout} channels, expected {cin} x {depth_multiplier}")
    top, bottom, left, right = padding
    oh = (h + top + bottom - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (wd + left + right - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    xp = _pad_centered(x, x_zp, padding, oh, ow, kh, kw, stride, dilation)
    if depth_multiplier > 1:
        xp = np.repeat(xp, depth_multiplier, axis=3)
    wc = _i64(w).reshape(kh, kw, cout) - np.int64(w_zp)
    acc = np.zeros((n, oh, ow, cout), dtype=np.int64)
    h_end = (oh - 1) * stride[0] + 1
    w_end = (ow - 1) * stride[1] + 1
    for i in range(kh):  # loop over filter taps only; each step is a whole-tensor product
        y0 = i * dilation[0]
        for j in range(kw):
            x0 = j * dilation[1]
            acc += xp[:, y0:y0 + h_end:stride[0], x0:x0 + w_end:stride[1], :] * wc[i, j]
    return acc


def depthwise_conv2d(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: Optional[np.ndarray],
    stride: IntPair,
    padding: Padding4,
    dilation: IntPair,
    depth_multiplier: int,
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zp: int,
    qmin: int,
    qmax: int,
    w_zp: int = 0,
) -> np.ndarray:
    """TFLite int8 DEPTHWISE_CONV_2D, output ``[N, OH, OW, Cin * depth_multiplier]`` int64.

    ``w`` is ``[1, KH, KW, Cin * depth_multiplier]``; output channel ``oc`` reads input channel
    ``oc // depth_multiplier``. Other parameters as :func:`conv2d`.
    """
    acc = depthwise_conv2d_accumulate(x, x_zp, w, stride, padding, dilation, depth_multiplier, w_zp)
    return _finish(acc, bias, multiplier, shift, out_zp, qmin, qmax)


def fully_connected(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: Optional[np.ndarray],
    multiplier: np.ndarray,
    shift: np.ndarray,
    out_zp: int,
    qmin: int,
    qmax: int,
    w_zp: int = 0,
    real_multiplier: Optional[np.ndarray] = None,
) -> np.ndarray:
    """TFLite int8 FULLY_CONNECTED: ``x [N, K]``, ``w [Cout, K]`` -> ``[N, Cout]`` int64.

    ``acc = sum (x - x_zp) * (w - w_zp) + bias``; ``multiplier``/``shift`` per-tensor scalars or
    per output channel ``[Cout]``.

    ``real_multiplier`` (scalar or ``[Cout]``) selects the requantization of TFLite's reference
    kernel (``BUILTIN_REF``) for int8 weights: ``round(acc * real_multiplier)`` in double, half
    away from zero, with ``real_multiplier = double(s_in) * double(s_w) / double(s_out)``;
    ``multiplier``/``shift`` are then ignored. TFLM and CMSIS-NN use the fixed-point multiplier
    (``real_multiplier=None``), and so do the project's kernels.
    """
    x2 = _i64(x) - np.int64(x_zp)
    wm = _i64(w) - np.int64(w_zp)
    if x2.shape[-1] != wm.shape[-1]:
        raise ValueError(f"fully_connected: input depth {x2.shape[-1]} != weights depth {wm.shape[-1]}")
    acc = _matmul_exact(x2, wm.T)
    if real_multiplier is None:
        return _finish(acc, bias, multiplier, shift, out_zp, qmin, qmax)
    if bias is not None:
        acc = acc + _i64(bias)
    scaled = acc.astype(np.float64) * np.asarray(real_multiplier, dtype=np.float64)
    rounded = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)
    return np.clip(rounded + np.int64(out_zp), qmin, qmax).astype(np.int64)


@dataclass(frozen=True)
class AddParams:
    """Fixed-point parameters of TFLite's int8 ADD (``PrepareGeneralSubOp``/add.cc)."""

    x1_mult: int
    x1_shift: int
    x2_mult: int
    x2_shift: int
    out_mult: int
    out_shift: int
    left_shift: int = 20


def add_params(x1_scale: float, x2_scale: float, out_scale: float, left_shift: int = 20) -> AddParams:
    """TFLite's ADD parameters from the three scales (float32 scales, double arithmetic).

    ``twice_max = 2 * max(s1, s2)``; input multipliers ``s_i / twice_max``; output multiplier
    ``twice_max / (2**left_shift * s_out)``; each through ``QuantizeMultiplier``.
    """
    s1, s2, so = (float(np.float32(s)) for s in (x1_scale, x2_scale, out_scale))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    return AddParams(m1, sh1, m2, sh2, mo, sho, left_shift)


def add(
    x1: np.ndarray,
    x1_zp: int,
    x1_mult: int,
    x1_shift: int,
    x2: np.ndarray,
    x2_zp: int,
    x2_mult: int,
    x2_shift: int,
    out_mult: int,
    out_shift: int,
    out_zp: int,
    qmin: int,
    qmax: int,
    left_shift: int = 20,
) -> np.ndarray:
    """TFLite int8 ADD (``reference_integer_ops::AddElementwise``), NumPy broadcasting.

    Each input is centred, shifted left by ``left_shift``, scaled by its multiplier
    (``MultiplyByQuantizedMultiplierSmallerThanOneExp``); the sum is scaled by the output
    multiplier, offset by ``out_zp`` and clamped. :func:`add_params` computes the parameters.
    """
    a = (_i64(x1) - np.int64(x1_zp)) * np.int64(1 << left_shift)
    b = (_i64(x2) - np.int64(x2_zp)) * np.int64(1 << left_shift)
    a = multiply_by_quantized_multiplier_smaller_than_one(a, x1_mult, x1_shift)
    b = multiply_by_quantized_multiplier_smaller_than_one(b, x2_mult, x2_shift)
    out = multiply_by_quantized_multiplier_smaller_than_one(a + b, out_mult, out_shift) + np.int64(out_zp)
    return np.clip(out, qmin, qmax).astype(np.int64)


def mul(
    x1: np.ndarray,
    x1_zp: int,
    x2: np.ndarray,
    x2_zp: int,
    multiplier: int,
    shift: int,
    out_zp: int,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """TFLite int8 MUL: ``MBQM((x1 - zp1) * (x2 - zp2), m, s) + out_zp``, clamped.

    ``multiplier``/``shift`` quantize ``s1 * s2 / s_out`` (double arithmetic).
    """
    prod = (_i64(x1) - np.int64(x1_zp)) * (_i64(x2) - np.int64(x2_zp))
    out = multiply_by_quantized_multiplier(prod, multiplier, shift) + np.int64(out_zp)
    return np.clip(out, qmin, qmax).astype(np.int64)


def _pool_taps(x: np.ndarray, filter_hw: IntPair, stride: IntPair, padding: Padding4, fill: int):
    """Yield (tap slice ``[N, OH, OW, C]``, validity mask ``[1, OH, OW, 1]``) per filter tap."""
    n, h, w, c = x.shape
    fh, fw = filter_hw
    top, bottom, left, right = padding
    oh = (h + top + bottom - fh) // stride[0] + 1
    ow = (w + left + right - fw) // stride[1] + 1
    hp = max((oh - 1) * stride[0] + fh, top + h + bottom)
    wp = max((ow - 1) * stride[1] + fw, left + w + right)
    xp = np.full((n, hp, wp, c), fill, dtype=np.int64)
    xp[:, top:top + h, left:left + w, :] = x
    valid = np.zeros((1, hp, wp, 1), dtype=bool)
    valid[:, top:top + h, left:left + w, :] = True
    h_end = (oh - 1) * stride[0] + 1
    w_end = (ow - 1) * stride[1] + 1
    for i in range(fh):
        for j in range(fw):
            sl = (slice(None), slice(i, i + h_end, stride[0]), slice(j, j + w_end, stride[1]), slice(None))
            yield xp[sl], valid[sl]


def _round_div_away(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """TFLite's ``(acc +- count/2) / count`` with C truncating division."""
    half = den // 2
    q_pos = (num + half) // den
    neg = num - half
    q_neg = -((-neg) // den)  # truncation towards zero of a value <= 0
    return np.where(num > 0, q_pos, q_neg)


def avg_pool(
    x: np.ndarray,
    filter_hw: IntPair,
    stride: IntPair,
    padding: Padding4,
    qmin: int,
    qmax: int,
    x_zp: Optional[int] = None,
    multiplier: Optional[int] = None,
    shift: Optional[int] = None,
    out_zp: Optional[int] = None,
) -> np.ndarray:
    """TFLite int8 AVERAGE_POOL_2D, ``[N, H, W, C]`` -> ``[N, OH, OW, C]`` int64.

    Without requantization (TFLite's case: input and output share scale and zero point) the
    output is ``round(sum / count)`` over the valid (unpadded) elements of the window, rounded
    half away from zero as ``(sum +- count/2) / count`` with truncating division, then clamped.

    With requantization (``x_zp``, ``multiplier``, ``shift``, ``out_zp`` all given; the project's
    extension for a sub-byte output whose scale differs from the input's), the centred average
    ``a = round(sum(x - x_zp) / count)`` (same rounding) is requantized:
    ``clamp(MultiplyByQuantizedMultiplier(a, multiplier, shift) + out_zp, qmin, qmax)`` where
    ``multiplier``/``shift`` quantize ``s_in / s_out``.
    """
    stride = _pair(stride)
    requant = x_zp is not None
    if requant and (multiplier is None or shift is None or out_zp is None):
        raise ValueError("avg_pool requantization needs x_zp, multiplier, shift and out_zp")
    xv = _i64(x) - (np.int64(x_zp) if requant else np.int64(0))
    total = None
    count = None
    for tap, valid in _pool_taps(xv, _pair(filter_hw), stride, padding, 0):
        total = tap.copy() if total is None else total + tap
        v = valid.astype(np.int64)
        count = v if count is None else count + v
    avg = _round_div_away(total, np.maximum(count, 1))
    if requant:
        avg = multiply_by_quantized_multiplier(avg, multiplier, shift) + np.int64(out_zp)
    return np.clip(avg, qmin, qmax).astype(np.int64)


def max_pool(
    x: np.ndarray,
    filter_hw: IntPair,
    stride: IntPair,
    padding: Padding4,
    qmin: int,
    qmax: int,
    x_zp: Optional[int] = None,
    multiplier: Optional[int] = None,
    shift: Optional[int] = None,
    out_zp: Optional[int] = None,
) -> np.ndarray:
    """TFLite int8 MAX_POOL_2D: maximum over the valid elements of each window, clamped.

    With requantization (all of ``x_zp``, ``multiplier``, ``shift``, ``out_zp`` given) the
    maximum ``m`` becomes ``clamp(MBQM(m - x_zp, multiplier, shift) + out_zp, qmin, qmax)``.
    """
    stride = _pair(stride)
    fill = np.iinfo(np.int64).min
    best = None
    for tap, _ in _pool_taps(_i64(x), _pair(filter_hw), stride, padding, fill):
        best = tap.copy() if best is None else np.maximum(best, tap)
    if x_zp is not None:
        if multiplier is None or shift is None or out_zp is None:
            raise ValueError("max_pool requantization needs x_zp, multiplier, shift and out_zp")
        best = multiply_by_quantized_multiplier(best - np.int64(x_zp), multiplier, shift) + np.int64(out_zp)
    return np.clip(best, qmin, qmax).astype(np.int64)
