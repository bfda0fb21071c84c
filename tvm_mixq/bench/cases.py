"""Benchmark cases: random layer data for one shape and bitwidth variant, and its expected output
from the Python reference (:mod:`tvm_mixq.reference.ops`).

Conventions (those of the kernel library and the baselines): 8-bit activations are int8, 4/2-bit
activations unsigned with a zero point inside their range; weights are signed with zero point 0;
per-output-channel requantization. The requantization scales are chosen from the accumulators so
that outputs spread over the output range (with some saturation at both ends).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import MixqError
from ..reference import ops
from ..reference.fixedpoint import quantize_multiplier, quantize_multipliers
from ..reference.subbyte import qrange
from .shapes import LayerShape

WEIGHTED_OPS = ("conv2d", "pointwise", "depthwise", "fully_connected")


@dataclass(frozen=True)
class Variant:
    """Bitwidths of one kernel variant (for add, ``w_bits`` is the second input's)."""

    in_bits: int
    w_bits: int
    out_bits: int

    @property
    def label(self) -> str:
        """``W4A8`` style (weights, activations), with the output bitwidth when it differs."""
        base = f"W{self.w_bits}A{self.in_bits}"
        return base if self.out_bits == self.in_bits else f"{base}O{self.out_bits}"

    @property
    def is_int8(self) -> bool:
        return self.in_bits == self.w_bits == self.out_bits == 8

    @property
    def key(self) -> str:
        return f"{self.in_bits}{self.w_bits}{self.out_bits}"


#: Variants benchmarked for conv2d / pointwise / depthwise / fully connected.
WEIGHTED_VARIANTS = (
    Variant(8, 8, 8),
    Variant(4, 4, 4),
    Variant(2, 2, 2),
    Variant(8, 4, 8),
    Variant(4, 8, 4),
    Variant(8, 2, 8),
)
#: Variants benchmarked for add and avgpool.
ELEMENTWISE_VARIANTS = (Variant(8, 8, 8), Variant(4, 4, 4), Variant(2, 2, 2))


def parse_variant(text: str) -> Variant:
    """``W4A8`` / ``W4A4O8`` / ``8,4,8`` (in, w, out) -> :class:`Variant`."""
    t = text.strip().upper()
    try:
        if "," in t:
            i, w, o = (int(v) for v in t.split(","))
            v = Variant(i, w, o)
        elif t.startswith("W") and "A" in t:
            w_part, rest = t[1:].split("A", 1)
            a_part, _, o_part = rest.partition("O")
            v = Variant(int(a_part), int(w_part), int(o_part) if o_part else int(a_part))
        else:
            raise ValueError
    except ValueError:
        raise MixqError(f"bad variant {text!r}: expected W<w>A<a>[O<out>] or in,w,out") from None
    for b in (v.in_bits, v.w_bits, v.out_bits):
        if b not in (8, 4, 2):
            raise MixqError(f"bad variant {text!r}: bitwidths must be 8, 4 or 2")
    return v


def act_range(bits: int) -> tuple[int, int]:
    return qrange(bits, signed=(bits == 8))


@dataclass
class CaseData:
    """Unpacked integer data of one (shape, variant) case and the reference output."""

    shape: LayerShape
    variant: Variant
    x: np.ndarray  # [h, w, cin] (FC: [K])
    x_zp: int
    out_zp: int
    qmin: int
    qmax: int
    expected: np.ndarray  # unpacked output values, flattened NHWC
    w: Optional[np.ndarray] = None  # OHWI / [1, kh, kw, C] / [cout, K]
    bias: Optional[np.ndarray] = None
    multiplier: Optional[np.ndarray] = None
    shift: Optional[np.ndarray] = None
    x2: Optional[np.ndarray] = None  # add
    x2_zp: int = 0
    add: Optional[ops.AddParams] = None
    extra: dict = field(default_factory=dict)


def _zero_point(rng: np.random.Generator, bits: int) -> int:
    lo, hi = act_range(bits)
    if bits == 8:
        return int(rng.integers(-16, 17))
    return int(rng.integers(lo, hi + 1))


def _requant_for(acc: np.ndarray, out_bits: int, rng: np.random.Generator,
                 mixed: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel multipliers/shifts and an output zero point that spread ``acc`` [..., C].

    ``mixed`` (sub-byte inputs into a wider output, ``out_bits > in_bits``): per-channel multipliers
    like those of real sub-byte layers instead, whose shifts have both signs (the input's larger
    scale pushes ``s_in s_w / s_out`` up: on VWW-96 the a4w4o8 pointwise layers have shifts in
    [-2, 1] and [-6, 1], most channels 0, a few +1, the a4w8o8 depthwise layers [-5, 0] and
    [-12, 1]): ``log2(real) ~ N(-0.7, 0.45)`` per channel, below 2 (shift <= 1). Those cases
    saturate more outputs; their random draws come after every other draw of the case, so the
    data of the other cases (and x, w, bias of these) is unchanged.
    """
    lo, hi = act_range(out_bits)
    flat = acc.reshape(-1, acc.shape[-1]).astype(np.float64)
    if flat.shape[0] < 16:  # too few outputs per channel (fully connected): one spread for all
        flat = np.repeat(flat.reshape(-1, 1), acc.shape[-1], axis=1)
    spread = np.maximum(np.percentile(flat, 97, axis=0) - np.percentile(flat, 3, axis=0), 1.0)
    real = (hi - lo) / spread
    real = np.clip(real, 1e-6, 0.99)
    if mixed:
        real = np.clip(2.0 ** rng.normal(-0.7, 0.45, size=real.shape), 1e-6, 1.99)
    mult, shift = quantize_multipliers(real)
    centre = float(np.median(np.median(flat, axis=0) * real))
    out_zp = int(np.clip(round((lo + hi) / 2 - centre), lo, hi))
    return mult, shift, out_zp


def make_case(shape: LayerShape, variant: Variant, seed: int = 0) -> CaseData:
    """Random data for ``shape`` at ``variant`` and its reference output."""
    rng = np.random.default_rng(seed)
    ib, wb, ob = variant.in_bits, variant.w_bits, variant.out_bits
    alo, ahi = act_range(ib)
    olo, ohi = act_range(ob)
    x_zp = _zero_point(rng, ib)
    if shape.op == "fully_connected":
        x = rng.integers(alo, ahi + 1, size=(shape.cin,))
    else:
        x = rng.integers(alo, ahi + 1, size=(shape.h, shape.w, shape.cin))
    if shape.op in WEIGHTED_OPS:
        wlo, whi = qrange(wb, signed=True)
        if shape.op == "depthwise":
            w = rng.integers(wlo, whi + 1, size=(1, shape.kh, shape.kw, shape.cout))
        elif shape.op == "fully_connected":
            w = rng.integers(wlo, whi + 1, size=(shape.cout, shape.cin))
        else:
            w = rng.integers(wlo, whi + 1, size=(shape.cout, shape.kh, shape.kw, shape.cin))
        stride = (shape.stride, shape.stride)
        if shape.op == "depthwise":
            acc = ops.depthwise_conv2d_accumulate(x[None], x_zp, w, stride, shape.padding)
        elif shape.op == "fully_connected":
            acc = (x.astype(np.int64) - x_zp)[None] @ w.astype(np.int64).T
        else:
            acc = ops.conv2d_accumulate(x[None], x_zp, w, stride, shape.padding)
        std = max(float(acc.std()), 1.0)
        bias = rng.integers(-int(std), int(std) + 1, size=(shape.cout,)).astype(np.int64)
        mult, shift, out_zp = _requant_for(acc + bias, ob, rng, mixed=ob > ib)
        if shape.op == "depthwise":
            out = ops.depthwise_conv2d(x[None], x_zp, w, bias, stride, shape.padding, (1, 1), 1, mult, shift,
                                       out_zp, olo, ohi)
        elif shape.op == "fully_connected":
            out = ops.fully_connected(x[None], x_zp, w, bias, mult, shift, out_zp, olo, ohi)
        else:
            out = ops.conv2d(x[None], x_zp, w, bias, stride, shape.padding, (1, 1), mult, shift, out_zp, olo, ohi)
        return CaseData(shape, variant, x, x_zp, out_zp, olo, ohi, out.reshape(-1), w=w, bias=bias,
                        multiplier=mult, shift=shift)
    if shape.op == "add":
        b2 = variant.w_bits
        lo2, hi2 = act_range(b2)
        x2 = rng.integers(lo2, hi2 + 1, size=x.shape)
        x2_zp = _zero_point(rng, b2)
        s1 = 1.0 / (ahi - alo)
        s2 = float(rng.uniform(0.5, 2.0)) / (hi2 - lo2)
        so = (s1 * (ahi - alo) + s2 * (hi2 - lo2)) / (ohi - olo) * 0.8
        p = ops.add_params(s1, s2, so)
        out_zp = (olo + ohi) // 2 - int(round(((ahi + alo) / 2 - x_zp) * s1 / so + ((hi2 + lo2) / 2 - x2_zp) * s2 / so))
        out_zp = int(np.clip(out_zp, olo, ohi))
        out = ops.add(x, x_zp, p.x1_mult, p.x1_shift, x2, x2_zp, p.x2_mult, p.x2_shift, p.out_mult, p.out_shift,
                      out_zp, olo, ohi, p.left_shift)
        return CaseData(shape, variant, x, x_zp, out_zp, olo, ohi, out.reshape(-1), x2=x2, x2_zp=x2_zp, add=p)
    if shape.op == "avgpool":
        ratio = (ohi - olo) / (ahi - alo)
        m, s = quantize_multiplier(ratio)
        out_zp = _zero_point(rng, ob)
        out = ops.avg_pool(x[None], (shape.kh, shape.kw), (shape.stride, shape.stride), shape.padding, olo, ohi,
                           x_zp=x_zp, multiplier=m, shift=s, out_zp=out_zp)
        return CaseData(shape, variant, x, x_zp, out_zp, olo, ohi, out.reshape(-1),
                        multiplier=np.array([m], np.int64), shift=np.array([s], np.int64))
    raise MixqError(f"unknown benchmark op {shape.op!r}")
