"""The benchmark with the project's kernels (kernels/): rows per (kernel, baseline) pair, every
output bit-exact in the firmware. Slow: it cross-compiles the whole kernel library."""
from __future__ import annotations

import pytest

from tvm_mixq.bench.cases import Variant
from tvm_mixq.bench.firmware import ours_available
from tvm_mixq.bench.kernels import run_kernel_bench, summary
from tvm_mixq.bench.shapes import LayerShape
from tvm_mixq.emu import tools_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(tools_available() is not None, reason=f"emulation tools missing: {tools_available()}"),
    pytest.mark.skipif(ours_available() is not None, reason=f"project kernels missing: {ours_available()}"),
]


def test_rows_pair_kernels_with_baselines():
    shapes = [LayerShape("pointwise", 4, 3, 32, 6, out_h=4, out_w=3), LayerShape("fully_connected", 1, 1, 64, 5),
              LayerShape("depthwise", 5, 5, 16, 16, 3, 3, 1, 1, 5, 5), LayerShape("add", 2, 3, 16, 16)]
    report = run_kernel_bench("cortex-m7", shapes=shapes, variants=[Variant(4, 4, 4), Variant(8, 2, 8)])
    assert report.ours and report.all_bit_exact
    pw = [r for r in report.results if r.op == "pointwise"]
    # W8A8: cmsis_int8 only; W4A4 and W2A8: cmsis_int8 and cmix_unpack16
    assert sorted((r.variant, r.baseline) for r in pw) == sorted([
        ("W8A8", "cmsis_int8"), ("W4A4", "cmsis_int8"), ("W4A4", "cmix_unpack16"),
        ("W2A8", "cmsis_int8"), ("W2A8", "cmix_unpack16")])
    for r in report.results:
        assert r.instructions > 0 and r.baseline_instructions > 0
        assert r.speedup == pytest.approx(r.baseline_instructions / r.instructions, rel=1e-3)
    w4 = next(r for r in pw if r.variant == "W4A4")
    assert w4.weight_bytes <= next(r for r in pw if r.variant == "W8A8").weight_bytes
    assert "geomean_vs_own_w8a8" in summary(report)


def test_cost_table_sweep_without_baselines(tmp_path):
    from tvm_mixq.bench.kernels import all_weighted_variants, write_cost_table
    from tvm_mixq.quant.cost import MeasuredCost

    variants = all_weighted_variants()
    assert len(variants) == 27 and variants[0] == Variant(8, 8, 8) and len(set(variants)) == 27
    shapes = [LayerShape("pointwise", 3, 3, 32, 8, out_h=3, out_w=3)]
    report = run_kernel_bench("cortex-m7", shapes=shapes, variants=[Variant(2, 2, 4), Variant(4, 8, 2)],
                              with_ours=True, baselines=False)
    assert report.all_bit_exact and report.results == []
    assert sorted((m.impl, m.in_bits, m.w_bits, m.out_bits) for m in report.measurements) == [
        ("ours", 2, 2, 4), ("ours", 4, 8, 2), ("ours", 8, 8, 8)]
    # the measured cost model reads the mismatched widths straight from such a table
    model = MeasuredCost.from_file(write_cost_table(report, tmp_path / "t.json"))
    m = next(m for m in report.measurements if (m.in_bits, m.w_bits, m.out_bits) == (2, 2, 4))
    assert model.instructions_per_mac("pointwise", 2, 2, 4) == pytest.approx(m.instructions / m.macs)
