"""Fused channel loops of the DSP conv path (kernels/src/mixq_conv_asm.c).

Two levels:

* the arithmetic, in Python: the SMMLAR forms of the requantization (right shifts, shifts >= 0,
  any shifts) and the threshold form (A2W2 with 2-bit outputs) against the oracle's
  MultiplyByQuantizedMultiplier on extreme accumulators, shifts and zero points;
* the kernels, on the emulated Cortex-M7 (Cortex-M4 with --runslow): layers built to take each
  fused routine, for every output width of each inner loop (W8 weights with 8-, 4- and 2-bit
  inputs, A4W4, A2W2, each to 8-, 4- and 2-bit outputs; even / multiple-of-4 channel counts, odd
  pixel counts, padding) with
  requantization parameters at the edges (shift -1 and -22, left shifts and shift 0 for the A2
  thresholds, multipliers of 0, narrow clamps, biases far from zero), shifts of both signs in one
  layer (the any-shift form, suffix m) at the form's bounds and just past them (general path), and
  narrow clamps and overflowing ranges that must fall back to the general path; and, by instruction
  counts, that layers with shifts of both signs stay on the fused path.
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


def _smmlar_any(x: int, m: int, shift: int, zp: int, bits: int) -> int:
    """SAT(SMMLAR(x, mm, k x + c2 - [x < 0][r > 0]) >> r) as the routines with suffix m compute it
    (words as mixq_fz_fill_rq writes them for form 3)."""
    s, r = max(shift, 0), max(-shift, 0)
    mf = m << (s + 1)
    k = (mf + (1 << 31)) >> 32
    mm = mf - (k << 32)
    assert -(1 << 31) <= mm < (1 << 31) and 0 <= k <= (1 << s)
    c2 = (1 << (r - 1)) + zp * (1 << r) if r else zp
    rw = (r | (1 << 31)) if r else 0
    sign = -1 if (x < 0 and rw >> 31) else 0  # AND rw, x asr 31; ADD c2, t asr 31
    t = k * x + c2 + sign
    assert -(1 << 31) <= t < (1 << 31), "MLA result leaves int32"
    h = _s32(((t << 32) + x * mm + (1 << 31)) >> 32)
    lo, hi = layout.act_range(bits)
    return min(max(h >> (rw & 0xFF), lo), hi)


def test_smmlar_any_shift_form_matches_oracle():
    """The any-shift form on shifts -23..30 (the form's range), multipliers 0..2^31-1 (below 2^30
    included), accumulators up to the bound the kernels check, ties of both roundings."""
    rng = np.random.default_rng(3)
    for _ in range(4000):
        bits = int(rng.choice([8, 4, 2]))
        shift = int(rng.choice([int(rng.integers(-23, 0)), int(rng.integers(0, 31)), 0, 1, -1, -23, 30]))
        m = int(rng.choice([int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(0, 1 << 31)), 0, (1 << 31) - 1,
                            1 << 30, (1 << 30) - 1]))
        lo, hi = layout.act_range(bits)
        zp = int(rng.integers(lo, hi + 1))
        if shift < 0:
            r = -shift
            c2 = (1 << (r - 1)) + zp * (1 << r)
            xmax = (1 << 31) - abs(c2) - 3  # |x| + |C2| + 2 < 2^31, |SRDHM(x, m)| <= |x|
        else:
            xmax = ((1 << 31) - abs(zp) - 1) >> shift  # |x| 2^s + |zp| < 2^31
        xs = list(rng.integers(-xmax, xmax + 1, size=6)) + [0, -1, 1, xmax, -xmax]
        xs += list(rng.integers(-min(xmax, 1 << 12), min(xmax, 1 << 12) + 1, size=6))
        if m:  # ties of SRDHM: x m + 2^30 a multiple of 2^31 (x m / 2^31 at odd halves)
            for h in rng.integers(-50, 50, size=3):
                x = ((2 * int(h) + 1) << 30) // m
                xs += [v for v in (x - 1, x, x + 1) if abs(v) <= xmax]
        for x in xs:
            x = int(x)
            assert _smmlar_any(x, m, shift, zp, bits) == _oracle(x, m, shift, zp, lo, hi), (x, m, shift, zp)


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
    # the unrolled A2 threshold routine entered at every step count (K = 16 n, n = 1..17, and K
    # padded up to a whole step: 16 n - 15 with whole lane words), conv with the ring rows, odd pixels
    for cin in list(range(16, 273, 16)) + [30, 47, 269]:
        out.append(_case(rng, "pointwise", (2, 2, 2), 8, 9, cin, 8, mode=("random", "max", "min")[cin % 3]))
    # ... and the SMMLAR-form routines (8-, 4-, 2-bit outputs; right shifts, shifts >= 0, both
    # signs) on the same unrolled steps, every step count
    for i, cin in enumerate(range(16, 273, 16)):
        ob = (8, 4, 2)[i % 3]
        c = _case(rng, "pointwise", (2, 2, ob), 3, 5, cin, 8, mode=("random", "max", "min")[(i // 3) % 3])
        shifts = (None, [0, 1, 2, 0, 0, 1, 2, 3], [0, -1, 1, -3, 2, 0, -2, 0])[(i // 2) % 3]
        if shifts is not None:
            c.shift = np.array(shifts, np.int64)
            c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
            c.bias = rng.integers(-40, 41, size=8)
        out.append(c)
    out.append(_case(rng, "conv2d", (2, 2, 2), 9, 9, 16, 12, 3, 1))
    out.append(_case(rng, "conv2d", (2, 2, 2), 9, 8, 32, 8, 2, 1, mode="max"))
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
    # what K does not fill (suffix t), with every requantization form (right shifts, shifts >= 0,
    # both signs; A2 2-bit outputs from 64 pixels on: thresholds) and output width: A2W2 with K of
    # 4 nf + t lane words (t = 1, 2, 3), A4W4 with K % 16 in 1..8
    for ib, cins in ((2, (20, 24, 28, 44)), (4, (24, 40, 17))):
        for cin in cins:
            for ob in (8, 4, 2):
                for shifts in (None, [0, 1, 2, 0, 0, 1, 2, 3], [0, -1, 1, -3, 2, 0, -2, 0]):
                    hw = (8, 9) if shifts is None and ib == 2 else (3, 5)
                    c = _case(rng, "pointwise", (ib, ib, ob), *hw, cin, 8)
                    if shifts is not None:
                        c.shift = np.array(shifts, np.int64)
                        c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                        c.bias = rng.integers(-40, 41, size=8)
                    out.append(c)
    # the unrolled A4W4 routines (suffix u) entered at every step count (K = 16 n, n = 1..16, and
    # K padded up to whole chunks: 16 n - 7), every output width and requantization form (right
    # shifts, shifts >= 0, both signs), odd pixel counts, channel counts off the multiples of 4;
    # n = 17 (K = 272) and K = 520 run the counted loop next to them. Pointwise with Cin % 8 == 0:
    # the routine converts the inputs itself (Cin % 16 == 8: a last group of zero weights); other
    # Cin: the stream rows, copied
    # K > 16 with K % 16 in 1..8 take the unrolled steps and a last half chunk (suffix ut: 24, 136,
    # 248 here, 17 / 24 / 40 below; 264 runs the counted loop with its half chunk, suffix t)
    for i, cin in enumerate(list(range(16, 273, 16)) + [9, 41, 121, 249, 520, 8, 24, 136, 248, 264]):
        ob = (8, 4, 2)[i % 3]
        cout = (8, 12, 6, 10)[i % 4] if ob != 2 else (8, 12)[i % 2]
        hw = ((3, 5), (2, 3), (1, 5), (4, 4))[i % 4]
        c = _case(rng, "pointwise", (4, 4, ob), *hw, cin, cout, mode=("random", "max", "min")[(i // 3) % 3])
        shifts = (None, [0, 1, 2, 0, 0, 1, 2, 3], [0, -1, 1, -3, 2, 0, -2, 0])[(i // 2) % 3]
        if shifts is not None:
            c.shift = np.array([shifts[j % 8] for j in range(cout)], np.int64)
            c.multiplier = rng.integers(1 << 30, 1 << 31, size=cout)
            c.bias = rng.integers(-40, 41, size=cout)
        out.append(c)
    # ... and conv2d on them (K = 9 Cin with Cin % 8 == 0: 72, 144, 216 and the ring rows; 3x3
    # with Cin = 32: K = 288 runs the loop; Cin = 2, 4: K = 18, 36, stream rows and a half chunk)
    for cin, ob in ((8, 4), (16, 8), (24, 2), (32, 4), (2, 8), (4, 4), (2, 2)):
        out.append(_case(rng, "conv2d", (4, 4, ob), 5, 5, cin, 8, 3, 1))
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
            else:  # shifts of both signs (the any-shift form)
                c.shift = np.array([1, -1, -3, 0, 0, -2, -1, 0], np.int64)
                c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
                c.bias = rng.integers(-60, 61, size=8)
            out.append(c)
    del base
    out += _mixed_shift_cases(rng)
    return out


#: mixed-sign shift patterns: like real sub-byte layers (most 0, a few +1, the rest negative),
#: every sign next to every other one in a channel pair, and the extremes of the any-shift form
_MIXED_SHIFTS = [[0, 1, -2, 0, 0, 0, -1, 1], [1, -1, -3, 0, 2, -6, 0, 1], [-1, 2, 1, -4, -2, 0, 3, -1]]


def _mixed_shift_cases(rng) -> list:
    """Shifts of both signs in one layer (the any-shift form, suffix m) for every fused routine and
    output width; odd pixel counts (W8: the one-pixel block in C), A2 with K <= 8 (suffix h), A2
    with 2-bit outputs below 64 pixels (SMMLAR form) and from 64 on (thresholds), multipliers below
    2^30 next to large ones, and the extremes: shift -23 and the largest left shift the bounds
    allow, then one past it (general path)."""
    out = []
    for bits in FUSED_BITS:
        for i, (op, h, w, cin, cout, kh, pad) in enumerate([("pointwise", 3, 3, 16, 8, 1, 0),
                                                            ("pointwise", 3, 5, 32, 16, 1, 0),
                                                            ("conv2d", 5, 3, 8, 8, 3, 1)]):
            c = _case(rng, op, bits, h, w, cin, cout, kh, pad)
            pattern = _MIXED_SHIFTS[i % len(_MIXED_SHIFTS)]
            c.shift = np.array([pattern[j % 8] for j in range(cout)], np.int64)
            c.multiplier = rng.integers(1 << 30, 1 << 31, size=cout)
            if i == 2:  # multipliers below 2^30 and 0 next to large ones
                c.multiplier[1::3] //= int(rng.integers(2, 1000))
                c.multiplier[2] = 0
            c.bias = rng.integers(-60, 61, size=cout)
            out.append(c)
    # A2 with K <= 8 (routines without the loop), 2-bit outputs with few pixels (SMMLAR form) and
    # with 64 pixels (thresholds; placement per channel whatever the sign)
    for bits, hw, cin in [((2, 2, 8), (3, 5), 8), ((2, 2, 4), (3, 5), 4), ((2, 2, 2), (3, 5), 8),
                          ((2, 2, 2), (8, 8), 16), ((2, 2, 2), (8, 9), 8)]:
        c = _case(rng, "pointwise", bits, *hw, cin, 8)
        c.shift = np.array(_MIXED_SHIFTS[1], np.int64)
        c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
        c.bias = rng.integers(-20, 21, size=8)
        out.append(c)
    # extremes: right shift -23 next to the largest left shift the 32-bit bounds allow
    # (xb 2^s + |zp| < 2^31 with xb = |cst| + span, span = K max|x - zp| 128 (W8), K/16 1920 (A4),
    # 15 K (A2)), and one more (general path for the whole layer)
    for bits in [(8, 8, 8), (4, 8, 4), (4, 4, 8), (4, 4, 2), (2, 2, 8), (2, 2, 4)]:
        ib, wb, ob = bits
        for extra in (0, 1):
            c = _case(rng, "pointwise", bits, 3, 3, 16, 8, mode="random", x_zp=0 if ib != 8 else None)
            c.bias = np.zeros(8, np.int64)
            # bound of |x| with zero bias: the dot product's span plus the constant's magnitude
            if wb == 8:
                span = 16 * max(layout.act_range(ib)[1] - c.x_zp, c.x_zp - layout.act_range(ib)[0]) * 128
            elif ib == 4:
                span = 1920 + 896 + 8 * 16 * 8  # fields of one chunk, 896 K/16 and (8 - zp) sum(w)
            else:
                span = 15 * 16 + 6 * 16 + 3 * 2 * 16  # S', the 6K offset and zp sum(w)
            smax = 0
            while (span << (smax + 1)) + 256 < (1 << 31):
                smax += 1
            c.shift = np.array([-23, smax + extra, 0, -1, 1, -12, smax, 0], np.int64)
            c.multiplier = rng.integers(1 << 30, 1 << 31, size=8)
            c.multiplier[1] = (1 << 31) - 1
            out.append(c)
    return out


pytestmark_dsp = pytest.mark.skipif(toolchain.tools_available() is not None,
                                    reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


def _path_pairs(rng) -> list:
    """(every shift negative, shifts of both signs) on the same layer data, one pair per fused
    family and output width, 6x6 pixels (A2W2 with 2-bit outputs: 6x6 takes the SMMLAR form, 8x8
    the thresholds): with both signs the layer must stay on the fused path, within a few percent of
    the right-shift form (the general path takes 1.2x and more)."""
    pairs = []
    for bits, hw in [(b, 6) for b in FUSED_BITS] + [((2, 2, 2), 8)]:
        neg = _case(rng, "pointwise", bits, hw, hw, 64, 32)
        neg.shift = -rng.integers(1, 4, size=32)
        neg.multiplier = rng.integers(1 << 30, 1 << 31, size=32)
        neg.bias = rng.integers(-60, 61, size=32)
        mixed = _case(rng, "pointwise", bits, hw, hw, 64, 32)
        for f in ("x", "x_zp", "w", "bias", "multiplier", "out_zp"):
            setattr(mixed, f, getattr(neg, f))
        mixed.shift = np.array([_MIXED_SHIFTS[0][j % 8] for j in range(32)], np.int64)
        pairs.append((neg, mixed))
    return pairs


@pytestmark_dsp
@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_fused_paths_bit_exact_in_qemu(tmp_path, target):
    seed = 11 if target == "cortex-m7" else 12
    cs = _fused_cases(seed=seed)
    pairs = _path_pairs(np.random.default_rng(seed + 100))
    cs += [c for pair in pairs for c in pair]
    results, raw = firmware.run_cases(cs, target, tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [(r.name, cs[i].describe()) for i, r in enumerate(results) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:4]}; exit {raw.exit_code}"
    assert raw.exit_code == 0
    # shifts of both signs stay on the fused path
    counts = [r.instructions for r in results[len(cs) - 2 * len(pairs):]]
    slow = [(pairs[i][0].bits, counts[2 * i], counts[2 * i + 1]) for i in range(len(pairs))
            if counts[2 * i + 1] > 1.08 * counts[2 * i]]
    assert not slow, f"shifts of both signs left the fused path (bits, negative, mixed): {slow}"
