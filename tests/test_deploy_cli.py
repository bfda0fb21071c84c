"""`mixq deploy` end to end: fit check before the build, QEMU run bit-exact, JSON keys, report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paths import MLPERF_INT8, OPS_FIXTURES, ROOT
from tvm_mixq.cli.main import main
from tvm_mixq.emu import tools_available

NO_TOOLS = tools_available()
needs_qemu = pytest.mark.skipif(NO_TOOLS is not None, reason=str(NO_TOOLS))
SMALL = OPS_FIXTURES / "mobilenet_block_int8_io.tflite"


def _deploy_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["deploy", *args, "--json", "--no-tflm"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_model_larger_than_sram_is_refused_before_the_build(tmp_path: Path, capsys) -> None:
    code = main(["deploy", str(MLPERF_INT8["vww"]), "--target", "cortex-m4", "--pass-config", "mixq.enable=0",
                 "--pass-config", "mixq.sram_limit_kb=16", "-o", str(tmp_path), "--no-tflm"])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not fit cortex-m4" in err and "SRAM 16,384 B" in err and "arena" in err
    assert not list(tmp_path.rglob("*.elf")), "nothing may be built for a model that does not fit"


def test_unknown_pass_config_key_is_refused(tmp_path: Path, capsys) -> None:
    code = main(["deploy", str(SMALL), "--pass-config", "mixq.bogus=1", "-o", str(tmp_path)])
    assert code == 2
    assert "mixq.bogus" in capsys.readouterr().err


@needs_qemu
def test_deploy_run_json_bit_exact_on_m7(tmp_path: Path, capsys) -> None:
    code, data = _deploy_json(capsys, str(SMALL), "--target", "cortex-m7", "--run", "-o", str(tmp_path))
    assert code == 0
    for key in ("peak_sram_bytes", "flash_bytes", "instructions", "macs", "bit_exact", "layers", "baselines"):
        assert key in data
    assert data["bit_exact"] is True and data["baselines"]["int8_bit_exact"] is True
    assert data["instructions"] > 0 and data["baselines"]["int8_instructions"] > 0
    assert 0 < data["flash_bytes"] < 200_000
    layers = data["layers"]
    assert "DEPTHWISE_CONV_2D" in [layer["op"] for layer in layers]
    assert sum(layer["instructions"] for layer in layers) <= data["instructions"] * 1.05
    for key in ("name", "op", "in_bits", "w_bits", "out_bits", "patches", "channel_split", "instructions"):
        assert key in layers[0]
    report = Path(data["report"])
    assert report.is_file() and (report.parent / "memory.png").is_file()
    assert (report.parent / "instructions.png").is_file() and (report.parent / "bitwidths.png").is_file()


@needs_qemu
def test_deploy_with_inputs_and_outputs_npz(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(3, 16, 16, 3)).astype(np.int8)
    np.savez(tmp_path / "in.npz", input_0=x)
    code, data = _deploy_json(capsys, str(SMALL), "--pass-config", "mixq.enable=0", "--inputs",
                              str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "out.npz"), "--run", "-o",
                              str(tmp_path / "dep"), "--no-report")
    assert code == 0 and data["bit_exact"] is True and data["samples"] == 3
    from tvm_mixq.reader import read_tflite
    from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions

    expected = Interpreter(read_tflite(SMALL), ReferenceOptions(tflite_float_fc=False)).run([x])[0]
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["output_0"], expected)


@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("key", ["kws", "vww"])
def test_mlperf_int8_deploys_bit_exact_on_m7(key: str, tmp_path: Path, capsys) -> None:
    code, data = _deploy_json(capsys, str(MLPERF_INT8[key]), "--pass-config", "mixq.enable=0", "--run", "-o",
                              str(tmp_path), "--no-report")
    assert code == 0 and data["bit_exact"] is True


@needs_qemu
@pytest.mark.slow
def test_deploy_run_on_m4_with_patches_and_streamed_input(tmp_path: Path, capsys) -> None:
    code, data = _deploy_json(capsys, str(ROOT / "models" / "fmnist_dsconv_int8.tflite"), "--target", "cortex-m4",
                              "--pass-config", "mixq.stream_input=1", "--calib",
                              str(ROOT / "models" / "fmnist_calib.npz"), "--run", "-o", str(tmp_path), "--no-report")
    assert code == 0 and data["bit_exact"] is True
    assert any(layer["patches"] > 1 for layer in data["layers"])
    assert data["peak_sram_bytes"] < data["baselines"]["int8_peak_sram_bytes"]


@needs_qemu
def test_two_input_model_deploys_sub_byte_bit_exact(tmp_path: Path, capsys) -> None:
    from model_builder import two_input_graph
    from tvm_mixq.tflm.writer import write_tflite

    g = two_input_graph()
    model = tmp_path / "two.tflite"
    model.write_bytes(write_tflite(g))
    rng = np.random.default_rng(1)
    calib = {f"input_{i}": rng.integers(-128, 128, (16, 8, 8, 8)).astype(np.int8) for i in range(2)}
    np.savez(tmp_path / "calib.npz", **calib)
    # with a limit deploy keeps the simplest schedule that fits, whatever its speed (without one a
    # plan slower than int8 would give way to the int8 model)
    code, data = _deploy_json(capsys, str(model), "--calib", str(tmp_path / "calib.npz"), "--pass-config",
                              "mixq.cost_budget=0.6", "--pass-config", "mixq.sram_limit_kb=64", "--run", "-o",
                              str(tmp_path / "dep"), "--no-report")
    assert code == 0 and data["bit_exact"] is True and data["baselines"]["int8_bit_exact"] is True
    assert any(layer["out_bits"] < 8 for layer in data["layers"]), "the search lowers the middle feature map"


@needs_qemu
def test_without_limit_a_plan_slower_than_int8_gives_way_to_int8(tmp_path: Path, capsys) -> None:
    """2-bit activations with 8-bit weights run slower than int8 and this tiny model's arena hardly
    shrinks: without a limit every schedule is measured and the int8 model itself is deployed. (The
    BitOPs cost model asks for them: with the measured one the search would not lower anything.)"""
    from model_builder import two_input_graph
    from tvm_mixq.tflm.writer import write_tflite

    model = tmp_path / "two.tflite"
    model.write_bytes(write_tflite(two_input_graph()))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", **{f"input_{i}": rng.integers(-128, 128, (16, 8, 8, 8)).astype(np.int8)
                                        for i in range(2)})
    code, data = _deploy_json(capsys, str(model), "--calib", str(tmp_path / "calib.npz"), "--pass-config",
                              "mixq.cost_budget=0.6", "--pass-config", "mixq.cost_model=bitops", "--run", "-o",
                              str(tmp_path / "dep"), "--no-report")
    assert code == 0 and data["bit_exact"] is True
    kinds = [s["kind"] for s in data["schedules"]]
    assert kinds[-1] == "int8 baseline" == data["schedule"] and all(s["instructions"] for s in data["schedules"])
    assert data["instructions"] == data["baselines"]["int8_instructions"]
    assert all(layer["out_bits"] in (8, None) for layer in data["layers"])
