"""ctypes binding of the kernel library: validated NumPy-in, NumPy-out calls.

Each method takes the same arguments as its oracle in :mod:`tvm_mixq.reference.ops` (unpacked
integer arrays, per-channel multipliers and shifts, padding as ``(top, bottom, left, right)``)
plus the bitwidths of the variant, checks everything the kernel cannot take and raises
:class:`~tvm_mixq.errors.MixqError` with a one-line reason, packs the operands into the kernel
layouts (:mod:`.layout`), calls the C variant through its dispatcher and returns the unpacked
output as ``int64``.
"""
from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import MixqError
from . import layout
from .build import build_host_library

log = logging.getLogger(__name__)

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MIXQ_STATUS = {0: "ok", -1: "bad argument", -2: "scratch too small"}


class KernelStatusError(RuntimeError):
    """A kernel returned an error status although Python validation accepted the call."""


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Tile(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32)]


class Bits(ctypes.Structure):
    _fields_ = [("in_", ctypes.c_int32), ("w", ctypes.c_int32), ("out", ctypes.c_int32)]


class Context(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [
        ("input_zp", ctypes.c_int32),
        ("output_zp", ctypes.c_int32),
        ("stride", Tile),
        ("padding", Tile),
        ("dilation", Tile),
        ("ch_mult", ctypes.c_int32),
        ("act_min", ctypes.c_int32),
        ("act_max", ctypes.c_int32),
    ]


class FcParams(ctypes.Structure):
    _fields_ = [("input_zp", ctypes.c_int32), ("output_zp", ctypes.c_int32), ("act_min", ctypes.c_int32),
                ("act_max", ctypes.c_int32)]


class PerChannelQuant(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.POINTER(ctypes.c_int32)), ("shift", ctypes.POINTER(ctypes.c_int32))]


class AddParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "in1_zp", "in1_mult", "in1_shift", "in2_zp", "in2_mult", "in2_shift", "left_shift", "output_zp",
        "out_mult", "out_shift", "act_min", "act_max")]


class PoolParams(ctypes.Structure):
    _fields_ = [
        ("stride", Tile),
        ("padding", Tile),
        ("filter", Tile),
        ("input_zp", ctypes.c_int32),
        ("output_zp", ctypes.c_int32),
        ("multiplier", ctypes.c_int32),
        ("shift", ctypes.c_int32),
        ("act_min", ctypes.c_int32),
        ("act_max", ctypes.c_int32),
    ]


P = ctypes.POINTER
_CONV_ARGS = [Bits, P(Context), P(ConvParams), P(PerChannelQuant), P(Dims), ctypes.c_void_p, P(Dims),
              ctypes.c_void_p, ctypes.c_void_p, P(Dims), ctypes.c_void_p]
_FC_ARGS = [Bits, P(Context), P(FcParams), P(PerChannelQuant), P(Dims), ctypes.c_void_p, P(Dims), ctypes.c_void_p,
            ctypes.c_void_p, P(Dims), ctypes.c_void_p]
_SIGNATURES = {
    "mixq_conv2d": _CONV_ARGS,
    "mixq_pointwise": _CONV_ARGS,
    "mixq_depthwise": _CONV_ARGS,
    "mixq_fully_connected": _FC_ARGS,
    "mixq_add": [Bits, P(Context), P(AddParams), P(Dims), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p],
    "mixq_avgpool": [Bits, P(Context), P(PoolParams), P(Dims), ctypes.c_void_p, P(Dims), ctypes.c_void_p],
    "mixq_conv2d_get_buffer_size": [Bits, P(ConvParams), P(Dims), P(Dims), P(Dims)],
    "mixq_pointwise_get_buffer_size": [Bits, P(ConvParams), P(Dims), P(Dims), P(Dims)],
    "mixq_depthwise_get_buffer_size": [Bits, P(ConvParams), P(Dims), P(Dims), P(Dims)],
    "mixq_fully_connected_get_buffer_size": [Bits, P(FcParams), P(Dims), P(Dims), P(Dims)],
    "mixq_weights_size": [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32],
    "mixq_w4_lanes_size": [ctypes.c_int32, ctypes.c_int32],
    "mixq_weight_row_len": [ctypes.c_int32, ctypes.c_int32],
    "mixq_has_dsp": [],
}


def _pair(v: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    vals = tuple(int(x) for x in v)
    if len(vals) != 2:
        raise MixqError(f"{what} needs 2 values (h, w), got {vals}")
    return vals  # type: ignore[return-value]


def _int_array(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise MixqError(f"{what} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64)


def _check_range(a: np.ndarray, lo: int, hi: int, what: str) -> None:
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise MixqError(f"{what} outside [{lo}, {hi}] (min {int(a.min())}, max {int(a.max())})")


def _check_bits(bits: Sequence[int], n: int, what: str) -> tuple[int, ...]:
    bits = tuple(int(b) for b in bits)
    if len(bits) != n or any(b not in layout.BITS for b in bits):
        raise MixqError(f"{what} bitwidths {bits} invalid: need {n} values from {layout.BITS}")
    return bits


@dataclass
class _Quant:
    """Per-channel multipliers and shifts kept alive for one call."""

    mult: np.ndarray
    shift: np.ndarray

    def struct(self) -> PerChannelQuant:
        i32p = ctypes.POINTER(ctypes.c_int32)
        return PerChannelQuant(self.mult.ctypes.data_as(i32p), self.shift.ctypes.data_as(i32p))


def _quant(multiplier, shift, cout: int) -> _Quant:
    m = np.broadcast_to(_int_array(multiplier, "multiplier"), (cout,))
    s = np.broadcast_to(_int_array(shift, "shift"), (cout,))
    _check_range(m, 0, INT32_MAX, "multiplier")
    _check_range(s, -31, 30, "shift")
    return _Quant(np.ascontiguousarray(m, dtype=np.int32), np.ascontiguousarray(s, dtype=np.int32))


def _out_range(qmin: int, qmax: int, out_bits: int) -> None:
    lo, hi = layout.act_range(out_bits)
    if not (lo <= qmin <= qmax <= hi):
        raise MixqError(f"clamp [{qmin}, {qmax}] not inside the {out_bits}-bit output range [{lo}, {hi}]")


def _zp(zp: int, bits: int, what: str) -> int:
    lo, hi = layout.act_range(bits)
    if not lo <= int(zp) <= hi:
        raise MixqError(f"{what} zero point {zp} outside the {bits}-bit range [{lo}, {hi}]")
    return int(zp)


def _bias(bias: Optional[np.ndarray], cout: int) -> Optional[np.ndarray]:
    if bias is None:
        return None
    b = _int_array(bias, "bias").reshape(-1)
    if b.size != cout:
        raise MixqError(f"bias has {b.size} values for {cout} output channels")
    _check_range(b, INT32_MIN, INT32_MAX, "bias")
    return np.ascontiguousarray(b, dtype=np.int32)


def _check_acc_bound(k: int, in_bits: int, x_zp: int, w_bits: int, bias: Optional[np.ndarray]) -> None:
    """The kernels accumulate in int32: refuse layers whose worst case could overflow."""
    lo, hi = layout.act_range(in_bits)
    xmax = max(abs(lo - x_zp), abs(hi - x_zp))
    wmax = 1 << (w_bits - 1)
    bmax = int(np.abs(bias.astype(np.int64)).max()) if bias is not None and bias.size else 0
    if k * xmax * wmax + bmax > INT32_MAX:
        raise MixqError(f"reduction of {k} terms at {in_bits}x{w_bits} bits could overflow the int32 accumulator")


def _ptr(a: Optional[np.ndarray]) -> Optional[int]:
    return None if a is None else a.ctypes.data


def _check_lanes(lanes: bool, bits: tuple[int, ...], what: str) -> None:
    """Weights in lane words (the ``_lanes`` entry points) exist for A4W4 only."""
    if lanes and tuple(bits[:2]) != (4, 4):
        raise MixqError(f"{what}: weights in lane words (the _lanes entry points) need 4-bit inputs and weights, "
                        f"got {bits}")


class KernelLib:
    """The kernel library loaded from a shared object.

    Parameters
    ----------
    path : shared library; built with :func:`build_host_library` (``flavour``) when omitted.
    flavour : ``release`` or ``sanitize`` (the latter needs the ASan runtime preloaded).
    """

    def __init__(self, path: Optional[Path] = None, flavour: str = "release") -> None:
        self.path = Path(path) if path else build_host_library(flavour)
        self._lib = ctypes.CDLL(str(self.path))
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int32

    # ---- small queries ----------------------------------------------------------------------

    @property
    def has_dsp(self) -> bool:
        return bool(self._lib.mixq_has_dsp())

    def weights_size(self, k: int, cout: int, w_bits: int) -> int:
        return int(self._lib.mixq_weights_size(k, cout, w_bits))

    def symbol(self, name: str):
        """A raw ctypes function of the library (e.g. one variant by name)."""
        return getattr(self._lib, name)

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _scratch(size: int) -> tuple[np.ndarray, Context]:
        if size < 0:
            raise KernelStatusError("get_buffer_size refused arguments that Python accepted")
        buf = np.zeros(max(size, 4) // 4 + 1, dtype=np.int32)
        return buf, Context(buf.ctypes.data, size)

    @staticmethod
    def _status(st: int, name: str) -> None:
        if st != 0:
            raise KernelStatusError(f"{name} returned {st} ({MIXQ_STATUS.get(st, 'unknown')})")

    # ---- convolutions -----------------------------------------------------------------------

    def conv2d(
        self,
        x: np.ndarray,
        x_zp: int,
        w: np.ndarray,
        bias: Optional[np.ndarray],
        stride: int | Sequence[int],
        padding: Sequence[int],
        dilation: int | Sequence[int],
        multiplier,
        shift,
        out_zp: int,
        qmin: int,
        qmax: int,
        bits: Sequence[int] = (8, 8, 8),
        op: str = "conv2d",
        lanes: bool = False,
    ) -> np.ndarray:
        """Convolution ``[N, H, W, Cin]`` x ``[Cout, KH, KW, Cin]`` -> ``[N, OH, OW, Cout]``.

        ``op`` is ``conv2d`` or ``pointwise`` (1x1 filter, no padding). ``bits`` is
        ``(input, weight, output)``. ``lanes`` (A4W4): pass the weights re-spaced into lane words
        with the lane bias (the ``_lanes`` entry point).
        """
        if op not in ("conv2d", "pointwise"):
            raise MixqError(f"unknown convolution op {op!r}")
        ib, wb, ob = _check_bits(bits, 3, op)
        x = _int_array(x, "input")
        w = _int_array(w, "weights")
        if x.ndim != 4 or w.ndim != 4:
            raise MixqError(f"{op}: input must be NHWC and weights OHWI, got {x.shape} and {w.shape}")
        n, h, wd, cin = x.shape
        cout, kh, kw, wcin = w.shape
        if wcin != cin:
            raise MixqError(f"{op}: weights have {wcin} input channels, input has {cin}")
        sh, sw = _pair(stride, "stride")
        dh, dw = _pair(dilation, "dilation")
        if min(sh, sw, dh, dw) < 1:
            raise MixqError(f"{op}: stride and dilation must be >= 1")
        top, bottom, left, right = (int(v) for v in padding)
        if min(top, bottom, left, right) < 0:
            raise MixqError(f"{op}: negative padding {tuple(padding)}")
        if op == "pointwise" and (kh, kw, top, bottom, left, right) != (1, 1, 0, 0, 0, 0):
            raise MixqError(f"pointwise needs a 1x1 filter without padding, got {kh}x{kw} padding {tuple(padding)}")
        oh = (h + top + bottom - ((kh - 1) * dh + 1)) // sh + 1
        ow = (wd + left + right - ((kw - 1) * dw + 1)) // sw + 1
        if oh <= 0 or ow <= 0 or min(n, h, wd, cin, cout) <= 0:
            raise MixqError(f"{op}: empty input or output (input {x.shape}, filter {kh}x{kw}, output {oh}x{ow})")
        _check_range(x, *layout.act_range(ib), f"{ib}-bit input")
        x_zp = _zp(x_zp, ib, "input")
        _out_range(qmin, qmax, ob)
        out_zp = int(out_zp)
        b = _bias(bias, cout)
        _check_acc_bound(kh * kw * cin, ib, x_zp, wb, b)
        q = _quant(multiplier, shift, cout)
        _check_lanes(lanes, (ib, wb, ob), op)
        params = ConvParams(x_zp, out_zp, Tile(sh, sw), Tile(top, left), Tile(dh, dw), 1, int(qmin), int(qmax))
        wpacked, b = layout.kernel_weights(w, wb, b, x_zp, lanes)
        return self._conv_call(f"mixq_{op}", params, q, x, ib, wpacked, Dims(cout, kh, kw, cin), b,
                               Dims(n, oh, ow, cout), (ib, wb, ob), lanes)

    def _lane_fns(self, name: str, out_bits: int, params):
        """(get_buffer_size, call) of the A4W4 entry point ``<name>_a4w4o<out_bits>_lanes``."""
        base = f"{name}_a4w4o{out_bits}_lanes"
        size_fn, fn = getattr(self._lib, f"{base}_get_buffer_size"), getattr(self._lib, base)
        pp = P(type(params))
        size_fn.argtypes = [pp, P(Dims), P(Dims), P(Dims)]
        size_fn.restype = ctypes.c_int32
        fn.argtypes = [P(Context), pp, P(PerChannelQuant), P(Dims), ctypes.c_void_p, P(Dims), ctypes.c_void_p,
                       ctypes.c_void_p, P(Dims), ctypes.c_void_p]
        fn.restype = ctypes.c_int32
        return size_fn, fn

    def _conv_call(self, name: str, params, q: _Quant, x: np.ndarray, ib: int, wpacked: np.ndarray, wdims: Dims,
                   bias: Optional[np.ndarray], odims: Dims, bits: tuple[int, int, int],
                   lanes: bool = False) -> np.ndarray:
        xin = np.ascontiguousarray(layout.pack_activations(x, ib))
        idims = Dims(*x.shape)
        cbits = Bits(*bits)
        if lanes:
            size_fn, fn = self._lane_fns(name, bits[2], params)
            size = size_fn(params, idims, wdims, odims)
        else:
            size = getattr(self._lib, f"{name}_get_buffer_size")(cbits, params, idims, wdims, odims)
        scratch, ctx = self._scratch(size)
        out_count = odims.n * odims.h * odims.w * odims.c
        out = np.zeros((out_count * bits[2] + 7) // 8, dtype=np.uint8)
        wbuf = np.ascontiguousarray(wpacked)
        qs = q.struct()
        if lanes:
            st = fn(ctx, params, qs, idims, _ptr(xin), wdims, _ptr(wbuf), _ptr(bias), odims, _ptr(out))
        else:
            st = getattr(self._lib, name)(cbits, ctx, params, qs, idims, _ptr(xin), wdims, _ptr(wbuf), _ptr(bias),
                                          odims, _ptr(out))
        self._status(st, name)
        del scratch
        return layout.unpack_activations(out, bits[2], (odims.n, odims.h, odims.w, odims.c))

    def scratch_bytes(self, op: str, bits: Sequence[int], x_shape: Sequence[int], w_shape: Sequence[int],
                      stride=1, padding=(0, 0, 0, 0), dilation=1, lanes: bool = False) -> int:
        """Scratch (bytes) a conv2d / pointwise / depthwise / fully_connected call needs (this build's
        path; ``lanes``: A4W4 weights in lane words)."""
        bits = _check_bits(bits, 3, op)
        _check_lanes(lanes, bits, op)
        n, h, wd, cin = (int(v) for v in x_shape)
        sh, sw = _pair(stride, "stride")
        dh, dw = _pair(dilation, "dilation")
        top, bottom, left, right = (int(v) for v in padding)
        if op == "fully_connected":
            cout, k = int(w_shape[0]), int(np.prod(w_shape[1:]))
            p = FcParams(0, 0, *layout.act_range(bits[2]))
            dims = (Dims(n, 1, 1, k), Dims(cout, 1, 1, k), Dims(n, 1, 1, cout))
            if lanes:
                return int(self._lane_fns("mixq_fully_connected", bits[2], p)[0](p, *dims))
            return int(self._lib.mixq_fully_connected_get_buffer_size(Bits(*bits), p, *dims))
        if op == "depthwise":
            _, kh, kw, cout = (int(v) for v in w_shape)
            wdims = Dims(1, kh, kw, cout)
        else:
            cout, kh, kw, _ = (int(v) for v in w_shape)
            wdims = Dims(cout, kh, kw, cin)
        oh = (h + top + bottom - ((kh - 1) * dh + 1)) // sh + 1
        ow = (wd + left + right - ((kw - 1) * dw + 1)) // sw + 1
        p = ConvParams(0, 0, Tile(sh, sw), Tile(top, left), Tile(dh, dw), max(cout // cin, 1),
                       *layout.act_range(bits[2]))
        if lanes:
            return int(self._lane_fns(f"mixq_{op}", bits[2], p)[0](p, Dims(n, h, wd, cin), wdims, Dims(n, oh, ow, cout)))
        fn = getattr(self._lib, f"mixq_{op}_get_buffer_size")
        return int(fn(Bits(*bits), p, Dims(n, h, wd, cin), wdims, Dims(n, oh, ow, cout)))

    def depthwise_conv2d(
        self,
        x: np.ndarray,
        x_zp: int,
        w: np.ndarray,
        bias: Optional[np.ndarray],
        stride: int | Sequence[int],
        padding: Sequence[int],
        dilation: int | Sequence[int],
        depth_multiplier: int,
        multiplier,
        shift,
        out_zp: int,
        qmin: int,
        qmax: int,
        bits: Sequence[int] = (8, 8, 8),
    ) -> np.ndarray:
        """Depthwise convolution, weights ``[1, KH, KW, Cin * depth_multiplier]``."""
        ib, wb, ob = _check_bits(bits, 3, "depthwise")
        x = _int_array(x, "input")
        w = _int_array(w, "weights")
        if x.ndim != 4 or w.ndim != 4 or w.shape[0] != 1:
            raise MixqError(f"depthwise: input must be NHWC and weights [1, KH, KW, C], got {x.shape}, {w.shape}")
        n, h, wd, cin = x.shape
        _, kh, kw, cout = w.shape
        dm = int(depth_multiplier)
        if dm < 1 or cout != cin * dm:
            raise MixqError(f"depthwise: weights have {cout} channels, expected {cin} x {depth_multiplier}")
        sh, sw = _pair(stride, "stride")
        dh, dw = _pair(dilation, "dilation")
        if min(sh, sw, dh, dw) < 1:
            raise MixqError("depthwise: stride and dilation must be >= 1")
        top, bottom, left, right = (int(v) for v in padding)
        if min(top, bottom, left, right) < 0:
            raise MixqError(f"depthwise: negative padding {tuple(padding)}")
        oh = (h + top + bottom - ((kh - 1) * dh + 1)) // sh + 1
        ow = (wd + left + right - ((kw - 1) * dw + 1)) // sw + 1
        if oh <= 0 or ow <= 0 or min(n, h, wd, cin) <= 0:
            raise MixqError(f"depthwise: empty input or output (input {x.shape}, output {oh}x{ow})")
        _check_range(x, *layout.act_range(ib), f"{ib}-bit input")
        x_zp = _zp(x_zp, ib, "input")
        _out_range(qmin, qmax, ob)
        b = _bias(bias, cout)
        _check_acc_bound(kh * kw, ib, x_zp, wb, b)
        q = _quant(multiplier, shift, cout)
        params = ConvParams(x_zp, int(out_zp), Tile(sh, sw), Tile(top, left), Tile(dh, dw), dm, int(qmin), int(qmax))
        return self._conv_call("mixq_depthwise", params, q, x, ib, layout.pack_depthwise_weights(w, wb),
                               Dims(1, kh, kw, cout), b, Dims(n, oh, ow, cout), (ib, wb, ob))

    def fully_connected(
        self,
        x: np.ndarray,
        x_zp: int,
        w: np.ndarray,
        bias: Optional[np.ndarray],
        multiplier,
        shift,
        out_zp: int,
        qmin: int,
        qmax: int,
        bits: Sequence[int] = (8, 8, 8),
        lanes: bool = False,
    ) -> np.ndarray:
        """Fully connected ``[N, K]`` x ``[Cout, K]`` -> ``[N, Cout]`` (``lanes`` as for :meth:`conv2d`)."""
        ib, wb, ob = _check_bits(bits, 3, "fully_connected")
        x = _int_array(x, "input")
        w = _int_array(w, "weights")
        if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1] or min(x.shape + w.shape) <= 0:
            raise MixqError(f"fully_connected: need input [N, K] and weights [Cout, K], got {x.shape}, {w.shape}")
        n, k = x.shape
        cout = w.shape[0]
        _check_range(x, *layout.act_range(ib), f"{ib}-bit input")
        x_zp = _zp(x_zp, ib, "input")
        _out_range(qmin, qmax, ob)
        b = _bias(bias, cout)
        _check_acc_bound(k, ib, x_zp, wb, b)
        q = _quant(multiplier, shift, cout)
        _check_lanes(lanes, (ib, wb, ob), "fully_connected")
        params = FcParams(x_zp, int(out_zp), int(qmin), int(qmax))
        wpacked, b = layout.kernel_weights(w, wb, b, x_zp, lanes)
        out = self._conv_call("mixq_fully_connected", params, q, x.reshape(n, 1, 1, k), ib, wpacked,
                              Dims(cout, 1, 1, k), b, Dims(n, 1, 1, cout), (ib, wb, ob), lanes)
        return out.reshape(n, cout)

    # ---- elementwise ------------------------------------------------------------------------

    def add(self, x1: np.ndarray, x1_zp: int, x1_mult: int, x1_shift: int, x2: np.ndarray, x2_zp: int,
            x2_mult: int, x2_shift: int, out_mult: int, out_shift: int, out_zp: int, qmin: int, qmax: int,
            left_shift: int = 20, bits: Sequence[int] = (8, 8, 8)) -> np.ndarray:
        """Elementwise add of two same-shape tensors (no broadcasting); ``bits`` = (in1, in2, out)."""
        b1, b2, ob = _check_bits(bits, 3, "add")
        x1 = _int_array(x1, "input 1")
        x2 = _int_array(x2, "input 2")
        if x1.shape != x2.shape or x1.size == 0:
            raise MixqError(f"add: inputs must have the same non-empty shape (no broadcasting), got {x1.shape}, "
                            f"{x2.shape}")
        if not 0 <= int(left_shift) <= 20:
            raise MixqError(f"add: left_shift {left_shift} outside [0, 20]")
        _check_range(x1, *layout.act_range(b1), f"{b1}-bit input 1")
        _check_range(x2, *layout.act_range(b2), f"{b2}-bit input 2")
        _out_range(qmin, qmax, ob)
        for m, s in ((x1_mult, x1_shift), (x2_mult, x2_shift), (out_mult, out_shift)):
            _quant(m, s, 1)
        shape4 = (1,) * (4 - x1.ndim) + x1.shape if x1.ndim <= 4 else (int(np.prod(x1.shape)), 1, 1, 1)
        p = AddParams(_zp(x1_zp, b1, "input 1"), int(x1_mult), int(x1_shift), _zp(x2_zp, b2, "input 2"),
                      int(x2_mult), int(x2_shift), int(left_shift), int(out_zp), int(out_mult), int(out_shift),
                      int(qmin), int(qmax))
        a = np.ascontiguousarray(layout.pack_activations(x1, b1))
        b = np.ascontiguousarray(layout.pack_activations(x2, b2))
        out = np.zeros((x1.size * ob + 7) // 8, dtype=np.uint8)
        scratch, ctx = self._scratch(0)
        st = self._lib.mixq_add(Bits(b1, b2, ob), ctx, p, Dims(*shape4), _ptr(a), _ptr(b), _ptr(out))
        self._status(st, "mixq_add")
        del scratch
        return layout.unpack_activations(out, ob, x1.shape)

    def avg_pool(self, x: np.ndarray, filter_hw, stride, padding: Sequence[int], qmin: int, qmax: int,
                 x_zp: Optional[int] = None, multiplier: Optional[int] = None, shift: Optional[int] = None,
                 out_zp: Optional[int] = None, bits: Sequence[int] = (8, 8)) -> np.ndarray:
        """Average pool; without ``x_zp``/``multiplier``/``shift``/``out_zp`` TFLite's plain case."""
        ib, ob = _check_bits(bits, 2, "avgpool")
        x = _int_array(x, "input")
        if x.ndim != 4 or x.size == 0:
            raise MixqError(f"avgpool: input must be a non-empty NHWC tensor, got {x.shape}")
        fh, fw = _pair(filter_hw, "filter")
        sh, sw = _pair(stride, "stride")
        top, bottom, left, right = (int(v) for v in padding)
        if min(fh, fw, sh, sw) < 1 or min(top, bottom, left, right) < 0:
            raise MixqError("avgpool: filter and stride must be >= 1 and padding >= 0")
        n, h, wd, c = x.shape
        oh = (h + top + bottom - fh) // sh + 1
        ow = (wd + left + right - fw) // sw + 1
        if oh <= 0 or ow <= 0:
            raise MixqError(f"avgpool: empty output for input {x.shape} and filter {fh}x{fw}")
        if top >= fh or bottom >= fh or left >= fw or right >= fw:
            raise MixqError("avgpool: padding must be smaller than the filter (a window would be empty)")
        _check_range(x, *layout.act_range(ib), f"{ib}-bit input")
        _out_range(qmin, qmax, ob)
        requant = x_zp is not None
        if requant:
            if multiplier is None or shift is None or out_zp is None:
                raise MixqError("avgpool requantization needs x_zp, multiplier, shift and out_zp")
            if int(multiplier) <= 0:
                raise MixqError("avgpool requantization needs a positive multiplier")
            _quant(multiplier, shift, 1)
            p = PoolParams(Tile(sh, sw), Tile(top, left), Tile(fh, fw), _zp(x_zp, ib, "input"), int(out_zp),
                           int(multiplier), int(shift), int(qmin), int(qmax))
        else:
            p = PoolParams(Tile(sh, sw), Tile(top, left), Tile(fh, fw), 0, 0, 0, 0, int(qmin), int(qmax))
        xin = np.ascontiguousarray(layout.pack_activations(x, ib))
        out = np.zeros((n * oh * ow * c * ob + 7) // 8, dtype=np.uint8)
        scratch, ctx = self._scratch(0)
        st = self._lib.mixq_avgpool(Bits(ib, 8, ob), ctx, p, Dims(n, h, wd, c), _ptr(xin), Dims(n, oh, ow, c),
                                    _ptr(out))
        self._status(st, "mixq_avgpool")
        del scratch
        return layout.unpack_activations(out, ob, (n, oh, ow, c))
