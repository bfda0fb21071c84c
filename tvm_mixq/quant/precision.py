"""The precision part of a plan: bitwidths of feature maps and weights, and outlier patches.

A :class:`PrecisionAssignment` says, for one graph,

* ``act_bits``: tensor index -> bitwidth (8, 4 or 2) of an activation tensor (feature map). Tensors
  not listed stay as in the int8 model. Sub-byte activations are *unsigned* with a calibrated scale
  and zero point; 8-bit ones keep the int8 model's signed quantization.
* ``weight_bits``: op index -> bitwidth of the op's weights (CONV_2D, DEPTHWISE_CONV_2D,
  FULLY_CONNECTED). Sub-byte weights are signed, symmetric, per output channel, zero point 0.
* ``outlier_patches``: indices of the patches of the plan's patch stage that VDPC classified as
  outliers, and ``outlier_tensors``: the stage tensors those patches keep at 8 bits (the branch that
  follows the patch input, up to but excluding the stage output, whose precision is shared by all
  patches because the layers after the stage read it whole).

The assignment is turned into a runnable quantized graph by
:func:`tvm_mixq.quant.requantize.apply_assignment` and written into a
:class:`tvm_mixq.plan.Plan` by :func:`write_to_plan` (``Plan.precision`` and ``Patch.bits``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import MixqError
from ..reference.subbyte import SUPPORTED_BITS

#: Ops whose weights can be requantized to sub-byte widths and whose MACs BitOPs counts.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

#: Ops that read and write sub-byte activations in the reference (and in the kernel library).
SUBBYTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D")


@dataclass
class PrecisionAssignment:
    """Bitwidths chosen for one graph (see the module docstring)."""

    act_bits: dict[int, int] = field(default_factory=dict)
    weight_bits: dict[int, int] = field(default_factory=dict)
    outlier_patches: list[int] = field(default_factory=list)
    outlier_tensors: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for what, table in (("activation", self.act_bits), ("weight", self.weight_bits)):
            for key, bits in table.items():
                if bits not in SUPPORTED_BITS:
                    raise MixqError(f"{what} bitwidth {bits} for index {key} not in {SUPPORTED_BITS}")

    def bits_of_tensor(self, tensor: int) -> int:
        return self.act_bits.get(tensor, 8)

    def bits_of_weights(self, op: int) -> int:
        return self.weight_bits.get(op, 8)

    def patch_act_bits(self, patch: Optional[int]) -> dict[int, int]:
        """Activation bitwidths seen by one patch (``None``: outside the patch stage)."""
        if patch is None or patch not in self.outlier_patches:
            return dict(self.act_bits)
        bits = dict(self.act_bits)
        for t in self.outlier_tensors:
            bits.pop(t, None)
        return bits

    def outlier_act_bits(self) -> dict[int, int]:
        """Activation bitwidths of an outlier patch (the outlier tensors back at 8 bits)."""
        bits = dict(self.act_bits)
        for t in self.outlier_tensors:
            bits.pop(t, None)
        return bits

    @property
    def is_int8(self) -> bool:
        return all(b == 8 for b in self.act_bits.values()) and all(b == 8 for b in self.weight_bits.values())

    def copy(self) -> "PrecisionAssignment":
        return PrecisionAssignment(dict(self.act_bits), dict(self.weight_bits), list(self.outlier_patches),
                                   list(self.outlier_tensors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "act_bits": {str(k): v for k, v in sorted(self.act_bits.items())},
            "weight_bits": {str(k): v for k, v in sorted(self.weight_bits.items())},
            "outlier_patches": sorted(self.outlier_patches),
            "outlier_tensors": sorted(self.outlier_tensors),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PrecisionAssignment":
        return cls(
            act_bits={int(k): int(v) for k, v in d.get("act_bits", {}).items()},
            weight_bits={int(k): int(v) for k, v in d.get("weight_bits", {}).items()},
            outlier_patches=[int(p) for p in d.get("outlier_patches", [])],
            outlier_tensors=[int(t) for t in d.get("outlier_tensors", [])],
        )

    def histogram(self) -> dict[str, dict[int, int]]:
        """How many feature maps and weight tensors sit at each bitwidth (for reports)."""
        acts: dict[int, int] = {}
        for b in self.act_bits.values():
            acts[b] = acts.get(b, 0) + 1
        ws: dict[int, int] = {}
        for b in self.weight_bits.values():
            ws[b] = ws.get(b, 0) + 1
        return {"activations": acts, "weights": ws}


def write_to_plan(plan: Any, assignment: PrecisionAssignment) -> None:
    """Record an assignment in a :class:`tvm_mixq.plan.Plan`.

    ``plan.precision`` gets one :class:`~tvm_mixq.plan.TensorPrecision` per lowered activation
    (unsigned sub-byte); every outlier patch gets ``Patch.bits[t] = 8`` for the outlier tensors.
    Weight bitwidths live in the plan's graph (``Tensor.bits`` of each weight tensor) once the plan
    holds the graph made by :func:`tvm_mixq.quant.requantize.apply_assignment`.
    """
    from ..plan import TensorPrecision

    for t, bits in assignment.act_bits.items():
        if bits < 8:
            plan.precision[t] = TensorPrecision(tensor=t, bits=bits, signed=False)
        else:
            plan.precision.pop(t, None)
    stage = getattr(plan, "patch_stage", None)
    if stage is None:
        return
    outliers = set(assignment.outlier_patches)
    for patch in stage.patches:
        patch.bits = {}
        if patch.index in outliers:
            for t in assignment.outlier_tensors:
                if assignment.act_bits.get(t, 8) < 8:
                    patch.bits[t] = 8
