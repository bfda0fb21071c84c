"""Fused channel loops of the DSP conv path (kernels/src/mixq_conv_asm.c).

Two levels:

* the arithmetic, in Python: the SMMLAR forms of the requantization (right shifts, shifts >= 0)
  and the threshold form (A2W2 with 2-bit outputs) against the oracle's
  MultiplyByQuantizedMultiplier on extreme accumulators, shifts and zero points;
* the kernels, on the emulated Cortex-M7 (Cortex-M4 with --runslow): layers built to take each
  fused routine, for every output width of each inner loop (W8 weights with 8-, 4- and 2-bit
  inputs, A4W4, A2W2, each to 8-, 4- and 2-bit outputs; even / multiple-of-4 channel counts, odd
  pixel counts, padding) with
  requantization parameters at the edges (shift -1 and -22, left shifts and shift 0 for the A2
  thresholds, multipliers of 0, narrow clamps, biases far from zero), plus layers the fused
  routines refuse (multipliers below 2^30, shift 0) that must fall back to the general path.
"""
import numpy as np
import pytest

from tvm_mixq.kernellib import cases, firmware, layout
from tvm_mixq.reference import fixedpoint, ops

M32 = (1 << 32) - 1


def _s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


def _smmlar_requant(x: int, m: int, shift: int, zp: int, bits: int) -> int:
    """SAT(SMMLAR(x, m2, x + C2 - [x < 0]) >> r) as mixq_fz_w8o8 computes it."""
    r = -shift
    m2 = _s32(2 * m)
    c2 = (1 << (r - 1)) + zp * (1 << r)
    ra = _s32(x + c2 + (-1 if x < 0 else 0))
    h = _s32(((ra << 32) + x * m2 + (1 << 31)) >> 32)
    lo, hi = layout.act_range(bits)
    return min(max(h >> r, lo), hi)


def _oracle(x: int, m: int, shift: int, zp: int, lo: int, hi: int) -> int:
    v = int(fixedpoint.multiply_by_quantized_multiplier(np.array([x]), np.array([m]), np.array([shift]))[0]) + zp
    return min(max(v, lo), hi)


def test_smmlar_form_matches_oracle():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        bits = int(rng.choice([8, 4, 2]))
        r = int(rng.integers(1, 23))
        m = int(rng.integers(1 << 30, 1 << 31))
        lo, hi = layout.act_range(bits)
        zp = int(rng.integers(lo, hi + 1))
        # the kernels take the form only when |SRDHM(x, m)| + |C2| + 1 < 2^31
        c2 = (1 << (r - 1)) + zp * (1 << r)
        xmax = min((1 << 31) - 1, (((1 << 31) - abs(c2) - 3) << 31) // m)
        scale = int(rng.choice([1 << r, 1 << (r + 4), xmax]))
        xs = list(rng.integers(-min(scale, xmax), min(scale, xmax) + 1, size=8)) + [0, -1, 1, xmax, -xmax]
        # ties: x m + 2^30 at multiples of 2^31, and h at odd multiples of 2^(r-1)
        for x in xs:
            x = int(x)
            assert _smmlar_requant(x, m, -r, zp, bits) == _oracle(x, m, -r, zp, lo, hi), (x, m, r, zp)


def _smmlar_left(x: int, m: int, shift: int, zp: int, bits: int) -> int:
    """SAT(SMMLAR(x << s, m2, (x << s) + zp)) as the routines with suffix l compute it."""
    xs = x << shift
    assert -(1 << 31) <= xs + zp < (1 << 31)
    m2 = _s32(2 * m)
    h = _s32((((xs + zp) << 32) + xs * m2 + (1 << 31)) >> 32)
    lo, hi = layout.act_range(bits)
    return min(max(h, lo), hi)


def test_smmlar_left_shift_form_matches_oracle():
    rng = np.random.default_rng(2)
    for _ in range(3000):
        bits = int(rng.choice([8, 4, 2]))
        s = int(rng.integers(0, 31))
        m = int(rng.integers(1 << 30, 1 << 31))
        lo, hi = layout.act_range(bits)
        zp = int(rng.integers(lo, hi + 1))
        # the kernels take the form only when |x| 2^s + |zp| < 2^31
        xmax = ((1 << 31) - abs(zp) - 1) >> s
        xs = list(rng.integers(-xmax, xmax + 1, size=6)) + [0, -1, 1, xmax, -xmax]
        xs += list(rng.integers(-min(xmax, 64), min(xmax, 64) + 1, size=6))
        for x in xs:
            x = int(x)
            assert _smmlar_left(x, m, s, zp, bits) == _oracle(x, m, s, zp, lo, hi), (x, m, s, zp)


def test_threshold_form_matches_oracle():
    """v = #{i : x >= T_i} with T_i = min{x : f(x) >= i} (f monotone) equals f on the range."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        shift = int(rng.integers(-12, 3))
        m = int(rng.choice([0, int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(1, 1 << 31))]))
        zp = int(rng.integers(0, 4))
        lo = int(rng.integers(0, 4))
        hi = int(rng.integers(lo, 4))
        base = int(rng.integers(-3000, 3000))
        xs = np.arange(base, base + 600)
        f = [_oracle(int(x), m, shift, zp, lo, hi) for x in xs]
        assert all(a <= b for a, b in zip(f, f[1:]))
        thr = [next((int(x) for x, v in zip(xs, f) if v >= i), base + 600) for i in (1, 2, 3)]
        assert [sum(int(x) >= t for t in thr) for x in xs] == f


toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")


def _case(rng, op, bits, h, w, cin, cout, kh=1, pad=0, mode="random", x_zp=None):
    ib, wb, ob = bits
    x = cases._values(rng, (1, h, w, cin), *layout.act_range(ib), mode)
    wts = cases._values(rng, (cout, kh, kh, cin), *layout.weight_range(wb), mode if mode != "edges" else "random")
    lo, hi = layout.act_range(ib)
    zp = int(rng.integers(lo, hi + 1)) if x_zp is None else x_zp
    c = cases.ConvCase(op, bits, x, zp, wts, None)
    c.padding = (pad, pad, pad, pad)
    acc = ops.conv2d_accumulate(x, zp, wts, (1, 1), c.padding)
    c.bias, c.multiplier, c.shift = cases._requant(rng, acc, ob, False)
    c.qmin, c.qmax = layout.act_range(ob)
    c.out_zp = int(rng.integers(c.qmin, c.qmax + 1))
    return c


#: (input, weight, output) bits of every fused routine
FUSED_BITS = [(ib, 8, ob) for ib in (8, 4, 2) for ob in (8, 4, 2)] + \
    [(4, 4, ob) for ob in (8, 4, 2)] + [(2, 2, ob) for ob in (8, 4, 2)]


def _fused_cases(seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    # every fused routine: W8 weights (any input bits), A4W4, A2W2, each to every output width; odd
    # pixel counts, padding
    for bits in FUSED_BITS:
        for op, h, w, cin, cout, kh, pad in [("pointwise", 3, 3, 16, 8, 1, 0), ("pointwise", 4, 5, 32, 12, 1, 0),
                                             ("conv2d", 5, 3, 8, 4, 3, 1), ("pointwise", 3, 5, 7, 16, 1, 0),
                                             ("conv2d", 4, 6, 16, 8, 3, 1)]:
            for mode in ("random", "max", "min"):
                out.append(_case(rng, op, bits, h, w, cin, cout, kh, pad, mode))
    # threshold placement (A2W2, 2-bit outputs, >= 64 pixels): every zero point, ties of the
    # requantization on the accumulator range, thresholds below and above the range
    for zp in range(4):
        c = _case(rng, "pointwise", (2, 2, 2), 8, 9, 32, 8)
        c.out_zp = zp
        c.shift = np.array([-1, -2, -3, -5, -8, -12, -1, -2], np.int64)
        c.multiplier = np.array([1 << 30, (1 << 31) - 1, 3 << 29, 1 << 30, (1 << 31) - 1, 1 << 30,
                                 (1 << 31) - 1, 1 << 30], np.int64)
        c.bias = rng.integers(-3000, 3000, size=8)
        out.append(c)
    # K <= 8 (the A2 threshold routine without the padding lanes; direct lane rows of pointwise
    # inputs with Cin % 4 == 0), and K = 12, 20 next to it
    for cin in (4, 8, 12, 20):
        for mode in ("random", "max", "min"):
            out.append(_case(rng, "pointwise", (2, 2, 2), 8, 9, cin, 16, mode=mode))
    out.append(_case(rng, "pointwise", (2, 2, 4), 8, 9, 8, 16))
    # K <= 8 with the SMMLAR forms (right shifts, shift 0, left shifts, both signs <= 0)
    for bits in [(2, 2, 8), (2, 2, 4), (2, 2, 2)]:
        for shifts in (None, [0] * 8, [0, 1, 2, 3, 0, 1, 2, 3], [0, -1, -3, 0, 0, -2, -1, 0]):
            c = _case(rng, "pointwise", bits, 3, 5, 8 if shifts is None else 4, 8)
            if shifts is not None:
                c.shift = np.array(shifts, np.int64)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-40, 41, size=8)
            out.append(c)
    # many channels, few pixels (threshold placement / per-channel constants), K = 128
    for ob in (2, 4, 8):
        out.append(_case(rng, "pointwise", (2, 2, ob), 3, 3, 128, 32))
        out.append(_case(rng, "pointwise", (4, 4, ob), 3, 3, 128, 32))
    # channel counts the 2-bit-output routines refuse (Cout % 4 == 2: general path), and that the
    # 8-/4-bit ones take
    for bits in [(8, 8, 2), (4, 4, 2), (2, 2, 2), (8, 8, 4), (4, 4, 8), (2, 2, 4), (2, 2, 8)]:
        out.append(_case(rng, "pointwise", bits, 3, 3, 16, 6))
    # the A2 accumulator range at its limit with 8-/4-bit outputs (K = 272) and beyond (K = 288)
    for k in (272, 288):
        for ob in (8, 4):
            out.append(_case(rng, "pointwise", (2, 2, ob), 3, 3, k, 4, mode="max", x_zp=0))
            out.append(_case(rng, "pointwise", (2, 2, ob), 3, 3, k, 4, mode="min", x_zp=3))
    # the A2 threshold range at its limit (K = 272) and beyond (K = 288: general path)
    for k in (272, 288):
        out.append(_case(rng, "pointwise", (2, 2, 2), 3, 3, k, 4, mode="max", x_zp=0))
        out.append(_case(rng, "pointwise", (2, 2, 2), 3, 3, k, 4, mode="min", x_zp=3))
    # requantization edges
    base = _case(rng, "pointwise", (8, 8, 8), 3, 3, 16, 8)
    # (A2W2 with 2-bit outputs: 9 pixels take the SMMLAR form, 64 pixels the thresholds)
    for bits, hw in [(b, 3) for b in FUSED_BITS] + [((2, 2, 2), 8)]:
        for variant in range(11):
            c = _case(rng, "pointwise", bits, hw, hw, 16, 8)
            lo, hi = layout.act_range(bits[2])
            if variant == 0:  # shift -1 on every channel, large multipliers
                c.shift = np.full(8, -1, np.int64)
                c.multiplier = rng.integers((1 << 31) - 64, 1 << 31, size=8)
            elif variant == 1:  # shifts down to -28 with biases far from zero
                c.shift = np.array([-22, -28, -22, -27, -22, -20, -22, -25], np.int64)
                c.bias = rng.integers(-(1 << 28), 1 << 28, size=8)
            elif variant == 2:  # left shifts and shift 0 (A2: thresholds; others: general path)
                c.shift = rng.integers(0, 3, size=8)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8) // 1024
            elif variant == 3:  # multipliers of 0 and below 2^30
                c.multiplier[::2] = 0
                c.multiplier[1::2] //= 3
            elif variant == 4:  # narrow clamp (fused W8/A4 refuse it, A2 thresholds take it)
                c.qmin, c.qmax = (lo + hi) // 2 - (hi - lo) // 4, (lo + hi) // 2 + 1
                c.out_zp = c.qmin
            elif variant == 5:  # mixed shift signs
                c.shift = rng.integers(-6, 2, size=8)
            elif variant == 6:  # outputs at the extremes of the zero point
                c.out_zp = hi if rng.integers(2) else lo
            elif variant == 7:  # shift 0 on every channel (left-shift form of the fused routines)
                c.shift = np.zeros(8, np.int64)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-40, 41, size=8)
            elif variant == 8:  # left shifts 0..3 on every channel, small biases
                c.shift = rng.integers(0, 4, size=8)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-40, 41, size=8)
            elif variant == 9:  # shifts 0 and negative (the mixed form of the fused routines)
                c.shift = np.array([0, -1, -3, 0, 0, -2, -1, 0], np.int64)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-60, 61, size=8)
            else:  # shifts of both signs (general path)
                c.shift = np.array([1, -1, -3, 0, 0, -2, -1, 0], np.int64)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-60, 61, size=8)
            out.append(c)
    del base
    return out


pytestmark_dsp = pytest.mark.skipif(toolchain.tools_available() is not None,
                                    reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


@pytestmark_dsp
@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_fused_paths_bit_exact_in_qemu(tmp_path, target):
    cs = _fused_cases(seed=11 if target == "cortex-m7" else 12)
    results, raw = firmware.run_cases(cs, target, tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [(r.name, cs[i].describe()) for i, r in enumerate(results) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:4]}; exit {raw.exit_code}"
    assert raw.exit_code == 0
