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
      per-channel b-bit quantization. Divided by the largest entropy loss of the first steps, so
      the 8 -> 4 steps lie in [0, 1] and the 4 -> 2 steps, which leave little information, above.
      (The plain difference ``H_cur - H_b`` made 4 -> 2 steps look cheaper than 8 -> 4 ones, since
      fewer bits of entropy remain to lose, and measured accuracy said the opposite.)
    * *Measured sensitivity* (``sensitivity="measured"``, the default, ``mixq.sensitivity``): the
      entropy term is multiplied by the step's measured output divergence on calibration samples,
      relative to the mean divergence of all first steps (:func:`_sensitivity_weights`,
      :mod:`tvm_mixq.quant.sensitivity`). The entropy loss stays the proxy of the score; the
      measurement says *where* in the model a lost bit matters (on the bundled Fashion-MNIST model
      the first feature map is 15x as sensitive as the average one, which entropy alone does not
      see). ``sensitivity="entropy"``: the entropy loss alone.
    * ``Phi(i, b)``: cost saved by the step (BitOPs, or measured instructions with
      ``cost_model="measured"``; outlier patches of VDPC counted at 8 bits) divided by the largest
      saving any single step offers from the all-int8 start. In [0, 1] for most steps.
    * ``lambda`` (``mixq.lambda``, default 0.5) trades accuracy proxy against gain: a step is worth
      taking when its gain exceeds ``lambda / (1 - lambda)`` times its accuracy loss.

Iteration
    Repeatedly apply the best-scoring step. Without a budget, stop when no step has a positive
    score. With a budget (``cost_budget``: a fraction of the int8 patch-based cost, and/or
    ``sram_budget_bytes`` with a function giving the peak SRAM of an assignment): apply the best
    positive-scoring steps until the budget is met; if ``mixq.lambda``'s positive steps run out
    first, ``lambda`` is lowered by bisection to the largest value whose positive-scoring steps
    meet the budget (so steps are then taken in the order of gain per accuracy lost). The last step
    usually overshoots the budget: afterwards steps are given back (a candidate's latest one, the
    most accuracy per unit of cost first) while the budget stays met. When no single step saves
    cost (a measured cost table where only matched sub-byte kernels beat int8), an op's input
    feature map and weights are lowered together as one step. If even that cannot reach the
    budget, the best step is taken whatever it saves, until no step is left (warning).
    Accuracy budget (``loss_budget``): steps, single or joint, are taken in the order of cost
    saved per unit of Omega while the Omega spent stays within the budget. Without a cost budget
    the measured cost model uses it (:func:`~tvm_mixq.quant.assign.assign_precision`): the budget
    is the Omega that a BitOPs search to :data:`ANCHOR_BITOPS_BUDGET` spends, the operating point
    whose accuracy was measured. ``lambda``'s score alone was no guide there: on VWW-96 it took
    every feature map to 2 or 4 bits (BitOPs 0.19 of int8) and 11 of 16 test inputs kept the int8
    class.
    Entropy look-ups cost nothing; the measurements take a few seconds (bounded by
    ``sensitivity_seconds``, default 12 s), so a search stays well under 30 s on the MLPerf Tiny
    models.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import MixqError
from ..graph import Graph, QuantParams
from ..options import SENSITIVITIES, WEIGHT_ROUNDINGS  # accuracy proxies; sub-byte weight roundings
from .calibration import Calibration, entropy_bits
from .cost import CostEvaluator, CostModel
from .equalize import DEFAULT_STRENGTH as DEFAULT_EQUALIZE, equalize, equalized_stats
from .precision import SUBBYTE_OPS, WEIGHTED_OPS, PrecisionAssignment
from .requantize import (activation_quant, activation_shift, apply_assignment, quantize_weights,
                         requantize_histogram)
from .vdpc import PatchClass

log = logging.getLogger(__name__)

DEFAULT_LAMBDA = 0.5
#: The BitOPs budget whose accuracy the project measured (Fashion-MNIST: 2.2x fewer BitOPs than
#: int8 for 0.44 points of top-1) and whose accuracy proxy anchors a measured-cost search without
#: a budget (module docstring, "Accuracy budget").
ANCHOR_BITOPS_BUDGET = 1 / 2.2
DEFAULT_SENSITIVITY_SECONDS = 12.0
#: Bisection steps on lambda when mixq.lambda's positive-scoring steps do not meet the budget.
BISECTION_STEPS = 12

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
    #: quantization of each sub-byte map after range equalization (build_graphs does not equalize
    #: the maps outlier patches keep at 8 bits; it recomputes theirs)
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
                 bits: Sequence[int], float_weights: Optional[Mapping[int, np.ndarray]] = None,
                 equalize_strength: float = 0.0) -> None:
        self.act: dict[tuple[int, int], float] = {}
        self.act_quant: dict[tuple[int, int], QuantParams] = {}
        self.weight: dict[tuple[int, int], float] = {}
        # a sub-byte feature map is quantized after range equalization (its statistics depend on
        # its own channel factors only, so one pass over all of them serves every step)
        low = equalized_stats(graph, calib, tensors, equalize_strength)
        for t in tensors:
            for b in bits:
                s = calib.tensors[t] if b == 8 else low[t]
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
    sensitivity: str = "measured",
    sensitivity_seconds: float = DEFAULT_SENSITIVITY_SECONDS,
    loss_budget: Optional[float] = None,
    sensitivity_cache: Optional[dict] = None,
    admissible: Optional[Callable[[int, int, int, int], bool]] = None,
    equalize_strength: float = DEFAULT_EQUALIZE,
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
    sensitivity : ``measured`` (default): the entropy loss of a step is weighted by the measured
        change of the model's output on calibration samples (:func:`_sensitivity_weights`);
        ``entropy``: the entropy loss alone (needs no model runs).
    sensitivity_seconds : time budget of the measurements.
    loss_budget : instead of ``lambda_`` (and without ``cost_budget``): spend at most this much
        accuracy proxy (the sum of the steps' Omega) on the steps that save the most cost per unit
        of Omega (see "Accuracy budget" in the module docstring).
    sensitivity_cache : a dict shared by searches of the same graph, calibration and candidates,
        so that the sensitivity measurements run once.
    admissible : ``(op, in_bits, w_bits, out_bits) -> bool``; a step that would give a weighted op
        bitwidths it refuses is never taken (e.g. a kernel whose scratch would not fit the SRAM,
        :func:`~tvm_mixq.quant.assign.scratch_admissible`).
    equalize_strength : ``mixq.equalize``: sub-byte feature maps are costed and measured as
        :func:`build_graphs` quantizes them, after range equalization (0: off).
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
    ent = EntropyTable(graph, calib, tensors, ops, allowed, float_weights, equalize_strength)
    start = PrecisionAssignment()
    if patch_class is not None:
        start.outlier_patches = list(patch_class.outlier_patches)
        start.outlier_tensors = list(patch_class.outlier_tensors)
    int8_cost = ev.cost(start)
    int8_bitops = ev.bitops(start)
    touched_act = {t: ev.ops_touching(t) for t in tensors}

    def delta(a: PrecisionAssignment, kind: str, idx: int, b: int) -> float:
        """Cost saved by setting candidate ``idx`` to ``b`` bits in ``a`` (``a`` left unchanged)."""
        table = a.act_bits if kind == "act" else a.weight_bits
        affected = touched_act[idx] if kind == "act" else [idx]
        before = sum(ev.op_cost(o, a) for o in affected)
        old = table.get(idx)
        table[idx] = b
        after = sum(ev.op_cost(o, a) for o in affected)
        if old is None:
            del table[idx]
        else:
            table[idx] = old
        return before - after

    def moves(a: PrecisionAssignment) -> list[tuple[str, int, int]]:
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

    joint_pairs = [(o, graph.ops[o].inputs[0]) for o in ops if graph.ops[o].inputs[0] in set(tensors)]

    def joint_moves(a: PrecisionAssignment) -> list[tuple[list[tuple[str, int, int]], float]]:
        """Each op's input feature map and weights lowered together, with the cost it saves."""
        out = []
        for o, t in joint_pairs:
            bt, bw = _lower(a.bits_of_tensor(t), allowed), _lower(a.bits_of_weights(o), allowed)
            if bt is None or bw is None:
                continue
            old_t, old_w = a.act_bits.get(t), a.weight_bits.get(o)
            affected = sorted(set(touched_act[t]) | {o})
            before = sum(ev.op_cost(x, a) for x in affected)
            a.act_bits[t], a.weight_bits[o] = bt, bw
            after = sum(ev.op_cost(x, a) for x in affected)
            for table, key, old in ((a.act_bits, t, old_t), (a.weight_bits, o, old_w)):
                if old is None:
                    del table[key]
                else:
                    table[key] = old
            out.append(([("act", t, bt), ("weight", o, bw)], before - after))
        return out

    def cur_bits(a: PrecisionAssignment, kind: str, idx: int) -> int:
        return a.bits_of_tensor(idx) if kind == "act" else a.bits_of_weights(idx)

    def raw_entropy(a: PrecisionAssignment, kind: str, idx: int, b: int) -> float:
        table = ent.act if kind == "act" else ent.weight
        return entropy_loss(table[(idx, 8)], table[(idx, cur_bits(a, kind, idx))], table[(idx, b)])

    first = moves(start)
    phi_norm = max((delta(start, *m) for m in first), default=0.0)
    phi_norm = phi_norm if phi_norm > 0 else 1.0
    entropy_norm = max((raw_entropy(start, *m) for m in first), default=0.0)
    entropy_norm = entropy_norm if entropy_norm > 0 else 1.0

    if sensitivity_cache is not None and "weights" in sensitivity_cache:
        weight_of = sensitivity_cache["weights"]
    else:
        weight_of = _sensitivity_weights(graph, calib, ent, tensors, ops, allowed, patch_class, plan, float_weights,
                                         sensitivity, sensitivity_seconds, equalize_strength)
        if sensitivity_cache is not None:
            sensitivity_cache["weights"] = weight_of

    def raw_omega(a: PrecisionAssignment, kind: str, idx: int, b: int) -> float:
        om = raw_entropy(a, kind, idx, b) / entropy_norm
        if weight_of is not None:
            om *= weight_of(kind, idx, cur_bits(a, kind, idx), b)
        return om

    # the measured weights have mean 1 over the first steps, so Omega keeps the entropy term's scale
    # (a few very sensitive candidates do not make every other step look free)
    omega_norm = 1.0

    def omega(a: PrecisionAssignment, kind: str, idx: int, b: int) -> float:
        return raw_omega(a, kind, idx, b) / omega_norm

    def budget_ok(a: PrecisionAssignment, c: float) -> bool:
        if cost_budget is not None and c > cost_budget * int8_cost * (1 + 1e-12):
            return False
        if sram_budget_bytes is not None and sram_of is not None and sram_of(a) > sram_budget_bytes:
            return False
        return True

    has_budget = cost_budget is not None or sram_budget_bytes is not None

    def fits(a: PrecisionAssignment, changes: list[tuple[str, int, int]]) -> bool:
        """Whether every weighted op the changes touch keeps admissible bitwidths."""
        if admissible is None:
            return True
        prev: dict = {}
        affected: set[int] = set()
        for kind, idx, b in changes:
            _set_bits(a, prev, kind, idx, b)
            affected.update(touched_act[idx] if kind == "act" else [idx])
        try:
            return all(admissible(o, *ev.op_bits(o, a)) for o in affected)
        finally:
            _restore_bits(a, prev)

    def omegas(a: PrecisionAssignment, changes: list[tuple[str, int, int]]) -> list[float]:
        """Omega of each change of a joint step, each taken after the ones before it."""
        out: list[float] = []
        prev: dict = {}
        for kind, idx, b in changes:
            out.append(omega(a, kind, idx, b))
            _set_bits(a, prev, kind, idx, b)
        _restore_bits(a, prev)
        return out

    def greedy(lam: float, until_budget: bool, any_step: bool = False) -> tuple[PrecisionAssignment, list[Step],
                                                                                float, bool]:
        """Apply the best positive-scoring step until none is left (or, ``until_budget``, until the
        budget is met; ``any_step``: the best step even when it saves nothing or scores <= 0).
        Returns the assignment, its steps, its cost and whether the budget is met; with
        ``any_step``, when the budget is never met, the cheapest point the steps passed (a step
        that costs more, such as an 8-bit-input layer's weights at 4 bits, is not kept for nothing)."""
        a = start.copy()
        cost = int8_cost
        steps: list[Step] = []
        cheapest = (cost, 0, a.copy())
        while not (until_budget and budget_ok(a, cost)):
            best = None
            for kind, idx, b in moves(a):
                d = delta(a, kind, idx, b)
                if d <= 0 and not any_step:
                    continue  # only steps that save cost are worth an entropy loss
                if not fits(a, [(kind, idx, b)]):
                    continue
                om = omega(a, kind, idx, b)
                ph = d / phi_norm
                sc = -lam * om + (1.0 - lam) * ph
                if best is None or sc > best[0]:
                    best = (sc, [(kind, idx, b, om)], ph, d)
            if best is None or (best[0] <= 0 and not any_step):
                # no single step pays: lowering an op's input and weights together may (a cost
                # table where only matched sub-byte kernels are faster than int8)
                for changes, d in joint_moves(a):
                    if d <= 0 or not fits(a, changes):
                        continue
                    oms = omegas(a, changes)
                    ph = d / phi_norm
                    sc = -lam * sum(oms) + (1.0 - lam) * ph
                    if sc > 0 and (best is None or best[0] <= 0 or sc > best[0]):
                        best = (sc, [(k, i, b, o) for (k, i, b), o in zip(changes, oms)], ph, d)
            if best is None or (best[0] <= 0 and not any_step):
                break
            sc, changes, ph, d = best
            cost -= d
            for kind, idx, b, om in changes:
                (a.act_bits if kind == "act" else a.weight_bits)[idx] = b
                steps.append(Step(kind, idx, b, sc, om, ph / len(changes), cost))
            if cost < cheapest[0]:
                cheapest = (cost, len(steps), a.copy())
        met = budget_ok(a, cost)
        if any_step and not met and cheapest[0] < cost:
            cost, n, a = cheapest
            steps = steps[:n]
        return a, steps, cost, met

    def by_ratio(limit: float) -> tuple[PrecisionAssignment, list[Step], float]:
        """Steps (single or joint) in the order of cost saved per unit of Omega, while the
        Omega spent stays within ``limit``."""
        a = start.copy()
        cost = int8_cost
        steps: list[Step] = []
        spent = 0.0
        while True:
            best = None
            cands = [([m], delta(a, *m)) for m in moves(a)] + joint_moves(a)
            for changes, d in cands:
                if d <= 0 or not fits(a, changes):
                    continue
                oms = omegas(a, changes)
                om = sum(oms)
                if spent + om > limit * (1 + 1e-9) + 1e-12:
                    continue
                ratio = d / max(om, 1e-12)
                if best is None or ratio > best[0]:
                    best = (ratio, changes, oms, d)
            if best is None:
                return a, steps, cost
            ratio, changes, oms, d = best
            cost -= d
            spent += sum(oms)
            for (kind, idx, b), om in zip(changes, oms):
                (a.act_bits if kind == "act" else a.weight_bits)[idx] = b
                steps.append(Step(kind, idx, b, ratio, om, d / phi_norm / len(changes), cost))

    if loss_budget is not None and cost_budget is None and sram_budget_bytes is None:
        a, steps, cost = by_ratio(loss_budget)
        budget_met = True
    elif not has_budget:
        a, steps, cost, _ = greedy(lambda_, until_budget=False)
        budget_met = True
    else:
        # The score's lambda is the price of accuracy in cost: a step is worth it when its gain
        # exceeds lambda/(1-lambda) times its entropy loss. Start from mixq.lambda; when its
        # positive-scoring steps do not reach the budget, lower lambda (bisection) to the largest
        # value whose positive-scoring steps do, then stop at the first step that meets it.
        a, steps, cost, budget_met = greedy(lambda_, until_budget=True)
        if not budget_met:
            a0, steps0, cost0, met0 = greedy(0.0, until_budget=True)
            if not met0:
                # no sequence of cost-saving steps reaches the budget (a cost model where a step
                # pays off only once another is made): the best step, whatever it saves
                a, steps, cost, budget_met = greedy(lambda_, until_budget=True, any_step=True)
                if not budget_met:
                    log.warning("VDQS: no step lowers the cost further; budget not met (cost %.3g of int8 %.3g)",
                                cost, int8_cost)
            else:
                lo, hi = 0.0, lambda_
                best_run = (a0, steps0, cost0, met0)
                for _ in range(BISECTION_STEPS):
                    mid = 0.5 * (lo + hi)
                    run = greedy(mid, until_budget=True)
                    if run[3]:
                        lo, best_run = mid, run
                    else:
                        hi = mid
                a, steps, cost, budget_met = best_run
        if budget_met:
            cost = _give_back(a, steps, cost, budget_ok, delta, omega, fits)
    act_quant = {t: ent.act_quant[(t, b)] for t, b in a.act_bits.items() if b < 8}
    result = VdqsResult(a, act_quant, ev.cost(a), int8_cost, ev.bitops(a), int8_bitops,
                        getattr(ev.model, "name", "bitops"), steps, time.perf_counter() - t0, budget_met)
    log.info("VDQS (%s, lambda=%.2f, %s): %d steps, BitOPs %.2fx below int8, %.3f s", result.cost_model, lambda_,
             sensitivity, len(steps), result.bitops_reduction, result.seconds)
    return result


def _set_bits(a: PrecisionAssignment, prev: dict, kind: str, idx: int, b: int) -> None:
    """Set a candidate's bitwidth, remembering in ``prev`` what it was first."""
    table = a.act_bits if kind == "act" else a.weight_bits
    prev.setdefault((kind, idx), table.get(idx))
    table[idx] = b


def _restore_bits(a: PrecisionAssignment, prev: dict) -> None:
    """Undo :func:`_set_bits`."""
    for (kind, idx), old in prev.items():
        table = a.act_bits if kind == "act" else a.weight_bits
        if old is None:
            del table[idx]
        else:
            table[idx] = old


def _give_back(a: PrecisionAssignment, steps: list[Step], cost: float, budget_ok: Callable[..., bool],
               delta: Callable[..., float], omega: Callable[..., float],
               fits: Optional[Callable[..., bool]] = None) -> float:
    """The last step usually overshoots the budget: undo steps (a candidate's latest one) while the
    budget stays met, those that cost the most accuracy per unit of cost saved first. An undo that
    would leave an op with bitwidths ``fits`` refuses (a W4A4 op whose input goes back from 2 to 4
    bits where W4A4 is not admissible) is not taken."""
    while True:
        best = None
        latest: dict[tuple[str, int], int] = {}
        for i, st in enumerate(steps):
            latest[(st.kind, st.index)] = i
        for (kind, idx), i in latest.items():
            st = steps[i]
            table = a.act_bits if kind == "act" else a.weight_bits
            prev = [s.bits for s in steps[:i] if (s.kind, s.index) == (kind, idx)]
            back = prev[-1] if prev else 8
            if fits is not None and not fits(a, [(kind, idx, back)]):
                continue
            # cost of going back up = minus the saving of stepping down again from there
            table[idx] = back
            up = delta(a, kind, idx, st.bits)
            om = omega(a, kind, idx, st.bits)
            ok = budget_ok(a, cost + up)
            table[idx] = st.bits
            if not ok:
                continue
            ratio = om / max(up, 1e-30)
            if best is None or ratio > best[0]:
                best = (ratio, i, kind, idx, back, up)
        if best is None:
            return cost
        _, i, kind, idx, back, up = best
        table = a.act_bits if kind == "act" else a.weight_bits
        if back == 8:
            del table[idx]
        else:
            table[idx] = back
        cost += up
        del steps[i]


def _sensitivity_weights(graph: Graph, calib: Calibration, ent: "EntropyTable", tensors: Sequence[int],
                         ops: Sequence[int], allowed: Sequence[int], patch_class: Optional[PatchClass], plan: Any,
                         float_weights: Optional[Mapping[int, np.ndarray]], sensitivity: str,
                         seconds: float, equalize_strength: float = 0.0
                         ) -> Optional[Callable[[str, int, int, int], float]]:
    """With ``sensitivity="measured"``: a function (kind, index, from bits, to bits) -> the step's
    measured output divergence relative to the mean divergence of the first steps (None otherwise).

    The divergence of a step is ``D(to) - D(from)``, ``D(b)`` the divergence of the model with only
    that candidate at ``b`` bits (:class:`~tvm_mixq.quant.sensitivity.SensitivityProbe`). A feature
    map that outlier patches keep at 8 bits counts only for the share of normal patches. Steps
    not measured within the time budget get the median ratio of divergence to entropy loss of the
    measured ones times their own entropy loss.
    """
    if sensitivity == "entropy":
        return None
    if sensitivity != "measured":
        raise MixqError(f"unknown sensitivity {sensitivity!r}: expected one of {', '.join(SENSITIVITIES)}")
    if calib.inputs is None or not (tensors or ops):
        return None
    from .sensitivity import SensitivityProbe, tail_shares

    lower = [b for b in allowed if b < 8]
    if not lower:
        return None  # 8 bits only: nothing to measure
    order = [("act", t, b) for b in lower for t in tensors] + [("weight", o, b) for b in lower for o in ops]
    shares = tail_shares(graph)
    expected = sum(shares(kind, idx) for kind, idx, _ in order)
    hess = calib.hessians or None
    probe = SensitivityProbe(graph, calib, ent.act_quant, float_weights, hess, seconds=seconds,
                             expected_runs=expected, equalize_strength=equalize_strength)
    div: dict[tuple[str, int, int], float] = {}
    for kind, idx, b in order:
        if not probe.affordable(kind, idx):
            if probe.out_of_time():
                log.warning("VDQS: measured sensitivity ran out of its %.0f s budget after %d of %d steps; the "
                            "others are estimated from their entropy loss", seconds, len(div), len(order))
            else:
                log.info("VDQS: %d of %d steps measured within the MAC budget; the others are estimated from their "
                         "entropy loss", len(div), len(order))
            break
        div[(kind, idx, b)] = probe.measure(kind, idx, b)
    normal_share = 1.0
    outl = set()
    if patch_class is not None and patch_class.outlier_patches and plan is not None and plan.patch_stage is not None:
        normal_share = 1.0 - len(patch_class.outlier_patches) / max(1, len(plan.patch_stage.patches))
        outl = set(patch_class.outlier_tensors)

    def entropy_of(kind: str, idx: int, b: int) -> float:
        table = ent.act if kind == "act" else ent.weight
        return entropy_loss(table[(idx, 8)], table[(idx, 8)], table[(idx, b)])

    ratios = [d / entropy_of(k, i, b) for (k, i, b), d in div.items() if entropy_of(k, i, b) > 0]
    ratio = float(np.median(ratios)) if ratios else 1.0

    def d_of(kind: str, idx: int, b: int) -> float:
        if b == 8:
            return 0.0
        d = div.get((kind, idx, b))
        if d is None:
            d = ratio * entropy_of(kind, idx, b)
        if kind == "act" and idx in outl:
            d *= normal_share
        return d

    firsts = [d_of(k, i, lower[0]) for k, i in [("act", t) for t in tensors] + [("weight", o) for o in ops]]
    scale = float(np.mean(firsts)) if firsts and np.mean(firsts) > 0 else 1.0
    floor = 1e-3 * scale  # a step never costs nothing: keeps ties ordered by the entropy term

    def weight(kind: str, idx: int, frm: int, to: int) -> float:
        return max(d_of(kind, idx, to) - d_of(kind, idx, frm), floor) / scale

    log.info("VDQS: measured sensitivity of %d steps on %d samples in %.1f s", len(div), probe.samples, probe.spent)
    return weight


def calibrated_act_quant(calib: Calibration, assignment: PrecisionAssignment) -> dict[int, QuantParams]:
    """Calibrated quantization of every sub-byte feature map of an assignment."""
    out = {}
    for t, b in assignment.act_bits.items():
        if b < 8:
            s = calib.tensors[t]
            out[t] = activation_quant(s.hist, s.scale, s.zero_point, b)
    return out


def activation_shifts(calib: Calibration, act_bits: Mapping[int, int],
                      act_quant: Mapping[int, QuantParams]) -> dict[int, np.ndarray]:
    """Per-channel mean error of every sub-byte feature map (see
    :func:`~tvm_mixq.quant.requantize.activation_shift`)."""
    out = {}
    for t, b in act_bits.items():
        s = calib.tensors.get(t)
        if b < 8 and s is not None and s.channel_hist is not None and t in act_quant:
            out[t] = activation_shift(s.channel_hist, s.scale, s.zero_point, act_quant[t], b)
    return out


def build_graphs(graph: Graph, assignment: PrecisionAssignment, calib: Calibration,
                 float_weights: Optional[Mapping[int, np.ndarray]] = None,
                 bias_correction: bool = False, weight_rounding: str = "hessian",
                 equalize_strength: float = DEFAULT_EQUALIZE) -> tuple[Graph, Optional[Graph]]:
    """The quantized graph of the normal patches (and of the layers outside the stage), and the
    graph of the outlier patches (None without outlier patches).

    ``weight_rounding``: ``hessian`` rounds sub-byte weights with error feedback from the
    calibration's layer statistics, the bias absorbing the mean error
    (:func:`tvm_mixq.quant.gptq.quantize_layer`); ``nearest`` rounds each weight to its nearest
    level (per-channel MSE clipping). ``bias_correction``: lower the bias of every op that reads a
    sub-byte feature map by the mean error of that feature map's requantization, from the
    calibration's per-channel histograms (and, with ``nearest`` rounding, also correct the mean
    shift of the rounded weights). On the bundled Fashion-MNIST model both moved top-1 up
    (scripts/eval_accuracy.py). ``equalize_strength`` (``mixq.equalize``): the sub-byte feature
    maps are range-equalized first (:mod:`tvm_mixq.quant.equalize`; 0 turns it off). Both graphs
    are quantized from the same equalized int8 model, so they share their weights; the feature maps
    that outlier patches keep at 8 bits are not equalized, so those patches compute what the int8
    model computes.
    """
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise MixqError(f"unknown weight rounding {weight_rounding!r}: expected one of {', '.join(WEIGHT_ROUNDINGS)}")
    keep = set(assignment.outlier_tensors) if assignment.outlier_patches else set()
    eq = equalize(graph, calib, [t for t, b in assignment.act_bits.items() if b < 8 and t not in keep],
                  equalize_strength, float_weights)
    graph, calib, float_weights = eq.graph, eq.calibration, eq.float_weights
    aq = calibrated_act_quant(calib, assignment)
    means = None
    if bias_correction:
        means = {t: s.channel_mean for t, s in calib.tensors.items() if s.channel_mean is not None}
    hess = calib.hessians if weight_rounding == "hessian" and calib.hessians else None

    def make(a: PrecisionAssignment) -> Graph:
        shifts = activation_shifts(calib, a.act_bits, aq) if bias_correction else None
        return apply_assignment(graph, a, aq, float_weights, means, hess, shifts)

    normal = make(assignment)
    if not assignment.outlier_patches:
        return normal, None
    return normal, make(PrecisionAssignment(assignment.outlier_act_bits(), dict(assignment.weight_bits)))


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
    """Random steps (uniform over the available ones) until BitOPs <= ``target_bitops``; then, in
    random order and repeatedly, candidates raised one level back while BitOPs stay <= the target,
    so the assignment ends at or just below it (no single level can be given back), as a searched
    one does."""
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
        (a.act_bits if kind == "act" else a.weight_bits)[idx] = b
    changed = ev.bitops(a) <= target_bitops
    while changed:  # undo steps (one level up) in random order while the target holds
        changed = False
        lowered = [("act", t) for t in sorted(a.act_bits)] + [("weight", o) for o in sorted(a.weight_bits)]
        for i in rng.permutation(len(lowered)):
            kind, idx = lowered[int(i)]
            table = a.act_bits if kind == "act" else a.weight_bits
            now = table[idx]
            up = min(b for b in allowed if b > now)
            table[idx] = up
            if ev.bitops(a) > target_bitops:
                table[idx] = now
                continue
            changed = True
            if up == 8:
                del table[idx]
    return a
