"""Graph -> C: one header with a small API, one source with packed constant weights, one static
arena of exactly the planned size, and calls into the kernel library and the C runtime.

:func:`generate_c` is the entry point; the result (:class:`GeneratedModel`) lists the files, the
arena and the per-layer facts the deploy report prints. Templates are Jinja2
(``templates/model.h.j2``, ``model.c.j2``, one macro pair per layer template in
``layers.c.j2``); :mod:`.layers` prepares each op (one class per op kind, :func:`make_layer`).
"""
from __future__ import annotations

import copy
import ctypes
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import jinja2
import numpy as np

from ..errors import MixqError
from ..graph import Graph, Tensor
from ..kernellib import KernelLib
from ..kernellib import build as kbuild
from .arena import ArenaBuffer, ArenaPlan, place
from .layers import KERNEL_TEMPLATES, CodegenError, ConstArray, Layer, make_layer, uses_w4_lanes
from .patches import prepare_stages
from .splits import packed_slice_bytes, prepare_splits

if TYPE_CHECKING:
    from ..plan import Plan

log = logging.getLogger(__name__)

CODEGEN_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = CODEGEN_DIR / "templates"
RUNTIME_DIR = CODEGEN_DIR / "runtime"


def runtime_sources() -> list[Path]:
    return sorted(RUNTIME_DIR.glob("*.c"))


def kernel_sources() -> list[Path]:
    return kbuild.kernel_sources()


def include_dirs() -> list[Path]:
    """Include directories a generated model needs (kernel library, runtime)."""
    return kbuild.include_dirs() + [RUNTIME_DIR]


@dataclass
class IoTensor:
    """A model input or output as the generated API sees it."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    bits: int
    offset: int = 0


@dataclass
class GeneratedModel:
    """What :func:`generate_c` wrote and planned."""

    name: str
    prefix: str
    macro: str
    out_dir: Path
    header: Path
    source: Path
    graph: Graph
    layers: list[Layer]
    arena: ArenaPlan
    consts: list[ConstArray]
    inputs: list[IoTensor]
    outputs: list[IoTensor]
    stages: list = field(default_factory=list)  # patches.StagePlan of every generated patch stage
    outlier_layers: list = field(default_factory=list)  # the first stage's layers as outlier patches run them

    @property
    def stage(self):
        """The first patch stage (None without one)."""
        return self.stages[0] if self.stages else None

    def stage_of(self, op_index: int):
        return next((st for st in self.stages if op_index in st.layers), None)

    @property
    def arena_size(self) -> int:
        return self.arena.size

    @property
    def const_bytes(self) -> int:
        return sum(a.nbytes for a in self.consts)

    @property
    def sources(self) -> list[Path]:
        """Every C source of a firmware or host program using this model (main excluded)."""
        return [self.source] + runtime_sources() + kernel_sources()

    @property
    def include_dirs(self) -> list[Path]:
        return [self.out_dir] + include_dirs()


def c_identifier(name: str) -> str:
    ident = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


def _c_values(values: np.ndarray) -> str:
    """Jinja filter: array values, 16 per line."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(flat[i:i + 16]) for i in range(0, len(flat), 16)]
    return ",\n".join("    " + r for r in rows)


def template_env(extra_dirs: tuple[Path, ...] = ()) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES_DIR), *map(str, extra_dirs)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["c_values"] = _c_values
    return env


# ---------------------------------------------------------------------------------------------
# Scratch: the kernel library's own get_buffer_size, through the host build.


class _ScratchQuery:
    def __init__(self) -> None:
        self.lib = KernelLib()
        for name, args in (("mixq_add_get_buffer_size", 2), ("mixq_avgpool_get_buffer_size", 4)):
            fn = self.lib.symbol(name)
            fn.restype = ctypes.c_int32
            del args

    def bytes(self, layer: Layer, graph: Graph) -> int:
        from ..kernellib import lib as klib

        p = layer.p
        if layer.template == "conv":
            op = layer.op
            x_t = graph.tensors[op.inputs[0]]
            w_t = graph.tensors[op.inputs[1]]
            pads = self._pads(layer)
            return self.lib.scratch_bytes(p["kernel"], p["bits"], x_t.shape, w_t.shape, p["stride"], pads,
                                          p["dilation"], lanes=uses_w4_lanes(p))
        if layer.template == "fc":
            d, f = p["in_dims"], p["filter_dims"]
            return self.lib.scratch_bytes("fully_connected", p["bits"], (d["n"], 1, 1, d["c"]), (f["n"], f["c"]),
                                          lanes=uses_w4_lanes(p))
        if layer.template == "add":
            d = p["dims"]
            fn = self.lib.symbol("mixq_add_get_buffer_size")
            return int(fn(klib.Bits(*p["bits"]), ctypes.byref(klib.Dims(d["n"], d["h"], d["w"], d["c"]))))
        if layer.template == "avgpool":
            fn = self.lib.symbol("mixq_avgpool_get_buffer_size")
            pp = klib.PoolParams(klib.Tile(*p["stride"]), klib.Tile(*p["padding"]), klib.Tile(*p["filter"]),
                                 p["input_zp"], p["output_zp"], p["mult"], p["shift"], p["act_min"], p["act_max"])
            i, o = p["in_dims"], p["out_dims"]
            return int(fn(klib.Bits(*p["bits"]), ctypes.byref(pp), ctypes.byref(klib.Dims(i["n"], i["h"], i["w"], i["c"])),
                          ctypes.byref(klib.Dims(o["n"], o["h"], o["w"], o["c"]))))
        return 0

    @staticmethod
    def _pads(layer: Layer) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) consistent with the output dims."""
        p = layer.p
        i, f, o = p["in_dims"], p["filter_dims"], p["out_dims"]
        top, left = p["padding"]
        bottom = max(0, (o["h"] - 1) * p["stride"][0] + (f["h"] - 1) * p["dilation"][0] + 1 - i["h"] - top)
        right = max(0, (o["w"] - 1) * p["stride"][1] + (f["w"] - 1) * p["dilation"][1] + 1 - i["w"] - left)
        return top, bottom, left, right


# ---------------------------------------------------------------------------------------------


def _tensor_bytes(t: Tensor) -> int:
    return t.nbytes


def _plan_arena(graph: Graph, layers: list[Layer], alignment: int, sizes: Optional[dict[int, int]] = None,
                spans: Optional[dict[int, tuple[int, int]]] = None, extra: Optional[list[ArenaBuffer]] = None,
                skip: frozenset[int] = frozenset(), overlap: Optional[tuple[int, int, int]] = None
                ) -> tuple[ArenaPlan, dict[int, ArenaBuffer]]:
    """Buffers of every activation tensor (RESHAPE outputs share their input's) and of scratch.

    ``sizes`` replaces a tensor's size (tiles of the patch stage), ``spans`` widens a tensor's
    lifetime (first, last layer), ``extra`` adds buffers (windows, tiles), ``skip`` leaves tensors
    out of the arena (a streamed input)."""
    sizes, spans = sizes or {}, spans or {}
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for layer in layers:
        if layer.alias or layer.rows is not None:
            root[find(layer.op.outputs[0])] = find(layer.op.inputs[0])
    end = len(layers)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph.inputs:
        first[find(t)] = -1
    for pos, layer in enumerate(layers):
        for t in layer.op.outputs:
            r = find(t)
            first[r] = min(first.get(r, pos), pos)
            last[r] = max(last.get(r, pos), pos)
        for t in layer.op.inputs:
            if t >= 0 and not graph.tensors[t].is_const:
                r = find(t)
                last[r] = max(last.get(r, pos), pos)
    for t in graph.outputs:
        last[find(t)] = end
    for t, (a, b) in spans.items():
        r = find(t)
        first[r] = min(first.get(r, a), a)
        last[r] = max(last.get(r, b), b)
    for t in skip:
        first.pop(find(t), None)
    members: dict[int, list[int]] = {}
    for t in list(first):
        members.setdefault(t, [])
    for t_index, t in enumerate(graph.tensors):
        if not t.is_const and find(t_index) in first:
            members[find(t_index)].append(t_index)
    buffers: list[ArenaBuffer] = []
    by_tensor: dict[int, ArenaBuffer] = {}
    for r, ts in members.items():
        size = max(sizes.get(t, _tensor_bytes(graph.tensors[t])) for t in ts)
        kind = "input" if r in graph.inputs else ("output" if any(t in graph.outputs for t in ts) else "tensor")
        b = ArenaBuffer(f"t{r}:{graph.tensors[r].name}", size, first[r], last.get(r, first[r]), kind, sorted(ts))
        buffers.append(b)
        for t in ts:
            by_tensor[t] = b
    for pos, layer in enumerate(layers):
        if layer.scratch > 0:
            buffers.append(ArenaBuffer(f"scratch:{layer.cname}", layer.scratch, pos, pos, "scratch"))
        if layer.rows is not None:
            buffers.append(ArenaBuffer(f"ring:{layer.cname}", layer.rows.ring_bytes, pos, pos, "scratch"))
    buffers += extra or []
    if overlap is None:
        return place(buffers, alignment), by_tensor
    a, b = by_tensor[overlap[0]], by_tensor[overlap[1]]
    lo = min(0, -overlap[2])
    a.offset = -lo
    b.offset = -lo - overlap[2]
    return place(buffers, alignment, fixed=(a, b)), by_tensor


def dsp_conv_scratch(layer: Layer) -> int:
    """Scratch of the Cortex-M DSP path of a conv2d / pointwise / fully connected call.

    The host build of the kernel library answers ``get_buffer_size`` for its portable path, which
    needs less than the DSP path the firmware runs; this bound follows the DSP path's documented
    needs (kernels/src/mixq_conv_dsp.h, ``mixq_conv_dsp_scratch``): per output channel 28 bytes of
    requantization constants and accumulators, plus two int16 im2col rows, or for the packed
    W4A4/W2A2 paths two lane rows (and the ring of converted rows). W4A4 layers are emitted with
    their weights in lane words (:func:`.layers.uses_w4_lanes`): the packed path runs at every pixel
    count and keeps no re-spaced copy (before: ``Cpad * kp`` bytes more). 8-bit inputs whose channel
    count is off the word taps (``Cin % 4``, 4-bit weights ``Cin % 8``) add the byte row
    (``mixq_row8_bytes``: 32 bytes of constants, the row, 4 bytes of overrun). The generated
    ``init()`` re-checks it on the target.
    """
    from ..kernellib.layout import weight_row_len

    ib, wb, _ = layer.p["bits"]
    f = layer.p["filter_dims"]
    cpad = (f["n"] + 1) & ~1
    kp = weight_row_len(f["h"] * f["w"] * f["c"], wb)
    per_channel = cpad * (16 + 12)
    if (ib, wb) in ((4, 4), (2, 2)):
        ring = _dsp_ring_bytes(layer) + _dsp_srow_bytes(layer) if layer.template == "conv" else 0
        packed = 2 * kp + per_channel + ring
        if uses_w4_lanes(layer.p):
            return packed
        return max(packed + (cpad * kp if ib == 4 else 0), 4 * kp + per_channel)
    row8 = 32 + kp + 4 if ib == 8 and f["c"] % (8 if wb == 4 else 4) != 0 else 0
    return 4 * kp + row8 + per_channel


def _dsp_ring_bytes(layer: Layer) -> int:
    """Ring of converted input rows of the packed W4A4/W2A2 paths (``mixq_use_ring`` and
    ``mixq_ring_bytes`` in kernels/src/mixq_conv_dsp.h): KH slots of (OW - 1) SW + (KW - 1) DW + 1
    entries of Cin/2 words (A2: plus OW window-row sums per slot and nq + SW column sums); used
    for word-path channel counts, several taps and at most 16,384 bytes, else 0."""
    p = layer.p
    ib = p["bits"][0]
    f, o, i = p["filter_dims"], p["out_dims"], p["in_dims"]
    cin = i["c"]
    word_path = cin % 8 == 0 if ib == 4 else (cin % 16 == 0 and cin <= 1364)
    if not word_path or f["h"] * f["w"] < 2 or o["w"] < 2 or f["h"] > 16:
        return 0
    sw, dw = p["stride"][1], p["dilation"][1]
    nq = (o["w"] - 1) * sw + (f["w"] - 1) * dw + 1
    bound = 4 * (f["h"] * (nq * (cin // 2) + o["w"]) + nq + sw)
    if bound > 16384:
        return 0
    return 4 * (f["h"] * (nq * (cin // 2) + (o["w"] if ib == 2 else 0)) + (nq + sw if ib == 2 else 0))


def _dsp_srow_bytes(layer: Layer) -> int:
    """Stream rows of the packed W4A4/W2A2 paths (``mixq_use_srow`` and ``mixq_srow_bytes`` in
    kernels/src/mixq_conv_dsp.h): for channel counts off the word paths (the bit-stream im2col),
    several taps and dilation 1 across, the gather plan (a word per stream word of K, the end mark,
    3 words per piece of at most 24 bits of a window row) and KH + 1 slots of the padded input row
    (from bit o0, 8 bytes of room), at most 16,384 bytes in all; else 0."""
    p = layer.p
    ib = p["bits"][0]
    f, o, i = p["filter_dims"], p["out_dims"], p["in_dims"]
    cin, kh, kw = i["c"], f["h"], f["w"]
    k = kh * kw * cin
    stream = cin % 8 != 0 if ib == 4 else (cin % 16 != 0 and k <= 1364)
    if not stream or p["dilation"][1] != 1 or kh * kw < 2 or kh > 16:
        return 0
    sw, pw = p["stride"][1], p["padding"][1]
    rb = kw * cin * ib
    npieces, nwords = kh * ((rb + 23) // 24), (kh * rb + 31) // 32
    if npieces > 48 or nwords > 64:
        return 0
    o0 = (8 - (pw * cin * ib) % 8) % 8
    npx = (o["w"] - 1) * sw + kw
    slot = ((o0 + npx * cin * ib + 7) // 8 + 8 + 3) & ~3
    total = 4 * (nwords + 1) + 12 * npieces + (kh + 1) * slot
    return total if total <= 16384 else 0


def _choose_in_place(graph: Graph, layers: list[Layer], stage_ops: set[int]) -> None:
    """Give a row schedule to every convolution outside the patch stage whose input (with every
    tensor sharing its bytes) is read by no later layer and is no model output."""
    from .inplace import row_schedule

    last_read: dict[int, int] = {}
    for pos, layer in enumerate(layers):
        for t in layer.op.inputs:
            if t >= 0:
                last_read[t] = pos
    alias_of: dict[int, int] = {}
    for layer in layers:
        if layer.alias:
            alias_of[layer.op.outputs[0]] = layer.op.inputs[0]
    for pos, layer in enumerate(layers):
        if layer.op.index in stage_ops or layer.template != "conv":
            continue
        t_in = layer.op.inputs[0]
        group = {t_in} | {a for a, b in alias_of.items() if b == t_in}
        root = t_in
        while root in alias_of:
            root = alias_of[root]
            group.add(root)
        if any(last_read.get(t, -1) > pos or t in graph.outputs for t in group):
            continue
        layer.rows = row_schedule(layer, graph)


def _stage_overlap(graph: Graph, stage, alignment: int) -> Optional[tuple[int, int, int]]:
    """(input, stage output, delta) when the stage output may overlap the input buffer: the input is
    read by the stage only and is no model output. ``delta`` is the planner's
    (:func:`tvm_mixq.schedule.builder.overlap_delta`: writing patch p's output tile never touches
    input bytes read by patch p or later, patches in raster order; the generated loop scatters each
    tile after the patch's reads), rounded up to the arena alignment."""
    from ..schedule.builder import overlap_delta

    inp, out = stage.input_tensor, stage.split_tensor
    stage_ops = set(stage.ops)
    if inp in graph.outputs or any(u.index not in stage_ops for u in graph.consumers().get(inp, [])):
        return None
    delta = overlap_delta(graph, stage, lambda t: graph.tensors[t].bits)
    delta = -(-delta // alignment) * alignment
    if delta <= -graph.tensors[inp].nbytes:  # no overlap possible: separate buffers
        return None
    return inp, out, delta


def _row_call_cost(layer: Layer) -> int:
    """Rough instructions an in-place layer adds over one whole call: the kernel's per-call set-up
    (depthwise: int16 weight widening and per-channel constants; others: per-channel constants)
    repeated once per extra block of rows. Only orders the layers tried in :func:`_select_rows`."""
    p = layer.p
    f, o = p["filter_dims"], p["out_dims"]
    per_call = 12 * f["h"] * f["w"] * o["c"] + 30 * o["c"] if p["kernel"] == "depthwise" else 30 * o["c"]
    calls = layer.rows.table.shape[0] if layer.rows is not None else o["h"]
    return per_call * max(calls - 1, 0)


def _block_sizes(out_rows: int) -> list[int]:
    """Block sizes worth trying for ``out_rows`` output rows, largest first: the smallest block of
    every count of kernel calls from 2 up (ceil(out_rows / calls)), down to 2."""
    sizes: list[int] = []
    for calls in range(2, out_rows + 1):
        r = -(-out_rows // calls)
        if r < 2:
            break
        if not sizes or r < sizes[-1]:
            sizes.append(r)
    return sizes


def _select_rows(layers: list[Layer], place_all, arena: ArenaPlan, by_tensor: dict[int, ArenaBuffer],
                 arena_limit: Optional[int], graph: Graph) -> tuple[ArenaPlan, dict[int, ArenaBuffer]]:
    """Which convolutions run in place, and in blocks of how many output rows.

    Rows first (blocks of one row): none when that gives an arena no larger than every row schedule
    together (or within ``arena_limit``); otherwise each layer in turn (costliest first) runs whole
    when the arena stays within max(the smaller of the two, ``arena_limit``). Then every layer kept in
    place (costliest first) takes the largest block of rows (:func:`_block_sizes`) with which the
    arena stays within max(the arena so far, ``arena_limit``): fewer kernel calls, a larger ring.
    The greedy placement is not monotone, so every choice is checked by placing again."""
    from .inplace import row_schedule

    with_rows = {layer.cname: layer.rows for layer in layers if layer.rows is not None}
    for layer in layers:
        layer.rows = None
    plain, plain_by = place_all()
    budget = max(min(arena.size, plain.size), arena_limit or 0)
    if plain.size <= budget:
        return plain, plain_by
    for layer in layers:
        layer.rows = with_rows.get(layer.cname)
    best, best_by = arena, by_tensor
    for layer in sorted((la for la in layers if la.rows is not None), key=_row_call_cost, reverse=True):
        rows, layer.rows = layer.rows, None
        trial, trial_by = place_all()
        if trial.size <= budget:
            best, best_by = trial, trial_by
        else:
            layer.rows = rows
    budget = max(best.size, arena_limit or 0)
    for layer in sorted((la for la in layers if la.rows is not None), key=_row_call_cost, reverse=True):
        rows = layer.rows
        for r in _block_sizes(rows.out_rows):
            blocked = row_schedule(layer, graph, r)
            if blocked is None:
                continue
            layer.rows = blocked
            trial, trial_by = place_all()
            if trial.size <= budget:
                best, best_by = trial, trial_by
                break
            layer.rows = rows
    return best, best_by  # every placement builds its own buffers: best's offsets stay valid


def _layer_scratch(layer: Layer, graph: Graph, query: "_ScratchQuery") -> int:
    """Scratch bytes the generated call of ``layer`` gets: the kernel library's ``get_buffer_size``
    (host build), at least the DSP path's bound for conv2d / pointwise / fully connected."""
    size = query.bytes(layer, graph)
    if size < 0:
        raise MixqError(f"op {layer.op.index} ({layer.op.kind}): the kernel library refuses its shape or "
                        f"bitwidths {layer.p['bits']}")
    if layer.template == "fc" or (layer.template == "conv" and layer.p["kernel"] != "depthwise"):
        size = max(size, dsp_conv_scratch(layer))
    return (size + 3) // 4 * 4


def build_layers(graph: Graph) -> list[Layer]:
    """Prepared layers of ``graph`` (every op, in order), with kernel scratch sizes."""
    layers = [make_layer(graph, op) for op in graph.ops]
    query: Optional[_ScratchQuery] = None
    for pos, layer in enumerate(layers):
        layer.position = pos
        if layer.template in KERNEL_TEMPLATES:
            query = query or _ScratchQuery()
            layer.scratch = _layer_scratch(layer, graph, query)
    return layers


def _share_consts(layer: Layer, like: Layer) -> None:
    """Drop the constants of ``layer`` that ``like`` already emits with the same values (an outlier
    patch's layer whose weights or requantization did not change), naming ``like``'s instead."""
    rename: dict[str, str] = {}
    for a in layer.consts:
        same = next((b for b in like.consts if b.ctype == a.ctype and b.values.shape == a.values.shape
                     and np.array_equal(b.values, a.values)), None)
        if same is not None:
            rename[a.name] = same.name
    if not rename:
        return
    layer.consts = [a for a in layer.consts if a.name not in rename]
    layer.p = {k: rename.get(v, v) if isinstance(v, str) else v for k, v in layer.p.items()}
    layer.const_inputs = {k: rename.get(v, v) for k, v in layer.const_inputs.items()}


def outlier_stage_layers(graph: Graph, plan: Optional["Plan"], layers: dict[int, Layer]) -> dict[int, Layer]:
    """The first patch stage's ops prepared on ``plan.outlier_graph`` (C names ``l<op>_o``) when the
    stage has outlier patches (``Patch.bits``), else {}. Each op's scratch, normal and outlier, is
    the larger of the two (one buffer serves both; the planner counts the same, see
    :func:`tvm_mixq.schedule.builder.build_schedule`); constants equal to the normal layer's are
    shared."""
    st = getattr(plan, "patch_stage", None) if plan is not None else None
    og = getattr(plan, "outlier_graph", None)
    if st is None or og is None or not any(p.bits for p in st.patches):
        return {}
    if len(og.ops) != len(graph.ops):
        raise CodegenError("the outlier graph of the plan is not a version of the plan's graph")
    query: Optional[_ScratchQuery] = None
    out: dict[int, Layer] = {}
    for o in st.ops:
        if o not in layers or not any(ot.op == o for ot in st.patches[0].op_tiles):
            continue
        ol = make_layer(og, og.ops[o], cname=f"l{o}_o")
        if ol.template in KERNEL_TEMPLATES:
            query = query or _ScratchQuery()
            ol.scratch = _layer_scratch(ol, og, query)
        normal = layers[o]
        ol.scratch = normal.scratch = max(ol.scratch, normal.scratch)
        _share_consts(ol, normal)
        out[o] = ol
    return out


def scratch_at_bits(graph: Graph) -> Callable[[int, tuple[int, int, int]], int]:
    """``(op index, (in, w, out) bits) -> scratch bytes`` of a kernel op of the int8 ``graph`` were it
    run at those bitwidths (what :func:`_layer_scratch` gives the generated call), without building
    the quantized graph: the bitwidth search asks before it exists. 0 for ops without a kernel."""
    layers: dict[int, Optional[Layer]] = {}
    query: list[_ScratchQuery] = []
    cache: dict[tuple[int, tuple[int, int, int]], int] = {}

    def scratch(op_index: int, bits: tuple[int, int, int]) -> int:
        key = (op_index, tuple(bits))
        if key not in cache:
            if op_index not in layers:
                try:
                    layer = make_layer(graph, graph.ops[op_index])
                except MixqError:
                    layer = None
                layers[op_index] = layer if layer is not None and layer.template in ("conv", "fc") else None
            layer = layers[op_index]
            if layer is None:
                cache[key] = 0
            else:
                if not query:
                    query.append(_ScratchQuery())
                trial = copy.copy(layer)
                trial.p = dict(layer.p, bits=tuple(bits))
                cache[key] = _layer_scratch(trial, graph, query[0])
        return cache[key]

    return scratch


def kernel_scratch_fn():
    """A :data:`tvm_mixq.schedule.ScratchFn` giving the planner the scratch the generated code
    places: the kernel library's per call (:func:`_layer_scratch`; it does not depend on the tile
    size), plus, for a layer the planner runs in place, the planner's own allowance for the rows
    or pixels held back (the code generator's row ring). Ops the C runtime runs need none.
    Results are cached per op and bitwidths."""
    from ..schedule.opinfo import default_scratch_bytes

    cache: dict[tuple, int] = {}
    query: list[_ScratchQuery] = []

    def scratch(graph: Graph, op, in_hw: tuple[int, int], out_hw: tuple[int, int], in_place: bool) -> int:
        key = (id(graph), op.index, tuple(graph.tensors[t].bits for t in (*op.inputs, *op.outputs) if t >= 0))
        if key not in cache:
            try:
                layer = make_layer(graph, op)
            except MixqError:
                layer = None
            if layer is None or layer.template not in KERNEL_TEMPLATES:
                cache[key] = 0
            else:
                if not query:
                    query.append(_ScratchQuery())
                cache[key] = _layer_scratch(layer, graph, query[0])
        held = default_scratch_bytes(graph, op, in_hw, out_hw, True) if in_place else 0
        return cache[key] + held

    return scratch


def generate_c(graph: Graph, out_dir: Path | str, name: Optional[str] = None, source: str = "",
               description: str = "", alignment: int = 8, plan: Optional["Plan"] = None,
               in_place: bool = True, arena_limit: Optional[int] = None) -> GeneratedModel:
    """Write ``<prefix>.h`` and ``<prefix>.c`` for ``graph`` (layer by layer) into ``out_dir``.

    Parameters
    ----------
    graph : the model, int8 or with sub-byte tensors and weights (a planned graph).
    name : model name for the C identifiers (``mixq_<name>_invoke``); the graph's by default.
    source : where the model came from (written into the file comments).
    description : one line for the header comment (e.g. the plan's summary).
    plan : a :class:`tvm_mixq.plan.Plan` of ``graph``: its patch stage is generated as a
        table-driven patch loop (:mod:`.patches`), and so is every later stage of the plan;
        without a plan, or without stages, layer by layer.
        Channel splits run as loops over channel slices (:mod:`.splits`).
    in_place : run convolutions whose input dies at them in place, in blocks of output rows
        (:mod:`.inplace`), when that lowers the memory they need. An in-place layer calls its
        kernel once per block (the kernel's per-call set-up, e.g. depthwise weight widening, is
        repeated), so it is kept only where it lowers the arena (see ``arena_limit``), and its
        block is the largest the arena allows (one row where the arena has no room).
    arena_limit : arena bytes the model may use (``mixq.sram_limit_kb``): a layer runs whole
        rather than in place when the arena then stays within this limit, and in place in blocks
        of rows as large as the limit allows; without a limit, when the arena does not grow.

    Raises
    ------
    MixqError
        An op, dtype or bitwidth the generator cannot emit.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ident = c_identifier(name or graph.name)
    prefix = f"mixq_{ident}"
    macro = prefix.upper()
    layers = build_layers(graph)
    outlier_layers: dict[int, Layer] = {}
    stages: list = []
    splits: list = []
    if plan is not None:
        if plan.graph is not graph and len(plan.graph.ops) != len(graph.ops):
            raise MixqError("the plan belongs to another graph")
        by_index = {layer.op.index: layer for layer in layers}
        outlier_layers = outlier_stage_layers(graph, plan, by_index)
        stages = prepare_stages(graph, plan, by_index, outlier_layers or None)
        splits = prepare_splits(graph, plan, {layer.op.index: layer for layer in layers})
    # layer order: graph order, each stage's ops together at its first op
    by_op = {layer.op.index: layer for layer in layers}
    stage_of = {o: st for st in stages for o in st.ops}
    split_of = {o: sp for sp in splits for o in sp.ops}
    ordered: list[Layer] = []
    segments: list[dict] = []
    for layer in layers:
        st = stage_of.get(layer.op.index)
        sp = split_of.get(layer.op.index)
        if st is None and sp is None:
            ordered.append(layer)
            segments.append({"stage": None, "split": None, "layers": [layer], "outlier": []})
        elif st is not None and layer.op.index == st.ops[0]:
            group = [by_op[o] for o in st.ops]
            ordered.extend(group)
            segments.append({"stage": st, "split": None, "layers": group, "outlier": []})
        elif sp is not None and layer.op.index == sp.ops[0]:
            group = [by_op[o] for o in sp.ops]
            ordered.extend(group)
            segments.append({"stage": None, "split": sp, "layers": group, "outlier": []})
    layers = ordered
    for pos, layer in enumerate(layers):
        layer.position = pos
    if in_place:
        _choose_in_place(graph, layers, set(stage_of) | set(split_of))

    def place_all() -> tuple[ArenaPlan, dict[int, ArenaBuffer]]:
        sizes: dict[int, int] = {}
        spans: dict[int, tuple[int, int]] = {}
        extra: list[ArenaBuffer] = []
        skip: frozenset[int] = frozenset()
        overlaps: list[tuple[int, int, int]] = []

        def widen(t: int, a: int, b: int) -> None:
            old = spans.get(t, (a, b))
            spans[t] = (min(old[0], a), max(old[1], b))

        for seg in segments:
            sp = seg["split"]
            if sp is None:
                continue
            s0, s1 = seg["layers"][0].position, seg["layers"][-1].position
            for t in sp.sliced:
                sizes[t] = sp.slice_bytes[t]
            widen(sp.input_tensor, s0, s1)
            if sp.consumer is None:
                widen(sp.output_tensor, s0, s1)
                last = seg["layers"][-1]
                t_last = last.op.outputs[0]
                extra.append(ArenaBuffer(f"slice:{last.cname}", packed_slice_bytes(graph, t_last, int(sp.table[:, 1].max())),
                                         last.position, last.position, "slice"))
            else:
                extra.append(ArenaBuffer(f"acc:{seg['layers'][0].cname}", sp.acc_bytes, s0, s1, "accumulator"))
        for seg in segments:
            stage = seg["stage"]
            if stage is None:
                continue
            stage_layers = seg["layers"]
            s0, s1 = stage_layers[0].position, stage_layers[-1].position
            stage_ops = set(stage.ops)
            for t in stage.tile_bytes:
                if t == stage.split_tensor or (t == stage.input_tensor and not stage.streamed):
                    continue
                outside = [u.index for u in graph.consumers().get(t, []) if u.index not in stage_ops]
                if outside or t in graph.outputs:
                    raise CodegenError(f"tensor {t} of the patch stage is read after the stage (ops {outside})")
            for t, b in stage.tile_bytes.items():
                if t not in (stage.split_tensor, stage.input_tensor):
                    sizes[t] = b
            widen(stage.split_tensor, s0, s1)
            if stage.streamed:
                skip = frozenset({stage.input_tensor})
                readers = [layer.position for layer in stage_layers if stage.input_tensor in layer.op.inputs]
                # read into at the start of every patch, dead after its last reader in the loop body
                extra.append(ArenaBuffer("tile:input", stage.tile_bytes[stage.input_tensor], s0,
                                         max(readers, default=s0), "tile"))
            else:
                widen(stage.input_tensor, s0 - 1 if stage.input_tensor in graph.inputs else s0, s1)
                if stage is stages[0] or getattr(stage.source, "input_overlap", False):
                    candidate = _stage_overlap(graph, stage.source, alignment)
                    if candidate is not None:
                        overlaps.append(candidate)
            for layer in stage_layers:
                sl = stage.layers[layer.op.index]
                for i, nbytes in enumerate(sl.window_bytes):
                    if not sl.direct[i]:
                        extra.append(ArenaBuffer(f"window:{layer.cname}:{i}", nbytes, layer.position, layer.position,
                                                 "window"))
                if sl.writes_split:
                    extra.append(ArenaBuffer(f"tile:{layer.cname}", sl.out_tile_bytes, layer.position, layer.position,
                                             "tile"))
        # one stage output may overlap its input (a fixed pair of the placement): try each, and none,
        # since the greedy placement around a fixed pair can also lose; keep the smallest arena
        arena, by_tensor = _plan_arena(graph, layers, alignment, sizes, spans, extra, skip, None)
        for overlap in overlaps:
            trial, trial_by = _plan_arena(graph, layers, alignment, sizes, spans,
                                          [dataclasses.replace(b) for b in extra], skip, overlap)
            if trial.size < arena.size:
                arena, by_tensor = trial, trial_by
        return arena, by_tensor

    arena, by_tensor = place_all()
    if any(layer.rows is not None for layer in layers):
        arena, by_tensor = _select_rows(layers, place_all, arena, by_tensor, arena_limit, graph)
    named = {b.name: b for b in arena.buffers}

    def operand(layer: Layer, pos: int, t_index: int) -> str:
        if pos in layer.const_inputs:
            return layer.const_inputs[pos]
        if t_index not in by_tensor:  # a streamed input: stage layers read its tile instead
            return "NULL"
        return f"(arena + {by_tensor[t_index].offset})"

    for seg in segments:
        stage = seg["stage"]
        if stage is None:
            continue
        for layer in seg["layers"]:
            sl = stage.layers[layer.op.index]
            layer.template = f"patch_{layer.template}"
            layer.s = sl
            sl.table_name = layer.const("tiles", "int16_t", sl.table, align=4)
            for i, t in enumerate(sl.inputs):
                if t == stage.input_tensor and stage.streamed:
                    sl.src.append(f"(arena + {named['tile:input'].offset})")
                else:
                    sl.src.append(f"(arena + {by_tensor[t].offset})")
                sl.win.append(sl.src[-1] if sl.direct[i] else f"(arena + {named[f'window:{layer.cname}:{i}'].offset})")
            if sl.writes_split:
                sl.dst = f"(arena + {named[f'tile:{layer.cname}'].offset})"
                sl.split = f"(arena + {by_tensor[stage.split_tensor].offset})"
                sl.split_w = graph.tensors[stage.split_tensor].shape[2]
            else:
                sl.dst = f"(arena + {by_tensor[layer.op.outputs[0]].offset})"
        if stage.has_outliers:
            # outlier patches: the same tables and buffers, their own layers
            seg["outlier"] = []
            for layer in seg["layers"]:
                sl, ol = stage.layers[layer.op.index], outlier_layers[layer.op.index]
                osl = stage.outlier_layers[layer.op.index]
                osl.table_name, osl.src, osl.win, osl.dst = sl.table_name, list(sl.src), list(sl.win), sl.dst
                osl.split, osl.split_w = sl.split, sl.split_w
                ol.template, ol.s, ol.position = layer.template, osl, layer.position
                seg["outlier"].append(ol)
            flags = ConstArray("stage_outlier", "uint8_t", stage.outlier, 4)  # one stage has outlier patches
            seg["layers"][0].consts.append(flags)
            seg["flags"] = flags.name

    for seg in segments:
        sp = seg["split"]
        if sp is None:
            continue
        first = seg["layers"][0]
        sp.table_name = first.const("slices", "int16_t", sp.table, align=4)
        if sp.consumer is not None:
            sp.acc = f"((int32_t *)(void *)(arena + {named[f'acc:{first.cname}'].offset}))"
        for layer in seg["layers"]:
            layer.s = sp
            if layer.template == "rt_pad":
                layer.template = "split_pad"
                continue
            layer.p["wslices"] = sp.weight_tables[layer.op.index]
            layer.consts = [a for a in layer.consts if a.name != layer.p["weights"]]  # sliced copies instead
            if layer.op.index == sp.consumer:
                layer.template = "split_acc"
                continue
            layer.template = "split_conv"
            layer.p["put"] = None
            if sp.consumer is None and layer is seg["layers"][-1]:
                t = graph.tensors[layer.op.outputs[0]]
                layer.p["put"] = {"pixels": t.size // sp.channels, "channels": sp.channels,
                                  "slice": f"(arena + {named[f'slice:{layer.cname}'].offset})"}
    for layer in layers:
        if layer.rows is not None:
            layer.rows.table_name = layer.const("rows", "int16_t", layer.rows.table, align=4)
            layer.rows.ring = f"(arena + {named[f'ring:{layer.cname}'].offset})"
            layer.rows.buf = f"(arena + {by_tensor[layer.op.inputs[0]].offset})"
            layer.template = "rows_conv"
    for pos, layer in enumerate(layers):
        layer.src = [operand(layer, i, t) for i, t in enumerate(layer.op.inputs)
                     if t >= 0 and (i in layer.const_inputs or not graph.tensors[t].is_const)]
        layer.dst = [f"(arena + {by_tensor[t].offset})" for t in layer.op.outputs if t in by_tensor]
        if layer.scratch > 0:
            sb = next(b for b in arena.buffers if b.name == f"scratch:{layer.cname}")
            layer.scratch_expr = f"(arena + {sb.offset})"
        else:
            layer.scratch_expr = "NULL"
        ol = outlier_layers.get(layer.op.index)
        if ol is not None and ol.s is not None:
            ol.src, ol.dst, ol.scratch_expr = layer.src, layer.dst, layer.scratch_expr

    def io(t_index: int) -> IoTensor:
        t = graph.tensors[t_index]
        offset = by_tensor[t_index].offset if t_index in by_tensor else -1
        return IoTensor(t_index, t.name, t.dtype, tuple(t.shape), t.nbytes, t.bits, offset)

    inputs = [io(t) for t in graph.inputs]
    outputs = [io(t) for t in graph.outputs]
    outliers = [ol for seg in segments for ol in seg.get("outlier", [])]
    consts = [a for layer in layers + outliers for a in layer.consts]
    in0 = graph.tensors[graph.inputs[0]]
    rows = int(np.prod(in0.shape[:-2], dtype=np.int64)) if len(in0.shape) >= 3 else 1
    io_note = "int8" if all(t.dtype == "int8" and t.bits == 8 for t in inputs + outputs) else \
        ", ".join(sorted({f"{t.dtype}" if t.bits == 8 else f"{t.bits}-bit packed" for t in inputs + outputs}))
    model = {
        "prefix": prefix, "macro": macro, "source": source or graph.name,
        "description": description or f"{graph.name}: {len(layers)} layers, layer by layer",
        "arena_size": arena.size, "arena_size_decl": max(arena.size, 8), "layers": layers,
        "inputs": inputs, "outputs": outputs, "consts": consts,
        "const_bytes": sum(a.nbytes for a in consts),
        "arena_buffers": sorted(arena.buffers, key=lambda b: b.offset),
        "io_note": io_note, "input_rows": rows, "input_row_bytes": in0.nbytes // rows,
        "segments": segments, "stages": stages, "splits": splits, "outlier_layers": outliers,
        "input_tile_table": None, "in0": {"h": in0.shape[1] if len(in0.shape) == 4 else 1,
                                          "w": in0.shape[2] if len(in0.shape) == 4 else 1,
                                          "c": in0.shape[-1], "bits": in0.bits},
    }
    if stages and stages[0].streamed:
        stage = stages[0]
        model["input_tile_table"] = "stage_input_tiles"
        consts.append(ConstArray("stage_input_tiles", "int16_t", stage.input_tiles.reshape(-1), 4))
        model["consts"] = consts
        model["const_bytes"] = sum(a.nbytes for a in consts)
        model["input_tile_buffer"] = f"(arena + {named['tile:input'].offset})"
    env = template_env()
    header = out / f"{prefix}.h"
    src = out / f"{prefix}.c"
    header.write_text(env.get_template("model.h.j2").render(m=model))
    src.write_text(env.get_template("model.c.j2").render(m=model, kernel_templates=KERNEL_TEMPLATES))
    log.info("generated %s: %d layers, arena %d B, constants %d B", prefix, len(layers), arena.size,
             model["const_bytes"])
    return GeneratedModel(ident, prefix, macro, out, header, src, graph, layers, arena, consts, inputs, outputs,
                          stages, outliers)
