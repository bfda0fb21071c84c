"""Static memory planner: place buffers with known lifetimes at offsets in one arena.

Interface (as TFLite Micro's planners): a list of :class:`tvm_mixq.plan.Buffer` with ``size``,
``first`` and ``last`` step; the planner fills in ``offset``. Two buffers whose lifetimes
intersect never share a byte, except pairs that name each other in ``may_overlap``: an output
written over its input in place, the stage output written over input rows no later patch reads
(the scheduler has checked both are safe).

Algorithm (:func:`place_greedy`): buffers of one ``group`` move together as one unit at fixed
relative offsets. Units are taken in a few orders (largest first, as TFLite Micro's greedy
planner; by first use; by last use, backwards; by size times lifetime), stopping at the first that
reaches the live-bytes bound; in each order every unit goes at the lowest aligned offset where it
does not collide with any already placed buffer that is live at the same time. When the result
is above the live-bytes bound, seeded random orders
are tried as well. The smallest of the arenas is kept. :func:`place_linear` is the
reference that reuses nothing: every buffer after the previous one.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from ..plan import Buffer, MemoryPlan, Step, TimelineEntry


def align_up(x: int, alignment: int) -> int:
    return (x + alignment - 1) // alignment * alignment


def _time_overlap(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def _may_share(a: Buffer, b: Buffer) -> bool:
    return b.name in a.may_overlap or a.name in b.may_overlap


def _units(buffers: Sequence[Buffer]) -> list[list[Buffer]]:
    groups: dict[str, list[Buffer]] = {}
    units: list[list[Buffer]] = []
    for b in buffers:
        if b.group is None:
            units.append([b])
        elif b.group in groups:
            groups[b.group].append(b)
        else:
            groups[b.group] = [b]
            units.append(groups[b.group])
    return units


def _place_units(units: list[list[Buffer]], alignment: int) -> int:
    placed: list[Buffer] = []
    for unit in units:
        # (member's offset in the unit, member size, placed buffer's start, end) of every clash risk
        risks = [
            (m.group_offset, m.size, p.offset, p.end)
            for m in unit
            for p in placed
            if m.first <= p.last and p.first <= m.last and not _may_share(m, p)
        ]
        candidates = sorted({0} | {max(0, align_up(end - goff, alignment)) for goff, _, _, end in risks})
        for base in candidates:
            if all(not (start < base + goff + size and base + goff < end) for goff, size, start, end in risks):
                for m in unit:
                    m.offset = base + m.group_offset
                placed.extend(unit)
                break
    return max((b.end for b in placed), default=0)


def place_greedy(buffers: Sequence[Buffer], alignment: int = 8, restarts: int = 128) -> int:
    """Place ``buffers`` (offsets set in place); returns the arena size."""
    units = _units(buffers)
    def extent(u: list[Buffer]) -> int:
        return max(m.group_offset + m.size for m in u)

    orders: list[Callable[[list[Buffer]], tuple]] = [
        lambda u: (-extent(u), min(m.first for m in u)),
        lambda u: (-extent(u), -max(m.last for m in u)),
        lambda u: (min(m.first for m in u), -extent(u)),
        lambda u: (-max(m.last for m in u), -extent(u)),
        lambda u: (-extent(u) * (max(m.last for m in u) - min(m.first for m in u) + 1), -extent(u)),
    ]
    best_peak, best_offsets = -1, [0] * len(buffers)
    bound = _live_bound(buffers)
    for key in orders:
        peak = _place_units(sorted(units, key=key), alignment)
        if best_peak < 0 or peak < best_peak:
            best_peak, best_offsets = peak, [b.offset for b in buffers]
        if best_peak <= bound:
            break  # no placement can do better
    # a few seeded shuffles when the arena is above the live-bytes bound (cheap: ~1 ms each)
    rng = random.Random(len(buffers))
    for _ in range(restarts):
        if best_peak <= bound:
            break
        rng.shuffle(units)
        peak = _place_units(units, alignment)
        if peak < best_peak:
            best_peak, best_offsets = peak, [b.offset for b in buffers]
    for b, off in zip(buffers, best_offsets):
        b.offset = off
    return best_peak


def live_per_step(buffers: Sequence[Buffer], n_steps: int) -> list[int]:
    """Bytes live at every step, a group's members counted by the union of their (fixed,
    relative) ranges: what any placement must hold at that step."""
    plain = [0] * (n_steps + 1)
    grouped: dict[str, list[Buffer]] = {}
    for b in buffers:
        if b.group is None:
            plain[b.first] += b.size
            plain[b.last + 1] -= b.size
        else:
            grouped.setdefault(b.group, []).append(b)
    out, cur = [], 0
    for d in plain[:n_steps]:
        cur += d
        out.append(cur)
    for members in grouped.values():
        lo = min(m.first for m in members)
        hi = max(m.last for m in members)
        for step in range(lo, min(hi, n_steps - 1) + 1):
            reach, total = -1, 0
            for a, z in sorted((m.group_offset, m.group_offset + m.size) for m in members if m.first <= step <= m.last):
                if z > reach:
                    total += z - max(a, reach)
                    reach = z
            out[step] += total
    return out


def _live_bound(buffers: Sequence[Buffer]) -> int:
    """Largest number of bytes live at one step, a group's members counted by the union of their
    (fixed, relative) ranges: no placement can do better."""
    n = max((b.last for b in buffers), default=-1) + 1
    best = 0
    for step in range(n):
        total = 0
        ranges: dict[str, list[tuple[int, int]]] = {}
        for b in buffers:
            if b.first <= step <= b.last:
                if b.group is None:
                    total += b.size
                else:
                    ranges.setdefault(b.group, []).append((b.group_offset, b.group_offset + b.size))
        for rs in ranges.values():
            reach = -1
            for lo, hi in sorted(rs):
                if hi > reach:
                    total += hi - max(lo, reach)
                    reach = hi
        best = max(best, total)
    return best


def place_linear(buffers: Sequence[Buffer], alignment: int = 8) -> int:
    """Reference planner: no reuse, every buffer (or group) after the previous one."""
    end = 0
    for unit in _units(buffers):
        base = align_up(end, alignment)
        for m in unit:
            m.offset = base + m.group_offset
        end = max(m.end for m in unit)
    return end


def conflicts(buffers: Sequence[Buffer]) -> list[tuple[str, str]]:
    """Pairs of buffers live at the same time whose bytes overlap (should be empty)."""
    bad = []
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if _time_overlap(a, b) and a.offset < b.end and b.offset < a.end and not _may_share(a, b):
                bad.append((a.name, b.name))
    return bad


def timeline(buffers: Sequence[Buffer], steps: Sequence[Step]) -> list[TimelineEntry]:
    """Live bytes (union of live address ranges) and high-water mark at every step."""
    out = []
    for s in steps:
        live = sorted((b for b in buffers if b.live_at(s.index)), key=lambda b: b.offset)
        covered, reach = 0, 0
        for b in live:
            if b.end > reach:
                covered += b.end - max(b.offset, reach)
                reach = b.end
        high = max((b.end for b in live), default=0)
        out.append(TimelineEntry(s.index, s.label, covered, high, [b.name for b in live]))
    return out


def liveness_peak(buffers: Sequence[Buffer], n_steps: int) -> int:
    """Largest sum of live buffer sizes over the steps (a lower bound for any placement, up to
    the overlap the ``may_overlap`` pairs allow)."""
    delta = [0] * (n_steps + 1)
    for b in buffers:
        delta[b.first] += b.size
        delta[b.last + 1] -= b.size
    best = cur = 0
    for d in delta[:-1]:
        cur += d
        best = max(best, cur)
    return best


def make_memory_plan(buffers: list[Buffer], steps: Sequence[Step], mode: str, alignment: int,
                     planner: str = "greedy") -> MemoryPlan:
    """Place ``buffers`` and wrap the result with its timeline."""
    peak = place_linear(buffers, alignment) if planner == "linear" else place_greedy(buffers, alignment)
    return MemoryPlan(mode, alignment, buffers, peak, timeline(buffers, steps))
