"""Sub-byte tensors: value ranges and packing.

Semantics every kernel, the generated code and the TFLM ops must match:

* An n-bit integer tensor (n in 8, 4, 2) holds values in :func:`qrange`: signed
  ``[-2**(n-1), 2**(n-1) - 1]`` or unsigned ``[0, 2**n - 1]``. Its real value is
  ``scale * (q - zero_point)`` as for int8. Sub-byte activations are unsigned unless the plan says
  otherwise; weights are signed with zero point 0 and per-output-channel scales.
* Packing: the tensor is flattened in its logical (NHWC / OHWI) order and packed little-end first:
  element ``i`` sits in bits ``[(i % k) * n, (i % k + 1) * n)`` of byte ``i // k`` with
  ``k = 8 // n``. Unused high bits of the last byte are zero. Signed values are stored in two's
  complement within their n bits.
* Requantization to an n-bit output is the int8 one (:func:`fixedpoint.requantize`) with the clamp
  bounds of the n-bit range intersected with the fused activation's bounds.
"""
from __future__ import annotations

import numpy as np

SUPPORTED_BITS = (8, 4, 2)


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive (min, max) of an integer of ``bits`` bits."""
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bitwidth {bits} not in {SUPPORTED_BITS}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` values of ``bits`` bits take once packed."""
    return (count * bits + 7) // 8


def pack(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Pack integer values (any shape, flattened in C order) into a uint8 array."""
    lo, hi = qrange(bits, signed)
    flat = np.asarray(values).astype(np.int64).ravel()
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"values outside the {bits}-bit {'signed' if signed else 'unsigned'} range [{lo}, {hi}]")
    if bits == 8:
        return (flat & 0xFF).astype(np.uint8)
    per_byte = 8 // bits
    field = flat & ((1 << bits) - 1)
    padded = np.zeros(packed_size(flat.size, bits) * per_byte, dtype=np.int64)
    padded[: flat.size] = field
    lanes = padded.reshape(-1, per_byte) << (np.arange(per_byte, dtype=np.int64) * bits)
    return lanes.sum(axis=1).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, signed: bool, count: int) -> np.ndarray:
    """Inverse of :func:`pack`: the first ``count`` values as int64."""
    data = np.asarray(packed, dtype=np.uint8).ravel().astype(np.int64)
    if bits == 8:
        out = data[:count]
    else:
        per_byte = 8 // bits
        shifts = np.arange(per_byte, dtype=np.int64) * bits
        out = ((data[:, None] >> shifts) & ((1 << bits) - 1)).ravel()[:count]
    if signed:
        out = np.where(out >= (1 << (bits - 1)), out - (1 << bits), out)
    return out.astype(np.int64)
