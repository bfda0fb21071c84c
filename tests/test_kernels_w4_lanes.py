"""A4W4 weights re-spaced offline into lane words (the ``_lanes`` entry points, kernels/README.md "W4A4").

* layout: :func:`tvm_mixq.kernellib.pack_w4_lanes` against the lane words the kernel used to build
  at every call (decoded back to the weights, and their SMLAD with activation lanes), the lane bias;
* host build (portable path): every A4W4 conv2d / pointwise / fully connected call with lane
  weights against the oracle; the entry points exist for A4W4 only;
* DSP build, on the emulated Cortex-M7: the packed path from lane weights at every output width and
  requantization form (fused routines, the general path, the C loop past K = 544, the ring of
  converted rows, the bit-stream im2col, few pixels that used to take the widen-16 path, fully
  connected with one row, no bias), bit for bit, with less scratch (no re-spaced copy) and fewer
  instructions than the same call with the plain 4-bit layout.
"""
from __future__ import annotations

import numpy as np
import pytest

from tvm_mixq.errors import MixqError
from tvm_mixq.kernellib import KernelLib, cases, firmware, layout
from tvm_mixq.reference import ops


def _lane_halves(w: np.ndarray) -> np.ndarray:
    """int16 halfwords of pack_w4_lanes, per channel in row order (de-interleaved)."""
    rows = w.reshape(w.shape[0], -1)
    cout, k = rows.shape
    kp = layout.weight_row_len(k, 4)
    words = layout.pack_w4_lanes(w).view("<u4").reshape(-1, kp // 8, 2, 2)  # pair, group, channel, A/B
    per_channel = words.transpose(0, 2, 1, 3).reshape(-1, kp // 8, 2)[:cout]
    return per_channel.copy().view("<i2").reshape(cout, kp // 8, 4)  # A.lo, A.hi, B.lo, B.hi


def test_lane_layout_decodes_to_the_weights():
    rng = np.random.default_rng(0)
    for cout, k in [(1, 1), (3, 8), (4, 16), (5, 37), (8, 128), (2, 545)]:
        w = rng.integers(-8, 8, size=(cout, k))
        h = _lane_halves(w)
        kp = layout.weight_row_len(k, 4)
        padded = np.zeros((cout, kp), np.int64)
        padded[:, :k] = w
        g = padded.reshape(cout, kp // 8, 8)
        # halfword = w_odd + 2048 w_even for the pairs (0, 1), (4, 5), (2, 3), (6, 7)
        for j, (even, odd) in enumerate([(0, 1), (4, 5), (2, 3), (6, 7)]):
            assert np.array_equal(h[..., j], g[..., odd] + 2048 * g[..., even])
        assert layout.pack_w4_lanes(w).size == layout.w4_lanes_size(k, cout) == KernelLib().symbol(
            "mixq_w4_lanes_size")(k, cout)


def test_lane_words_give_the_dot_product():
    """SMLAD of activation lanes ((a0-8) + (a1-8) 2^11, ...) with the weight lanes puts sum (a-8) w of
    the 4 pairs in bits [11, 22) (with the kernel's preload), as the kernel's inner loop reads it."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        w = rng.integers(-8, 8, size=(1, 8))
        a = rng.integers(0, 16, size=8)
        h = _lane_halves(w)[0, 0]  # A.lo, A.hi, B.lo, B.hi
        la = [(a[0] - 8) + (a[1] - 8) * 2048, (a[4] - 8) + (a[5] - 8) * 2048,
              (a[2] - 8) + (a[3] - 8) * 2048, (a[6] - 8) + (a[7] - 8) * 2048]
        acc = (896 << 11) + 1024 + sum(int(x) * int(y) for x, y in zip(la, h))
        assert ((acc >> 11) & 0x7FF) - 896 == int(((a - 8) * w[0]).sum())


def test_lane_bias():
    w = np.array([[1, -2, 3], [-8, 7, 0]])
    assert list(layout.w4_lane_bias(w, np.array([10, -5]), 3)) == [10 + 5 * 2, -5 + 5 * -1]
    assert list(layout.w4_lane_bias(w, None, 8)) == [0, 0]
    with pytest.raises(MixqError):
        layout.w4_lane_bias(w, np.array([(1 << 31) - 1, 0]), 0)


def _lane_cases(rng: np.random.Generator, count: int) -> list:
    out = []
    for i in range(count):
        op = ("conv2d", "pointwise", "fully_connected")[i % 3]
        c = cases.random_conv_case(rng, op, (4, 4, (8, 4, 2)[(i // 3) % 3]), max_hw=6, max_c=12)
        c.lanes = True
        out.append(c)
    return out


def test_host_lanes_bit_exact():
    lib = KernelLib()
    rng = np.random.default_rng(2)
    for c in _lane_cases(rng, 240):
        got = np.asarray(c.run(lib)).reshape(-1)
        assert np.array_equal(got, np.asarray(c.oracle()).reshape(-1)), c.describe()


def test_lanes_only_for_a4w4():
    lib = KernelLib()
    x = np.zeros((1, 2, 2, 8), np.int64)
    w = np.zeros((4, 1, 1, 8), np.int64)
    with pytest.raises(MixqError):
        lib.conv2d(x, 0, w, None, 1, (0, 0, 0, 0), 1, 1 << 30, -1, 0, -128, 127, bits=(8, 4, 8), lanes=True)
    names = [f"mixq_{op}_a{a}w{b}o{o}_lanes" for op in ("conv2d", "pointwise", "fully_connected", "depthwise")
             for a in (8, 4, 2) for b in (8, 4, 2) for o in (8, 4, 2)]
    present = {n for n in names if hasattr(lib._lib, n) and hasattr(lib._lib, n + "_get_buffer_size")}
    assert present == {f"mixq_{op}_a4w4o{o}_lanes" for op in ("conv2d", "pointwise", "fully_connected")
                       for o in (8, 4, 2)}


toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")
pytestmark_dsp = pytest.mark.skipif(toolchain.tools_available() is not None,
                                    reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


def _case(rng, op, ob, h, w, cin, cout, kh=1, pad=0, stride=1, shifts="negative", bias=True, n=1):
    x = rng.integers(0, 16, size=(n, h, w, cin))
    wts = rng.integers(-8, 8, size=(cout, kh, kh, cin) if op != "fully_connected" else (cout, cin))
    zp = int(rng.integers(0, 16))
    if op == "fully_connected":
        x = x.reshape(n, -1)
        c = cases.ConvCase(op, (4, 4, ob), x, zp, wts, None)
        acc = (x - zp) @ wts.T
    else:
        c = cases.ConvCase(op, (4, 4, ob), x, zp, wts, None, (stride, stride), (pad, pad, pad, pad))
        acc = ops.conv2d_accumulate(x, zp, wts, c.stride, c.padding)
    c.bias, c.multiplier, c.shift = cases._requant(rng, acc, ob, False)
    if shifts == "mixed":
        c.shift = np.array([(0, 1, -2, 0, -1)[j % 5] for j in range(cout)], np.int64)
        c.multiplier = rng.integers(1 << 30, 1 << 31, size=cout)
        c.bias = rng.integers(-40, 41, size=cout)
    elif shifts == "negative":
        c.shift = np.minimum(c.shift, -1)
    if not bias:
        c.bias = None
    c.qmin, c.qmax = layout.act_range(ob)
    c.out_zp = int(rng.integers(c.qmin, c.qmax + 1))
    c.lanes = True
    return c


def _dsp_lane_cases(seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for ob in (8, 4, 2):
        for shifts in ("negative", "mixed", "as drawn"):
            out.append(_case(rng, "pointwise", ob, 6, 6, 64, 32, shifts=shifts))  # fused routines
        out.append(_case(rng, "pointwise", ob, 3, 5, 16, 8, bias=False))          # odd pixel count, no bias
        out.append(_case(rng, "conv2d", ob, 6, 7, 16, 8, kh=3, pad=1))             # ring of converted rows
        out.append(_case(rng, "conv2d", ob, 7, 6, 3, 8, kh=3, pad=1, stride=2))    # bit-stream im2col
        out.append(_case(rng, "pointwise", ob, 2, 3, 64, 8, shifts="mixed"))       # 6 pixels (was widen-16)
        out.append(_case(rng, "pointwise", ob, 1, 1, 32, 8))                       # one pixel
        out.append(_case(rng, "pointwise", ob, 4, 4, 24, 12))                      # K % 16 != 0
        out.append(_case(rng, "fully_connected", ob, 1, 1, 200, 20))               # one row, K % 16 != 0
        out.append(_case(rng, "fully_connected", ob, 1, 1, 64, 16, n=5))           # several rows
    for ob in (8, 4):
        out.append(_case(rng, "pointwise", ob, 3, 3, 560, 6))                      # K > 544: the C loop
        out.append(_case(rng, "pointwise", ob, 3, 3, 32, 7))                       # odd Cout: general path
        c = _case(rng, "pointwise", ob, 3, 3, 32, 8)                               # narrow clamp: general path
        c.qmin, c.qmax = c.qmin + 1, c.qmax - 1
        c.out_zp = max(c.out_zp, c.qmin)
        out.append(c)
    return out


def _plain(c):
    p = cases.ConvCase(c.op, c.bits, c.x, c.x_zp, c.w, c.bias, c.stride, c.padding, c.dilation, c.depth_multiplier,
                       c.multiplier, c.shift, c.out_zp, c.qmin, c.qmax, lanes=False)
    return p


@pytestmark_dsp
def test_lanes_bit_exact_in_qemu(tmp_path):
    lane = _dsp_lane_cases(5)
    cs = lane + [_plain(c) for c in lane]
    results, raw = firmware.run_cases(cs, "cortex-m7", tmp_path)
    assert raw.values.get("dsp") == 1
    bad = [(r.name, c.describe()) for r, c in zip(results, cs) if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:3]}; exit {raw.exit_code}"
    assert raw.exit_code == 0
    n = len(lane)
    for i, c in enumerate(lane):
        a, b = results[i], results[n + i]
        kp = layout.weight_row_len(int(np.prod(c.w.shape[1:])), 4)
        cpad = c.w.shape[0] + (c.w.shape[0] & 1)
        pixels = int(np.prod(c.oracle().shape[:-1]))
        # no re-spaced copy in scratch (the plain layout's packed path keeps one from 8 pixels on)
        if pixels >= 8:
            assert a.scratch == b.scratch - cpad * kp, (c.describe(), a.scratch, b.scratch)
        else:
            assert a.scratch <= b.scratch, (c.describe(), a.scratch, b.scratch)
        # and no re-spacing at call start: fewer instructions than the plain layout
        assert a.instructions < b.instructions, (c.describe(), a.instructions, b.instructions)
