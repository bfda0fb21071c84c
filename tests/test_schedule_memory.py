"""Static arena planner: against the linear (no reuse) planner, and its invariants."""
from __future__ import annotations

import numpy as np
import pytest

from tvm_mixq.plan import Buffer, Step
from tvm_mixq.schedule.memory import conflicts, liveness_peak, make_memory_plan, place_greedy, place_linear


def _random_buffers(seed: int, n: int = 30, steps: int = 20) -> list[Buffer]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b = sorted(rng.integers(0, steps, 2))
        out.append(Buffer(f"b{i}", int(rng.integers(1, 5000)), int(a), int(b), "tensor"))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_greedy_never_overlaps_and_beats_linear(seed: int) -> None:
    bufs = _random_buffers(seed)
    peak = place_greedy(bufs, alignment=8)
    assert conflicts(bufs) == []
    assert all(b.offset % 8 == 0 for b in bufs)
    assert peak == max(b.end for b in bufs)
    assert peak >= liveness_peak(bufs, 20)  # no placement beats the live-bytes lower bound
    lin = [Buffer(b.name, b.size, b.first, b.last, b.kind) for b in bufs]
    lin_peak = place_linear(lin, alignment=8)
    assert conflicts(lin) == []
    assert lin_peak == sum((b.size + 7) // 8 * 8 for b in lin[:-1]) + lin[-1].size
    assert peak <= lin_peak


def test_disjoint_lifetimes_share_memory() -> None:
    bufs = [Buffer("a", 1000, 0, 1, "tensor"), Buffer("b", 1000, 2, 3, "tensor"), Buffer("c", 10, 0, 3, "tensor")]
    assert place_greedy(bufs, 4) == 1010
    assert bufs[0].offset == bufs[1].offset


def test_conflicts_detects_overlap() -> None:
    a = Buffer("a", 100, 0, 2, "tensor", offset=0)
    b = Buffer("b", 100, 2, 3, "tensor", offset=50)
    assert conflicts([a, b]) == [("a", "b")]
    b.may_overlap = ("a",)
    assert conflicts([a, b]) == []


def test_group_keeps_relative_offsets() -> None:
    inp = Buffer("in", 1000, 0, 5, "input", group="io", group_offset=200, may_overlap=("out",))
    out = Buffer("out", 600, 0, 9, "tensor", group="io", group_offset=0, may_overlap=("in",))
    other = Buffer("x", 300, 6, 9, "tensor")
    peak = place_greedy([inp, out, other], 8)
    assert inp.offset - out.offset == 200
    assert conflicts([inp, out, other]) == []
    assert peak == 1200  # x fits in the input bytes freed after step 5


def test_timeline_counts_overlapping_pair_once() -> None:
    inp = Buffer("in", 1000, 0, 1, "input", group="io", group_offset=200, may_overlap=("out",))
    out = Buffer("out", 600, 0, 2, "tensor", group="io", group_offset=0, may_overlap=("in",))
    steps = [Step(i, 0, "op", label=f"s{i}") for i in range(3)]
    mem = make_memory_plan([inp, out], steps, "input counted", 8)
    assert mem.peak == 1200
    assert [t.live_bytes for t in mem.timeline] == [1200, 1200, 600]
    assert mem.max_live_bytes == 1200
