"""What the mixq passes share: resolving options and running one planner stage."""
from __future__ import annotations

import logging
from typing import Mapping, Optional

import numpy as np
import tvm

from ...graph import Graph
from ...options import MixqOptions
from .. import planner as _planner
from ..config import options_from_context

log = logging.getLogger(__name__)


class PlannerPass:
    """Base of the annotation passes: options, planner, optional graph and calibration data.

    Parameters
    ----------
    planner
        The decisions (default :class:`tvm_mixq.relax.planner.MixqPlanner`, the int8 stand-in).
    options
        Fixed options; by default they are read from the current PassContext's ``mixq.*`` keys.
    graph
        The project graph the module was imported from, for planners that need it.
    calibration
        Calibration inputs (``input_0``, ... with a leading sample axis).
    """

    #: Name of the :class:`MixqPlanner` method this pass calls.
    stage: str = ""
    #: Whether ``mixq.enable=0`` (the int8 baseline) switches the pass off.
    needs_enable: bool = True

    def __init__(self, planner: Optional[_planner.MixqPlanner] = None, options: Optional[MixqOptions] = None,
                 graph: Optional[Graph] = None, calibration: Optional[Mapping[str, np.ndarray]] = None) -> None:
        self.planner = planner if planner is not None else _planner.MixqPlanner()
        self.options = options
        self.graph = graph
        self.calibration = calibration

    def resolve_options(self, ctx: tvm.transform.PassContext) -> MixqOptions:
        return self.options if self.options is not None else options_from_context(ctx)

    def skip_reason(self, options: MixqOptions, layers: list[_planner.Layer]) -> Optional[str]:
        """Why the pass must not fire on this module, or None. Subclasses add their own reasons."""
        if not layers:
            return "no mixq composite functions (run mixq.Partition first)"
        if self.needs_enable and not options.enable:
            return "mixq.enable=0 (int8 baseline)"
        return None

    def transform_module(self, mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        options = self.resolve_options(ctx)
        layers = _planner.layers(mod)
        reason = self.skip_reason(options, layers)
        if reason is not None:
            log.debug("%s: not applied: %s", type(self).__name__, reason)
            return mod
        plan_ctx = _planner.PlanContext(mod=mod, options=options, layers=layers, graph=self.graph,
                                        calibration=self.calibration)
        annotations = getattr(self.planner, self.stage)(plan_ctx)
        return _planner.apply(mod, annotations)
