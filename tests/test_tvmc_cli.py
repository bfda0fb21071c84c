"""tvmc command line: every bad input is one line on stderr and exit code 2, never a traceback,
and no user file is overwritten."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paths import OPS_FIXTURES, ROOT
from tvm_mixq.cli.tvmc import main
from tvm_mixq.tvmc.compiler import compile_model
from tvm_mixq.tvmc.project import create_project
from tvm_mixq.tvmc.target import parse_target

SMALL = OPS_FIXTURES / "conv_flatten_fc_softmax.tflite"


@pytest.fixture(scope="module")
def mlf(tmp_path_factory) -> Path:
    """A compiled archive of a small model (host target, plain int8)."""
    out = tmp_path_factory.mktemp("mlf") / "small.tar"
    compile_model(SMALL, parse_target("c"), out, ["mixq.enable=0"])
    return out


@pytest.fixture(scope="module")
def mlf_m4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlf") / "small_m4.tar"
    compile_model(SMALL, parse_target("c -mcpu=cortex-m4"), out, ["mixq.enable=0"])
    return out


def refused(capsys, argv: list[str], needle: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]
    return lines[0]


# -- commands and flags tvmc had that the driver does not offer ------------------------------------


@pytest.mark.parametrize("argv, needle", [
    (["tune", "m.tflite"], "tune: tuning"),
    (["bogus"], "invalid choice"),
    ([], "a command is required"),
    (["compile", str(SMALL), "--target", "c", "--output-format", "so"], "--output-format so: not offered"),
    (["compile", str(SMALL), "--target", "c", "--executor", "graph"], "--executor graph: not offered"),
    (["compile", str(SMALL), "--target", "c", "--runtime", "cpp"], "--runtime cpp"),
    (["compile", str(SMALL), "--target", "c", "--model-format", "onnx"], "--model-format onnx"),
    (["compile", str(SMALL), "--target", "c", "--desired-layout", "NCHW"], "unrecognized arguments"),
    (["compile", str(SMALL)], "--target is required"),
    (["compile", str(SMALL), "--target", "cuda"], "unsupported target kind 'cuda'"),
    (["compile", str(SMALL), "--target", "c -mcpu=cortex-m55"], "unsupported -mcpu=cortex-m55"),
    (["compile", str(SMALL), "--target", "c", "--target-c-mcpu", "cortex-a53"], "unsupported -mcpu=cortex-a53"),
    (["compile", str(SMALL), "--target", "c", "--target-c-bogus", "1"], "unrecognized arguments"),
    (["compile", str(SMALL), "--target", "c", "--opt-level", "7"], "--opt-level"),
    (["run", "somewhere"], "only --device micro"),
    (["run", "--device", "cpu", "somewhere"], "--device cpu: not offered"),
    (["micro", "create-project", "d", "m.tar"], "required"),
    (["micro", "deploy", "d"], "invalid choice"),
])
def test_unoffered_and_malformed(capsys, argv, needle):
    refused(capsys, argv, needle)


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "compile" in capsys.readouterr().out
    assert main(["micro", "create-project", "--help"]) == 0
    assert "qemu_cortex_m7" in capsys.readouterr().out


# -- compile ---------------------------------------------------------------------------------------


def test_unknown_mixq_key_lists_the_valid_keys(capsys, tmp_path):
    line = refused(capsys, ["compile", str(SMALL), "--target", "c", "--pass-config", "mixq.bogus=1",
                            "-o", str(tmp_path / "o.tar")], "unknown option mixq.bogus")
    for key in ("mixq.enable", "mixq.bits", "mixq.sram_limit_kb", "mixq.lambda", "mixq.channel_split"):
        assert key in line
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.parametrize("item, needle", [
    ("mixq.sram_limit_kb=lots", "expected an int"),
    ("mixq.bits=8,3", "bitwidths must be drawn from"),
    ("mixq.enable", "not of the form KEY=VALUE"),
    ("tir.bogus_key=1", "unknown pass config tir.bogus_key"),
    ("mixq.target=cortex-m4", "contradicts --target"),
])
def test_bad_pass_config(capsys, tmp_path, item, needle):
    refused(capsys, ["compile", str(SMALL), "--target", "c -mcpu=cortex-m7", "--pass-config", item,
                     "-o", str(tmp_path / "o.tar")], needle)
    assert not (tmp_path / "o.tar").exists()


def test_tvm_pass_config_accepted(tmp_path):
    out = tmp_path / "o.tar"
    res = compile_model(SMALL, parse_target("c"), out, ["mixq.enable=0", "relax.backend.use_cuda_graph=0"])
    assert res.metadata["pass_config"]["relax.backend.use_cuda_graph"] is False
    assert res.metadata["pass_config"]["mixq.enable"] is False


def test_compile_bad_files(capsys, tmp_path, mlf):
    refused(capsys, ["compile", str(tmp_path / "none.tflite"), "--target", "c", "-o", str(tmp_path / "o.tar")],
            "no such model file")
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    refused(capsys, ["compile", str(other), "--target", "c", "-o", str(tmp_path / "o.tar")], "only TFLite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"definitely not a flatbuffer")
    refused(capsys, ["compile", str(junk), "--target", "c", "-o", str(tmp_path / "o.tar")], "junk.tflite")
    refused(capsys, ["compile", str(SMALL), "--target", "c", "-o", str(tmp_path / "o.zip")], "must end in .tar")
    # an existing file that is not one of our archives is never overwritten
    mine = tmp_path / "precious.tar"
    mine.write_bytes(b"user data")
    refused(capsys, ["compile", str(SMALL), "--target", "c", "-o", str(mine)], "refusing to overwrite")
    assert mine.read_bytes() == b"user data"


def test_compile_replaces_its_own_archive(capsys, tmp_path, mlf):
    out = tmp_path / "again.tar"
    out.write_bytes(mlf.read_bytes())
    assert main(["compile", str(SMALL), "--target", "c", "--target-c-mcpu", "cortex-m7", "--pass-config",
                 "mixq.enable=0", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    from tvm_mixq.tvmc.mlf import read_mlf

    assert read_mlf(out).core == "cortex-m7"


# -- micro create-project / build / flash ---------------------------------------------------------------


def test_create_project_refusals(capsys, tmp_path, mlf, mlf_m4):
    d = tmp_path / "proj"
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "zephyr"], "unknown template 'zephyr'")
    refused(capsys, ["micro", "create-project", str(d), str(tmp_path / "none.tar"), "host"], "no such file")
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "host", "--project-option", "speed=11"],
            "has no option 'speed'")
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "host", "--project-option", "cc"],
            "not of the form key=value")
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "host", "--project-option", "timeout=-1"],
            "expected seconds > 0")
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "qemu_cortex_m7"], "compiled for host")
    refused(capsys, ["micro", "create-project", str(d), str(mlf_m4), "qemu_cortex_m7"], "compiled for cortex-m4")
    assert not d.exists()
    # a non-empty directory of the user's: refused, with or without --force, and left alone
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    refused(capsys, ["micro", "create-project", str(d), str(mlf), "host"], "use --force")
    refused(capsys, ["micro", "create-project", "--force", str(d), str(mlf), "host"], "not a tvmc project")
    assert (d / "notes.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    refused(capsys, ["micro", "create-project", str(f), str(mlf), "host"], "not a directory")


def test_create_project_force_replaces_a_project(capsys, tmp_path, mlf, mlf_m4):
    d = tmp_path / "proj"
    assert main(["micro", "create-project", str(d), str(mlf), "host"]) == 0
    refused(capsys, ["micro", "create-project", str(d), str(mlf_m4), "host"], "use --force")
    assert main(["micro", "create-project", "-f", str(d), str(mlf_m4), "qemu_cortex_m4"]) == 0
    info = json.loads((d / "mixq_project.json").read_text())
    assert info["template"] == "qemu_cortex_m4" and info["core"] == "cortex-m4"
    assert (d / "harness" / "mps2-an386.ld").is_file()
    assert (d / "model" / "metadata.json").is_file()


def test_build_flash_run_refusals(capsys, tmp_path, mlf):
    refused(capsys, ["micro", "build", str(tmp_path)], "not a project directory")
    refused(capsys, ["micro", "flash", str(tmp_path / "none")], "not a project directory")
    d = tmp_path / "host"
    create_project(d, mlf, "host")
    refused(capsys, ["micro", "build", str(d), "qemu_cortex_m7"], "is a host project, not qemu_cortex_m7")
    refused(capsys, ["micro", "build", str(d), "--project-option", "cc=clang"], "read at create-project")
    refused(capsys, ["micro", "flash", str(d)], "is not built")
    refused(capsys, ["run", "--device", "micro", str(d)], "is not built")
    e = tmp_path / "export"
    create_project(e, mlf, "export")
    refused(capsys, ["micro", "flash", str(e)], "no device to flash")
    refused(capsys, ["run", "--device", "micro", str(e)], "no device to run on")
    (d / "mixq_project.json").write_text("{not json")
    refused(capsys, ["micro", "build", str(d)], "unreadable")


def test_export_project_layout(tmp_path, mlf):
    """The export layout of tvm_mixq.codegen.export with its Make and CMake fragments."""
    e = create_project(tmp_path / "export", mlf, "export")
    prefix = e.info["model"]["prefix"]
    for rel in (f"model/{prefix}.c", f"model/{prefix}.h", "runtime/mixq_rt.c", "kernels/include/mixq_kernels.h",
                "mixq_model.mk", "mixq_model.cmake", "metadata.json"):
        assert (e.path / rel).is_file(), rel
    assert not (e.path / "model.mlf").exists()
    assert all((e.path / s).is_file() for s in e.info["sources"])
    assert e.info["artefact"] == "build/libmixq_model.a"


def test_python_m_entry_point(tmp_path):
    """``python -m tvm_mixq`` is the same driver, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "tvm_mixq", "compile", str(SMALL), "--target", "rocm"],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "python -m tvm_mixq: error: unsupported target kind 'rocm': this driver generates C for Cortex-M or the "
        "host; use \"c -mcpu=cortex-m7\", \"c -mcpu=cortex-m4\" or \"c\""]


def test_qemu_project_checked_against_the_board_memory(capsys, tmp_path):
    """mixq.sram_limit_kb replaces the board's SRAM in the fit check made before any build."""
    from paths import MLPERF_INT8

    tar = tmp_path / "ad.tar"
    compile_model(MLPERF_INT8["ad"], parse_target("c -mcpu=cortex-m4"), tar, ["mixq.enable=0", "mixq.sram_limit_kb=8"])
    refused(capsys, ["micro", "create-project", str(tmp_path / "p"), str(tar), "qemu_cortex_m4"],
            "does not fit cortex-m4")
    assert not (tmp_path / "p").exists()
    assert main(["micro", "create-project", str(tmp_path / "h"), str(tar), "host"]) == 0  # no board, no limit
