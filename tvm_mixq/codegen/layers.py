"""One class per op kind: what a generated layer needs (constants, parameters, scratch), and the
name of the template macro that renders it (``templates/layers.c.j2``).

Every parameter is computed by the Python reference's own code: the kernel parameters of an op
come from :func:`tvm_mixq.reference.lowering.lower_op` (the records the interpreter runs), tables
from :mod:`~tvm_mixq.reference.transcendental`, so the C code applies exactly the numbers the
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
    Graph,
    Op,
    ResizeAttrs,
    Tensor,
)
from ..kernellib import layout
from ..reference import interpreter as ref
from ..reference import lowering, transcendental
from ..reference.fixedpoint import saturating_rounding_doubling_high_mul, wrap_int32


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
    rows: Optional[object] = None  # inplace.RowSchedule of a convolution run in place, in blocks of rows

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


def uses_w4_lanes(p: dict) -> bool:
    """Whether a conv2d / pointwise / fully connected layer with parameters ``p`` is emitted with its
    A4W4 weights re-spaced into lane words (:func:`tvm_mixq.kernellib.pack_w4_lanes`, the lane bias,
    the kernel library's ``_lanes`` entry point): every A4W4 one. The kernel then keeps no re-spaced
    copy in scratch and does no re-spacing at call start; the host build's portable path reads the
    same layout, so the generated code is the same for every target."""
    return tuple(p["bits"][:2]) == (4, 4) and p.get("kernel", "fully_connected") != "depthwise"


def conv_weights(w: np.ndarray, bits: tuple[int, int, int], bias: Optional[np.ndarray], input_zp: int,
                 depthwise: bool = False) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(packed weights, bias) as the kernel call of a layer at ``bits`` takes them: A4W4 conv2d /
    pointwise / fully connected in lane words with the lane bias (:func:`uses_w4_lanes`), the rest
    in the kernel layout with the bias unchanged."""
    return layout.kernel_weights(w, bits[1], bias, input_zp, lanes=tuple(bits[:2]) == (4, 4) and not depthwise,
                                 depthwise=depthwise)


def kernel_fn(p: dict) -> str:
    """The kernel library function a conv2d / pointwise / depthwise / fully connected layer calls."""
    ib, wb, ob = p["bits"]
    return f"mixq_{p.get('kernel', 'fully_connected')}_a{ib}w{wb}o{ob}" + ("_lanes" if uses_w4_lanes(p) else "")


def _conv_common(layer: Layer, graph: Graph, depthwise: bool) -> None:
    op = layer.op
    x_t, w_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    ib, ob = _act_bits(op, x_t), _act_bits(op, o_t)
    wb = w_t.bits
    low = lowering.lower_conv(graph, op)
    w, cout = low.weights, low.channels
    kh, kw = low.kernel_hw
    kernel = "depthwise" if depthwise else ("pointwise" if low.pointwise else "conv2d")
    packed, bias = conv_weights(w, (ib, wb, ob), low.bias, low.input_zp, depthwise)
    layer.template = "conv"
    layer.in_bits, layer.w_bits, layer.out_bits = ib, wb, ob
    layer.p = {
        "kernel": kernel,
        "bits": (ib, wb, ob),
        "input_zp": low.input_zp, "output_zp": low.output_zp,
        "stride": low.stride, "padding": (low.padding[0], low.padding[2]), "dilation": low.dilation,
        "ch_mult": low.depth_multiplier, "act_min": low.act_min, "act_max": low.act_max,
        "in_dims": _dims(_shape4(x_t.shape)),
        "filter_dims": _dims([1, kh, kw, cout] if depthwise else [cout, kh, kw, w.shape[3]]),
        "out_dims": _dims(_shape4(o_t.shape)),
        "weights": layer.const("w", "uint8_t", packed),
        "bias": layer.const("b", "int32_t", bias.astype(np.int32)) if bias is not None else None,
        "mult": layer.const("m", "int32_t", _per_channel(low.multiplier, cout)),
        "shift": layer.const("s", "int32_t", _per_channel(low.shift, cout)),
    }
    layer.p["fn"] = kernel_fn(layer.p)


def _conv2d(layer: Layer, graph: Graph) -> None:
    _conv_common(layer, graph, depthwise=False)


def _depthwise(layer: Layer, graph: Graph) -> None:
    _conv_common(layer, graph, depthwise=True)


def _fully_connected(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, w_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    ib, ob, wb = _act_bits(op, x_t), _act_bits(op, o_t), w_t.bits
    low = lowering.lower_fully_connected(graph, op)
    if low.weight_zp != 0:
        raise CodegenError(f"op {op.index} (FULLY_CONNECTED): weight zero point {low.weight_zp} (kernels take 0)")
    cout, depth = low.channels, low.depth
    rows = x_t.size // depth
    packed, bias = conv_weights(low.weights, (ib, wb, ob), low.bias, low.input_zp)
    layer.template = "fc"
    layer.in_bits, layer.w_bits, layer.out_bits = ib, wb, ob
    layer.p = {
        "bits": (ib, wb, ob),
        "input_zp": low.input_zp, "output_zp": low.output_zp, "act_min": low.act_min, "act_max": low.act_max,
        "in_dims": _dims([rows, 1, 1, depth]),
        "filter_dims": _dims([cout, 1, 1, depth]),
        "out_dims": _dims([rows, 1, 1, cout]),
        "weights": layer.const("w", "uint8_t", packed),
        "bias": layer.const("b", "int32_t", bias.astype(np.int32)) if bias is not None else None,
        "mult": layer.const("m", "int32_t", _per_channel(low.multiplier, cout)),
        "shift": layer.const("s", "int32_t", _per_channel(low.shift, cout)),
    }
    layer.p["fn"] = kernel_fn(layer.p)


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
    a_t, b_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    params = lowering.lower_add(graph, op).kernel_params()
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
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    ib, ob = _act_bits(op, x_t), _act_bits(op, o_t)
    low = lowering.lower_pool(graph, op)
    q = low.kernel_requant()
    layer.template = "avgpool"
    layer.in_bits, layer.out_bits = ib, ob
    layer.p = {"bits": (ib, 8, ob), "stride": low.stride, "padding": (low.padding[0], low.padding[2]),
               "filter": low.filter, "input_zp": q["input_zp"], "output_zp": q["output_zp"],
               "mult": q["multiplier"], "shift": q["shift"], "act_min": low.act_min, "act_max": low.act_max,
               "in_dims": _dims(_shape4(x_t.shape)), "out_dims": _dims(_shape4(o_t.shape))}


# ---------------------------------------------------------------------------------------------
# Runtime layers (int8)


def _mul(layer: Layer, graph: Graph) -> None:
    op = layer.op
    a_t, b_t, o_t = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, output=True)
    _require_int8(op, a_t, b_t, o_t)
    low = lowering.lower_mul(graph, op)
    _const_operands(layer, graph)
    out4 = _shape4(o_t.shape)
    layer.template = "rt_mul"
    layer.p = {"q": {"in1_zp": low.input1_zp, "in2_zp": low.input2_zp, "mult": low.multiplier, "shift": low.shift,
                     "out_zp": low.output_zp, "act_min": low.act_min, "act_max": low.act_max},
               "shape": out4, "s1": _bcast_strides(a_t.shape, out4), "s2": _bcast_strides(b_t.shape, out4)}


def _max_pool(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    low = lowering.lower_pool(graph, op)
    layer.template = "rt_max_pool"
    layer.p = {"filter": low.filter, "stride": low.stride, "pad": (low.padding[0], low.padding[2]),
               "act_min": low.act_min, "act_max": low.act_max, "in_shape": _shape4(x_t.shape),
               "out_shape": _shape4(o_t.shape)}


def _mean(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    low = lowering.lower_mean(graph, op)
    rank = len(x_t.shape)
    reduce = [0] * 4
    for a in low.axes:
        reduce[a + 4 - rank] = 1
    layer.template = "rt_mean"
    layer.p = {"reduce": reduce, "count": low.count, "in_zp": low.input_zp, "mult": low.multiplier,
               "shift": low.shift, "out_zp": low.output_zp, "act_min": low.out_min, "act_max": low.out_max,
               "in_shape": _shape4(x_t.shape)}


def _pad(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    low = lowering.lower_pad(graph, op)
    before = [0] * (4 - len(low.paddings)) + [a for a, _ in low.paddings]
    layer.template = "rt_pad"
    layer.p = {"in_shape": _shape4(x_t.shape), "out_shape": _shape4(o_t.shape), "before": before,
               "value": low.value}


def _reshape(layer: Layer, graph: Graph) -> None:
    layer.template = "alias"
    layer.alias = True
    t = _t(graph, layer.op, 0)
    layer.in_bits = layer.out_bits = t.bits


def _softmax_tables(mult: int, left_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """rescaled[d] and exps[d] (d = -diff in [0, 255]) from the reference's functions."""
    diff = -np.arange(256, dtype=np.int64)
    rescaled = saturating_rounding_doubling_high_mul(wrap_int32(diff * (1 << left_shift)), mult)
    exps = transcendental.exp_on_negative_values(rescaled, 5)
    return rescaled.astype(np.int32), exps.astype(np.int32)


def _softmax(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    low = lowering.lower_softmax(graph, op)
    _, exps = _softmax_tables(low.multiplier, low.left_shift)
    depth = int(x_t.shape[-1])
    layer.template = "rt_softmax"
    layer.p = {"rows": x_t.size // depth, "depth": depth, "diff_min": low.diff_min,
               "exps": layer.const("exps", "int32_t", exps)}


def _log_softmax(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    mult, left_shift, rev_mult, rev_shift, diff_min = lowering.lower_log_softmax(graph, op).params
    rescaled, exps = _softmax_tables(mult, left_shift)
    depth = int(x_t.shape[-1])
    layer.template = "rt_log_softmax"
    layer.p = {"rows": x_t.size // depth, "depth": depth, "diff_min": diff_min, "rev_mult": rev_mult,
               "rev_shift": rev_shift, "rescaled": layer.const("resc", "int32_t", rescaled),
               "exps": layer.const("exps", "int32_t", exps)}


def _requantize_params(low: lowering.RequantizeLowering, count: int) -> dict:
    return {"count": count, "in_zp": low.input_zp, "mult": low.multiplier, "shift": low.shift,
            "out_zp": low.output_zp, "lo": low.out_min, "hi": low.out_max}


def _quantize(layer: Layer, graph: Graph) -> None:
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    if o_t.dtype != "int8":
        raise CodegenError(f"op {op.index} (QUANTIZE): output {o_t.dtype} (int8 supported)")
    if x_t.dtype != "float32":
        _require_int8(op, x_t, o_t)
    low = lowering.lower_quantize(graph, op)
    if isinstance(low, lowering.QuantizeFloatLowering):
        layer.template = "rt_quantize_f32"
        layer.in_bits = 32
        layer.p = {"count": o_t.size, "scale": float(np.float32(low.scale)).hex(), "zp": low.zero_point,
                   "lo": low.out_min, "hi": low.out_max}
        return
    layer.template = "rt_requantize"
    layer.p = _requantize_params(low, o_t.size)


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


def _relu(layer: Layer, graph: Graph) -> None:
    """RELU and RELU6: a requantization with the activation's clamp."""
    op = layer.op
    x_t, o_t = _t(graph, op, 0), _t(graph, op, 0, output=True)
    _require_int8(op, x_t, o_t)
    layer.template = "rt_requantize"
    layer.p = _requantize_params(lowering.lower_relu(graph, op), x_t.size)


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
    "RELU": _relu,
    "RELU6": _relu,
}

#: Templates whose call goes through the kernel library (scratch from its get_buffer_size).
KERNEL_TEMPLATES = ("conv", "fc", "add", "avgpool", "patch_conv", "patch_add", "patch_avgpool", "rows_conv", "split_conv")


def make_layer(graph: Graph, op: Op, cname: Optional[str] = None) -> Layer:
    """The factory: a prepared :class:`Layer` for ``op`` (``cname``: the prefix of its C names,
    ``l<op index>`` by default).

    Raises
    ------
    CodegenError
        An op kind, dtype or bitwidth the generator cannot emit.
    """
    prepare = LAYER_PREPARERS.get(op.kind)
    if prepare is None:
        raise CodegenError(f"op {op.index}: {op.kind} has no C code generator "
                           f"(supported: {', '.join(LAYER_PREPARERS)})")
    layer = Layer(op=op, cname=cname or f"l{op.index}")
    try:
        prepare(layer, graph)
    except MixqError:
        raise
    except (ValueError, KeyError) as exc:
        raise CodegenError(f"op {op.index} ({op.kind}): {exc}") from None
    from ..schedule.opinfo import op_macs  # the schedule package imports plans lazily

    layer.macs = op_macs(graph, op)
    return layer
