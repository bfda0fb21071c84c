"""Integer requantization exactly as TFLite's reference kernels do it, vectorised with NumPy.

All functions take and return NumPy integer arrays (any shape) and broadcast like NumPy.
Intermediate products are computed in int64; results that TFLite keeps in int32 are returned as
int64 arrays holding int32 values.

Double rounding is used throughout (TFLite's default build, without TFLITE_SINGLE_ROUNDING):
``MultiplyByQuantizedMultiplier(x, m, s)`` is
``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(s, 0), m), max(-s, 0))``.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: real = m * 2**(shift - 31) with m in [2**30, 2**31)."""
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    # TfLiteRound is std::round: half away from zero.
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q >= 0 else -1)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multipliers(real_multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier` (per-channel parameters)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(real_multipliers, np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int64)
    shift = np.array([p[1] for p in pairs], dtype=np.int64)
    return mult, shift


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values into the int32 range (as C arithmetic does)."""
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values.

    gemmlowp adds the nudge ``2**30`` (``1 - 2**30`` for a negative product) and divides by
    ``2**31`` truncating towards zero; for both signs that equals ``floor((a*b + 2**30) / 2**31)``,
    which is computed here in place (one product, one add, one shift).
    """
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    out = np.multiply(a, b, dtype=np.int64)
    out += np.int64(1 << 30)
    out >>= np.int64(31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    if np.any(overflow):
        out = np.where(overflow, np.int64(INT32_MAX), out)
    return out


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: x / 2**exponent rounded half away from zero.

    gemmlowp's ``(x >> e) + (remainder > threshold)`` equals
    ``(x + 2**(e-1) - [x < 0 and e > 0]) >> e`` (arithmetic shift), computed in one pass.
    """
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    half = (np.int64(1) << exponent) >> 1
    out = x + half
    out -= (x < 0) if np.all(exponent > 0) else (x < 0) & (exponent > 0)
    out >>= exponent
    return out


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (int32 accumulator -> scaled int32)."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.asarray(x, np.int64)
    if np.any(left):
        shifted = wrap_int32(shifted * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one(
    x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (shift <= 0)."""
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -np.asarray(shift, np.int64))


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    zero_point: int,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """int32 accumulator -> output integer: scale, add the output zero point, clamp.

    ``multiplier`` and ``shift`` broadcast against ``acc`` (per-channel: shape ``(C,)`` against an
    ``[..., C]`` accumulator). ``qmin``/``qmax`` are the clamp bounds after the fused activation,
    which for an n-bit output lie inside that bitwidth's range.
    """
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + np.int64(zero_point)
    return np.clip(out, qmin, qmax)
