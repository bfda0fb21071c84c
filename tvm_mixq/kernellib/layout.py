"""Kernel layouts: how weights and activations are laid out in memory for ``kernels/``.

Activations (all ops): NHWC, int8 at 8 bits, unsigned at 4 and 2 bits, packed little-end first as
:func:`tvm_mixq.reference.subbyte.pack` defines.

Weights of conv2d / pointwise / fully connected (``[Cout, KH, KW, Cin]`` or ``[Cout, K]``): one
row of ``K = KH*KW*Cin`` weights per output channel, zero-padded to :func:`weight_row_len`; the
rows of each channel pair are interleaved one 32-bit word at a time (``c0 word0, c1 word0, c0
word1, ...``; an odd last channel is paired with a zero row), so one LDRD fetches a word of both
channels. Inside a word:

* 8 bits: plain int8, one byte per weight (the DSP path pairs ``SXTB16(x) = (w0, w2)`` and
  ``SXTB16(x ror 8) = (w1, w3)`` with an im2col row stored in the order ``a0 a2 a1 a3``);
* 4 bits: plain two's complement nibbles, little-end first; half a byte per weight;
* 2 bits: ``u = w + 2`` in ``[0, 3]``, 16 per little-endian 32-bit word, permuted so that
  ``ror(x, r) & 0x30033003`` for ``r = 0, 2, 8, 10`` gives the four SMLAD lane words of the
  word's 16 weights (see kernels/README.md); a quarter byte per weight.

A4W4 weights may also go to flash already re-spaced into the SMLAD lane words of the packed
A4W4 path (:func:`pack_w4_lanes`, one byte per weight; with the lane bias of :func:`w4_lane_bias`,
for the entry points with the suffix ``_lanes``): the kernel then neither re-spaces them into
scratch nor spends call-start time on them.

Depthwise weights ``[1, KH, KW, C]``: plain packing (signed, little-end first), no padding.
"""
from __future__ import annotations

import numpy as np

from ..errors import MixqError
from ..reference import subbyte

BITS = (8, 4, 2)

#: Bit position of element t of a 16-weight word of 2-bit weights (mirror of mixq_w2_bitpos).
W2_BITPOS = (12, 0, 28, 16, 14, 2, 30, 18, 20, 8, 4, 24, 22, 10, 6, 26)


def _check_bits(bits: int, what: str) -> None:
    if bits not in BITS:
        raise MixqError(f"{what} bitwidth {bits} is not one of {BITS}")


def act_range(bits: int) -> tuple[int, int]:
    """Value range of an activation of ``bits`` bits: int8 at 8 bits, unsigned below."""
    _check_bits(bits, "activation")
    return subbyte.qrange(bits, signed=(bits == 8))


def weight_range(bits: int) -> tuple[int, int]:
    """Value range of a (signed) weight of ``bits`` bits."""
    _check_bits(bits, "weight")
    return subbyte.qrange(bits, signed=True)


def weight_row_len(k: int, bits: int) -> int:
    """Padded row length (elements) of ``K`` weights in the kernel layout."""
    _check_bits(bits, "weight")
    m = 4 if bits == 8 else 16
    return (k + m - 1) // m * m


def weights_size(k: int, cout: int, bits: int) -> int:
    """Bytes of conv2d / pointwise / fully connected weights in the kernel layout."""
    return weight_row_len(k, bits) * bits // 8 * (cout + (cout & 1))


def _check_values(values: np.ndarray, lo: int, hi: int, what: str) -> None:
    if values.size and (int(values.min()) < lo or int(values.max()) > hi):
        raise MixqError(f"{what} values outside [{lo}, {hi}] (min {int(values.min())}, max {int(values.max())})")


def pack_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Conv2d / pointwise / fully connected weights -> kernel layout (uint8 array).

    Parameters
    ----------
    w : ``[Cout, KH, KW, Cin]`` (OHWI) or ``[Cout, K]`` signed integers in the ``bits`` range.
    bits : 8, 4 or 2.

    Returns
    -------
    ``weights_size(K, Cout, bits)`` bytes.
    """
    lo, hi = weight_range(bits)
    w = np.asarray(w)
    if w.ndim < 2:
        raise MixqError(f"weights need at least 2 dimensions [Cout, ...], got shape {w.shape}")
    rows = w.reshape(w.shape[0], -1).astype(np.int64)
    _check_values(rows, lo, hi, f"{bits}-bit weight")
    cout, k = rows.shape
    kp = weight_row_len(k, bits)
    padded = np.zeros((cout + (cout & 1), kp), dtype=np.int64)
    padded[:cout, :k] = rows
    if bits == 8:
        row_bytes = (padded.reshape(-1) & 0xFF).astype(np.uint8).reshape(padded.shape[0], kp)
    elif bits == 4:
        row_bytes = subbyte.pack(padded, 4, signed=True).reshape(padded.shape[0], kp // 2)
    else:
        u = (padded + 2).reshape(padded.shape[0], kp // 16, 16)
        words = np.zeros((padded.shape[0], kp // 16), dtype=np.uint64)
        for t, pos in enumerate(W2_BITPOS):
            words |= u[:, :, t].astype(np.uint64) << np.uint64(pos)
        row_bytes = words.astype("<u4").view(np.uint8).reshape(padded.shape[0], kp // 4)
    # interleave channel pairs one 32-bit word at a time: [c0 w0, c1 w0, c0 w1, c1 w1, ...]
    nwords = row_bytes.shape[1] // 4
    pairs = row_bytes.reshape(-1, 2, nwords, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(pairs).reshape(-1)


def w4_lanes_size(k: int, cout: int) -> int:
    """Bytes of A4W4 weights in lane words (mirror of ``mixq_w4_lanes_size``): one per weight of
    the rows padded to :func:`weight_row_len` (``K`` rounded up to 16), ``Cout`` rounded up to even."""
    return weight_row_len(k, 4) * (cout + (cout & 1))


def pack_w4_lanes(w: np.ndarray) -> np.ndarray:
    """4-bit conv2d / pointwise / fully connected weights -> the lane words of the packed A4W4 path
    (the ``_lanes`` entry points; what the kernel otherwise builds in scratch at every call).

    Rows of ``K`` weights zero-padded to ``kp = weight_row_len(K, 4)``; per channel pair (an odd last
    channel paired with a zero row) and per 8 weights ``w0..w7`` of a row four little-endian words
    ``c0 A, c0 B, c1 A, c1 B`` with int16 halfwords ``A = (w1 + 2048 w0, w5 + 2048 w4)`` and
    ``B = (w3 + 2048 w2, w7 + 2048 w6)`` (spacing 11: one SMLAD with the activation lanes
    ``(a0 - 8) + (a1 - 8) 2048`` puts ``sum (a - 8) w`` of 4 pairs in bits [11, 22)).

    Returns ``w4_lanes_size(K, Cout)`` bytes.
    """
    lo, hi = weight_range(4)
    w = np.asarray(w)
    if w.ndim < 2:
        raise MixqError(f"weights need at least 2 dimensions [Cout, ...], got shape {w.shape}")
    rows = w.reshape(w.shape[0], -1).astype(np.int64)
    _check_values(rows, lo, hi, "4-bit weight")
    cout, k = rows.shape
    kp = weight_row_len(k, 4)
    padded = np.zeros((cout + (cout & 1), kp), dtype=np.int64)
    padded[:cout, :k] = rows
    g = padded.reshape(padded.shape[0], kp // 8, 8)
    # halfwords per 8 weights: A = (w1 + 2048 w0, w5 + 2048 w4), B = (w3 + 2048 w2, w7 + 2048 w6)
    halves = np.stack([g[..., odd] + 2048 * g[..., odd - 1] for odd in (1, 5, 3, 7)], axis=-1)
    words = (halves & 0xFFFF).astype("<u2").view("<u4")  # [C, kp/8, 2]: A, B
    # per channel pair and 8 weights: c0 A, c0 B, c1 A, c1 B
    pairs = words.reshape(-1, 2, kp // 8, 2).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(pairs).view(np.uint8).reshape(-1)


def w4_lane_bias(w: np.ndarray, bias, input_zp: int) -> np.ndarray:
    """The bias a ``_lanes`` call takes: ``bias[c] + (8 - input_zp) sum_k w[c][k]``
    (the packed path multiplies activations centred at 8; ``bias`` None counts as 0). int32 per
    output channel; raises when a value leaves int32."""
    rows = np.asarray(w).reshape(np.asarray(w).shape[0], -1).astype(np.int64)
    b = np.zeros(rows.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    if b.size != rows.shape[0]:
        raise MixqError(f"bias has {b.size} values for {rows.shape[0]} output channels")
    out = b + (8 - int(input_zp)) * rows.sum(axis=1)
    if out.size and (int(out.min()) < -(1 << 31) or int(out.max()) >= (1 << 31)):
        raise MixqError("lane bias leaves int32")
    return out.astype(np.int32)


def kernel_weights(w: np.ndarray, w_bits: int, bias=None, input_zp: int = 0, lanes: bool = False,
                   depthwise: bool = False) -> tuple[np.ndarray, "np.ndarray | None"]:
    """(weights, bias) as a kernel call takes them: depthwise weights plainly packed, A4W4 weights in
    lane words with the lane bias when ``lanes`` (the ``_lanes`` entry points), else the kernel
    layout of :func:`pack_weights` with ``bias`` unchanged."""
    if depthwise:
        return pack_depthwise_weights(w, w_bits), bias
    if lanes:
        if w_bits != 4:
            raise MixqError(f"weights in lane words are 4-bit, got {w_bits}-bit weights")
        return pack_w4_lanes(w), w4_lane_bias(w, bias, input_zp)
    return pack_weights(w, w_bits), bias


def pack_depthwise_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Depthwise weights ``[1, KH, KW, C]`` -> plain packed bytes (signed, little-end first)."""
    lo, hi = weight_range(bits)
    w = np.asarray(w).astype(np.int64)
    _check_values(w, lo, hi, f"{bits}-bit weight")
    return subbyte.pack(w, bits, signed=True)


def pack_activations(x: np.ndarray, bits: int) -> np.ndarray:
    """NHWC activations -> packed bytes (int8 at 8 bits, unsigned sub-byte)."""
    lo, hi = act_range(bits)
    x = np.asarray(x).astype(np.int64)
    _check_values(x, lo, hi, f"{bits}-bit activation")
    return subbyte.pack(x, bits, signed=(bits == 8))


def unpack_activations(packed: np.ndarray, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`pack_activations`: int64 array of ``shape``."""
    count = int(np.prod(shape, dtype=np.int64))
    return subbyte.unpack(packed, bits, signed=(bits == 8), count=count).reshape(shape)
