"""``mixq.VDQS``: value-driven quantization search (QuantMCU), the per-feature-map bitwidths.

Annotates ``mixq.in_bits``, ``mixq.w_bits`` and ``mixq.out_bits`` on every layer, drawn from
``mixq.bits``; ``mixq.lambda`` weighs entropy loss against BitOPs saved and
``mixq.sram_limit_kb`` is the budget the search works towards. Does not fire for the int8
baseline (layers without bitwidth attributes are 8-bit).
"""
from __future__ import annotations

import tvm

from ..planner import layers
from ._base import PlannerPass


@tvm.transform.module_pass(opt_level=0, name="mixq.VDQS")
class VDQS(PlannerPass):
    """Annotate the bitwidths of every layer, checked against the allowed set."""

    stage = "assign_bitwidths"

    def transform_module(self, mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        result = super().transform_module(mod, ctx)
        allowed = set(self.resolve_options(ctx).bits)
        for layer in layers(result) if result is not mod else []:
            for key in ("in_bits", "w_bits", "out_bits"):
                bits = layer.attr(key)
                if bits is not None and int(bits) not in allowed:
                    raise ValueError(f"planner gave {layer.name} {key}={bits}, outside mixq.bits={sorted(allowed)}")
        return result

