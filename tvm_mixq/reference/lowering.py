"""Kernel parameters of one op, derived in one place.

Every consumer of a layer's integer parameters reads them from here: the reference interpreter
(:mod:`.interpreter`, which runs them), the whole-model C generator
(:mod:`tvm_mixq.codegen.layers`), the per-composite ``relax.ext.mixq`` emitter
(:mod:`tvm_mixq.relax.codegen`) and the TFLM rewriter (:mod:`tvm_mixq.tflm.rewriter`). So the C
kernels, the TFLM custom ops and the reference apply the same numbers by construction.

Two levels:

* Formulas on quantization parameters (:func:`conv_multipliers`, :func:`fc_multipliers`,
  :func:`pool_requant`, ...). They follow TFLite's Prepare functions, including where TFLite
  rounds to float32 and where it works in double. The relax emitter, which sees a composite
  function rather than a :class:`~tvm_mixq.graph.Graph`, calls these.
* :func:`lower_op` (and one ``lower_<kind>`` per op family): a typed record of everything the
  kernel of one :class:`~tvm_mixq.graph.Op` needs, with the interpreter's validation (an op, dtype
  or attribute outside what the reference implements raises :class:`UnsupportedOpError`).

Ops whose parameters are only shapes or tables built by a shared helper (RESHAPE, TRANSPOSE,
CONCATENATION, RESIZE_NEAREST_NEIGHBOR, LOGISTIC, HARD_SWISH, DEQUANTIZE) have no record here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import (
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    Op,
    PoolAttrs,
    SoftmaxAttrs,
    Tensor,
)
from . import ops, transcendental
from .fixedpoint import quantize_multiplier, quantize_multipliers
from .subbyte import qrange

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1)}


# ---------------------------------------------------------------------------------------------
# Tensor helpers (validation as the interpreter does it).


def _unsupported(op: Op, detail: str) -> UnsupportedOpError:
    return UnsupportedOpError(op.kind, op.index, detail)


def _qparams(op: Op, t: Tensor) -> tuple[np.float32, int]:
    """(scale as float32, zero point) of a per-tensor quantized tensor."""
    if t.quant is None:
        raise _unsupported(op, f"tensor '{t.name}' has no quantization parameters")
    if t.quant.per_channel:
        raise _unsupported(op, f"tensor '{t.name}' must be quantized per tensor")
    return np.float32(t.quant.scale[0]), int(t.quant.zero_point[0])


def _storage_range(t: Tensor) -> tuple[int, int]:
    """Integer range of a tensor: its dtype's range, narrowed to its bitwidth."""
    lo, hi = INT_RANGES[t.dtype]
    if t.bits < 8:
        blo, bhi = qrange(t.bits, t.signed)
        lo, hi = max(lo, blo), min(hi, bhi)
    return lo, hi


def _require_int8(op: Op, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype != "int8":
            raise _unsupported(op, f"tensor '{t.name}' is {t.dtype}; only int8 is supported")


def _out_range(op: Op, t: Tensor, activation: str = "NONE") -> tuple[int, int]:
    """Output clamp: the fused activation's range within the tensor's n-bit range."""
    scale, zp = _qparams(op, t)
    if activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise _unsupported(op, f"fused activation {activation}")
    return ops.activation_range(activation, float(scale), zp, t.dtype, t.bits, t.signed)


def _const(graph: Graph, op: Op, position: int) -> np.ndarray:
    t = graph.tensors[op.inputs[position]]
    if t.data is None:
        raise _unsupported(op, f"input {position} ('{t.name}') must be a constant")
    return np.asarray(t.data)


def _weights(graph: Graph, op: Op, position: int) -> np.ndarray:
    """Constant weights as int64, checked against their bitwidth's range."""
    t = graph.tensors[op.inputs[position]]
    w = _const(graph, op, position).astype(np.int64)
    lo, hi = _storage_range(t)
    if w.size and (w.min() < lo or w.max() > hi):
        raise _unsupported(op, f"weights '{t.name}' hold values outside their {t.bits}-bit range [{lo}, {hi}]")
    return w


def _bias(graph: Graph, op: Op, position: int) -> Optional[np.ndarray]:
    if len(op.inputs) <= position or op.inputs[position] < 0:
        return None
    return _const(graph, op, position).astype(np.int64)


def _channel_scales(op: Op, t: Tensor, channels: int) -> np.ndarray:
    """The weights' scales as float32, one per output channel (a per-tensor scale repeated)."""
    if t.quant is None:
        raise _unsupported(op, f"weights '{t.name}' have no quantization parameters")
    scales = t.quant.scale.astype(np.float32)
    if scales.size == 1:
        return np.repeat(scales, channels)
    if scales.size != channels:
        raise _unsupported(op, f"weights '{t.name}' have {scales.size} scales for {channels} channels")
    return scales


def _binary_inputs(graph: Graph, op: Op) -> tuple[Tensor, Tensor, Tensor]:
    return graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]


# ---------------------------------------------------------------------------------------------
# Formulas on quantization parameters.


def conv_real_multipliers(s_in: float, w_scales: np.ndarray, s_out: float) -> np.ndarray:
    """``double(s_in) * double(s_w) / double(s_out)`` per channel (float64 ``[C]``)."""
    return np.float64(s_in) * np.asarray(w_scales).astype(np.float64) / np.float64(s_out)


def conv_multipliers(s_in: float, w_scales: np.ndarray, s_out: float) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``PopulateConvolutionQuantizationParams``: per-channel (multiplier, shift), int64 ``[C]``.

    ``w_scales`` holds one scale per output channel (float32 values; repeat a per-tensor scale).
    """
    return quantize_multipliers(conv_real_multipliers(s_in, w_scales, s_out))


def fc_multipliers(s_in: np.float32, w_scales: np.ndarray, s_out: np.float32,
                   channels: int) -> tuple[np.ndarray, np.ndarray]:
    """FULLY_CONNECTED (multiplier, shift), int64 ``[channels]``.

    Per-channel weights: as :func:`conv_multipliers`. Per-tensor weights:
    ``GetQuantizedConvolutionMultipler``, the product ``s_in * s_w`` in float32, divided by
    ``s_out`` in double; the pair is repeated over the channels.
    """
    w_scales = np.asarray(w_scales, dtype=np.float32)
    if w_scales.size > 1:
        return conv_multipliers(s_in, w_scales, s_out)
    s_w = np.float32(w_scales.ravel()[0])
    m, s = quantize_multiplier(float(np.float64(np.float32(np.float32(s_in) * s_w)) / np.float64(s_out)))
    return np.full(channels, m, np.int64), np.full(channels, s, np.int64)


def requantize_multiplier(s_in: float, s_out: float) -> tuple[int, int]:
    """``QuantizeMultiplier(double(s_in) / double(s_out))`` (QUANTIZE int to int, MEAN, pooling)."""
    return quantize_multiplier(float(s_in) / float(s_out))


@dataclass(frozen=True)
class PoolRequant:
    """Requantization of a pooling layer between different (scale, zero point)."""

    input_zp: int
    multiplier: int
    shift: int
    output_zp: int


def pool_requant(s_in: float, z_in: int, s_out: float, z_out: int, sub_byte: bool) -> Optional[PoolRequant]:
    """The requantization of AVERAGE_POOL_2D / MAX_POOL_2D, or None for TFLite's plain pooling.

    TFLite's int8 pooling ignores the output's scale (the converter makes them equal); the
    project requantizes by ``s_in / s_out`` only when a sub-byte input or output
    (``sub_byte``) has another (scale, zero point).
    """
    if not sub_byte or (s_in, z_in) == (s_out, z_out):
        return None
    m, s = requantize_multiplier(s_in, s_out)
    return PoolRequant(z_in, m, s, z_out)


def mul_multiplier(s1: np.float32, s2: np.float32, s_out: np.float32) -> tuple[int, int]:
    """MUL: ``s1 * s2 / s_out`` in float32 (mul.cc), widened to double."""
    return quantize_multiplier(float(np.float32(np.float32(s1 * s2) / s_out)))


def mean_multiplier(s_in: float, s_out: float, count: int) -> tuple[int, int]:
    """MEAN: ``reference_ops::QuantizedMeanOrSum`` folds ``1 / count`` into the multiplier."""
    mult, shift = requantize_multiplier(s_in, s_out)
    pot = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << pot) // count, shift - pot


# ---------------------------------------------------------------------------------------------
# Records.


@dataclass(frozen=True, eq=False)
class ConvLowering:
    """CONV_2D and DEPTHWISE_CONV_2D.

    Attributes
    ----------
    depthwise : DEPTHWISE_CONV_2D.
    weights : int64, ``[Cout, kh, kw, Cin]`` (CONV_2D) or ``[1, kh, kw, Cout]`` (depthwise), as
        stored (sub-byte values in their signed range).
    bias : int64 ``[Cout]`` or None.
    input_zp, output_zp : zero points of the input and the output.
    multiplier, shift : int64 ``[Cout]`` (:func:`conv_multipliers`).
    act_min, act_max : output clamp (fused activation within the output's n-bit range).
    stride, dilation : (h, w).
    padding : (top, bottom, left, right), TFLite's SAME/VALID padding.
    depth_multiplier : output channels per input channel (1 for CONV_2D).
    """

    depthwise: bool
    weights: np.ndarray
    bias: Optional[np.ndarray]
    input_zp: int
    output_zp: int
    multiplier: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]
    depth_multiplier: int = 1

    @property
    def channels(self) -> int:
        return int(self.weights.shape[3] if self.depthwise else self.weights.shape[0])

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return int(self.weights.shape[1]), int(self.weights.shape[2])

    @property
    def pointwise(self) -> bool:
        """A 1x1 convolution with unit stride and dilation and no padding (the pointwise kernel)."""
        return (not self.depthwise and self.kernel_hw == (1, 1) and tuple(self.stride) == (1, 1)
                and tuple(self.padding) == (0, 0, 0, 0) and tuple(self.dilation) == (1, 1))


@dataclass(frozen=True, eq=False)
class FullyConnectedLowering:
    """FULLY_CONNECTED.

    Attributes
    ----------
    weights : int64 ``[Cout, depth]``.
    bias : int64 ``[Cout]`` or None.
    input_zp, weight_zp, output_zp : zero points (``weight_zp`` is 0 for per-channel weights).
    multiplier, shift : int64 ``[Cout]`` (:func:`fc_multipliers`), the fixed-point
        requantization of TFLM, CMSIS-NN and the project's kernels.
    real_multiplier : float64 ``[Cout]``, ``double(s_in) * double(s_w) / double(s_out)``: the
        double requantization of TFLite's reference kernel for int8 layers.
    act_min, act_max : output clamp.
    """

    weights: np.ndarray
    bias: Optional[np.ndarray]
    input_zp: int
    weight_zp: int
    output_zp: int
    multiplier: np.ndarray
    shift: np.ndarray
    real_multiplier: np.ndarray
    act_min: int
    act_max: int

    @property
    def channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def depth(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True)
class AddLowering:
    """ADD: TFLite's int8 arithmetic (``ops.add_params``) with each tensor's zero point."""

    input1_zp: int
    input2_zp: int
    output_zp: int
    params: ops.AddParams
    act_min: int
    act_max: int

    def kernel_params(self) -> dict[str, int]:
        """The fields of the kernel library's ``mixq_add_params``, by name."""
        p = self.params
        return {"in1_zp": self.input1_zp, "in1_mult": p.x1_mult, "in1_shift": p.x1_shift,
                "in2_zp": self.input2_zp, "in2_mult": p.x2_mult, "in2_shift": p.x2_shift,
                "left_shift": p.left_shift, "output_zp": self.output_zp, "out_mult": p.out_mult,
                "out_shift": p.out_shift, "act_min": self.act_min, "act_max": self.act_max}


@dataclass(frozen=True)
class MulLowering:
    """MUL: one multiplier (:func:`mul_multiplier`)."""

    input1_zp: int
    input2_zp: int
    multiplier: int
    shift: int
    output_zp: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolLowering:
    """AVERAGE_POOL_2D and MAX_POOL_2D.

    ``padding`` is (top, bottom, left, right); ``requant`` is :func:`pool_requant`'s.
    """

    average: bool
    filter: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    act_min: int
    act_max: int
    requant: Optional[PoolRequant]

    def oracle_requant(self) -> dict[str, int]:
        """Keyword arguments of :func:`ops.avg_pool` / :func:`ops.max_pool` for ``requant`` (none when None)."""
        r = self.requant
        return {} if r is None else {"x_zp": r.input_zp, "multiplier": r.multiplier, "shift": r.shift,
                                     "out_zp": r.output_zp}

    def kernel_requant(self) -> dict[str, int]:
        """``input_zp``, ``output_zp``, ``multiplier``, ``shift`` of the kernel library's
        ``mixq_pool_params`` (all 0: TFLite's plain rounded average of the stored values)."""
        r = self.requant
        if r is None:
            return {"input_zp": 0, "output_zp": 0, "multiplier": 0, "shift": 0}
        return {"input_zp": r.input_zp, "output_zp": r.output_zp, "multiplier": r.multiplier, "shift": r.shift}


@dataclass(frozen=True)
class MeanLowering:
    """MEAN over ``axes`` (``count`` elements): :func:`mean_multiplier`, output storage clamp."""

    axes: tuple[int, ...]
    count: int
    input_zp: int
    multiplier: int
    shift: int
    output_zp: int
    out_min: int
    out_max: int


@dataclass(frozen=True)
class RequantizeLowering:
    """Element-wise requantization: QUANTIZE (int to int), RELU, RELU6.

    ``out = clamp(MultiplyByQuantizedMultiplier(x - input_zp, multiplier, shift) + output_zp,
    out_min, out_max)``.
    """

    input_zp: int
    multiplier: int
    shift: int
    output_zp: int
    out_min: int
    out_max: int


@dataclass(frozen=True)
class QuantizeFloatLowering:
    """QUANTIZE from float32: ``clamp(round(x / scale) + zero_point, out_min, out_max)``."""

    scale: np.float32
    zero_point: int
    out_min: int
    out_max: int


@dataclass(frozen=True)
class PadLowering:
    """PAD: ``(before, after)`` per axis and the fill value."""

    paddings: tuple[tuple[int, int], ...]
    value: int


@dataclass(frozen=True)
class SoftmaxLowering:
    """SOFTMAX (int8, output zero point -128): ``transcendental.softmax_params``."""

    multiplier: int
    left_shift: int
    diff_min: int


@dataclass(frozen=True)
class LogSoftmaxLowering:
    """LOG_SOFTMAX (int8, output 16/256 and 127): ``transcendental.log_softmax_params``."""

    params: tuple


Lowering = Union[ConvLowering, FullyConnectedLowering, AddLowering, MulLowering, PoolLowering, MeanLowering,
                 RequantizeLowering, QuantizeFloatLowering, PadLowering, SoftmaxLowering, LogSoftmaxLowering]


# ---------------------------------------------------------------------------------------------
# One lowering per op family.


def lower_conv(graph: Graph, op: Op) -> ConvLowering:
    """CONV_2D or DEPTHWISE_CONV_2D (by ``op.kind``)."""
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    attrs = op.attrs if isinstance(op.attrs, ConvAttrs) else ConvAttrs()
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, w_t, o_t)
    w = _weights(graph, op, 1)
    bias = _bias(graph, op, 2)
    depth_multiplier = 1
    if depthwise:
        _, kh, kw, cout = w.shape
        cin = x_t.shape[3]
        depth_multiplier = cout // cin if cin else 1
        if depth_multiplier * cin != cout:
            raise _unsupported(op, f"{cout} output channels is not a multiple of {cin} input channels")
    else:
        cout, kh, kw, _ = w.shape
    s_in, x_zp = _qparams(op, x_t)
    s_out, o_zp = _qparams(op, o_t)
    mult, shift = conv_multipliers(s_in, _channel_scales(op, w_t, cout), s_out)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], (kh, kw), attrs.stride, attrs.dilation, attrs.padding)
    return ConvLowering(depthwise, w, bias, x_zp, o_zp, mult, shift, qmin, qmax, tuple(attrs.stride),
                        tuple(attrs.dilation), tuple(pads), depth_multiplier)


def lower_fully_connected(graph: Graph, op: Op) -> FullyConnectedLowering:
    attrs = op.attrs if isinstance(op.attrs, FullyConnectedAttrs) else FullyConnectedAttrs()
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, w_t, o_t)
    w = _weights(graph, op, 1)
    bias = _bias(graph, op, 2)
    cout = w.shape[0]
    s_in, x_zp = _qparams(op, x_t)
    s_out, o_zp = _qparams(op, o_t)
    if w_t.quant is not None and w_t.quant.per_channel:
        w_zp = 0
        w_scales = _channel_scales(op, w_t, cout)
    else:
        s_w, w_zp = _qparams(op, w_t)
        w_scales = np.array([s_w], np.float32)
    mult, shift = fc_multipliers(s_in, w_scales, s_out, cout)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    real = conv_real_multipliers(s_in, _channel_scales(op, w_t, cout), s_out)
    return FullyConnectedLowering(w, bias, x_zp, w_zp, o_zp, mult, shift, real, qmin, qmax)


def lower_add(graph: Graph, op: Op) -> AddLowering:
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = _binary_inputs(graph, op)
    _require_int8(op, a_t, b_t, o_t)
    (s1, z1), (s2, z2), (so, zo) = _qparams(op, a_t), _qparams(op, b_t), _qparams(op, o_t)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    return AddLowering(z1, z2, zo, ops.add_params(float(s1), float(s2), float(so)), qmin, qmax)


def lower_mul(graph: Graph, op: Op) -> MulLowering:
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = _binary_inputs(graph, op)
    _require_int8(op, a_t, b_t, o_t)
    (s1, z1), (s2, z2), (so, zo) = _qparams(op, a_t), _qparams(op, b_t), _qparams(op, o_t)
    mult, shift = mul_multiplier(s1, s2, so)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    return MulLowering(z1, z2, mult, shift, zo, qmin, qmax)


def lower_pool(graph: Graph, op: Op) -> PoolLowering:
    """AVERAGE_POOL_2D or MAX_POOL_2D (by ``op.kind``)."""
    attrs = op.attrs if isinstance(op.attrs, PoolAttrs) else PoolAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, z_in = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], attrs.filter, attrs.stride, (1, 1), attrs.padding)
    requant = pool_requant(s_in, z_in, s_out, z_out, sub_byte=x_t.bits < 8 or o_t.bits < 8)
    return PoolLowering(op.kind == "AVERAGE_POOL_2D", tuple(attrs.filter), tuple(attrs.stride), tuple(pads),
                        qmin, qmax, requant)


def lower_mean(graph: Graph, op: Op) -> MeanLowering:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    rank = len(x_t.shape)
    axes = tuple(sorted({int(a) % rank for a in _const(graph, op, 1).ravel()}))
    count = int(np.prod([x_t.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    s_in, z_in = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    mult, shift = mean_multiplier(s_in, s_out, count)
    lo, hi = _storage_range(o_t)
    return MeanLowering(axes, count, z_in, mult, shift, z_out, lo, hi)


def lower_quantize(graph: Graph, op: Op) -> Union[QuantizeFloatLowering, RequantizeLowering]:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    s_out, z_out = _qparams(op, o_t)
    if o_t.dtype not in ("int8", "uint8", "int16"):
        raise _unsupported(op, f"QUANTIZE to {o_t.dtype}")
    lo, hi = _storage_range(o_t)
    if x_t.dtype == "float32":
        return QuantizeFloatLowering(s_out, z_out, lo, hi)
    if x_t.dtype not in ("int8", "uint8", "int16"):
        raise _unsupported(op, f"QUANTIZE from {x_t.dtype}")
    s_in, z_in = _qparams(op, x_t)
    mult, shift = requantize_multiplier(s_in, s_out)
    return RequantizeLowering(z_in, mult, shift, z_out, lo, hi)


def lower_relu(graph: Graph, op: Op) -> RequantizeLowering:
    """RELU or RELU6 (by ``op.kind``): TFLite's ``ReluPrepare``."""
    act_max = 6.0 if op.kind == "RELU6" else None
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    (s_in, z_in), (s_out, z_out) = _qparams(op, x_t), _qparams(op, o_t)
    # input scale / output scale in float32, widened to double.
    mult, shift = quantize_multiplier(float(np.float32(s_in / s_out)))
    lo, hi = _storage_range(o_t)

    def quant(f: float) -> int:
        return z_out + ops._round_half_away_f32(np.float32(np.float32(f) / s_out))

    qmin = max(lo, quant(0.0))
    qmax = hi if act_max is None else min(hi, quant(act_max))
    return RequantizeLowering(z_in, mult, shift, z_out, qmin, qmax)


def lower_pad(graph: Graph, op: Op) -> PadLowering:
    o_t = graph.tensors[op.outputs[0]]
    paddings = _const(graph, op, 1).astype(np.int64).reshape(-1, 2)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(_const(graph, op, 2).ravel()[0])
    elif o_t.quant is not None:
        value = int(o_t.quant.zero_point[0])
    else:
        value = 0
    return PadLowering(tuple((int(a), int(b)) for a, b in paddings), value)


def lower_softmax(graph: Graph, op: Op) -> SoftmaxLowering:
    attrs = op.attrs if isinstance(op.attrs, SoftmaxAttrs) else SoftmaxAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, _ = _qparams(op, x_t)
    _, z_out = _qparams(op, o_t)
    if z_out != -128:
        raise _unsupported(op, "int8 SOFTMAX needs output zero point -128 (scale 1/256)")
    return SoftmaxLowering(*transcendental.softmax_params(float(s_in), float(attrs.beta)))


def lower_log_softmax(graph: Graph, op: Op) -> LogSoftmaxLowering:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, _ = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    if z_out != 127 or float(s_out) != 16.0 / 256:
        raise _unsupported(op, "int8 LOG_SOFTMAX needs output scale 16/256 and zero point 127")
    return LogSoftmaxLowering(tuple(transcendental.log_softmax_params(float(s_in))))


#: Op kind -> its lowering.
LOWERINGS: dict[str, Callable[[Graph, Op], Lowering]] = {
    "CONV_2D": lower_conv,
    "DEPTHWISE_CONV_2D": lower_conv,
    "FULLY_CONNECTED": lower_fully_connected,
    "ADD": lower_add,
    "MUL": lower_mul,
    "AVERAGE_POOL_2D": lower_pool,
    "MAX_POOL_2D": lower_pool,
    "MEAN": lower_mean,
    "QUANTIZE": lower_quantize,
    "RELU": lower_relu,
    "RELU6": lower_relu,
    "PAD": lower_pad,
    "SOFTMAX": lower_softmax,
    "LOG_SOFTMAX": lower_log_softmax,
}


def lower_op(graph: Graph, op: Op) -> Lowering:
    """The kernel parameters of ``op`` (see :data:`LOWERINGS` for the record of each kind).

    Raises
    ------
    UnsupportedOpError
        A kind without parameters here, or an op, dtype or attribute the reference does not implement.
    """
    lower = LOWERINGS.get(op.kind)
    if lower is None:
        raise _unsupported(op, "no kernel parameters to derive")
    return lower(graph, op)
