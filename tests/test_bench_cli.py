"""``mixq bench kernels``: argument checking and the JSON contract (DESIGN section 4)."""
from __future__ import annotations

import json

import pytest

from tvm_mixq.cli.main import main
from tvm_mixq.emu import tools_available

ROW_KEYS = {"op", "in_bits", "w_bits", "out_bits", "shape", "macs", "instructions", "bit_exact", "baseline",
            "baseline_instructions"}


@pytest.mark.parametrize("argv", [
    ["bench", "kernels", "--target", "cortex-m0"],
    ["bench", "kernels", "--target", "cortex-m7", "--ops", "conv3d"],
    ["bench", "kernels", "--target", "cortex-m7", "--variants", "W3A3"],
    ["bench", "kernels", "--target", "cortex-m7", "--models", "mobilenet"],
])
def test_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixq: error:") and err.count("\n") == 1


@pytest.mark.skipif(tools_available() is not None, reason=f"emulation tools missing: {tools_available()}")
def test_json_baselines_only(capsys, tmp_path):
    cost = tmp_path / "cost.json"
    rc = main(["bench", "kernels", "--target", "cortex-m7", "--models", "none", "--ops", "fully_connected",
               "--variants", "W4A4", "--baselines-only", "--json", "--cost-table", str(cost)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["target"] == "cortex-m7" and out["bit_exact"] is True
    assert out["results"] == []  # no rows without the project's kernels
    ms = out["measurements"]
    assert {(m["impl"], m["in_bits"]) for m in ms} == {("cmsis_int8", 8), ("cmix_unpack16", 4)}
    assert all(m["shape"] == {"h": 1, "w": 1, "cin": 256, "cout": 64, "kh": 1, "kw": 1, "stride": 1, "pad": 0}
               for m in ms)
    table = json.loads(cost.read_text())
    assert table["target"] == "cortex-m7" and len(table["entries"]) == 2
    assert all(e["instructions"] > 0 for e in table["entries"])


def test_row_keys_follow_the_design():
    from dataclasses import fields

    from tvm_mixq.bench.kernels import BenchRow

    assert ROW_KEYS <= {f.name for f in fields(BenchRow)}
