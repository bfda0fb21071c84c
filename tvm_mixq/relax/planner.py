"""The interface between the mixq passes and the algorithms that make the decisions.

Each mixq pass (:mod:`tvm_mixq.relax.passes`) reads the layers of a partitioned module
(:func:`layers`), asks a :class:`MixqPlanner` for its decision, and writes the answer back as
function attributes of the composite functions (:func:`apply`), where ``mod.script()`` shows
them and the code generators read them. The algorithms themselves (calibration, patch plans,
VDPC outlier patches, VDQS bitwidth search, channel splits, the memory planner) belong to
:mod:`tvm_mixq.quant` and :mod:`tvm_mixq.schedule`; plug them in by subclassing
:class:`MixqPlanner` and passing the instance to :func:`tvm_mixq.pipeline`.

:class:`MixqPlanner` itself is the stand-in that keeps every layer int8, unpatched and unsplit
unless the options say otherwise explicitly (``mixq.patch_grid=NxM``, ``mixq.channel_split=N``),
and measures peak SRAM as a plain liveness sum.

Attributes (all prefixed ``mixq.``) of a composite function after the whole pipeline:

=====================  =======================================================================
``op``                 conv2d, depthwise_conv2d, fully_connected, add, avg_pool2d
``output``             Relax variable name of the layer's output (``t12``)
``tensor_index``       index of the output tensor in the project graph (-1 if unknown)
``op_index``           index of the op in the project graph (-1 if unknown)
``input_scale`` ...    quantization parameters (see :mod:`tvm_mixq.relax.patterns`)
``calib_min/max``      calibrated float range of the output        (calibrate)
``patch_grid``         [rows, cols] when the layer runs patch by patch (patch_plan)
``outlier_patches``    indices of patches holding outliers (stay 8-bit) (vdpc)
``in_bits/w_bits/out_bits``  bitwidths of input, weights, output    (vdqs)
``channel_split``      number of channel slices (1 = whole)         (channel_split)
``output_bytes``       bytes of the output at its bitwidth           (memory_plan)
=====================  =======================================================================

Module attributes: ``mixq.peak_sram_bytes`` (memory_plan).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import tvm
from tvm import relax

from ..graph import Graph
from ..options import MixqOptions

log = logging.getLogger(__name__)

COMPOSITE = "Composite"
CODEGEN = "Codegen"
LAYER_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d")

AttrValue = Any  # int, float, bool, str, or a list of those


@dataclass
class Layer:
    """What the planners see of one composite function (one kernel call)."""

    name: str  # global function name, e.g. "mixq_conv2d_t12"
    op: str  # "conv2d", ...
    output: str  # Relax variable of the output in main ("t12")
    tensor_index: int  # graph tensor of the output, -1 if unknown
    op_index: int  # graph op, -1 if unknown
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    output_dtype: str
    attrs: dict[str, AttrValue]  # the function's mixq.* attributes, as Python values

    def attr(self, key: str, default: AttrValue = None) -> AttrValue:
        return self.attrs.get(key if key.startswith("mixq.") else f"mixq.{key}", default)

    @property
    def out_channels(self) -> int:
        return int(self.output_shape[-1])


@dataclass
class Annotations:
    """A planner's answer: attributes per layer (by function name) and for the module."""

    layers: dict[str, dict[str, AttrValue]] = field(default_factory=dict)
    module: dict[str, AttrValue] = field(default_factory=dict)

    def set(self, layer: str, key: str, value: Optional[AttrValue]) -> None:
        """Set an attribute of a layer (``None``: remove it, when an earlier stage set it)."""
        self.layers.setdefault(layer, {})[key if key.startswith("mixq.") else f"mixq.{key}"] = value

    def __bool__(self) -> bool:
        return bool(self.module) or any(self.layers.values())


@dataclass
class PlanContext:
    """Everything a planner may read."""

    mod: tvm.IRModule
    options: MixqOptions
    layers: list[Layer]
    graph: Optional[Graph] = None
    calibration: Optional[Mapping[str, np.ndarray]] = None  # model inputs: input_0, ... (leading batch axis)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


class MixqPlanner:
    """Decisions behind the mixq passes; the base class is the int8 stand-in.

    Each method returns :class:`Annotations`; an empty answer leaves the module unchanged.
    A planner instance lives through one pipeline run, so a subclass may keep what one stage
    computed (calibration statistics, say) for the next.
    """

    def calibrate(self, ctx: PlanContext) -> Annotations:
        """Float range of each layer's output. Stand-in: the range its quantization can hold."""
        ann = Annotations()
        for layer in ctx.layers:
            scale, zp = layer.attr("output_scale"), layer.attr("output_zero_point")
            lo, hi = layer.attr("activation_min"), layer.attr("activation_max")
            if scale is None or zp is None or lo is None or hi is None:
                continue
            ann.set(layer.name, "calib_min", float(scale) * (int(lo) - int(zp)))
            ann.set(layer.name, "calib_max", float(scale) * (int(hi) - int(zp)))
        return ann

    def plan_patches(self, ctx: PlanContext) -> Annotations:
        """Patch grid of the layers of the patch stage. Stand-in: only an explicit ``NxM`` grid,
        applied from the first layer to ``mixq.patch_stage_end`` (``auto``: the layers whose
        output is at least as large, spatially, as the grid)."""
        ann = Annotations()
        grid = ctx.options.patch_grid
        if not isinstance(grid, tuple):
            return ann
        for layer in stage_layers(ctx.layers, ctx.options.patch_stage_end, grid):
            ann.set(layer.name, "patch_grid", [grid[0], grid[1]])
        return ann

    def classify_patches(self, ctx: PlanContext) -> Annotations:
        """VDPC: patches whose values hold outliers. Stand-in: none (no statistics)."""
        ann = Annotations()
        for layer in ctx.layers:
            if layer.attr("patch_grid") is not None:
                ann.set(layer.name, "outlier_patches", [])
        return ann

    def assign_bitwidths(self, ctx: PlanContext) -> Annotations:
        """VDQS: bitwidths of every layer. Stand-in: all 8-bit."""
        ann = Annotations()
        for layer in ctx.layers:
            for key in ("in_bits", "w_bits", "out_bits"):
                if key == "w_bits" and layer.attr("weight_scale") is None:
                    continue
                ann.set(layer.name, key, 8)
        return ann

    def split_channels(self, ctx: PlanContext) -> Annotations:
        """Channel slices per layer. Stand-in: an explicit ``mixq.channel_split=N`` splits the
        depthwise layers whose channel count N divides; everything else runs whole (1)."""
        ann = Annotations()
        slices = ctx.options.channel_split
        for layer in ctx.layers:
            n = 1
            if isinstance(slices, int) and layer.op == "depthwise_conv2d" and layer.out_channels % slices == 0:
                n = slices
            ann.set(layer.name, "channel_split", n)
        return ann

    def plan_memory(self, ctx: PlanContext) -> Annotations:
        """Activation memory. Stand-in: bytes per layer output and the peak of a liveness sum
        over ``main`` (no in-place reuse, no patches)."""
        ann = Annotations()
        for layer in ctx.layers:
            bits = int(layer.attr("out_bits", 8))
            ann.set(layer.name, "output_bytes", packed_bytes(layer.output_shape, bits))
        ann.module["mixq.peak_sram_bytes"] = liveness_peak_bytes(ctx.mod, ctx.layers)
        return ann


# -- reading and writing a partitioned module --------------------------------------------------------


def packed_bytes(shape: tuple[int, ...], bits: int) -> int:
    return (int(np.prod(shape, dtype=np.int64)) * bits + 7) // 8


def _python(value: Any) -> AttrValue:
    """TVM attribute value -> plain Python."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value"):
        return value.value
    try:
        return [_python(v) for v in value]
    except TypeError:
        return str(value)


def _shape(ty: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in ty.shape)


def inner_composite(func: relax.Function) -> Optional[relax.Function]:
    """The mixq composite of a global function: itself, or the local composite of a function
    wrapped for the external codegen (``Codegen = "mixq"``); None for anything else."""
    if not isinstance(func, relax.Function) or func.attrs is None:
        return None
    if COMPOSITE in func.attrs:
        return func if str(func.attrs[COMPOSITE]).startswith("mixq.") else None
    if CODEGEN in func.attrs and str(func.attrs[CODEGEN]) == "mixq":
        for block in func.body.blocks:
            for binding in block.bindings:
                if isinstance(binding.value, relax.Function):
                    return inner_composite(binding.value)
    return None


def composite_functions(mod: tvm.IRModule) -> dict[str, relax.Function]:
    """Global name -> mixq layer function (a composite, or its codegen wrapper)."""
    return {gv.name_hint: func for gv, func in mod.functions_items() if inner_composite(func) is not None}


def layer_attrs(func: relax.Function) -> dict[str, AttrValue]:
    """The ``mixq.*`` attributes of a layer function as Python values (a codegen wrapper's own
    attributes over those of its composite)."""
    inner = inner_composite(func)
    attrs: dict[str, AttrValue] = {}
    for source in (inner, func):
        if source is not None and source.attrs is not None:
            attrs.update({str(k): _python(v) for k, v in source.attrs.items() if str(k).startswith("mixq.")})
    return attrs


def layers(mod: tvm.IRModule) -> list[Layer]:
    """The composite calls of ``main``, in execution order."""
    comps = composite_functions(mod)
    if not comps or "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
        return []
    result = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if not isinstance(value, relax.Call) or not isinstance(value.op, tvm.ir.GlobalVar):
                continue
            name = value.op.name_hint
            func = comps.get(name)
            if func is None:
                continue
            attrs = layer_attrs(func)
            result.append(Layer(
                name=name,
                op=str(attrs.get("mixq.op", str(inner_composite(func).attrs[COMPOSITE]).split(".", 1)[1])),
                output=str(attrs.get("mixq.output", binding.var.name)),
                tensor_index=int(attrs.get("mixq.tensor_index", -1)),
                op_index=int(attrs.get("mixq.op_index", -1)),
                input_shapes=[_shape(p.ty) for p in func.params],
                output_shape=_shape(func.ret_ty),
                output_dtype=str(func.ret_ty.dtype),
                attrs=attrs,
            ))
    return result


def apply(mod: tvm.IRModule, annotations: Annotations) -> tvm.IRModule:
    """Write a planner's answer into the module; an empty answer returns ``mod`` itself."""
    if not annotations:
        return mod
    comps = composite_functions(mod)
    unknown = [name for name in annotations.layers if name not in comps]
    if unknown:
        raise ValueError(f"annotations for unknown layers: {', '.join(unknown)}")
    mod = mod.clone() if hasattr(mod, "clone") else tvm.IRModule(mod.functions, attrs=mod.attrs)
    for name, attrs in annotations.layers.items():
        if not attrs:
            continue
        gv = mod.get_global_var(name)
        func = mod[gv]
        kept = {k: v for k, v in attrs.items() if v is not None}
        if kept:
            func = func.with_attrs(kept) if hasattr(func, "with_attrs") else _with_attrs(func, kept)
        for key in (k for k, v in attrs.items() if v is None):
            if func.attrs is not None and key in func.attrs:
                func = func.without_attr(key)
        mod[gv] = func
    for key, value in annotations.module.items():
        mod = mod.with_attr(key, value)
    log.debug("annotated %d layer(s), %d module attribute(s)", len(annotations.layers), len(annotations.module))
    return mod


def _with_attrs(func: relax.Function, attrs: Mapping[str, AttrValue]) -> relax.Function:
    for key, value in attrs.items():
        func = func.with_attr(key, value)
    return func


def stage_layers(all_layers: list[Layer], stage_end: Any, grid: tuple[int, int]) -> list[Layer]:
    """Layers of the patch stage: from the first layer to ``stage_end`` (an op index, a tensor or
    Relax variable name, or ``"auto"``: the leading layers whose output holds at least ``grid``
    rows and columns)."""
    stage: list[Layer] = []
    for layer in all_layers:
        if stage_end == "auto":
            if len(layer.output_shape) != 4 or layer.output_shape[1] < grid[0] or layer.output_shape[2] < grid[1]:
                break
            stage.append(layer)
            continue
        stage.append(layer)
        if isinstance(stage_end, int) and layer.op_index >= stage_end:
            break
        if isinstance(stage_end, str) and stage_end in (layer.output, layer.attr("tensor_name")):
            break
    else:
        if stage_end != "auto":
            from ..options import OptionError

            raise OptionError(f"mixq.patch_stage_end={stage_end!r} names no layer of the model")
    return stage


def liveness_peak_bytes(mod: tvm.IRModule, layer_list: list[Layer]) -> int:
    """Peak of the sum of live integer activations in ``main``: each tensor live from its
    definition to its last use (model inputs from the start, outputs to the end), at the
    bitwidth its producing layer planned."""
    main = mod["main"]
    out_bits = {layer.name: int(layer.attr("out_bits", 8)) for layer in layer_list}
    sizes: dict[int, int] = {}  # variable (by identity) -> bytes
    live: set[int] = set()
    for param in main.params:
        if isinstance(param.ty, relax.TensorType) and param.ty.shape is not None:
            sizes[param.id_] = packed_bytes(_shape(param.ty), 8)
            live.add(param.id_)
    steps: list[tuple[int, list[int]]] = []
    for block in main.body.blocks:
        for binding in block.bindings:
            var, value = binding.var, binding.value
            steps.append((var.id_, [v.id_ for v in relax.analysis.free_vars(value)]))
            if isinstance(value, relax.Var):  # an alias holds no memory of its own
                continue
            ty = var.ty
            if isinstance(ty, relax.TensorType) and ty.shape is not None and str(ty.dtype) in ("int8", "uint8"):
                callee = value.op.name_hint if isinstance(value, relax.Call) and isinstance(
                    value.op, tvm.ir.GlobalVar) else ""
                sizes[var.id_] = packed_bytes(_shape(ty), out_bits.get(callee, 8))
    last_use: dict[int, int] = {}
    for step, (_, used) in enumerate(steps):
        for vid in used:
            last_use[vid] = step
    final = len(steps)
    for vid in relax.analysis.free_vars(main.body.body) if hasattr(main.body, "body") else []:
        last_use[vid.id_] = final
    peak = sum(sizes[v] for v in live)
    for step, (vid, _) in enumerate(steps):
        if vid in sizes:
            live.add(vid)
        peak = max(peak, sum(sizes[v] for v in live))
        live = {v for v in live if last_use.get(v, -1) > step}
    return int(peak)
