"""Shape and type checks of a freshly read graph.

A model that passes these checks can be executed by the reference interpreter without an index
error: every op's inputs have the rank, dtype and sizes its kind needs, and every output shape is
the one TFLite would compute. A corrupted file that still parses as a flatbuffer is caught here.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ModelError
from ..graph import ConcatAttrs, ConvAttrs, Graph, Op, PoolAttrs, Tensor


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length along one spatial axis, as TFLite computes it."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def validate_graph(graph: Graph) -> None:
    """Raise :class:`ModelError` naming the first op whose tensors are inconsistent."""
    for op in graph.ops:
        check = _CHECKS.get(op.kind)
        if check is None:
            continue
        ins = [graph.tensors[t] if t >= 0 else None for t in op.inputs]
        outs = [graph.tensors[t] for t in op.outputs]
        problem = check(op, ins, outs)
        if problem:
            raise ModelError(f"op {op.index} {op.kind}: {problem}")


def _need(ins: list, n: int, optional_from: int | None = None) -> str | None:
    limit = n if optional_from is None else optional_from
    if len(ins) < limit or any(t is None for t in ins[:limit]):
        return f"expects {limit} inputs, has {sum(t is not None for t in ins)}"
    return None


def _int8(t: Tensor, what: str) -> str | None:
    if t.dtype not in ("int8",):
        return f"{what} '{t.name}' is {t.dtype}; only int8 is supported here"
    return None


def _same_shape(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 1)):
        return p
    if ins[0].shape != outs[0].shape:
        return f"output shape {list(outs[0].shape)} differs from input shape {list(ins[0].shape)}"
    return None


def _conv(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2, optional_from=2)):
        return p
    x, w, out = ins[0], ins[1], outs[0]
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    if len(x.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return "input, weights and output must be 4-D (NHWC / OHWI)"
    if not w.is_const:
        return "weights must be constant"
    for t, what in ((x, "input"), (w, "weights"), (out, "output")):
        if (p := _int8(t, what)):
            return p
    if op.kind == "CONV_2D":
        cout, kh, kw, cin = w.shape
        if x.shape[3] != cin:
            return f"input has {x.shape[3]} channels, weights expect {cin}"
    else:
        _, kh, kw, cout = w.shape
        if w.shape[0] != 1 or cout != x.shape[3] * a.depth_multiplier:
            return (f"depthwise weights {list(w.shape)} do not match {x.shape[3]} input channels "
                    f"x depth multiplier {a.depth_multiplier}")
    if len(ins) > 2 and ins[2] is not None:
        b = ins[2]
        if b.shape != (cout,) or b.dtype not in ("int32", "int64") or not b.is_const:
            return f"bias must be a constant int32 [{cout}], is {b.dtype} {list(b.shape)}"
    oh = conv_output_size(x.shape[1], kh, a.stride[0], a.dilation[0], a.padding)
    ow = conv_output_size(x.shape[2], kw, a.stride[1], a.dilation[1], a.padding)
    want = (x.shape[0], oh, ow, cout)
    if out.shape != want:
        return f"output shape {list(out.shape)}, expected {list(want)}"
    return None


def _fc(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2, optional_from=2)):
        return p
    x, w, out = ins[0], ins[1], outs[0]
    if len(w.shape) != 2 or not w.is_const:
        return "weights must be a constant 2-D [out, in] tensor"
    for t, what in ((x, "input"), (w, "weights"), (out, "output")):
        if (p := _int8(t, what)):
            return p
    cout, k = w.shape
    if x.size % k:
        return f"input of {x.size} elements is not a multiple of the weights' depth {k}"
    if out.shape[-1] != cout or out.size != (x.size // k) * cout:
        return f"output shape {list(out.shape)} does not match {x.size // k} rows of {cout}"
    if len(ins) > 2 and ins[2] is not None and (ins[2].shape != (cout,) or not ins[2].is_const):
        return f"bias must be a constant [{cout}]"
    return None


def _broadcast(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2)):
        return p
    try:
        shape = np.broadcast_shapes(ins[0].shape, ins[1].shape)
    except ValueError:
        return f"input shapes {list(ins[0].shape)} and {list(ins[1].shape)} do not broadcast"
    if tuple(shape) != outs[0].shape:
        return f"output shape {list(outs[0].shape)}, expected {list(shape)}"
    return None


def _pool(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 1)):
        return p
    x, out = ins[0], outs[0]
    a = op.attrs
    assert isinstance(a, PoolAttrs)
    if len(x.shape) != 4:
        return "input must be 4-D NHWC"
    oh = conv_output_size(x.shape[1], a.filter[0], a.stride[0], 1, a.padding)
    ow = conv_output_size(x.shape[2], a.filter[1], a.stride[1], 1, a.padding)
    want = (x.shape[0], oh, ow, x.shape[3])
    if oh < 1 or ow < 1 or out.shape != want:
        return f"output shape {list(out.shape)}, expected {list(want)}"
    return None


def _const_int(t: Tensor | None, what: str) -> tuple[np.ndarray | None, str | None]:
    if t is None or not t.is_const or t.dtype not in ("int32", "int64"):
        return None, f"{what} must be a constant int32 tensor"
    return np.asarray(t.data).astype(np.int64), None


def _pad(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2)):
        return p
    pads, p = _const_int(ins[1], "paddings")
    if p:
        return p
    x = ins[0]
    if pads.shape != (len(x.shape), 2) or np.any(pads < 0):
        return f"paddings {pads.tolist()} do not fit a rank-{len(x.shape)} input"
    want = tuple(int(d + lo + hi) for d, (lo, hi) in zip(x.shape, pads))
    if outs[0].shape != want:
        return f"output shape {list(outs[0].shape)}, expected {list(want)}"
    if len(ins) > 2 and ins[2] is not None and not ins[2].is_const:
        return "the pad value must be constant"
    return None


def _reshape(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 1)):
        return p
    if ins[0].size != outs[0].size:
        return f"reshape from {list(ins[0].shape)} to {list(outs[0].shape)} changes the element count"
    return None


def _mean(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2)):
        return p
    axes, p = _const_int(ins[1], "axes")
    if p:
        return p
    rank = len(ins[0].shape)
    if np.any(axes < -rank) or np.any(axes >= rank):
        return f"axes {axes.tolist()} out of range for rank {rank}"
    return None


def _transpose(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2)):
        return p
    perm, p = _const_int(ins[1], "permutation")
    if p:
        return p
    x = ins[0]
    if sorted(perm.tolist()) != list(range(len(x.shape))):
        return f"permutation {perm.tolist()} is not a permutation of {len(x.shape)} axes"
    want = tuple(x.shape[i] for i in perm)
    if outs[0].shape != want:
        return f"output shape {list(outs[0].shape)}, expected {list(want)}"
    return None


def _concat(op: Op, ins: list, outs: list) -> str | None:
    if not ins or any(t is None for t in ins):
        return "missing input"
    a = op.attrs
    assert isinstance(a, ConcatAttrs)
    rank = len(outs[0].shape)
    axis = a.axis + rank if a.axis < 0 else a.axis
    if not 0 <= axis < rank or any(len(t.shape) != rank for t in ins):
        return f"axis {a.axis} or input ranks do not fit the rank-{rank} output"
    for d in range(rank):
        if d == axis:
            if sum(t.shape[d] for t in ins) != outs[0].shape[d]:
                return "inputs do not add up to the output along the concatenation axis"
        elif any(t.shape[d] != outs[0].shape[d] for t in ins):
            return f"inputs differ from the output along axis {d}"
    return None


def _resize(op: Op, ins: list, outs: list) -> str | None:
    if (p := _need(ins, 2)):
        return p
    size, p = _const_int(ins[1], "size")
    if p:
        return p
    x = ins[0]
    if len(x.shape) != 4 or size.shape != (2,) or np.any(size < 1):
        return "needs a 4-D input and a constant [2] size"
    want = (x.shape[0], int(size[0]), int(size[1]), x.shape[3])
    if outs[0].shape != want:
        return f"output shape {list(outs[0].shape)}, expected {list(want)}"
    return None


_CHECKS: dict[str, Callable[[Op, list, list], str | None]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fc,
    "ADD": _broadcast,
    "MUL": _broadcast,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "MEAN": _mean,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "SOFTMAX": _same_shape,
    "LOG_SOFTMAX": _same_shape,
    "QUANTIZE": _same_shape,
    "DEQUANTIZE": _same_shape,
    "TRANSPOSE": _transpose,
    "CONCATENATION": _concat,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "LOGISTIC": _same_shape,
    "HARD_SWISH": _same_shape,
    "RELU": _same_shape,
    "RELU6": _same_shape,
}
