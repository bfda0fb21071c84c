"""VDQS, value-driven quantization search: per-feature-map and per-layer-weight bitwidths.

Candidates
    *Feature maps*: int8 activation tensors written by an op of
    :data:`~tvm_mixq.quant.precision.SUBBYTE_OPS` and read only by such ops (not the graph's input or
    outputs). *Weights*: every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED. Each starts at 8
    bits and can step down through the allowed bitwidths (``mixq.bits``, e.g. 8 -> 4 -> 2).

Score of a step (candidate ``i`` from its current bitwidth to the next lower ``b``)
    ``S(i, b) = -lambda * Omega(i, b) + (1 - lambda) * Phi(i, b)``

    * ``Omega(i, b)``: entropy lost, measured against the entropy that remains,
      ``H_8(i)/H_b(i) - H_8(i)/H_cur(i)`` (:func:`entropy_loss`), where ``H`` is the Shannon
      entropy (bits) of the calibration distribution of ``i``'s quantized values: a feature map's
      int8 calibration histogram re-expressed on the b-bit grid of its calibrated scale and zero
      point (:func:`~tvm_mixq.quant.requantize.activation_quant`), or the weights' values after
      per-channel b-bit quantization. Divided by the largest ``Omega`` of the first steps, so the
      8 -> 4 steps lie in [0, 1] and the 4 -> 2 steps, which leave little information, above.
      (The plain difference ``H_cur - H_b`` made 4 -> 2 steps look cheaper than 8 -> 4 ones, since
      fewer bits of entropy remain to lose, and measured accuracy said the opposite.)
    * ``Phi(i, b)``: cost saved by the step (BitOPs, or measured instructions with
      ``cost_model="measured"``; outlier patches of VDPC counted at 8 bits) divided by the largest
      saving any single step offers from the all-int8 start. In [0, 1] for most steps.
    * ``lambda`` (``mixq.lambda``, default 0.5) trades accuracy proxy against gain.

Iteration
    Repeatedly apply the best-scoring step. Without a budget, stop when no step has a positive
    score. With a budget (``cost_budget``: a fraction of the int8 patch-based cost, and/or
    ``sram_budget_bytes`` with a function giving the peak SRAM of an assignment), keep applying the
    best step, positive or not, until the budget is met; stop (with a warning) when no step is left.
    Every step costs a few dictionary look-ups, so a search takes well under a second for the
    MLPerf Tiny models.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import MixqError
from ..graph import Graph, QuantParams
from .calibration import Calibration, entropy_bits
from .cost import CostEvaluator, CostModel
from .precision import SUBBYTE_OPS, WEIGHTED_OPS, PrecisionAssignment
from .requantize import activation_quant, apply_assignment, quantize_weights, requantize_histogram
from .vdpc import PatchClass

log = logging.getLogger(__name__)

DEFAULT_LAMBDA = 0.5

SramFn = Callable[[PrecisionAssignment], int]


def candidate_tensors(graph: Graph, calib: Calibration) -> list[int]:
    """Feature maps that may go below 8 bits (see the module docstring)."""
    producers = graph.producers()
    consumers = graph.consumers()
    outs = set(graph.outputs) | set(graph.inputs)
    found = []
    for t in calib.tensors:
        if t in outs or t not in producers:
            continue
        if producers[t].kind not in SUBBYTE_OPS:
            continue
        users = consumers.get(t, [])
        if not users or any(u.kind not in SUBBYTE_OPS for u in users):
            continue
        if any(u.kind in WEIGHTED_OPS and u.inputs[0] != t for u in users):
            continue
        found.append(t)
    return sorted(found)


def candidate_weight_ops(graph: Graph) -> list[int]:
    """Ops whose weights may go below 8 bits (not those sharing weights with another op)."""
    uses: dict[int, int] = {}
    for op in graph.ops:
        if op.kind in WEIGHTED_OPS:
            uses[op.inputs[1]] = uses.get(op.inputs[1], 0) + 1
    return [op.index for op in graph.ops if op.kind in WEIGHTED_OPS and uses[op.inputs[1]] == 1
            and graph.tensors[op.inputs[1]].data is not None]


def _real_weights(graph: Graph, op: int, float_weights: Optional[Mapping[int, np.ndarray]]) -> tuple[np.ndarray, int]:
    o = graph.ops[op]
    w = graph.tensors[o.inputs[1]]
    axis = 3 if o.kind == "DEPTHWISE_CONV_2D" else 0
    if float_weights is not None and op in float_weights:
        return np.asarray(float_weights[op], np.float64), axis
    s = np.asarray(w.quant.scale, np.float64)
    shape = [1] * len(w.shape)
    shape[axis] = w.shape[axis]
    if s.size == 1:
        return w.data.astype(np.float64) * float(s[0]), axis
    return w.data.astype(np.float64) * s.reshape(shape), axis


@dataclass
class Step:
    """One applied step of the search."""

    kind: str  # "act" or "weight"
    index: int  # tensor index or op index
    bits: int
    score: float
    omega: float
    phi: float
    cost_after: float


@dataclass
class VdqsResult:
    """The assignment VDQS found, with its figures."""

    assignment: PrecisionAssignment
    act_quant: dict[int, QuantParams]
    cost: float
    int8_cost: float
    bitops: int
    int8_bitops: int
    cost_model: str
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    budget_met: bool = True

    @property
    def bitops_reduction(self) -> float:
        return self.int8_bitops / self.bitops if self.bitops else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment.to_dict(),
            "cost_model": self.cost_model,
            "cost": self.cost,
            "int8_cost": self.int8_cost,
            "bitops": self.bitops,
            "int8_bitops": self.int8_bitops,
            "bitops_reduction": self.bitops_reduction,
            "steps": len(self.steps),
            "seconds": self.seconds,
            "budget_met": self.budget_met,
        }


class EntropyTable:
    """Entropy (bits) of every candidate at every allowed bitwidth, and the b-bit quantizations."""

    def __init__(self, graph: Graph, calib: Calibration, tensors: Sequence[int], ops: Sequence[int],
                 bits: Sequence[int], float_weights: Optional[Mapping[int, np.ndarray]] = None) -> None:
        self.act: dict[tuple[int, int], float] = {}
        self.act_quant: dict[tuple[int, int], QuantParams] = {}
        self.weight: dict[tuple[int, int], float] = {}
        for t in tensors:
            s = calib.tensors[t]
            for b in bits:
                qp = activation_quant(s.hist, s.scale, s.zero_point, b)
                self.act_quant[(t, b)] = qp
                self.act[(t, b)] = s.entropy if b == 8 else entropy_bits(
                    requantize_histogram(s.hist, s.scale, s.zero_point, qp, b))
        for o in ops:
            real, axis = _real_weights(graph, o, float_weights)
            for b in bits:
                if b == 8 and float_weights is None:
                    q = graph.tensors[graph.ops[o].inputs[1]].data
                else:
                    q = quantize_weights(real, b, axis, _scales(graph, o))[0] if b < 8 else _int8_weights(real, axis)
                self.weight[(o, b)] = entropy_bits(np.bincount(np.asarray(q, np.int64).ravel() + 128, minlength=256))


def _scales(graph: Graph, op: int) -> np.ndarray:
    o = graph.ops[op]
    w = graph.tensors[o.inputs[1]]
    channels = w.shape[3 if o.kind == "DEPTHWISE_CONV_2D" else 0]
    return np.broadcast_to(np.asarray(w.quant.scale, np.float64), (channels,))


def _int8_weights(real: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric per-channel int8 weights (TFLite's scheme, no clipping) of float weights."""
    moved = np.moveaxis(real, axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    shape = [1] * real.ndim
    shape[axis] = -1
    return np.clip(np.round(real / scale.reshape(shape)), -127, 127).astype(np.int8)


def entropy_loss(h8: float, h_cur: float, h_new: float) -> float:
    """Entropy lost by one step, measured against the entropy that remains: ``H8/Hnew - H8/Hcur``.

    Summed over the steps of a feature map this is ``H8/Hb - 1``: 0 at 8 bits, about 1 when half
    of the information is gone, growing fast as the last bits go (a 4 -> 2 step costs more than
    the 8 -> 4 step before it, which the plain difference ``Hcur - Hnew`` would not say).
    """
    if h8 <= 0:
        return 0.0
    tiny = 1e-6
    return max(0.0, h8 / max(h_new, tiny) - h8 / max(h_cur, tiny))


def _lower(bits: int, allowed: Sequence[int]) -> Optional[int]:
    lower = [b for b in allowed if b < bits]
    return max(lower) if lower else None


def vdqs_search(
    graph: Graph,
    calib: Calibration,
    plan: Any = None,
    patch_class: Optional[PatchClass] = None,
    bits: Sequence[int] = (8, 4, 2),
    lambda_: float = DEFAULT_LAMBDA,
    cost_model: Optional[CostModel] = None,
    cost_budget: Optional[float] = None,
    sram_budget_bytes: Optional[int] = None,
    sram_of: Optional[SramFn] = None,
    float_weights: Optional[Mapping[int, np.ndarray]] = None,
    search_weights: bool = True,
    search_activations: bool = True,
) -> VdqsResult:
    """Search bitwidths (see the module docstring).

    Parameters
    ----------
    graph : the int8 graph; calib : its calibration.
    plan : the plan whose patch stage the cost follows (None: layer by layer).
    patch_class : VDPC result (outlier patches counted at 8 bits in the cost).
    bits : allowed bitwidths, must include 8.
    lambda_ : trade-off in [0, 1].
    cost_model : :class:`~tvm_mixq.quant.cost.BitopsCost` (default) or
        :class:`~tvm_mixq.quant.cost.MeasuredCost`.
    cost_budget : stop once cost <= cost_budget * int8 cost (e.g. 1/2.2); None: stop when no
        step scores positive.
    sram_budget_bytes, sram_of : stop only once ``sram_of(assignment) <= sram_budget_bytes``.
    float_weights : op index -> float weights to requantize from.
    """
    t0 = time.perf_counter()
    allowed = sorted(set(int(b) for b in bits), reverse=True)
    if 8 not in allowed or any(b not in (8, 4, 2) for b in allowed):
        raise MixqError(f"allowed bitwidths {tuple(bits)} must be drawn from 8,4,2 and include 8")
    if not 0.0 <= lambda_ <= 1.0:
        raise MixqError(f"mixq.lambda must be within [0, 1], got {lambda_}")
    if cost_budget is not None and not cost_budget > 0:
        raise MixqError(f"cost budget must be a positive fraction of the int8 cost, got {cost_budget}")
    if sram_budget_bytes is not None and sram_of is None:
        raise MixqError("an SRAM budget needs the memory planner (sram_of)")
    ev = CostEvaluator(graph, plan, cost_model)
    tensors = candidate_tensors(graph, calib) if search_activations else []
    ops = candidate_weight_ops(graph) if search_weights else []
    ent = EntropyTable(graph, calib, tensors, ops, allowed, float_weights)
    a = PrecisionAssignment()
    if patch_class is not None:
        a.outlier_patches = list(patch_class.outlier_patches)
        a.outlier_tensors = list(patch_class.outlier_tensors)
    int8_cost = ev.cost(a)
    int8_bitops = ev.bitops(a)
    touched_act = {t: ev.ops_touching(t) for t in tensors}

    def delta(kind: str, idx: int, b: int) -> float:
        if kind == "act":
            affected = touched_act[idx]
            before = sum(ev.op_cost(o, a) for o in affected)
            old = a.act_bits.get(idx)
            a.act_bits[idx] = b
            after = sum(ev.op_cost(o, a) for o in affected)
            if old is None:
                del a.act_bits[idx]
            else:
                a.act_bits[idx] = old
        else:
            before = ev.op_cost(idx, a)
            old = a.weight_bits.get(idx)
            a.weight_bits[idx] = b
            after = ev.op_cost(idx, a)
            if old is None:
                del a.weight_bits[idx]
            else:
                a.weight_bits[idx] = old
        return before - after

    def moves() -> list[tuple[str, int, int]]:
        out = []
        for t in tensors:
            nb = _lower(a.bits_of_tensor(t), allowed)
            if nb is not None:
                out.append(("act", t, nb))
        for o in ops:
            nb = _lower(a.bits_of_weights(o), allowed)
            if nb is not None:
                out.append(("weight", o, nb))
        return out

    def raw_omega(kind: str, idx: int, b: int) -> float:
        table, cur_bits = (ent.act, a.bits_of_tensor(idx)) if kind == "act" else (ent.weight, a.bits_of_weights(idx))
        return entropy_loss(table[(idx, 8)], table[(idx, cur_bits)], table[(idx, b)])

    first = moves()
    phi_norm = max((delta(*m) for m in first), default=0.0)
    phi_norm = phi_norm if phi_norm > 0 else 1.0
    omega_norm = max((raw_omega(*m) for m in first), default=0.0)
    omega_norm = omega_norm if omega_norm > 0 else 1.0

    def omega(kind: str, idx: int, b: int) -> float:
        return raw_omega(kind, idx, b) / omega_norm
    cost = int8_cost
    steps: list[Step] = []
    budget_met = True

    def budget_ok(c: float) -> bool:
        if cost_budget is not None and c > cost_budget * int8_cost:
            return False
        if sram_budget_bytes is not None and sram_of is not None and sram_of(a) > sram_budget_bytes:
            return False
        return True

    has_budget = cost_budget is not None or sram_budget_bytes is not None
    while True:
        if has_budget and budget_ok(cost):
            break
        cands = moves()
        if not cands:
            budget_met = not has_budget
            if has_budget:
                log.warning("VDQS: no bitwidth left to lower and the budget is not met (cost %.3g of int8 %.3g)",
                            cost, int8_cost)
            break
        best = None
        for kind, idx, b in cands:
            d = delta(kind, idx, b)
            if d <= 0 and not has_budget:
                continue  # without a budget only steps that save cost are worth an entropy loss
            om = omega(kind, idx, b)
            ph = d / phi_norm
            s = -lambda_ * om + (1.0 - lambda_) * ph
            if best is None or s > best[0]:
                best = (s, kind, idx, b, om, ph, d)
        if best is None or (not has_budget and best[0] <= 0):
            if has_budget:
                budget_met = False
                log.warning("VDQS: no step lowers the cost further; budget not met")
            break
        s, kind, idx, b, om, ph, d = best
        if kind == "act":
            a.act_bits[idx] = b
        else:
            a.weight_bits[idx] = b
        cost -= d
        steps.append(Step(kind, idx, b, s, om, ph, cost))
    act_quant = {t: ent.act_quant[(t, b)] for t, b in a.act_bits.items() if b < 8}
    result = VdqsResult(a, act_quant, ev.cost(a), int8_cost, ev.bitops(a), int8_bitops,
                        getattr(ev.model, "name", "bitops"), steps, time.perf_counter() - t0, budget_met)
    log.info("VDQS (%s, lambda=%.2f): %d steps, BitOPs %.2fx below int8, %.3f s", result.cost_model, lambda_,
             len(steps), result.bitops_reduction, result.seconds)
    return result


def calibrated_act_quant(calib: Calibration, assignment: PrecisionAssignment) -> dict[int, QuantParams]:
    """Calibrated quantization of every sub-byte feature map of an assignment."""
    out = {}
    for t, b in assignment.act_bits.items():
        if b < 8:
            s = calib.tensors[t]
            out[t] = activation_quant(s.hist, s.scale, s.zero_point, b)
    return out


def build_graphs(graph: Graph, assignment: PrecisionAssignment, calib: Calibration,
                 float_weights: Optional[Mapping[int, np.ndarray]] = None,
                 bias_correction: bool = False) -> tuple[Graph, Optional[Graph]]:
    """The quantized graph of the normal patches (and of the layers outside the stage), and the
    graph of the outlier patches (None without outlier patches).

    ``bias_correction``: correct the biases of layers with sub-byte weights for the mean shift of
    the rounding, from the calibration's per-channel means (see
    :func:`~tvm_mixq.quant.requantize.apply_assignment`). Off by default: on the bundled
    Fashion-MNIST model it moved top-1 by +-1 point depending on the assignment (3,000 test
    images), i.e. it is not a reliable gain there.
    """
    aq = calibrated_act_quant(calib, assignment)
    means = None
    if bias_correction:
        means = {t: s.channel_mean for t, s in calib.tensors.items() if s.channel_mean is not None}
    normal = apply_assignment(graph, assignment, aq, float_weights, means)
    if not assignment.outlier_patches:
        return normal, None
    outl = PrecisionAssignment(assignment.outlier_act_bits(), dict(assignment.weight_bits))
    return normal, apply_assignment(graph, outl, aq, float_weights, means)


def uniform_assignment(graph: Graph, calib: Calibration, bits: int, weights: bool = True,
                       activations: bool = True) -> PrecisionAssignment:
    """Every candidate feature map and weight tensor at ``bits``."""
    a = PrecisionAssignment()
    if activations:
        a.act_bits = {t: bits for t in candidate_tensors(graph, calib)}
    if weights:
        a.weight_bits = {o: bits for o in candidate_weight_ops(graph)}
    return a


def random_assignment(graph: Graph, calib: Calibration, target_bitops: float, plan: Any = None,
                      patch_class: Optional[PatchClass] = None, bits: Sequence[int] = (8, 4, 2),
                      seed: int = 0) -> PrecisionAssignment:
    """Random steps (uniform over the available ones) until BitOPs <= ``target_bitops``."""
    rng = np.random.default_rng(seed)
    allowed = sorted(set(bits), reverse=True)
    ev = CostEvaluator(graph, plan)
    a = PrecisionAssignment()
    if patch_class is not None:
        a.outlier_patches = list(patch_class.outlier_patches)
        a.outlier_tensors = list(patch_class.outlier_tensors)
    tensors = candidate_tensors(graph, calib)
    ops = candidate_weight_ops(graph)
    while ev.bitops(a) > target_bitops:
        cands = [("act", t, _lower(a.bits_of_tensor(t), allowed)) for t in tensors]
        cands += [("weight", o, _lower(a.bits_of_weights(o), allowed)) for o in ops]
        cands = [c for c in cands if c[2] is not None]
        if not cands:
            break
        kind, idx, b = cands[int(rng.integers(len(cands)))]
        if kind == "act":
            a.act_bits[idx] = b
        else:
            a.weight_bits[idx] = b
    return a
