"""TFLM's activation arena for a bitwidth assignment, computed offline (a VDQS SRAM budget).

TFLM runs layer by layer and places every activation tensor in the arena's non-persistent
section (``head``) for its lifetime, with its greedy memory planner: buffers sorted by size,
largest first (ties: the later-added buffer first), each put at the lowest offset where it does
not overlap a placed buffer that is alive at the same time. :func:`tflm_arena_estimate` replays
that placement for the model's tensors at their bitwidths (sub-byte ones packed, sizes rounded up
to TFLM's 16-byte alignment); :func:`live_bytes_bound` is the lower bound no placement beats (the
largest sum of tensors live at one op). Kernel scratch buffers are not counted, so TFLM's
``head`` is the estimate or a little more.
"""
from __future__ import annotations

from typing import Mapping

from ..graph import Graph
from ..reference.subbyte import packed_size

ALIGNMENT = 16


def _aligned(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _buffers(graph: Graph, act_bits: Mapping[int, int]) -> list[tuple[int, int, int, int]]:
    """(tensor, aligned bytes, first scope, last scope) of every activation, in tensor order.

    Scopes as TFLM counts them: 0 for the graph inputs, op ``i`` at ``i + 1``, the graph outputs
    alive to the last scope.
    """
    first: dict[int, int] = {t: 0 for t in graph.inputs}
    last: dict[int, int] = {t: 0 for t in graph.inputs}
    for op in graph.ops:
        scope = op.index + 1
        for t in op.outputs:
            first.setdefault(t, scope)
        for t in list(op.inputs) + list(op.outputs):
            if t >= 0 and not graph.tensors[t].is_const:
                last[t] = scope
    for t in graph.outputs:
        last[t] = len(graph.ops)
    out = []
    for t in sorted(first):
        tensor = graph.tensors[t]
        bits = act_bits.get(t, 8)
        size = packed_size(tensor.size, bits) if bits < 8 else tensor.nbytes
        out.append((t, _aligned(size), first[t], last.get(t, first[t])))
    return out


def live_bytes_bound(graph: Graph, act_bits: Mapping[int, int]) -> int:
    """Largest sum of live activation bytes at one scope (a lower bound of any placement)."""
    bufs = _buffers(graph, act_bits)
    return max((sum(size for _, size, a, b in bufs if a <= s <= b) for s in range(len(graph.ops) + 1)), default=0)


def tflm_arena_estimate(graph: Graph, act_bits: Mapping[int, int]) -> int:
    """Extent of the activation arena TFLM's greedy planner lays out (see the module docstring)."""
    bufs = _buffers(graph, act_bits)
    order = list(reversed(bufs))  # TFLM fills its sort array from the tail
    order.sort(key=lambda b: -b[1])  # stable, like TFLM's bubble sort: equal sizes keep that order
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last), by offset
    extent = 0
    for _, size, first, last in order:
        offset = 0
        for p_off, p_size, p_first, p_last in placed:
            if p_last < first or last < p_first:
                continue  # not alive at the same time
            if p_off - offset >= size:
                break  # the gap before this buffer fits
            offset = max(offset, p_off + p_size)
        placed.append((offset, size, first, last))
        placed.sort(key=lambda b: b[0])
        extent = max(extent, offset + size)
    return extent
