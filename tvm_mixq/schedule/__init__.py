"""Memory-aware scheduling: patch-based inference, channel-split partial execution, the static
arena planner and the search that combines them (DESIGN sections 1 and 3).

Entry points: :func:`plan_memory` (graph + ``mixq.*`` options -> :class:`tvm_mixq.plan.Plan`) and
:func:`replan_memory` (same patches and splits, arena planned again after bitwidths changed);
:func:`plan_stages` plans given patch stages (the first and later ones) instead of searching.
Kernel scratch comes from a :data:`ScratchFn` (default :func:`default_scratch_bytes`).
:mod:`.execute` runs a plan in the Python reference, patch by patch and slice by slice.
"""
from .opinfo import ScratchFn, default_scratch_bytes
from .search import default_precision, plan_memory, plan_stages, replan_memory

__all__ = ["ScratchFn", "default_precision", "default_scratch_bytes", "plan_memory", "plan_stages", "replan_memory"]
