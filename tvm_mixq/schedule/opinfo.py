"""What the scheduler needs to know about each op kind: MACs, spatial windows, scratch, bytes.

Receptive fields (backward): for an op with kernel ``k``, dilation ``d``, stride ``s`` and
``pad_before`` leading padding, output rows ``[a, b)`` read input rows
``[a*s - pad_before, (b-1)*s - pad_before + (k-1)*d + 1)``; the part of that window outside the
input is the explicit padding the op adds for that tile. ``SAME`` padding is resolved exactly as
TFLite does (``ComputePaddingHeightWidth``: total = max((out-1)*s + (k-1)*d + 1 - in, 0), the
smaller half before). A ``PAD`` op is a window with kernel 1 and a negative offset.

Kernel scratch (im2col and the like) comes from :func:`default_scratch_bytes`, a conservative
formula modelled on CMSIS-NN's ``*_get_buffer_size`` functions; a kernel library that knows better
passes its own :data:`ScratchFn` to the planner.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..graph import ConvAttrs, Graph, Op, PoolAttrs
from ..plan import Interval

#: Ops that compute each output pixel from a local input window (allowed in a patch stage).
SPATIAL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD")
#: Elementwise ops on same-shape tensors (allowed in a patch stage, may run in place).
ELEMENTWISE_BINARY = ("ADD", "MUL")
ELEMENTWISE_UNARY = ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH", "TANH", "LEAKY_RELU", "QUANTIZE")
#: Ops whose output is their input's bytes reinterpreted (no copy, same buffer).
ALIAS_OPS = ("RESHAPE", "SQUEEZE")

#: Kernel scratch bytes: (graph, op, input tile (h, w), output tile (h, w), in_place) -> bytes.
ScratchFn = Callable[[Graph, Op, tuple[int, int], tuple[int, int], bool], int]


@dataclass(frozen=True)
class AxisWindow:
    """Sliding-window parameters of an op along one spatial axis."""

    kernel: int
    stride: int
    dilation: int
    pad_before: int
    in_size: int
    out_size: int

    def window(self, out: Interval) -> tuple[Interval, int, int]:
        """Input interval read for output ``out`` (clipped), and the padding (before, after)."""
        start = out.start * self.stride - self.pad_before
        stop = (out.stop - 1) * self.stride - self.pad_before + (self.kernel - 1) * self.dilation + 1
        lo = max(start, 0)
        hi = min(stop, self.in_size)
        return Interval(lo, hi), lo - start, stop - hi


def activation_inputs(graph: Graph, op: Op) -> list[int]:
    """The op's non-constant inputs (weights, biases, shape operands left out)."""
    return [t for t in op.inputs if t >= 0 and not graph.tensors[t].is_const]


def _same_pad(in_size: int, out_size: int, k: int, s: int, d: int) -> int:
    eff = (k - 1) * d + 1
    total = max((out_size - 1) * s + eff - in_size, 0)
    return total // 2


def spatial_windows(graph: Graph, op: Op) -> Optional[tuple[AxisWindow, AxisWindow]]:
    """Row and column window of a spatial op on its first input, or ``None`` for other ops."""
    if op.kind not in SPATIAL_OPS:
        return None
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(y.shape) != 4:
        return None
    if op.kind == "PAD":
        pads = np.asarray(graph.tensors[op.inputs[1]].data).reshape(-1, 2)
        return (
            AxisWindow(1, 1, 1, int(pads[1, 0]), x.shape[1], y.shape[1]),
            AxisWindow(1, 1, 1, int(pads[2, 0]), x.shape[2], y.shape[2]),
        )
    attrs = op.attrs
    if isinstance(attrs, ConvAttrs):
        w = graph.tensors[op.inputs[1]]
        kh, kw = w.shape[1], w.shape[2]
        s, d, padding = attrs.stride, attrs.dilation, attrs.padding
    elif isinstance(attrs, PoolAttrs):
        kh, kw = attrs.filter
        s, d, padding = attrs.stride, (1, 1), attrs.padding
    else:
        return None
    axes = []
    for i, k in enumerate((kh, kw)):
        n_in, n_out = x.shape[1 + i], y.shape[1 + i]
        pb = _same_pad(n_in, n_out, k, s[i], d[i]) if padding == "SAME" else 0
        axes.append(AxisWindow(k, s[i], d[i], pb, n_in, n_out))
    return axes[0], axes[1]


def macs_per_pixel(graph: Graph, op: Op) -> int:
    """Multiply-accumulates per output pixel (all channels) of an op; 0 for ops without MACs."""
    if op.kind == "CONV_2D":
        w = graph.tensors[op.inputs[1]].shape  # [cout, kh, kw, cin]
        return int(w[0] * w[1] * w[2] * w[3])
    if op.kind == "DEPTHWISE_CONV_2D":
        w = graph.tensors[op.inputs[1]].shape  # [1, kh, kw, cout]
        return int(w[1] * w[2] * w[3])
    return 0


def op_macs(graph: Graph, op: Op) -> int:
    """MACs of the op run once on whole tensors."""
    if op.kind == "FULLY_CONNECTED":
        w = graph.tensors[op.inputs[1]].shape  # [out, in]
        rows = graph.tensors[op.inputs[0]].size // int(w[1])
        return int(rows * w[0] * w[1])
    y = graph.tensors[op.outputs[0]]
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return int(y.shape[0] * y.shape[1] * y.shape[2]) * macs_per_pixel(graph, op)
    return 0


def graph_macs(graph: Graph) -> int:
    return sum(op_macs(graph, op) for op in graph.ops)


def tensor_bytes(graph: Graph, tensor: int, elements: Optional[int] = None, bits: Optional[int] = None) -> int:
    """Bytes of ``elements`` values of a tensor at ``bits`` (sub-byte values packed, rounded up)."""
    t = graph.tensors[tensor]
    n = t.size if elements is None else elements
    b = t.bits if bits is None else bits
    if t.dtype in ("int8", "uint8"):
        return (n * b + 7) // 8
    return n * np.dtype(t.dtype).itemsize


def default_scratch_bytes(graph: Graph, op: Op, in_hw: tuple[int, int], out_hw: tuple[int, int], in_place: bool) -> int:
    """Conservative kernel scratch of an op, in bytes.

    * CONV_2D, not a plain 1x1 stride-1 conv: im2col of two output pixels widened to int16,
      ``2 * cin * kh * kw * 2`` (CMSIS-NN ``arm_convolve_s8``); a 1x1 conv run in place holds two
      output pixels, ``2 * cout``.
    * DEPTHWISE_CONV_2D: ``cin * kh * kw * 2`` (``arm_depthwise_conv_s8_opt``); run in place it
      instead delays its output by ``kh // 2 + 1`` output rows in a ring buffer.
    * AVERAGE_POOL_2D: one int32 sum per channel.
    * anything else: none.
    """
    if op.kind == "CONV_2D":
        w = graph.tensors[op.inputs[1]].shape
        attrs = op.attrs
        if in_place:  # two output pixels held until their inputs are consumed
            return 2 * int(w[0])
        plain_1x1 = w[1] == 1 and w[2] == 1 and isinstance(attrs, ConvAttrs) and attrs.stride == (1, 1)
        return 0 if plain_1x1 else 2 * int(w[3] * w[1] * w[2]) * 2
    if op.kind == "DEPTHWISE_CONV_2D":
        w = graph.tensors[op.inputs[1]].shape
        c = int(w[3])
        if in_place:
            return (int(w[1]) // 2 + 1) * out_hw[1] * c
        return c * int(w[1] * w[2]) * 2
    if op.kind == "AVERAGE_POOL_2D":
        return 4 * int(graph.tensors[op.outputs[0]].shape[-1])
    return 0
