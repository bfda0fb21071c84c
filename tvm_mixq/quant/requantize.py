"""Turn a precision assignment into a runnable quantized graph.

What changes when a feature map or a layer's weights go below 8 bits:

* **Sub-byte activations** are unsigned, ``q in [0, 2**b - 1]``, with a scale and zero point
  calibrated from the feature map's int8 calibration histogram (:func:`activation_quant`): the
  clipping range ``[lo, hi]`` (0 always inside, so padding stays exact) is the one of a small grid
  of candidates that minimises the mean squared error of re-expressing the calibration values on
  the b-bit grid. ``scale = (hi - lo) / (2**b - 1)``, ``zero_point = round(-lo / scale)``.
* **Sub-byte weights** are signed, symmetric, per output channel, zero point 0,
  ``q in [-(2**(b-1) - 1), 2**(b-1) - 1]`` (4 bits: +-7, 2 bits: ternary -1/0/+1). Each channel's
  clipping threshold is chosen from a grid of fractions of its largest magnitude by minimum squared
  error (:func:`quantize_weights`). Values come from the int8 weights (``scale * q``) or from the
  float model's weights when they are given.
* **Bias** (int32, scale ``s_in * s_w``) is re-expressed when the input scale or the weight scales
  of the op change: ``round(bias * s_in_old * s_w_old / (s_in_new * s_w_new))``.
* Producers and consumers need nothing else: the reference interpreter (and the kernels) derive
  every requantization multiplier from the tensors' scales, and clamp outputs to
  :func:`tvm_mixq.reference.subbyte.qrange` of the output's bitwidth.

:func:`apply_assignment` returns a new :class:`~tvm_mixq.graph.Graph` (the input graph is not
modified). An assignment where everything is 8-bit returns an identical copy, so the int8 model is
reproduced bit for bit.
"""
from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np

from ..errors import MixqError
from ..graph import Graph, QuantParams, Tensor
from ..reference.subbyte import qrange
from .precision import WEIGHTED_OPS, PrecisionAssignment

if TYPE_CHECKING:
    from .gptq import LayerHessian

log = logging.getLogger(__name__)

#: Int8 values -128..127 (index i of an int8 histogram holds the count of value i - 128).
INT8_VALUES = np.arange(-128, 128, dtype=np.int64)

_CLIP_FRACTIONS = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
_WEIGHT_FRACTIONS = np.linspace(0.25, 1.0, 16)


def weight_tensor_index(graph: Graph, op_index: int) -> int:
    return graph.ops[op_index].inputs[1]


def _bits_grid_error(real: np.ndarray, counts: np.ndarray, lo: float, hi: float, bits: int) -> float:
    scale = (hi - lo) / ((1 << bits) - 1)
    if scale <= 0:
        return float("inf")
    zp = int(np.clip(np.round(-lo / scale), 0, (1 << bits) - 1))
    q = np.clip(np.round(real / scale) + zp, 0, (1 << bits) - 1)
    err = (scale * (q - zp) - real) ** 2
    return float((err * counts).sum())


def activation_quant(hist: np.ndarray, scale: float, zero_point: int, bits: int) -> QuantParams:
    """Unsigned ``bits``-bit quantization of a feature map from its int8 calibration histogram.

    Parameters
    ----------
    hist : counts of the int8 values -128..127 (256 entries) over the calibration set.
    scale, zero_point : the int8 model's quantization of the tensor.
    bits : 8, 4 or 2 (8 returns the int8 parameters unchanged).
    """
    if bits == 8:
        return QuantParams(np.array([scale], np.float32), np.array([zero_point], np.int64))
    counts = np.asarray(hist, np.float64)
    if counts.shape != (256,) or counts.sum() <= 0:
        raise MixqError("activation quantization needs a non-empty 256-bin int8 histogram")
    real = scale * (INT8_VALUES - zero_point).astype(np.float64)
    seen = counts > 0
    vmin = min(float(real[seen].min()), 0.0)
    vmax = max(float(real[seen].max()), 0.0)
    if vmax - vmin <= 0:
        vmax = scale  # constant zero feature map: any range works
    best = (float("inf"), vmin, vmax)
    for fl in _CLIP_FRACTIONS if vmin < 0 else (1.0,):
        for fh in _CLIP_FRACTIONS if vmax > 0 else (1.0,):
            lo, hi = vmin * fl, vmax * fh
            if hi - lo <= 0:
                continue
            e = _bits_grid_error(real, counts, lo, hi, bits)
            if e < best[0]:
                best = (e, lo, hi)
    _, lo, hi = best
    new_scale = np.float32((hi - lo) / ((1 << bits) - 1))
    zp = int(np.clip(np.round(-lo / float(new_scale)), 0, (1 << bits) - 1))
    return QuantParams(np.array([new_scale], np.float32), np.array([zp], np.int64))


def requantize_histogram(hist: np.ndarray, scale: float, zero_point: int, quant: QuantParams,
                         bits: int) -> np.ndarray:
    """Histogram of the ``bits``-bit values that the int8 values of ``hist`` map to under ``quant``."""
    s, zp = quant.scalar()
    real = scale * (INT8_VALUES - zero_point).astype(np.float64)
    lo, hi = qrange(bits, False) if bits < 8 else (-128, 127)
    q = np.clip(np.round(real / s) + zp, lo, hi).astype(np.int64) - lo
    out = np.zeros(hi - lo + 1, np.float64)
    np.add.at(out, q, np.asarray(hist, np.float64))
    return out


def quantize_weights(real: np.ndarray, bits: int, axis: int,
                     min_scale: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel ``bits``-bit quantization with MSE-chosen clipping.

    Returns ``(q, scale)``: ``q`` int8 array of ``real``'s shape holding values in
    ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``, ``scale`` float32 ``[channels]`` along ``axis``.
    ``min_scale`` (per channel) bounds the scales from below: a b-bit scale is never finer than the
    int8 model's, which keeps the int32 bias of (nearly) dead channels in range.
    """
    qmax = (1 << (bits - 1)) - 1
    moved = np.moveaxis(np.asarray(real, np.float64), axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    amax = np.abs(flat).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    fractions = _WEIGHT_FRACTIONS if bits < 8 else np.array([1.0])
    scales = fractions[:, None] * amax[None, :] / qmax  # [F, C]
    q = np.clip(np.round(flat[None] / scales[:, :, None]), -qmax, qmax)
    err = ((q * scales[:, :, None] - flat[None]) ** 2).sum(axis=2)  # [F, C]
    best = err.argmin(axis=0)
    scale = scales[best, np.arange(flat.shape[0])]
    if min_scale is not None:
        scale = np.maximum(scale, np.broadcast_to(np.asarray(min_scale, np.float64), scale.shape))
    scale = scale.astype(np.float32)
    qbest = np.clip(np.round(flat / scale[:, None].astype(np.float64)), -qmax, qmax)
    q_out = np.moveaxis(qbest.reshape(moved.shape), 0, axis).astype(np.int8)
    return q_out, scale


def _weight_axis(kind: str) -> int:
    return 3 if kind == "DEPTHWISE_CONV_2D" else 0


def _per_channel(qp: QuantParams, channels: int) -> np.ndarray:
    s = np.asarray(qp.scale, np.float64)
    return np.broadcast_to(s, (channels,)).copy() if s.size == 1 else s


def apply_assignment(
    graph: Graph,
    assignment: PrecisionAssignment,
    act_quant: Mapping[int, QuantParams],
    float_weights: Optional[Mapping[int, np.ndarray]] = None,
    input_means: Optional[Mapping[int, np.ndarray]] = None,
    hessians: Optional[Mapping[int, "LayerHessian"]] = None,
    input_shifts: Optional[Mapping[int, np.ndarray]] = None,
) -> Graph:
    """A copy of ``graph`` quantized as ``assignment`` says.

    Parameters
    ----------
    graph : the int8 graph (not modified).
    assignment : activation bitwidths per tensor and weight bitwidths per op.
    act_quant : quantization of every sub-byte activation of the assignment
        (from :func:`activation_quant`).
    float_weights : optional op index -> float weights of that op (same layout as the int8
        weights) to requantize from instead of the int8 weights.
    input_means : optional tensor index -> mean real value per channel over the calibration set
        (:attr:`~tvm_mixq.quant.calibration.TensorStats.channel_mean`). With it, the bias of an op
        whose weights go sub-byte is corrected for the mean shift the weight rounding causes
        (``bias += sum (W - W_b) * E[x]``, empirical bias correction; padding ignored).

    Raises
    ------
    MixqError
        A tensor or op of the assignment that the graph does not have, a sub-byte tensor without
        calibrated quantization, or a requantized bias that leaves the int32 range.
    """
    out = copy.copy(graph)
    out.tensors = [copy.copy(t) for t in graph.tensors]
    out.ops = [copy.copy(op) for op in graph.ops]
    for op in out.ops:
        op.inputs = list(op.inputs)
        op.outputs = list(op.outputs)
    n = len(graph.tensors)
    for t, bits in assignment.act_bits.items():
        if not 0 <= t < n or graph.tensors[t].is_const:
            raise MixqError(f"activation bitwidth given for tensor {t}, which is not an activation of {graph.name}")
        if bits == 8:
            continue
        if t not in act_quant:
            raise MixqError(f"tensor {graph.tensors[t].name} set to {bits} bits without calibrated quantization")
        ten = out.tensors[t]
        ten.quant = act_quant[t]
        ten.bits = bits
        ten.signed = False
    for o, bits in assignment.weight_bits.items():
        if not 0 <= o < len(graph.ops) or graph.ops[o].kind not in WEIGHTED_OPS:
            raise MixqError(f"weight bitwidth given for op {o}, which is not a conv/depthwise/FC of {graph.name}")
    for op in out.ops:
        if op.kind not in WEIGHTED_OPS:
            continue
        wbits = assignment.weight_bits.get(op.index, 8)
        x_old, x_new = graph.tensors[op.inputs[0]], out.tensors[op.inputs[0]]
        w_old = graph.tensors[op.inputs[1]]
        axis = _weight_axis(op.kind)
        channels = w_old.shape[axis]
        s_w_old = _per_channel(w_old.quant, channels)
        s_w_new = s_w_old
        has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
        b_old = graph.tensors[op.inputs[2]] if has_bias else None
        s_in_old = float(x_old.quant.scale[0])
        real_bias = b_old.data.astype(np.float64) * s_in_old * s_w_old if has_bias else None
        bshape = [1] * len(w_old.shape)
        bshape[axis] = channels
        w_real_new = None  # real values of the weights the op runs with, when they change
        if wbits < 8:
            if float_weights is not None and op.index in float_weights:
                real = np.asarray(float_weights[op.index], np.float64)
                if real.shape != tuple(w_old.shape):
                    raise MixqError(f"float weights of op {op.index} have shape {real.shape}, "
                                    f"int8 weights {tuple(w_old.shape)}")
            else:
                real = w_old.data.astype(np.float64) * s_w_old.reshape(bshape)
            hess = None if hessians is None else hessians.get(op.index)
            if hess is not None and has_bias and hess.count > 0:
                from .gptq import quantize_layer

                linear = getattr(op.attrs, "activation", "NONE") == "NONE"
                q, s_w_new64, real_bias = quantize_layer(op.kind, real, real_bias, hess, wbits, s_w_old,
                                                         correct_bias=linear)
                s_w_new64 = s_w_new64.astype(np.float32)
            else:
                q, s_w_new64 = quantize_weights(real, wbits, axis, s_w_old)
                mean = None if input_means is None else input_means.get(op.inputs[0])
                if has_bias and mean is not None:
                    real_bias = real_bias + _mean_shift(op.kind, real, q, s_w_new64.astype(np.float64), axis,
                                                        np.asarray(mean, np.float64))
            s_w_new = s_w_new64.astype(np.float64)
            w_real_new = q.astype(np.float64) * s_w_new.reshape(bshape)
            w_new = Tensor(
                index=w_old.index, name=w_old.name, shape=w_old.shape, dtype="int8",
                quant=QuantParams(s_w_new64.astype(np.float32), np.zeros(channels, np.int64),
                                  axis=axis),
                data=q, bits=wbits, signed=True,
            )
            out.tensors[w_old.index] = w_new
        in_changed = x_new.quant is not x_old.quant
        shift = None if input_shifts is None or not in_changed else input_shifts.get(op.inputs[0])
        if has_bias and shift is not None:
            w_run = w_real_new if w_real_new is not None else w_old.data.astype(np.float64) * s_w_old.reshape(bshape)
            real_bias = real_bias - _contract(op.kind, w_run, np.asarray(shift, np.float64))
        if has_bias and (in_changed or wbits < 8):
            s_in_new = float(x_new.quant.scale[0])
            new_bias = np.round(real_bias / (s_in_new * s_w_new))
            if np.abs(new_bias).max(initial=0) > np.iinfo(np.int32).max:
                raise MixqError(f"requantized bias of op {op.index} leaves the int32 range")
            out.tensors[b_old.index] = Tensor(
                index=b_old.index, name=b_old.name, shape=b_old.shape, dtype="int32",
                quant=QuantParams((s_in_new * s_w_new).astype(np.float32), np.zeros(channels, np.int64)),
                data=new_bias.astype(np.int32),
            )
    _check_shared_constants(graph, assignment)
    return out


def _contract(kind: str, w: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Per output channel, ``sum_k w[c, k] * vec[channel of input k]`` (padding ignored)."""
    if kind == "DEPTHWISE_CONV_2D":
        cout = w.shape[3]
        per_in = vec[np.arange(cout) * vec.size // cout] if vec.size != cout else vec
        return w.reshape(-1, cout).sum(axis=0) * per_in
    if kind == "FULLY_CONNECTED":
        return w.reshape(w.shape[0], -1) @ np.resize(vec, w.shape[-1])
    return w.sum(axis=(1, 2)) @ vec  # CONV_2D [cout, kh, kw, cin] x [cin]


def _mean_shift(kind: str, real: np.ndarray, q: np.ndarray, scale: np.ndarray, axis: int,
                mean: np.ndarray) -> np.ndarray:
    """Per output channel, ``sum (W - W_q) * E[x]``: what the rounded weights lose on average."""
    shape = [1] * real.ndim
    shape[axis] = -1
    return _contract(kind, real - q.astype(np.float64) * scale.reshape(shape), mean)


def activation_shift(channel_hist: np.ndarray, scale: float, zero_point: int, quant: QuantParams,
                     bits: int) -> np.ndarray:
    """Per channel, the mean real error ``E[x_b - x]`` of re-expressing a feature map's int8 values
    on its ``bits``-bit grid ``quant`` (rounding and clipping), from per-channel int8 histograms
    ``[channels, 256]``."""
    real = scale * (INT8_VALUES - zero_point).astype(np.float64)
    s, zp = quant.scalar()
    lo, hi = qrange(bits, False) if bits < 8 else (-128, 127)
    back = s * (np.clip(np.round(real / s) + zp, lo, hi) - zp)
    h = np.asarray(channel_hist, np.float64)
    counts = np.maximum(h.sum(axis=1), 1.0)
    return (h @ (back - real)) / counts


def _check_shared_constants(graph: Graph, assignment: PrecisionAssignment) -> None:
    """Weights or biases read by two ops cannot be requantized for one of them only."""
    users: dict[int, list[int]] = {}
    for op in graph.ops:
        if op.kind in WEIGHTED_OPS:
            for t in op.inputs[1:]:
                if t >= 0:
                    users.setdefault(t, []).append(op.index)
    for t, ops in users.items():
        if len(ops) > 1 and len({assignment.weight_bits.get(o, 8) for o in ops}) > 1:
            raise MixqError(f"constant {graph.tensors[t].name} is shared by ops {ops} with different weight bitwidths")
