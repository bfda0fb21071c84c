"""Cost table written by the benchmark and read by the mixed-precision search."""
from __future__ import annotations

import pytest

from tvm_mixq.bench.cost_table import CostTable
from tvm_mixq.bench.kernels import BenchReport, Measurement, write_cost_table
from tvm_mixq.bench.shapes import ANCHOR_SHAPES
from tvm_mixq.errors import MixqError


def _m(impl, bits, shape, instr, exact=True):
    return Measurement(impl, shape.op, *bits, shape.as_json(), shape.source, shape.macs, instr, exact, 0, 0)


def test_roundtrip_and_estimate(tmp_path):
    conv, pw = ANCHOR_SHAPES[0], ANCHOR_SHAPES[1]
    report = BenchReport("cortex-m7", measurements=[
        _m("ours", (4, 4, 4), pw, 2_000_000),
        _m("ours", (4, 4, 4), conv, 3_000_000),
        _m("ours", (2, 2, 2), pw, 1, exact=False),  # not bit-exact: left out
        _m("cmsis_int8", (8, 8, 8), pw, 3_500_000),
    ])
    path = write_cost_table(report, tmp_path / "c.json")
    table = CostTable.load(path)
    assert table.target == "cortex-m7" and len(table.entries) == 3
    assert table.instructions("pointwise", 4, 4, 4, pw) == 2_000_000
    assert table.instructions("pointwise", 8, 8, 8, pw, impl="cmsis_int8") == 3_500_000
    # unmeasured shape: instructions per MAC of the measured ones
    assert table.instructions("pointwise", 4, 4, 4, macs=pw.macs // 2) == pytest.approx(1_000_000)
    with pytest.raises(MixqError, match="no ours cost"):
        table.instructions("pointwise", 2, 2, 2, pw)


def test_missing_or_bad_file(tmp_path):
    with pytest.raises(MixqError, match="not found"):
        CostTable.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"target": "x"}')
    with pytest.raises(MixqError, match="malformed"):
        CostTable.load(bad)
