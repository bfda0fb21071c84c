"""Depthwise kernels, Cortex-M DSP path, bit for bit in QEMU (mps2-an500, Cortex-M7).

The DSP path of the depthwise core (passes of 4 channels over int16 lanes, requantization with one
SMMLAR per output, kernels/README.md "Depthwise") has several sub-paths: the unrolled 3x3 path
(whole output range, every shift negative) and the general one (any filter, narrow clamps, shifts
>= 0), 8-bit word passes, sub-byte word passes (8 / 16 channels) and 4-channel halfword / byte
passes, packed stores of whole blocks or element by element when a pixel starts mid-byte, border
pixels (zero-point pixel) and interior ones, and the fall-back to the portable loop when a layer
leaves the path's bounds (shift > 7, sums that would overflow once scaled). Each case here aims at
one of them; every output is compared in the firmware with the Python oracle's. The unrolled 3x3
path also takes shifts of both signs (masked sign term) when an operand is sub-byte: pairs of the
same layer with negative and with mixed shifts check by instruction count that it does.
"""
from __future__ import annotations

import numpy as np
import pytest

from tvm_mixq.kernellib import cases, firmware, layout

toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")
pytestmark = pytest.mark.skipif(toolchain.tools_available() is not None,
                                reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


def _case(rng: np.random.Generator, bits: tuple[int, int, int], hw: tuple[int, int], c: int,
          k: tuple[int, int] = (3, 3), stride: int = 1, pad: tuple[int, int, int, int] = (1, 1, 1, 1),
          dilation: tuple[int, int] = (1, 1), clamp: str = "full", shifts: str = "as drawn",
          mode: str = "random", bias_scale: float = 1.0, strides: tuple[int, int] = None) -> cases.ConvCase:
    ib, wb, ob = bits
    strides = strides or (stride, stride)
    x = cases._values(rng, (1, *hw, c), *layout.act_range(ib), mode)
    w = cases._values(rng, (1, *k, c), *layout.weight_range(wb), mode if mode != "edges" else "random")
    x_zp = int(rng.integers(*layout.act_range(ib), endpoint=True))
    case = cases.ConvCase("depthwise", bits, x, x_zp, w, None, strides, pad, dilation, 1)
    acc = cases.ops.depthwise_conv2d_accumulate(x, x_zp, w, strides, pad, dilation, 1)
    bias, mult, shift = cases._requant(rng, acc, ob, saturate=bool(rng.random() < 0.3))
    if shifts == "mixed":  # some channels with shift 0 and > 0 (left shifts), others negative
        shift = shift.copy()
        shift[::3] = 0
        shift[1::3] = rng.integers(1, 4, size=shift[1::3].shape)
    elif shifts == "negative":  # every shift < 0 (small random layers often get shifts >= 0)
        shift = np.minimum(shift, -1)
    elif shifts == "nonneg":  # every shift >= 0 (sub-byte layers with 8-bit outputs: scale >= 1/2)
        shift = rng.integers(0, 3, size=shift.shape)
    elif shifts == "split":  # half the channels >= 0, half < 0 (packed path: masked sign term)
        shift = shift.copy()
        shift[::2] = rng.integers(0, 3, size=shift[::2].shape)
        shift[1::2] = np.minimum(shift[1::2], -1)
    elif shifts == "large":  # shift > 7: outside the DSP path's bounds (portable fall-back)
        shift = shift.copy()
        shift[-1] = 9
    case.bias = (bias * bias_scale).astype(np.int64)
    case.multiplier, case.shift = mult, shift
    olo, ohi = layout.act_range(ob)
    case.out_zp = int(rng.integers(olo, ohi, endpoint=True))
    if clamp == "narrow":
        case.qmin = int(rng.integers(olo, (olo + ohi) // 2, endpoint=True))
        case.qmax = int(rng.integers(max(case.qmin, (olo + ohi) // 2), ohi, endpoint=True))
    else:
        case.qmin, case.qmax = olo, ohi
    return case


def _dsp_depthwise_cases(seed: int) -> list[cases.ConvCase]:
    rng = np.random.default_rng(seed)
    out = []
    for i, bits in enumerate(cases.BIT_TRIPLES):
        ib = bits[0]
        word = 32 // ib if ib != 8 else 4  # channels of one word pass block (8-bit: 4)
        # quick path: 3x3, whole range, negative shifts; channels = word blocks + a 4-group + a tail
        out.append(_case(rng, bits, (5, 6), 2 * word + 4 + (2 if ib == 4 else 0) + (i % 2) * 4,
                         stride=1 + (i % 2), mode=("random", "edges", "max", "min")[i % 4]))
        # general path: narrow clamp, mixed shift signs, stride 2, asymmetric padding
        out.append(_case(rng, bits, (6, 5), word + 4, stride=2, pad=(1, 0, 0, 1), clamp="narrow",
                         shifts="mixed"))
        # general path: 5x3 filter, dilation, channel count with pixels starting mid-byte at the output
        out.append(_case(rng, bits, (7, 6), 12 if ib != 2 else 12, k=(5, 3), pad=(2, 2, 1, 1),
                         dilation=(1, 2) if i % 2 else (1, 1)))
    # 1x1 and 2x2 filters (odd and single tap counts), no padding
    for bits in [(8, 8, 8), (4, 4, 4), (2, 2, 2), (2, 8, 4)]:
        out.append(_case(rng, bits, (4, 4), 16, k=(1, 1), pad=(0, 0, 0, 0)))
        out.append(_case(rng, bits, (5, 4), 20, k=(2, 2), pad=(0, 1, 0, 1)))
    # outside the bounds: portable fall-back for the whole call (shift 9; bias near 2^30)
    out.append(_case(rng, (8, 8, 8), (4, 4), 8, shifts="large"))
    big = _case(rng, (4, 4, 4), (4, 4), 8)
    big.bias = np.full(8, (1 << 30) + 5, np.int64)
    out.append(big)
    # stream: 8-bit inputs with an odd channel count and 4- / 2-bit weights (weight pairs straddle
    # bytes: per-weight decoding), and even counts whose 2-bit pairs sit in either half of a byte
    out.append(_case(rng, (8, 4, 8), (4, 5), 7))
    out.append(_case(rng, (8, 2, 8), (4, 5), 9))
    out.append(_case(rng, (8, 2, 8), (4, 5), 6))
    # bounds: the call-wide check (largest |bias|, left and right shift together) fails; channel by
    # channel (shift +7 on one channel, -30 on another, |bias| 2^22; the general path folds
    # z = output_zp - act_min) the call passes with z = 1 and falls back with z = 129
    for ozp in (-127, 1):
        mixed = _case(rng, (4, 4, 8), (4, 4), 8)
        mixed.shift = mixed.shift.copy()
        mixed.shift[0], mixed.shift[1] = 7, -30
        mixed.bias = np.where(np.arange(8) % 2 == 0, 1 << 22, -(1 << 22)).astype(np.int64)
        mixed.out_zp = ozp
        out.append(mixed)
    # packed-field path (3 taps per SMLAD): 4- / 2-bit activations and weights, 3x3, C % 8 == 0,
    # whole range, negative shifts; every output width, strides 1..3, vertical dilation, padding
    # on any side or none, extreme values (the field offsets are reached exactly at the extremes)
    for i, (ib, wb) in enumerate([(4, 4), (2, 2), (2, 4), (4, 2)]):
        for j, ob in enumerate((8, 4, 2)):
            k = 3 * i + j
            out.append(_case(rng, (ib, wb, ob), (6 + k % 3, 7 - k % 2), 8 * (1 + k % 3), stride=1 + k % 3,
                             pad=[(1, 1, 1, 1), (0, 0, 0, 0), (1, 0, 2, 1), (0, 2, 0, 1)][k % 4],
                             dilation=(1 + (k % 5 == 4), 1), mode=("random", "max", "min", "edges")[k % 4],
                             shifts="negative"))
    # packed-field path, requantization modes: every shift >= 0 (MLA form, no sign term) and both
    # signs in one call (masked sign term, one pixel at a time), at every output width; odd output
    # widths (a last single pixel after the pixel pairs), small bias so that outputs stay in range
    for i, (ib, wb) in enumerate([(2, 2), (4, 4), (2, 4), (4, 2)]):
        for j, ob in enumerate((8, 4, 2)):
            out.append(_case(rng, (ib, wb, ob), (5 + j, 7 - j), 8 * (1 + (i + j) % 3), stride=1 + (j == 1),
                             shifts=("nonneg", "split")[(i + j) % 2], mode=("random", "max", "min")[j],
                             bias_scale=0.01))
    # groups of channels (ring budget): 30 output columns x 24 channels -> groups of 16 and 8
    # (two chunks then one chunk per window), both strides, borders on both sides
    out.append(_case(rng, (4, 4, 4), (4, 30), 24, shifts="negative"))
    out.append(_case(rng, (2, 2, 8), (5, 61), 24, stride=2, pad=(1, 1, 1, 1), shifts="nonneg", bias_scale=0.01))
    out.append(_case(rng, (4, 2, 2), (3, 29), 40, stride=1, pad=(0, 2, 2, 0), shifts="split", bias_scale=0.01))
    # one input row / column (everything else padding), a single output pixel
    out.append(_case(rng, (4, 4, 8), (1, 1), 16, shifts="negative"))
    out.append(_case(rng, (2, 4, 4), (1, 3), 8, shifts="nonneg", bias_scale=0.01))
    # the packed-field shape with a narrow clamp (lane path), and with mixed shift signs (packed path)
    out.append(_case(rng, (4, 4, 4), (5, 5), 8, clamp="narrow"))
    out.append(_case(rng, (2, 2, 2), (5, 5), 16, shifts="mixed"))
    # whole-range clamp with 4-bit outputs of 6 channels (outputs start mid-byte: element stores)
    out.append(_case(rng, (8, 8, 4), (4, 5), 6))
    out.append(_case(rng, (8, 4, 2), (4, 5), 6))
    # the unrolled 3x3 path with shifts of both signs (lane path: one 8-bit operand, or sub-byte
    # operands off the packed-field shapes): word / halfword / byte passes and tails, outputs whole
    # blocks or starting mid-byte, both strides, borders, shifts up to the bound (+7) and down to -30
    for i, bits in enumerate([(4, 8, 8), (8, 4, 8), (2, 8, 8), (8, 2, 4), (4, 8, 4), (2, 8, 2), (4, 4, 8),
                              (2, 2, 4), (8, 8, 8)]):
        ib = bits[0]
        word = 32 // ib if ib != 8 else 4
        c = word + 4 + (2 if i % 3 == 1 and ib != 2 else 0) + (4 if bits[1] != 8 and ib != 8 else 0)
        case = _case(rng, bits, (5, 6), c, stride=1 + i % 2, shifts=("mixed", "split")[i % 2], bias_scale=0.05)
        if i == 0:
            case.shift = case.shift.copy()
            case.shift[0], case.shift[1] = 7, -30
        out.append(case)
    out += _dwq_cases(rng)
    return out


def _dwq_cases(rng: np.random.Generator) -> list[cases.ConvCase]:
    """The stride-1 pair-word path (horizontal stride 1: one X word per filter row serves both pixels
    of a pair): every output width 1..7 (pairs, a last single pixel), left padding 0, 1, 2 and right
    padding 0..2 (column pairs with one or both columns outside), one-chunk groups (the interior loop
    over column pairs in assembly) and several chunks, several groups on wide rows, vertical stride 2
    and dilation with horizontal stride 1, each requantization mode and output width, extremes that
    reach the field bounds of both pixels' accumulators."""
    out = []
    for w in range(1, 8):  # A4W4O4, C = 8, borders on both sides
        out.append(_case(rng, (4, 4, 4), (4, w), 8, shifts="negative", mode=("random", "max", "min")[w % 3]))
    for i, (ib, wb) in enumerate([(4, 4), (2, 2), (4, 2), (2, 4)]):
        for j, ob in enumerate((8, 4, 2)):
            k = 3 * i + j
            pad = [(0, 0, 0, 0), (1, 1, 2, 0), (0, 2, 1, 2), (2, 0, 0, 1)][k % 4]
            out.append(_case(rng, (ib, wb, ob), (4 + k % 3, 5 + k % 6), 8 * (1 + k % 3), pad=pad,
                             shifts=("negative", "nonneg", "split")[k % 3], mode=("random", "edges", "max", "min")[k % 4],
                             bias_scale=1.0 if k % 3 == 0 else 0.01))
    # wide rows: groups of 8 channels (one chunk) and of 16
    out.append(_case(rng, (4, 4, 4), (3, 70), 32, shifts="negative"))
    out.append(_case(rng, (4, 4, 8), (3, 37), 48, shifts="split", bias_scale=0.01))
    out.append(_case(rng, (2, 2, 4), (4, 33), 16, shifts="nonneg", bias_scale=0.01))
    # vertical stride 2 / dilation 2 with horizontal stride 1
    out.append(_case(rng, (4, 4, 4), (9, 6), 16, strides=(2, 1), shifts="negative"))
    out.append(_case(rng, (4, 4, 8), (9, 7), 8, dilation=(2, 1), pad=(2, 2, 1, 1), shifts="split", bias_scale=0.01))
    # field bounds of both accumulators: activations at their top, weights of columns 0 and 2 against
    # column 1 at opposite ends (low fields of the second pixel at -6 and +6 products of the extreme,
    # of the first at -3 / +3), and every weight at one end (the middle field at its ends)
    for ib, wb in [(4, 4), (2, 2), (2, 4), (4, 2)]:
        wlo, whi = layout.weight_range(wb)
        for cols in ([wlo, whi, wlo], [whi, wlo, whi], [wlo] * 3, [whi] * 3):
            case = _case(rng, (ib, wb, 4), (4, 6), 8, pad=(0, 0, 0, 0), shifts="negative")
            case.x = np.full_like(case.x, layout.act_range(ib)[1])
            case.w = np.broadcast_to(np.array(cols, np.int64)[None, None, :, None], case.w.shape).copy()
            out.append(case)
    # the KWS shape, every mode
    for sh in ("negative", "nonneg", "split"):
        out.append(_case(rng, (4, 4, 4), (25, 5), 64, shifts=sh, bias_scale=1.0 if sh == "negative" else 0.01))
    return out


def _dw_path_pairs(rng: np.random.Generator) -> list[tuple[cases.ConvCase, cases.ConvCase]]:
    """(every shift negative, shifts of both signs) on the same data: the mixed layer must stay on
    the unrolled 3x3 path (the general copy takes ~1.2x)."""
    pairs = []
    for bits in [(4, 8, 8), (8, 4, 8), (2, 8, 4), (4, 8, 2)]:
        neg = _case(rng, bits, (8, 8), 32, shifts="negative")
        mixed = _case(rng, bits, (8, 8), 32)
        for f in ("x", "x_zp", "w", "bias", "multiplier", "out_zp", "qmin", "qmax"):
            setattr(mixed, f, getattr(neg, f))
        mixed.shift = neg.shift.copy()
        mixed.shift[::4] = 0
        mixed.shift[1::8] = 1
        pairs.append((neg, mixed))
    return pairs


def test_depthwise_dsp_paths_bit_exact_in_qemu(tmp_path):
    cs = _dsp_depthwise_cases(seed=11)
    pairs = _dw_path_pairs(np.random.default_rng(111))
    cs += [c for pair in pairs for c in pair]
    results, raw = firmware.run_cases(cs, "cortex-m7", tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [(r.name, c.describe()) for r, c in zip(results, cs) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:3]}; exit {raw.exit_code}"
    assert raw.exit_code == 0
    counts = [r.instructions for r in results[len(cs) - 2 * len(pairs):]]
    slow = [(pairs[i][0].bits, counts[2 * i], counts[2 * i + 1]) for i in range(len(pairs))
            if counts[2 * i + 1] > 1.08 * counts[2 * i]]
    assert not slow, f"shifts of both signs left the unrolled path (bits, negative, mixed): {slow}"


def test_patch_tile_with_the_layers_scratch_stays_on_the_packed_path(tmp_path):
    """A patch tile 12 outputs wide of a layer 24 wide gets the scratch the whole layer asked for
    (generated code sizes scratch per layer). The packed-field path's default channel group depends
    on the width (32 channels at 12, 16 at 24), so the tile's default ring does not fit the layer's
    scratch: the call must then run smaller groups on the same path, not the lane path (about twice
    the instructions), and stay bit-exact."""
    from tvm_mixq.kernellib import KernelLib

    rng = np.random.default_rng(5)
    bits = (4, 4, 8)
    layer = KernelLib().scratch_bytes("depthwise", bits, (1, 24, 24, 32), (1, 3, 3, 32), 1, (1, 1, 1, 1))
    tile = _case(rng, bits, (14, 14), 32, pad=(0, 0, 0, 0), shifts="nonneg")
    tight = _case(np.random.default_rng(5), bits, (14, 14), 32, pad=(0, 0, 0, 0), shifts="nonneg")
    tight.scratch = layer
    results, raw = firmware.run_cases([tile, tight], "cortex-m7", tmp_path)
    assert raw.exit_code == 0 and all(r.ok for r in results)
    assert results[0].scratch > layer == results[1].scratch, "the tile's own request exceeds the layer's"
    assert results[1].instructions < 1.1 * results[0].instructions, (
        f"tile with the layer's scratch took {results[1].instructions} instructions against "
        f"{results[0].instructions} with its own: not the packed-field path")


@pytest.mark.slow
def test_depthwise_dsp_random_seeds_in_qemu(tmp_path):
    """More seeds of the same cases (long)."""
    cs = [c for s in (12, 13, 14) for c in _dsp_depthwise_cases(seed=s)]
    results, raw = firmware.run_cases(cs, "cortex-m7", tmp_path)
    bad = [(r.name, c.describe()) for r, c in zip(results, cs) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:3]}"
