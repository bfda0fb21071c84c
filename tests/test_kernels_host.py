"""Kernel library, host build: every variant bit-exact against the oracle (tvm_mixq.reference.ops).

The host has no Cortex-M DSP extension, so this checks the portable C path; the DSP path is
cross-compiled in test_kernels_cross.py and run on the emulated core by the QEMU harness.
"""
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tvm_mixq.errors import MixqError
from tvm_mixq.kernellib import KernelLib, cases, layout
from tvm_mixq.reference import ops

REPO = Path(__file__).resolve().parents[1]
BIT_TRIPLES = cases.BIT_TRIPLES
BIT_PAIRS = list(itertools.product(layout.BITS, repeat=2))


@pytest.fixture(scope="module")
def lib() -> KernelLib:
    return KernelLib()



def _check(lib, case):
    got, want = case.run(lib), case.oracle()
    assert got.shape == want.shape, case.describe()
    np.testing.assert_array_equal(got, want, err_msg=case.describe())


@pytest.mark.parametrize("bits", BIT_TRIPLES, ids=lambda b: "a{}w{}o{}".format(*b))
@pytest.mark.parametrize("op", cases.CONV_OPS)
def test_conv_family_random(lib, op, bits):
    rng = np.random.default_rng([cases.CONV_OPS.index(op), *bits])
    for mode in ("random", "random", "random", "min", "max", "edges"):
        _check(lib, cases.random_conv_case(rng, op, bits, mode=mode))


@pytest.mark.parametrize("bits", BIT_TRIPLES, ids=lambda b: "a{}b{}o{}".format(*b))
def test_add_random(lib, bits):
    rng = np.random.default_rng([7, *bits])
    for mode in ("random", "random", "min", "max", "edges"):
        _check(lib, cases.random_add_case(rng, bits, mode=mode))


@pytest.mark.parametrize("bits", BIT_PAIRS, ids=lambda b: "a{}o{}".format(*b))
def test_avgpool_random(lib, bits):
    rng = np.random.default_rng([9, *bits])
    for mode in ("random", "random", "random", "min", "max", "edges"):
        _check(lib, cases.random_pool_case(rng, bits, mode=mode))


@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 4, 4), (2, 2, 2), (8, 4, 2), (2, 8, 4)])
def test_conv_odd_channels_full_padding_saturation(lib, bits):
    """Odd channel counts, padding of k-1 on every side (windows mostly off the image), clamping."""
    ib, wb, ob = bits
    rng = np.random.default_rng(3)
    x = rng.integers(*layout.act_range(ib), size=(1, 5, 3, 7), endpoint=True)
    w = rng.integers(*layout.weight_range(wb), size=(5, 3, 3, 7), endpoint=True)
    x_zp = layout.act_range(ib)[1]
    mult = np.full(5, 1 << 30)
    shift = np.array([-12, -6, 0, 4, 10])
    bias = np.array([-(1 << 20), -5, 0, 7, 1 << 20])
    lo, hi = layout.act_range(ob)
    want = ops.conv2d(x, x_zp, w, bias, (1, 2), (2, 2, 2, 2), (1, 1), mult, shift, hi // 2, lo, hi)
    assert (want == lo).any() and (want == hi).any()  # the case saturates both ways
    got = lib.conv2d(x, x_zp, w, bias, (1, 2), (2, 2, 2, 2), (1, 1), mult, shift, hi // 2, lo, hi, bits)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [1, 3, 15, 16, 17, 33, 64, 460, 1000])
@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 4, 4), (2, 2, 2), (8, 4, 8)])
def test_reduction_lengths(lib, bits, k):
    """Reduction lengths around the padding multiples and beyond one extraction chunk."""
    rng = np.random.default_rng(k)
    for mode in ("random", "max", "min"):
        case = cases.random_conv_case(rng, "fully_connected", bits, mode=mode)
        case.x = cases._values(rng, (case.x.shape[0], k), *layout.act_range(bits[0]), mode)
        case.w = cases._values(rng, (case.w.shape[0], k), *layout.weight_range(bits[1]), mode)
        _check(lib, case)


def test_weight_layout_flash_not_above_int8():
    for k in (8, 9, 27, 32, 144, 256):
        assert layout.weights_size(k, 16, 4) <= k * 16
        assert layout.weights_size(k, 16, 2) <= k * 16
    assert layout.weights_size(256, 64, 4) == 256 * 64 // 2
    assert layout.weights_size(256, 64, 2) == 256 * 64 // 4


def test_weight_layout_matches_c(lib):
    for bits in layout.BITS:
        for k in (1, 5, 16, 27):
            assert lib.weights_size(k, 3, bits) == layout.weights_size(k, 3, bits)


def test_w2_lane_words():
    """ror(word, r) & 0x30033003 gives lanes u(4j+1) | u(4j) << 12 | u(4j+3) << 16 | u(4j+2) << 28."""
    rng = np.random.default_rng(0)
    w = rng.integers(-2, 1, size=(1, 16), endpoint=True)
    word = int(layout.pack_weights(w, 2).view("<u4")[0])
    u = (w[0] + 2).tolist()
    for j, r in enumerate((0, 2, 8, 10)):
        rot = ((word >> r) | (word << (32 - r))) & 0xFFFFFFFF
        lane = rot & 0x30033003
        assert lane == u[4 * j + 1] | u[4 * j] << 12 | u[4 * j + 3] << 16 | u[4 * j + 2] << 28


def test_bad_input_is_refused(lib):
    x = np.zeros((1, 4, 4, 3), np.int64)
    w = np.zeros((2, 3, 3, 3), np.int64)
    m, s = np.full(2, 1 << 30), np.zeros(2, np.int64)
    ok = dict(stride=1, padding=(1, 1, 1, 1), dilation=1, multiplier=m, shift=s, out_zp=0, qmin=-128, qmax=127)
    with pytest.raises(MixqError, match="bitwidths"):
        lib.conv2d(x, 0, w, None, bits=(8, 3, 8), **ok)
    with pytest.raises(MixqError, match="4-bit input"):
        lib.conv2d(x - 1, 0, w, None, bits=(4, 8, 8), **ok)
    with pytest.raises(MixqError, match="2-bit weight"):
        lib.conv2d(x, 0, w + 2, None, bits=(8, 2, 8), **ok)
    with pytest.raises(MixqError, match="output range"):
        lib.conv2d(x, 0, w, None, bits=(8, 8, 4), **ok)
    with pytest.raises(MixqError, match="zero point"):
        lib.conv2d(x, 16, w, None, bits=(4, 8, 8), **ok)
    with pytest.raises(MixqError, match="input channels"):
        lib.conv2d(x, 0, w[..., :2], None, bits=(8, 8, 8), **ok)
    with pytest.raises(MixqError, match="1x1"):
        lib.conv2d(x, 0, w, None, bits=(8, 8, 8), op="pointwise", **ok)
    with pytest.raises(MixqError, match="bias"):
        lib.conv2d(x, 0, w, np.zeros(3), bits=(8, 8, 8), **ok)
    with pytest.raises(MixqError, match="overflow"):
        lib.fully_connected(np.zeros((1, 70000), np.int64), -128, np.zeros((1, 70000), np.int64), None,
                            m[:1], s[:1], 0, -128, 127, bits=(8, 8, 8))
    with pytest.raises(MixqError, match="channels"):
        lib.depthwise_conv2d(x, 0, np.zeros((1, 3, 3, 4), np.int64), None, 1, (0, 0, 0, 0), 1, 1, m, s, 0,
                             -128, 127)
    with pytest.raises(MixqError, match="same"):
        lib.add(x, 0, 1 << 30, -1, x[..., :2], 0, 1 << 30, -1, 1 << 30, -1, 0, -128, 127)
    with pytest.raises(MixqError, match="must be an integer"):
        lib.fully_connected(np.zeros((1, 4)), 0, np.zeros((1, 4), np.int64), None, m[:1], s[:1], 0, -128, 127)


def test_c_side_rejects_bad_arguments(lib):
    """The C kernels check their own arguments too (status, nothing written)."""
    import ctypes

    from tvm_mixq.kernellib import lib as L

    fn = lib.symbol("mixq_conv2d_a8w8o8")
    fn.argtypes = L._CONV_ARGS[1:]
    fn.restype = ctypes.c_int32
    p = L.ConvParams(0, 0, L.Tile(1, 1), L.Tile(0, 0), L.Tile(1, 1), 1, -128, 127)
    idims, wdims, odims = L.Dims(1, 2, 2, 3), L.Dims(2, 1, 1, 4), L.Dims(1, 2, 2, 2)  # 3 != 4 channels
    mult = np.full(2, 1 << 30, np.int32)
    sh = np.zeros(2, np.int32)
    q = L._Quant(mult, sh).struct()
    buf = np.zeros(64, np.int32)
    ctx = L.Context(buf.ctypes.data, buf.nbytes)
    x = np.zeros(16, np.uint8)
    out = np.full(8, 0x5A, np.uint8)
    assert fn(ctx, p, q, idims, x.ctypes.data, wdims, x.ctypes.data, None, odims, out.ctypes.data) == -1
    assert (out == 0x5A).all()
    wdims = L.Dims(2, 1, 1, 3)
    small = L.Context(buf.ctypes.data, 0)
    assert fn(small, p, q, idims, x.ctypes.data, wdims, x.ctypes.data, None, odims, out.ctypes.data) == -2
    assert fn(ctx, p, q, idims, x.ctypes.data, wdims, x.ctypes.data, None, odims, out.ctypes.data) == 0


def test_generated_sources_up_to_date():
    proc = subprocess.run([sys.executable, str(REPO / "kernels" / "gen" / "gen_variants.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_requantization_extremes(lib):
    """Accumulators (set through the bias, input at its zero point) times extreme multipliers and
    shifts: exact halves, both signs, shifts from -31 to +30, multipliers 0 to 2^31 - 1."""
    rng = np.random.default_rng(1)
    limit = (1 << 31) - 1 - 255 * 128
    accs = np.concatenate([np.array([0, 1, -1, 2, -2, 3, -3, limit, -limit, 1 << 20, -(1 << 20)]),
                           rng.integers(-limit, limit, size=60), rng.integers(-5000, 5000, size=60)])
    for shift in (-31, -20, -13, -8, -3, -2, -1, 0, 1, 5, 30):
        for mult in (0, 1, 1 << 30, (1 << 30) + 1, 1518500250, (1 << 31) - 1):
            # accumulators whose results land inside the output range, on and around rounding ties
            scale = (1 << 31) / max(mult, 1) * 2.0 ** (-shift)
            ties = np.round((np.arange(-130, 131, 3)[:, None] + np.array([0.0, 0.5, -0.5])) * scale)
            ties = (ties[..., None] + np.array([-1, 0, 1])).reshape(-1)
            ties = ties[np.abs(ties) <= limit].astype(np.int64)
            cases_acc = np.concatenate([accs, ties])
            cout = cases_acc.size
            x = np.full((1, 1), -128)
            w = np.zeros((cout, 1), np.int64)
            m = np.full(cout, mult)
            s = np.full(cout, shift)
            want = ops.fully_connected(x, -128, w, cases_acc, m, s, 3, -128, 127)
            got = lib.fully_connected(x, -128, w, cases_acc, m, s, 3, -128, 127, bits=(8, 8, 8))
            np.testing.assert_array_equal(got, want, err_msg=f"multiplier {mult} shift {shift}")


def test_avgpool_channel_blocks(lib):
    """The channel blocks of the DSP path's average pool, run here through the portable path (the
    same block loop, window runs and finishing forms; the DSP accumulators in test_kernels_dsp.py)."""
    for case in cases.pool_block_cases(5):
        _check(lib, case)


def test_add_fast_path_groups(lib):
    """The add's groups of four and element tail, each scaling form (portable path; the DSP path in
    test_kernels_dsp.py)."""
    for case in cases.add_fast_cases(5):
        _check(lib, case)


def test_avgpool_channel_blocks_long_windows(lib):
    """Windows longer than the 16-bit lanes of the DSP path hold (4369 pixels at 4 bits, 21845 at 2)."""
    for case in cases.pool_block_cases(6, big=True):
        if case.x.shape[1] > 20:
            _check(lib, case)
