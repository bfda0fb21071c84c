"""Random layer cases for checking the kernel library against the oracle.

Each case holds the unpacked operands and parameters of one kernel call, and knows how to run
itself through the Python oracle (:mod:`tvm_mixq.reference.ops`) and through a
:class:`~tvm_mixq.kernellib.lib.KernelLib`. Used by the tests and by the sanitizer run
(``python -m tvm_mixq.kernellib.cases``, which exits 1 on the first mismatch).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..reference import ops
from . import layout
from .lib import KernelLib

log = logging.getLogger(__name__)

BIT_TRIPLES = list(itertools.product(layout.BITS, repeat=3))
CONV_OPS = ("conv2d", "pointwise", "depthwise", "fully_connected")


def _values(rng: np.random.Generator, shape, lo: int, hi: int, mode: str) -> np.ndarray:
    if mode == "min":
        return np.full(shape, lo, dtype=np.int64)
    if mode == "max":
        return np.full(shape, hi, dtype=np.int64)
    if mode == "edges":
        return rng.choice(np.array([lo, hi], dtype=np.int64), size=shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _requant(rng: np.random.Generator, acc: np.ndarray, out_bits: int, saturate: bool
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias centring the accumulators ``acc [..., Cout]`` and per-channel multipliers/shifts
    spreading them over the output range (or well beyond it when ``saturate``)."""
    flat = acc.reshape(-1, acc.shape[-1]).astype(np.float64)
    centre = np.round(flat.mean(axis=0)) if flat.shape[0] else np.zeros(acc.shape[-1])
    bias = (-centre + rng.integers(-8, 9, size=centre.shape)).astype(np.int64)
    half = np.maximum(np.abs(flat + bias).max(axis=0), 1.0)
    target = (1 << out_bits) * (6.0 if saturate else 0.5)
    mults, shifts = [], []
    for c in range(acc.shape[-1]):
        m, s = ops.quantize_multiplier(target / half[c] * float(rng.uniform(0.6, 1.0)))
        mults.append(m)
        shifts.append(max(min(s, 30), -31))
    return bias, np.array(mults, np.int64), np.array(shifts, np.int64)


@dataclass
class ConvCase:
    """One conv2d / pointwise / depthwise / fully_connected call."""

    op: str
    bits: tuple[int, int, int]
    x: np.ndarray
    x_zp: int
    w: np.ndarray
    bias: Optional[np.ndarray]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    depth_multiplier: int = 1
    multiplier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_zp: int = 0
    qmin: int = -128
    qmax: int = 127
    #: scratch bytes the call gets (None: what the kernel's get_buffer_size asks for)
    scratch: Optional[int] = None
    lanes: bool = False  # A4W4 weights passed re-spaced into lane words (the _lanes entry points)

    def describe(self) -> str:
        return (f"{self.op} a{self.bits[0]}w{self.bits[1]}o{self.bits[2]} x{self.x.shape} w{self.w.shape} "
                f"s{self.stride} p{self.padding} d{self.dilation} zp{self.x_zp}/{self.out_zp} "
                f"clamp[{self.qmin},{self.qmax}]" + (" lanes" if self.lanes else ""))

    def kernel_weights(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(weights in the kernel layout, the bias the kernel takes): lane words and the lane bias
        with ``lanes``."""
        return layout.kernel_weights(self.w, self.bits[1], self.bias, self.x_zp, self.lanes, self.op == "depthwise")

    def oracle(self) -> np.ndarray:
        if self.op in ("conv2d", "pointwise"):
            return ops.conv2d(self.x, self.x_zp, self.w, self.bias, self.stride, self.padding, self.dilation,
                              self.multiplier, self.shift, self.out_zp, self.qmin, self.qmax)
        if self.op == "depthwise":
            return ops.depthwise_conv2d(self.x, self.x_zp, self.w, self.bias, self.stride, self.padding,
                                        self.dilation, self.depth_multiplier, self.multiplier, self.shift,
                                        self.out_zp, self.qmin, self.qmax)
        return ops.fully_connected(self.x, self.x_zp, self.w, self.bias, self.multiplier, self.shift, self.out_zp,
                                   self.qmin, self.qmax)

    def run(self, lib: KernelLib) -> np.ndarray:
        if self.op in ("conv2d", "pointwise"):
            return lib.conv2d(self.x, self.x_zp, self.w, self.bias, self.stride, self.padding, self.dilation,
                              self.multiplier, self.shift, self.out_zp, self.qmin, self.qmax, self.bits, self.op,
                              lanes=self.lanes)
        if self.op == "depthwise":
            return lib.depthwise_conv2d(self.x, self.x_zp, self.w, self.bias, self.stride, self.padding,
                                        self.dilation, self.depth_multiplier, self.multiplier, self.shift,
                                        self.out_zp, self.qmin, self.qmax, self.bits)
        return lib.fully_connected(self.x, self.x_zp, self.w, self.bias, self.multiplier, self.shift, self.out_zp,
                                   self.qmin, self.qmax, self.bits, lanes=self.lanes)


def random_conv_case(rng: np.random.Generator, op: str, bits: tuple[int, int, int], max_hw: int = 7,
                     max_c: int = 9, mode: Optional[str] = None) -> ConvCase:
    """A random call of ``op`` at ``bits``: odd sizes, edge padding, extreme values, saturation."""
    ib, wb, ob = bits
    mode = mode or str(rng.choice(["random", "random", "random", "min", "max", "edges"]))
    xlo, xhi = layout.act_range(ib)
    wlo, whi = layout.weight_range(wb)
    olo, ohi = layout.act_range(ob)
    n = int(rng.integers(1, 3))
    stride = (1, 1)
    dilation = (1, 1)
    padding = (0, 0, 0, 0)
    dm = 1
    if op == "fully_connected":
        k = int(rng.integers(1, 4 * max_c * 3))
        cout = int(rng.integers(1, max_c + 4))
        xshape, wshape = (n, k), (cout, k)
    else:
        h, wd = int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1))
        cin = int(rng.integers(1, max_c + 1))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if op == "pointwise":
            kh = kw = 1
            cout = int(rng.integers(1, max_c + 4))
            wshape = (cout, 1, 1, cin)
        else:
            kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            dilation = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2])))
            padding = tuple(int(rng.integers(0, max(1, (kh if i < 2 else kw)))) for i in range(4))
            if op == "depthwise":
                dm = int(rng.choice([1, 1, 2]))
                cout = cin * dm
                wshape = (1, kh, kw, cout)
            else:
                cout = int(rng.integers(1, max_c + 4))
                wshape = (cout, kh, kw, cin)
            # keep the output non-empty
            h = max(h, (kh - 1) * dilation[0] + 1 - padding[0] - padding[1])
            wd = max(wd, (kw - 1) * dilation[1] + 1 - padding[2] - padding[3])
        xshape = (n, h, wd, cin)
    x = _values(rng, xshape, xlo, xhi, mode)
    w = _values(rng, wshape, wlo, whi, mode if mode != "random" else "random")
    x_zp = int(rng.choice([xlo, xhi, int(rng.integers(xlo, xhi + 1))]))
    case = ConvCase(op, bits, x, x_zp, w, None, stride, padding, dilation, dm)
    if op in ("conv2d", "pointwise"):
        acc = ops.conv2d_accumulate(x, x_zp, w, stride, padding, dilation)
    elif op == "depthwise":
        acc = ops.depthwise_conv2d_accumulate(x, x_zp, w, stride, padding, dilation, dm)
    else:
        acc = (x - x_zp) @ w.T
    bias, mult, shift = _requant(rng, acc, ob, saturate=bool(rng.random() < 0.2))
    if rng.random() < 0.2:
        bias = None
    out_zp = (olo + ohi + 1) // 2 + int(rng.integers(-1, 2))
    if rng.random() < 0.3:
        qmin = int(rng.integers(olo, ohi + 1))
        qmax = int(rng.integers(qmin, ohi + 1))
    else:
        qmin, qmax = olo, ohi
    case.bias, case.multiplier, case.shift = bias, mult, shift
    case.out_zp, case.qmin, case.qmax = out_zp, qmin, qmax
    return case


@dataclass
class AddCase:
    bits: tuple[int, int, int]
    x1: np.ndarray
    x1_zp: int
    x2: np.ndarray
    x2_zp: int
    params: ops.AddParams
    out_zp: int
    qmin: int
    qmax: int

    def describe(self) -> str:
        return f"add a{self.bits[0]}b{self.bits[1]}o{self.bits[2]} x{self.x1.shape}"

    def oracle(self) -> np.ndarray:
        p = self.params
        return ops.add(self.x1, self.x1_zp, p.x1_mult, p.x1_shift, self.x2, self.x2_zp, p.x2_mult, p.x2_shift,
                       p.out_mult, p.out_shift, self.out_zp, self.qmin, self.qmax, p.left_shift)

    def run(self, lib: KernelLib) -> np.ndarray:
        p = self.params
        return lib.add(self.x1, self.x1_zp, p.x1_mult, p.x1_shift, self.x2, self.x2_zp, p.x2_mult, p.x2_shift,
                       p.out_mult, p.out_shift, self.out_zp, self.qmin, self.qmax, p.left_shift, self.bits)


def random_add_case(rng: np.random.Generator, bits: tuple[int, int, int], mode: Optional[str] = None) -> AddCase:
    b1, b2, ob = bits
    mode = mode or str(rng.choice(["random", "random", "min", "max", "edges"]))
    shape = tuple(int(v) for v in rng.integers(1, 6, size=4))
    lo1, hi1 = layout.act_range(b1)
    lo2, hi2 = layout.act_range(b2)
    olo, ohi = layout.act_range(ob)
    x1 = _values(rng, shape, lo1, hi1, mode)
    x2 = _values(rng, shape, lo2, hi2, "random" if mode == "random" else mode)
    s1 = float(rng.uniform(0.01, 0.1)) / (1 << b1)
    s2 = float(rng.uniform(0.01, 0.1)) / (1 << b2)
    so = (s1 * (1 << b1) + s2 * (1 << b2)) / (1 << ob) * float(rng.uniform(0.3, 1.5))
    params = ops.add_params(s1, s2, so)
    qmin, qmax = olo, ohi
    return AddCase(bits, x1, int(rng.integers(lo1, hi1 + 1)), x2, int(rng.integers(lo2, hi2 + 1)), params,
                   int(rng.integers(olo, ohi + 1)), qmin, qmax)


@dataclass
class PoolCase:
    bits: tuple[int, int]
    x: np.ndarray
    filter_hw: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    qmin: int
    qmax: int
    x_zp: Optional[int] = None
    multiplier: Optional[int] = None
    shift: Optional[int] = None
    out_zp: Optional[int] = None

    def describe(self) -> str:
        return f"avgpool a{self.bits[0]}o{self.bits[1]} x{self.x.shape} f{self.filter_hw} p{self.padding}"

    def oracle(self) -> np.ndarray:
        return ops.avg_pool(self.x, self.filter_hw, self.stride, self.padding, self.qmin, self.qmax, self.x_zp,
                            self.multiplier, self.shift, self.out_zp)

    def run(self, lib: KernelLib) -> np.ndarray:
        return lib.avg_pool(self.x, self.filter_hw, self.stride, self.padding, self.qmin, self.qmax, self.x_zp,
                            self.multiplier, self.shift, self.out_zp, self.bits)


def random_pool_case(rng: np.random.Generator, bits: tuple[int, int], mode: Optional[str] = None) -> PoolCase:
    ib, ob = bits
    mode = mode or str(rng.choice(["random", "random", "min", "max", "edges"]))
    fh, fw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    pad = (int(rng.integers(0, fh)), int(rng.integers(0, fh)), int(rng.integers(0, fw)), int(rng.integers(0, fw)))
    shape = (int(rng.integers(1, 3)), int(rng.integers(fh, 8)), int(rng.integers(fw, 8)), int(rng.integers(1, 8)))
    lo, hi = layout.act_range(ib)
    olo, ohi = layout.act_range(ob)
    x = _values(rng, shape, lo, hi, mode)
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    if ib == ob and rng.random() < 0.4:
        return PoolCase(bits, x, (fh, fw), stride, pad, olo, ohi)
    m, s = ops.quantize_multiplier(float(rng.uniform(0.3, 3.0)) * (1 << ob) / (1 << ib))
    return PoolCase(bits, x, (fh, fw), stride, pad, olo, ohi, int(rng.integers(lo, hi + 1)), m, s,
                    int(rng.integers(olo, ohi + 1)))


#: Channel counts of :func:`pool_block_cases` per input bitwidth: full blocks of whole words (16
#: channels at 8 bits, 32 at 4 and 2 bits), blocks plus single words, plus a partial word element
#: by element, a single word, pixels that do not start on a byte (all element by element).
POOL_BLOCK_CHANNELS = {8: (16, 20, 23, 4, 3, 36, 6, 21), 4: (32, 40, 46, 8, 7, 6, 64), 2: (32, 48, 52, 16, 50, 4, 64)}


def pool_block_cases(seed: int, big: bool = False) -> list[PoolCase]:
    """Average pools for the channel blocks of the DSP path (kernels/src/mixq_eltwise_core.h): every
    input and output width, the channel counts of :data:`POOL_BLOCK_CHANNELS`, global windows (whole
    rows: one run) and windows with padding and strides (partial windows, empty rows), every way a
    sum becomes an output (no requantization, SMMLAR with right and left shifts, the general
    multiplier, narrow clamps, zero points at the ends of the range), output pixels that do not
    start on a byte; then windows longer than the register accumulators hold (8 bits: 256 pixels,
    4 bits: 17, 2 bits: 85) at the extreme values, and with ``big`` longer than their 16-bit lanes
    hold (4 bits: 4369 pixels, 2 bits: 21845)."""
    rng = np.random.default_rng(seed)
    out: list[PoolCase] = []
    shapes = (  # (h, w), filter, stride, padding
        ((5, 4), (5, 4), (1, 1), (0, 0, 0, 0)),
        ((6, 7), (3, 3), (2, 2), (1, 1, 1, 1)),
        ((5, 6), (2, 3), (1, 2), (1, 0, 2, 1)),
        ((4, 9), (3, 2), (3, 3), (0, 2, 0, 1)),
    )
    for ib, ob in itertools.product(layout.BITS, repeat=2):
        lo, hi = layout.act_range(ib)
        olo, ohi = layout.act_range(ob)
        for i, c in enumerate(POOL_BLOCK_CHANNELS[ib]):
            (h, w), f, st, pad = shapes[i % len(shapes)]
            x = _values(rng, (1 + (i == 2), h, w, c), lo, hi, ("random", "edges", "max", "min")[i % 4])
            kind = (i + ib + ob) % 5
            if kind == 0 and ib == ob:  # TFLite's plain average pool
                out.append(PoolCase((ib, ob), x, f, st, pad, olo, ohi))
                continue
            ratio = (1 << ob) / (1 << ib) * float(rng.uniform(0.4, 3.0))
            m, s = ops.quantize_multiplier(ratio)
            if kind == 3:  # below 2^30, or a right shift past 22: the general multiplier
                m, s = (m >> 1, s + 1) if i % 2 else (m, -25)
            qmin, qmax = (olo + 1, ohi - 1) if kind == 4 and ohi - olo > 2 else (olo, ohi)
            x_zp = (lo, hi, int(rng.integers(lo, hi + 1)))[i % 3]
            out_zp = (ohi, olo, int(rng.integers(olo, ohi + 1)))[i % 3]
            out.append(PoolCase((ib, ob), x, f, st, pad, qmin, qmax, x_zp, m, s, out_zp))
    long_windows = {8: [(17, 17, 16), (17, 17, 4)], 4: [(6, 6, 32), (5, 5, 8)], 2: [(10, 10, 32), (10, 9, 16)]}
    if big:
        long_windows[4].append((67, 67, 8))
        long_windows[2].append((148, 148, 16))
    for ib, shapes_ib in long_windows.items():
        lo, hi = layout.act_range(ib)
        for h, w, c in shapes_ib:
            for value in (lo, hi):  # every lane at its bound, then one element at the other end
                x = np.full((1, h, w, c), value, dtype=np.int64)
                out.append(PoolCase((ib, ib), x, (h, w), (1, 1), (0, 0, 0, 0), *layout.act_range(ib)))
                x = x.copy()
                x[0, h - 1, 0, c - 1] = lo + hi - value
                m, s = ops.quantize_multiplier(0.75)
                out.append(PoolCase((ib, 8), x, (h, w - 1), (1, 1), (0, 0, 0, 0), -128, 127, lo, m, s, -3))
    return out


def add_fast_cases(seed: int) -> list[AddCase]:
    """Elementwise adds for the fast path of kernels/src/mixq_eltwise_core.h (groups of four, 8-bit
    inputs by the SMMLAR form, sub-byte inputs by tables): every bitwidth triple; element counts
    that leave 1-3 elements to the element loop; each 8-bit input with shift 0 (scale the larger
    one: multiplier 1/2) or negative; left shifts 20 and 0; zero points and values at the ends of
    the range; narrow clamps; and calls off the fast path (an output multiplier below 2^30), which
    run element by element."""
    rng = np.random.default_rng(seed)
    out: list[AddCase] = []
    for i, bits in enumerate(BIT_TRIPLES):
        b1, b2, ob = bits
        (lo1, hi1), (lo2, hi2), (olo, ohi) = (layout.act_range(b) for b in bits)
        for k in range(3):
            shape = ((1, 3, 5, 7), (2, 2, 2, 4), (1, 1, 1, 29))[k]
            mode = ("random", "edges", ("max", "min")[i % 2])[k]
            x1 = _values(rng, shape, lo1, hi1, mode)
            x2 = _values(rng, shape, lo2, hi2, "random" if mode == "edges" else mode)
            s1, s2 = (0.02 / (1 << b1), 0.02 / (1 << b2)) if k == 0 else (0.05 / (1 << b1), 0.013 / (1 << b2))
            if k == 2:
                s1, s2 = s2 * (1 << b2) / (1 << b1), s1 * (1 << b1) / (1 << b2)
            so = (s1 * (1 << b1) + s2 * (1 << b2)) / (1 << ob) * float(rng.uniform(0.4, 1.2))
            if k == 2:  # left shift 0: the output multiplier stays below one (as TFLite's ADD needs)
                so = max(so, 2.5 * max(s1, s2))
            params = ops.add_params(s1, s2, so, left_shift=(20, 20, 0)[k])
            if k == 0 and i % 3 == 0:  # off the fast path: an output multiplier below 2^30
                params = ops.AddParams(params.x1_mult, params.x1_shift, params.x2_mult, params.x2_shift,
                                       params.out_mult >> 1, params.out_shift + 1, params.left_shift)
            qmin, qmax = (olo + 1, ohi - 1) if k == 1 and ohi - olo > 2 else (olo, ohi)
            zp1, zp2 = ((lo1, hi2), (hi1, lo2), (int(rng.integers(lo1, hi1 + 1)), int(rng.integers(lo2, hi2 + 1))))[k]
            out.append(AddCase(bits, x1, zp1, x2, zp2, params, (olo, ohi, (olo + ohi) // 2)[k], qmin, qmax))
    return out


def all_cases(seed: int, per_variant: int) -> list:
    """``per_variant`` random cases of every variant of every op (and of the ``_lanes`` entry points)."""
    rng = np.random.default_rng(seed)
    cases: list = []
    for op in CONV_OPS:
        for bits in BIT_TRIPLES:
            cases += [random_conv_case(rng, op, bits) for _ in range(per_variant)]
    for bits in BIT_TRIPLES:
        cases += [random_add_case(rng, bits) for _ in range(per_variant)]
    for ib, ob in itertools.product(layout.BITS, repeat=2):
        cases += [random_pool_case(rng, (ib, ob)) for _ in range(per_variant)]
    # the A4W4 entry points taking their weights in lane words (suffix _lanes)
    for op in ("conv2d", "pointwise", "fully_connected"):
        for ob in layout.BITS:
            for _ in range(per_variant):
                case = random_conv_case(rng, op, (4, 4, ob))
                case.lanes = True
                cases.append(case)
    return cases


def check_cases(lib: KernelLib, cases: list) -> list[str]:
    """Run every case through the kernels and the oracle; descriptions of the mismatches."""
    bad = []
    for case in cases:
        got, want = case.run(lib), case.oracle()
        if got.shape != want.shape or not np.array_equal(got, want):
            bad.append(case.describe())
    return bad


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="check every kernel variant against the oracle")
    parser.add_argument("--flavour", default="release", choices=["release", "sanitize"])
    parser.add_argument("--lib", default=None, help="shared library to load (default: build it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-variant", type=int, default=2)
    parser.add_argument("--pool-blocks", action="store_true",
                        help="also the average pool block cases and the add fast-path cases")
    args = parser.parse_args(argv)
    lib = KernelLib(args.lib, flavour=args.flavour)
    cases = all_cases(args.seed, args.per_variant)
    if args.pool_blocks:
        cases += pool_block_cases(args.seed, big=True) + add_fast_cases(args.seed)
    bad = check_cases(lib, cases)
    for b in bad:
        sys.stderr.write(f"mismatch: {b}\n")
    sys.stdout.write(f"{len(cases) - len(bad)}/{len(cases)} cases bit-exact\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
