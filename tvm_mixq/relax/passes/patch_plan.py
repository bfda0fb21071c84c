"""``mixq.PatchPlan``: which leading layers run patch by patch, and on which grid.

Reads ``mixq.patch_grid`` and ``mixq.patch_stage_end``; annotates ``mixq.patch_grid``
([rows, cols]) on the layers of the patch stage. Does not fire for ``mixq.patch_grid=off`` or
the int8 baseline.
"""
from __future__ import annotations

from typing import Optional

import tvm

from ...options import MixqOptions
from ..planner import Layer
from ._base import PlannerPass


@tvm.transform.module_pass(opt_level=0, name="mixq.PatchPlan")
class PatchPlan(PlannerPass):
    """Annotate the patch grid of the layers of the patch-based stage."""

    stage = "plan_patches"

    def skip_reason(self, options: MixqOptions, layers: list[Layer]) -> Optional[str]:
        if options.patch_grid == "off":
            return "mixq.patch_grid=off"
        return super().skip_reason(options, layers)
