"""The deployment plan: the one typed object every stage after the reader reads and extends.

A :class:`Plan` records, for one :class:`tvm_mixq.graph.Graph`:

* the options it was made with (:class:`PlanOptions`, the ``mixq.*`` keys),
* the patch stage (:class:`PatchStage`): which ops run patch by patch, on which grid, and for every
  patch the exact tile each op reads and writes (halos and explicit padding included),
* the channel splits (:class:`ChannelSplit`): chains run slice by slice along the channel axis,
* the precision of every activation tensor (:class:`TensorPrecision`) and per-patch bitwidth
  overrides (:attr:`Patch.bits`), all 8-bit until the mixed-precision search lowers them,
* the schedule (:class:`Step`), the order in which kernels run, loops marked,
* the static memory plan (:class:`MemoryPlan`): arena buffers with lifetimes and offsets, the peak,
  and the live bytes at every step,
* work: MACs of the plan against the plain layer-by-layer model.

Reports print :meth:`Plan.summary`; code generators and the TFLM writer read the fields;
:meth:`Plan.to_dict` gives a JSON-ready view (the graph itself is referred to by name only).

Reading a plan for code generation: run ``steps`` in order (a run of steps with the same ``loop``
is a loop body: once per patch of ``patch_stage.patches`` (loop "patch"), per patch of the later
stage whose ``loop`` it is ("patch:<k>", :attr:`Plan.later_stages`), or per slice of the chain's
``slices()``). A tensor's bytes are at :meth:`MemoryPlan.buffer_of` (``kind`` "tile": the
tensor's region ``Patch.tensor_tiles[t]`` of the current patch, rows of that region's width;
"slice": the current channel slice, compact); the stage's first op reads its window from the
whole input (or, streamed, from the input tile the callback filled) and its last op writes its
tile into the whole stage output. A later stage is the same loop, its first op reading its
window from the whole intermediate ``input_tensor`` (at ``buffer_of(input_tensor)``), which may
share bytes with the stage output (the output rows written over input rows no later patch of
that stage reads, as for the first stage). ``Step.in_place`` outputs start at their input's address;
``Step.folded`` steps call no kernel. Scratch: :meth:`MemoryPlan.scratch_of`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .graph import Graph

#: Memory modes: the whole input tensor lives in the arena, or patches of the input are read
#: through a caller-supplied callback into a per-patch buffer (camera pipelines).
MODE_INPUT_COUNTED = "input counted"
MODE_STREAMED_INPUT = "streamed input"
MEMORY_MODES = (MODE_INPUT_COUNTED, MODE_STREAMED_INPUT)


@dataclass(frozen=True)
class Interval:
    """Half-open index range ``[start, stop)`` along one axis."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        return max(0, self.stop - self.start)

    def union(self, other: "Interval") -> "Interval":
        return Interval(min(self.start, other.start), max(self.stop, other.stop))

    def to_list(self) -> list[int]:
        return [self.start, self.stop]


@dataclass(frozen=True)
class Tile:
    """A spatial rectangle of an NHWC tensor: rows ``h``, columns ``w``, all channels."""

    h: Interval
    w: Interval

    @property
    def area(self) -> int:
        return self.h.size * self.w.size

    def union(self, other: "Tile") -> "Tile":
        return Tile(self.h.union(other.h), self.w.union(other.w))

    def to_dict(self) -> dict[str, list[int]]:
        return {"h": self.h.to_list(), "w": self.w.to_list()}


@dataclass(frozen=True)
class Padding:
    """Explicit zero-point padding (top, bottom, left, right) an op applies to its input tile."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.top, self.bottom, self.left, self.right)


@dataclass(frozen=True)
class OpTile:
    """What one op of the patch stage does for one patch.

    ``window`` is the part of the op's (first) activation input it reads, in that tensor's
    coordinates, clipped to the tensor; ``padding`` is the explicit padding to add around it
    (non-zero only at the tensor border); ``output`` is the output tile it computes.
    """

    op: int
    window: Tile
    padding: Padding
    output: Tile
    macs: int


@dataclass
class Patch:
    """One patch of the stage: grid position, the tile of the split tensor it owns, what each op
    computes, and bitwidth overrides for this patch (tensor index -> bits, empty = plan bits)."""

    index: int
    row: int
    col: int
    output: Tile
    op_tiles: list[OpTile]
    tensor_tiles: dict[int, Tile]  # every stage tensor (input included) -> region held per patch
    bits: dict[int, int] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(t.macs for t in self.op_tiles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "row": self.row,
            "col": self.col,
            "output": self.output.to_dict(),
            "ops": [
                {
                    "op": t.op,
                    "window": t.window.to_dict(),
                    "padding": list(t.padding.as_tuple()),
                    "output": t.output.to_dict(),
                    "macs": t.macs,
                }
                for t in self.op_tiles
            ],
            "tensor_tiles": {str(k): v.to_dict() for k, v in self.tensor_tiles.items()},
            "bits": {str(k): v for k, v in self.bits.items()},
        }


@dataclass
class PatchStage:
    """The ops run patch by patch, from the stage input to the split tensor.

    :attr:`Plan.patch_stage` reads the graph input. A *later* stage (:attr:`Plan.later_stages`)
    has exactly the same shape but reads a whole intermediate tensor (``input_tensor``, produced
    by an earlier op and read by no op outside the stage); its ``loop`` is ``"patch:<k>"``
    (k = 1, 2, ...), the ``loop`` of its steps.
    """

    ops: list[int]
    input_tensor: int
    split_tensor: int
    grid: tuple[int, int]
    patches: list[Patch]
    macs: int  # MACs of the stage run patch by patch
    baseline_macs: int  # MACs of the same ops run once on whole tensors
    loop: str = "patch"  # the Step.loop of the stage's body
    #: Later stage: the stage output is placed over its input, written only over input rows no
    #: later patch of the stage reads (the first stage does this whenever ``stage_overlap``).
    input_overlap: bool = False

    @property
    def recompute_macs(self) -> int:
        return self.macs - self.baseline_macs

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": list(self.ops),
            "input_tensor": self.input_tensor,
            "split_tensor": self.split_tensor,
            "grid": list(self.grid),
            "loop": self.loop,
            "input_overlap": self.input_overlap,
            "macs": self.macs,
            "baseline_macs": self.baseline_macs,
            "recompute_macs": self.recompute_macs,
            "patches": [p.to_dict() for p in self.patches],
        }


@dataclass
class ChannelSplit:
    """A chain run slice by slice along channels (Pex partial execution), no recomputation.

    ``producer`` computes output-channel slices from its whole input; ``channelwise`` ops map a
    slice to the same slice; ``consumer`` (optional) reads input-channel slices and adds their
    contribution into a full-size int32 accumulator (``accumulator_bytes``), requantized once
    after the last slice. ``tensors`` are the sliced intermediates, never whole in memory; a slice
    is stored compact, ``[N, H, W, slice channels]``. Slices are :meth:`slices` (first ones one
    channel wider when the factor does not divide the channels).
    """

    ops: list[int]
    producer: int
    channelwise: list[int]
    consumer: Optional[int]
    tensors: list[int]
    channels: int
    factor: int
    accumulator_bytes: int

    def slices(self) -> list[tuple[int, int]]:
        """Channel ranges ``[start, stop)`` of the slices, as even as possible."""
        base, extra = divmod(self.channels, self.factor)
        out, start = [], 0
        for i in range(self.factor):
            stop = start + base + (1 if i < extra else 0)
            out.append((start, stop))
            start = stop
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": list(self.ops),
            "producer": self.producer,
            "channelwise": list(self.channelwise),
            "consumer": self.consumer,
            "tensors": list(self.tensors),
            "channels": self.channels,
            "factor": self.factor,
            "accumulator_bytes": self.accumulator_bytes,
        }


@dataclass
class TensorPrecision:
    """Storage bitwidth and signedness of one activation tensor (8-bit signed by default)."""

    tensor: int
    bits: int = 8
    signed: bool = True


@dataclass
class Step:
    """One kernel call of the schedule. Steps inside a loop (``loop`` = "patch" or "slice:<k>")
    form the loop body, run once per patch or per channel slice; buffer lifetimes refer to steps.
    ``action`` is "op" (whole tensors), "patch" (one op on one patch tile), "slice" (one op on a
    channel slice), "accumulate" (consumer adds a slice into the int32 accumulator) or
    "requantize" (accumulator -> int8 output). ``in_place``: the kernel writes its output over its
    input (the kernel must support that aliasing)."""

    index: int
    op: int
    action: str
    loop: Optional[str] = None
    label: str = ""
    in_place: bool = False  # the output is written over the input (same start address)
    folded: bool = False  # no kernel: a view (RESHAPE) or a PAD folded into its consumers' padding


@dataclass
class Buffer:
    """One arena buffer: a tensor (or tensors sharing memory in place), a tile buffer, an
    accumulator or kernel scratch. Live from step ``first`` to step ``last`` inclusive."""

    name: str
    size: int
    first: int
    last: int
    kind: str  # "tensor", "tile", "accumulator", "scratch", "input"
    tensors: list[int] = field(default_factory=list)
    offset: int = -1
    group: Optional[str] = None  # buffers of one group are placed with fixed relative offsets
    group_offset: int = 0
    may_overlap: tuple[str, ...] = ()  # buffers it may share bytes with while both live

    @property
    def end(self) -> int:
        return self.offset + self.size

    def live_at(self, step: int) -> bool:
        return self.first <= step <= self.last

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "first": self.first,
            "last": self.last,
            "offset": self.offset,
            "kind": self.kind,
            "tensors": list(self.tensors),
        }


@dataclass
class TimelineEntry:
    """Arena use at one step: bytes of live buffers and the highest live address."""

    step: int
    label: str
    live_bytes: int
    high_water: int
    live: list[str]


@dataclass
class MemoryPlan:
    """Buffers placed in one arena. ``peak`` is the arena size (highest end of any buffer)."""

    mode: str
    alignment: int
    buffers: list[Buffer]
    peak: int
    timeline: list[TimelineEntry]

    @property
    def max_live_bytes(self) -> int:
        return max((t.live_bytes for t in self.timeline), default=0)

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    def buffer_of(self, tensor: int) -> Buffer:
        """The buffer holding a tensor: whole, or its per-patch tile / per-slice part."""
        for b in self.buffers:
            if tensor in b.tensors:
                return b
        raise KeyError(f"tensor {tensor} has no arena buffer")

    def accumulator_of(self, op: int) -> Buffer:
        """The int32 accumulator of a channel-split consumer op."""
        return self.buffer(f"acc:op{op}")

    def scratch_of(self, step: int) -> Optional[Buffer]:
        """Kernel scratch of a step, if it has any."""
        for b in self.buffers:
            if b.kind == "scratch" and b.name == f"scratch:step{step}":
                return b
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "alignment": self.alignment,
            "peak": self.peak,
            "max_live_bytes": self.max_live_bytes,
            "buffers": [b.to_dict() for b in self.buffers],
            "timeline": [
                {"step": t.step, "label": t.label, "live_bytes": t.live_bytes, "high_water": t.high_water}
                for t in self.timeline
            ],
        }


@dataclass
class PlanOptions:
    """The ``mixq.*`` options a plan was made with (see :mod:`tvm_mixq.schedule.options`)."""

    patch_grid: str = "auto"  # "auto", "off" or "NxM"
    patch_stage_end: str = "auto"  # "auto", an op index or a tensor name
    channel_split: str = "auto"  # "auto", "off" or a factor N
    stream_input: bool = False
    sram_limit_kb: Optional[float] = None
    max_extra_macs: float = 0.15
    alignment: int = 8
    bits: int = 8
    in_place_conv: bool = True  # 1x1 projections (Cout <= Cin) write over their input
    stage_overlap: bool = True  # the stage output overlaps input rows no later patch reads
    later_stages: bool = True  # deeper blocks may run as patch stages of their own (Plan.later_stages)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    """Everything decided about how one graph runs: patches, splits, precision, schedule, arena."""

    graph: Graph
    options: PlanOptions
    patch_stage: Optional[PatchStage]
    channel_splits: list[ChannelSplit]
    precision: dict[int, TensorPrecision]
    steps: list[Step]
    memory: MemoryPlan
    macs: int
    baseline_macs: int
    baseline_peak: int = 0  # layer-by-layer int8 arena with the same planner and mode
    planning_seconds: float = 0.0
    # Mixed precision (tvm_mixq.quant): the graph whose quantization the outlier patches of the
    # patch stage use for their inner tensors (same weights as ``graph``); None without outliers.
    outlier_graph: Optional[Graph] = None
    #: Patch stages after the first, in execution order, each reading a whole intermediate tensor
    #: (deeper blocks whose expanded intermediates do not fit whole; see :class:`PatchStage`).
    later_stages: list[PatchStage] = field(default_factory=list)

    @property
    def stages(self) -> list[PatchStage]:
        """Every patch stage in execution order: ``patch_stage`` (if any), then ``later_stages``."""
        return ([self.patch_stage] if self.patch_stage is not None else []) + list(self.later_stages)

    @property
    def extra_macs(self) -> float:
        """Extra work of the plan relative to the layer-by-layer model (0.09 = +9%)."""
        return (self.macs - self.baseline_macs) / self.baseline_macs if self.baseline_macs else 0.0

    @property
    def peak(self) -> int:
        return self.memory.peak

    def bits_of(self, tensor: int) -> int:
        p = self.precision.get(tensor)
        return p.bits if p is not None else self.graph.tensors[tensor].bits

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.graph.name,
            "options": self.options.to_dict(),
            "peak_sram_bytes": self.memory.peak,
            "baseline_peak_sram_bytes": self.baseline_peak,
            "macs": self.macs,
            "baseline_macs": self.baseline_macs,
            "extra_macs": self.extra_macs,
            "planning_seconds": self.planning_seconds,
            "patch_stage": self.patch_stage.to_dict() if self.patch_stage else None,
            "later_stages": [st.to_dict() for st in self.later_stages],
            "channel_splits": [c.to_dict() for c in self.channel_splits],
            "precision": {str(k): {"bits": v.bits, "signed": v.signed} for k, v in sorted(self.precision.items())},
            "steps": [
                {"index": s.index, "op": s.op, "action": s.action, "loop": s.loop, "label": s.label,
                 "in_place": s.in_place, "folded": s.folded}
                for s in self.steps
            ],
            "memory": self.memory.to_dict(),
        }

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def summary(self) -> str:
        """A few human-readable lines: the peak, the stage and grid, the splits, the work."""
        g = self.graph
        lines = [
            f"plan for {g.name}: peak SRAM {self.memory.peak:,} B ({self.memory.mode}), "
            f"layer-by-layer {self.baseline_peak:,} B",
            f"MACs {self.macs:,} vs {self.baseline_macs:,} ({self.extra_macs * 100:+.1f}%)",
        ]
        st = self.patch_stage
        if st is not None:
            t = g.tensors[st.split_tensor]
            lines.append(
                f"patch stage: ops {st.ops[0]}..{st.ops[-1]} ({len(st.ops)} ops) -> tensor {t.index} "
                f"{'x'.join(map(str, t.shape[1:]))}, grid {st.grid[0]}x{st.grid[1]}, "
                f"recomputation {st.recompute_macs:,} MACs"
            )
        else:
            lines.append("patch stage: none")
        for st in self.later_stages:
            t = g.tensors[st.split_tensor]
            lines.append(
                f"later patch stage ({st.loop}): ops {st.ops[0]}..{st.ops[-1]} from tensor {st.input_tensor} -> tensor "
                f"{t.index} {'x'.join(map(str, t.shape[1:]))}, grid {st.grid[0]}x{st.grid[1]}, "
                f"recomputation {st.recompute_macs:,} MACs"
            )
        for c in self.channel_splits:
            lines.append(
                f"channel split: ops {c.ops} in {c.factor} slices of {c.channels} channels"
                + (f", int32 accumulator {c.accumulator_bytes:,} B" if c.consumer is not None else "")
            )
        if not self.channel_splits:
            lines.append("channel splits: none")
        low = [p for p in self.precision.values() if p.bits != 8]
        if low:
            lines.append(f"sub-byte tensors: {len(low)}")
        peak_step = max(self.memory.timeline, key=lambda e: (e.live_bytes, e.high_water), default=None)
        if peak_step is not None:
            lines.append(f"busiest step {peak_step.step} ({peak_step.label}), {peak_step.live_bytes:,} B live: "
                         f"{', '.join(peak_step.live)}")
        lines.append(f"planning took {self.planning_seconds:.2f} s")
        return "\n".join(lines)
