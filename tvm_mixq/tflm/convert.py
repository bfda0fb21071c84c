"""``mixq tflm convert``: int8 .tflite -> .tflite whose planned sub-byte layers are MIXQ custom ops.

The bitwidths come from the project's mixed-precision planning (:mod:`tvm_mixq.quant`):
calibration on ``--calib`` samples (or the documented synthetic fallback), then

* ``mixq.enable=0``: nothing lowered (the int8 model, rewritten unchanged);
* ``act_bits`` / ``weight_bits`` given: every candidate feature map / weight tensor at that
  bitwidth (:func:`tvm_mixq.quant.vdqs.uniform_assignment`);
* otherwise the VDQS search over ``mixq.bits`` with ``mixq.lambda``; with ``mixq.sram_limit_kb``
  the search goes on until the TFLM activation arena estimated by
  :func:`tvm_mixq.tflm.arena.tflm_arena_estimate` fits that budget.

The rewriter (:mod:`.rewriter`) then keeps 8-bit whatever TFLM cannot run as a MIXQ op, and on
``mixq.target`` cores with the DSP extension (the default, cortex-m7) 8-bit weights where the
packed W4A4 kernel would re-space large weights into the arena.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from ..errors import MixqError
from ..graph import Graph, QuantParams
from ..options import MixqOptions
from ..quant.calibration import Calibration, calibrate, load_calibration_data
from ..quant.precision import PrecisionAssignment
from ..quant.assign import anchored_loss_budget, guard_agreement, realise
from ..quant.cost import make_cost_model
from ..quant.equalize import equalize
from ..quant.vdqs import VdqsResult, calibrated_act_quant, uniform_assignment, vdqs_search
from ..reader import read_tflite
from .arena import tflm_arena_estimate
from .rewriter import ConversionResult, rewrite

log = logging.getLogger(__name__)


@dataclass
class PlannedModel:
    """An int8 model with its calibration and chosen bitwidths.

    ``graph`` is the model as read; ``quant_graph`` and ``calibration`` the int8 model the plan is
    quantized from and its statistics: the same, or with the sub-byte feature maps range-equalized
    (``mixq.equalize``, :mod:`tvm_mixq.quant.equalize`), as the TVM path quantizes.
    """

    graph: Graph
    calibration: Calibration
    assignment: PrecisionAssignment
    act_quant: dict[int, QuantParams]
    samples: Optional[np.ndarray]  # the --calib samples, None with the synthetic fallback
    options: MixqOptions
    quant_graph: Optional[Graph] = None

    def __post_init__(self) -> None:
        if self.quant_graph is None:
            self.quant_graph = self.graph

    def hessians(self) -> Optional[dict[int, Any]]:
        """Calibration statistics for ``mixq.weight_rounding=hessian`` (the TVM path's rounding)."""
        return self.calibration.hessians if self.options.weight_rounding == "hessian" else None


def choose_assignment(graph: Graph, calib: Calibration, options: MixqOptions, act_bits: Optional[int] = None,
                      weight_bits: Optional[int] = None) -> PrecisionAssignment:
    """Bitwidths per the module docstring."""
    for name, bits in (("activation", act_bits), ("weight", weight_bits)):
        if bits is not None and bits not in (8, 4, 2):
            raise MixqError(f"{name} bitwidth {bits} is not one of 8, 4, 2")
    if options.plain_int8:
        return PrecisionAssignment()
    if act_bits is not None or weight_bits is not None:
        a = PrecisionAssignment()
        if act_bits is not None:
            a.act_bits = uniform_assignment(graph, calib, act_bits, weights=False).act_bits
        if weight_bits is not None:
            a.weight_bits = uniform_assignment(graph, calib, weight_bits, activations=False).weight_bits
        return a
    budget = options.sram_limit_bytes
    model = make_cost_model(options.cost_model, None, options.target)
    cache: dict = {}
    loss = anchored_loss_budget(graph, calib, model, options.cost_budget or None, budget, bits=options.bits,
                                lambda_=options.lambda_, sensitivity=options.sensitivity, cache=cache,
                                equalize_strength=options.equalize)

    def search(loss_budget: Optional[float]) -> VdqsResult:
        return vdqs_search(graph, calib, bits=options.bits, lambda_=options.lambda_, cost_model=model,
                           cost_budget=options.cost_budget or None, sram_budget_bytes=budget,
                           sensitivity=options.sensitivity, loss_budget=loss_budget, sensitivity_cache=cache,
                           sram_of=(lambda a: tflm_arena_estimate(graph, a.act_bits)) if budget else None,
                           equalize_strength=options.equalize)

    if loss is not None and options.min_agreement > 0:
        # the TVM path's accuracy guard on the same graphs (assign_precision)
        result = guard_agreement(graph, calib, loss, search,
                                 lambda a: realise(graph, a, calib, weight_rounding=options.weight_rounding,
                                                           equalize_strength=options.equalize).runner(),
                                 options.min_agreement)
    else:
        result = search(loss)
    if not result.budget_met:
        log.warning("%s: no assignment over bits %s fits the %d-byte arena budget; using the lowest found",
                    graph.name, options.bits, budget)
    return result.assignment


def plan_model(model: str | os.PathLike, calib: Optional[str | os.PathLike] = None,
               pass_config: Iterable[str] = (), act_bits: Optional[int] = None,
               weight_bits: Optional[int] = None) -> PlannedModel:
    """Read, calibrate and choose bitwidths for one model."""
    graph = read_tflite(model)
    options = MixqOptions.from_strings(list(pass_config))
    samples = load_calibration_data(graph, calib) if calib is not None else None
    calibration = calibrate(graph, samples)
    assignment = choose_assignment(graph, calibration, options, act_bits, weight_bits)
    # the int8 model the TVM path quantizes from (build_graphs): sub-byte feature maps range-equalized
    eq = equalize(graph, calibration, [t for t, b in assignment.act_bits.items() if b < 8], options.equalize)
    return PlannedModel(graph, eq.calibration, assignment, calibrated_act_quant(eq.calibration, assignment),
                        samples, options, eq.graph)


def convert_model(model: str | os.PathLike, output: str | os.PathLike, calib: Optional[str | os.PathLike] = None,
                  pass_config: Iterable[str] = (), act_bits: Optional[int] = None,
                  weight_bits: Optional[int] = None) -> ConversionResult:
    """Plan, rewrite and write ``output``; returns the conversion (with the planned graph)."""
    out = Path(output)
    if out.resolve() == Path(model).resolve():
        raise MixqError(f"output {out} would overwrite the input model")
    planned = plan_model(model, calib, pass_config, act_bits, weight_bits)
    result = rewrite(planned.quant_graph, planned.assignment, planned.act_quant, target=planned.options.target,
                     hessians=planned.hessians())
    data = result.tflite()
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise MixqError(f"cannot write {out}: {exc.strerror}") from None
    log.info("wrote %s (%d bytes)", out, len(data))
    return result
