"""Patch-based inference (MCUNetV2): the first stage of a CNN run patch by patch.

A *stage* is a prefix of the graph's ops, from the graph input to a *split tensor*: every op in it
computes each output pixel from a local window (convolutions, pools, PAD, elementwise ops,
residual ADDs), and the split tensor is the only tensor the rest of the graph reads from it. The
split tensor is cut into a grid of output tiles; for each tile, receptive fields are propagated
backwards op by op (:class:`tvm_mixq.schedule.opinfo.AxisWindow`), so a patch computes exactly
the region of every intermediate tensor that its output tile needs, halo included. A tensor read
by several ops of the stage (a residual branch) gets the union of their windows.

Rows and columns are independent (every window is a product of a row and a column interval), so
regions are computed per grid row and per grid column and combined.

*Later stages* (:func:`later_stage_cuts`) are the same thing deeper in the graph: a run of
consecutive local ops whose only outside input is one whole intermediate tensor (read by no op
outside the run) and whose only tensor read outside is their split tensor, e.g. an inverted
residual block ``expand -> depthwise -> project -> ADD`` whose expanded tensors do not fit whole.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from ..graph import Graph, Op
from ..plan import Interval, OpTile, Padding, Patch, PatchStage, Tile
from .opinfo import (
    ELEMENTWISE_BINARY,
    ELEMENTWISE_UNARY,
    SPATIAL_OPS,
    activation_inputs,
    macs_per_pixel,
    op_macs,
    spatial_windows,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageCut:
    """A valid patch stage: ops ``0..end`` (inclusive, in graph order), input and split tensor.
    ``windows`` and ``inputs`` hold, per op of the stage, its spatial windows (or ``None``) and
    its activation inputs, computed once."""

    end: int
    ops: tuple[int, ...]
    input_tensor: int
    split_tensor: int
    windows: tuple = field(default=(), compare=False, repr=False)
    inputs: tuple = field(default=(), compare=False, repr=False)

    @property
    def start(self) -> int:
        return self.ops[0]

    @property
    def key(self) -> tuple[int, int]:
        """(first op, last op): identifies the cut."""
        return (self.ops[0], self.end)


def _is_local(graph: Graph, op: Op) -> bool:
    outs = [graph.tensors[t] for t in op.outputs]
    if len(outs) != 1 or len(outs[0].shape) != 4 or outs[0].shape[0] != 1:
        return False
    if op.kind in SPATIAL_OPS:
        if op.kind == "PAD":
            pads = graph.tensors[op.inputs[1]]
            if pads.data is None or pads.data.reshape(-1, 2)[[0, 3]].any():
                return False  # batch or channel padding is not spatial
        return spatial_windows(graph, op) is not None
    if op.kind in ELEMENTWISE_BINARY:
        ins = activation_inputs(graph, op)
        return len(ins) == 2 and all(graph.tensors[t].shape == outs[0].shape for t in ins)
    if op.kind in ELEMENTWISE_UNARY:
        return len(activation_inputs(graph, op)) == 1
    return False


def stage_cuts(graph: Graph) -> list[StageCut]:
    """Every prefix of the graph that can be a patch stage, shortest first."""
    if len(graph.inputs) != 1:
        return []
    inp = graph.inputs[0]
    if len(graph.tensors[inp].shape) != 4:
        return []
    consumers = graph.consumers()
    produced: set[int] = set()
    cuts: list[StageCut] = []
    windows: list = []
    inputs: list = []
    for k, op in enumerate(graph.ops):
        if not _is_local(graph, op):
            break
        windows.append(spatial_windows(graph, op))
        inputs.append(tuple(activation_inputs(graph, op)))
        if any(t != inp and t not in produced for t in activation_inputs(graph, op)):
            break
        produced.update(op.outputs)
        later = {o.index for o in graph.ops[k + 1:]}
        crossing = {
            t for t in produced | {inp}
            if t in graph.outputs or any(c.index in later for c in consumers.get(t, []))
        }
        split = op.outputs[0]
        if crossing == {split} and split not in graph.outputs:
            cuts.append(StageCut(k, tuple(o.index for o in graph.ops[: k + 1]), inp, split, tuple(windows),
                                 tuple(inputs)))
    return cuts


def later_stage_cuts(graph: Graph, after: int = -1, max_ops: int = 12) -> list[StageCut]:
    """Every run of ops ``a..b`` (``a > after``, at most ``max_ops`` ops) that can be a later patch
    stage: all ops local, one outside activation input (4-D, batch 1, produced by an op before
    ``a``, every consumer inside the run, not a graph output) and the last op's output the only
    tensor read after the run."""
    consumers = graph.consumers()
    producer = {t: op.index for op in graph.ops for t in op.outputs}
    outputs = set(graph.outputs)
    local = [_is_local(graph, op) for op in graph.ops]
    cuts: list[StageCut] = []
    for a in range(after + 1, len(graph.ops)):
        if not local[a]:
            continue
        first_ins = activation_inputs(graph, graph.ops[a])
        if len(first_ins) != 1:
            continue
        inp = first_ins[0]
        x = graph.tensors[inp]
        if inp not in producer or inp in outputs or len(x.shape) != 4 or x.shape[0] != 1:
            continue
        inp_users = {u.index for u in consumers.get(inp, [])}
        produced: set[int] = set()
        windows: list = []
        inputs: list = []
        for b in range(a, min(len(graph.ops), a + max_ops)):
            op = graph.ops[b]
            if not local[b]:
                break
            ins = activation_inputs(graph, op)
            if any(t != inp and t not in produced for t in ins):
                break
            windows.append(spatial_windows(graph, op))
            inputs.append(tuple(ins))
            produced.update(op.outputs)
            if b - a < 1 or max(inp_users) > b or min(inp_users) < a:
                continue
            split = op.outputs[0]
            inside = set(range(a, b + 1))
            crossing = {t for t in produced if t in outputs or any(c.index not in inside for c in consumers.get(t, []))}
            if crossing == {split} and split not in outputs:
                cuts.append(StageCut(b, tuple(range(a, b + 1)), inp, split, tuple(windows), tuple(inputs)))
    return cuts


def grid_intervals(size: int, parts: int) -> list[Interval]:
    """``size`` split into ``parts`` intervals, the first ``size % parts`` one longer."""
    base, extra = divmod(size, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        out.append(Interval(start, stop))
        start = stop
    return out


def _axis_regions(graph: Graph, cut: StageCut, axis: int, tile: Interval, memo: Optional[dict] = None
                  ) -> tuple[dict[int, Interval], dict[int, tuple[Interval, int, int]]]:
    """Backward pass along one axis: region of every stage tensor, window and padding per op.
    ``memo``: a dict kept by the caller (results depend only on the cut, axis and tile)."""
    if memo is not None:
        key = ("axis", cut.key, axis, tile.start, tile.stop)
        if key not in memo:
            memo[key] = _axis_regions(graph, cut, axis, tile)
        return memo[key]
    regions: dict[int, Interval] = {cut.split_tensor: tile}
    windows: dict[int, tuple[Interval, int, int]] = {}
    cached = len(cut.windows) == len(cut.ops)
    for pos in reversed(range(len(cut.ops))):
        idx = cut.ops[pos]
        op = graph.ops[idx]
        out = regions.get(op.outputs[0])
        if out is None:  # output unused inside the stage and not the split: nothing to compute
            continue
        sw = cut.windows[pos] if cached else spatial_windows(graph, op)
        if sw is not None:
            win, before, after = sw[axis].window(out)
        else:
            win, before, after = out, 0, 0
        windows[idx] = (win, before, after)
        for t in (cut.inputs[pos] if cached else activation_inputs(graph, op)):
            prev = regions.get(t)
            regions[t] = win if prev is None else prev.union(win)
    return regions, windows


def _representatives(info: list, ops: tuple[int, ...]) -> list[int]:
    """One grid row (or column) per distinct set of region and window sizes."""
    seen: dict[tuple, int] = {}
    for i, (reg, win) in enumerate(info):
        sig = (tuple(sorted((t, r.size) for t, r in reg.items())),
               tuple((o, win[o][0].size, win[o][1], win[o][2]) for o in ops if o in win))
        seen.setdefault(sig, i)
    return sorted(seen.values())


def raster_extents(graph: Graph, cut: StageCut, grid: tuple[int, int], memo: Optional[dict] = None
                   ) -> list[tuple[int, int, int, int]]:
    """Per patch in raster order: the first input element (row, column) it reads and the end
    (row, column) of its output tile: what :func:`tvm_mixq.schedule.builder.overlap_delta`
    needs, without building the patches."""
    split = graph.tensors[cut.split_tensor]
    rows = grid_intervals(split.shape[1], grid[0])
    cols = grid_intervals(split.shape[2], grid[1])
    rin = [_axis_regions(graph, cut, 0, r, memo)[0][cut.input_tensor].start for r in rows]
    cin = [_axis_regions(graph, cut, 1, c, memo)[0][cut.input_tensor].start for c in cols]
    return [(rin[i], cin[j], rows[i].stop, cols[j].stop) for i in range(len(rows)) for j in range(len(cols))]


def build_patch_stage(graph: Graph, cut: StageCut, grid: tuple[int, int], loop: str = "patch",
                      representative: bool = False, memo: Optional[dict] = None) -> PatchStage:
    """The patch stage of ``cut`` on a ``grid`` (rows x columns) of the split tensor; ``loop`` names
    the loop of its steps ("patch" for the first stage, "patch:<k>" for later ones).

    ``representative=True`` keeps only one patch per distinct combination of tile sizes (enough
    to size every tile buffer and kernel scratch, not to run or to count MACs): the search
    measures many grids with it."""
    split = graph.tensors[cut.split_tensor]
    gh, gw = grid
    rows = grid_intervals(split.shape[1], gh)
    cols = grid_intervals(split.shape[2], gw)
    row_info = [_axis_regions(graph, cut, 0, r, memo) for r in rows]
    col_info = [_axis_regions(graph, cut, 1, c, memo) for c in cols]
    keep_r = _representatives(row_info, cut.ops) if representative else range(len(rows))
    keep_c = _representatives(col_info, cut.ops) if representative else range(len(cols))
    per_pixel = {i: macs_per_pixel(graph, graph.ops[i]) for i in cut.ops}
    patches: list[Patch] = []
    total = 0
    for i in keep_r:
        rreg, rwin = row_info[i]
        for j in keep_c:
            creg, cwin = col_info[j]
            op_tiles: list[OpTile] = []
            for idx in cut.ops:
                if idx not in rwin:
                    continue
                op = graph.ops[idx]
                (hw, ht, hb), (ww, wl, wr) = rwin[idx], cwin[idx]
                out = Tile(rreg[op.outputs[0]], creg[op.outputs[0]])
                macs = out.area * per_pixel[idx]
                total += macs
                op_tiles.append(OpTile(idx, Tile(hw, ww), Padding(ht, hb, wl, wr), out, macs))
            tiles = {t: Tile(rreg[t], creg[t]) for t in rreg}
            patches.append(Patch(len(patches), i, j, Tile(rows[i], cols[j]), op_tiles, tiles))
    baseline = sum(op_macs(graph, graph.ops[i]) for i in cut.ops)
    return PatchStage(list(cut.ops), cut.input_tensor, cut.split_tensor, (gh, gw), patches, total, baseline, loop)


def _axis_sums(graph: Graph, cut: StageCut, axis: int, parts: int, memo: Optional[dict]) -> dict[int, int]:
    """Per op of the stage: the summed extent of its output regions over ``parts`` grid rows (or
    columns); ops whose output is unused are absent."""
    key = ("sums", cut.key, axis, parts)
    if memo is not None and key in memo:
        return memo[key]
    split = graph.tensors[cut.split_tensor]
    regs = [_axis_regions(graph, cut, axis, r, memo)[0] for r in grid_intervals(split.shape[1 + axis], parts)]
    sums = {}
    for idx in cut.ops:
        t = graph.ops[idx].outputs[0]
        if any(t in r for r in regs):
            sums[idx] = sum(r[t].size for r in regs if t in r)
    if memo is not None:
        memo[key] = sums
    return sums


def stage_macs(graph: Graph, cut: StageCut, grid: tuple[int, int], memo: Optional[dict] = None,
               weights: Optional[dict[int, float]] = None) -> float:
    """MACs of the stage on a grid, without building the patches (rows and columns separable);
    with ``weights``, each op's MACs times its weight (ops not listed: 1)."""
    rows = _axis_sums(graph, cut, 0, grid[0], memo)
    cols = _axis_sums(graph, cut, 1, grid[1], memo)
    w = weights or {}
    return sum(rows[i] * cols[i] * macs_per_pixel(graph, graph.ops[i]) * w.get(i, 1.0) for i in rows if i in cols)


#: Op kinds whose patch reads a window of its input (with the halo); the others read the
#: rectangle of their output tile.
WINDOWED_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD")


def read_rect(graph: Graph, stage: Any, patch: Any, op_tile: Any, tensor: int, windowed: bool,
              whole_input: bool) -> tuple[int, int, int, int, int, int]:
    """``(y, x, h, w, src_w, src_h)``: the rectangle one op of a patch reads of one activation
    input, relative to the buffer it reads (the whole stage input when ``whole_input`` and
    ``tensor`` is that input, else the tensor's tile in the patch), and that buffer's width and
    height. The generated code gathers the rectangle into a window buffer unless it is the whole
    buffer for every patch (:func:`window_bytes`)."""
    rect = op_tile.window if windowed else op_tile.output
    if tensor == stage.input_tensor and whole_input:
        shape = graph.tensors[tensor].shape
        oy, ox, src_w, src_h = 0, 0, int(shape[2]), int(shape[1])
    else:
        tile = patch.tensor_tiles[tensor]
        oy, ox, src_w, src_h = tile.h.start, tile.w.start, tile.w.size, tile.h.size
    return rect.h.start - oy, rect.w.start - ox, rect.h.size, rect.w.size, src_w, src_h


def window_bytes(graph: Graph, stage: Any, op: int, inputs: list[int], whole_input: bool,
                 bits_of: Optional[Any] = None) -> list[int]:
    """Per activation input of ``op`` in a patch stage: the bytes of the window buffer the
    generated code gathers it into (the largest over the patches), 0 when the op reads the source
    buffer in place (its window is the whole buffer in every patch). A patch's own bitwidths
    (``Patch.bits``: outlier patches keep 8-bit tensors) override ``bits_of``."""
    windowed = graph.ops[op].kind in WINDOWED_KINDS
    sizes = [0] * len(inputs)
    direct = [True] * len(inputs)
    for patch in stage.patches:
        ot = next(x for x in patch.op_tiles if x.op == op)
        for k, t in enumerate(inputs):
            y, x, h, w, src_w, src_h = read_rect(graph, stage, patch, ot, t, windowed, whole_input)
            direct[k] = direct[k] and (y, x, h, w) == (0, 0, src_h, src_w)
            bits = patch.bits.get(t, bits_of(t) if bits_of is not None else graph.tensors[t].bits)
            sizes[k] = max(sizes[k], (h * w * int(graph.tensors[t].shape[-1]) * bits + 7) // 8)
    return [0 if d else b for d, b in zip(direct, sizes)]


def parse_grid(text: str) -> Optional[tuple[int, int]]:
    """``"NxM"`` -> (N, M); ``None`` when the text is not of that form."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        return None
    n, m = int(parts[0]), int(parts[1])
    return (n, m) if n > 0 and m > 0 else None
