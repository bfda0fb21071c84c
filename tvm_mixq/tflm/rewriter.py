"""Rewrite an int8 graph for TFLite Micro: planned sub-byte layers become MIXQ custom ops.

Input: the int8 :class:`~tvm_mixq.graph.Graph` of a model, a
:class:`~tvm_mixq.quant.precision.PrecisionAssignment` (feature-map and weight bitwidths) and the
calibrated quantization of every sub-byte feature map. Output (:class:`ConversionResult`): the
*planned graph* (:func:`tvm_mixq.quant.requantize.apply_assignment`: unpacked values, the Python
reference of the plan) and the *converted graph* that :func:`tvm_mixq.tflm.writer.write_tflite`
turns into the ``.tflite`` TFLM runs. The converted model computes exactly what the reference
interpreter computes on the planned graph.

What the rewriter does
    * An op of :data:`MIXQ_KINDS` that reads or writes a sub-byte activation, or has sub-byte
      weights, becomes its MIXQ custom op (``MIXQ_CONV_2D``, ...) with flexbuffer options
      (:mod:`.custom_options`), inputs ``[x, packed weights, bias, requant]`` for the weighted ops.
      Every other op stays the builtin op of the int8 model.
    * Weights are packed into the kernel layout (:func:`tvm_mixq.kernellib.pack_weights`, plain
      packing for depthwise) and stored as a UINT8 ``[bytes]`` constant; per-channel multipliers
      and shifts go into a constant INT32 ``[2, C_out]`` tensor so that they stay in flash (the
      builtin kernels copy theirs into the arena).
    * A sub-byte activation is declared UINT8 with the 1-D shape ``[packed bytes]`` and its
      (unsigned) scale and zero point; its logical NHWC shape and bitwidth are in the options of
      the MIXQ ops that read and write it. 8-bit activations keep their int8 type and shape, so
      MIXQ and builtin ops exchange them directly.

What stays 8-bit, with a logged note
    The model's inputs and outputs; every tensor an op without a MIXQ kernel reads or writes
    (RESHAPE, SOFTMAX, ...); tensors and weights of an op whose attributes the kernels do not
    cover (a fused activation other than NONE/RELU/RELU6/RELU_N1_TO_1, broadcasting ADD, signed
    sub-byte activations, non-constant weights). The assignment is lowered accordingly and the
    planned graph recomputed until it is stable, so the reference always describes what runs.
    Outlier patches of a patch-based plan do not apply to layer-by-layer TFLM and are dropped.

Target-dependent: on cores with the DSP extension (:data:`DSP_TARGETS`) the kernel library's
packed W4A4 convolution re-spaces the 4-bit weights into scratch memory, ``C_out x K`` bytes
taken from TFLM's arena at every call (:func:`respaced_weight_bytes`). Where that exceeds
``respace_limit`` bytes the layer's weights go back to 8 bits (the A4W8 path needs a few hundred
bytes), so the arena the plan saves is not spent on scratch; measured on VWW-96 (Cortex-M7, QEMU):
arena head 75,520 B with W4A4 everywhere, 37,200 B with A4W8, at equal instruction counts.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np

from ..errors import MixqError
from ..graph import Graph, Op, QuantParams, Tensor
from ..kernellib.layout import pack_depthwise_weights, pack_weights, weight_row_len
from ..quant.precision import PrecisionAssignment
from ..quant.requantize import apply_assignment
from ..reference import lowering
from ..reference.subbyte import packed_size
from . import custom_options as co
from .arena import tflm_arena_estimate
from .writer import CustomAttrs, write_tflite

log = logging.getLogger(__name__)

#: Builtin op -> the MIXQ custom op that replaces it.
MIXQ_KINDS: dict[str, str] = {
    "CONV_2D": co.MIXQ_CONV_2D,
    "DEPTHWISE_CONV_2D": co.MIXQ_DEPTHWISE_CONV_2D,
    "FULLY_CONNECTED": co.MIXQ_FULLY_CONNECTED,
    "ADD": co.MIXQ_ADD,
    "AVERAGE_POOL_2D": co.MIXQ_AVERAGE_POOL_2D,
}

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

#: Cores whose kernels take the packed-SIMD paths.
DSP_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
#: Largest re-spaced W4A4 weight scratch accepted on a DSP core (bytes).
DEFAULT_RESPACE_LIMIT = 1024
#: Output pixels from which the kernel library's DSP convolution takes the packed path.
PACKED_MIN_PIXELS = 8
_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

#: A bitwidth assignment as the Python API accepts it: a PrecisionAssignment, or a plain
#: ``{tensor index or name: bits}`` of feature maps.
AssignmentLike = Union[PrecisionAssignment, Mapping[Union[int, str], int]]


@dataclass
class MixqOpInfo:
    """One op that became a MIXQ custom op."""

    op: int
    kind: str
    custom: str
    in_bits: int
    w_bits: int
    out_bits: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ConversionResult:
    """What :func:`rewrite` produced (see the module docstring)."""

    converted: Graph
    planned: Graph
    assignment: PrecisionAssignment
    mixq_ops: list[MixqOpInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tensor_map: dict[int, int] = field(default_factory=dict)  # planned tensor -> converted tensor
    #: TFLM's activation arena replayed offline (:mod:`.arena`), kernel scratch not included.
    arena_estimate_original: int = 0
    arena_estimate_converted: int = 0

    def tflite(self) -> bytes:
        """The converted model as ``.tflite`` bytes."""
        return write_tflite(self.converted, description="tvm_mixq tflm convert")

    def summary(self) -> str:
        n_sub = sum(1 for b in self.assignment.act_bits.values() if b < 8)
        lines = [f"{len(self.mixq_ops)} of {len(self.planned.ops)} ops -> MIXQ custom ops, "
                 f"{n_sub} sub-byte feature maps, "
                 f"{sum(1 for b in self.assignment.weight_bits.values() if b < 8)} sub-byte weight tensors"]
        lines.append(f"TFLM activation arena (replayed, without kernel scratch): {self.arena_estimate_original:,} B"
                     f" -> {self.arena_estimate_converted:,} B")
        lines += [f"  op {m.op:3d} {m.kind:18s} -> {m.custom} (in {m.in_bits}, w {m.w_bits}, out {m.out_bits})"
                  for m in self.mixq_ops]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Which ops can run as MIXQ ops.


def _activation_inputs(graph: Graph, op: Op) -> list[int]:
    if op.kind in _WEIGHTED:
        return [op.inputs[0]]
    return [t for t in op.inputs if t >= 0 and not graph.tensors[t].is_const]


def _activation_tensors(graph: Graph, op: Op) -> list[int]:
    return _activation_inputs(graph, op) + list(op.outputs)


def _is_lowered(graph: Graph, op: Op) -> bool:
    if any(graph.tensors[t].bits < 8 for t in _activation_tensors(graph, op)):
        return True
    return op.kind in _WEIGHTED and graph.tensors[op.inputs[1]].bits < 8


def unconvertible_reason(graph: Graph, op: Op) -> Optional[str]:
    """Why ``op`` (of a planned graph) cannot run as a MIXQ op, or None when it can."""
    if op.kind not in MIXQ_KINDS:
        return f"no MIXQ kernel for {op.kind}"
    for t_index in _activation_tensors(graph, op):
        t = graph.tensors[t_index]
        if t.dtype != "int8" or t.quant is None or t.quant.per_channel:
            return f"activation '{t.name}' is not a per-tensor quantized int8 tensor"
        if t.bits < 8 and t.signed:
            return f"activation '{t.name}' is signed {t.bits}-bit; the kernels take unsigned sub-byte activations"
    activation = getattr(op.attrs, "activation", "NONE")
    if activation not in _ACTIVATIONS:
        return f"fused activation {activation}"
    if op.kind in _WEIGHTED:
        w = graph.tensors[op.inputs[1]]
        if not w.is_const or w.quant is None:
            return "weights are not a quantized constant"
        if np.any(np.asarray(w.quant.zero_point) != 0):
            return "weights have a non-zero zero point"
        if len(op.inputs) > 2 and op.inputs[2] >= 0 and not graph.tensors[op.inputs[2]].is_const:
            return "bias is not a constant"
        if op.kind != "FULLY_CONNECTED" and len(graph.tensors[op.inputs[0]].shape) != 4:
            return "input is not NHWC"
    if op.kind == "ADD":
        shapes = {tuple(graph.tensors[t].shape) for t in op.inputs + op.outputs}
        if len(shapes) != 1 or len(op.inputs) != 2:
            return "ADD with broadcasting"
    if op.kind == "AVERAGE_POOL_2D" and len(graph.tensors[op.inputs[0]].shape) != 4:
        return "input is not NHWC"
    return None


def respaced_weight_bytes(graph: Graph, op: Op) -> int:
    """Scratch bytes of the W4A4 weights the DSP convolution re-spaces (0 when it does not).

    The kernel library takes the packed path for W4A4 convolutions with at least
    :data:`PACKED_MIN_PIXELS` output pixels and re-spaces ``C_out`` (rounded up to even) rows of
    the padded row length (``mixq_conv_dsp_scratch`` in kernels/src/mixq_conv_dsp.h).
    """
    if op.kind != "CONV_2D":
        return 0
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if x.bits != 4 or w.bits != 4 or y.size // y.shape[-1] < PACKED_MIN_PIXELS:
        return 0
    cout = w.shape[0]
    k = int(np.prod(w.shape[1:]))
    return ((cout + 1) & ~1) * weight_row_len(k, 4)


def normalize_assignment(graph: Graph, assignment: AssignmentLike) -> PrecisionAssignment:
    """A :class:`PrecisionAssignment` from an assignment or a ``{tensor index or name: bits}``."""
    if isinstance(assignment, PrecisionAssignment):
        return assignment.copy()
    by_name = {t.name: t.index for t in graph.tensors}
    act_bits: dict[int, int] = {}
    for key, bits in dict(assignment).items():
        if isinstance(key, str):
            if key not in by_name:
                raise MixqError(f"no tensor named {key!r} in {graph.name}")
            index = by_name[key]
        else:
            index = int(key)
        act_bits[index] = int(bits)
    return PrecisionAssignment(act_bits=act_bits)


def settle_assignment(graph: Graph, assignment: AssignmentLike,
                      act_quant: Mapping[int, QuantParams],
                      float_weights: Optional[Mapping[int, np.ndarray]] = None,
                      respace_limit: Optional[int] = None,
                      hessians: Optional[Mapping[int, Any]] = None,
                      ) -> tuple[PrecisionAssignment, Graph, list[str]]:
    """Lower ``assignment`` until every op that touches a sub-byte tensor can be a MIXQ op, and
    (``respace_limit`` set) no W4A4 layer re-spaces more weight bytes than that into scratch.

    Returns the effective assignment, its planned graph and one note per change.
    """
    a = normalize_assignment(graph, assignment)
    notes: list[str] = []
    if a.outlier_patches:
        notes.append(f"{len(a.outlier_patches)} outlier patches dropped: TFLM runs layer by layer")
        a.outlier_patches, a.outlier_tensors = [], []
    for t in list(graph.inputs) + list(graph.outputs):
        if a.act_bits.get(t, 8) < 8:
            notes.append(f"tensor {graph.tensors[t].name} stays 8-bit: it is a model input or output")
            a.act_bits.pop(t)
    while True:
        planned = apply_assignment(graph, a, act_quant, float_weights, hessians=hessians)
        changed = False
        for op in planned.ops:
            if not _is_lowered(planned, op):
                continue
            reason = unconvertible_reason(planned, op)
            if reason is None:
                continue
            for t in _activation_tensors(planned, op):
                if a.act_bits.get(t, 8) < 8:
                    a.act_bits.pop(t)
                    changed = True
            if a.weight_bits.get(op.index, 8) < 8:
                a.weight_bits.pop(op.index)
                changed = True
            notes.append(f"op {op.index} {op.kind} stays builtin int8 ({reason}); its tensors back to 8 bits")
        if respace_limit is not None:
            for op in planned.ops:
                respaced = respaced_weight_bytes(planned, op)
                if respaced > respace_limit and a.weight_bits.get(op.index, 8) == 4:
                    a.weight_bits.pop(op.index)
                    changed = True
                    notes.append(f"op {op.index} {op.kind} weights back to 8 bits: the packed W4A4 kernel would "
                                 f"re-space {respaced} B of weights into the arena")
        if not changed:
            return a, planned, notes


# ---------------------------------------------------------------------------------------------
# Options of one MIXQ op: the kernel parameters of :func:`tvm_mixq.reference.lowering.lower_op`,
# the very numbers the reference interpreter applies.


def _requant(multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """INT32 [2, C]: per-channel multipliers and shifts."""
    return np.stack([np.asarray(multiplier, np.int64), np.asarray(shift, np.int64)]).astype(np.int32)


def _weighted_options(g: Graph, op: Op) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(options, packed weights, requant) of a conv / depthwise / fully connected op."""
    x, w, o = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if op.kind == "FULLY_CONNECTED":
        fc = lowering.lower_fully_connected(g, op)
        opts: dict[str, Any] = {"in_bits": x.bits, "w_bits": w.bits, "out_bits": o.bits, "input_zp": fc.input_zp,
                                "output_zp": fc.output_zp, "act_min": fc.act_min, "act_max": fc.act_max}
        cout, depth = fc.channels, fc.depth
        n = x.size // depth
        opts.update(in_shape=[n, 1, 1, depth], filter_shape=[cout, 1, 1, depth], out_shape=[n, 1, 1, cout])
        return opts, pack_weights(fc.weights, w.bits), _requant(fc.multiplier, fc.shift)
    conv = lowering.lower_conv(g, op)
    opts = {"in_bits": x.bits, "w_bits": w.bits, "out_bits": o.bits, "input_zp": conv.input_zp,
            "output_zp": conv.output_zp, "act_min": conv.act_min, "act_max": conv.act_max}
    if conv.depthwise:
        packed = pack_depthwise_weights(conv.weights, w.bits)
        opts["depth_multiplier"] = conv.depth_multiplier
    else:
        packed = pack_weights(conv.weights, w.bits)
    opts.update(in_shape=list(x.shape), filter_shape=list(conv.weights.shape), out_shape=list(o.shape),
                stride=list(conv.stride), padding=[conv.padding[0], conv.padding[2]], dilation=list(conv.dilation))
    return opts, packed, _requant(conv.multiplier, conv.shift)


def _add_options(g: Graph, op: Op) -> dict[str, Any]:
    a, b, o = (g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    return {"in1_bits": a.bits, "in2_bits": b.bits, "out_bits": o.bits, "shape": _nhwc(o.shape),
            **lowering.lower_add(g, op).kernel_params()}


def _pool_options(g: Graph, op: Op) -> dict[str, Any]:
    x, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    pool = lowering.lower_pool(g, op)
    return {"in_bits": x.bits, "out_bits": o.bits, "in_shape": list(x.shape), "out_shape": list(o.shape),
            "filter": list(pool.filter), "stride": list(pool.stride), "padding": [pool.padding[0], pool.padding[2]],
            **pool.kernel_requant(), "act_min": pool.act_min, "act_max": pool.act_max}


def _nhwc(shape: tuple[int, ...]) -> list[int]:
    """A shape as [n, h, w, c] (leading ones added)."""
    s = list(shape)
    if len(s) > 4:
        raise MixqError(f"shape {shape} has more than 4 dimensions")
    return [1] * (4 - len(s)) + s


# ---------------------------------------------------------------------------------------------
# Building the converted graph.


class _GraphBuilder:
    """Collects the tensors the converted graph uses, renumbered densely."""

    def __init__(self, planned: Graph) -> None:
        self.planned = planned
        self.tensors: list[Tensor] = []
        self.index: dict[int, int] = {}

    def planned_tensor(self, t: int) -> int:
        """The converted index of planned tensor ``t`` (-1 stays -1)."""
        if t < 0:
            return t
        if t not in self.index:
            src = self.planned.tensors[t]
            new = copy.copy(src)
            new.index = len(self.tensors)
            if src.bits < 8 and not src.is_const:
                new.shape = (packed_size(src.size, src.bits),)
                new.dtype = "uint8"
                new.bits, new.signed = 8, False
            self.tensors.append(new)
            self.index[t] = new.index
        return self.index[t]

    def constant(self, name: str, data: np.ndarray, dtype: str) -> int:
        arr = np.ascontiguousarray(data, dtype=dtype)
        t = Tensor(index=len(self.tensors), name=name, shape=tuple(arr.shape), dtype=dtype, data=arr)
        self.tensors.append(t)
        return t.index


def rewrite(graph: Graph, assignment: AssignmentLike, act_quant: Mapping[int, QuantParams],
            float_weights: Optional[Mapping[int, np.ndarray]] = None, target: Optional[str] = None,
            respace_limit: int = DEFAULT_RESPACE_LIMIT,
            hessians: Optional[Mapping[int, Any]] = None) -> ConversionResult:
    """Convert ``graph`` per ``assignment`` (see the module docstring).

    Parameters
    ----------
    graph : the int8 graph (from :func:`tvm_mixq.reader.read_tflite`); not modified.
    assignment : bitwidths (:class:`PrecisionAssignment`, or ``{tensor index or name: bits}`` of
        feature maps).
    act_quant : calibrated quantization of each sub-byte feature map
        (:func:`tvm_mixq.quant.vdqs.calibrated_act_quant`).
    float_weights : optional float weights per op index to requantize sub-byte weights from.
    target : the core the model will run on (``mixq.target``); on :data:`DSP_TARGETS`, W4A4
        layers whose re-spaced weights exceed ``respace_limit`` bytes keep 8-bit weights.
    hessians : calibration statistics per weighted op (:attr:`Calibration.hessians`) for the
        Hessian-aware rounding of sub-byte weights (``mixq.weight_rounding=hessian``, as the TVM
        path); None rounds to nearest.
    """
    limit = respace_limit if target in DSP_TARGETS else None
    eff, planned, notes = settle_assignment(graph, assignment, act_quant, float_weights, limit, hessians)
    for n in notes:
        log.info("%s", n)
    b = _GraphBuilder(planned)
    new_ops: list[Op] = []
    infos: list[MixqOpInfo] = []
    for op in planned.ops:
        if not _is_lowered(planned, op):
            new_ops.append(Op(len(new_ops), op.kind, [b.planned_tensor(t) for t in op.inputs],
                              [b.planned_tensor(t) for t in op.outputs], copy.copy(op.attrs)))
            continue
        custom = MIXQ_KINDS[op.kind]
        out_t = planned.tensors[op.outputs[0]]
        if op.kind in _WEIGHTED:
            opts, packed, requant = _weighted_options(planned, op)
            w_t = planned.tensors[op.inputs[1]]
            has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
            inputs = [b.planned_tensor(op.inputs[0]),
                      b.constant(f"{w_t.name}/mixq_w{w_t.bits}", packed, "uint8"),
                      b.planned_tensor(op.inputs[2]) if has_bias else -1,
                      b.constant(f"{out_t.name}/mixq_requant", requant, "int32")]
            info = MixqOpInfo(op.index, op.kind, custom, opts["in_bits"], opts["w_bits"], opts["out_bits"])
        elif op.kind == "ADD":
            opts = _add_options(planned, op)
            inputs = [b.planned_tensor(t) for t in op.inputs]
            info = MixqOpInfo(op.index, op.kind, custom, opts["in1_bits"], opts["in2_bits"], opts["out_bits"])
        else:
            opts = _pool_options(planned, op)
            inputs = [b.planned_tensor(op.inputs[0])]
            info = MixqOpInfo(op.index, op.kind, custom, opts["in_bits"], 8, opts["out_bits"])
        new_ops.append(Op(len(new_ops), custom, inputs, [b.planned_tensor(t) for t in op.outputs],
                          CustomAttrs(options=co.encode(custom, opts))))
        infos.append(info)
    converted = Graph(tensors=b.tensors, ops=new_ops, inputs=[b.planned_tensor(t) for t in planned.inputs],
                      outputs=[b.planned_tensor(t) for t in planned.outputs], name=graph.name)
    log.info("%s: %d ops as MIXQ custom ops", graph.name, len(infos))
    return ConversionResult(converted, planned, eff, infos, notes, dict(b.index),
                            tflm_arena_estimate(graph, {}), tflm_arena_estimate(graph, eff.act_bits))
