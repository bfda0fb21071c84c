"""Fixed-point transcendental helpers against float math (the bit-exactness is checked against
TFLite in test_reference_interpreter.py; these pin down the building blocks)."""
from __future__ import annotations

import numpy as np

from tvm_mixq.reference import transcendental as tr


def test_exp_on_negative_values_close_to_exp() -> None:
    x = -np.linspace(0, 31.9, 2001)
    raw = np.round(x * (1 << 26)).astype(np.int64)  # Q5
    got = tr.exp_on_negative_values(raw, 5) / 2.0**31
    np.testing.assert_allclose(got, np.exp(raw / 2.0**26), atol=5e-7)


def test_one_over_one_plus_x_close() -> None:
    x = np.linspace(0, 0.999, 500)
    raw = np.round(x * 2.0**31).astype(np.int64)
    got = tr.one_over_one_plus_x_for_x_in_0_1(raw) / 2.0**31
    np.testing.assert_allclose(got, 1 / (1 + raw / 2.0**31), atol=1e-8)


def test_log_close_to_natural_log() -> None:
    x = np.linspace(1.0, 4000.0, 997)
    raw = np.round(x * 2.0**19).astype(np.int64)  # Q12
    got = tr.log_x_for_x_greater_than_or_equal_to_1(raw, 5, 12) / 2.0**26
    np.testing.assert_allclose(got, np.log(raw / 2.0**19), atol=1e-6)


def test_count_leading_zeros() -> None:
    vals = np.array([0, 1, 2, 3, 255, 1 << 30, (1 << 31) - 1, -1, -(1 << 31)])
    np.testing.assert_array_equal(tr.count_leading_zeros_u32(vals), [32, 31, 30, 30, 24, 1, 1, 0, 0])


def test_softmax_int8_close_to_float_softmax() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (50, 10))
    scale = 0.1
    params = tr.softmax_params(scale, 1.0)
    got = tr.softmax_int8(x, *params)
    e = np.exp(scale * (x - x.max(axis=1, keepdims=True)))
    want = np.clip(np.round(e / e.sum(axis=1, keepdims=True) * 256) - 128, -128, 127)
    assert np.abs(got - want).max() <= 1


def test_log_softmax_int8_close_to_float() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (40, 6))
    scale = 0.05
    got = tr.log_softmax_int8(x, *tr.log_softmax_params(scale))
    z = scale * x
    ls = z - z.max(axis=1, keepdims=True)
    ls = ls - np.log(np.exp(ls).sum(axis=1, keepdims=True))
    want = np.clip(np.round(ls / (16 / 256)) + 127, -128, 127)
    assert np.abs(got - want).max() <= 1


def test_logistic_and_hard_swish_tables_close_to_float() -> None:
    s_in, z_in = 0.05, 3
    v = np.arange(-128, 128)
    real = s_in * (v - z_in)
    lut = tr.logistic_table(s_in, z_in, 1 / 256, -128)
    assert np.abs(lut - np.clip(np.round(256 / (1 + np.exp(-real))) - 128, -128, 127)).max() <= 1
    s_out, z_out = 0.04, -20
    hs = tr.hard_swish_table(s_in, z_in, s_out, z_out)
    want = np.clip(np.round(real * np.clip(real + 3, 0, 6) / 6 / s_out) + z_out, -128, 127)
    assert np.abs(hs - want).max() <= 1
