"""The project's own quantized graph: what the TFLite reader produces and every later stage reads.

A :class:`Graph` is a list of :class:`Tensor` and a list of :class:`Op` in topological order.
Tensors are referred to by their index in ``Graph.tensors``; an optional input that a TFLite op
leaves out (a convolution without bias, say) is ``-1``.

Quantization follows TFLite: ``real = scale * (q - zero_point)``; per-channel parameters carry
one scale and zero point per slice of ``QuantParams.axis``. Sub-byte tensors (4 or 2 bits) are
described by ``Tensor.bits`` and ``Tensor.signed``; their numerics live in
:mod:`tvm_mixq.reference.fixedpoint` and :mod:`tvm_mixq.reference.subbyte`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

#: Fused activations TFLite can attach to an op.
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")


@dataclass
class QuantParams:
    """Affine quantization of one tensor (per-tensor when ``scale`` has one element)."""

    scale: np.ndarray  # float32, shape (1,) or (channels,)
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int = 0  # quantized dimension for per-channel parameters

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def scalar(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantization."""
        if self.per_channel:
            raise ValueError("per-channel quantization has no single scale")
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass
class Tensor:
    """One tensor of the graph: an activation, or a constant when ``data`` is set."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: int8, uint8, int16, int32, int64, float32, bool
    quant: Optional[QuantParams] = None
    data: Optional[np.ndarray] = None
    bits: int = 8  # storage bitwidth of integer values (8, 4 or 2 once planned)
    signed: bool = True

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes at its bitwidth (sub-byte tensors packed)."""
        itemsize = np.dtype(self.dtype).itemsize
        if self.dtype in ("int8", "uint8") and self.bits < 8:
            return (self.size * self.bits + 7) // 8
        return self.size * itemsize


# ---------------------------------------------------------------------------------------------
# Typed op attributes, one dataclass per family of TFLite options.


@dataclass
class ConvAttrs:
    """CONV_2D and DEPTHWISE_CONV_2D. ``padding`` is ``"SAME"`` or ``"VALID"``."""

    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    activation: str = "NONE"
    depth_multiplier: int = 1  # depthwise only


@dataclass
class PoolAttrs:
    """AVERAGE_POOL_2D and MAX_POOL_2D."""

    filter: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    activation: str = "NONE"


@dataclass
class FullyConnectedAttrs:
    activation: str = "NONE"
    keep_num_dims: bool = False


@dataclass
class ElementwiseAttrs:
    """ADD and MUL."""

    activation: str = "NONE"


@dataclass
class ConcatAttrs:
    axis: int = -1
    activation: str = "NONE"


@dataclass
class ReduceAttrs:
    """MEAN: axes come from the constant second input; this keeps ``keep_dims``."""

    keep_dims: bool = False


@dataclass
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass
class ResizeAttrs:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass
class NoAttrs:
    """Ops whose behaviour is fully given by their inputs (PAD, RESHAPE, RELU, ...)."""


OpAttrs = Union[
    ConvAttrs,
    PoolAttrs,
    FullyConnectedAttrs,
    ElementwiseAttrs,
    ConcatAttrs,
    ReduceAttrs,
    SoftmaxAttrs,
    ResizeAttrs,
    NoAttrs,
]


@dataclass
class Op:
    """One operator. ``kind`` is the TFLite builtin name (``"CONV_2D"``, ...)."""

    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    attrs: OpAttrs = field(default_factory=NoAttrs)


@dataclass
class Graph:
    """A quantized model: tensors, ops in topological order, and its inputs and outputs."""

    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = "model"

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, Op]:
        """Tensor index -> the op that writes it."""
        return {t: op for op in self.ops for t in op.outputs}

    def consumers(self) -> dict[int, list[Op]]:
        """Tensor index -> the ops that read it, in execution order."""
        users: dict[int, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    users.setdefault(t, []).append(op)
        return users

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return counts
