"""Convolutions run in place, in blocks of output rows (what the planner's in-place depthwise and 1x1
steps mean).

A convolution whose input dies at it may write its output over its input when it goes block of
output rows by block: the ``R`` output rows of a block are computed by one kernel call into a small
ring of rows, and a finished output row ``j`` is copied to its final place (the same buffer, output
layout) as soon as no later block reads the input bytes it covers. :func:`row_schedule` computes,
for every block, the input window (start row, rows, padding top), its output rows and how many
output rows may be flushed after it; the ring holds the rows computed but not yet flushed, in slots
of ``R`` rows (block ``b`` in slot ``b % slots``, so every block is contiguous in the ring). ``R = 1``
is the row-by-row schedule. Used only when the shared buffer plus the ring is smaller than input
plus output; ``R`` is grown per layer by :func:`tvm_mixq.codegen.emitter._select_rows` while the
arena allows (every kernel call repeats its per-call set-up).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..graph import Graph
from .layers import Layer

#: columns of :attr:`RowSchedule.table`
START, WINDOW, PAD_TOP, OUT_ROWS, FLUSHED = range(5)


@dataclass
class RowSchedule:
    table: np.ndarray  # [blocks, 5] int16: window start row, window rows, padding top, output rows, rows flushed after
    ring_rows: int  # a multiple of block: slots of block rows
    in_row_bytes: int
    out_row_bytes: int
    block: int = 1  # R: output rows per kernel call (the last block may have fewer)
    table_name: str = ""
    ring: str = ""  # C expression of the ring buffer
    buf: str = ""  # C expression of the shared buffer

    @property
    def ring_bytes(self) -> int:
        return self.ring_rows * self.out_row_bytes

    @property
    def slots(self) -> int:
        return self.ring_rows // self.block

    @property
    def out_rows(self) -> int:
        return int(self.table[:, OUT_ROWS].sum())

    def ring_row(self, j: int) -> int:
        """Ring row holding output row ``j`` (the template's expression; block ``b`` is written at
        ring row ``(b % slots) * block``, the same)."""
        return j % self.ring_rows


def row_schedule(layer: Layer, graph: Graph, block: int = 1) -> Optional[RowSchedule]:
    """The in-place schedule of a conv2d / pointwise / depthwise layer in blocks of ``block`` output
    rows, or None when its rows are not whole bytes or running in place would not save memory."""
    if layer.template != "conv":
        return None
    p = layer.p
    i, f, o = p["in_dims"], p["filter_dims"], p["out_dims"]
    if i["n"] != 1 or block < 1:
        return None
    ib, _, ob = p["bits"]
    if (i["w"] * i["c"] * ib) % 8 or (o["w"] * o["c"] * ob) % 8:
        return None
    in_row, out_row = i["w"] * i["c"] * ib // 8, o["w"] * o["c"] * ob // 8
    sh, dh, kh, pt = p["stride"][0], p["dilation"][0], f["h"], p["padding"][0]
    oh = o["h"]
    block = min(block, oh)
    rows = []
    flushed, slots = 0, 0
    for b, y0 in enumerate(range(0, oh, block)):
        y1 = min(oh, y0 + block)  # rows y0 .. y1 - 1
        first = y0 * sh - pt
        last = min(i["h"], (y1 - 1) * sh - pt + (kh - 1) * dh + 1)
        start = max(0, first)
        nxt = y1 * sh - pt if y1 < oh else None  # first input row the next block reads (before clipping)
        # blocks holding unflushed rows, this one included, must fit in the ring
        slots = max(slots, b - flushed // block + 1)
        # row j is safe once its bytes end at or before the first input byte still to be read
        while flushed < y1 and (nxt is None or (flushed + 1) * out_row <= max(nxt, 0) * in_row):
            flushed += 1
        rows.append((start, max(last - start, 0), max(0, -first), y1 - y0, flushed))
    if flushed != oh:
        return None
    ring = slots * block
    saved = min(in_row * i["h"], out_row * oh) - ring * out_row
    if saved <= 0:
        return None
    return RowSchedule(np.array(rows, dtype=np.int16), ring, in_row, out_row, block)
