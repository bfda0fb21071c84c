"""From patch stage and channel splits to the schedule (steps) and the arena buffers to place.

The schedule lists kernel calls in execution order. A loop (the patch loop, or the slice loop of
one channel split) appears once, as its body; buffers used by every iteration but owned by no
single one (the whole stage input, the stage output, the input of a split producer, the int32
accumulator) span the whole body, per-iteration tiles and slices live only between the body
steps that write and read them, and the next iteration reuses them.

In place (one buffer for input and output), where it is legal:

* RESHAPE/SQUEEZE: same bytes, always;
* PAD followed only by convolutions: folded into the convolutions' padding, never materialised;
* DEPTHWISE_CONV_2D (multiplier 1), unary activations, ADD/MUL: when the input dies at the op and
  the output is not larger (an in-place depthwise then needs a small ring buffer, see
  :func:`tvm_mixq.schedule.opinfo.default_scratch_bytes`);
* a 1x1 stride-1 CONV_2D whose output pixel is not wider than its input pixel (projections,
  Cout <= Cin): pixel by pixel, output pixel ``p`` goes over input pixel ``p`` once computed;
* the requantized output of a split consumer: over its own int32 accumulator (byte ``i`` is
  written after word ``i`` is read).

With the input counted, the stage output is placed to overlap the input buffer by the largest
amount such that no patch ever writes over input bytes it or a later patch still reads (patches
run in raster order; computed exactly from the patch tiles).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Collection, Optional

import numpy as np

from ..graph import ConvAttrs, Graph, Op, Tensor
from ..plan import MODE_INPUT_COUNTED, Buffer, ChannelSplit, PatchStage, Step
from .memory import align_up
from .opinfo import ALIAS_OPS, ELEMENTWISE_BINARY, ELEMENTWISE_UNARY, ScratchFn, activation_inputs, tensor_bytes
from .patches import window_bytes

Key = tuple


@dataclass
class _Store:
    key: Key
    kind: str
    size: int = 0
    first: int = 1 << 60
    last: int = -1
    tensors: list[int] = field(default_factory=list)


class _Schedule:
    def __init__(self, graph: Graph, bits_of: Callable[[int], int], scratch_fn: ScratchFn) -> None:
        self.g = graph
        self.bits_of = bits_of
        self.scratch_fn = scratch_fn
        self.steps: list[Step] = []
        self.stores: dict[Key, _Store] = {}
        self.parent: dict[Key, Key] = {}
        self.key_of: dict[int, Key] = {}
        self.in_place_conv = True
        self.consumers: dict[int, list[Op]] = {}
        # (a, b, delta): b starts ``delta`` bytes after a and may share bytes with it (in place)
        self.anchors: list[tuple[Key, Key, int]] = []

    # -- storage bookkeeping --------------------------------------------------------------
    def root(self, key: Key) -> Key:
        while self.parent.get(key, key) != key:
            key = self.parent[key]
        return key

    def new(self, key: Key, kind: str, size: int, tensor: Optional[int] = None) -> Key:
        self.stores[key] = _Store(key, kind, size)
        self.parent[key] = key
        if tensor is not None:
            self.stores[key].tensors.append(tensor)
            self.key_of[tensor] = key
        return key

    def alias(self, tensor: int, onto: Key, size: int = 0) -> Key:
        """``tensor`` lives in the storage of ``onto`` (in place); ``size`` may grow it."""
        r = self.root(onto)
        st = self.stores[r]
        st.size = max(st.size, size)
        st.tensors.append(tensor)
        self.key_of[tensor] = r
        return r

    def in_place(self, tensor: int, over: Key, kind: str, size: int) -> Key:
        """``tensor`` is written over the buffer ``over`` (same start); it keeps its own size and
        lifetime, so a smaller output does not hold the larger input's bytes once that dies."""
        key = self.new((kind, tensor), kind, size, tensor)
        self.anchors.append((self.root(over), key, 0))
        return key

    def use(self, key: Key, step: int) -> None:
        st = self.stores[self.root(key)]
        st.first = min(st.first, step)
        st.last = max(st.last, step)

    def span(self, key: Key, first: int, last: int) -> None:
        self.use(key, first)
        self.use(key, last)

    def step(self, op: int, action: str, loop: Optional[str] = None) -> int:
        o = self.g.ops[op]
        label = f"{o.kind.lower()} #{op}" + (f" [{action}]" if action != "op" else "")
        self.steps.append(Step(len(self.steps), op, action, loop, label))
        return len(self.steps) - 1

    def scratch(self, step: int, size: int) -> None:
        if size > 0:
            k = self.new(("scratch", step), "scratch", size)
            self.use(k, step)

    def bytes(self, t: int, elements: Optional[int] = None, bits: Optional[int] = None) -> int:
        return tensor_bytes(self.g, t, elements, self.bits_of(t) if bits is None else bits)


def _in_place_kind(op: Op) -> bool:
    if op.kind in ("DEPTHWISE_CONV_2D", "CONV_2D"):
        return isinstance(op.attrs, ConvAttrs) and op.attrs.depth_multiplier == 1
    return op.kind in ELEMENTWISE_UNARY or op.kind in ELEMENTWISE_BINARY


def _in_place_legal(s: "_Schedule", op: Op, t_in: int) -> bool:
    """Whether ``op`` may write its output over its input ``t_in`` (same start address), given
    that the input dies at the op. Elementwise ops and depthwise convolutions go element by element
    or row by row; a 1x1 stride-1 convolution goes pixel by pixel and may overwrite pixel ``p``'s
    input once pixel ``p`` is computed, provided an output pixel takes no more bytes than an input
    pixel (whole bytes both)."""
    g = s.g
    out = op.outputs[0]
    bits_in, bits_out = s.bits_of(t_in), s.bits_of(out)
    if bits_out > bits_in:
        return False
    if op.kind == "CONV_2D":
        w = g.tensors[op.inputs[1]].shape
        if not s.in_place_conv or w[1] != 1 or w[2] != 1 or op.attrs.stride != (1, 1):
            return False
        cin, cout = g.tensors[t_in].shape[-1], g.tensors[out].shape[-1]
        return (cin * bits_in) % 8 == 0 and (cout * bits_out) % 8 == 0 and cout * bits_out <= cin * bits_in
    return True


def _pad_folds(graph: Graph, op: Op, consumers: dict[int, list[Op]]) -> bool:
    users = consumers.get(op.outputs[0], [])
    return op.kind == "PAD" and bool(users) and all(u.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") for u in users) \
        and op.outputs[0] not in graph.outputs


def overlap_delta(graph: Graph, stage: PatchStage, bits_of: Callable[[int], int],
                  extents: Optional[list[tuple[int, int, int, int]]] = None) -> int:
    """Bytes by which the stage output must start before the input buffer (negative: after) so
    that writing patch ``p``'s output tile never touches input bytes read by patch ``p`` or later.
    Patches run in raster order; NHWC layout, batch 1. ``extents`` (first input row and column
    read, output tile's row and column stop, per patch in raster order) replaces the patches."""
    x, y = graph.tensors[stage.input_tensor], graph.tensors[stage.split_tensor]
    _, _, wx, cx = x.shape
    _, _, wy, cy = y.shape

    def element_bits(t: Tensor) -> int:  # float or int16 inputs take their whole item size
        return bits_of(t.index) if t.dtype in ("int8", "uint8") else 8 * np.dtype(t.dtype).itemsize

    bx, by = element_bits(x), element_bits(y)
    if extents is None:
        extents = []
        for patch in stage.patches:
            t = patch.tensor_tiles[stage.input_tensor]
            extents.append((t.h.start, t.w.start, patch.output.h.stop, patch.output.w.stop))
    n = len(extents)
    min_needed = [0] * n
    lowest = 1 << 62
    for p in reversed(range(n)):
        h0, w0, _, _ = extents[p]
        lowest = min(lowest, (h0 * wx + w0) * cx * bx // 8)
        min_needed[p] = lowest
    delta, highest = -(1 << 62), 0
    for p in range(n):
        _, _, h1, w1 = extents[p]
        highest = max(highest, -(-((h1 - 1) * wy + w1) * cy * by // 8))
        delta = max(delta, highest - min_needed[p])
    return delta


def build_schedule(
    graph: Graph,
    stage: Optional[PatchStage],
    splits: list[ChannelSplit],
    mode: str,
    bits_of: Callable[[int], int],
    scratch_fn: ScratchFn,
    alignment: int = 8,
    in_place_conv: bool = True,
    stage_overlap: bool = True,
    later: Optional[list[PatchStage]] = None,
    later_overlap: Collection[int] = (),
    cache: Optional[dict] = None,
    only_ops: Optional[set[int]] = None,
    outlier_graph: Optional[Graph] = None,
) -> tuple[list[Step], list[Buffer]]:
    """Steps of the schedule and the buffers (unplaced) the arena must hold; ``later`` are the
    later patch stages (each emitted as its own loop where its first op would run).

    ``in_place_conv=False`` keeps 1x1 convolutions out of place and ``stage_overlap=False`` gives
    the stage output its own bytes (the accounting of a plain liveness planner). ``later_overlap``:
    split tensors of later stages whose output overlaps their input as well. ``cache``: a dict the caller keeps
    across calls with the same bitwidths and scratch function (patch stages held alive), to
    skip recomputing per-stage tile sizes. ``only_ops``: schedule just these ops (one stage
    measured on its own, its input a whole tensor); the rest of the graph is left out.
    ``outlier_graph``: the quantization the outlier patches of ``stage`` run (patches with
    ``Patch.bits``, :attr:`tvm_mixq.plan.Plan.outlier_graph`): its kernels' scratch counts too
    (the generated stage gives each op the larger of the two), and a tensor whose bitwidth
    differs between patches never runs in place."""
    s = _Schedule(graph, bits_of, scratch_fn)
    s.in_place_conv = in_place_conv
    cache = {} if cache is None else cache  # callers with fixed bits and scratch reuse it across calls
    if ("consumers", id(graph)) not in cache:
        cache[("consumers", id(graph))] = graph.consumers()
    consumers = cache[("consumers", id(graph))]
    s.consumers = consumers
    later = list(later or ())
    stage_ops = set(stage.ops) if stage else set()
    later_first = {st_.ops[0]: st_ for st_ in later}
    for st_ in later:
        stage_ops.update(st_.ops)
    by_producer = {c.producer: c for c in splits}
    in_split = {o: c for c in splits for o in c.ops}

    # Emission order: graph order, a split chain emitted whole at its producer.
    order: list[int] = []
    for op in graph.ops:
        if op.index in in_split and in_split[op.index].producer != op.index:
            continue
        order.extend(by_producer[op.index].ops if op.index in by_producer else [op.index])
    pos = {o: i for i, o in enumerate(order)}
    never = len(order) + 1
    last_pos: dict[int, int] = {}
    for t, users in consumers.items():
        last_pos[t] = max(pos[u.index] for u in users)
    for t in graph.outputs:
        last_pos[t] = never

    def dies_at(key: Key, op: int) -> bool:
        st = s.stores[s.root(key)]
        return all(last_pos.get(t, -1) <= pos[op] for t in st.tensors)

    inp = graph.inputs[0] if graph.inputs else -1
    if stage is None or mode == MODE_INPUT_COUNTED:
        for t in graph.inputs:
            s.new(("t", t), "input", s.bytes(t), t)

    group_pairs: list[tuple[Key, Key, PatchStage]] = []

    def emit_stage(st_: PatchStage, first: bool) -> None:
        """One body of a patch loop; the first stage's input is the graph input (whole or
        streamed tile by tile), a later stage's is a whole intermediate tensor."""
        ops = [o for o in st_.ops if any(ot.op == o for ot in st_.patches[0].op_tiles)]
        body_start = len(s.steps)
        # per-stage facts that depend only on the stage and the bitwidths: kept in ``cache``
        tile_cache: dict[int, int] = cache.setdefault(("tile bytes", id(st_)), {})

        def tile_bytes(t: int) -> int:
            if t not in tile_cache:
                c = graph.tensors[t].shape[-1]
                overridden = any(t in p.bits for p in st_.patches)
                patches = st_.patches if overridden else [max(st_.patches, key=lambda p: p.tensor_tiles[t].area)]
                tile_cache[t] = max(s.bytes(t, p.tensor_tiles[t].area * c, p.bits.get(t, bits_of(t))) for p in patches)
            return tile_cache[t]

        # distinct (window, output) tile shapes per op: the scratch formula depends on nothing else
        tile_shapes: dict[int, set[tuple[int, int, int, int]]] = cache.get(("tile shapes", id(st_)), {})
        if not tile_shapes:
            for p in st_.patches:
                for ot in p.op_tiles:
                    tile_shapes.setdefault(ot.op, set()).add(
                        (ot.window.h.size, ot.window.w.size, ot.output.h.size, ot.output.w.size))
            cache[("tile shapes", id(st_))] = tile_shapes
        scratch_cache: dict[tuple[int, bool], int] = cache.setdefault(("scratch", id(st_)), {})

        sin = st_.input_tensor
        if first and mode != MODE_INPUT_COUNTED:
            s.new(("tile", sin), "input", tile_bytes(sin), sin)
        last_reader: dict[int, int] = {}
        stage_pos = {o: i for i, o in enumerate(ops)}
        for o in ops:
            for t in activation_inputs(graph, graph.ops[o]):
                last_reader[t] = o
        overridden = {t for p in st_.patches for t in p.bits}
        mixed = outlier_graph if overridden and outlier_graph is not None else None
        for o in ops:
            op = graph.ops[o]
            st = s.step(o, "patch", st_.loop)
            ins = activation_inputs(graph, op)
            for t in ins:
                s.use(s.key_of[t], st)
            out = op.outputs[0]
            in_place = False
            if out == st_.split_tensor:
                k = s.new(("t", out), "tensor", s.bytes(out), out)
            elif op.kind == "PAD" and _pad_folds(graph, op, consumers):
                k = s.alias(out, s.key_of[ins[0]])
                s.steps[st].folded = True
            else:
                k = None
                if _in_place_kind(op) and out not in overridden:
                    for t in ins:
                        if t in overridden:
                            continue
                        kt = s.root(s.key_of[t])
                        dead = all(stage_pos.get(last_reader.get(u, -1), -1) <= stage_pos[o]
                                   for u in s.stores[kt].tensors)
                        if kt[0] == "tile" and s.stores[kt].kind != "input" and last_reader.get(t) == o and dead \
                                and tile_bytes(out) <= s.stores[kt].size and _in_place_legal(s, op, t):
                            k = s.in_place(out, kt, "tile", tile_bytes(out))
                            in_place = True
                            break
                if k is None:
                    k = s.new(("tile", out), "tile", tile_bytes(out), out)
            s.use(k, st)
            s.steps[st].in_place = in_place
            if (o, in_place) not in scratch_cache:
                kernel = max((scratch_fn(graph, op, (a, b), (c, d), in_place) for a, b, c, d in tile_shapes.get(o, ())),
                             default=0)
                if mixed is not None:
                    kernel = max([kernel] + [scratch_fn(mixed, mixed.ops[o], (a, b), (c, d), in_place)
                                             for a, b, c, d in tile_shapes.get(o, ())])
                # the generated loop gathers windows that are not a whole source buffer into
                # buffers of their own, and the op writing the stage output writes a tile that is
                # then scattered into it (tvm_mixq.codegen.patches): both live during the op
                gathered = window_bytes(graph, st_, o, ins, not (first and mode != MODE_INPUT_COUNTED), bits_of)
                tile_out = s.bytes(out, max(p.tensor_tiles[out].area for p in st_.patches)
                                   * graph.tensors[out].shape[-1]) if out == st_.split_tensor else 0
                scratch_cache[(o, in_place)] = kernel + sum(align_up(b, alignment) for b in gathered + [tile_out])
            s.scratch(st, scratch_cache[(o, in_place)])
        body_end = len(s.steps) - 1
        s.span(s.key_of[st_.split_tensor], body_start, body_end)
        if first and mode != MODE_INPUT_COUNTED:
            return
        s.span(s.key_of[sin], body_start, body_end)
        in_key = s.root(s.key_of[sin])
        stage_set = set(st_.ops)
        readers_inside = all(u.index in stage_set for t in s.stores[in_key].tensors for u in consumers.get(t, []))
        overlap_on = stage_overlap and (first or st_.split_tensor in later_overlap)
        if overlap_on and readers_inside and not any(t in graph.outputs for t in s.stores[in_key].tensors):
            group_pairs.append((in_key, s.root(s.key_of[st_.split_tensor]), st_))

    if stage is not None:
        emit_stage(stage, True)

    # -- the rest, op by op or slice by slice ----------------------------------------------
    for o in order:
        if only_ops is not None and o not in only_ops:
            continue
        if o in later_first:
            sin = later_first[o].input_tensor
            if sin not in s.key_of:  # measured on its own: the input is simply there
                s.new(("t", sin), "tensor", s.bytes(sin), sin)
            emit_stage(later_first[o], False)
        if o in stage_ops:
            continue
        op = graph.ops[o]
        chain = in_split.get(o)
        if chain is not None:
            if chain.producer == o:
                _emit_split(s, chain, dies_at)
            continue
        st = s.step(o, "op")
        ins = activation_inputs(graph, op)
        for t in ins:
            s.use(s.key_of[t], st)
        out = op.outputs[0]
        in_place = False
        if op.kind in ALIAS_OPS and ins:
            k = s.alias(out, s.key_of[ins[0]])
            s.steps[st].folded = True
        elif op.kind == "PAD" and _pad_folds(graph, op, consumers):
            k = s.alias(out, s.key_of[ins[0]])
            s.steps[st].folded = True
        else:
            k = None
            if _in_place_kind(op):
                for t in ins:
                    kt = s.root(s.key_of[t])
                    if dies_at(kt, o) and s.bytes(out) <= s.stores[kt].size and s.stores[kt].kind != "accumulator" \
                            and _in_place_legal(s, op, t):
                        k = s.in_place(out, kt, "tensor", s.bytes(out))
                        in_place = True
                        break
            if k is None:
                k = s.new(("t", out), "tensor", s.bytes(out), out)
        s.use(k, st)
        s.steps[st].in_place = in_place
        x = graph.tensors[ins[0]] if ins else None
        y = graph.tensors[out]
        if x is not None and len(x.shape) == 4 and len(y.shape) == 4:
            s.scratch(st, scratch_fn(graph, op, (x.shape[1], x.shape[2]), (y.shape[1], y.shape[2]), in_place))
        else:
            s.scratch(st, scratch_fn(graph, op, (1, 1), (1, 1), in_place))
    end = max(len(s.steps) - 1, 0)
    for t in graph.outputs:
        if t in s.key_of:
            s.use(s.key_of[t], end)

    # -- buffers --------------------------------------------------------------------------
    buffers: list[Buffer] = []
    by_root: dict[Key, Buffer] = {}
    for key, st in s.stores.items():
        if s.root(key) != key or st.last < 0:
            continue
        names = [f"t{t}" for t in st.tensors] or [f"{'op' if st.kind == 'accumulator' else 'step'}{key[1]}"]
        prefix = {"tile": "tile", "input": "input", "scratch": "scratch", "accumulator": "acc", "slice": "slice"}
        label = prefix.get(st.kind, key[0] if key[0] in ("tile", "slice") else "t")
        if key[0] == "tile" and st.kind == "input":
            label = "input tile"
        name = f"{label}:{'+'.join(names)}"
        b = Buffer(name, st.size, st.first, st.last, st.kind, list(st.tensors))
        buffers.append(b)
        by_root[key] = b
    for a, b, st_ in group_pairs:
        if a != b:  # the stage output starts ``delta`` bytes before the input buffer
            key = ("overlap", id(st_), alignment)
            if key not in cache:
                cache[key] = align_up(overlap_delta(graph, st_, bits_of), alignment)
            s.anchors.append((a, b, -cache[key]))
    _make_groups(buffers, [(by_root[s.root(a)], by_root[s.root(b)], d) for a, b, d in s.anchors])
    return s.steps, buffers


def _make_groups(buffers: list[Buffer], anchors: list[tuple[Buffer, Buffer, int]]) -> None:
    """Join anchored buffers into groups with fixed relative offsets (smallest offset 0)."""
    group_of: dict[str, list[Buffer]] = {}
    offset: dict[str, int] = {b.name: 0 for b in buffers}
    member_of: dict[str, str] = {b.name: b.name for b in buffers}
    for b in buffers:
        group_of[b.name] = [b]
    for a, b, delta in anchors:
        ga, gb = member_of[a.name], member_of[b.name]
        if a is b or ga == gb:
            continue
        shift = offset[a.name] + delta - offset[b.name]  # move b's group so b sits at a + delta
        for m in group_of[gb]:
            offset[m.name] += shift
            member_of[m.name] = ga
        group_of[ga].extend(group_of.pop(gb))
        a.may_overlap = a.may_overlap + (b.name,)
        b.may_overlap = b.may_overlap + (a.name,)
    for root, members in group_of.items():
        if len(members) < 2:
            continue
        low = min(offset[m.name] for m in members)
        for m in members:
            m.group = f"group:{root}"
            m.group_offset = offset[m.name] - low


def _emit_split(s: _Schedule, chain: ChannelSplit, dies_at: Callable[[Key, int], bool]) -> None:
    g = s.g
    loop = f"slice:{chain.producer}"
    cs = math.ceil(chain.channels / chain.factor)
    sliced = set(chain.tensors)
    body_start = len(s.steps)
    spanning: list[Key] = []

    def slice_bytes(t: int) -> int:
        sh = g.tensors[t].shape
        return s.bytes(t, int(math.prod(sh[:-1])) * cs)

    for o in [chain.producer] + chain.channelwise:
        op = g.ops[o]
        st = s.step(o, "slice", loop)
        ins = activation_inputs(g, op)
        for t in ins:
            s.use(s.key_of[t], st)
            if t not in sliced:
                spanning.append(s.key_of[t])
        out = op.outputs[0]
        in_place = False
        if out in sliced and op.kind == "PAD" and _pad_folds(g, op, s.consumers):
            k = s.alias(out, s.key_of[ins[0]])
            s.steps[st].folded = True
        elif out in sliced:
            k = None
            if o != chain.producer and slice_bytes(out) <= s.stores[s.root(s.key_of[ins[0]])].size \
                    and _in_place_legal(s, op, ins[0]):
                k = s.in_place(out, s.key_of[ins[0]], "slice", slice_bytes(out))
                in_place = True
            if k is None:
                k = s.new(("slice", out), "slice", slice_bytes(out), out)
        else:
            k = s.new(("t", out), "tensor", s.bytes(out), out)
            spanning.append(k)
        s.use(k, st)
        s.steps[st].in_place = in_place
        x, y = g.tensors[ins[0]], g.tensors[out]
        scratch = s.scratch_fn(g, op, (x.shape[1], x.shape[2]), (y.shape[1], y.shape[2]), in_place)
        if o != chain.producer:
            scratch = math.ceil(scratch * cs / chain.channels)
        s.scratch(st, scratch)
    if chain.consumer is not None:
        q = g.ops[chain.consumer]
        st = s.step(chain.consumer, "accumulate", loop)
        t_in = activation_inputs(g, q)[0]
        s.use(s.key_of[t_in], st)
        acc = s.new(("acc", chain.consumer), "accumulator", chain.accumulator_bytes)
        s.use(acc, st)
        spanning.append(acc)
        x, y = g.tensors[t_in], g.tensors[q.outputs[0]]
        s.scratch(st, s.scratch_fn(g, q, (x.shape[1], x.shape[2]), (y.shape[1], y.shape[2]), False) * cs
                  // max(1, x.shape[-1]))
        body_end = len(s.steps) - 1
        st = s.step(chain.consumer, "requantize")
        s.use(acc, st)
        out = s.new(("t", q.outputs[0]), "tensor", s.bytes(q.outputs[0]), q.outputs[0])
        s.use(out, st)
        s.anchors.append((acc, out, 0))
    else:
        body_end = len(s.steps) - 1
    for k in spanning:
        s.span(k, body_start, body_end)
