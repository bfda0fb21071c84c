"""Range equalization of sub-byte feature maps: an equivalent int8 model whose channels fill the
feature map's range more evenly before it drops to 4 or 2 bits.

Why
    A feature map has one scale and zero point (per tensor), but its channels do not share one
    range: on the MLPerf Tiny KWS model the 90th-percentile channel reaches 3-7x further than the
    10th. At 8 bits that costs nothing; at 4 bits (15 steps) a channel that spans a fifth of the
    range is left with three levels. The layers around the feature map can move that range without
    changing what the model computes (training-free, as cross-layer equalization does for weights):

    * the **producer** (CONV_2D or DEPTHWISE_CONV_2D, per-channel weight scales) writes channel
      ``c`` divided by ``k_c``: its weight and bias *scales* are divided by ``k_c``, the integers
      stay (``y'_c = y_c / k_c`` exactly, ReLU commutes with a positive factor);
    * every **consumer** reads channel ``c`` with its weights multiplied by ``k_c``: a depthwise
      consumer (one input channel per output channel) again only changes its per-channel weight
      scale, exactly; a convolution's weights are re-expressed (8-bit weights requantized per output
      channel, from the float model's weights when given, sub-byte weights quantized later from
      the scaled values).

    ``k_c = (r_c / R) ** strength`` with ``r_c`` the channel's largest calibrated magnitude and
    ``R`` the largest over the channels (``k_c <= 1``: small channels are stretched toward the
    feature map's range, which does not grow). ``strength`` 1 equalizes the ranges fully, but then
    the consumer's weights for small channels shrink by as much and lose precision; 0.5 splits the
    difference (the square root, as cross-layer equalization balances two weight ranges).

Where it applies
    Only to feature maps that go below 8 bits (an all-8-bit assignment is left exactly as it is),
    produced by a CONV_2D / DEPTHWISE_CONV_2D with a bias and a fused NONE, RELU or RELU6, and read
    only by CONV_2D / DEPTHWISE_CONV_2D (not a graph output, not an ADD or pooling, whose other
    operands or outputs would need the same factors). With RELU6 a stretched channel is clamped at 6
    of the new units, which its calibrated values never reach (``r_c / k_c <= R``).

What :func:`equalize` returns
    The equalized int8 graph, its calibration (histograms of the equalized feature maps re-binned
    on the same int8 grid, and the second moments of the consumers' receptive fields scaled by
    ``1 / k``) and the float weights scaled the same way: everything
    :func:`~tvm_mixq.quant.requantize.apply_assignment` then quantizes from. The patch statistics
    stay those of the int8 model (VDPC has already classified the patches).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Optional

import numpy as np

from ..graph import Graph, Op, QuantParams, Tensor
from .calibration import Calibration, TensorStats

#: Default ``mixq.equalize``: the exponent ``strength`` of the channel factors (0 turns it off).
DEFAULT_STRENGTH = 0.5
#: The smallest channel factor: a (nearly) dead channel is stretched at most this much.
MIN_FACTOR = 1.0 / 16
_CONV = ("CONV_2D", "DEPTHWISE_CONV_2D")
_ACTIVATIONS = ("NONE", "RELU", "RELU6")
_VALUES = np.arange(-128, 128, dtype=np.float64)


@dataclass
class Equalized:
    """An equalized int8 model (see the module docstring); ``factors``: tensor -> ``k`` [channels]."""

    graph: Graph
    calibration: Calibration
    float_weights: Optional[Mapping[int, np.ndarray]] = None
    factors: dict[int, np.ndarray] = field(default_factory=dict)


def _has_bias(op: Op) -> bool:
    return len(op.inputs) > 2 and op.inputs[2] >= 0


def equalizable(graph: Graph) -> dict[int, tuple[Op, list[Op]]]:
    """Feature map -> (producer, consumers) of every feature map the transformation applies to."""
    consumers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    outputs = set(graph.outputs)
    out: dict[int, tuple[Op, list[Op]]] = {}
    for op in graph.ops:
        if op.kind not in _CONV or not _has_bias(op) or getattr(op.attrs, "activation", "NONE") not in _ACTIVATIONS:
            continue
        t = op.outputs[0]
        users = consumers.get(t, [])
        if t in outputs or not users:
            continue
        if any(u.kind not in _CONV or u.inputs[0] != t or t in u.inputs[1:] or not _has_bias(u) for u in users):
            continue
        if graph.tensors[t].quant is None or graph.tensors[t].quant.scale.size != 1:
            continue
        out[t] = (op, users)
    return out


def channel_factors(stats: TensorStats, strength: float) -> Optional[np.ndarray]:
    """``k`` [channels] of one feature map from its calibration (None: nothing to equalize)."""
    if stats.channel_hist is None or strength <= 0:
        return None
    real = stats.scale * (_VALUES - stats.zero_point)
    seen = stats.channel_hist > 0
    mag = np.where(seen, np.abs(real)[None, :], 0.0).max(axis=1)
    top = float(mag.max(initial=0.0))
    if top <= 0:
        return None
    k = np.maximum(mag / top, MIN_FACTOR) ** strength
    return None if np.all(k >= 1.0) else k


def _rebin(stats: TensorStats, k: np.ndarray) -> TensorStats:
    """The statistics of the feature map with channel ``c`` divided by ``k_c``, on the same int8 grid."""
    real = stats.scale * (_VALUES - stats.zero_point)
    q = np.clip(np.round(real[None, :] / k[:, None] / stats.scale) + stats.zero_point, -128, 127).astype(np.int64)
    ch = np.zeros_like(stats.channel_hist)
    rows = np.repeat(np.arange(len(k)), 256)
    np.add.at(ch, (rows, (q + 128).ravel()), stats.channel_hist.ravel())
    hist = ch.sum(axis=0)
    seen = np.nonzero(hist)[0]
    per_channel_sum = (ch * np.arange(-128, 128)[None, :]).sum(axis=1)
    return replace(stats, hist=hist, channel_hist=ch, channel_sum=per_channel_sum,
                   qmin=int(seen.min()) - 128 if seen.size else stats.qmin,
                   qmax=int(seen.max()) - 128 if seen.size else stats.qmax)


def _per_channel_scale(t: Tensor, channels: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(t.quant.scale, np.float64), (channels,)).copy()


def _with_scale(t: Tensor, scale: np.ndarray, axis: int, data: Optional[np.ndarray] = None) -> Tensor:
    return replace(t, quant=QuantParams(scale.astype(np.float32), np.zeros(len(scale), np.int64), axis=axis),
                   data=t.data if data is None else data)


def _axis_factors(k: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    s = [1] * len(shape)
    s[axis] = len(k)
    return k.reshape(s)


def _factors(graph: Graph, calib: Calibration, tensors: Iterable[int], strength: float,
             cand: Mapping[int, object]) -> dict[int, np.ndarray]:
    factors: dict[int, np.ndarray] = {}
    for t in sorted(set(tensors)):
        if t in cand and t in calib.tensors:
            k = channel_factors(calib.tensors[t], strength)
            if k is not None and len(k) == graph.tensors[t].shape[-1]:
                factors[t] = k
    return factors


def equalized_stats(graph: Graph, calib: Calibration, tensors: Iterable[int],
                    strength: float = DEFAULT_STRENGTH) -> dict[int, TensorStats]:
    """The calibration statistics of the feature maps ``tensors`` once equalized (the others, and
    those not equalizable, as calibrated): what :func:`equalize` gives, without the layers' weights.
    A map's statistics depend on its own factors only."""
    stats = dict(calib.tensors)
    for t, k in _factors(graph, calib, tensors, strength, equalizable(graph)).items():
        stats[t] = _rebin(calib.tensors[t], k)
    return stats


def equalize(graph: Graph, calib: Calibration, tensors: Iterable[int], strength: float = DEFAULT_STRENGTH,
             float_weights: Optional[Mapping[int, np.ndarray]] = None) -> Equalized:
    """Equalize the feature maps ``tensors`` (those :func:`equalizable` does not list are skipped).

    Returns ``graph``, ``calib`` and ``float_weights`` themselves when nothing changes.
    """
    cand = equalizable(graph)
    factors = _factors(graph, calib, tensors, strength, cand)
    if not factors:
        return Equalized(graph, calib, float_weights)
    g = copy.copy(graph)
    g.tensors = list(graph.tensors)
    stats = dict(calib.tensors)
    hessians = dict(calib.hessians)
    fw = dict(float_weights) if float_weights is not None else None
    for t, k in factors.items():
        producer, users = cand[t]
        # producer: channel c written divided by k_c (weight and bias scales; integers unchanged)
        w = g.tensors[producer.inputs[1]]
        axis = 3 if producer.kind == "DEPTHWISE_CONV_2D" else 0
        n = w.shape[axis]
        g.tensors[w.index] = _with_scale(w, _per_channel_scale(w, n) / k, axis)
        b = g.tensors[producer.inputs[2]]
        if b.quant is not None:  # metadata only: the kernels take the bias in units of s_in * s_w
            g.tensors[b.index] = _with_scale(b, _per_channel_scale(b, n) / k, 0)
        if fw is not None and producer.index in fw:
            fw[producer.index] = np.asarray(fw[producer.index], np.float64) / _axis_factors(k, w.shape, axis)
        stats[t] = _rebin(calib.tensors[t], k)
        for op in users:
            _scale_consumer(g, op, k, fw, hessians)
    cal = replace(calib, tensors=stats, hessians=hessians)
    return Equalized(g, cal, fw, factors)


def _scale_consumer(g: Graph, op: Op, k: np.ndarray, fw: Optional[dict[int, np.ndarray]],
                    hessians: dict[int, object]) -> None:
    """Multiply ``op``'s weights for input channel ``c`` by ``k_c`` (bias unchanged in real terms)."""
    w = g.tensors[op.inputs[1]]
    b = g.tensors[op.inputs[2]]
    s_in = float(g.tensors[op.inputs[0]].quant.scale[0])
    if op.kind == "DEPTHWISE_CONV_2D":
        n = w.shape[3]
        kk = np.repeat(k, n // len(k))  # output channel o reads input channel o // multiplier
        s_old = _per_channel_scale(w, n)
        s_new = s_old * kk
        g.tensors[w.index] = _with_scale(w, s_new, 3)
        if fw is not None and op.index in fw:
            fw[op.index] = np.asarray(fw[op.index], np.float64) * _axis_factors(kk, w.shape, 3)
        h = hessians.get(op.index)
        if h is not None:
            d = np.ones((n, h.matrix.shape[1]))
            d[:, :-1] /= kk[:, None]  # the taps of channel o scale by 1 / k, the bias column stays
            hessians[op.index] = replace(h, matrix=h.matrix * d[:, :, None] * d[:, None, :])
    else:
        n = w.shape[0]
        s_old = _per_channel_scale(w, n)
        if fw is not None and op.index in fw:
            fw[op.index] = np.asarray(fw[op.index], np.float64) * _axis_factors(k, w.shape, 3)
            real = fw[op.index]
        else:
            real = w.data.astype(np.float64) * s_old.reshape(-1, 1, 1, 1) * _axis_factors(k, w.shape, 3)
        top = np.abs(real.reshape(n, -1)).max(axis=1)
        s_new = np.where(top > 0, top / 127.0, s_old)
        q = np.clip(np.round(real / s_new.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        g.tensors[w.index] = _with_scale(w, s_new, 0, q)
        h = hessians.get(op.index)
        if h is not None:
            taps = (h.matrix.shape[0] - 1) // len(k)
            d = np.concatenate([np.tile(1.0 / k, taps), [1.0]])
            hessians[op.index] = replace(h, matrix=h.matrix * d[:, None] * d[None, :])
    s_b_old = _per_channel_scale(b, n) if b.quant is not None else s_in * s_old
    real_bias = b.data.astype(np.float64) * s_b_old
    s_b = s_in * s_new
    g.tensors[b.index] = _with_scale(b, s_b, 0, np.round(real_bias / s_b).astype(np.int32))
