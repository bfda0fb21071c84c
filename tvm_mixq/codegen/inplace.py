"""Convolutions run in place, row by row (what the planner's in-place depthwise and 1x1 steps mean).

A convolution whose input dies at it may write its output over its input when it goes output row
by output row: row ``y`` is computed into a small ring of rows, and a finished output row ``j`` is
copied to its final place (the same buffer, output layout) as soon as no later output row reads the
input bytes it covers. :func:`row_schedule` computes, for every output row, the input window
(rows, padding) and how many output rows may be flushed after it; the ring holds the rows
computed but not yet flushed. Used only when the shared buffer plus the ring is smaller than input
plus output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..graph import Graph
from .layers import Layer


@dataclass
class RowSchedule:
    table: np.ndarray  # [oh, 4] int16: window start row, window rows, padding top, rows flushed after
    ring_rows: int
    in_row_bytes: int
    out_row_bytes: int
    table_name: str = ""
    ring: str = ""  # C expression of the ring buffer
    buf: str = ""  # C expression of the shared buffer

    @property
    def ring_bytes(self) -> int:
        return self.ring_rows * self.out_row_bytes


def row_schedule(layer: Layer, graph: Graph) -> Optional[RowSchedule]:
    """The in-place row schedule of a conv2d / pointwise / depthwise layer, or None when its rows
    are not whole bytes or running in place would not save memory."""
    if layer.template != "conv":
        return None
    p = layer.p
    i, f, o = p["in_dims"], p["filter_dims"], p["out_dims"]
    if i["n"] != 1:
        return None
    ib, _, ob = p["bits"]
    if (i["w"] * i["c"] * ib) % 8 or (o["w"] * o["c"] * ob) % 8:
        return None
    in_row, out_row = i["w"] * i["c"] * ib // 8, o["w"] * o["c"] * ob // 8
    sh, dh, kh, pt = p["stride"][0], p["dilation"][0], f["h"], p["padding"][0]
    rows = []
    flushed, pending_max = 0, 0
    for y in range(o["h"]):
        first = y * sh - pt
        last = min(i["h"], first + (kh - 1) * dh + 1)
        start = max(0, first)
        nxt = (y + 1) * sh - pt if y + 1 < o["h"] else None
        limit = o["h"] if nxt is None else max(nxt, 0) * in_row // out_row if out_row else o["h"]
        # row j is safe once its bytes end at or before the first input byte still to be read
        new_flushed = flushed
        while new_flushed <= y and (nxt is None or (new_flushed + 1) * out_row <= max(nxt, 0) * in_row):
            new_flushed += 1
        del limit
        pending_max = max(pending_max, y + 1 - flushed)
        flushed = new_flushed
        rows.append((start, max(last - start, 0), max(0, -first), flushed))
    if flushed != o["h"]:
        return None
    ring = pending_max
    saved = min(in_row * i["h"], out_row * o["h"]) - ring * out_row
    if saved <= 0:
        return None
    return RowSchedule(np.array(rows, dtype=np.int16), ring, in_row, out_row)
