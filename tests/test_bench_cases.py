"""Benchmark layer shapes, variants and case data (no emulation)."""
from __future__ import annotations

import numpy as np
import pytest

from tvm_mixq.bench.cases import Variant, make_case, parse_variant
from tvm_mixq.bench.firmware import baseline_accepts
from tvm_mixq.bench.kernels import variants_for
from tvm_mixq.bench.shapes import ANCHOR_SHAPES, LayerShape, benchmark_shapes, model_shapes
from tvm_mixq.errors import MixqError
from tvm_mixq.reference import ops


def test_anchor_macs_match_the_issue():
    macs = {s.op: s.macs for s in ANCHOR_SHAPES}
    assert macs["conv2d"] == 1_327_104
    assert macs["pointwise"] == 1_179_648
    assert macs["depthwise"] == 165_888
    assert macs["fully_connected"] == 16_384


def test_model_shapes_come_from_the_models():
    vww = model_shapes("vww_96")
    kws = model_shapes("kws")
    assert vww[0] == LayerShape("conv2d", 96, 96, 3, 8, 3, 3, 2, 0, 48, 48, "vww_96")
    assert {s.op for s in vww} == {"conv2d", "pointwise", "depthwise", "avgpool", "fully_connected"}
    first = kws[0]
    assert (first.op, first.kh, first.kw, first.stride, first.out_h, first.out_w) == ("conv2d", 10, 4, 2, 25, 5)
    assert first.padding == (4, 5, 1, 1)
    # distinct layers only
    assert len(set(benchmark_shapes())) == len(benchmark_shapes())


@pytest.mark.parametrize("text,expected", [("W4A8", Variant(8, 4, 8)), ("w2a2", Variant(2, 2, 2)),
                                           ("W4A4O8", Variant(4, 4, 8)), ("8,2,4", Variant(8, 2, 4))])
def test_parse_variant(text, expected):
    assert parse_variant(text) == expected
    assert parse_variant(expected.label) == expected


@pytest.mark.parametrize("text", ["W3A8", "A8", "8,8", "Wx"])
def test_parse_variant_rejects(text):
    with pytest.raises(MixqError):
        parse_variant(text)


def test_int8_variant_always_first():
    vs = variants_for("pointwise", [Variant(4, 4, 4)])
    assert vs == [Variant(8, 8, 8), Variant(4, 4, 4)]
    assert all(v.in_bits == v.w_bits for v in variants_for("add"))


def test_case_expected_is_the_reference():
    shape = ANCHOR_SHAPES[0]
    case = make_case(shape, Variant(4, 4, 4), seed=3)
    assert 0 <= case.x.min() and case.x.max() <= 15
    assert -8 <= case.w.min() and case.w.max() <= 7
    again = ops.conv2d(case.x[None], case.x_zp, case.w, case.bias, (1, 1), shape.padding, (1, 1),
                       case.multiplier, case.shift, case.out_zp, case.qmin, case.qmax)
    assert np.array_equal(again.reshape(-1), case.expected)
    # outputs spread over the range rather than saturating
    assert len(np.unique(case.expected)) > 8


def test_baseline_constraints():
    ok = make_case(LayerShape("pointwise", 2, 2, 6, 4, out_h=2, out_w=2), Variant(4, 4, 4))
    odd = make_case(LayerShape("pointwise", 2, 2, 3, 4, out_h=2, out_w=2), Variant(4, 4, 4))
    assert baseline_accepts(ok)
    assert not baseline_accepts(odd)
