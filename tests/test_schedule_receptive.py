"""Backward receptive fields: windows and explicit padding against brute force, and the patch
tiles of a stage (exact partition of the split tensor, windows inside the regions computed)."""
from __future__ import annotations

import itertools

import pytest

from test_schedule_graphs import mixed_stage_graph
from tvm_mixq.plan import Interval
from tvm_mixq.schedule.opinfo import AxisWindow, spatial_windows
from tvm_mixq.schedule.patches import build_patch_stage, grid_intervals, stage_cuts, stage_macs


@pytest.mark.parametrize("k,s,d,pb,n_in", list(itertools.product((1, 3, 5), (1, 2), (1, 2), (0, 1, 2), (7, 10))))
def test_axis_window_matches_brute_force(k: int, s: int, d: int, pb: int, n_in: int) -> None:
    eff = (k - 1) * d + 1
    n_out = (n_in + 2 * pb - eff) // s + 1
    if n_out < 1:
        return
    aw = AxisWindow(k, s, d, pb, n_in, n_out)
    for a in range(n_out):
        for b in range(a + 1, n_out + 1):
            taps = [o * s - pb + j * d for o in range(a, b) for j in range(k)]
            inside = [t for t in taps if 0 <= t < n_in]
            if not inside:  # an output made of padding only; no real layer has one
                continue
            win, before, after = aw.window(Interval(a, b))
            # the window is the span of the taps clipped to the input (strided taps may skip rows)
            assert (win.start, win.stop) == (max(min(taps), 0), min(max(taps) + 1, n_in))
            assert win.start <= min(inside) and max(inside) < win.stop
            assert before == max(0, -min(taps))
            assert after == max(0, max(taps) + 1 - n_in)


def test_same_padding_follows_tflite() -> None:
    g = mixed_stage_graph()
    rows, cols = spatial_windows(g, g.ops[0])  # 3x3 stride 2 SAME, 24 -> 12: total pad 1, 0 before
    assert (rows.kernel, rows.stride, rows.pad_before) == (3, 2, 0)
    rows, _ = spatial_windows(g, g.ops[4])  # PAD 1: a window with negative offset
    assert (rows.kernel, rows.pad_before) == (1, 1)


def test_grid_intervals_partition() -> None:
    for size, parts in [(24, 8), (10, 3), (7, 7)]:
        iv = grid_intervals(size, parts)
        assert iv[0].start == 0 and iv[-1].stop == size
        assert all(a.stop == b.start for a, b in zip(iv, iv[1:]))
        assert max(i.size for i in iv) - min(i.size for i in iv) <= 1


def test_stage_cuts_skip_residual_interior() -> None:
    g = mixed_stage_graph()
    ends = [c.end for c in stage_cuts(g)]
    assert 1 not in ends and 2 not in ends  # the residual branch is open there
    assert 0 in ends and 3 in ends
    assert 12 not in ends  # RESHAPE ends the possible stages


@pytest.mark.parametrize("end,grid", [(3, (3, 3)), (5, (2, 3)), (8, (6, 6)), (7, (4, 5))])
def test_patch_tiles_are_consistent(end: int, grid: tuple[int, int]) -> None:
    g = mixed_stage_graph()
    cut = next(c for c in stage_cuts(g) if c.end == end)
    stage = build_patch_stage(g, cut, grid)
    split = g.tensors[cut.split_tensor]
    covered = set()
    for p in stage.patches:
        for h in range(p.output.h.start, p.output.h.stop):
            for w in range(p.output.w.start, p.output.w.stop):
                assert (h, w) not in covered
                covered.add((h, w))
        for ot in p.op_tiles:
            op = g.ops[ot.op]
            region = p.tensor_tiles[op.inputs[0]]
            assert region.h.start <= ot.window.h.start and ot.window.h.stop <= region.h.stop
            assert region.w.start <= ot.window.w.start and ot.window.w.stop <= region.w.stop
            assert ot.output == p.tensor_tiles[op.outputs[0]]
    assert len(covered) == split.shape[1] * split.shape[2]
    assert stage.macs >= stage.baseline_macs
    assert stage.macs == stage_macs(g, cut, grid)
    assert stage_macs(g, cut, (1, 1)) == stage.baseline_macs
