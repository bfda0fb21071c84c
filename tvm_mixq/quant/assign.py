"""One call from an int8 graph (and plan) to its mixed-precision version: calibrate, VDPC, VDQS.

:func:`assign_precision` takes plain typed parameters (the ``mixq.*`` options already parsed), so
the Relax passes, the command lines and the scripts call it alike:

>>> mp = assign_precision(graph, plan=plan, calib_inputs=data, bits=(8, 4, 2), outlier_k=3.0,
...                       lambda_=0.5, cost_model="bitops", cost_budget=1 / 2.2)
>>> mp.graph            # the quantized graph the reference, kernels and codegen run
>>> mp.apply_to(plan)   # plan.graph, plan.precision, Patch.bits, plan.outlier_graph

Float weights: when the float TFLite model is given (``float_model``), weights are requantized
to 4/2 bits from its float weights, matched op by op (same op kinds in the same order, same
weight shapes); otherwise from the int8 weights.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import MixqError
from ..graph import Graph
from .calibration import Calibration, SampleBatch, calibrate, load_calibration_data, validate_inputs
from .cost import BitopsCost, CostEvaluator, MeasuredCost, make_cost_model
from .execute import BatchRunner, PlanRunner
from .float_weights import float_weights_for
from .precision import PrecisionAssignment, write_to_plan
from .vdpc import (DEFAULT_OUTLIER_K, DEFAULT_OUTLIER_PERCENTILE, DEFAULT_OUTLIER_RULE, PatchClass,
                   classify_patches)
from .vdqs import ANCHOR_BITOPS_BUDGET, DEFAULT_EQUALIZE, DEFAULT_LAMBDA, VdqsResult, build_graphs, vdqs_search

log = logging.getLogger(__name__)


@dataclass
class MixedPrecision:
    """The precision part of a plan: the assignment and the graphs that realise it."""

    assignment: PrecisionAssignment
    graph: Graph  # normal patches and every layer outside the patch stage
    outlier_graph: Optional[Graph]  # outlier patches of the stage (None without outliers)
    calibration: Calibration
    patch_class: PatchClass
    search: Optional[VdqsResult]
    bitops: int
    int8_bitops: int

    @property
    def bitops_reduction(self) -> float:
        return self.int8_bitops / self.bitops if self.bitops else float("inf")

    def runner(self, plan: Any = None) -> PlanRunner:
        return PlanRunner(self.graph, self.outlier_graph, plan, self.assignment.outlier_patches)

    def apply_to(self, plan: Any) -> None:
        """Write into a plan: its graph becomes the quantized one, precision and patch bits set."""
        plan.graph = self.graph
        write_to_plan(plan, self.assignment)
        if hasattr(plan, "outlier_graph"):
            plan.outlier_graph = self.outlier_graph

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment.to_dict(),
            "bitops": self.bitops,
            "int8_bitops": self.int8_bitops,
            "bitops_reduction": self.bitops_reduction,
            "vdpc": self.patch_class.to_dict(),
            "search": self.search.to_dict() if self.search is not None else None,
            "calibration_samples": self.calibration.samples,
            "synthetic_calibration": self.calibration.synthetic,
        }


def stage_config(plan: Any) -> dict[str, Any]:
    """``mixq.*`` options that make the memory planner keep ``plan``'s patch stage and grid."""
    st = getattr(plan, "patch_stage", None)
    if st is None:
        return {"mixq.patch_grid": "off"}
    return {"mixq.patch_grid": f"{st.grid[0]}x{st.grid[1]}", "mixq.patch_stage_end": str(st.ops[-1])}


def sram_function(graph: Graph, plan: Any) -> Callable[[PrecisionAssignment], int]:
    """Peak SRAM of an assignment: the memory planner on ``plan``'s stage and grid, buffers sized
    at the assignment's activation bitwidths (outlier patches' 8-bit tiles not counted apart)."""
    from ..plan import TensorPrecision
    from ..schedule.search import plan_memory

    config = stage_config(plan)

    def peak(a: PrecisionAssignment) -> int:
        precision = {t.index: TensorPrecision(t.index, a.bits_of_tensor(t.index), a.bits_of_tensor(t.index) == 8)
                     for t in graph.tensors if not t.is_const}
        return int(plan_memory(graph, config, precision).peak)

    return peak


def assign_precision(
    graph: Graph,
    plan: Any = None,
    calib_inputs: Optional[Any] = None,
    calib_path: Optional[str | os.PathLike] = None,
    bits: Sequence[int] = (8, 4, 2),
    outlier_k: float = DEFAULT_OUTLIER_K,
    lambda_: float = DEFAULT_LAMBDA,
    cost_model: str = "bitops",
    cost_table: Optional[str | os.PathLike] = None,
    cost_budget: Optional[float] = None,
    sram_budget_bytes: Optional[int] = None,
    sram_of: Optional[Callable[[PrecisionAssignment], int]] = None,
    float_model: Optional[str | os.PathLike] = None,
    calibration: Optional[Calibration] = None,
    bias_correction: bool = False,
    target: Optional[str] = None,
    weight_rounding: str = "hessian",
    sensitivity: str = "measured",
    outlier_rule: str = DEFAULT_OUTLIER_RULE,
    outlier_percentile: float = DEFAULT_OUTLIER_PERCENTILE,
    admissible: Optional[Callable[[int, int, int, int], bool]] = None,
    min_agreement: float = 0.0,
    equalize_strength: float = DEFAULT_EQUALIZE,
) -> MixedPrecision:
    """Calibrate, classify patches (VDPC), search bitwidths (VDQS), build the quantized graphs.

    Parameters
    ----------
    graph : the int8 graph; plan : its plan (patch stage; None: layer by layer).
    calib_inputs / calib_path : calibration samples (array with a leading batch axis, one array
        per input for a model with several inputs, or an ``.npz`` with ``input_0..``); neither:
        the documented synthetic fallback, with a warning.
    bits : ``mixq.bits``; outlier_k : ``mixq.outlier_k``; lambda_ : ``mixq.lambda``.
    outlier_rule, outlier_percentile : ``mixq.outlier_rule`` (``percentile`` or ``sigma``) and
        ``mixq.outlier_percentile`` (see :mod:`tvm_mixq.quant.vdpc`).
    cost_model : ``mixq.cost_model`` (``bitops`` or ``measured``, the latter reads ``cost_table``, or
        the kernel benchmark's table for ``target`` (``mixq.target``) when no path is given).
    cost_budget : target cost as a fraction of the int8 patch-based cost (None: VDQS stops when no
        step scores positive; with the measured cost model, when it has spent the accuracy proxy
        of :data:`~tvm_mixq.quant.vdqs.ANCHOR_BITOPS_BUDGET`, see the VDQS docstring).
    sram_budget_bytes, sram_of : optional SRAM budget (``mixq.sram_limit_kb`` * 1024) and the function
        measuring an assignment's peak (default: :func:`sram_function`, the project's memory planner).
    float_model : the float ``.tflite`` to requantize weights from.
    calibration : reuse an earlier calibration of the same graph and plan.
    bias_correction : correct biases for the mean error of sub-byte feature maps (and weights) (see
        :func:`build_graphs`).
    weight_rounding : ``hessian`` (default) or ``nearest`` (see :func:`build_graphs`).
    sensitivity : ``measured`` (default) or ``entropy``, the accuracy proxy of VDQS (see
        :func:`~tvm_mixq.quant.vdqs.vdqs_search`).
    admissible : bitwidths each weighted op may take (:func:`scratch_admissible`; None: any).
    min_agreement : accuracy guard of a search spending the anchored accuracy budget
        (``mixq.min_agreement``, :func:`guard_agreement`); 0 leaves it off.
    equalize_strength : ``mixq.equalize``, range equalization of sub-byte feature maps
        (:mod:`tvm_mixq.quant.equalize`; 0: off).
    """
    if calibration is None:
        if calib_path is not None:
            data: Optional[SampleBatch] = load_calibration_data(graph, calib_path)
        elif calib_inputs is not None:
            data = validate_inputs(graph, calib_inputs)
        else:
            data = None
        calibration = calibrate(graph, data, plan)
    fw = None
    if float_model is not None:
        fw = float_weights_for(graph, float_model)
    pc = (classify_patches(calibration, plan, outlier_k, rule=outlier_rule, percentile=outlier_percentile)
          if plan is not None else PatchClass([], [], {}, {}, outlier_k))
    model = make_cost_model(cost_model, None if cost_table is None else os.fspath(cost_table), target)
    if sram_budget_bytes is not None and sram_of is None:
        sram_of = sram_function(graph, plan)
    cache: dict = {}
    loss_budget = anchored_loss_budget(graph, calibration, model, cost_budget, sram_budget_bytes, plan, pc, bits,
                                       lambda_, fw, sensitivity, cache, admissible, equalize_strength)

    def search(budget: Optional[float]) -> VdqsResult:
        return vdqs_search(graph, calibration, plan, pc, bits, lambda_, model, cost_budget, sram_budget_bytes,
                           sram_of, fw, sensitivity=sensitivity, loss_budget=budget, sensitivity_cache=cache,
                           admissible=admissible, equalize_strength=equalize_strength)

    def runner(a: PrecisionAssignment) -> PlanRunner:
        n, o = build_graphs(graph, a, calibration, fw, bias_correction, weight_rounding, equalize_strength)
        return PlanRunner(n, o, plan, a.outlier_patches)

    if loss_budget is not None and min_agreement > 0:
        result = guard_agreement(graph, calibration, loss_budget, search, runner, min_agreement, plan)
    else:
        result = search(loss_budget)
    normal, outlier = build_graphs(graph, result.assignment, calibration, fw, bias_correction, weight_rounding,
                                   equalize_strength)
    ev = CostEvaluator(graph, plan)
    return MixedPrecision(result.assignment, normal, outlier, calibration, pc, result,
                          ev.bitops(result.assignment), ev.int8_bitops())


def anchored_loss_budget(graph: Graph, calibration: Calibration, model: Any, cost_budget: Optional[float],
                         sram_budget_bytes: Optional[int], plan: Any = None, patch_class: Any = None,
                         bits: Sequence[int] = (8, 4, 2), lambda_: float = DEFAULT_LAMBDA,
                         float_weights: Any = None, sensitivity: str = "measured", cache: Optional[dict] = None,
                         admissible: Optional[Callable[[int, int, int, int], bool]] = None,
                         equalize_strength: float = DEFAULT_EQUALIZE) -> Optional[float]:
    """The accuracy budget of a measured-cost search without a cost or SRAM budget: the Omega a
    BitOPs search to :data:`~tvm_mixq.quant.vdqs.ANCHOR_BITOPS_BUDGET` spends (the operating point
    whose accuracy was measured), to be spent where it saves the most instructions (VDQS
    "Accuracy budget"). None otherwise (``mixq.lambda`` decides)."""
    if not isinstance(model, MeasuredCost) or cost_budget is not None or sram_budget_bytes is not None:
        return None
    anchor = vdqs_search(graph, calibration, plan, patch_class, bits, lambda_, BitopsCost(), ANCHOR_BITOPS_BUDGET,
                         None, None, float_weights, sensitivity=sensitivity, sensitivity_cache=cache,
                         admissible=admissible, equalize_strength=equalize_strength)
    return sum(st.omega for st in anchor.steps)


#: Calibration samples the accuracy guard compares on (at most), and its bisection steps.
GUARD_SAMPLES = 128
GUARD_STEPS = 6
#: ``mixq.min_agreement``'s default: the top-1 agreement with int8 of the validated operating point
#: (Fashion-MNIST at the anchored budget: 0.95 on its calibration images, 0.96 on the test set).
DEFAULT_MIN_AGREEMENT = 0.95


def is_classifier(graph: Graph) -> bool:
    """Whether the first output is a class score vector, the case top-1 agreement measures: produced
    by SOFTMAX / LOG_SOFTMAX, or by an op with 2 to 100 outputs per sample (a classifier's last
    FULLY_CONNECTED; an autoencoder's reconstruction is larger)."""
    producers = graph.producers()
    t = graph.outputs[0]
    for _ in range(len(graph.ops)):
        op = producers.get(t)
        if op is None or op.kind not in ("RESHAPE", "QUANTIZE", "DEQUANTIZE"):
            break
        t = op.inputs[0]
    op = producers.get(t)
    per_sample = int(np.prod(graph.tensors[graph.outputs[0]].shape[1:], dtype=np.int64))
    if op is not None and op.kind in ("SOFTMAX", "LOG_SOFTMAX"):
        return per_sample >= 2
    return 2 <= per_sample <= 100


def guard_agreement(graph: Graph, calibration: Calibration, loss_budget: float,
                    search: Callable[[Optional[float]], VdqsResult],
                    runner: Callable[[PrecisionAssignment], Any], min_agreement: float,
                    plan: Any = None) -> VdqsResult:
    """The accuracy guard (``mixq.min_agreement``): the search at ``loss_budget`` (the anchored
    accuracy budget), unless its plan's top-1 agreement with the int8 model on the calibration
    samples (at most :data:`GUARD_SAMPLES`) is below ``min_agreement``; then the budget is scaled
    down by bisection (:data:`GUARD_STEPS` steps) to the largest fraction whose plan agrees that
    well (a zero budget is the int8 model, which always does). The anchor is a proxy calibrated on
    one model; the guard measures the model at hand on its own data. Models that are not
    classifiers (:func:`is_classifier`) and the synthetic calibration fallback are left to the
    proxy."""
    first = search(loss_budget)
    if calibration.synthetic or calibration.inputs is None or not is_classifier(graph) or not first.steps:
        return first
    x = calibration.inputs[:GUARD_SAMPLES]
    ref = _top1(BatchRunner(graph).run(x))

    def agreement(result: VdqsResult) -> float:
        return float(np.mean(_top1(runner(result.assignment).run(x)) == ref))

    got = agreement(first)
    if got >= min_agreement:
        log.info("accuracy guard: agreement %.3f on %d calibration samples at the anchored budget", got, len(x))
        return first
    lo, hi, best = 0.0, 1.0, None
    for _ in range(GUARD_STEPS):
        mid = (lo + hi) / 2
        result = search(loss_budget * mid)
        a = agreement(result) if result.steps else 1.0
        if a >= min_agreement:
            lo, best = mid, (result, a)
        else:
            hi = mid
    if best is None:
        best = (search(0.0), 1.0)
    log.info("accuracy guard: agreement %.3f < %.3f at the anchored budget; %.0f%% of it gives %.3f",
             got, min_agreement, 100 * lo, best[1])
    return best[0]


def _top1(outputs: Sequence[np.ndarray]) -> np.ndarray:
    y = np.asarray(outputs[0])
    return y.reshape(y.shape[0], -1).argmax(axis=1)


def scratch_admissible(graph: Graph, slack_bytes: int) -> Callable[[int, int, int, int], bool]:
    """Bitwidths a weighted op may take when its kernel's scratch may grow by at most
    ``slack_bytes`` over its int8 scratch (the generated code's scratch, :func:`tvm_mixq.codegen.
    emitter.scratch_at_bits`). With ``slack_bytes`` the room between the int8 plan's peak and the
    SRAM limit, no step makes one op's call need more than the limit (sub-byte tensors only
    shrink the other buffers): e.g. the packed-field depthwise path keeps a ring of three converted
    rows (about 6 KB on VWW-96's last depthwise layer). (W4A4 convolutions no longer grow: the code
    generator passes their weights re-spaced from flash.)"""
    from ..codegen.emitter import scratch_at_bits

    at = scratch_at_bits(graph)

    def ok(op: int, in_bits: int, w_bits: int, out_bits: int) -> bool:
        return at(op, (in_bits, w_bits, out_bits)) - at(op, (8, 8, 8)) <= slack_bytes

    return ok


def realise(graph: Graph, assignment: PrecisionAssignment, calibration: Calibration, plan: Any = None,
            float_weights: Optional[Mapping[int, np.ndarray]] = None, bias_correction: bool = False,
            weight_rounding: str = "hessian", equalize_strength: float = DEFAULT_EQUALIZE) -> MixedPrecision:
    """A :class:`MixedPrecision` for a given assignment (uniform, random, loaded from JSON)."""
    normal, outlier = build_graphs(graph, assignment, calibration, float_weights, bias_correction, weight_rounding,
                                   equalize_strength)
    ev = CostEvaluator(graph, plan)
    pc = PatchClass(list(assignment.outlier_patches), list(assignment.outlier_tensors), {}, {}, float("nan"))
    return MixedPrecision(assignment, normal, outlier, calibration, pc, None, ev.bitops(assignment), ev.int8_bitops())
