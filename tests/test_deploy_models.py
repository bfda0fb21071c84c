"""Every shared model and every per-op fixture deploys with `mixq deploy --run` (default options,
synthetic calibration) on the emulated Cortex-M7 and runs bit-exact: the int8 baseline and the mixq
deployment, each against the Python reference of its own graph. A representative subset runs by
default (two-input, float-I/O, two-output and block fixtures); the rest with --runslow."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from paths import MLPERF_INT8, OPS_FIXTURES, ROOT
from tvm_mixq.cli.main import main
from tvm_mixq.emu import tools_available

NO_TOOLS = tools_available()
pytestmark = pytest.mark.skipif(NO_TOOLS is not None, reason=str(NO_TOOLS))

QUICK = {"add_two_inputs", "concat_inputs_axis3", "mobilenet_block_float_io", "two_outputs_int8_io",
         "se_logistic_mul", "pad_dwconv_s2"}
MODELS = sorted(OPS_FIXTURES.glob("*.tflite")) + [ROOT / "models" / "fmnist_dsconv_int8.tflite",
                                                  *MLPERF_INT8.values(), *sorted((ROOT / "models" / "large").glob("*.tflite"))]


def _params():
    for path in MODELS:
        marks = () if path.stem in QUICK else (pytest.mark.slow,)
        yield pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_model_deploys_bit_exact_on_m7(path: Path, tmp_path: Path, capsys) -> None:
    code = main(["deploy", str(path), "--target", "cortex-m7", "--run", "--json", "--no-tflm", "--no-report",
                 "-o", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0, out.err[-500:]
    data = json.loads(out.out)
    assert data["bit_exact"] is True and data["baselines"]["int8_bit_exact"] is True
    assert data["instructions"] > 0 and data["peak_sram_bytes"] > 0
