"""Cost of a precision assignment: BitOPs, or instructions measured by the kernel benchmark.

Work items
    The graph's work is a list of :class:`WorkItem`: one per (op, patch) for the ops of the plan's
    patch stages (the first one and ``Plan.later_stages``; MACs of that patch's tile, halo
    recomputation included) and one per op outside them (or for every op when there is no patch
    stage). Only the first stage's patches carry a patch index (VDPC classifies those). Only CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED carry MACs; ADD and pooling are not counted.

BitOPs (``cost_model="bitops"``)
    ``sum macs * b_in * b_w`` where ``b_in`` is the bitwidth of the op's activation input *as the
    patch sees it* (an outlier patch reads its outlier tensors at 8 bits) and ``b_w`` that of the
    op's weights. The int8 patch-based figure is ``64 * macs`` of the same work items.

Measured (``cost_model="measured"``)
    Instructions from the kernel benchmark: its cost table (``tvm_mixq/bench/data/
    cost_table_<target>.json``, ``entries`` with ``impl``, ``op``, ``in_bits``, ``w_bits``,
    ``out_bits``, ``macs``, ``instructions`` and the layer ``shape``; only the project's own
    kernels, ``impl="ours"``) or the ``mixq bench kernels --json`` output (``results`` rows with
    the same fields). Instructions per MAC depend on the shape as much as on the bitwidths (a
    2-bit pointwise layer with 8 input channels runs slower than int8, one with 64 at 1.6x its
    speed; stride-2 depthwise loses what stride 1 gains), so an item is costed at the
    instructions per MAC of the benchmarked layer nearest to it: same op family, distance over
    log2 of the reduction length (depthwise: channels), of the output channels and of the output
    pixels of the call (a patch's tile, not the whole layer), and the stride. Rows without a
    shape count as one layer of their own at the family's mean. A combination the table does not
    hold at that layer is costed as the mean of the measured output widths of the same (op, in,
    w), and an unmeasured (op, in, w) as int8 (W8A8O8) at that layer: never assumed faster than
    int8 without a measurement. Op families: ``pointwise`` (1x1 CONV_2D), ``conv2d``,
    ``depthwise``, ``fully_connected``.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from ..errors import MixqError
from ..graph import Graph, Op
from .precision import WEIGHTED_OPS, PrecisionAssignment

log = logging.getLogger(__name__)

COST_MODELS = ("auto", "bitops", "measured")


@dataclass(frozen=True)
class WorkItem:
    """MACs of one op, for one patch of the patch stage (``patch`` None: the whole op)."""

    op: int
    macs: int
    patch: Optional[int] = None


def op_macs(graph: Graph, op: Op) -> int:
    """MACs of an op run once on whole tensors (0 for ops without weights)."""
    if op.kind == "FULLY_CONNECTED":
        w = graph.tensors[op.inputs[1]].shape
        rows = graph.tensors[op.inputs[0]].size // int(w[-1])
        return int(rows * w[0] * w[-1])
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = graph.tensors[op.inputs[1]].shape
        y = graph.tensors[op.outputs[0]].shape
        per_pixel = int(w[0] * w[1] * w[2] * w[3]) if op.kind == "CONV_2D" else int(w[1] * w[2] * w[3])
        return int(y[0] * y[1] * y[2]) * per_pixel
    return 0


def work_items(graph: Graph, plan: Any = None) -> list[WorkItem]:
    """Work of the graph run as ``plan`` says (patch stage patch by patch), or layer by layer."""
    items: list[WorkItem] = []
    stage = getattr(plan, "patch_stage", None) if plan is not None else None
    later = list(getattr(plan, "later_stages", []) or []) if plan is not None else []
    staged: set[int] = set()
    for k, st in enumerate(([stage] if stage is not None else []) + later):
        staged.update(st.ops)
        first = st is stage
        for patch in st.patches:
            for tile in patch.op_tiles:
                if graph.ops[tile.op].kind in WEIGHTED_OPS and tile.macs > 0:
                    # only the first stage's patches are classified by VDPC
                    items.append(WorkItem(tile.op, int(tile.macs), patch.index if first else None))
    for op in graph.ops:
        if op.kind in WEIGHTED_OPS and op.index not in staged:
            items.append(WorkItem(op.index, op_macs(graph, op)))
    return items


class CostModel(Protocol):
    name: str

    def op_cost(self, graph: Graph, op: int, macs: int, in_bits: int, w_bits: int, out_bits: int) -> float:
        ...


class BitopsCost:
    """``macs * in_bits * w_bits``."""

    name = "bitops"

    def op_cost(self, graph: Graph, op: int, macs: int, in_bits: int, w_bits: int, out_bits: int) -> float:
        return float(macs * in_bits * w_bits)


def op_family(graph: Graph, op: Op) -> str:
    """The kernel-benchmark name of an op: pointwise, conv2d, depthwise or fully_connected."""
    if op.kind == "DEPTHWISE_CONV_2D":
        return "depthwise"
    if op.kind == "FULLY_CONNECTED":
        return "fully_connected"
    if op.kind == "CONV_2D":
        w = graph.tensors[op.inputs[1]].shape
        return "pointwise" if w[1] == 1 and w[2] == 1 else "conv2d"
    raise MixqError(f"no kernel cost for op kind {op.kind}")


#: Feature weights of the nearest-layer match: reduction length (depthwise: channels), output
#: channels, output pixels, stride.
_FEATURE_WEIGHTS = (1.0, 0.5, 0.5, 2.0)


def _features(family: str, k: int, cout: int, pixels: float, stride: int) -> tuple[float, ...]:
    import math

    del family
    return (math.log2(max(k, 1)), math.log2(max(cout, 1)), math.log2(max(pixels, 1.0)), float(stride))


def _row_features(family: str, shape: Any) -> Optional[tuple[float, ...]]:
    """Features of a benchmarked layer (its ``shape`` object), None when it has none."""
    if not isinstance(shape, dict):
        return None
    try:
        h, w, cin, cout = (int(shape[k]) for k in ("h", "w", "cin", "cout"))
        kh, kw = int(shape.get("kh", 1)), int(shape.get("kw", 1))
        stride, pad = int(shape.get("stride", 1)), int(shape.get("pad", 0))
    except (KeyError, TypeError, ValueError):
        return None
    if family == "fully_connected":
        return _features(family, cin, cout, 1, 1)
    oh = max((h + 2 * pad - kh) // stride + 1, 1)
    ow = max((w + 2 * pad - kw) // stride + 1, 1)
    k = cin if family == "depthwise" else kh * kw * cin
    return _features(family, k, cout, oh * ow, stride)


def op_features(graph: Graph, op: Op, macs: Optional[int] = None) -> tuple[float, ...]:
    """Features of an op's call (see :func:`_row_features`); ``macs``: those of a patch's tile,
    whose pixel count is ``macs`` over the op's MACs per output pixel."""
    family = op_family(graph, op)
    w = graph.tensors[op.inputs[1]].shape
    if family == "fully_connected":
        return _features(family, int(w[-1]), int(w[0]), 1, 1)
    y = graph.tensors[op.outputs[0]].shape
    whole = int(y[1] * y[2])
    per_pixel = max(op_macs(graph, op) // max(int(y[0]) * whole, 1), 1)
    pixels = whole if macs is None else max(macs / per_pixel, 1.0)
    stride = int(max(getattr(op.attrs, "stride", (1, 1))))
    if family == "depthwise":
        return _features(family, int(w[3]), int(y[3]), pixels, stride)
    return _features(family, int(w[1] * w[2] * w[3]), int(w[0]), pixels, stride)


class MeasuredCost:
    """Instructions per MAC from a kernel-benchmark cost table (see the module docstring)."""

    name = "measured"

    def __init__(self, table: dict[str, Any], source: str = "<table>", impl: str = "ours") -> None:
        rows = None
        if isinstance(table, dict):
            if isinstance(table.get("entries"), list):  # tvm_mixq.bench cost table
                rows = [r for r in table["entries"] if isinstance(r, dict) and r.get("impl", impl) == impl]
            else:  # `mixq bench kernels --json` output
                rows = table.get("results")
        if not isinstance(rows, list) or not rows:
            raise MixqError(f"cost table {source} has no 'results' rows (nor 'entries' of impl {impl!r})")
        # (family, layer features) -> (in, w, out) -> [instructions, macs]
        layers: dict[tuple[str, Optional[tuple[float, ...]]], dict[tuple[int, int, int], list[float]]] = {}
        for r in rows:
            try:
                family = str(r["op"])
                bits = (int(r["in_bits"]), int(r["w_bits"]), int(r["out_bits"]))
                macs, instr = float(r["macs"]), float(r["instructions"])
            except (KeyError, TypeError, ValueError) as exc:
                raise MixqError(f"cost table {source}: malformed row {r!r}") from exc
            if macs <= 0 or instr <= 0:
                continue
            acc = layers.setdefault((family, _row_features(family, r.get("shape"))), {}).setdefault(bits, [0.0, 0.0])
            acc[0] += instr
            acc[1] += macs
        if not layers:
            raise MixqError(f"cost table {source} has no row with positive macs and instructions")
        self.layers = {k: {b: v[0] / v[1] for b, v in per.items()} for k, per in layers.items()}
        self.source = source
        self._warned: set[tuple[str, int, int, int]] = set()
        self._memo: dict[tuple, float] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "MeasuredCost":
        try:
            with open(path, encoding="utf-8") as f:
                table = json.load(f)
        except OSError as exc:
            raise MixqError(f"cannot read cost table {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise MixqError(f"cost table {path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        return cls(table, str(path))

    def _nearest(self, family: str, features: Optional[tuple[float, ...]]) -> dict[tuple[int, int, int], float]:
        """Instructions per MAC by bitwidths at the benchmarked layer nearest to ``features``
        (without features: every layer of the family pooled)."""
        cands = [(f, per) for (fam, f), per in self.layers.items() if fam == family]
        if not cands:
            raise MixqError(f"cost table {self.source} has no {family} kernel at all")
        if features is None or all(f is None for f, _ in cands):
            pooled: dict[tuple[int, int, int], list[float]] = {}
            for _, per in cands:
                for b, v in per.items():
                    pooled.setdefault(b, []).append(v)
            return {b: sum(v) / len(v) for b, v in pooled.items()}

        def dist(f: Optional[tuple[float, ...]]) -> float:
            if f is None:
                return float("inf")
            return sum(wt * abs(a - b) for wt, a, b in zip(_FEATURE_WEIGHTS, f, features))

        return min(cands, key=lambda c: dist(c[0]))[1]

    def instructions_per_mac(self, family: str, in_bits: int, w_bits: int, out_bits: int,
                             features: Optional[tuple[float, ...]] = None) -> float:
        key = (family, in_bits, w_bits, out_bits, features)
        if key in self._memo:
            return self._memo[key]
        per = self._nearest(family, features)
        bits = (in_bits, w_bits, out_bits)
        if bits in per:
            value = per[bits]
        else:
            same = [v for (i, w, _), v in per.items() if (i, w) == (in_bits, w_bits)]
            if same:  # another output width of a measured (input, weight) pair: their mean
                value = sum(same) / len(same)
            elif (8, 8, 8) in per:
                # An unmeasured (input, weight) pair is assumed no faster than int8 (scaling int8 by
                # BitOPs steered the search to variants that run slower than int8 on the device).
                value = per[(8, 8, 8)]
                if key[:4] not in self._warned:
                    self._warned.add(key[:4])
                    log.info("cost table %s has no %s kernel for W%dA%d: costed as int8", self.source, family,
                             w_bits, in_bits)
            else:
                raise MixqError(f"cost table {self.source} has no int8 {family} kernel to cost W{w_bits}A{in_bits}")
        self._memo[key] = value
        return value

    def op_cost(self, graph: Graph, op: int, macs: int, in_bits: int, w_bits: int, out_bits: int) -> float:
        o = graph.ops[op]
        fam = op_family(graph, o)
        return macs * self.instructions_per_mac(fam, in_bits, w_bits, out_bits, op_features(graph, o, macs))


def mac_weights(graph: Graph, model: CostModel) -> Optional[dict[int, float]]:
    """Per weighted op: its instructions per MAC (measured model, at the graph's bitwidths) over
    the model's MAC-weighted mean, for the memory planner's recomputation cost; None for BitOPs."""
    if not isinstance(model, MeasuredCost):
        return None
    ipm: dict[int, float] = {}
    macs: dict[int, int] = {}
    for op in graph.ops:
        m = op_macs(graph, op) if op.kind in WEIGHTED_OPS else 0
        if m <= 0:
            continue
        bits = tuple(graph.tensors[t].bits for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        ipm[op.index] = model.op_cost(graph, op.index, m, *bits) / m
        macs[op.index] = m
    if not ipm:
        return None
    mean = sum(ipm[o] * macs[o] for o in ipm) / sum(macs.values())
    return {o: v / mean for o, v in ipm.items()}


def _target_table(target: str) -> Optional[str]:
    """The kernel benchmark's cost table of a core, when the repository has one."""
    from ..bench.cost_table import default_path

    try:
        path = default_path(target)
    except MixqError:
        return None
    return str(path) if path.is_file() else None


def make_cost_model(name: str, table_path: Optional[str] = None, target: Optional[str] = None) -> CostModel:
    """``bitops`` or ``measured`` (the latter reads the kernel benchmark's cost table: ``table_path``,
    else the benchmark's default file for ``target``, ``tvm_mixq/bench/data/cost_table_<target>.json``);
    ``auto`` (``mixq.cost_model``'s default) is ``measured`` when such a table exists, else ``bitops``."""
    if name == "auto":  # measured when a table is at hand (given, or the target's), else BitOPs
        if table_path is not None or (target is not None and _target_table(target) is not None):
            return make_cost_model("measured", table_path, target)
        return BitopsCost()
    if name == "bitops":
        return BitopsCost()
    if name == "measured":
        if table_path is None and target is not None:
            table_path = _target_table(target)
        if table_path is None:
            raise MixqError("mixq.cost_model=measured needs a kernel cost table (mixq bench kernels --cost-table "
                            "PATH, or scripts/bench_kernels.py)")
        return MeasuredCost.from_file(table_path)
    raise MixqError(f"unknown cost model {name!r}: expected one of {', '.join(COST_MODELS)}")


class CostEvaluator:
    """Cost of assignments of one graph and one plan, fast enough to call in the search loop."""

    def __init__(self, graph: Graph, plan: Any = None, model: Optional[CostModel] = None) -> None:
        self.graph = graph
        self.items = work_items(graph, plan)
        self.model = model if model is not None else BitopsCost()
        self._in = {op.index: op.inputs[0] for op in graph.ops if op.kind in WEIGHTED_OPS}
        self._out = {op.index: op.outputs[0] for op in graph.ops if op.kind in WEIGHTED_OPS}
        # work items grouped by op, outlier patches separately
        self._by_op: dict[int, list[WorkItem]] = {}
        for it in self.items:
            self._by_op.setdefault(it.op, []).append(it)

    @property
    def macs(self) -> int:
        return sum(it.macs for it in self.items)

    def int8_bitops(self) -> int:
        return 64 * self.macs

    def op_cost(self, op: int, a: PrecisionAssignment) -> float:
        total = 0.0
        outliers = set(a.outlier_patches)
        out_tensors = set(a.outlier_tensors)
        t_in, t_out = self._in[op], self._out[op]
        wb = a.bits_of_weights(op)
        for it in self._by_op.get(op, []):
            in_b = a.bits_of_tensor(t_in)
            out_b = a.bits_of_tensor(t_out)
            if it.patch is not None and it.patch in outliers:
                if t_in in out_tensors:
                    in_b = 8
                if t_out in out_tensors:
                    out_b = 8
            total += self.model.op_cost(self.graph, op, it.macs, in_b, wb, out_b)
        return total

    def op_bits(self, op: int, a: PrecisionAssignment) -> tuple[int, int, int]:
        """(input, weight, output) bitwidths of a weighted op outside outlier patches."""
        return a.bits_of_tensor(self._in[op]), a.bits_of_weights(op), a.bits_of_tensor(self._out[op])

    def cost(self, a: PrecisionAssignment) -> float:
        return sum(self.op_cost(op, a) for op in self._by_op)

    def bitops(self, a: PrecisionAssignment) -> int:
        """BitOPs whatever the evaluator's model."""
        if isinstance(self.model, BitopsCost):
            return int(self.cost(a))
        saved = self.model
        self.model = BitopsCost()
        try:
            return int(self.cost(a))
        finally:
            self.model = saved

    def ops_touching(self, tensor: int) -> list[int]:
        """Weighted ops whose cost depends on a tensor's bitwidth (it is their input or output)."""
        return [o for o in self._by_op if self._in[o] == tensor or self._out[o] == tensor]
