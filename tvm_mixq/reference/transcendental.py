"""Non-linear int8 ops exactly as TFLite's reference kernels compute them, vectorised.

* SOFTMAX and LOG_SOFTMAX use gemmlowp-style Q-format fixed point (``exp`` on negative values,
  a Newton-Raphson reciprocal, a fixed-point ``log``), reimplemented here on int64 arrays that
  hold int32 values. ``Qk`` below names a signed 32-bit fixed-point number with ``k`` integer
  bits (``31 - k`` fractional bits); a product of ``Qa`` and ``Qb`` is ``Q(a+b)``.
* LOGISTIC (int8) is TFLite's 256-entry lookup table built in float32.
* HARD_SWISH (int8) is TFLite's 16-bit fixed-point formula, evaluated once per possible input
  value into a 256-entry table.

All array functions take and return int64 arrays; nothing loops per element in Python except the
table builders (256 iterations once per op).
"""
from __future__ import annotations

import math

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

_srdhm = saturating_rounding_doubling_high_mul
_rdbp = rounding_divide_by_pot


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int32 addition with two's complement wrap (gemmlowp's plain ``+``)."""
    return wrap_int32(np.asarray(a, np.int64) + np.asarray(b, np.int64))


def _sat_left_shift(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT`` with a positive exponent (saturating)."""
    x = np.asarray(x, np.int64)
    if exponent == 0:
        return x
    threshold = (1 << (31 - exponent)) - 1
    out = wrap_int32(x << exponent)
    out = np.where(x > threshold, np.int64(INT32_MAX), out)
    return np.where(x < -threshold, np.int64(INT32_MIN), out)


def _sat_left_shift_param(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """TFLite ``SaturatingRoundingMultiplyByPOTParam`` with a per-element exponent >= 0."""
    x = np.asarray(x, np.int64)
    exponent = np.broadcast_to(np.asarray(exponent, np.int64), x.shape)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    out = wrap_int32(x << exponent)
    out = np.where(x > threshold, np.int64(INT32_MAX), out)
    out = np.where(x < -threshold, np.int64(INT32_MIN), out)
    return np.where(exponent == 0, x, out)


def _multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` (either sign)."""
    if exponent >= 0:
        return _sat_left_shift(x, exponent)
    return _rdbp(x, -exponent)


def _rescale(x: np.ndarray, src_bits: int, dst_bits: int) -> np.ndarray:
    """gemmlowp ``Rescale``: Q(src_bits) -> Q(dst_bits)."""
    return _multiply_by_pot(x, src_bits - dst_bits)


def _rounding_half_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t // 2, -((-t) // 2))  # C division truncates


def _sat_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(a, np.int64) + np.asarray(b, np.int64), INT32_MIN, INT32_MAX)


def _sat_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(a, np.int64) - np.asarray(b, np.int64), INT32_MIN, INT32_MAX)


def count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    """``__builtin_clz`` of the uint32 reinterpretation of int32 values (32 for zero)."""
    u = np.asarray(x, np.int64) & 0xFFFFFFFF
    bit_length = np.zeros(u.shape, dtype=np.int64)
    for b in range(32):
        bit_length += (u >= (np.int64(1) << b)).astype(np.int64)
    return 32 - bit_length


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for ``a`` in [-1/4, 0), Q0 in and out (Taylor series around -1/8)."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = _add(a, 1 << 28)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rdbp(x4, 2)
    poly = _rdbp(_add(_srdhm(_add(x4_over_4, x3), constant_1_over_3), x2), 1)
    return _add(constant_term, _srdhm(constant_term, _add(x, poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """exp(a) for ``a <= 0`` given in Q(integer_bits); result in Q0."""
    a = np.asarray(a, np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_minus_quarter = _add(a & (one_quarter - 1), -one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod_minus_quarter, integer_bits, 0))
    remainder = _add(a_mod_minus_quarter, -a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, np.int64(0), result)
    return np.where(a == 0, np.int64(INT32_MAX), result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for ``a`` in [0, 1), Q0 in and out (Newton-Raphson, 3 steps)."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _add(1515870810, _srdhm(half_denominator, -1010580540))  # Q2: 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = _add(1 << 29, -_srdhm(half_denominator, x))
        x = _add(x, _rescale(_srdhm(x, one_minus), 4, 2))
    return _rescale(x, 1, 0)


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``GetReciprocal``: (Q0 scale, num_bits_over_unit) with 1/x = scale * 2**-bits."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def log_x_for_x_greater_than_or_equal_to_1(x: np.ndarray, output_bits: int, input_bits: int) -> np.ndarray:
    """TFLite's fixed-point natural log: Q(input_bits) in, Q(output_bits) out."""
    accum_bits = output_bits + 1
    log_2, sqrt_sqrt_half, sqrt_half, one_quarter = 1488522236, 1805811301, 1518500250, 536870912
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    shifted_quarter = _rescale(np.int64(one_quarter), 0, accum_bits)

    z_a = np.asarray(x, np.int64)
    z_a_headroom_plus_1 = count_leading_zeros_u32(z_a)
    r_a_tmp = _sat_left_shift_param(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = _sat_left_shift_param(_srdhm(r_a_tmp, sqrt_half), 1)
    z_a_pow_2_adj = _sat_add(_sat_left_shift_param(input_bits - z_a_headroom_plus_1, 31 - accum_bits),
                             shifted_quarter)
    z_b = _srdhm(z_a, sqrt_half)
    z_b_headroom = count_leading_zeros_u32(z_b) - 1
    r_b_raw = _sat_left_shift_param(z_a, z_b_headroom)
    z_b_pow_2_adj = _sat_sub(_sat_left_shift_param(input_bits - z_b_headroom, 31 - accum_bits), shifted_quarter)

    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = _rounding_half_sum(r, sqrt_sqrt_half)
    q = _add(r, -sqrt_sqrt_half)
    q = _add(q, q)
    common_sq = _srdhm(q, q)
    num = _add(_srdhm(q, r), _srdhm(_srdhm(q, common_sq), alpha_n))
    denom_minus_one = _add(_srdhm(p, _add(_add(alpha_i, q), _srdhm(alpha_d, common_sq))), _srdhm(alpha_f, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = _rescale(num, 0, accum_bits)
    total = _add(_srdhm(z_pow_2_adj, log_2), _srdhm(num_scaled, recip_denom))
    return _rescale(total, accum_bits, output_bits)


# ---------------------------------------------------------------------------------------------
# Softmax and log-softmax.

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite ``CalculateInputRadius``."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def softmax_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLite ``PreprocessSoftmaxScaling`` for int8: (multiplier, left_shift, diff_min)."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - _SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax input scale too small for TFLite's fixed-point softmax")
    diff_min = -calculate_input_radius(_SCALED_DIFF_INTEGER_BITS, left_shift)
    return multiplier, left_shift, diff_min


def _row_exps(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int):
    x = np.asarray(x, np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    rescaled = _srdhm(wrap_int32(diff * (1 << left_shift)), multiplier)
    exps = exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS)
    terms = np.where(valid, _rescale(exps, 0, _ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = wrap_int32(terms.sum(axis=-1, keepdims=True))
    return diff, valid, rescaled, exps, sum_of_exps


def softmax_int8(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int, out_bits: int = 8) -> np.ndarray:
    """TFLite reference int8 SOFTMAX over the last axis (output scale 1/256, zero point -128)."""
    _, valid, _, exps, sum_of_exps = _row_exps(x, multiplier, left_shift, diff_min)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - out_bits
    unsat = _rdbp(_srdhm(shifted_scale, exps), exponent)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, np.int64(-128))


def log_softmax_params(input_scale: float) -> tuple[int, int, int, int, int]:
    """TFLite ``PreprocessLogSoftmaxScalingExp`` (beta 1): (mult, shift, rev_mult, rev_shift, diff_min)."""
    multiplier, left_shift, _ = softmax_params(input_scale, 1.0)
    real_reverse = float(1 << (31 - left_shift)) / float(multiplier)
    reverse_multiplier, reverse_shift = quantize_multiplier(real_reverse)
    diff_min = -calculate_input_radius(_SCALED_DIFF_INTEGER_BITS, left_shift)
    return multiplier, left_shift, reverse_multiplier, reverse_shift, diff_min


def log_softmax_int8(x: np.ndarray, multiplier: int, left_shift: int, reverse_multiplier: int, reverse_shift: int,
                     diff_min: int) -> np.ndarray:
    """TFLite reference int8 LOG_SOFTMAX over the last axis (output scale 16/256, zero point 127)."""
    diff, _, rescaled, _, sum_of_exps = _row_exps(x, multiplier, left_shift, diff_min)
    log_sum = log_x_for_x_greater_than_or_equal_to_1(sum_of_exps, _SCALED_DIFF_INTEGER_BITS,
                                                     _ACCUMULATION_INTEGER_BITS)
    shifted_log_sum = _add(log_sum, INT32_MIN)
    adjusted_diff_min = np.maximum(diff_min - 1,
                                   multiply_by_quantized_multiplier(shifted_log_sum, reverse_multiplier, reverse_shift))
    out = _rdbp(_add(rescaled, -log_sum), 31 - _SCALED_DIFF_INTEGER_BITS - 4) + 127
    out = np.clip(out, -128, 127)
    return np.where(diff > adjusted_diff_min, out, np.int64(-128))


# ---------------------------------------------------------------------------------------------
# Element-wise functions as 256-entry tables.


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def logistic_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """TFLite ``LUTPopulate`` for int8 LOGISTIC: table[v + 128] for v in [-128, 127], float32 math."""
    vals = np.arange(-128, 128, dtype=np.int64)
    s_in = np.float32(input_scale)
    inverse_scale = np.float32(1.0) / np.float32(output_scale)
    dequantized = s_in * (vals - input_zp).astype(np.float32)
    # std::exp(float): evaluate in double and round once to float32 (what glibc's expf returns).
    e = np.exp(-dequantized.astype(np.float64)).astype(np.float32)
    transformed = np.float32(1.0) / (np.float32(1.0) + e)
    rescaled = _round_half_away((transformed * inverse_scale).astype(np.float32))
    quantized = rescaled.astype(np.int64) + output_zp
    return np.clip(quantized, -128, 127)


def _i16_srdhm(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _i16(_trunc_div(ab + nudge, 1 << 15))


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _i16(v: int) -> int:
    return ((v + (1 << 15)) & 0xFFFF) - (1 << 15)


def _i16_rdbp(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _i16_sat_left_shift(value: int, amount: int) -> int:
    return max(-32768, min(32767, value * (1 << amount)))


def _i16_doubling_high_mul(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    return _i16(_trunc_div(a * b, 1 << 15))


def _downscale_multiplier_to_int16(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def hard_swish_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int,
                     qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """TFLite reference int8 HARD_SWISH as a table: table[v + 128] for v in [-128, 127]."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_mult32, out_exp = quantize_multiplier(float(hires_input_scale / np.float32(output_scale)))
    relu_mult32, relu_exp = quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_exp > 0:
        raise ValueError("HARD_SWISH output multiplier exponent must be <= 0 (TFLite requires it)")
    out_mult = _downscale_multiplier_to_int16(out_mult32)
    relu_mult = _downscale_multiplier_to_int16(relu_mult32)
    table = np.zeros(256, dtype=np.int64)
    for v in range(-128, 128):
        x = _i16(v - input_zp)
        hires = _i16(x * (1 << 7))
        preshift_out = _i16(_i16_srdhm(hires, out_mult))
        reluish = hires
        if relu_exp > 0:
            reluish = _i16_sat_left_shift(reluish, relu_exp - 1)
        reluish = _i16(_i16_srdhm(reluish, relu_mult))
        if relu_exp > 0:
            reluish = _i16_sat_left_shift(reluish, 1)
        if relu_exp < 0:
            reluish = _i16_rdbp(reluish, -relu_exp)
        reluish = _i16((reluish + (1 << 15)) >> 1)
        pre = _i16_doubling_high_mul(reluish, preshift_out)
        out = _i16(_i16_rdbp(pre, -out_exp))
        out = _i16(out + output_zp)
        table[v + 128] = min(max(out, qmin), qmax)
    return table
