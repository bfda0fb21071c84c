"""Generated C (layer by layer) built for the host and compared bit for bit with the reference."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from paths import MLPERF_INT8, OPS_FIXTURES
from tvm_mixq.codegen import generate_c, run_host
from tvm_mixq.codegen.emitter import include_dirs
from tvm_mixq.errors import MixqError
from tvm_mixq.graph import Graph, Op, Tensor
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions

FIXTURES = sorted(OPS_FIXTURES.glob("*.tflite"))
#: The kernel library requantizes FULLY_CONNECTED with the fixed-point multiplier, as TFLM does.
REF = ReferenceOptions(tflite_float_fc=False)


def _inputs(graph: Graph, samples: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in graph.inputs:
        t = graph.tensors[i]
        shape = (samples,) + tuple(t.shape[1:])
        if t.dtype == "float32":
            out.append(rng.normal(0.0, 2.0, size=shape).astype(np.float32))
        else:
            x = rng.integers(-128, 128, size=shape).astype(np.int8)
            x[0] = 127  # edge samples: saturated inputs
            if samples > 1:
                x[1] = -128
            out.append(x)
    return out


def _check(path: Path, tmp_path: Path, samples: int = 3) -> None:
    graph = read_tflite(path)
    model = generate_c(graph, tmp_path, name=path.stem)
    inputs = _inputs(graph, samples)
    got = run_host(model, inputs)
    expected = Interpreter(graph, REF).run(inputs)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=f"{path.name} output {i}")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_bit_exact_on_host(path: Path, tmp_path: Path) -> None:
    _check(path, tmp_path)


@pytest.mark.parametrize("key", ["kws", "ad"])
def test_mlperf_small_bit_exact_on_host(key: str, tmp_path: Path) -> None:
    _check(MLPERF_INT8[key], tmp_path, samples=2)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["vww", "resnet"])
def test_mlperf_large_bit_exact_on_host(key: str, tmp_path: Path) -> None:
    _check(MLPERF_INT8[key], tmp_path, samples=2)


def test_header_api_and_arena_macro(tmp_path: Path) -> None:
    graph = read_tflite(OPS_FIXTURES / "add_residual_relu.tflite")
    model = generate_c(graph, tmp_path, name="Res Block")
    header = model.header.read_text()
    assert model.prefix == "mixq_res_block"
    assert f"#define MIXQ_RES_BLOCK_ARENA_SIZE {model.arena_size}" in header
    for decl in ("mixq_res_block_init(void)", "mixq_res_block_invoke(const void *const inputs[]",
                 "mixq_res_block_read_fn", "mixq_res_block_invoke_streamed("):
        assert decl in header
    source = model.source.read_text()
    assert re.search(rf"static int8_t arena\[{model.arena_size}\]", source)
    assert "MIXQ_PROFILE_LAYER_BEGIN" in source


def test_arena_buffers_never_overlap_while_live(tmp_path: Path) -> None:
    graph = read_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite")
    model = generate_c(graph, tmp_path)
    bufs = [b for b in model.arena.buffers if b.size > 0]
    for i, a in enumerate(bufs):
        assert a.end <= model.arena_size
        for b in bufs[i + 1:]:
            if a.overlaps_in_time(b):
                assert a.end <= b.offset or b.end <= a.offset, (a, b)
    # the arena is no larger than the sum of the buffers and at least the largest live set
    live = max(lb for lb, _ in model.arena.timeline(len(model.layers)))
    assert live <= model.arena_size <= sum(b.size for b in bufs) + 8 * len(bufs)


def test_unsupported_op_is_refused(tmp_path: Path) -> None:
    t0 = Tensor(0, "x", (1, 4), "int8")
    t1 = Tensor(1, "y", (1, 4), "int8")
    graph = Graph([t0, t1], [Op(0, "TANH", [0], [1])], [0], [1], name="bad")
    with pytest.raises(MixqError, match="TANH"):
        generate_c(graph, tmp_path)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_generated_code_cross_compiles_with_werror(cpu: str, tmp_path: Path) -> None:
    graph = read_tflite(OPS_FIXTURES / "mobilenet_block_float_io.tflite")
    model = generate_c(graph, tmp_path)
    fpu = "fpv4-sp-d16" if cpu == "cortex-m4" else "fpv5-d16"
    cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={fpu}", "-Ofast", "-std=c99",
           "-Wall", "-Wextra", "-Werror", *[f"-I{d}" for d in model.include_dirs], "-c", str(model.source), "-o",
           str(tmp_path / "model.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
