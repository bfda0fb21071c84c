"""tvmc end to end: compile -> create-project -> build -> flash -> run, outputs bit for bit equal to
the Python reference (fixed-point FULLY_CONNECTED, as the kernels and TFLM compute it)."""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import numpy as np
import pytest

from paths import MLPERF_INT8, MODELS, OPS_FIXTURES
from tvm_mixq.cli.tvmc import main
from tvm_mixq.emu import tools_available
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions
from tvm_mixq.tvmc import build_project, create_project, flash_project, run_project
from tvm_mixq.tvmc.compiler import compile_model, plan_model
from tvm_mixq.tvmc.target import parse_target

REF = ReferenceOptions(tflite_float_fc=False)
NO_QEMU = tools_available()


def _random_inputs(graph, samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, t_index in enumerate(graph.inputs):
        t = graph.tensors[t_index]
        shape = (samples,) + tuple(t.shape[1:])
        if t.dtype == "float32":
            out[f"input_{i}"] = rng.normal(0.0, 2.0, size=shape).astype(np.float32)
        else:
            x = rng.integers(-128, 128, size=shape).astype(t.dtype)
            x[0] = 127  # a saturated sample
            out[f"input_{i}"] = x
    return out


def _expected(graph, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return Interpreter(graph, REF).run([inputs[f"input_{i}"] for i in range(len(graph.inputs))])


def _assert_same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert a.dtype == b.dtype, f"output {i}"
        assert a.shape == b.shape, f"output {i}"
        np.testing.assert_array_equal(a, b, err_msg=f"output {i}")


def test_host_project_end_to_end(tmp_path, capsys):
    """The command line on an MLPerf Tiny model (AD, int8): host template, three samples."""
    model = MLPERF_INT8["ad"]
    tar = tmp_path / "ad.tar"
    proj = tmp_path / "proj"
    assert main(["compile", str(model), "--target", "c -mcpu=cortex-m7", "--pass-config", "mixq.enable=0",
                 "--output-format", "mlf", "--output", str(tar)]) == 0
    with tarfile.open(tar) as t:
        names = set(t.getnames())
        meta = json.loads(t.extractfile("metadata.json").read())
    prefix = meta["prefix"]
    assert {f"codegen/host/src/{prefix}.c", f"codegen/host/include/{prefix}.h", "src/plan.json",
            "runtime/mixq_rt/mixq_rt.c", "runtime/kernels/include/mixq_kernels.h", "report/index.html",
            "report/memory.png"} <= names
    assert set(meta["build"]["sources"]) <= names
    assert meta["target"]["core"] == "cortex-m7" and meta["pass_config"]["mixq.enable"] is False
    assert meta["memory"]["arena_size_bytes"] > 0
    assert all(0 <= b["offset"] and b["offset"] + b["size"] <= meta["memory"]["arena_size_bytes"]
               for b in meta["memory"]["buffers"])
    graph = read_tflite(model)
    assert [row["op"] for row in meta["layers"]] == [op.kind for op in graph.ops]
    assert all(row["in_bits"] == 8 and row["out_bits"] == 8 and row["patch_grid"] is None for row in meta["layers"])
    assert meta["plan"]["patch_stage"] is None and meta["plan"]["channel_splits"] == []
    assert meta["flash"]["constant_bytes"] > 0

    assert main(["micro", "create-project", str(proj), str(tar), "host"]) == 0
    assert main(["micro", "build", str(proj)]) == 0
    assert main(["micro", "flash", str(proj)]) == 0
    assert "nothing to flash" in capsys.readouterr().out

    inputs = _random_inputs(graph, 3)
    np.savez(tmp_path / "x.npz", **inputs)
    out = tmp_path / "out.npz"
    assert main(["run", "--device", "micro", str(proj), "--inputs", str(tmp_path / "x.npz"), "--outputs", str(out),
                 "--print-top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "top 3" in printed and "sample 2" in printed
    with np.load(out) as npz:
        got = [npz[f"output_{i}"] for i in range(len(npz.files))]
    _assert_same(got, _expected(graph, inputs))
    # the same outputs file may be written again; a foreign file may not
    assert main(["run", "--device", "micro", str(proj), "--inputs", str(tmp_path / "x.npz"),
                 "--outputs", str(out)]) == 0
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    assert main(["run", "--device", "micro", str(proj), "--outputs", str(foreign)]) == 2
    with np.load(foreign) as npz:
        assert npz.files == ["weights"]


@pytest.mark.parametrize("name", ["add_two_inputs", "conv2d_3x3_float_io", "conv_flatten_fc_softmax"])
def test_host_project_fixtures(tmp_path, name):
    """Two inputs, float input and output, and a classifier head, through the Python API."""
    model = OPS_FIXTURES / f"{name}.tflite"
    tar = compile_model(model, parse_target("c"), tmp_path / "m.tar", ["mixq.enable=0"]).output
    create_project(tmp_path / "p", tar, "host")
    build_project(tmp_path / "p")
    graph = read_tflite(model)
    inputs = _random_inputs(graph, 2, seed=3)
    outcome = run_project(tmp_path / "p", [inputs[f"input_{i}"] for i in range(len(graph.inputs))])
    assert outcome.samples == 2
    _assert_same(outcome.outputs, _expected(graph, inputs))


def test_run_input_errors(tmp_path, capsys):
    model = OPS_FIXTURES / "conv_flatten_fc_softmax.tflite"
    tar = compile_model(model, parse_target("c"), tmp_path / "m.tar", ["mixq.enable=0"]).output
    proj = create_project(tmp_path / "p", tar, "host")
    build_project(proj.path)
    t = proj.info["io"]["inputs"][0]
    shape = tuple(t["shape"])
    cases = {
        "garbage.npz": (None, "not a readable .npz"),
        "wrong_name.npz": ({"image": np.zeros(shape, np.int8), "other": np.zeros(shape, np.int8)}, "no array for input 0"),
        "extra.npz": ({"input_0": np.zeros(shape, np.int8), "input_9": np.zeros(3)}, "unexpected arrays input_9"),
        "shape.npz": ({"input_0": np.zeros((1, 3, 3), np.int8)}, "needs shape"),
        "dtype.npz": ({"input_0": np.zeros(shape, np.float32)}, "must be int8, got float32"),
        "range.npz": ({"input_0": np.full(shape, 300, np.int32)}, "outside int8 range"),
        "empty.npz": ({"input_0": np.zeros((0,) + shape[1:], np.int8)}, "holds no sample"),
    }
    for fname, (arrays, needle) in cases.items():
        path = tmp_path / fname
        if arrays is None:
            path.write_bytes(b"not a zip")
        else:
            np.savez(path, **arrays)
        assert main(["run", "--device", "micro", str(proj.path), "--inputs", str(path)]) == 2, fname
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (fname, err)
    for argv, needle in (
        (["--inputs", str(tmp_path / "none.npz")], "no such file"),
        (["--fill-mode", "normal"], "--fill-mode 'normal'"),
        (["--print-top", "0"], "--print-top must be >= 1"),
        (["--outputs", str(tmp_path / "o.txt")], "must end in .npz"),
        (["--project-option", "speed=2"], "only timeout=SECONDS"),
    ):
        assert main(["run", "--device", "micro", str(proj.path), *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (argv, err)
    # an int32 array in range is accepted (cast), and fill modes run
    np.savez(tmp_path / "ok.npz", input_0=np.ones(shape, np.int32))
    assert main(["run", "--device", "micro", str(proj.path), "--inputs", str(tmp_path / "ok.npz")]) == 0
    for mode in ("zeros", "ones", "random"):
        assert main(["run", "--device", "micro", str(proj.path), "--fill-mode", mode]) == 0


@pytest.mark.slow
@pytest.mark.skipif(NO_QEMU is not None, reason=str(NO_QEMU))
def test_vww_int8_cortex_m7_qemu_bit_exact(tmp_path, capsys):
    """The issue's acceptance path: VWW int8, mixq.enable=0, built for the host and Cortex-M7,
    emulated M7 output equal to the reference."""
    model = MLPERF_INT8["vww"]
    tar = tmp_path / "vww.tar"
    assert main(["compile", str(model), "--target", "c -mcpu=cortex-m7", "--pass-config", "mixq.enable=0",
                 "--output-format", "mlf", "--output", str(tar)]) == 0
    graph = read_tflite(model)
    inputs = _random_inputs(graph, 2, seed=7)
    np.savez(tmp_path / "x.npz", **inputs)
    expected = _expected(graph, inputs)
    for template in ("qemu_cortex_m7", "host"):
        proj = tmp_path / template
        assert main(["micro", "create-project", str(proj), str(tar), template]) == 0
        assert main(["micro", "build", str(proj)]) == 0
        assert main(["micro", "flash", str(proj)]) == 0
        capsys.readouterr()
        out = tmp_path / f"out_{template}.npz"
        assert main(["run", "--device", "micro", str(proj), "--inputs", str(tmp_path / "x.npz"), "--outputs", str(out),
                     "--print-top", "2"]) == 0
        printed = capsys.readouterr().out
        with np.load(out) as npz:
            _assert_same([npz["output_0"]], expected)
        if template.startswith("qemu"):
            assert "instructions per inference (mps2-an500" in printed
            info = json.loads((proj / "mixq_project.json").read_text())
            assert info["built"]["flash_bytes"] > 200_000  # VWW's weights are in flash


@pytest.mark.slow
@pytest.mark.skipif(NO_QEMU is not None, reason=str(NO_QEMU))
def test_cortex_m4_qemu_layers_counted(tmp_path):
    model = MLPERF_INT8["kws"]
    tar = compile_model(model, parse_target("c -mcpu=cortex-m4"), tmp_path / "kws.tar", ["mixq.enable=0"]).output
    proj = create_project(tmp_path / "p", tar, "qemu_cortex_m4")
    build_project(proj.path)
    flash_project(proj.path)
    graph = read_tflite(model)
    inputs = _random_inputs(graph, 2, seed=1)
    outcome = run_project(proj.path, [inputs["input_0"]])
    _assert_same(outcome.outputs, _expected(graph, inputs))
    # per-sample counts: data-dependent branches (saturation) differ by a few ticks at most
    assert len(outcome.instructions) == 2 and min(outcome.instructions) > 0
    assert abs(outcome.instructions[0] - outcome.instructions[1]) <= 0.001 * outcome.instructions[0]
    assert len(outcome.layer_instructions) == len(graph.ops)
    # the layers account for the inference, up to the counter's resolution and call overhead
    assert abs(sum(outcome.layer_instructions) - sum(outcome.instructions)) < 0.02 * sum(outcome.instructions)


def _plan_reference(plan, x: np.ndarray) -> list[np.ndarray]:
    """The plan's own executor (patch by patch), sample by sample."""
    from tvm_mixq.schedule.execute import PlanExecutor

    ex = PlanExecutor(plan, REF)
    outs = [ex.run([x[s:s + 1]]) for s in range(x.shape[0])]
    return [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]


@pytest.mark.slow
def test_mixed_precision_host_bit_exact(tmp_path):
    """With the mixq passes on, the C runs the planned bitwidths and the patch stage of the emitted
    graph's plan, and matches that plan's executor."""
    model = MLPERF_INT8["vww"]
    target = parse_target("c -mcpu=cortex-m7")
    configs = ["mixq.bits=8,4"]
    res = compile_model(model, target, tmp_path / "q.tar", configs)
    meta = res.metadata
    assert any(row["out_bits"] == 4 for row in meta["layers"])
    assert meta["plan"]["patch_stage"] is not None
    planned = plan_model(model, target, configs)
    generated = meta["generated"]["patch_stage"]
    assert (generated is not None) == (planned.code_plan is not None)
    if generated is not None:
        assert meta["execution"].startswith("patch stage")
        assert [row["index"] for row in meta["layers"] if row["patch_grid"]]
    create_project(tmp_path / "p", res.output, "host")
    build_project(tmp_path / "p")
    inputs = _random_inputs(planned.graph, 2, seed=5)
    outcome = run_project(tmp_path / "p", [inputs["input_0"]])
    if planned.code_plan is not None:
        expected = _plan_reference(planned.code_plan, inputs["input_0"])
    else:
        expected = Interpreter(planned.emit_graph, REF).run([inputs["input_0"]])
    _assert_same(outcome.outputs, expected)


@pytest.mark.slow
def test_patch_stage_and_channel_split_host_bit_exact(tmp_path):
    """An MCUNet-like model: the generated C runs a patch stage and a channel split."""
    model = MODELS / "large" / "mcunet_like_int8.tflite"
    target = parse_target("c -mcpu=cortex-m7")
    configs = ["mixq.bits=8"]
    res = compile_model(model, target, tmp_path / "m.tar", configs)
    planned = plan_model(model, target, configs)
    assert planned.code_plan is not None
    gen = res.metadata["generated"]
    assert (gen["patch_stage"] is not None) == (planned.code_plan.patch_stage is not None)
    assert len(gen["channel_splits"]) == len(planned.code_plan.channel_splits)
    assert any(row["channel_split"] > 1 for row in res.metadata["layers"]) == bool(gen["channel_splits"])
    create_project(tmp_path / "p", res.output, "host")
    build_project(tmp_path / "p")
    x = _random_inputs(planned.graph, 2, seed=2)["input_0"]
    _assert_same(run_project(tmp_path / "p", [x]).outputs, _plan_reference(planned.code_plan, x))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_project_makefiles_build_standalone(tmp_path):
    """`make` in a host, a QEMU (with the arm toolchain) and an export project builds what tvmc
    micro build builds."""
    model = OPS_FIXTURES / "conv_flatten_fc_softmax.tflite"
    tar = compile_model(model, parse_target("c"), tmp_path / "m.tar", ["mixq.enable=0"]).output
    if NO_QEMU is None:
        tar_m7 = compile_model(model, parse_target("c -mcpu=cortex-m7"), tmp_path / "m7.tar", ["mixq.enable=0"]).output
        qemu = create_project(tmp_path / "qemu", tar_m7, "qemu_cortex_m7")
        proc = subprocess.run(["make", "-C", str(qemu.path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert qemu.artefact.is_file()
    for template in ("host", "export"):
        proj = create_project(tmp_path / template, tar, template)
        proc = subprocess.run(["make", "-C", str(proj.path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proj.artefact.is_file()
    if shutil.which("cmake"):
        app = tmp_path / "app"
        app.mkdir()
        (app / "main.c").write_text(f'#include "{proj.info["model"]["prefix"]}.h"\nint main(void) {{ return '
                                    f'(int){proj.info["model"]["prefix"]}_init(); }}\n')
        (app / "CMakeLists.txt").write_text(
            "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
            f"include({proj.path}/mixq_model.cmake)\nadd_executable(app main.c)\n"
            "target_link_libraries(app PRIVATE mixq_model m)\n")
        build = tmp_path / "cmake-build"
        proc = subprocess.run(["cmake", "-S", str(app), "-B", str(build)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        proc = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert subprocess.run([str(build / "app")]).returncode == 0
