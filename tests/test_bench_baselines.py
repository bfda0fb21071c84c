"""Baseline kernels (kernels/baselines) in QEMU: bit-exact with the Python reference on small,
awkward shapes at every benchmarked bitwidth, on both emulated cores."""
from __future__ import annotations

import pytest

from tvm_mixq.bench.cases import Variant
from tvm_mixq.bench.kernels import run_kernel_bench
from tvm_mixq.bench.shapes import LayerShape
from tvm_mixq.emu import tools_available

pytestmark = pytest.mark.skipif(tools_available() is not None, reason=f"emulation tools missing: {tools_available()}")

# Odd output channels, odd pixel counts, K tails (K % group != 0), stride 2 with one-sided
# padding, unequal top/left padding, non-square windows.
SMALL_SHAPES = [
    LayerShape("conv2d", 5, 5, 6, 5, 3, 3, 1, 1, 5, 5),
    LayerShape("conv2d", 7, 6, 4, 3, 3, 3, 2, 0, 4, 3),
    LayerShape("conv2d", 9, 4, 2, 4, 4, 2, 2, 1, 4, 2, pad_left=0),
    LayerShape("pointwise", 3, 3, 24, 7, out_h=3, out_w=3),
    LayerShape("depthwise", 5, 6, 12, 12, 3, 3, 2, 1, 3, 3),
    LayerShape("depthwise", 4, 4, 8, 8, 3, 3, 1, 1, 4, 4),
    LayerShape("fully_connected", 1, 1, 40, 5),
    LayerShape("add", 3, 5, 6, 6),
    LayerShape("avgpool", 5, 5, 4, 4, 3, 3, 2, 1, 3, 3),
]
ALL_VARIANTS = [Variant(i, w, o) for i in (8, 4, 2) for w in (8, 4, 2) for o in (8, 4, 2)]


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4"])
def test_baselines_bit_exact_small_shapes(target):
    variants = ALL_VARIANTS if target == "cortex-m7" else [Variant(8, 8, 8), Variant(4, 4, 4), Variant(8, 2, 4)]
    report = run_kernel_bench(target, shapes=SMALL_SHAPES, variants=variants, with_ours=False)
    assert report.measurements
    impls = {m.impl for m in report.measurements}
    assert impls == {"cmsis_int8", "cmix_unpack16"}
    bad = [(m.impl, m.op, m.shape, (m.in_bits, m.w_bits, m.out_bits), m.status)
           for m in report.measurements if not m.bit_exact]
    assert not bad
    assert all(m.instructions and m.instructions > 0 for m in report.measurements)
    # K = 54: 8- and 4-bit weight rows start on a byte, 2-bit ones do not (the baseline refuses them)
    conv = [m for m in report.measurements if m.op == "conv2d" and m.shape["cin"] == 6]
    assert len(conv) == len([v for v in variants if v.w_bits != 2])


def test_instruction_counts_repeat():
    shapes = [LayerShape("fully_connected", 1, 1, 64, 16)]
    first = run_kernel_bench("cortex-m7", shapes=shapes, variants=[Variant(4, 4, 4)], with_ours=False)
    second = run_kernel_bench("cortex-m7", shapes=shapes, variants=[Variant(4, 4, 4)], with_ours=False)
    assert [m.instructions for m in first.measurements] == [m.instructions for m in second.measurements]
    assert all(m.bit_exact for m in first.measurements)


@pytest.mark.slow
def test_int8_baseline_close_to_cmsis_nn_on_anchors():
    """The cmsis_int8 baseline is within 30% of real CMSIS-NN's figures (kernel issue, M7)."""
    from tvm_mixq.bench.shapes import ANCHOR_SHAPES, CMSIS_NN_ANCHOR_FIGURES

    shapes = [s for s in ANCHOR_SHAPES if s.op in CMSIS_NN_ANCHOR_FIGURES]
    report = run_kernel_bench("cortex-m7", shapes=shapes, variants=[Variant(8, 8, 8)], with_ours=False)
    assert report.all_bit_exact
    for m in report.measurements:
        ref = CMSIS_NN_ANCHOR_FIGURES[m.op]["s8"]
        assert 0.7 * ref <= m.instructions <= 1.3 * ref, (m.op, m.instructions, ref)
