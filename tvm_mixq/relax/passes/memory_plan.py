"""``mixq.MemoryPlan``: the static activation arena.

Annotates ``mixq.output_bytes`` on every layer and ``mixq.peak_sram_bytes`` on the module. Runs
for the int8 baseline too (it needs an arena); checks the result against ``mixq.sram_limit_kb``
and logs a warning when the plan does not fit.
"""
from __future__ import annotations

import logging

import tvm

from ._base import PlannerPass

log = logging.getLogger(__name__)


@tvm.transform.module_pass(opt_level=0, name="mixq.MemoryPlan")
class MemoryPlan(PlannerPass):
    """Annotate the memory plan."""

    stage = "plan_memory"
    needs_enable = False

    def transform_module(self, mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        result = super().transform_module(mod, ctx)
        limit = self.resolve_options(ctx).sram_limit_bytes
        peak = result.attrs.get("mixq.peak_sram_bytes") if result.attrs is not None else None
        if limit is not None and peak is not None and int(peak) > limit:
            log.warning("memory plan needs %d B of activation SRAM, over mixq.sram_limit_kb (%d B)", int(peak), limit)
        return result
