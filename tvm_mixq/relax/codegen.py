"""``relax.ext.mixq``: composite functions -> C calls into the mixq kernel library.

Relax's ``RunCodegen`` hands every function marked ``Codegen = "mixq"`` (made by
``mixq.Partition(annotate_codegen=True)`` or :func:`tvm_mixq.relax.patterns.partition_for_mixq`)
to the global function ``relax.ext.mixq``, registered here. For each one this module emits one C
function in the kernel library's calling convention (``kernels/include/mixq_kernels.h``)::

    int32_t <symbol>_buffer_size(void);            /* scratch the call needs */
    mixq_status <symbol>(const mixq_context *ctx, const void *in0, [const void *in1,] void *out);

with its weights packed in the kernel layout (:mod:`tvm_mixq.kernellib.layout`), its bias and its
per-channel requantization (TFLite's ``QuantizeMultiplier``) as ``static const`` arrays, and
returns them as one C source module (``runtime.CSourceModuleCreate``). The Relax VM cannot run
that module; the project's whole-model emitter links these functions into firmware.

The emitter works from the composite alone (constants bound inside, layout ops folded on the
host), so it serves modules made by this project's importer and by TVM's TFLite frontend. It
reads the composite into a one-op :class:`~tvm_mixq.graph.Graph` and prepares that op with the
whole-model emitter's layer factory (:func:`tvm_mixq.codegen.layers.make_layer`, whose parameters
come from :func:`tvm_mixq.reference.lowering.lower_op`), so both emitters derive a layer's packed
weights, requantization and geometry in one place. The output clamp is the composite's own
(``mixq.activation_min``/``max``, read off the IR's clips). Layers must carry 8-bit numerics
here: sub-byte weights need the requantized weights of the precision search, which the
whole-model emitter takes from the plan.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import jinja2
import numpy as np
import tvm
import tvm_ffi
from tvm import relax

from ..codegen.layers import Layer, make_layer
from ..errors import MixqError
from ..graph import ConvAttrs, ElementwiseAttrs, FullyConnectedAttrs, Graph, Op, PoolAttrs, QuantParams, Tensor
from ..reference.ops import compute_padding
from . import config as _config  # noqa: F401  (registers the mixq.* PassContext keys)
from .planner import inner_composite

log = logging.getLogger(__name__)

CODEGEN_NAME = "mixq"
GLOBAL_FUNC = f"relax.ext.{CODEGEN_NAME}"


# -- what one composite computes ---------------------------------------------------------------------


@dataclass
class LayerSpec:
    """Everything the C of one layer needs, read off a composite function."""

    symbol: str
    op: str  # conv2d, pointwise, depthwise, fully_connected, add, avgpool
    bits: tuple[int, int, int]  # (in, w, out); for add (in1, in2, out)
    in_dims: tuple[int, int, int, int]
    out_dims: tuple[int, int, int, int]
    params: dict[str, int] = field(default_factory=dict)  # scalar parameters of the kernel's params struct
    filter_dims: Optional[tuple[int, int, int, int]] = None
    weights: Optional[np.ndarray] = None  # packed bytes
    bias: Optional[np.ndarray] = None  # int32
    multiplier: Optional[np.ndarray] = None  # int32 per channel
    shift: Optional[np.ndarray] = None
    comment: str = ""

    @property
    def n_inputs(self) -> int:
        return 2 if self.op == "add" else 1


def _shape(expr: relax.Expr) -> list[int]:
    return [int(d) for d in expr.ty.shape]


def _attr(func: relax.Function, key: str, default: Any = None) -> Any:
    if func.attrs is None or key not in func.attrs:
        return default
    value = func.attrs[key]
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value"):
        return value.value
    return [v.value if hasattr(v, "value") else v for v in value]


class _Body:
    """The bindings of a composite function, with constant-derived values folded to NumPy."""

    def __init__(self, func: relax.Function) -> None:
        self.calls: list[relax.Call] = []
        self.values: dict[int, np.ndarray] = {}  # binding var id -> folded integer constant
        self.by_var: dict[int, relax.Call] = {}
        for block in func.body.blocks:
            for binding in block.bindings:
                value = binding.value
                if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
                    self.calls.append(value)
                    self.by_var[binding.var.id_] = value
                    folded = self._fold(value)
                    if folded is not None:
                        self.values[binding.var.id_] = folded

    def const(self, expr: relax.Expr) -> Optional[np.ndarray]:
        if hasattr(expr, "value") and hasattr(expr.value, "numpy"):
            return expr.value.numpy()
        return self.values.get(expr.id_)

    def _fold(self, call: relax.Call) -> Optional[np.ndarray]:
        name = call.op.name
        if name not in ("relax.dequantize", "relax.reshape", "relax.permute_dims"):
            return None
        src = self.const(call.args[0])
        if src is None:
            return None
        if name == "relax.dequantize":  # keep the integers: the scales travel as attributes
            return src
        if name == "relax.reshape":
            return src.reshape(_shape(call))
        axes = call.attrs.axes
        return np.transpose(src, [int(a) for a in axes] if axes is not None else None)

    def find(self, op_name: str) -> list[relax.Call]:
        return [c for c in self.calls if c.op.name == op_name]

    def producer(self, expr: relax.Expr) -> Optional[relax.Call]:
        return self.by_var.get(expr.id_) if not isinstance(expr, relax.Call) else expr


def _bias(body: _Body) -> Optional[np.ndarray]:
    for add in body.find("relax.add"):
        for arg in add.args:
            value = body.const(arg)
            producer = body.producer(arg)
            if value is not None and producer is not None and producer.op.name == "relax.dequantize":
                return value.astype(np.int32).ravel()
    return None


def _bits(func: relax.Function, op: str) -> tuple[int, int, int]:
    bits = (int(_attr(func, "mixq.in_bits", 8)), int(_attr(func, "mixq.w_bits", 8)),
            int(_attr(func, "mixq.out_bits", 8)))
    if op == "add":
        bits = (bits[0], bits[0], bits[2])
    if bits != (8, 8, 8):
        raise MixqError(f"relax.ext.mixq emits 8-bit layers only; {op} is planned at {bits} "
                        "(the whole-model emitter lowers sub-byte layers from the plan)")
    return bits


def _quant(scale: Any, zero_point: Any, axis: int = 0) -> QuantParams:
    scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    zps = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
    return QuantParams(scales, np.broadcast_to(zps, scales.shape).copy(), axis)


def _tflite_padding(symbol: str, explicit: tuple[int, int, int, int], in_hw: Sequence[int],
                    kernel_hw: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> str:
    """TFLite's padding name for Relax's explicit (top, left, bottom, right) padding."""
    top, left, bottom, right = explicit
    for name in ("VALID", "SAME"):
        if compute_padding(tuple(in_hw), kernel_hw, stride, dilation, name)[1] == (top, bottom, left, right):
            return name
    raise MixqError(f"{symbol}: padding {list(explicit)} is neither TFLite's SAME nor VALID padding")


class _OneOpGraph:
    """The composite as a one-op :class:`Graph`: input(s), constants, output."""

    def __init__(self, func: relax.Function, in_shapes: list[list[int]], out_shape: list[int]) -> None:
        self.func = func
        self.tensors: list[Tensor] = []
        self.inputs = [self.activation(f"in{i}", shape, "input" if i == 0 else "input_b")
                       for i, shape in enumerate(in_shapes)]
        self.out_shape = out_shape

    def activation(self, name: str, shape: Sequence[int], prefix: str) -> int:
        scale = _attr(self.func, f"mixq.{prefix}_scale")
        quant = _quant(1.0, 0) if scale is None else _quant(scale, _attr(self.func, f"mixq.{prefix}_zero_point"))
        return self.add(Tensor(len(self.tensors), name, tuple(shape), "int8", quant))

    def add(self, t: Tensor) -> int:
        self.tensors.append(t)
        return t.index

    def constant(self, name: str, data: np.ndarray, quant: Optional[QuantParams] = None) -> int:
        return self.add(Tensor(len(self.tensors), name, tuple(data.shape), data.dtype.name, quant, data))

    def layer(self, kind: str, inputs: list[int], attrs: Any) -> Layer:
        out = self.activation("out", self.out_shape, "output")
        graph = Graph(self.tensors, [Op(0, kind, inputs, [out], attrs)], self.inputs, [out])
        return make_layer(graph, graph.ops[0])


def _spec_from_layer(layer: Layer, symbol: str, op: str, act: dict[str, int], comment: str) -> LayerSpec:
    """A :class:`LayerSpec` from the whole-model emitter's layer (the composite's clamp ``act``)."""
    p = layer.p
    consts = {c.name: c.values for c in layer.consts}

    def dims(d: dict) -> tuple[int, int, int, int]:
        return d["n"], d["h"], d["w"], d["c"]

    if layer.template == "add":
        return LayerSpec(symbol, "add", p["bits"], dims(p["dims"]), dims(p["dims"]), {**p["q"], **act},
                         comment=comment)
    if layer.template == "avgpool":
        params = {"stride_h": p["stride"][0], "stride_w": p["stride"][1], "pad_h": p["padding"][0],
                  "pad_w": p["padding"][1], "filter_h": p["filter"][0], "filter_w": p["filter"][1],
                  "input_zp": p["input_zp"], "output_zp": p["output_zp"], "multiplier": p["mult"],
                  "shift": p["shift"], **act}
        return LayerSpec(symbol, "avgpool", p["bits"], dims(p["in_dims"]), dims(p["out_dims"]), params,
                         comment=comment)
    params = {"input_zp": p["input_zp"], "output_zp": p["output_zp"]}
    if layer.template == "conv":
        params.update(stride_h=p["stride"][0], stride_w=p["stride"][1], pad_h=p["padding"][0],
                      pad_w=p["padding"][1], dilation_h=p["dilation"][0], dilation_w=p["dilation"][1],
                      ch_mult=p["ch_mult"])
        op = p["kernel"]
    params.update(act)
    bias = consts[p["bias"]] if p["bias"] is not None else None
    return LayerSpec(symbol, op, p["bits"], dims(p["in_dims"]), dims(p["out_dims"]), params, dims(p["filter_dims"]),
                     consts[p["weights"]], bias, consts[p["mult"]], consts[p["shift"]], comment)


def layer_spec(func: relax.Function, symbol: str) -> LayerSpec:
    """Read a mixq composite function into a :class:`LayerSpec`."""
    composite = str(func.attrs["Composite"])
    op = composite.split(".", 1)[1]
    body = _Body(func)
    act = {"act_min": int(_attr(func, "mixq.activation_min", -128)),
           "act_max": int(_attr(func, "mixq.activation_max", 127))}
    _bits(func, op)
    comment = f"{composite}: {_attr(func, 'mixq.tensor_name', _attr(func, 'mixq.output', symbol))}"
    in_shape = _shape(func.params[0])
    out_shape = _shape(func.body.body) if hasattr(func.body, "body") else [int(d) for d in func.ret_ty.shape]

    if op in ("conv2d", "depthwise_conv2d"):
        (conv,) = body.find("relax.nn.conv2d")
        w = body.const(conv.args[1])
        if w is None:
            raise MixqError(f"{symbol}: weights are not constant")
        layout = str(conv.attrs.kernel_layout)
        w_ohwi = np.transpose(w, [layout.index(c) for c in "OHWI"])
        cout, kh, kw, _ = w_ohwi.shape
        stride = (int(conv.attrs.strides[0]), int(conv.attrs.strides[1]))
        dilation = (int(conv.attrs.dilation[0]), int(conv.attrs.dilation[1]))
        explicit = tuple(int(v) for v in conv.attrs.padding)
        attrs = ConvAttrs(stride=stride, dilation=dilation,
                          padding=_tflite_padding(symbol, explicit, in_shape[1:3], (kh, kw), stride, dilation))
        g = _OneOpGraph(func, [in_shape], out_shape)
        if op == "depthwise_conv2d":
            filt = np.ascontiguousarray(np.transpose(w_ohwi, (3, 1, 2, 0)))  # [1, kh, kw, C*mult]
            weights = g.constant("w", filt, _quant(_attr(func, "mixq.weight_scale"),
                                                   _attr(func, "mixq.weight_zero_point"), axis=3))
            attrs.depth_multiplier = cout // in_shape[3]
            kind = "DEPTHWISE_CONV_2D"
        else:
            weights = g.constant("w", np.ascontiguousarray(w_ohwi), _quant(_attr(func, "mixq.weight_scale"),
                                                                          _attr(func, "mixq.weight_zero_point")))
            kind = "CONV_2D"
        bias = _bias(body)
        layer = g.layer(kind, [g.inputs[0], weights, -1 if bias is None else g.constant("b", bias)], attrs)
        return _spec_from_layer(layer, symbol, op, act, comment)

    if op == "fully_connected":
        (mm,) = body.find("relax.matmul")
        wt = body.const(mm.args[1])
        if wt is None:
            raise MixqError(f"{symbol}: weights are not constant")
        g = _OneOpGraph(func, [in_shape], out_shape)
        weights = g.constant("w", np.ascontiguousarray(wt.T), _quant(_attr(func, "mixq.weight_scale"),
                                                                     _attr(func, "mixq.weight_zero_point")))
        bias = _bias(body)
        layer = g.layer("FULLY_CONNECTED", [g.inputs[0], weights, -1 if bias is None else g.constant("b", bias)],
                        FullyConnectedAttrs())
        return _spec_from_layer(layer, symbol, "fully_connected", act, comment)

    if op == "add":
        if len(func.params) != 2 or _shape(func.params[0]) != _shape(func.params[1]):
            raise MixqError(f"{symbol}: the add kernel takes two runtime inputs of the same shape "
                            "(no constant operand, no broadcasting)")
        g = _OneOpGraph(func, [in_shape, _shape(func.params[1])], out_shape)
        return _spec_from_layer(g.layer("ADD", g.inputs, ElementwiseAttrs()), symbol, op, act, comment)

    if op == "avg_pool2d":
        (pool,) = body.find("relax.nn.avg_pool2d")
        stride = (int(pool.attrs.strides[0]), int(pool.attrs.strides[1]))
        size = (int(pool.attrs.pool_size[0]), int(pool.attrs.pool_size[1]))
        explicit = tuple(int(v) for v in pool.attrs.padding)
        attrs = PoolAttrs(filter=size, stride=stride,
                          padding=_tflite_padding(symbol, explicit, in_shape[1:3], size, stride, (1, 1)))
        g = _OneOpGraph(func, [in_shape], out_shape)
        return _spec_from_layer(g.layer("AVERAGE_POOL_2D", g.inputs, attrs), symbol, "avgpool", act, comment)

    raise MixqError(f"relax.ext.mixq has no kernel for composite {composite}")


# -- C ------------------------------------------------------------------------------------------------

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True)

_PRELUDE = _ENV.from_string("""\
/* Generated by tvm_mixq (relax.ext.mixq): kernel-library calls for {{ count }} layer(s). */
#include <stdint.h>

#include "mixq_kernels.h"
""")

_ARRAYS = _ENV.from_string("""\
{% macro array(ctype, name, values) %}
static const {{ ctype }} {{ name }}[{{ values|length }}] = {
{% for row in values|batch(16) %}
    {{ row|join(", ") }},
{% endfor %}
};
{% endmacro %}
{% if spec.weights is not none %}{{ array("uint8_t", spec.symbol ~ "_weights", spec.weights.tolist()) }}{% endif %}
{% if spec.bias is not none %}{{ array("int32_t", spec.symbol ~ "_bias", spec.bias.tolist()) }}{% endif %}
{% if spec.multiplier is not none %}
{{ array("int32_t", spec.symbol ~ "_multiplier", spec.multiplier.tolist()) }}
{{ array("int32_t", spec.symbol ~ "_shift", spec.shift.tolist()) }}
{% endif %}
""")

_CONV = _ENV.from_string("""\

/* {{ spec.comment }} */
{{ arrays }}
static const mixq_conv_params {{ s }}_params = {
    {{ p.input_zp }}, {{ p.output_zp }}, { {{ p.stride_h }}, {{ p.stride_w }} }, { {{ p.pad_h }}, {{ p.pad_w }} },
    { {{ p.dilation_h }}, {{ p.dilation_w }} }, {{ p.ch_mult }}, {{ p.act_min }}, {{ p.act_max }}};
static const mixq_dims {{ s }}_in = { {{ spec.in_dims|join(", ") }} };
static const mixq_dims {{ s }}_filter = { {{ spec.filter_dims|join(", ") }} };
static const mixq_dims {{ s }}_out = { {{ spec.out_dims|join(", ") }} };
static const mixq_bits {{ s }}_bits = { {{ spec.bits|join(", ") }} };

int32_t {{ s }}_buffer_size(void)
{
    return mixq_{{ spec.op }}_get_buffer_size({{ s }}_bits, &{{ s }}_params, &{{ s }}_in, &{{ s }}_filter, &{{ s }}_out);
}

mixq_status {{ s }}(const mixq_context *ctx, const void *in0, void *out)
{
    const mixq_per_channel_quant quant = { {{ s }}_multiplier, {{ s }}_shift };
    return mixq_{{ spec.op }}({{ s }}_bits, ctx, &{{ s }}_params, &quant, &{{ s }}_in, in0, &{{ s }}_filter,
                         {{ s }}_weights, {{ (s ~ "_bias") if spec.bias is not none else "0" }}, &{{ s }}_out, out);
}
""")

_FC = _ENV.from_string("""\

/* {{ spec.comment }} */
{{ arrays }}
static const mixq_fc_params {{ s }}_params = { {{ p.input_zp }}, {{ p.output_zp }}, {{ p.act_min }}, {{ p.act_max }} };
static const mixq_dims {{ s }}_in = { {{ spec.in_dims|join(", ") }} };
static const mixq_dims {{ s }}_filter = { {{ spec.filter_dims|join(", ") }} };
static const mixq_dims {{ s }}_out = { {{ spec.out_dims|join(", ") }} };
static const mixq_bits {{ s }}_bits = { {{ spec.bits|join(", ") }} };

int32_t {{ s }}_buffer_size(void)
{
    return mixq_fully_connected_get_buffer_size({{ s }}_bits, &{{ s }}_params, &{{ s }}_in, &{{ s }}_filter, &{{ s }}_out);
}

mixq_status {{ s }}(const mixq_context *ctx, const void *in0, void *out)
{
    const mixq_per_channel_quant quant = { {{ s }}_multiplier, {{ s }}_shift };
    return mixq_fully_connected({{ s }}_bits, ctx, &{{ s }}_params, &quant, &{{ s }}_in, in0, &{{ s }}_filter,
                                {{ s }}_weights, {{ (s ~ "_bias") if spec.bias is not none else "0" }}, &{{ s }}_out, out);
}
""")

_ADD = _ENV.from_string("""\

/* {{ spec.comment }} */
static const mixq_add_params {{ s }}_params = {
    {{ p.in1_zp }}, {{ p.in1_mult }}, {{ p.in1_shift }}, {{ p.in2_zp }}, {{ p.in2_mult }}, {{ p.in2_shift }},
    {{ p.left_shift }}, {{ p.output_zp }}, {{ p.out_mult }}, {{ p.out_shift }}, {{ p.act_min }}, {{ p.act_max }}};
static const mixq_dims {{ s }}_dims = { {{ spec.out_dims|join(", ") }} };
static const mixq_bits {{ s }}_bits = { {{ spec.bits|join(", ") }} };

int32_t {{ s }}_buffer_size(void)
{
    return mixq_add_get_buffer_size({{ s }}_bits, &{{ s }}_dims);
}

mixq_status {{ s }}(const mixq_context *ctx, const void *in0, const void *in1, void *out)
{
    return mixq_add({{ s }}_bits, ctx, &{{ s }}_params, &{{ s }}_dims, in0, in1, out);
}
""")

_POOL = _ENV.from_string("""\

/* {{ spec.comment }} */
static const mixq_pool_params {{ s }}_params = {
    { {{ p.stride_h }}, {{ p.stride_w }} }, { {{ p.pad_h }}, {{ p.pad_w }} }, { {{ p.filter_h }}, {{ p.filter_w }} },
    {{ p.input_zp }}, {{ p.output_zp }}, {{ p.multiplier }}, {{ p.shift }}, {{ p.act_min }}, {{ p.act_max }}};
static const mixq_dims {{ s }}_in = { {{ spec.in_dims|join(", ") }} };
static const mixq_dims {{ s }}_out = { {{ spec.out_dims|join(", ") }} };
static const mixq_bits {{ s }}_bits = { {{ spec.bits|join(", ") }} };

int32_t {{ s }}_buffer_size(void)
{
    return mixq_avgpool_get_buffer_size({{ s }}_bits, &{{ s }}_params, &{{ s }}_in, &{{ s }}_out);
}

mixq_status {{ s }}(const mixq_context *ctx, const void *in0, void *out)
{
    return mixq_avgpool({{ s }}_bits, ctx, &{{ s }}_params, &{{ s }}_in, in0, &{{ s }}_out, out);
}
""")

_TEMPLATES = {"conv2d": _CONV, "pointwise": _CONV, "depthwise": _CONV, "fully_connected": _FC, "add": _ADD,
              "avgpool": _POOL}


def emit_layer(spec: LayerSpec) -> str:
    """The C of one layer (arrays, params, ``<symbol>_buffer_size`` and ``<symbol>``)."""
    arrays = _ARRAYS.render(spec=spec).strip("\n")
    return _TEMPLATES[spec.op].render(spec=spec, s=spec.symbol, p=spec.params, arrays=arrays)


def emit_source(specs: Sequence[LayerSpec]) -> str:
    """One C translation unit for several layers."""
    return _PRELUDE.render(count=len(specs)) + "".join(emit_layer(spec) for spec in specs)


def specs_of(functions: Sequence[relax.Function]) -> list[LayerSpec]:
    """Layer specs of the functions ``RunCodegen`` hands over (symbol = ``global_symbol``)."""
    specs = []
    for func in functions:
        symbol = str(func.attrs["global_symbol"])
        composite = inner_composite(func)
        if composite is None:
            raise MixqError(f"{symbol}: a relax.ext.mixq function holds no mixq composite function")
        # the wrapper's attributes (planned bitwidths, links to the graph) over the composite's
        merged = composite.with_attrs({str(k): v for k, v in func.attrs.items() if str(k).startswith("mixq.")})
        specs.append(layer_spec(merged, symbol))
    return specs


@tvm_ffi.register_global_func(GLOBAL_FUNC, override=True)
def _relax_ext_mixq(functions: Any, options: Any = None, constant_names: Any = None) -> list:
    """Entry point of ``RunCodegen`` for ``Codegen = "mixq"``: one C source module."""
    specs = specs_of(list(functions))
    source = emit_source(specs)
    create = tvm.get_global_func("runtime.CSourceModuleCreate")
    symbols = [spec.symbol for spec in specs] + [f"{spec.symbol}_buffer_size" for spec in specs]
    log.info("relax.ext.mixq: %d layer(s), %d bytes of C", len(specs), len(source))
    return [create(source, "c", symbols, [])]


def run_codegen(mod: tvm.IRModule) -> tvm.IRModule:
    """Partition ``mod`` for the external codegen (unless it already is) and run ``RunCodegen``;
    the module's ``external_mods`` attribute then holds the C source module."""
    from .passes import Partition

    return relax.transform.RunCodegen()(Partition(annotate_codegen=True)(mod))


def c_source(mod: tvm.IRModule) -> str:
    """The C that ``relax.ext.mixq`` produced for a module after :func:`run_codegen`."""
    mods = mod.attrs["external_mods"] if mod.attrs is not None and "external_mods" in mod.attrs else []
    return "".join(m.inspect_source() for m in mods if m.kind == "c")
