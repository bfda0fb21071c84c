"""One class per op kind: what a generated layer needs (constants, parameters, scratch), and the
name of the template macro that renders it (``templates/layers.c.j2``).

Every parameter is computed by the Python reference's own code (:mod:`tvm_mixq.reference`:
the interpreter's preparer helpers, :mod:`~tvm_mixq.reference.ops`,
:mod:`~tvm_mixq.reference.transcendental`), so the C code applies exactly the numbers the
reference applies. Ops of the kernel library (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD of
equal shapes, AVERAGE_POOL_2D) take any bitwidth the library offers; the others run in the small C
runtime (``runtime/mixq_rt.c``) on int8 tensors (float32 at QUANTIZE/DEQUANTIZE).

:func:`make_layer` is the factory: op kind -> layer class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import MixqError
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
from ..kernellib import layout
from ..reference import interpreter as ref
from ..reference import ops, transcendental
from ..reference.fixedpoint import (
    quantize_multiplier,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)


class CodegenError(MixqError):
    """A model (op, dtype, bitwidth) the C generator cannot emit."""


@dataclass
class ConstArray:
    """A constant array emitted into flash: ``static const <ctype> <name>[] = {...}``."""

    name: str
    ctype: str  # int8_t, uint8_t, int16_t, int32_t
    values: np.ndarray
    align: int = 4

    @property
    def nbytes(self) -> int:
        return int(self.values.size * np.dtype(self.ctype.replace("_t", "")).itemsize)


@dataclass
class Layer:
    """A generated layer. ``src``/``dst`` are C expressions of the activation operands (set by the
    emitter once the arena is placed); ``p`` holds the template's parameters."""

    op: Op
    cname: str
    template: str = ""
    consts: list[ConstArray] = field(default_factory=list)
    p: dict = field(default_factory=dict)
    scratch: int = 0
    in_bits: int = 8
    w_bits: Optional[int] = None
    out_bits: int = 8
    macs: int = 0
    alias: bool = False  # output shares the input's bytes (RESHAPE): no code
    const_inputs: dict[int, str] = field(default_factory=dict)  # input position -> array name
    src: list[str] = field(default_factory=list)
    dst: list[str] = field(default_factory=list)
    scratch_expr: str = "0"
    position: int = 0  # index in the generated model's layer list
    s: Optional[object] = None  # patches.StageLayer of a layer in the patch stage
    rows: Optional[object] = None  # inplace.RowSchedule of a convolution run in place, row by row

    @property
    def label(self) -> str:
        return f"{self.op.index}:{self.op.kind}"

    def const(self, suffix: str, ctype: str, values: np.ndarray, align: int = 4) -> str:
        arr = ConstArray(f"{self.cname}_{suffix}", ctype, np.ascontiguousarray(values).reshape(-1), align)
        self.consts.append(arr)
        return arr.name


# ---------------------------------------------------------------------------------------------
# Helpers


def _t(graph: Graph, op: Op, pos: int, output: bool = False) -> Tensor:
    return graph.tensors[(op.outputs if output else op.inputs)[pos]]


def _act_bits(op: Op, t: Tensor) -> int:
    """Storage bitwidth of an activation, checked against the kernel library's conventions."""
    if t.dtype not in ("int8",):
        raise CodegenError(f"op {op.index} ({op.kind}): tensor '{t.name}' is {t.dtype}; the C generator "
                           "supports int8 activations (float32 only at QUANTIZE/DEQUANTIZE)")
    if t.bits < 8 and t.signed:
        raise CodegenError(f"op {op.index} ({op.kind}): {t.bits}-bit tensor '{t.name}' is signed; sub-byte "
                           "activations must be unsigned")
    return t.bits


def _require_int8(op: Op, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype != "int8" or t.bits != 8:
            raise CodegenError(f"op {op.index} ({op.kind}) runs in the C runtime, which takes int8 tensors; "
                               f"'{t.name}' is {t.bits}-bit {t.dtype}")


def _shape4(shape: tuple[int, ...]) -> list[int]:
    if len(shape) > 4:
        raise CodegenError(f"tensor of rank {len(shape)} (at most 4 supported)")
    return [1] * (4 - len(shape)) + [int(v) for v in shape]


def _bcast_strides(in_shape: tuple[int, ...], out4: list[int]) -> list[int]:
    s4 = _shape4(in_shape)
    strides, acc = [0, 0, 0, 0], 1
    for a in range(3, -1, -1):
        strides[a] = 0 if (s4[a] == 1 and out4[a] != 1) else acc
        acc *= s4[a]
    return strides


def _dims(shape: list[int]) -> dict:
    return {"n": shape[0], "h": shape[1], "w": shape[2], "c": shape[3]}


def _per_channel(values, cout: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, dtype=np.int64), (cout,)).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Kernel-library layers


def _conv_common(layer: Layer, graph: Graph, depthwise: bool) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, ConvAttrs) else ConvAttrs()
    x_t, w_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    ib, ob = _act_bits(op, x_t), _act_bits(op, o_t)
    wb = w_t.bits
    w = ref._weights(graph, op, 1)
    bias = ref._bias(graph, op, 2)
    if depthwise:
        _, kh, kw, cout = w.shape
        cin = x_t.shape[3]
        ch_mult = cout // cin
    else:
        cout, kh, kw, cin = w.shape
        ch_mult = 1
    mult, shift = ref._conv_multipliers(op, x_t, w_t, o_t, cout)
    _, x_zp = ref._qparams(op, x_t)
    _, o_zp = ref._qparams(op, o_t)
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], (kh, kw), attrs.stride, attrs.dilation, attrs.padding)
    pointwise = (not depthwise and kh == kw == 1 and tuple(attrs.stride) == (1, 1) and pads == (0, 0, 0, 0)
                 and tuple(attrs.dilation) == (1, 1))
    kernel = "depthwise" if depthwise else ("pointwise" if pointwise else "conv2d")
    packed = layout.pack_depthwise_weights(w, wb) if depthwise else layout.pack_weights(w, wb)
    layer.template = "conv"
    layer.in_bits, layer.w_bits, layer.out_bits = ib, wb, ob
    layer.p = {
        "kernel": kernel,
        "bits": (ib, wb, ob),
        "input_zp": x_zp, "output_zp": o_zp,
        "stride": tuple(attrs.stride), "padding": (pads[0], pads[2]), "dilation": tuple(attrs.dilation),
        "ch_mult": ch_mult, "act_min": qmin, "act_max": qmax,
        "in_dims": _dims(_shape4(x_t.shape)),
        "filter_dims": _dims([1, kh, kw, cout] if depthwise else [cout, kh, kw, cin]),
        "out_dims": _dims(_shape4(o_t.shape)),
        "weights": layer.const("w", "uint8_t", packed),
        "bias": layer.const("b", "int32_t", bias.astype(np.int32)) if bias is not None else None,
        "mult": layer.const("m", "int32_t", _per_channel(mult, cout)),
        "shift": layer.const("s", "int32_t", _per_channel(shift, cout)),
    }


def _conv2d(layer: Layer, graph: Graph) -> None:
    _conv_common(layer, graph, depthwise=False)


def _depthwise(layer: Layer, graph: Graph) -> None:
    _conv_common(layer, graph, depthwise=True)


def _fully_connected(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, FullyConnectedAttrs) else FullyConnectedAttrs()
    x_t, w_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    ib, ob, wb = _act_bits(op, x_t), _act_bits(op, o_t), w_t.bits
    w = ref._weights(graph, op, 1)
    bias = ref._bias(graph, op, 2)
    cout, depth = w.shape
    s_in, x_zp = ref._qparams(op, x_t)
    s_out, o_zp = ref._qparams(op, o_t)
    if w_t.quant is not None and w_t.quant.per_channel:
        mult, shift = ref._conv_multipliers(op, x_t, w_t, o_t, cout)
    else:
        # as the interpreter's FULLY_CONNECTED preparer (GetQuantizedConvolutionMultipler)
        s_w, w_zp = ref._qparams(op, w_t)
        if w_zp != 0:
            raise CodegenError(f"op {op.index} (FULLY_CONNECTED): weight zero point {w_zp} (kernels take 0)")
        mult, shift = quantize_multiplier(float(np.float64(np.float32(s_in * s_w)) / np.float64(s_out)))
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    rows = x_t.size // depth
    layer.template = "fc"
    layer.in_bits, layer.w_bits, layer.out_bits = ib, wb, ob
    layer.p = {
        "bits": (ib, wb, ob),
        "input_zp": x_zp, "output_zp": o_zp, "act_min": qmin, "act_max": qmax,
        "in_dims": _dims([rows, 1, 1, depth]),
        "filter_dims": _dims([cout, 1, 1, depth]),
        "out_dims": _dims([rows, 1, 1, cout]),
        "weights": layer.const("w", "uint8_t", layout.pack_weights(w, wb)),
        "bias": layer.const("b", "int32_t", bias.astype(np.int32)) if bias is not None else None,
        "mult": layer.const("m", "int32_t", _per_channel(mult, cout)),
        "shift": layer.const("s", "int32_t", _per_channel(shift, cout)),
    }


def _const_operands(layer: Layer, graph: Graph) -> None:
    """Constant activation-like inputs (ADD/MUL/CONCATENATION operands) become flash arrays."""
    for pos, t_index in enumerate(layer.op.inputs):
        t = graph.tensors[t_index] if t_index >= 0 else None
        if t is not None and t.is_const:
            data = np.asarray(t.data).astype(np.int64)
            if t.dtype != "int8":
                raise CodegenError(f"op {layer.op.index} ({layer.op.kind}): constant input '{t.name}' is {t.dtype}")
            layer.const_inputs[pos] = layer.const(f"c{pos}", "int8_t", data.astype(np.int8), align=4)


def _add(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = ref._binary_inputs(graph, op)
    (s1, z1), (s2, z2), (so, zo) = ref._qparams(op, a_t), ref._qparams(op, b_t), ref._qparams(op, o_t)
    ap = ops.add_params(float(s1), float(s2), float(so))
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    params = {"in1_zp": z1, "in1_mult": ap.x1_mult, "in1_shift": ap.x1_shift, "in2_zp": z2,
              "in2_mult": ap.x2_mult, "in2_shift": ap.x2_shift, "left_shift": ap.left_shift, "output_zp": zo,
              "out_mult": ap.out_mult, "out_shift": ap.out_shift, "act_min": qmin, "act_max": qmax}
    _const_operands(layer, graph)
    same = tuple(a_t.shape) == tuple(b_t.shape) == tuple(o_t.shape)
    if same and not layer.const_inputs:
        bits = (_act_bits(op, a_t), _act_bits(op, b_t), _act_bits(op, o_t))
        layer.template = "add"
        layer.in_bits, layer.out_bits = bits[0], bits[2]
        layer.p = {"bits": bits, "q": params, "dims": _dims(_shape4(o_t.shape))}
        return
    _require_int8(op, a_t, b_t, o_t)
    out4 = _shape4(o_t.shape)
    layer.template = "rt_add"
    layer.p = {"q": params, "shape": out4, "s1": _bcast_strides(a_t.shape, out4),
               "s2": _bcast_strides(b_t.shape, out4)}


def _average_pool(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, PoolAttrs) else PoolAttrs()
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    ib, ob = _act_bits(op, x_t), _act_bits(op, o_t)
    s_in, z_in = ref._qparams(op, x_t)
    s_out, z_out = ref._qparams(op, o_t)
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], attrs.filter, attrs.stride, (1, 1), attrs.padding)
    # the interpreter's rule (_prepare_pool): requantize only sub-byte tensors of another scale
    zp_in, zp_out, mult, shift = 0, 0, 0, 0
    if (x_t.bits < 8 or o_t.bits < 8) and (s_in, z_in) != (s_out, z_out):
        mult, shift = quantize_multiplier(float(s_in) / float(s_out))
        zp_in, zp_out = z_in, z_out
    layer.template = "avgpool"
    layer.in_bits, layer.out_bits = ib, ob
    layer.p = {"bits": (ib, 8, ob), "stride": tuple(attrs.stride), "padding": (pads[0], pads[2]),
               "filter": tuple(attrs.filter), "input_zp": zp_in, "output_zp": zp_out, "mult": mult, "shift": shift,
               "act_min": qmin, "act_max": qmax, "in_dims": _dims(_shape4(x_t.shape)),
               "out_dims": _dims(_shape4(o_t.shape))}


# ---------------------------------------------------------------------------------------------
# Runtime layers (int8)


def _mul(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, ElementwiseAttrs) else ElementwiseAttrs()
    a_t, b_t, o_t = ref._binary_inputs(graph, op)
    _require_int8(op, a_t, b_t, o_t)
    (s1, z1), (s2, z2), (so, zo) = ref._qparams(op, a_t), ref._qparams(op, b_t), ref._qparams(op, o_t)
    # as the interpreter's MUL preparer: s1 * s2 / s_out in float32
    mult, shift = quantize_multiplier(float(np.float32(np.float32(s1 * s2) / so)))
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    _const_operands(layer, graph)
    out4 = _shape4(o_t.shape)
    layer.template = "rt_mul"
    layer.p = {"q": {"in1_zp": z1, "in2_zp": z2, "mult": mult, "shift": shift, "out_zp": zo, "act_min": qmin,
                     "act_max": qmax},
               "shape": out4, "s1": _bcast_strides(a_t.shape, out4), "s2": _bcast_strides(b_t.shape, out4)}


def _max_pool(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, PoolAttrs) else PoolAttrs()
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    qmin, qmax = ref._out_range(op, o_t, attrs.activation)
    _, pads = ops.compute_padding(x_t.shape[1:3], attrs.filter, attrs.stride, (1, 1), attrs.padding)
    layer.template = "rt_max_pool"
    layer.p = {"filter": tuple(attrs.filter), "stride": tuple(attrs.stride), "pad": (pads[0], pads[2]),
               "act_min": qmin, "act_max": qmax, "in_shape": _shape4(x_t.shape), "out_shape": _shape4(o_t.shape)}


def _mean(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    rank = len(x_t.shape)
    axes = tuple(sorted({int(a) % rank for a in ref._const(graph, op, 1).ravel()}))
    count = int(np.prod([x_t.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    s_in, z_in = ref._qparams(op, x_t)
    s_out, z_out = ref._qparams(op, o_t)
    # as the interpreter's MEAN preparer (QuantizedMeanOrSum folds 1/count into the multiplier)
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))
    pot = min(count.bit_length() - 1, 32, 31 + shift)
    mult = (mult << pot) // count
    shift -= pot
    lo, hi = ref._storage_range(o_t)
    reduce = [0] * 4
    for a in axes:
        reduce[a + 4 - rank] = 1
    layer.template = "rt_mean"
    layer.p = {"reduce": reduce, "count": count, "in_zp": z_in, "mult": mult, "shift": shift, "out_zp": z_out,
               "act_min": lo, "act_max": hi, "in_shape": _shape4(x_t.shape)}


def _pad(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    paddings = ref._const(graph, op, 1).astype(np.int64).reshape(-1, 2)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(ref._const(graph, op, 2).ravel()[0])
    elif o_t.quant is not None:
        value = int(o_t.quant.zero_point[0])
    else:
        value = 0
    before = [0] * (4 - len(paddings)) + [int(a) for a, _ in paddings]
    layer.template = "rt_pad"
    layer.p = {"in_shape": _shape4(x_t.shape), "out_shape": _shape4(o_t.shape), "before": before, "value": value}


def _reshape(layer: Layer, graph: Graph) -> None:
    layer.template = "alias"
    layer.alias = True
    t = _t(graph, layer.op, 0)
    layer.in_bits = layer.out_bits = t.bits


def _softmax_tables(s_in: float, beta: float) -> tuple[int, np.ndarray, np.ndarray]:
    """diff_min, rescaled[d] and exps[d] (d = -diff in [0, 255]) from the reference's functions."""
    mult, left_shift, diff_min = transcendental.softmax_params(s_in, beta)
    diff = -np.arange(256, dtype=np.int64)
    rescaled = saturating_rounding_doubling_high_mul(wrap_int32(diff * (1 << left_shift)), mult)
    exps = transcendental.exp_on_negative_values(rescaled, 5)
    return diff_min, rescaled.astype(np.int32), exps.astype(np.int32)


def _softmax(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, SoftmaxAttrs) else SoftmaxAttrs()
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    s_in, _ = ref._qparams(op, x_t)
    _, z_out = ref._qparams(op, o_t)
    if z_out != -128:
        raise CodegenError(f"op {op.index} (SOFTMAX): output zero point {z_out}, int8 SOFTMAX needs -128")
    diff_min, _, exps = _softmax_tables(float(s_in), float(attrs.beta))
    depth = int(x_t.shape[-1])
    layer.template = "rt_softmax"
    layer.p = {"rows": x_t.size // depth, "depth": depth, "diff_min": diff_min,
               "exps": layer.const("exps", "int32_t", exps)}


def _log_softmax(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    s_in, _ = ref._qparams(op, x_t)
    s_out, z_out = ref._qparams(op, o_t)
    if z_out != 127 or float(s_out) != 16.0 / 256:
        raise CodegenError(f"op {op.index} (LOG_SOFTMAX): int8 LOG_SOFTMAX needs output scale 16/256, zero point 127")
    _, _, rev_mult, rev_shift, _ = transcendental.log_softmax_params(float(s_in))
    diff_min, rescaled, exps = _softmax_tables(float(s_in), 1.0)
    depth = int(x_t.shape[-1])
    layer.template = "rt_log_softmax"
    layer.p = {"rows": x_t.size // depth, "depth": depth, "diff_min": diff_min, "rev_mult": rev_mult,
               "rev_shift": rev_shift, "rescaled": layer.const("resc", "int32_t", rescaled),
               "exps": layer.const("exps", "int32_t", exps)}


def _quantize(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    s_out, z_out = ref._qparams(op, o_t)
    if o_t.dtype != "int8":
        raise CodegenError(f"op {op.index} (QUANTIZE): output {o_t.dtype} (int8 supported)")
    lo, hi = ref._storage_range(o_t)
    if x_t.dtype == "float32":
        layer.template = "rt_quantize_f32"
        layer.in_bits = 32
        layer.p = {"count": o_t.size, "scale": float(np.float32(s_out)).hex(), "zp": z_out, "lo": lo, "hi": hi}
        return
    _require_int8(op, x_t, o_t)
    s_in, z_in = ref._qparams(op, x_t)
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))
    layer.template = "rt_requantize"
    layer.p = {"count": o_t.size, "in_zp": z_in, "mult": mult, "shift": shift, "out_zp": z_out, "lo": lo, "hi": hi}


def _dequantize(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    if o_t.dtype != "float32" or x_t.dtype != "int8":
        raise CodegenError(f"op {op.index} (DEQUANTIZE): {x_t.dtype} -> {o_t.dtype} (int8 -> float32 supported)")
    _require_int8(op, x_t)
    scale, zp = ref._qparams(op, x_t)
    layer.template = "rt_dequantize_f32"
    layer.out_bits = 32
    layer.p = {"count": x_t.size, "scale": float(np.float32(scale)).hex(), "zp": zp}


def _transpose(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    perm = [int(p) for p in ref._const(graph, op, 1).ravel()]
    extra = 4 - len(perm)
    perm4 = list(range(extra)) + [p + extra for p in perm]
    layer.template = "rt_transpose"
    layer.p = {"in_shape": _shape4(x_t.shape), "perm": perm4}


def _concatenation(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, ConcatAttrs) else ConcatAttrs()
    o_t = _t(graph, op, 0, output=True)
    ins = [graph.tensors[i] for i in op.inputs]
    _require_int8(op, o_t, *ins)
    o_q = ref._qparams(op, o_t)
    if any(ref._qparams(op, t) != o_q for t in ins):
        raise CodegenError(f"op {op.index} (CONCATENATION): inputs and output need equal quantization")
    axis = attrs.axis % len(o_t.shape)
    outer = int(np.prod(o_t.shape[:axis], dtype=np.int64))
    _const_operands(layer, graph)
    layer.template = "rt_concat"
    layer.p = {"outer": outer, "count": len(ins),
               "blocks": [int(np.prod(t.shape[axis:], dtype=np.int64)) for t in ins]}


def _resize_nearest(layer: Layer, graph: Graph) -> None:
    op = layer.op
    attrs = op.attrs if isinstance(op.attrs, ResizeAttrs) else ResizeAttrs()
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    out_h, out_w = (int(v) for v in ref._const(graph, op, 1).ravel()[:2])
    rows = ref._nearest_indices(x_t.shape[1], out_h, attrs.align_corners, attrs.half_pixel_centers)
    cols = ref._nearest_indices(x_t.shape[2], out_w, attrs.align_corners, attrs.half_pixel_centers)
    layer.template = "rt_resize_nearest"
    layer.p = {"in_shape": _shape4(x_t.shape), "out_shape": _shape4(o_t.shape),
               "rows": layer.const("rows", "int16_t", rows.astype(np.int16)),
               "cols": layer.const("cols", "int16_t", cols.astype(np.int16))}


def _lut(builder: Callable[[float, int, float, int], np.ndarray]) -> Callable[[Layer, Graph], None]:
    def prepare(layer: Layer, graph: Graph) -> None:
        op = layer.op
        x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
        _require_int8(op, x_t, o_t)
        (s_in, z_in), (s_out, z_out) = ref._qparams(op, x_t), ref._qparams(op, o_t)
        table = builder(float(s_in), z_in, float(s_out), z_out)
        layer.template = "rt_lut"
        layer.p = {"count": x_t.size, "table": layer.const("lut", "int8_t", table.astype(np.int8))}

    return prepare


def _relu_x(act_max: Optional[float]) -> Callable[[Layer, Graph], None]:
    def prepare(layer: Layer, graph: Graph) -> None:
        op = layer.op
        x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
        _require_int8(op, x_t, o_t)
        (s_in, z_in), (s_out, z_out) = ref._qparams(op, x_t), ref._qparams(op, o_t)
        # as the interpreter's _prepare_relu_x (ReluPrepare)
        mult, shift = quantize_multiplier(float(np.float32(s_in / s_out)))
        lo, hi = ref._storage_range(o_t)

        def quant(f: float) -> int:
            return z_out + ops._round_half_away_f32(np.float32(np.float32(f) / s_out))

        qmin = max(lo, quant(0.0))
        qmax = hi if act_max is None else min(hi, quant(act_max))
        layer.template = "rt_requantize"
        layer.p = {"count": x_t.size, "in_zp": z_in, "mult": mult, "shift": shift, "out_zp": z_out, "lo": qmin,
                   "hi": qmax}

    return prepare


#: Op kind -> preparer of its layer. The kinds are the reader's (TFLite builtin names).
LAYER_PREPARERS: dict[str, Callable[[Layer, Graph], None]] = {
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _add,
    "AVERAGE_POOL_2D": _average_pool,
    "MUL": _mul,
    "MAX_POOL_2D": _max_pool,
    "MEAN": _mean,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "LOG_SOFTMAX": _log_softmax,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "TRANSPOSE": _transpose,
    "CONCATENATION": _concatenation,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nearest,
    "LOGISTIC": _lut(transcendental.logistic_table),
    "HARD_SWISH": _lut(transcendental.hard_swish_table),
    "RELU": _relu_x(None),
    "RELU6": _relu_x(6.0),
}

#: Templates whose call goes through the kernel library (scratch from its get_buffer_size).
KERNEL_TEMPLATES = ("conv", "fc", "add", "avgpool", "patch_conv", "patch_add", "patch_avgpool", "rows_conv", "split_conv")


def make_layer(graph: Graph, op: Op) -> Layer:
    """The factory: a prepared :class:`Layer` for ``op``.

    Raises
    ------
    CodegenError
        An op kind, dtype or bitwidth the generator cannot emit.
    """
    prepare = LAYER_PREPARERS.get(op.kind)
    if prepare is None:
        raise CodegenError(f"op {op.index}: {op.kind} has no C code generator "
                           f"(supported: {', '.join(LAYER_PREPARERS)})")
    layer = Layer(op=op, cname=f"l{op.index}")
    try:
        prepare(layer, graph)
    except MixqError:
        raise
    except (ValueError, KeyError) as exc:
        raise CodegenError(f"op {op.index} ({op.kind}): {exc}") from None
    from ..schedule.opinfo import op_macs  # the schedule package imports plans lazily

    layer.macs = op_macs(graph, op)
    return layer
