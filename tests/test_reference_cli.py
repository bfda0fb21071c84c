"""``mixq check`` and ``mixq reference``: results, exit codes and input validation."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from paths import MLPERF_INT8, OPS_FIXTURES
from tvm_mixq.cli.main import main
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter
from tvm_mixq.reference.tflite_runner import TFLiteRunner

FLOAT_IO = OPS_FIXTURES / "two_outputs_float_io.tflite"
AD = MLPERF_INT8["ad"]


def test_check_json_bit_exact(capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(AD), "--samples", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bit_exact"] is True and result["max_abs_diff"] == 0
    assert result["unsupported_ops"] == [] and result["samples"] == 2 and result["compared"] == 5


def test_check_float_io_text(capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(FLOAT_IO), "--samples", "1"]) == 0
    assert "bit-exact" in capsys.readouterr().out


def test_check_reports_unsupported_op(tmp_path, capsys: pytest.CaptureFixture) -> None:
    from tvm_mixq.tflm.writer import write_tflite

    graph = read_tflite(OPS_FIXTURES / "conv2d_1x1_relu6.tflite")
    graph.ops[0].attrs.activation = "TANH"
    path = tmp_path / "tanh.tflite"
    path.write_bytes(write_tflite(graph))
    assert main(["check", str(path), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["bit_exact"] is False and result["unsupported_ops"][0].startswith("CONV_2D at index 0")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CONV_2D at index 0" in err


def test_check_bad_file_exit_2(tmp_path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    assert main(["check", str(bad)]) == 2
    assert main(["check", str(tmp_path / "missing.tflite")]) == 2
    assert main(["check", str(AD), "--samples", "-1"]) == 2


def _inputs_for(model, batch=None):
    runner = TFLiteRunner(model)
    rng = np.random.default_rng(0)
    arrays = {}
    for i, d in enumerate(runner.inputs):
        shape = d.shape if batch is None else (batch,) + d.shape[1:]
        if d.dtype == "float32":
            arrays[f"input_{i}"] = rng.uniform(-1, 1, shape).astype(np.float32)
        else:
            arrays[f"input_{i}"] = rng.integers(-128, 128, shape).astype(d.dtype)
    return runner, arrays


@pytest.mark.parametrize("model", [AD, FLOAT_IO])
def test_reference_writes_outputs_like_tflite(tmp_path, model) -> None:
    runner, arrays = _inputs_for(model)
    np.savez(tmp_path / "in.npz", **arrays)
    out = tmp_path / "out.npz"
    assert main(["reference", str(model), "--inputs", str(tmp_path / "in.npz"), "--outputs", str(out)]) == 0
    with np.load(out) as data:
        assert sorted(data.files) == [f"output_{i}" for i in range(len(runner.outputs))]
        expected = runner.run([arrays[f"input_{i}"] for i in range(len(runner.inputs))])
        for i, e in enumerate(expected):
            assert data[f"output_{i}"].dtype == e.dtype
            np.testing.assert_array_equal(data[f"output_{i}"], e)


def test_reference_batch(tmp_path) -> None:
    runner, arrays = _inputs_for(AD, batch=3)
    np.savez(tmp_path / "in.npz", **arrays)
    out = tmp_path / "out.npz"
    assert main(["reference", str(AD), "--inputs", str(tmp_path / "in.npz"), "--outputs", str(out)]) == 0
    with np.load(out) as data:
        assert data["output_0"].shape[0] == 3
        np.testing.assert_array_equal(data["output_0"], runner.run_batch([arrays["input_0"]])[0])


@pytest.mark.parametrize("mutate,message", [
    (lambda a: {"x": a["input_0"]}, "missing input_0"),
    (lambda a: {**a, "input_1": a["input_0"]}, "unexpected input_1"),
    (lambda a: {"input_0": a["input_0"].astype(np.float32)}, "dtype float32"),
    (lambda a: {"input_0": a["input_0"][:, :5]}, "shape"),
])
def test_reference_bad_npz_exit_2(tmp_path, capsys, mutate, message) -> None:
    _, arrays = _inputs_for(AD)
    np.savez(tmp_path / "in.npz", **mutate(arrays))
    rc = main(["reference", str(AD), "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "o.npz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.npz").exists()


def test_reference_not_an_npz(tmp_path, capsys) -> None:
    (tmp_path / "in.npz").write_bytes(b"garbage")
    assert main(["reference", str(AD), "--inputs", str(tmp_path / "in.npz"), "--outputs",
                 str(tmp_path / "o.npz")]) == 2


def test_reference_refuses_to_overwrite_inputs_or_model(tmp_path, capsys) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(AD, model)
    _, arrays = _inputs_for(AD)
    inp = tmp_path / "in.npz"
    np.savez(inp, **arrays)
    before = inp.read_bytes(), model.read_bytes()
    assert main(["reference", str(model), "--inputs", str(inp), "--outputs", str(inp)]) == 2
    assert main(["reference", str(model), "--inputs", str(inp), "--outputs", str(tmp_path / "." / "m.tflite")]) == 2
    link = tmp_path / "link.npz"
    link.symlink_to(inp)
    assert main(["reference", str(model), "--inputs", str(inp), "--outputs", str(link)]) == 2
    assert (inp.read_bytes(), model.read_bytes()) == before
    assert "refusing to overwrite" in capsys.readouterr().err


def test_interpreter_and_cli_agree(tmp_path) -> None:
    graph = read_tflite(AD)
    _, arrays = _inputs_for(AD)
    np.savez(tmp_path / "in.npz", **arrays)
    main(["reference", str(AD), "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "o.npz")])
    with np.load(tmp_path / "o.npz") as data:
        np.testing.assert_array_equal(data["output_0"], Interpreter(graph).run([arrays["input_0"]])[0])
