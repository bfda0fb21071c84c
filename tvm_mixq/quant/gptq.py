"""Hessian-aware rounding of sub-byte weights with error feedback, from calibration statistics.

Why
    Rounding every weight to its nearest b-bit level minimises the error of the *weights*; what
    matters is the error of the layer's *output* on real inputs. For a layer ``y = W x + b`` (one
    row ``w`` per output channel, ``x`` the receptive field of one output pixel, the constant 1
    appended for the bias) the output error of a quantized row ``q`` is
    ``(w - q) H (w - q)^T`` with ``H = E[x x^T]`` over the calibration set. Training-free
    post-training quantization methods (optimal brain quantization, GPTQ) minimise it greedily:
    quantize one input column at a time and spread its rounding error over the columns not yet
    quantized, in proportion to how the inputs correlate (the inverse Hessian), so that the next
    roundings compensate it. Here the bias column comes last and is never rounded (the bias is
    int32), so it absorbs the remaining mean error: this *is* bias correction, in the same least
    squares.

What this module computes
    * :func:`layer_patches`: the receptive fields ``x`` of a conv / depthwise / fully connected
      op from its input values (real numbers; padding contributes the real value 0, as the
      zero-point padding of the kernels does), :func:`accumulate_hessian`: ``sum x x^T`` over them
      (for a depthwise op, one small matrix per channel). Calibration (:mod:`.calibration`)
      accumulates these on the int8 model's activations (:class:`LayerHessian`).
    * :func:`quantize_rows`: for rows ``W`` [R, K] sharing one Hessian (or one Hessian per row),
      symmetric per-row ``b``-bit quantization: for each candidate clipping scale of a small grid
      (fractions of the row's largest magnitude, never finer than ``min_scale``), the error-feedback
      rounding above; per row the scale with the least output error wins. Returns the integer
      weights, the scales and the corrected bias.

The result keeps the plan's weight format exactly: signed, symmetric, per output channel, zero
point 0, ``q`` in ``[-(2**(b-1) - 1), 2**(b-1) - 1]``; only *which* integers are chosen changes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..graph import Graph, Op
from ..reference.ops import compute_padding

log = logging.getLogger(__name__)

#: Candidate clipping scales, as fractions of a row's largest magnitude over the largest level.
SCALE_FRACTIONS = np.linspace(0.4, 1.0, 13)
#: Ridge added to the Hessian, as a fraction of its mean diagonal (keeps it invertible).
DAMPING = 0.01
#: At most this many receptive fields per op and calibration batch enter the Hessian (default).
MAX_ROWS_PER_BATCH = 60000
#: Receptive fields per op over the whole calibration set: ``ROWS_PER_INPUT`` per input of a
#: field, clipped to [MIN_ROWS, MAX_ROWS] (:func:`rows_per_batch`).
ROWS_PER_INPUT = 24
MIN_ROWS = 4096
MAX_ROWS = 16384


@dataclass
class LayerHessian:
    """``sum x x^T`` of one weighted op's receptive fields (bias column last) and their count.

    ``matrix`` is ``[K+1, K+1]`` for CONV_2D (``K = kh*kw*cin``, order kh, kw, cin as the weights)
    and FULLY_CONNECTED (``K = cin``), and ``[C, kh*kw+1, kh*kw+1]`` for DEPTHWISE_CONV_2D (one per
    output channel).
    """

    op: int
    matrix: np.ndarray
    count: int = 0

    def add(self, xtx: np.ndarray, rows: int) -> None:
        self.matrix = self.matrix + xtx
        self.count += rows

    @property
    def mean(self) -> np.ndarray:
        """``E[x x^T]``."""
        return self.matrix / max(self.count, 1)


def _conv_geometry(graph: Graph, op: Op) -> tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    w = graph.tensors[op.inputs[1]].shape
    x = graph.tensors[op.inputs[0]].shape
    kh, kw = int(w[1]), int(w[2])
    a = op.attrs
    (oh, ow), pads = compute_padding((int(x[1]), int(x[2])), (kh, kw), tuple(a.stride), tuple(a.dilation),
                                     a.padding)
    return kh, kw, (oh, ow), (int(a.stride[0]), int(a.stride[1])), pads


def layer_patches(graph: Graph, op: Op, x: np.ndarray, rng: Optional[np.random.Generator] = None,
                  max_rows: int = MAX_ROWS_PER_BATCH) -> np.ndarray:
    """Receptive fields of ``op`` for the real input ``x`` (leading batch axis).

    Returns ``[rows, K]`` for CONV_2D / FULLY_CONNECTED and ``[rows, kh*kw, C]`` for
    DEPTHWISE_CONV_2D (input channel last), at most ``max_rows`` rows (a seeded random subset of
    the output positions, drawn before any window is copied).
    """
    x = np.asarray(x, np.float64)
    rng = rng if rng is not None else np.random.default_rng(0)
    if op.kind == "FULLY_CONNECTED":
        k = int(graph.tensors[op.inputs[1]].shape[-1])
        rows = x.reshape(-1, k)
        if rows.shape[0] > max_rows:
            rows = rows[np.sort(rng.choice(rows.shape[0], max_rows, replace=False))]
        return np.ascontiguousarray(rows)
    kh, kw, (oh, ow), stride, (top, bottom, left, right) = _conv_geometry(graph, op)
    dil = tuple(int(d) for d in op.attrs.dilation)
    n, h, w, c = x.shape
    need_h = (oh - 1) * stride[0] + (kh - 1) * dil[0] + 1
    need_w = (ow - 1) * stride[1] + (kw - 1) * dil[1] + 1
    xp = np.zeros((n, max(need_h, top + h + bottom), max(need_w, left + w + right), c))
    xp[:, top:top + h, left:left + w, :] = x
    sn, sh, sw, sc = xp.strides
    win = np.lib.stride_tricks.as_strided(
        xp, shape=(n, oh, ow, kh, kw, c),
        strides=(sn, sh * stride[0], sw * stride[1], sh * dil[0], sw * dil[1], sc), writeable=False)
    total = n * oh * ow
    if total > max_rows:
        pick = np.sort(rng.choice(total, max_rows, replace=False))
        ni, rest = np.divmod(pick, oh * ow)
        ii, jj = np.divmod(rest, ow)
        sel = win[ni, ii, jj]  # [rows, kh, kw, c], only the chosen windows copied
    else:
        sel = win.reshape(total, kh, kw, c)
    if op.kind == "DEPTHWISE_CONV_2D":
        return np.ascontiguousarray(sel.reshape(-1, kh * kw, c))
    return np.ascontiguousarray(sel.reshape(-1, kh * kw * c))


def accumulate_hessian(graph: Graph, op: Op, x: np.ndarray, rng: Optional[np.random.Generator] = None,
                       max_rows: int = MAX_ROWS_PER_BATCH) -> tuple[np.ndarray, int]:
    """``sum x x^T`` (bias column of ones appended) of ``op``'s receptive fields in ``x``."""
    p = layer_patches(graph, op, x, rng, max_rows)
    if op.kind == "DEPTHWISE_CONV_2D":
        rows, taps, c = p.shape
        mult = int(graph.tensors[op.inputs[1]].shape[3]) // c
        aug = np.concatenate([p, np.ones((rows, 1, c))], axis=1).transpose(2, 0, 1)  # [c, rows, taps+1]
        xtx = np.matmul(aug.transpose(0, 2, 1), aug)
        if mult > 1:
            xtx = np.repeat(xtx, mult, axis=0)  # output channel o reads input channel o // mult
        return xtx, rows
    aug = np.concatenate([p, np.ones((p.shape[0], 1))], axis=1)
    return aug.T @ aug, p.shape[0]


def rows_per_batch(k: int, batch: int, samples: int) -> int:
    """Receptive fields per calibration batch for an op with ``k`` inputs per field: about
    :data:`ROWS_PER_INPUT` per input, between :data:`MIN_ROWS` and :data:`MAX_ROWS` over the whole
    calibration set (enough for a well-conditioned ``k x k`` matrix, cheap on wide layers)."""
    total = int(np.clip(ROWS_PER_INPUT * (k + 1), MIN_ROWS, MAX_ROWS))
    return max(1, -(-total * batch // max(samples, 1)))


def new_hessian(graph: Graph, op: Op) -> LayerHessian:
    w = graph.tensors[op.inputs[1]].shape
    if op.kind == "DEPTHWISE_CONV_2D":
        k = int(w[1] * w[2]) + 1
        return LayerHessian(op.index, np.zeros((int(w[3]), k, k)))
    k = int(np.prod(w[1:])) + 1
    return LayerHessian(op.index, np.zeros((k, k)))


def _inverse_cholesky(h: np.ndarray) -> np.ndarray:
    """Upper factor ``U`` with ``U^T U = (H + damping)^-1`` (batched over leading axes)."""
    k = h.shape[-1]
    diag = np.diagonal(h, axis1=-2, axis2=-1)
    damp = DAMPING * np.maximum(diag.mean(axis=-1), 1e-12)
    eye = np.eye(k)
    hd = h + damp[..., None, None] * eye
    # dead inputs (never non-zero): make them independent so the inverse exists
    dead = diag <= 0
    if dead.any():
        hd = hd + dead[..., None] * eye
    hinv = np.linalg.inv(hd)
    hinv = 0.5 * (hinv + np.swapaxes(hinv, -1, -2))
    lower = np.linalg.cholesky(hinv)
    return np.swapaxes(lower, -1, -2)


def quantize_rows(w: np.ndarray, bias: np.ndarray, hessian: np.ndarray, bits: int,
                  min_scale: Optional[np.ndarray] = None,
                  fractions: np.ndarray = SCALE_FRACTIONS,
                  correct_bias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Error-feedback ``bits``-bit quantization of rows ``w`` [R, K] with bias [R].

    Parameters
    ----------
    w, bias : real weights (one row per output channel) and real bias.
    hessian : ``E[x x^T]`` with the bias column last: ``[K+1, K+1]`` shared by all rows, or
        ``[R, K+1, K+1]`` one per row.
    bits : 4 or 2 (symmetric levels ``+-(2**(bits-1) - 1)``).
    min_scale : per-row lower bound of the scale.

    Returns
    -------
    q : int8 ``[R, K]``, scale : float64 ``[R]``, bias : float64 ``[R]`` (corrected).
    """
    w = np.asarray(w, np.float64)
    r, k = w.shape
    qmax = (1 << (bits - 1)) - 1
    hessian = np.asarray(hessian, np.float64)
    if not correct_bias:
        hessian = hessian[..., :k, :k]
    u = _inverse_cholesky(hessian)
    per_row = u.ndim == 3
    amax = np.abs(w).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    scales = fractions[:, None] * amax[None, :] / qmax  # [F, R]
    if min_scale is not None:
        scales = np.maximum(scales, np.broadcast_to(np.asarray(min_scale, np.float64), (r,))[None, :])
    f = scales.shape[0]
    work = np.concatenate([np.broadcast_to(w, (f, r, k)), np.broadcast_to(np.asarray(bias, np.float64)[:, None],
                                                                          (f, r, 1))], axis=2).copy()
    if not correct_bias:
        work = work[:, :, :k].copy()
    q = np.zeros((f, r, k))
    loss = np.zeros((f, r))
    for j in range(k):
        col = work[:, :, j]
        qj = np.clip(np.round(col / scales), -qmax, qmax)
        q[:, :, j] = qj
        if per_row:
            d = u[:, j, j][None, :]  # [1, R]
            err = (col - qj * scales) / d
            work[:, :, j + 1:] -= err[:, :, None] * u[None, :, j, j + 1:]
        else:
            d = u[j, j]
            err = (col - qj * scales) / d
            work[:, :, j + 1:] -= err[:, :, None] * u[j, j + 1:][None, None, :]
        loss += err ** 2
    best = loss.argmin(axis=0)
    rows = np.arange(r)
    new_bias = work[best, rows, k] if correct_bias else np.asarray(bias, np.float64).copy()
    return q[best, rows].astype(np.int8), scales[best, rows], new_bias


def quantize_layer(kind: str, real: np.ndarray, real_bias: np.ndarray, hessian: LayerHessian, bits: int,
                   min_scale: Optional[np.ndarray] = None,
                   correct_bias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`quantize_rows` for one op's weights in their TFLite layout.

    ``real``: CONV_2D ``[cout, kh, kw, cin]``, FULLY_CONNECTED ``[cout, cin]``, DEPTHWISE_CONV_2D
    ``[1, kh, kw, cout]``. Returns ``(q, scale, bias)`` with ``q`` in the same layout.
    """
    real = np.asarray(real, np.float64)
    h = hessian.mean
    if kind == "DEPTHWISE_CONV_2D":
        cout = real.shape[3]
        rows = real.reshape(-1, cout).T  # [cout, kh*kw]
        q, s, b = quantize_rows(rows, real_bias, h, bits, min_scale, correct_bias=correct_bias)
        return q.T.reshape(real.shape), s, b
    rows = real.reshape(real.shape[0], -1)
    q, s, b = quantize_rows(rows, real_bias, h, bits, min_scale, correct_bias=correct_bias)
    return q.reshape(real.shape), s, b
