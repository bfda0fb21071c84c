"""NumPy reference interpreter of a :class:`tvm_mixq.graph.Graph`, bit-exact with TFLite.

The arithmetic of every op is that of TFLite's *reference* kernels (the ``BUILTIN_REF`` op
resolver of ai-edge-litert, which TFLM and CMSIS-NN match): int32 accumulators, int32 bias,
``MultiplyByQuantizedMultiplier`` with double rounding, TFLite's own choice of float32 or double
arithmetic when it derives multipliers from scales, fixed-point softmax and log-softmax, table
lookups for LOGISTIC and HARD_SWISH. The kernels live in :mod:`.ops` (convolutions, pooling,
element-wise) and :mod:`.transcendental`; this module prepares their parameters once per op
(``prepare``) and runs them (``run``), in the spirit of TFLite's Prepare/Invoke.

One place where TFLite's reference kernels and TFLM/CMSIS-NN differ: TFLite's int8
FULLY_CONNECTED requantizes in double (``round(acc * s_in * s_w / s_out)``), TFLM with the
fixed-point multiplier. :class:`ReferenceOptions` selects which (TFLite's by default, which is
what ``mixq check`` compares against); sub-byte layers always use the fixed-point multiplier.

Values are held unpacked: integer tensors as int64 arrays holding the stored integer values,
float tensors (model input before QUANTIZE, output after DEQUANTIZE) as float32.

Sub-byte semantics (what the kernels and generated code must match)
-------------------------------------------------------------------
A tensor whose ``bits`` is 4 or 2 (set by a plan) holds integers in
``subbyte.qrange(bits, signed)``, with its own scale and zero point (``real = s * (q - zp)``).

* CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: weights of any bitwidth are used as stored (signed
  values in their range, zero point 0 or the tensor's for FULLY_CONNECTED); the accumulator,
  bias and multiplier (``s_in * s_w / s_out``, per channel) are those of int8; the output is
  clamped to the fused activation's range intersected with the output's n-bit range.
* ADD and MUL: TFLite's int8 arithmetic with each tensor's own scale and zero point; output
  clamp as above.
* AVERAGE_POOL_2D: TFLite's rounded average of the valid elements when input and output share
  (scale, zero point), and always for int8 to int8 (as TFLite). When a sub-byte input or output
  has another (scale, zero point), the centred average is requantized by ``s_in / s_out`` (see
  :func:`.ops.avg_pool`); likewise MAX_POOL_2D.
* RELU / RELU6 / QUANTIZE (int to int) requantize as TFLite does, clamped to the n-bit range.
* Every other op with a sub-byte integer output (data movement, MEAN, SOFTMAX, ...) computes the
  int8 result and then clamps it to the output's n-bit range.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InputDataError, UnsupportedOpError
from ..graph import (
    ConcatAttrs,
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    Op,
    PoolAttrs,
    ReduceAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    Tensor,
)
from . import ops, transcendental
from .fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, quantize_multipliers
from .subbyte import qrange

log = logging.getLogger(__name__)

Kernel = Callable[[list[np.ndarray]], list[np.ndarray]]
Preparer = Callable[[Graph, Op, "ReferenceOptions"], Kernel]



@dataclass(frozen=True)
class ReferenceOptions:
    """Choices where TFLite's reference kernels and TFLM/CMSIS-NN differ.

    Attributes
    ----------
    tflite_float_fc : TFLite's ``BUILTIN_REF`` FULLY_CONNECTED (int8, per-tensor or per-channel
        weights) requantizes in double (``round(acc * s_in * s_w / s_out)``) where TFLM and CMSIS-NN use
        the fixed-point multiplier. True (default) follows TFLite, which ``mixq check`` compares
        against; False gives the fixed-point result the project's kernels and TFLM compute.
        Sub-byte layers always use the fixed-point multiplier.
    """

    tflite_float_fc: bool = True


_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1)}


# ---------------------------------------------------------------------------------------------
# Helpers shared by the preparers.


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
    lo, hi = _INT_RANGES[t.dtype]
    if t.bits < 8:
        blo, bhi = qrange(t.bits, t.signed)
        lo, hi = max(lo, blo), min(hi, bhi)
    return lo, hi


def _require_int8(op: Op, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype != "int8":
            raise _unsupported(op, f"tensor '{t.name}' is {t.dtype}; only int8 is supported")


def _out_range(op: Op, t: Tensor, activation: str = "NONE") -> tuple[int, int]:
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
    if t.quant is None:
        raise _unsupported(op, f"weights '{t.name}' have no quantization parameters")
    scales = t.quant.scale.astype(np.float32)
    if scales.size == 1:
        return np.repeat(scales, channels)
    if scales.size != channels:
        raise _unsupported(op, f"weights '{t.name}' have {scales.size} scales for {channels} channels")
    return scales


def _conv_multipliers(op: Op, x: Tensor, w: Tensor, out: Tensor, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``PopulateConvolutionQuantizationParams``: double(s_in) * double(s_w) / double(s_out)."""
    s_in, _ = _qparams(op, x)
    s_out, _ = _qparams(op, out)
    real = np.float64(s_in) * _channel_scales(op, w, channels).astype(np.float64) / np.float64(s_out)
    return quantize_multipliers(real)


def _check_shape(op: Op, t: Tensor, value: np.ndarray) -> np.ndarray:
    if value.size != t.size:
        raise _unsupported(op, f"computed {list(value.shape)} for output '{t.name}' of shape {list(t.shape)}")
    return value.reshape(t.shape)


# ---------------------------------------------------------------------------------------------
# One preparer per op kind: validates, precomputes, returns the kernel.


def _prepare_conv2d(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ConvAttrs) else ConvAttrs()
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, w_t, o_t)
    w = _weights(graph, op, 1)
    bias = _bias(graph, op, 2)
    cout, kh, kw, _ = w.shape
    mult, shift = _conv_multipliers(op, x_t, w_t, o_t, cout)
    _, x_zp = _qparams(op, x_t)
    _, o_zp = _qparams(op, o_t)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], (kh, kw), attrs.stride, attrs.dilation, attrs.padding)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.conv2d(inputs[0], x_zp, w, bias, attrs.stride, pads, attrs.dilation, mult, shift, o_zp, qmin, qmax)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_depthwise_conv2d(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ConvAttrs) else ConvAttrs()
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, w_t, o_t)
    w = _weights(graph, op, 1)
    bias = _bias(graph, op, 2)
    _, kh, kw, cout = w.shape
    cin = x_t.shape[3]
    depth_multiplier = cout // cin if cin else 1
    if depth_multiplier * cin != cout:
        raise _unsupported(op, f"{cout} output channels is not a multiple of {cin} input channels")
    mult, shift = _conv_multipliers(op, x_t, w_t, o_t, cout)
    _, x_zp = _qparams(op, x_t)
    _, o_zp = _qparams(op, o_t)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], (kh, kw), attrs.stride, attrs.dilation, attrs.padding)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.depthwise_conv2d(inputs[0], x_zp, w, bias, attrs.stride, pads, attrs.dilation, depth_multiplier,
                                   mult, shift, o_zp, qmin, qmax)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_fully_connected(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, FullyConnectedAttrs) else FullyConnectedAttrs()
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, w_t, o_t)
    w = _weights(graph, op, 1)
    bias = _bias(graph, op, 2)
    cout, depth = w.shape
    s_in, x_zp = _qparams(op, x_t)
    s_out, o_zp = _qparams(op, o_t)
    if w_t.quant is not None and w_t.quant.per_channel:
        mult, shift = _conv_multipliers(op, x_t, w_t, o_t, cout)
        w_zp = 0
    else:
        s_w, w_zp = _qparams(op, w_t)
        # GetQuantizedConvolutionMultipler: the product s_in * s_w in float32, / s_out in double.
        m, s = quantize_multiplier(float(np.float64(np.float32(s_in * s_w)) / np.float64(s_out)))
        mult, shift = np.int64(m), np.int64(s)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    real_multiplier = None
    if options.tflite_float_fc and x_t.bits == 8 and w_t.bits == 8 and o_t.bits == 8:
        # reference_integer_ops::FullyConnected(PerChannel) with float scales: double requantization.
        real_multiplier = np.float64(s_in) * _channel_scales(op, w_t, cout).astype(np.float64) / np.float64(s_out)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0].reshape(-1, depth)
        out = ops.fully_connected(x, x_zp, w, bias, mult, shift, o_zp, qmin, qmax, w_zp=w_zp,
                                  real_multiplier=real_multiplier)
        return [_check_shape(op, o_t, out)]

    return run


def _binary_inputs(graph: Graph, op: Op) -> tuple[Tensor, Tensor, Tensor]:
    return graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]


def _prepare_add(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = _binary_inputs(graph, op)
    _require_int8(op, a_t, b_t, o_t)
    (s1, z1), (s2, z2), (so, zo) = _qparams(op, a_t), _qparams(op, b_t), _qparams(op, o_t)
    p = ops.add_params(float(s1), float(s2), float(so))
    qmin, qmax = _out_range(op, o_t, attrs.activation)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.add(inputs[0], z1, p.x1_mult, p.x1_shift, inputs[1], z2, p.x2_mult, p.x2_shift, p.out_mult,
                      p.out_shift, zo, qmin, qmax, p.left_shift)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_mul(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = _binary_inputs(graph, op)
    _require_int8(op, a_t, b_t, o_t)
    (s1, z1), (s2, z2), (so, zo) = _qparams(op, a_t), _qparams(op, b_t), _qparams(op, o_t)
    # mul.cc computes s1 * s2 / s_out in float32, then widens to double.
    mult, shift = quantize_multiplier(float(np.float32(np.float32(s1 * s2) / so)))
    qmin, qmax = _out_range(op, o_t, attrs.activation)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.mul(inputs[0], z1, inputs[1], z2, mult, shift, zo, qmin, qmax)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_pool(graph: Graph, op: Op, options: ReferenceOptions, average: bool) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, PoolAttrs) else PoolAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, z_in = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    qmin, qmax = _out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], attrs.filter, attrs.stride, (1, 1), attrs.padding)
    requant: dict[str, int] = {}
    # TFLite's int8 pooling ignores the output's scale (the converter makes them equal); the
    # requantization is the project's extension for sub-byte tensors of another scale.
    if (x_t.bits < 8 or o_t.bits < 8) and (s_in, z_in) != (s_out, z_out):
        m, s = quantize_multiplier(float(s_in) / float(s_out))
        requant = {"x_zp": z_in, "multiplier": m, "shift": s, "out_zp": z_out}
    pool = ops.avg_pool if average else ops.max_pool

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = pool(inputs[0], attrs.filter, attrs.stride, pads, qmin, qmax, **requant)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_average_pool(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    return _prepare_pool(graph, op, options, average=True)


def _prepare_max_pool(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    return _prepare_pool(graph, op, options, average=False)


def _prepare_mean(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ReduceAttrs) else ReduceAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    rank = len(x_t.shape)
    axes = tuple(sorted({int(a) % rank for a in _const(graph, op, 1).ravel()}))
    count = int(np.prod([x_t.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    s_in, z_in = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))
    # reference_ops::QuantizedMeanOrSum folds 1/count into the multiplier.
    pot = min(count.bit_length() - 1, 32, 31 + shift)
    mult = (mult << pot) // count
    shift -= pot
    lo, hi = _storage_range(o_t)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        total = inputs[0].sum(axis=axes, keepdims=True) - z_in * count
        out = multiply_by_quantized_multiplier(total, mult, shift) + z_out
        return [_check_shape(op, o_t, np.clip(out, lo, hi))]

    return run


def _prepare_pad(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    paddings = _const(graph, op, 1).astype(np.int64).reshape(-1, 2)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(_const(graph, op, 2).ravel()[0])
    elif o_t.quant is not None:
        value = int(o_t.quant.zero_point[0])
    else:
        value = 0
    widths = [(int(a), int(b)) for a, b in paddings]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, np.pad(inputs[0], widths, mode="constant", constant_values=value))]

    return run


def _prepare_reshape(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, inputs[0])]

    return run


def _prepare_softmax(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, SoftmaxAttrs) else SoftmaxAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, _ = _qparams(op, x_t)
    _, z_out = _qparams(op, o_t)
    if z_out != -128:
        raise _unsupported(op, "int8 SOFTMAX needs output zero point -128 (scale 1/256)")
    mult, left_shift, diff_min = transcendental.softmax_params(float(s_in), float(attrs.beta))

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [transcendental.softmax_int8(inputs[0], mult, left_shift, diff_min)]

    return run


def _prepare_log_softmax(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    s_in, _ = _qparams(op, x_t)
    s_out, z_out = _qparams(op, o_t)
    if z_out != 127 or float(s_out) != 16.0 / 256:
        raise _unsupported(op, "int8 LOG_SOFTMAX needs output scale 16/256 and zero point 127")
    params = transcendental.log_softmax_params(float(s_in))

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [transcendental.log_softmax_int8(inputs[0], *params)]

    return run


def _prepare_quantize(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    s_out, z_out = _qparams(op, o_t)
    if o_t.dtype not in ("int8", "uint8", "int16"):
        raise _unsupported(op, f"QUANTIZE to {o_t.dtype}")
    lo, hi = _storage_range(o_t)
    if x_t.dtype == "float32":
        def run_float(inputs: list[np.ndarray]) -> list[np.ndarray]:
            scaled = (inputs[0].astype(np.float32) / s_out).astype(np.float32)
            rounded = np.sign(scaled) * np.floor(np.abs(scaled.astype(np.float64)) + 0.5)
            rounded = np.nan_to_num(np.clip(rounded, -(1 << 31), (1 << 31) - 1), nan=0.0)
            return [np.clip(rounded.astype(np.int64) + z_out, lo, hi)]

        return run_float
    if x_t.dtype not in ("int8", "uint8", "int16"):
        raise _unsupported(op, f"QUANTIZE from {x_t.dtype}")
    s_in, z_in = _qparams(op, x_t)
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))

    def run_int(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = multiply_by_quantized_multiplier(inputs[0] - z_in, mult, shift) + z_out
        return [np.clip(out, lo, hi)]

    return run_int


def _prepare_dequantize(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if o_t.dtype != "float32" or x_t.dtype not in ("int8", "uint8", "int16"):
        raise _unsupported(op, f"DEQUANTIZE from {x_t.dtype} to {o_t.dtype}")
    scale, zp = _qparams(op, x_t)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [(np.float64(scale) * (inputs[0] - zp).astype(np.float64)).astype(np.float32)]

    return run


def _prepare_transpose(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    o_t = graph.tensors[op.outputs[0]]
    perm = tuple(int(p) for p in _const(graph, op, 1).ravel())

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, np.transpose(inputs[0], perm))]

    return run


def _prepare_concatenation(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ConcatAttrs) else ConcatAttrs()
    o_t = graph.tensors[op.outputs[0]]
    axis = attrs.axis % len(o_t.shape)
    o_q = _qparams(op, o_t) if o_t.quant is not None else None
    for i in op.inputs:
        t = graph.tensors[i]
        if o_q is not None and _qparams(op, t) != o_q:
            raise _unsupported(op, "int8 CONCATENATION needs equal input and output quantization")
    consts = {pos: np.asarray(graph.tensors[i].data).astype(np.int64) for pos, i in enumerate(op.inputs)
              if graph.tensors[i].data is not None}

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        parts = [consts.get(pos, v) for pos, v in enumerate(inputs)]
        return [_check_shape(op, o_t, np.concatenate(parts, axis=axis))]

    return run


def _nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite ``GetNearestNeighbor`` for every output coordinate (float32 arithmetic)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5) if half_pixel_centers else np.float32(0.0)
    pos = ((np.arange(out_size, dtype=np.float32) + offset) * scale).astype(np.float32)
    if align_corners:
        idx = (np.sign(pos) * np.floor(np.abs(pos.astype(np.float64)) + 0.5)).astype(np.int64)
    else:
        idx = np.floor(pos).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    return idx


def _prepare_resize_nearest_neighbor(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    attrs = op.attrs if isinstance(op.attrs, ResizeAttrs) else ResizeAttrs()
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    out_h, out_w = (int(v) for v in _const(graph, op, 1).ravel()[:2])
    rows = _nearest_indices(x_t.shape[1], out_h, attrs.align_corners, attrs.half_pixel_centers)
    cols = _nearest_indices(x_t.shape[2], out_w, attrs.align_corners, attrs.half_pixel_centers)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, inputs[0][:, rows][:, :, cols])]

    return run


def _table_kernel(op: Op, o_t: Tensor, table: np.ndarray) -> Kernel:
    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, table[inputs[0] + 128])]

    return run


def _prepare_logistic(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    (s_in, z_in), (s_out, z_out) = _qparams(op, x_t), _qparams(op, o_t)
    return _table_kernel(op, o_t, transcendental.logistic_table(float(s_in), z_in, float(s_out), z_out))


def _prepare_hard_swish(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    (s_in, z_in), (s_out, z_out) = _qparams(op, x_t), _qparams(op, o_t)
    return _table_kernel(op, o_t, transcendental.hard_swish_table(float(s_in), z_in, float(s_out), z_out))


def _prepare_relu_x(graph: Graph, op: Op, options: ReferenceOptions, act_max: Optional[float]) -> Kernel:
    x_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(op, x_t, o_t)
    (s_in, z_in), (s_out, z_out) = _qparams(op, x_t), _qparams(op, o_t)
    # ReluPrepare: input scale / output scale in float32, widened to double.
    mult, shift = quantize_multiplier(float(np.float32(s_in / s_out)))
    lo, hi = _storage_range(o_t)

    def quant(f: float) -> int:
        return z_out + ops._round_half_away_f32(np.float32(np.float32(f) / s_out))

    qmin = max(lo, quant(0.0))
    qmax = hi if act_max is None else min(hi, quant(act_max))

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = multiply_by_quantized_multiplier(inputs[0] - z_in, mult, shift) + z_out
        return [np.clip(out, qmin, qmax)]

    return run


def _prepare_relu(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    return _prepare_relu_x(graph, op, options, None)


def _prepare_relu6(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    return _prepare_relu_x(graph, op, options, 6.0)


#: Op kind -> preparer. The kinds are the TFLite builtin names the reader produces.
OP_PREPARERS: dict[str, Preparer] = {
    "CONV_2D": _prepare_conv2d,
    "DEPTHWISE_CONV_2D": _prepare_depthwise_conv2d,
    "FULLY_CONNECTED": _prepare_fully_connected,
    "ADD": _prepare_add,
    "MUL": _prepare_mul,
    "AVERAGE_POOL_2D": _prepare_average_pool,
    "MAX_POOL_2D": _prepare_max_pool,
    "MEAN": _prepare_mean,
    "PAD": _prepare_pad,
    "RESHAPE": _prepare_reshape,
    "SOFTMAX": _prepare_softmax,
    "LOG_SOFTMAX": _prepare_log_softmax,
    "QUANTIZE": _prepare_quantize,
    "DEQUANTIZE": _prepare_dequantize,
    "TRANSPOSE": _prepare_transpose,
    "CONCATENATION": _prepare_concatenation,
    "RESIZE_NEAREST_NEIGHBOR": _prepare_resize_nearest_neighbor,
    "LOGISTIC": _prepare_logistic,
    "HARD_SWISH": _prepare_hard_swish,
    "RELU": _prepare_relu,
    "RELU6": _prepare_relu6,
}


def find_unsupported(graph: Graph, options: ReferenceOptions = ReferenceOptions()) -> list[str]:
    """Ops the interpreter cannot run, as ``"KIND at index I: reason"`` (empty when all run)."""
    problems = []
    for op in graph.ops:
        preparer = OP_PREPARERS.get(op.kind)
        if preparer is None:
            problems.append(f"{op.kind} at index {op.index}: no reference kernel")
            continue
        try:
            preparer(graph, op, options)
        except UnsupportedOpError as exc:
            problems.append(str(exc).replace("unsupported op ", "", 1))
    return problems


# ---------------------------------------------------------------------------------------------
# The interpreter.


@dataclass
class _PreparedOp:
    op: Op
    kernel: Kernel
    clamps: list[Optional[tuple[int, int]]] = field(default_factory=list)


class Interpreter:
    """Runs a :class:`Graph` on NumPy inputs, bit-exact with TFLite's reference kernels.

    Parameters
    ----------
    graph : the model (from :func:`tvm_mixq.reader.read_tflite`, possibly with sub-byte
        bitwidths set on its tensors by a plan).
    options : see :class:`ReferenceOptions` (default: TFLite ``BUILTIN_REF`` behaviour).

    Raises
    ------
    UnsupportedOpError
        An op kind, dtype or attribute outside what the reference implements.
    """

    def __init__(self, graph: Graph, options: ReferenceOptions = ReferenceOptions()) -> None:
        self.graph = graph
        self.options = options
        self._prepared: list[_PreparedOp] = []
        for op in graph.ops:
            preparer = OP_PREPARERS.get(op.kind)
            if preparer is None:
                raise UnsupportedOpError(op.kind, op.index, "no reference kernel")
            clamps = []
            for t_index in op.outputs:
                t = graph.tensors[t_index]
                clamps.append(_storage_range(t) if t.dtype in _INT_RANGES and t.bits < 8 else None)
            self._prepared.append(_PreparedOp(op, preparer(graph, op, options), clamps))

    # -- inputs -------------------------------------------------------------------------------
    def _input_tensors(self) -> list[Tensor]:
        return [self.graph.tensors[i] for i in self.graph.inputs]

    def _check_inputs(self, inputs: Sequence[np.ndarray], batched: bool) -> list[np.ndarray]:
        tensors = self._input_tensors()
        if len(inputs) != len(tensors):
            raise InputDataError(f"model has {len(tensors)} inputs, got {len(inputs)}")
        checked = []
        for i, (t, value) in enumerate(zip(tensors, inputs)):
            value = np.asarray(value)
            shape = value.shape[1:] if batched else value.shape
            want = tuple(t.shape[1:]) if batched else tuple(t.shape)
            if tuple(shape) != want or value.dtype.name != t.dtype:
                raise InputDataError(f"input {i} ('{t.name}') needs shape {list(t.shape)} dtype {t.dtype}, "
                                     f"got {list(value.shape)} {value.dtype.name}")
            if t.dtype in _INT_RANGES and t.bits < 8:
                lo, hi = _storage_range(t)
                if value.size and (value.min() < lo or value.max() > hi):
                    raise InputDataError(f"input {i} ('{t.name}') holds values outside its {t.bits}-bit range")
            checked.append(value)
        return checked

    def is_batched(self, inputs: Sequence[np.ndarray]) -> bool:
        """True when ``inputs`` carry a leading batch axis over a batch-1 model."""
        tensors = self._input_tensors()
        if not inputs or len(inputs) != len(tensors):
            return False
        first, t = np.asarray(inputs[0]), tensors[0]
        if tuple(first.shape) == tuple(t.shape):
            return False
        return len(t.shape) >= 1 and t.shape[0] == 1 and first.ndim == len(t.shape) and \
            tuple(first.shape[1:]) == tuple(t.shape[1:])

    # -- running ------------------------------------------------------------------------------
    def _to_internal(self, t: Tensor, value: np.ndarray) -> np.ndarray:
        return value.astype(np.float32) if t.dtype.startswith("float") else value.astype(np.int64)

    def _to_external(self, t: Tensor, value: np.ndarray) -> np.ndarray:
        return np.asarray(value).astype(t.dtype)

    def _invoke(self, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        values: dict[int, np.ndarray] = {}
        for t_index, value in zip(self.graph.inputs, inputs):
            values[t_index] = self._to_internal(self.graph.tensors[t_index], value)
        for prepared in self._prepared:
            op = prepared.op
            args = []
            for t_index in op.inputs:
                if t_index < 0:
                    args.append(None)
                elif t_index in values:
                    args.append(values[t_index])
                else:
                    t = self.graph.tensors[t_index]
                    if t.data is None:
                        raise InputDataError(f"tensor '{t.name}' is read by op {op.index} before it is written")
                    args.append(self._to_internal(t, np.asarray(t.data)))
            outputs = prepared.kernel(args)
            for t_index, value, clamp in zip(op.outputs, outputs, prepared.clamps):
                values[t_index] = np.clip(value, *clamp) if clamp is not None else value
        return values

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Model outputs for ``inputs`` (model order; batch-1 shapes or a leading batch axis)."""
        batched = self.is_batched(inputs)
        inputs = self._check_inputs(inputs, batched)
        out_tensors = [self.graph.tensors[i] for i in self.graph.outputs]
        if not batched:
            values = self._invoke(inputs)
            return [self._to_external(t, values[i]).reshape(t.shape) for t, i in zip(out_tensors, self.graph.outputs)]
        count = inputs[0].shape[0]
        results: list[list[np.ndarray]] = [[] for _ in out_tensors]
        for n in range(count):
            values = self._invoke([x[n:n + 1] for x in inputs])
            for slot, t, i in zip(results, out_tensors, self.graph.outputs):
                slot.append(self._to_external(t, values[i]).reshape(t.shape))
        return [np.concatenate(r, axis=0) for r in results]

    def run_all(self, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        """Every activation tensor (graph inputs and op outputs) of one inference, by tensor index.

        Values are in each tensor's dtype (sub-byte values unpacked). ``inputs`` are batch-1.
        """
        inputs = self._check_inputs(inputs, batched=False)
        values = self._invoke(inputs)
        return {i: self._to_external(self.graph.tensors[i], v) for i, v in values.items()}

    def run_batch_all(self, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        """:meth:`run_all` over a leading batch axis: tensor index -> stacked values."""
        inputs = self._check_inputs(inputs, batched=True)
        stacked: dict[int, list[np.ndarray]] = {}
        for n in range(inputs[0].shape[0]):
            for i, v in self.run_all([x[n:n + 1] for x in inputs]).items():
                stacked.setdefault(i, []).append(v)
        return {i: np.concatenate(vs, axis=0) for i, vs in stacked.items()}


def run_reference(graph: Graph, inputs: Sequence[np.ndarray],
                  options: ReferenceOptions = ReferenceOptions()) -> list[np.ndarray]:
    """One-shot convenience: ``Interpreter(graph, options).run(inputs)``."""
    return Interpreter(graph, options).run(inputs)
