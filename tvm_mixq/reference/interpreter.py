"""NumPy reference interpreter of a :class:`tvm_mixq.graph.Graph`, bit-exact with TFLite.

The arithmetic of every op is that of TFLite's *reference* kernels (the ``BUILTIN_REF`` op
resolver of ai-edge-litert, which TFLM and CMSIS-NN match): int32 accumulators, int32 bias,
``MultiplyByQuantizedMultiplier`` with double rounding, TFLite's own choice of float32 or double
arithmetic when it derives multipliers from scales, fixed-point softmax and log-softmax, table
lookups for LOGISTIC and HARD_SWISH. The kernels live in :mod:`.ops` (convolutions, pooling,
element-wise) and :mod:`.transcendental`; the parameters of each op are derived by
:mod:`.lowering` (shared with the C generator and the TFLM rewriter). This module prepares an op
once (``prepare``) and runs it (``run``), in the spirit of TFLite's Prepare/Invoke.

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
    Graph,
    Op,
    ResizeAttrs,
    Tensor,
)
from . import lowering, ops, transcendental
from .fixedpoint import multiply_by_quantized_multiplier
from .lowering import _weights  # noqa: F401  (codegen.splits reads weights through here)
from .lowering import INT_RANGES, _const, _qparams, _require_int8, _storage_range, _unsupported

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


_INT_RANGES = INT_RANGES


def _check_shape(op: Op, t: Tensor, value: np.ndarray) -> np.ndarray:
    if value.size != t.size:
        raise _unsupported(op, f"computed {list(value.shape)} for output '{t.name}' of shape {list(t.shape)}")
    return value.reshape(t.shape)


# ---------------------------------------------------------------------------------------------
# One preparer per op kind: validates, precomputes, returns the kernel.


def _prepare_conv2d(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_conv(graph, op)
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.conv2d(inputs[0], low.input_zp, low.weights, low.bias, low.stride, low.padding, low.dilation,
                         low.multiplier, low.shift, low.output_zp, low.act_min, low.act_max)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_depthwise_conv2d(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_conv(graph, op)
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.depthwise_conv2d(inputs[0], low.input_zp, low.weights, low.bias, low.stride, low.padding,
                                   low.dilation, low.depth_multiplier, low.multiplier, low.shift, low.output_zp,
                                   low.act_min, low.act_max)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_fully_connected(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_fully_connected(graph, op)
    x_t, w_t, o_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    # reference_integer_ops::FullyConnected(PerChannel) with float scales: double requantization.
    use_real = options.tflite_float_fc and x_t.bits == 8 and w_t.bits == 8 and o_t.bits == 8
    real_multiplier = low.real_multiplier if use_real else None

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0].reshape(-1, low.depth)
        out = ops.fully_connected(x, low.input_zp, low.weights, low.bias, low.multiplier, low.shift, low.output_zp,
                                  low.act_min, low.act_max, w_zp=low.weight_zp, real_multiplier=real_multiplier)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_add(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_add(graph, op)
    o_t = graph.tensors[op.outputs[0]]
    p = low.params

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.add(inputs[0], low.input1_zp, p.x1_mult, p.x1_shift, inputs[1], low.input2_zp, p.x2_mult,
                      p.x2_shift, p.out_mult, p.out_shift, low.output_zp, low.act_min, low.act_max, p.left_shift)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_mul(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_mul(graph, op)
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ops.mul(inputs[0], low.input1_zp, inputs[1], low.input2_zp, low.multiplier, low.shift, low.output_zp,
                      low.act_min, low.act_max)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_pool(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_pool(graph, op)
    o_t = graph.tensors[op.outputs[0]]
    # TFLite's int8 pooling ignores the output's scale; the requantization is the project's
    # extension for sub-byte tensors of another scale (lowering.pool_requant).
    requant = low.oracle_requant()
    pool = ops.avg_pool if low.average else ops.max_pool

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = pool(inputs[0], low.filter, low.stride, low.padding, low.act_min, low.act_max, **requant)
        return [_check_shape(op, o_t, out)]

    return run


def _prepare_mean(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_mean(graph, op)
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        total = inputs[0].sum(axis=low.axes, keepdims=True) - low.input_zp * low.count
        out = multiply_by_quantized_multiplier(total, low.multiplier, low.shift) + low.output_zp
        return [_check_shape(op, o_t, np.clip(out, low.out_min, low.out_max))]

    return run


def _prepare_pad(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_pad(graph, op)
    o_t = graph.tensors[op.outputs[0]]
    widths = list(low.paddings)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, np.pad(inputs[0], widths, mode="constant", constant_values=low.value))]

    return run


def _prepare_reshape(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    o_t = graph.tensors[op.outputs[0]]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_check_shape(op, o_t, inputs[0])]

    return run


def _prepare_softmax(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_softmax(graph, op)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [transcendental.softmax_int8(inputs[0], low.multiplier, low.left_shift, low.diff_min)]

    return run


def _prepare_log_softmax(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_log_softmax(graph, op)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [transcendental.log_softmax_int8(inputs[0], *low.params)]

    return run


def _requantize_kernel(low: lowering.RequantizeLowering) -> Kernel:
    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = multiply_by_quantized_multiplier(inputs[0] - low.input_zp, low.multiplier, low.shift) + low.output_zp
        return [np.clip(out, low.out_min, low.out_max)]

    return run


def _prepare_quantize(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    low = lowering.lower_quantize(graph, op)
    if isinstance(low, lowering.RequantizeLowering):
        return _requantize_kernel(low)

    def run_float(inputs: list[np.ndarray]) -> list[np.ndarray]:
        scaled = (inputs[0].astype(np.float32) / low.scale).astype(np.float32)
        rounded = np.sign(scaled) * np.floor(np.abs(scaled.astype(np.float64)) + 0.5)
        rounded = np.nan_to_num(np.clip(rounded, -(1 << 31), (1 << 31) - 1), nan=0.0)
        return [np.clip(rounded.astype(np.int64) + low.zero_point, low.out_min, low.out_max)]

    return run_float


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


def _prepare_relu(graph: Graph, op: Op, options: ReferenceOptions) -> Kernel:
    """RELU and RELU6."""
    return _requantize_kernel(lowering.lower_relu(graph, op))


#: Op kind -> preparer. The kinds are the TFLite builtin names the reader produces.
OP_PREPARERS: dict[str, Preparer] = {
    "CONV_2D": _prepare_conv2d,
    "DEPTHWISE_CONV_2D": _prepare_depthwise_conv2d,
    "FULLY_CONNECTED": _prepare_fully_connected,
    "ADD": _prepare_add,
    "MUL": _prepare_mul,
    "AVERAGE_POOL_2D": _prepare_pool,
    "MAX_POOL_2D": _prepare_pool,
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
    "RELU6": _prepare_relu,
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
