"""Static arena of a layer-by-layer generated model.

Buffers (activation tensors, kernel scratch) live from the layer that writes them to the last
layer that reads them (graph inputs from before the first layer, graph outputs to the end). A
RESHAPE's output shares its input's buffer. Placement is greedy by size, largest first, each at
the lowest aligned offset that overlaps no placed buffer alive at the same time (the usual
offline planner, as TFLM's greedy planner). The arena size is the highest end of any buffer, and
the generated code declares exactly that many bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ArenaBuffer:
    """One buffer: ``name``, ``size`` bytes, alive from layer ``first`` to ``last`` inclusive."""

    name: str
    size: int
    first: int
    last: int
    kind: str  # "tensor", "input", "output", "scratch"
    tensors: list[int] = field(default_factory=list)
    offset: int = -1

    @property
    def end(self) -> int:
        return self.offset + self.size

    def overlaps_in_time(self, other: "ArenaBuffer") -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass
class ArenaPlan:
    buffers: list[ArenaBuffer]
    size: int
    alignment: int

    def timeline(self, steps: int) -> list[tuple[int, int]]:
        """(live bytes, highest live address) at each layer ``0 .. steps-1``."""
        out = []
        for s in range(steps):
            live = [b for b in self.buffers if b.first <= s <= b.last]
            out.append((sum(b.size for b in live), max((b.end for b in live), default=0)))
        return out


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def place(buffers: list[ArenaBuffer], alignment: int = 8, fixed: tuple[ArenaBuffer, ...] = ()) -> ArenaPlan:
    """Place ``buffers`` (offsets set in place) and return the plan. ``fixed`` buffers (part of
    ``buffers``) keep the offsets they have and are placed around."""
    order = sorted((b for b in buffers if b.size > 0 and not any(b is f for f in fixed)),
                   key=lambda b: (-b.size, b.first, b.name))
    placed: list[ArenaBuffer] = list(fixed)
    for b in order:
        conflicts = sorted((p for p in placed if p.overlaps_in_time(b)), key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.end, alignment))
        b.offset = offset
        placed.append(b)
    for b in buffers:
        if b.size <= 0:
            b.offset = 0
    size = _align(max((b.end for b in placed if b.size > 0), default=0), alignment)
    return ArenaPlan(buffers, size, alignment)
