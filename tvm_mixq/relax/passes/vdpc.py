"""``mixq.VDPC``: value-driven patch classification (QuantMCU).

A patch whose feature map holds outliers (values beyond the calibrated mean + ``mixq.outlier_k``
standard deviations) keeps 8-bit on the branch that follows. Annotates
``mixq.outlier_patches`` (patch indices, row-major) on the layers of the patch stage. Does not
fire without a patch plan, when only 8-bit is allowed (``mixq.bits=8``), or for the int8 baseline.
"""
from __future__ import annotations

from typing import Optional

import tvm

from ...options import MixqOptions
from ..planner import Layer
from ._base import PlannerPass


@tvm.transform.module_pass(opt_level=0, name="mixq.VDPC")
class VDPC(PlannerPass):
    """Annotate the outlier patches of the patch-stage layers."""

    stage = "classify_patches"

    def skip_reason(self, options: MixqOptions, layers: list[Layer]) -> Optional[str]:
        reason = super().skip_reason(options, layers)
        if reason is not None:
            return reason
        if options.bits == (8,):
            return "mixq.bits=8: every patch is 8-bit anyway"
        if not any(layer.attr("patch_grid") is not None for layer in layers):
            return "no patch plan (run mixq.PatchPlan first)"
        return None
