"""The MIXQ ops in the real TFLM interpreter (needs TFLM_DIR and a matching tflite-micro runtime), and the
errors for a missing or wrong TFLM_DIR (always run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paths import MLPERF_INT8, ROOT
from tflm_models import block_graph, convert
from tvm_mixq.graph import Op
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions
from tvm_mixq.tflm import custom_options as co
from tvm_mixq.tflm.build import TflmSetupError, build_ops_library, resolve_tflm_dir
from tvm_mixq.tflm.runner import TflmRunError, run_tflm
from tvm_mixq.tflm.writer import CustomAttrs, write_tflite

TFLM_DIR = os.environ.get("TFLM_DIR")
requires_tflm = pytest.mark.skipif(not TFLM_DIR, reason="TFLM_DIR is not set: point it at a TensorFlow Lite Micro "
                                                        "checkout to run the MIXQ ops in TFLM (tflm_ops/README.md)")


def _mixq_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tvm_mixq.cli.main", "tflm", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env)


# -- bad TFLM_DIR (no TFLM needed) -------------------------------------------------------------------


def test_check_without_tflm_dir_is_exit_2():
    env = {k: v for k, v in os.environ.items() if k != "TFLM_DIR"}
    proc = _mixq_cli("check", str(MLPERF_INT8["kws"]), env=env)
    assert proc.returncode == 2
    assert "TFLM_DIR is not set" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_check_with_a_directory_that_is_not_tflm(tmp_path):
    proc = _mixq_cli("check", str(MLPERF_INT8["kws"]), env=dict(os.environ, TFLM_DIR=str(tmp_path)))
    assert proc.returncode == 2 and "is not a TFLM checkout" in proc.stderr


def test_resolve_tflm_dir_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)
    with pytest.raises(TflmSetupError, match="not set"):
        resolve_tflm_dir()
    with pytest.raises(TflmSetupError, match="not a directory"):
        resolve_tflm_dir(tmp_path / "missing")
    (tmp_path / "tensorflow/lite/micro").mkdir(parents=True)
    with pytest.raises(TflmSetupError, match="not a TFLM checkout"):
        resolve_tflm_dir(tmp_path)


# -- in TFLM ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops_library() -> Path:
    if not TFLM_DIR:
        pytest.skip("TFLM_DIR is not set")
    try:
        return build_ops_library(TFLM_DIR)
    except TflmSetupError as exc:
        if "ABI" in str(exc):
            pytest.skip(f"tflite-micro runtime does not match TFLM_DIR: {exc}")
        raise


def _inputs(graph, count: int, seed: int = 0) -> np.ndarray:
    t = graph.tensors[graph.inputs[0]]
    return np.random.default_rng(seed).integers(-128, 128, (count,) + tuple(t.shape[1:])).astype(np.int8)


@requires_tflm
@pytest.mark.slow
@pytest.mark.parametrize("act_bits,weight_bits", [
    ({1: 4, 2: 2, 3: 4, 4: 4}, {0: 4, 1: 2, 2: 4, 6: 4}),
    ({1: 2, 2: 2, 3: 2, 4: 2}, {0: 2, 1: 2, 2: 2, 6: 2}),
    ({1: 4, 2: 4, 3: 8, 4: 4}, {}),
])
def test_block_bit_exact_in_tflm(ops_library, tmp_path, act_bits, weight_bits):
    res = convert(block_graph(), act_bits, weight_bits)
    model = tmp_path / "block.tflite"
    model.write_bytes(res.tflite())
    x = _inputs(res.planned, 6)
    got = run_tflm(model, [x], library=ops_library).outputs[0]
    want = Interpreter(res.planned, ReferenceOptions(tflite_float_fc=False)).run([x])[0]
    np.testing.assert_array_equal(got, want)


@requires_tflm
@pytest.mark.slow
def test_malformed_options_are_refused_in_prepare(ops_library, tmp_path):
    res = convert(block_graph(), {1: 4})
    g = res.converted
    first = g.ops[0]
    opts = co.decode(first.attrs.options)
    opts["in_shape"] = [1, 12, 12, 4]  # the input tensor holds 12x12x3 bytes
    opts.pop("version")
    g.ops[0] = Op(first.index, first.kind, first.inputs, first.outputs, CustomAttrs(co.encode(first.kind, opts)))
    model = tmp_path / "bad.tflite"
    model.write_bytes(write_tflite(g))
    with pytest.raises(TflmRunError, match="could not run"):
        run_tflm(model, [_inputs(res.planned, 1)], library=ops_library)


@requires_tflm
@pytest.mark.slow
@pytest.mark.parametrize("model,budget_kb", [("kws", 7), ("vww", 35)])
def test_mlperf_check_bit_exact_and_arena_halved(ops_library, model, budget_kb):
    from tvm_mixq.tflm.check import check_model

    report = check_model(MLPERF_INT8[model], pass_config=[f"mixq.sram_limit_kb={budget_kb}"], samples=2)
    assert report.bit_exact and report.original_bit_exact
    assert report.arena_bytes_original >= 2 * report.arena_bytes_converted


@requires_tflm
@pytest.mark.slow
def test_wide_fully_connected_layers_run_in_blocks_bit_exact(ops_library):
    from tvm_mixq.tflm.check import check_model

    # AD01: ten FULLY_CONNECTED layers up to 640 outputs, run 16 output channels per kernel call
    report = check_model(MLPERF_INT8["ad"], samples=2, act_bits=4, weight_bits=4)
    assert report.bit_exact and report.mixq_ops == 10
    assert report.arena_bytes_converted < 4 * 768  # per-channel scratch of 16 channels, not 640


@requires_tflm
@pytest.mark.slow
def test_kws_firmware_bit_exact_in_qemu_cortex_m7():
    from tvm_mixq.emu import tools_available
    from tvm_mixq.tflm.convert import plan_model
    from tvm_mixq.tflm.firmware import expected_outputs, firmware_check
    from tvm_mixq.tflm.rewriter import rewrite

    problem = tools_available()
    if problem:
        pytest.skip(problem)
    pm = plan_model(MLPERF_INT8["kws"], act_bits=4, weight_bits=4)
    res = rewrite(pm.graph, pm.assignment, pm.act_quant)
    x = _inputs(pm.graph, 2)
    run = firmware_check(res.tflite(), res.converted, x, expected_outputs(res.planned, x), "cortex-m7", TFLM_DIR)
    assert run.bit_exact and len(run.instructions_per_invoke) == 2
    assert run.arena.head < 16_000  # TFLM's head for the int8 model
