"""The export for an existing firmware tree: its Make fragment builds a program that runs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from paths import OPS_FIXTURES
from tvm_mixq.codegen import generate_c
from tvm_mixq.codegen.export import export_model
from tvm_mixq.reader import read_tflite


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="make/gcc missing")
def test_make_fragment_builds_a_firmware_tree(tmp_path: Path) -> None:
    model = generate_c(read_tflite(OPS_FIXTURES / "conv_flatten_fc_softmax.tflite"), tmp_path / "gen", name="demo")
    export_model(model, tmp_path / "app" / "third_party" / "demo")
    app = tmp_path / "app"
    (app / "main.c").write_text(
        '#include "mixq_demo.h"\n#include <stdio.h>\n'
        "static int8_t in[MIXQ_DEMO_INPUT_0_BYTES];\nstatic int8_t out[MIXQ_DEMO_OUTPUT_0_BYTES];\n"
        "int main(void) {\n  const void *const ins[1] = {in};\n  void *const outs[1] = {out};\n"
        "  if (mixq_demo_init() != 0) return 3;\n  int sum = 0;\n  if (mixq_demo_invoke(ins, outs) != 0) return 4;\n"
        "  for (int i = 0; i < MIXQ_DEMO_OUTPUT_0_BYTES; i++) sum += out[i] + 128;\n"
        '  printf("%d %d\\n", sum, MIXQ_DEMO_ARENA_SIZE);\n  return 0;\n}\n')
    (app / "Makefile").write_text(
        "MIXQ_DIR := third_party/demo\ninclude $(MIXQ_DIR)/mixq_model.mk\n"
        "app: main.c $(MIXQ_SRCS)\n\t$(CC) -Wall -Wextra -Werror -O2 $(MIXQ_CFLAGS) main.c $(MIXQ_SRCS) -o app\n")
    proc = subprocess.run(["make", "-s", "-C", str(app)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(app / "app")], capture_output=True, text=True)
    assert run.returncode == 0
    total, arena = (int(v) for v in run.stdout.split())
    assert arena == model.arena_size
    assert 250 <= total <= 260  # softmax outputs (q + 128) sum to ~256


def test_cmake_fragment_names_the_library(tmp_path: Path) -> None:
    model = generate_c(read_tflite(OPS_FIXTURES / "relu.tflite"), tmp_path / "gen", name="r")
    out = export_model(model, tmp_path / "exp")
    text = (out / "mixq_model.cmake").read_text()
    assert "add_library(mixq_model STATIC" in text
    assert (out / "model" / "mixq_r.h").is_file() and (out / "kernels" / "include" / "mixq_kernels.h").is_file()
    assert (out / "runtime" / "mixq_rt.c").is_file()
