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

The byte row of 8-bit inputs whose channel count is off the word taps (``Cin % 4 != 0``, 4-bit
weights ``Cin % 8 != 0``; ``mixq_gather8``) is checked for every weight and output width: 1, 2, 3,
5, 6, 7 channels (and 4 / 12 with 4-bit weights), interior windows copied a word per 4 bytes with
their rows ``dh * iw * Cin`` bytes apart, border windows (padding on every side, whole padding
rows, windows wider than the image), dilation across (taps one by one), the last bytes of the
input (no word read past its end), zero points at both ends of the int8 range with extreme values,
the zero point folded into the constants (many pixels per channel) or not, odd pixel and channel
counts, two images, fully connected rows, narrow clamps; the word taps of the other channel counts
(2-bit weights now included); and the scratch they ask for against the Python mirror
(``tvm_mixq.codegen.emitter.dsp_conv_scratch``).
"""
import types

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
    _, problems = firmware.check_in_qemu(_stream_cases(seed=21 if target == "cortex-m7" else 22), target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"


def _srow_cases(seed: int) -> list:
    """Stream rows (``mixq_srow_*``, ``mixq_sg_a2`` / ``mixq_sg_a4``): the bit-stream im2col of stream
    layers with dilation 1 across and several taps, from padded bit rows of the input held in KH
    slots (a pattern row for padding rows), read in pieces of at most 24 bits per window row."""
    rng = np.random.default_rng(seed)
    out = []
    for bits in [(4, 4, 4), (2, 2, 2), (4, 4, 8), (2, 2, 8), (4, 4, 2), (2, 2, 4)]:
        lanes = bits[0] == 4
        for mode in ("random", "max", "min"):
            # VWW input conv class: rows of 18 (A2) / 36 (A4) bits, pixels mid-byte, right/bottom padding
            out.append(_case(rng, bits, 11, 13, 3, 8, 3, 3, (2, 2), (0, 1, 0, 1), mode=mode))
        # KWS input conv class: one channel, 10x4, odd output width (pairs straddle two output rows)
        out.append(_case(rng, bits, 17, 9, 1, 8, 10, 4, (2, 2), (4, 5, 1, 2)))
        # output width 1: every pair straddles; padding wider than the input on both sides
        out.append(_case(rng, bits, 7, 2, 3, 4, 3, 5, (1, 1), (1, 1, 2, 2)))
        # rows of several pieces (5 channels, 5 taps across: 50 / 100 bits), padding 2 on every side
        out.append(_case(rng, bits, 6, 9, 5, 4, 3, 5, (1, 1), (2, 2, 2, 2)))
        # vertical dilation (rows 2 apart), stride (2, 1), two images (slots tagged by image)
        out.append(_case(rng, bits, 9, 7, 3, 6, 3, 3, (2, 1), (2, 2, 1, 1), (2, 1), n=2))
        # odd channel counts whose pixels start mid-byte, stride 3 across
        out.append(_case(rng, bits, 7, 11, 7, 4, 2, 3, (1, 3), (0, 1, 1, 1)))
        # the last window row ends on the last byte of the input (slot copies read no word past it)
        out.append(_case(rng, bits, 5, 7, 3, 4, 3, 3, (2, 2), (0, 0, 0, 0)))
        out.append(_case(rng, bits, 4, 3, 1, 4, 2, 2, (1, 1), (0, 0, 0, 0)))
        # narrow clamp: the general path on the same rows
        out.append(_case(rng, bits, 6, 7, 3, 4, 3, 3, (1, 1), (1, 1, 1, 1), narrow=True))
        # A2 with K > 272 (7x7x7 = 343): the general path
        if bits[0] == 2:
            out.append(_case(rng, bits, 9, 9, 7, 4, 7, 7, (1, 1), (3, 3, 3, 3)))
        for c in out[-11:]:
            c.lanes = lanes and c.bits[1] == 4
    # A4W4 with the plain layout (weights re-spaced at call start, the slots after them)
    out.append(_case(rng, (4, 4, 4), 11, 13, 3, 8, 3, 3, (2, 2), (0, 1, 0, 1)))
    out.append(_case(rng, (4, 4, 8), 17, 9, 1, 8, 10, 4, (2, 2), (4, 5, 1, 2)))
    # rows too wide for the slots' bytes, and too many pieces: the per-pixel stream
    out.append(_case(rng, (2, 2, 2), 3, 2400, 7, 4, 3, 3, (1, 1), (1, 1, 1, 1)))
    out.append(_case(rng, (4, 4, 4), 3, 6, 15, 4, 3, 7, (1, 1), (1, 1, 3, 3)))
    return out


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_stream_rows_bit_exact_in_qemu(tmp_path, target):
    cs = _srow_cases(seed=51 if target == "cortex-m7" else 52)
    results, problems = firmware.check_in_qemu(cs, target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"
    # the mirror sizes what the code generator emits (A4W4 in lane words; A2W2 packed from 8 pixels,
    # where it answers the larger of the packed path and the widen-16 path of fewer pixels)
    wrong = []
    for r, c in zip(results, cs):
        if not (c.lanes or (c.bits[0] == 2 and c.x.shape[0] * _out_hw(c) >= 8)):
            continue
        kp = layout.weight_row_len(c.w[0].size, c.bits[1])
        widen16 = 4 * kp + 28 * ((c.w.shape[0] + 1) & ~1)
        m = _mirror_scratch(c)
        if r.scratch != m and not (c.bits[0] == 2 and m == widen16 and r.scratch <= m):
            wrong.append((r.name, r.scratch, m))
    assert not wrong, f"scratch of the DSP build vs the Python mirror: {wrong[:4]}"


def _out_hw(c) -> int:
    top, bottom, left, right = c.padding
    oh = (c.x.shape[1] + top + bottom - (c.w.shape[1] - 1) * c.dilation[0] - 1) // c.stride[0] + 1
    ow = (c.x.shape[2] + left + right - (c.w.shape[2] - 1) * c.dilation[1] - 1) // c.stride[1] + 1
    return oh * ow


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
    _, problems = firmware.check_in_qemu(_ring_cases(seed=31 if target == "cortex-m7" else 32), target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"



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


def _byte_cases(seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for wb in (8, 4, 2):
        for ob in (8, 4, 2):
            bits = (8, wb, ob)
            # VWW input conv class: 3 channels, 3x3 stride 2, TFLite SAME padding (right/bottom)
            out.append(_case(rng, bits, 9, 11, 3, 8, 3, 3, (2, 2), (0, 1, 0, 1)))
            # KWS input conv class: 1 channel, 10x4 stride 2, padding 4/5 and 1/2
            out.append(_case(rng, bits, 15, 6, 1, 8, 10, 4, (2, 2), (4, 5, 1, 2)))
        # extreme values with the zero point at both ends of the int8 range
        for mode, zp in (("max", -128), ("min", 127), ("edges", -128), ("edges", 127)):
            c = _case(rng, (8, wb, 8), 6, 7, 5, 4, 3, 3, (1, 1), (1, 1, 1, 1), mode=mode)
            c.x_zp = zp
            acc = cases.ops.conv2d_accumulate(c.x, zp, c.w, c.stride, c.padding, c.dilation)
            c.bias, c.multiplier, c.shift = cases._requant(rng, acc, 8, mode == "edges")
            out.append(c)
        for cin in (1, 2, 3, 5, 6, 7) + ((4, 12) if wb == 4 else ()):
            # padding 2 on every side: whole padding rows, partial window rows, windows wider than
            # the image (5x3 filter on a 4-wide input)
            out.append(_case(rng, (8, wb, 8), 5, 4, cin, 6, 5, 3, (1, 1), (2, 2, 2, 2)))
            # dilation 2 across and down (taps one by one), stride (1, 2), odd channel count
            out.append(_case(rng, (8, wb, 4), 8, 9, cin, 5, 3, 3, (1, 2), (2, 2, 2, 2), (2, 2)))
        # channels on the word taps (widened straight from the input, padding taps 0): 2-bit weights
        # with their sum(x - zp), 4-bit weights in groups of 8
        for cin in ((8, 16) if wb == 4 else (4, 8)):
            out.append(_case(rng, (8, wb, 8), 5, 6, cin, 6, 3, 3, (1, 1), (1, 1, 1, 1), mode="edges"))
        # vertical dilation only: interior windows with rows 2 iw Cin bytes apart
        out.append(_case(rng, (8, wb, 8), 9, 8, 3, 4, 3, 3, (1, 1), (0, 0, 1, 1), (2, 1)))
        # the last window row ends on the last byte of the input (no padding): no word past it
        out.append(_case(rng, (8, wb, 8), 4, 5, 3, 4, 2, 3, (2, 2), (0, 0, 0, 0)))
        out.append(_case(rng, (8, wb, 2), 3, 3, 1, 4, 3, 3, (1, 1), (0, 0, 0, 0)))
        # few pixels for many channels (zero point not folded), odd pixel count, odd Cout
        out.append(_case(rng, (8, wb, 8), 3, 5, 3, 33, 3, 3, (1, 1), (1, 1, 1, 1)))
        out.append(_case(rng, (8, wb, 8), 5, 5, 3, 7, 3, 3, (2, 2), (1, 1, 1, 1)))
        # two images; narrow clamp (the general path on the same rows)
        out.append(_case(rng, (8, wb, 8), 5, 5, 6, 4, 3, 3, (1, 1), (1, 1, 1, 1), n=2))
        out.append(_case(rng, (8, wb, 4), 7, 7, 3, 8, 3, 3, (2, 2), (1, 1, 1, 1), narrow=True))
        # fully connected with K % 4 != 0 (one row, K bytes copied)
        for k in (27, 41):
            x = cases._values(rng, (2, k), -128, 127, "random")
            w = cases._values(rng, (6, k), *layout.weight_range(wb), "random")
            c = cases.ConvCase("fully_connected", (8, wb, 8), x, int(rng.integers(-128, 128)), w, None)
            c.bias, c.multiplier, c.shift = cases._requant(rng, (x - c.x_zp) @ w.T, 8, False)
            out.append(c)
    return out


def _mirror_scratch(case) -> int:
    """The Python mirror of the DSP scratch (what the code generator gives the call)."""
    from tvm_mixq.codegen.emitter import dsp_conv_scratch

    w = case.w if case.w.ndim == 4 else case.w.reshape(case.w.shape[0], 1, 1, -1)
    f = dict(zip("nhwc", w.shape))
    p = {"bits": case.bits, "filter_dims": f}
    if case.op != "fully_connected":
        n, h, wd, c = case.x.shape
        top, bottom, left, right = case.padding
        (sh, sw), (dh, dw) = case.stride, case.dilation
        oh = (h + top + bottom - (f["h"] - 1) * dh - 1) // sh + 1
        ow = (wd + left + right - (f["w"] - 1) * dw - 1) // sw + 1
        p.update(in_dims={"n": n, "h": h, "w": wd, "c": c}, out_dims={"n": n, "h": oh, "w": ow, "c": f["n"]},
                 stride=(sh, sw), dilation=(dh, dw), padding=(top, left))
    layer = types.SimpleNamespace(template="fc" if case.op == "fully_connected" else "conv", p=p)
    return dsp_conv_scratch(layer)


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_byte_row_im2col_bit_exact_in_qemu(tmp_path, target):
    cs = _byte_cases(seed=41 if target == "cortex-m7" else 42)
    results, problems = firmware.check_in_qemu(cs, target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"
    wrong = [(r.name, r.scratch, _mirror_scratch(c)) for r, c in zip(results, cs) if r.scratch != _mirror_scratch(c)]
    assert not wrong, f"scratch of the DSP build vs the Python mirror: {wrong[:4]}"
