"""QDQ patterns of the layers the mixq kernels run, and the partitioning that uses them.

Like TVM's BYOC backends (``relax/backend/patterns.py``), the patterns form a table of
``(name, pattern, annotations, check)`` entries, registered with Relax's pattern registry under
the ``mixq`` prefix and applied by ``FuseOpsByPattern``. Each match becomes a composite function
(``Composite = "mixq.conv2d"``, ...). The shapes matched are those of
:mod:`tvm_mixq.relax.importer` and of TVM's own TFLite frontend:

    dequantize(x) --+
    dequantize(W) --+-> conv2d / matmul -> [add dequantize(bias)] -> quantize -> [clip]
    dequantize(a), dequantize(b) -> add -> quantize -> [clip]
    dequantize(x) -> avg_pool2d -> quantize -> [clip]

The weight side may be reshaped (depthwise ``[1,kh,kw,C] -> HWOI``) or transposed (dense),
before or after its dequantize. ``attrs_getter`` turns the matched quantization parameters into
function attributes (``mixq.input_scale``, ``mixq.output_zero_point``, ``mixq.weight_scale``,
``mixq.activation_min``, ...), so they show in ``mod.script()``.
"""
from __future__ import annotations

import atexit

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard
from tvm.relax.transform import PatternCheckContext

from ..reference.ops import activation_bound
from . import config as _config  # noqa: F401  (registers the mixq.* PassContext keys)

PREFIX = "mixq"

#: Composite function attribute names (besides TVM's ``Composite``).
ATTR_OP = "mixq.op"


@dataclass(frozen=True)
class MixqPattern:
    """One row of the pattern table."""

    name: str  # "mixq.conv2d"
    pattern: DFPattern
    annotations: Mapping[str, DFPattern]
    check: Optional[Callable[[PatternCheckContext], bool]]

    def as_tuple(self) -> tuple:
        return (self.name, self.pattern, dict(self.annotations), self.check)


# -- building blocks --------------------------------------------------------------------------------


def _dequantize(data: DFPattern) -> DFPattern:
    return is_op("relax.dequantize")(data, is_const(), is_const())


def _quantize(data: DFPattern) -> DFPattern:
    return is_op("relax.quantize")(data, is_const(), is_const())


def _weight(layout_op: str) -> tuple[DFPattern, DFPattern]:
    """Constant weights, dequantized, with an optional layout op before or after the dequantize.

    Returns the whole weight pattern and its dequantize (annotated for the attributes).
    """
    raw = is_const()
    before = is_op(layout_op)(raw, wildcard()) if layout_op == "relax.reshape" else is_op(layout_op)(raw)
    deq = _dequantize(raw | before)
    after = is_op(layout_op)(deq, wildcard()) if layout_op == "relax.reshape" else is_op(layout_op)(deq)
    return deq | after, deq


def _epilogue(result: DFPattern, annotations: dict[str, DFPattern], with_bias: bool = True) -> DFPattern:
    """[+ dequantized bias] -> [float relu/clip] -> quantize -> [integer clip].

    The fused activation is an integer clip after the quantize (this importer, TVM's frontend
    for convolutions) or a float relu/clip before it (TVM's frontend for ADD). Fills the
    annotations it names.
    """
    if with_bias:
        bias = _dequantize(is_const())
        annotations["bias"] = bias
        result = is_op("relax.add")(result, bias) | result
    float_relu = is_op("relax.nn.relu")(result)
    float_clip = is_op("relax.clip")(result, wildcard(), wildcard())
    quantized = _quantize(float_relu | float_clip | result)
    clipped = is_op("relax.clip")(quantized, wildcard(), wildcard())
    annotations.update(quantize=quantized, clip=clipped, float_relu=float_relu, float_clip=float_clip)
    return clipped | quantized


def _conv_like(op_name: str, weight_layout_op: str) -> tuple[DFPattern, dict[str, DFPattern]]:
    data = _dequantize(wildcard())
    weight, weight_dequantize = _weight(weight_layout_op)
    core = is_op(op_name)(data, weight)
    annotations = {"input": data, "weight": weight_dequantize, "root": core}
    return _epilogue(core, annotations), annotations


def _check_conv(depthwise: bool) -> Callable[[PatternCheckContext], bool]:
    def check(ctx: PatternCheckContext) -> bool:
        conv = ctx.annotated_expr["root"]
        attrs = conv.attrs
        if str(attrs.data_layout) != "NHWC" or str(attrs.out_layout) != "NHWC":
            return False
        groups = int(attrs.groups)
        in_channels = int(conv.args[0].ty.shape[3])
        if depthwise:
            return groups > 1 and groups == in_channels
        return groups == 1

    return check


def _check_matmul(ctx: PatternCheckContext) -> bool:
    mm = ctx.annotated_expr["root"]
    return len(mm.args[0].ty.shape) == 2 and len(mm.args[1].ty.shape) == 2


def _check_pool(ctx: PatternCheckContext) -> bool:
    return str(ctx.annotated_expr["root"].attrs.layout) == "NHWC"


def pattern_table() -> list[MixqPattern]:
    """The mixq pattern table, in priority order (TVM tries earlier entries first)."""
    table: list[MixqPattern] = []
    conv, conv_ann = _conv_like("relax.nn.conv2d", "relax.reshape")
    table.append(MixqPattern("mixq.conv2d", conv, conv_ann, _check_conv(depthwise=False)))
    dw, dw_ann = _conv_like("relax.nn.conv2d", "relax.reshape")
    table.append(MixqPattern("mixq.depthwise_conv2d", dw, dw_ann, _check_conv(depthwise=True)))
    fc, fc_ann = _conv_like("relax.matmul", "relax.permute_dims")
    table.append(MixqPattern("mixq.fully_connected", fc, fc_ann, _check_matmul))

    lhs, rhs = _dequantize(wildcard()), _dequantize(wildcard())
    add = is_op("relax.add")(lhs, rhs)
    add_ann = {"input": lhs, "input_b": rhs, "root": add}
    table.append(MixqPattern("mixq.add", _epilogue_no_bias(add, add_ann), add_ann, None))

    pool_in = _dequantize(wildcard())
    pool = is_op("relax.nn.avg_pool2d")(pool_in)
    pool_ann = {"input": pool_in, "root": pool}
    table.append(MixqPattern("mixq.avg_pool2d", _epilogue_no_bias(pool, pool_ann), pool_ann, _check_pool))
    # TVM's frontend pools the integers: astype(int32) -> avg_pool2d -> astype(int8).
    widened = is_op("relax.astype")(wildcard())
    int_pool = is_op("relax.nn.avg_pool2d")(widened)
    narrowed = is_op("relax.astype")(int_pool)
    table.append(MixqPattern("mixq.avg_pool2d", narrowed, {"root": int_pool, "narrow": narrowed}, _check_pool))
    return table


def _epilogue_no_bias(result: DFPattern, annotations: dict[str, DFPattern]) -> DFPattern:
    return _epilogue(result, annotations, with_bias=False)


# -- attributes of a match --------------------------------------------------------------------------


def _const_values(expr: relax.Expr) -> np.ndarray:
    return expr.value.numpy()


def _scale_zp(call: relax.Call) -> tuple[list[float], list[int]]:
    """Scale and zero point of a dequantize/quantize call, as lists (one entry per channel)."""
    scale = np.atleast_1d(_const_values(call.args[1])).astype(np.float64)
    zp = np.atleast_1d(_const_values(call.args[2])).astype(np.int64)
    return [float(s) for s in scale], [int(z) for z in zp]


def _prim(value: Any) -> float:
    """A clip bound: IntImm/FloatImm (``.value``) or a constant tensor."""
    inner = value.value
    return float(inner.numpy()) if hasattr(inner, "numpy") else float(inner)


def match_attrs(op: str, matched: Mapping[str, relax.Expr]) -> dict[str, Any]:
    """Function attributes of one match: quantization parameters and the fused clamp."""
    attrs: dict[str, Any] = {ATTR_OP: op}
    if "input" not in matched:  # integer-only form (TVM's avg_pool2d): TFLite keeps the quantization
        lo, hi = _INT_RANGES.get(str(matched["narrow"].attrs.dtype), (-128, 127))
        attrs["mixq.activation_min"], attrs["mixq.activation_max"] = lo, hi
        return attrs
    in_scale, in_zp = _scale_zp(matched["input"])
    attrs["mixq.input_scale"] = in_scale[0]
    attrs["mixq.input_zero_point"] = in_zp[0]
    if "input_b" in matched:
        b_scale, b_zp = _scale_zp(matched["input_b"])
        attrs["mixq.input_b_scale"] = b_scale[0]
        attrs["mixq.input_b_zero_point"] = b_zp[0]
    if "weight" in matched:
        w_scale, w_zp = _scale_zp(matched["weight"])
        attrs["mixq.weight_scale"] = w_scale
        attrs["mixq.weight_zero_point"] = w_zp
        attrs["mixq.has_bias"] = "bias" in matched
    out_scale, out_zp = _scale_zp(matched["quantize"])
    attrs["mixq.output_scale"] = out_scale[0]
    attrs["mixq.output_zero_point"] = out_zp[0]
    out_dtype = str(matched["quantize"].attrs.out_dtype)
    lo, hi = _INT_RANGES.get(out_dtype, (-128, 127))
    if "float_relu" in matched:
        lo = max(lo, out_zp[0])
    if "float_clip" in matched:
        clip = matched["float_clip"]
        lo = max(lo, activation_bound(_prim(clip.args[1]), out_scale[0], out_zp[0]))
        hi = min(hi, activation_bound(_prim(clip.args[2]), out_scale[0], out_zp[0]))
    if "clip" in matched:
        clip = matched["clip"]
        lo, hi = max(lo, int(_prim(clip.args[1]))), min(hi, int(_prim(clip.args[2])))
    attrs["mixq.activation_min"] = lo
    attrs["mixq.activation_max"] = hi
    return attrs


_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _is_op(expr: relax.Expr, name: str) -> bool:
    return isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == name


def fusion_patterns() -> list[relax.transform.FusionPattern]:
    """The table as ``FusionPattern`` objects with an ``attrs_getter`` per entry."""
    patterns = []
    for row in pattern_table():
        op = row.name.split(".", 1)[1]
        patterns.append(relax.transform.FusionPattern(
            row.name, row.pattern, dict(row.annotations), row.check,
            lambda matched, op=op: match_attrs(op, matched)))
    return patterns


def register() -> None:
    """Register the table with Relax's pattern registry (``get_patterns_with_prefix("mixq")``)."""
    from tvm.relax.backend.pattern_registry import get_patterns_with_prefix, register_patterns

    if not get_patterns_with_prefix(PREFIX):
        patterns = fusion_patterns()
        register_patterns(patterns)
        # TVM 0.27 removes at exit only the patterns registered as tuples; FusionPattern objects
        # stay in libtvm's static registry and their Python check functions are released after
        # the interpreter is gone (a segfault at exit). Remove ours while Python still runs.
        atexit.register(_remove_patterns, [p.name for p in patterns])


def _remove_patterns(names: list[str]) -> None:
    from tvm.relax.backend import _ffi_api

    _ffi_api.RemovePatterns(names)


def partition_for_mixq(mod: tvm.IRModule, annotate_codegen: bool = False) -> tvm.IRModule:
    """Group every matched layer of ``main`` into a composite function (``FuseOpsByPattern``).

    With ``annotate_codegen`` the composites are further wrapped for the ``relax.ext.mixq``
    external codegen (``Codegen = "mixq"``), as ``RunCodegen`` expects.
    """
    return relax.transform.FuseOpsByPattern(fusion_patterns(), bind_constants=True,
                                            annotate_codegen=annotate_codegen)(mod)
