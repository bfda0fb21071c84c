"""``mixq.Calibrate``: the float range of each layer's output (``mixq.calib_min/max``).

The ranges feed VDPC (outliers) and VDQS (entropy). The planner decides how they are measured;
the int8 baseline (``mixq.enable=0``) needs none and the pass does not fire.
"""
from __future__ import annotations

import tvm

from ._base import PlannerPass


@tvm.transform.module_pass(opt_level=0, name="mixq.Calibrate")
class Calibrate(PlannerPass):
    """Annotate ``mixq.calib_min`` / ``mixq.calib_max`` on every mixq layer."""

    stage = "calibrate"
