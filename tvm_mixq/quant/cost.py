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
    ``out_bits``, ``macs``, ``instructions``; only the project's own kernels, ``impl="ours"``) or
    the ``mixq bench kernels --json`` output (``results`` rows with the same fields). For
    each (op family, in, w, out) the table gives instructions per MAC (total instructions over total
    MACs of the matching rows); an item costs ``macs * that ratio``. A combination the table does
    not hold is costed as the mean of the measured output widths of the same (op, in, w), and an
    unmeasured (op, in, w) as int8 (W8A8O8): never assumed faster than int8 without a
    measurement. Op families: ``pointwise`` (1x1 CONV_2D),
    ``conv2d``, ``depthwise``, ``fully_connected``.
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
        sums: dict[tuple[str, int, int, int], list[float]] = {}
        for r in rows:
            try:
                key = (str(r["op"]), int(r["in_bits"]), int(r["w_bits"]), int(r["out_bits"]))
                macs, instr = float(r["macs"]), float(r["instructions"])
            except (KeyError, TypeError, ValueError) as exc:
                raise MixqError(f"cost table {source}: malformed row {r!r}") from exc
            if macs <= 0 or instr <= 0:
                continue
            acc = sums.setdefault(key, [0.0, 0.0])
            acc[0] += instr
            acc[1] += macs
        if not sums:
            raise MixqError(f"cost table {source} has no row with positive macs and instructions")
        self.per_mac = {k: v[0] / v[1] for k, v in sums.items()}
        self.source = source
        self._warned: set[tuple[str, int, int, int]] = set()

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

    def instructions_per_mac(self, family: str, in_bits: int, w_bits: int, out_bits: int) -> float:
        key = (family, in_bits, w_bits, out_bits)
        if key in self.per_mac:
            return self.per_mac[key]
        same = [v for (f, i, w, _), v in self.per_mac.items() if (f, i, w) == (family, in_bits, w_bits)]
        if same:  # another output width of a measured (input, weight) pair: their mean
            return sum(same) / len(same)
        # An unmeasured (input, weight) pair is assumed no faster than int8 (scaling int8 by BitOPs
        # steered the search to variants that run slower than int8 on the device).
        base = [v for (f, i, w, o), v in self.per_mac.items() if (f, i, w, o) == (family, 8, 8, 8)]
        if not base:
            raise MixqError(f"cost table {self.source} has no {family} kernel at all")
        if key not in self._warned:
            self._warned.add(key)
            log.info("cost table %s has no %s kernel for W%dA%d: costed as int8", self.source, family, w_bits,
                     in_bits)
        return base[0]

    def op_cost(self, graph: Graph, op: int, macs: int, in_bits: int, w_bits: int, out_bits: int) -> float:
        fam = op_family(graph, graph.ops[op])
        return macs * self.instructions_per_mac(fam, in_bits, w_bits, out_bits)


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
