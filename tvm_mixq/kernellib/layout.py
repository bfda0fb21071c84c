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
