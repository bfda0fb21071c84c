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
host), so it serves modules made by this project's importer and by TVM's TFLite frontend.
Layers must carry 8-bit numerics here: sub-byte weights need the requantized weights of the
precision search, which the whole-model emitter takes from the plan.
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

from ..errors import MixqError
from ..kernellib.layout import pack_depthwise_weights, pack_weights
from ..reference.fixedpoint import quantize_multiplier, quantize_multipliers
from ..reference.ops import add_params
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


def _nhwc(shape: Sequence[int]) -> tuple[int, int, int, int]:
    dims = [int(d) for d in shape]
    if len(dims) == 4:
        return dims[0], dims[1], dims[2], dims[3]
    if len(dims) == 2:  # fully connected [n, k]
        return dims[0], 1, 1, dims[1]
    raise MixqError(f"cannot lay out a tensor of shape {dims} as NHWC")


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


def _conv_multipliers(func: relax.Function, cout: int) -> tuple[np.ndarray, np.ndarray]:
    w_scale = np.asarray(_attr(func, "mixq.weight_scale"), dtype=np.float64)
    if w_scale.size == 1:
        w_scale = np.repeat(w_scale, cout)
    real = np.float64(_attr(func, "mixq.input_scale")) * w_scale / np.float64(_attr(func, "mixq.output_scale"))
    mult, shift = quantize_multipliers(real)
    return mult.astype(np.int32), shift.astype(np.int32)


def _bits(func: relax.Function, op: str) -> tuple[int, int, int]:
    bits = (int(_attr(func, "mixq.in_bits", 8)), int(_attr(func, "mixq.w_bits", 8)),
            int(_attr(func, "mixq.out_bits", 8)))
    if op == "add":
        bits = (bits[0], bits[0], bits[2])
    if bits != (8, 8, 8):
        raise MixqError(f"relax.ext.mixq emits 8-bit layers only; {op} is planned at {bits} "
                        "(the whole-model emitter lowers sub-byte layers from the plan)")
    return bits


def layer_spec(func: relax.Function, symbol: str) -> LayerSpec:
    """Read a mixq composite function into a :class:`LayerSpec`."""
    composite = str(func.attrs["Composite"])
    op = composite.split(".", 1)[1]
    body = _Body(func)
    in_dims = _nhwc(_shape(func.params[0]))
    out_dims = _nhwc(_shape(func.body.body) if hasattr(func.body, "body") else [int(d) for d in func.ret_ty.shape])
    act = {"act_min": int(_attr(func, "mixq.activation_min", -128)),
           "act_max": int(_attr(func, "mixq.activation_max", 127))}
    bits = _bits(func, op)
    comment = f"{composite}: {_attr(func, 'mixq.tensor_name', _attr(func, 'mixq.output', symbol))}"

    if op in ("conv2d", "depthwise_conv2d"):
        (conv,) = body.find("relax.nn.conv2d")
        w = body.const(conv.args[1])
        if w is None:
            raise MixqError(f"{symbol}: weights are not constant")
        layout = str(conv.attrs.kernel_layout)
        w_ohwi = np.transpose(w, [layout.index(c) for c in "OHWI"])
        cout, kh, kw, _ = w_ohwi.shape
        top, left = int(conv.attrs.padding[0]), int(conv.attrs.padding[1])
        params = {"input_zp": int(_attr(func, "mixq.input_zero_point")),
                  "output_zp": int(_attr(func, "mixq.output_zero_point")),
                  "stride_h": int(conv.attrs.strides[0]), "stride_w": int(conv.attrs.strides[1]),
                  "pad_h": top, "pad_w": left,
                  "dilation_h": int(conv.attrs.dilation[0]), "dilation_w": int(conv.attrs.dilation[1]),
                  "ch_mult": 1, **act}
        mult, shift = _conv_multipliers(func, cout)
        if op == "depthwise_conv2d":
            filt = np.transpose(w_ohwi, (3, 1, 2, 0))  # [1, kh, kw, C*mult]
            params["ch_mult"] = cout // in_dims[3]
            return LayerSpec(symbol, "depthwise", bits, in_dims, out_dims, params, (1, kh, kw, cout),
                             pack_depthwise_weights(filt, bits[1]), _bias(body), mult, shift, comment)
        pointwise = (kh, kw) == (1, 1) and (params["stride_h"], params["stride_w"]) == (1, 1) and top == left == 0
        return LayerSpec(symbol, "pointwise" if pointwise else "conv2d", bits, in_dims, out_dims, params,
                         (cout, kh, kw, int(w_ohwi.shape[3])), pack_weights(w_ohwi, bits[1]), _bias(body), mult,
                         shift, comment)

    if op == "fully_connected":
        (mm,) = body.find("relax.matmul")
        wt = body.const(mm.args[1])
        if wt is None:
            raise MixqError(f"{symbol}: weights are not constant")
        w = np.ascontiguousarray(wt.T)  # [Cout, K]
        cout, k = w.shape
        w_scale = np.asarray(_attr(func, "mixq.weight_scale"), dtype=np.float64)
        if w_scale.size > 1:
            mult, shift = _conv_multipliers(func, cout)
        else:  # per tensor: the product in float32, then / s_out in double (TFLite)
            s_in, s_out = np.float32(_attr(func, "mixq.input_scale")), np.float64(_attr(func, "mixq.output_scale"))
            m, s = quantize_multiplier(float(np.float64(np.float32(s_in * np.float32(w_scale[0]))) / s_out))
            mult, shift = np.full(cout, m, np.int32), np.full(cout, s, np.int32)
        params = {"input_zp": int(_attr(func, "mixq.input_zero_point")),
                  "output_zp": int(_attr(func, "mixq.output_zero_point")), **act}
        return LayerSpec(symbol, "fully_connected", bits, (in_dims[0], 1, 1, k), (out_dims[0], 1, 1, cout), params,
                         (cout, 1, 1, k), pack_weights(w, bits[1]), _bias(body), mult, shift, comment)

    if op == "add":
        p = add_params(_attr(func, "mixq.input_scale"), _attr(func, "mixq.input_b_scale"),
                       _attr(func, "mixq.output_scale"))
        if len(func.params) != 2 or _shape(func.params[0]) != _shape(func.params[1]):
            raise MixqError(f"{symbol}: the add kernel takes two runtime inputs of the same shape "
                            "(no constant operand, no broadcasting)")
        params = {"in1_zp": int(_attr(func, "mixq.input_zero_point")), "in1_mult": p.x1_mult,
                  "in1_shift": p.x1_shift, "in2_zp": int(_attr(func, "mixq.input_b_zero_point")),
                  "in2_mult": p.x2_mult, "in2_shift": p.x2_shift, "left_shift": p.left_shift,
                  "output_zp": int(_attr(func, "mixq.output_zero_point")), "out_mult": p.out_mult,
                  "out_shift": p.out_shift, **act}
        return LayerSpec(symbol, "add", bits, in_dims, out_dims, params, comment=comment)

    if op == "avg_pool2d":
        (pool,) = body.find("relax.nn.avg_pool2d")
        same = (_attr(func, "mixq.input_scale") is None
                or (_attr(func, "mixq.input_scale") == _attr(func, "mixq.output_scale")
                    and _attr(func, "mixq.input_zero_point") == _attr(func, "mixq.output_zero_point")))
        if same:  # TFLite's int8 pooling: average of the raw values, no requantization
            quant = {"input_zp": 0, "output_zp": 0, "multiplier": 0, "shift": 0}
        else:
            m, s = quantize_multiplier(float(_attr(func, "mixq.input_scale")) / float(_attr(func, "mixq.output_scale")))
            quant = {"input_zp": int(_attr(func, "mixq.input_zero_point")),
                     "output_zp": int(_attr(func, "mixq.output_zero_point")), "multiplier": m, "shift": s}
        params = {"stride_h": int(pool.attrs.strides[0]), "stride_w": int(pool.attrs.strides[1]),
                  "pad_h": int(pool.attrs.padding[0]), "pad_w": int(pool.attrs.padding[1]),
                  "filter_h": int(pool.attrs.pool_size[0]), "filter_w": int(pool.attrs.pool_size[1]), **quant, **act}
        return LayerSpec(symbol, "avgpool", bits, in_dims, out_dims, params, comment=comment)

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
