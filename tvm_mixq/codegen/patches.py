"""The patch stage of a :class:`tvm_mixq.plan.Plan` as generated code.

The stage's ops run once per patch in a table-driven loop: for every op, a constant ``int16`` table
holds one row per patch (:data:`TABLE_FIELDS`): the window it reads of each activation input (in
the coordinates of that input's tile buffer, plus the buffer's width), the explicit padding of the
window (non-zero only at the image border), the output tile's size and its position in the
stage's output tensor. Each op gathers its window into a contiguous buffer
(``mixq_rt_gather``; skipped when the window is always the whole tile), calls its kernel with
the window's dims, the patch's padding and the tile's output dims, and the last op scatters its
tile into the whole stage output (``mixq_rt_scatter``). Intermediate tensors of the stage exist
only as tiles. Numerics are those of :class:`tvm_mixq.schedule.execute.PlanExecutor` (explicit
zero-point padding of the window, then a VALID op).

In the *streamed input* mode the model input is never whole in the arena: each patch's input tile
is read through the ``read`` callback (or gathered from the caller's input buffer).

Per-patch bitwidths (VDPC outlier patches): a patch with ``Patch.bits`` runs the stage's ops with the
quantization of the plan's outlier graph (its inner tensors at 8 bits: other kernel variants, their
own requantization parameters and packed weights). The loop body then holds two sets of layer calls,
chosen by a per-patch flag (``stage_outlier[p]``); both read the same tables and write the same tile,
window and scratch buffers, sized for the larger of the two. The stage output's precision is shared
by all patches (:class:`tvm_mixq.quant.execute.PlanRunner`). Only the first patch stage may have
outlier patches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..graph import Graph
from ..plan import MODE_STREAMED_INPUT, Plan
from ..schedule.patches import WINDOWED_KINDS, read_rect, window_bytes
from .layers import CodegenError, Layer

#: Columns of a stage op's per-patch table.
TABLE_FIELDS = ("in0_y", "in0_x", "in0_h", "in0_w", "in0_src_w", "in1_y", "in1_x", "in1_h", "in1_w", "in1_src_w",
                "pad_top", "pad_bottom", "pad_left", "pad_right", "out_h", "out_w", "out_y", "out_x")
ROW = len(TABLE_FIELDS)

#: Layer templates that can run on a tile, and the op kinds behind them.
PATCH_TEMPLATES = ("conv", "avgpool", "rt_max_pool", "rt_pad", "add", "rt_requantize", "rt_lut")


@dataclass
class StageLayer:
    """Stage facts of one layer (the ``s`` attribute the patch templates read)."""

    table: np.ndarray  # [patches, ROW] int16
    inputs: list[int]  # activation input tensors
    direct: list[bool]  # window always equals the whole source tile: no gather
    channels: list[int]
    bits: list[int]
    window_bytes: list[int]
    out_tile_bytes: int
    writes_split: bool
    src: list[str] = field(default_factory=list)  # C expressions of the source tile buffers
    win: list[str] = field(default_factory=list)  # C expressions of the window buffers
    dst: str = ""
    split: str = ""
    split_w: int = 0
    out_c: int = 0
    out_bits: int = 8
    table_name: str = ""


@dataclass
class StagePlan:
    """What the emitter needs of the patch stage."""

    ops: list[int]
    patches: int
    input_tensor: int
    split_tensor: int
    streamed: bool
    tile_bytes: dict[int, int]  # stage tensor -> tile buffer bytes (input: only when streamed)
    input_tiles: np.ndarray  # [patches, 4] (y, x, h, w) of the input tile, absolute
    layers: dict[int, StageLayer]
    grid: tuple[int, int]
    source: object = None  # the plan's PatchStage
    outlier: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))  # [patches] 1: outlier patch
    outlier_layers: dict[int, StageLayer] = field(default_factory=dict)  # op -> stage facts at the outlier bits

    @property
    def has_outliers(self) -> bool:
        return bool(self.outlier.any())


def _packed(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


def prepare_stages(graph: Graph, plan: Plan, layers: dict[int, Layer],
                   outlier_layers: Optional[dict[int, Layer]] = None) -> list[StagePlan]:
    """Every patch stage of ``plan`` (:attr:`Plan.stages` when the plan has it) for code generation;
    ``outlier_layers``: the first stage's ops prepared on ``plan.outlier_graph`` (outlier patches)."""
    stages = list(getattr(plan, "stages", [plan.patch_stage] if plan.patch_stage is not None else []))
    first_streamed = plan.memory.mode == MODE_STREAMED_INPUT
    outlier_graph = getattr(plan, "outlier_graph", None)
    return [prepare_stage(graph, st, layers, streamed=(i == 0 and first_streamed and
                                                       st.input_tensor in graph.inputs),
                          outlier_graph=outlier_graph if i == 0 else None,
                          outlier_layers=outlier_layers if i == 0 else None)
            for i, st in enumerate(stages)]


def _check_outlier_graph(graph: Graph, st, outlier_graph: Optional[Graph], ops: list[int],
                         outlier_layers: Optional[dict[int, Layer]]) -> None:
    """The outlier graph fits the stage: same ops, every outlier patch's bitwidths are its tensors',
    the stage input and output keep the normal precision, the same layer templates."""
    if outlier_graph is None or outlier_layers is None:
        raise CodegenError("per-patch bitwidths (outlier patches) need the plan's outlier graph and are "
                           "generated in the first patch stage only")
    if len(outlier_graph.ops) != len(graph.ops) or len(outlier_graph.tensors) != len(graph.tensors):
        raise CodegenError("the outlier graph of the plan is not a version of the plan's graph")
    for t in (st.input_tensor, st.split_tensor):
        if outlier_graph.tensors[t].bits != graph.tensors[t].bits:
            raise CodegenError(f"tensor {t} (stage input or output) has another bitwidth in the outlier graph")
    for p in st.patches:
        if not p.bits:
            continue
        for t in p.tensor_tiles:
            if p.bits.get(t, graph.tensors[t].bits) != outlier_graph.tensors[t].bits:
                raise CodegenError(f"patch {p.index}: tensor {t} at {p.bits.get(t, graph.tensors[t].bits)} bits, "
                                   f"{outlier_graph.tensors[t].bits} in the outlier graph")
    for o in ops:
        if outlier_graph.ops[o].kind != graph.ops[o].kind or o not in outlier_layers:
            raise CodegenError(f"op {o} differs in the outlier graph")


def prepare_stage(graph: Graph, st, layers: dict[int, Layer], streamed: bool = False,
                  outlier_graph: Optional[Graph] = None,
                  outlier_layers: Optional[dict[int, Layer]] = None) -> StagePlan:
    """One :class:`tvm_mixq.plan.PatchStage` for code generation (``outlier_graph`` and
    ``outlier_layers``: the quantization and prepared layers of its outlier patches, if any).

    Raises
    ------
    CodegenError
        An op of the stage that cannot run on tiles, per-patch bitwidths without an outlier graph
        that matches them, or a batch > 1.
    """
    ops = [o for o in st.ops if any(ot.op == o for ot in st.patches[0].op_tiles)]
    flags = np.array([1 if p.bits else 0 for p in st.patches], dtype=np.uint8)
    if flags.any():
        _check_outlier_graph(graph, st, outlier_graph, ops, outlier_layers)
    for o in ops:
        layer = layers[o]
        if layer.template not in PATCH_TEMPLATES:
            raise CodegenError(f"op {o} ({graph.ops[o].kind}) cannot run patch by patch in generated code")
        if flags.any() and outlier_layers[o].template != layer.template:
            raise CodegenError(f"op {o} ({graph.ops[o].kind}) runs as {outlier_layers[o].template} in outlier "
                               f"patches, {layer.template} in the others")
        if graph.tensors[graph.ops[o].outputs[0]].shape[0] != 1:
            raise CodegenError("the patch stage needs batch 1")
    stage_tensors = {t for p in st.patches for t in p.tensor_tiles}
    tile_bytes: dict[int, int] = {}
    for t in stage_tensors:
        if t == st.input_tensor and not streamed:
            continue
        c = graph.tensors[t].shape[-1]
        # the planner sizes tiles alike (tvm_mixq.schedule.builder): a patch's own bitwidths count
        tile_bytes[t] = max(_packed(p.tensor_tiles[t].area * c, p.bits.get(t, graph.tensors[t].bits))
                            for p in st.patches)
    n = len(st.patches)
    input_tiles = np.array([[p.tensor_tiles[st.input_tensor].h.start, p.tensor_tiles[st.input_tensor].w.start,
                             p.tensor_tiles[st.input_tensor].h.size, p.tensor_tiles[st.input_tensor].w.size]
                            for p in st.patches], dtype=np.int16)
    stage_layers: dict[int, StageLayer] = {}
    outlier_stage_layers: dict[int, StageLayer] = {}
    for o in ops:
        op = graph.ops[o]
        layer = layers[o]
        ins = [t for t in op.inputs if t >= 0 and not graph.tensors[t].is_const and
               (layer.template != "rt_pad" or t == op.inputs[0])]
        if layer.const_inputs:
            raise CodegenError(f"op {o} ({op.kind}) with a constant operand cannot run patch by patch")
        table = np.zeros((n, ROW), dtype=np.int64)
        # the planner counts the same window buffers (tvm_mixq.schedule.builder)
        win_bytes = window_bytes(graph, st, o, ins, not streamed)
        direct = [b == 0 for b in win_bytes]
        windowed = op.kind in WINDOWED_KINDS
        out_t = op.outputs[0]
        out_c = graph.tensors[out_t].shape[-1]
        out_bytes = 0
        for pi, patch in enumerate(st.patches):
            ot = next(x for x in patch.op_tiles if x.op == o)
            for k, t in enumerate(ins):
                y, x, h, w, src_w, _ = read_rect(graph, st, patch, ot, t, windowed, not streamed)
                table[pi, 5 * k:5 * k + 5] = (y, x, h, w, src_w)
            pad = ot.padding
            table[pi, 10:14] = (pad.top, pad.bottom, pad.left, pad.right)
            table[pi, 14:18] = (ot.output.h.size, ot.output.w.size, ot.output.h.start, ot.output.w.start)
            out_bytes = max(out_bytes, _packed(ot.output.area * out_c, graph.tensors[out_t].bits))
        if np.abs(table).max() > 32767:
            raise CodegenError("patch tile coordinates exceed int16")
        for g, into in ((graph, stage_layers), (outlier_graph if flags.any() else None, outlier_stage_layers)):
            if g is None:
                continue
            # window and tile bytes: the largest over every patch at its own bitwidths (both sets)
            into[o] = StageLayer(table.astype(np.int16), ins, direct, [g.tensors[t].shape[-1] for t in ins],
                                 [g.tensors[t].bits for t in ins], win_bytes, out_bytes, out_t == st.split_tensor,
                                 out_c=out_c, out_bits=g.tensors[out_t].bits)
    return StagePlan(ops, n, st.input_tensor, st.split_tensor, streamed, tile_bytes, input_tiles, stage_layers,
                     tuple(st.grid), st, flags, outlier_stage_layers)
