"""Bit-stream im2col of the packed A4W4 / A2W2 conv paths (kernels/src/mixq_conv_dsp.h,
``mixq_im2col_stream``), on the emulated Cortex-M7 (Cortex-M4 with --runslow).

The stream path runs when the input channel count is off the word paths (A4: ``Cin % 8 != 0``,
A2: ``Cin % 16 != 0``): window rows are copied as bit ranges of the packed input, padding taps
append the zero point's pattern, every 32-bit stream word becomes lane words. The cases cover
what it must get right: 1 and 3 channels (the KWS and VWW input convolutions, non-square filters,
stride 2), pixels and window rows starting mid-byte, padding on every side (partial rows, whole
rows above and below), dilation (taps copied one by one), the last bytes of the input tensor
(no word read past its end), K around the word and 16-element boundaries, and outputs through
the fused routines and the general path (8-bit outputs, narrow clamp).
"""
import numpy as np
import pytest

from tvm_mixq.kernellib import cases, firmware, layout

toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")
pytestmark = pytest.mark.skipif(toolchain.tools_available() is not None,
                                reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


def _case(rng, bits, h, w, cin, cout, kh, kw, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), mode="random",
          narrow=False, n=1):
    ib, wb, ob = bits
    x = cases._values(rng, (n, h, w, cin), *layout.act_range(ib), mode)
    wts = cases._values(rng, (cout, kh, kw, cin), *layout.weight_range(wb), "random" if mode == "edges" else mode)
    lo, hi = layout.act_range(ib)
    zp = int(rng.integers(lo, hi + 1))
    op = "pointwise" if kh == kw == 1 and not any(pad) else "conv2d"
    c = cases.ConvCase(op, bits, x, zp, wts, None, stride=stride, padding=pad, dilation=dil)
    acc = cases.ops.conv2d_accumulate(x, zp, wts, stride, pad, dil)
    c.bias, c.multiplier, c.shift = cases._requant(rng, acc, ob, False)
    c.qmin, c.qmax = layout.act_range(ob)
    if narrow:
        c.qmin, c.qmax = c.qmin + 1, c.qmax - 1
    c.out_zp = int(rng.integers(c.qmin, c.qmax + 1))
    return c


def _stream_cases(seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for bits in [(4, 4, 4), (2, 2, 2), (4, 4, 8), (2, 2, 8)]:
        for mode in ("random", "max", "min"):
            # VWW input conv: 3 channels, 3x3 stride 2, padding right/bottom only (TFLite SAME)
            out.append(_case(rng, bits, 9, 11, 3, 8, 3, 3, (2, 2), (0, 1, 0, 1), mode=mode))
        # KWS input conv: 1 channel, 10x4 filter, stride 2, asymmetric padding
        out.append(_case(rng, bits, 15, 6, 1, 8, 10, 4, (2, 2), (4, 5, 1, 2)))
        # padding 2 on every side: whole rows of padding above and below, partial window rows
        out.append(_case(rng, bits, 5, 7, 5, 4, 5, 3, (1, 1), (2, 2, 1, 1)))
        # dilation 2 (taps one by one), odd channel counts, pixels mid-byte
        out.append(_case(rng, bits, 8, 8, 7, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)))
        # pointwise with few channels (48x48x8 class at A2; 12 at A4/A2), odd pixel count
        out.append(_case(rng, bits, 5, 7, 8 if bits[0] == 2 else 12, 16, 1, 1))
        # K around the stream word (8 nibbles / 16 crumbs) and lane-row boundaries
        for cin in (15, 17, 31, 33):
            out.append(_case(rng, bits, 3, 4, cin, 4, 1, 1))
        # the window row ending on the last byte of the input (right/bottom corner, no padding)
        out.append(_case(rng, bits, 4, 5, 3, 4, 2, 3, (2, 2), (0, 0, 0, 0)))
        # narrow clamp: the fused routines refuse it, the general path runs on the same lanes
        out.append(_case(rng, bits, 6, 5, 3, 4, 3, 3, (1, 1), (1, 1, 1, 1), narrow=True))
    return out


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_stream_im2col_bit_exact_in_qemu(tmp_path, target):
    cs = _stream_cases(seed=21 if target == "cortex-m7" else 22)
    results, raw = firmware.run_cases(cs, target, tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [(r.name, cs[i].describe()) for i, r in enumerate(results) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:4]}; exit {raw.exit_code}"
    assert raw.exit_code == 0


def _ring_cases(seed: int) -> list:
    """Word-path channel counts (A4: Cin % 8 == 0, A2: Cin % 16 == 0) with several taps: the ring
    of converted rows (``mixq_ring_pair``) builds the pixel pairs' rows."""
    rng = np.random.default_rng(seed)
    out = []
    for bits in [(4, 4, 4), (2, 2, 2), (4, 4, 8), (2, 2, 8)]:
        c16 = 16 if bits[0] == 2 else 8
        for mode in ("random", "max", "min"):
            # the anchor's shape class: 3x3 stride 1, padding 1, even width
            out.append(_case(rng, bits, 6, 8, 16, 8, 3, 3, (1, 1), (1, 1, 1, 1), mode=mode))
        # odd output width: pairs straddling two output rows take the per-pixel path
        out.append(_case(rng, bits, 5, 7, c16, 4, 3, 3, (1, 1), (1, 1, 1, 1)))
        # stride 2 with asymmetric (TFLite SAME) padding, odd width
        out.append(_case(rng, bits, 9, 11, 2 * c16, 8, 3, 3, (2, 2), (0, 1, 0, 1)))
        # padding 2 on every side (whole padding rows above and below), non-square filter
        out.append(_case(rng, bits, 5, 7, c16, 4, 5, 3, (1, 1), (2, 2, 1, 1)))
        # dilation 2 (taps copied one by one), stride (1, 2)
        out.append(_case(rng, bits, 8, 9, c16, 6, 3, 3, (1, 2), (2, 2, 2, 2), (2, 2)))
        # one filter row (1x3) and one filter column (3x1)
        out.append(_case(rng, bits, 4, 6, c16, 4, 1, 3, (1, 1), (0, 0, 1, 1)))
        out.append(_case(rng, bits, 6, 4, c16, 4, 3, 1, (1, 1), (1, 1, 0, 0)))
        # two images: ring rows tagged by image
        out.append(_case(rng, bits, 4, 4, c16, 4, 3, 3, (1, 1), (1, 1, 1, 1), n=2))
        # narrow clamp: general path on the ring's rows
        out.append(_case(rng, bits, 6, 6, c16, 4, 3, 3, (1, 1), (1, 1, 1, 1), narrow=True))
        # a row too wide for the ring's scratch bound: per-pixel path
        out.append(_case(rng, bits, 3, 130, 64, 2, 3, 3, (1, 1), (1, 1, 1, 1)))
    return out


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_ring_im2col_bit_exact_in_qemu(tmp_path, target):
    cs = _ring_cases(seed=31 if target == "cortex-m7" else 32)
    results, raw = firmware.run_cases(cs, target, tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [(r.name, cs[i].describe()) for i, r in enumerate(results) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:4]}; exit {raw.exit_code}"
    assert raw.exit_code == 0


def test_ring_is_optional_when_the_scratch_is_short(tmp_path):
    """Generated code sizes a layer's scratch once for the whole layer; a patch tile narrower than
    a layer too wide for the ring may take the ring, which that scratch does not hold. The call must
    then run without the ring (bit-exact), and only scratch below the ring-less minimum is refused."""
    rng = np.random.default_rng(41)
    out = []
    for bits in [(4, 4, 4), (2, 2, 8)]:
        c = _case(rng, bits, 5, 16, 64, 6, 3, 3, (1, 1), (1, 1, 1, 1))
        cpad, kp = (6 + 1) & ~1, layout.weight_row_len(3 * 3 * 64, bits[1])
        least = 2 * kp + 28 * cpad + (cpad * kp if bits[0] == 4 else 0)  # no ring (README "Scratch")
        for size in (None, least, least - 4):
            case = _case(np.random.default_rng(41 + bits[0]), bits, 5, 16, 64, 6, 3, 3, (1, 1), (1, 1, 1, 1))
            case.scratch = size
            out.append(case)
    results, raw = firmware.run_cases(out, "cortex-m7", tmp_path)
    for i in range(0, len(out), 3):
        full, short, refused = results[i:i + 3]
        assert full.ok and short.ok, (full.name, short.name)
        assert full.scratch > short.scratch, "the case's own request includes the ring"
        assert not refused.ok, "scratch below the minimum must be refused"
