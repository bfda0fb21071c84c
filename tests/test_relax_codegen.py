"""relax.ext.mixq: composites -> C calls into the kernel library, built for the host and run.

Each single-layer fixture is partitioned for the external codegen, ``RunCodegen`` calls
``relax.ext.mixq``, and the C it returns is compiled (``-Wall -Wextra -Werror``) against the host
build of ``kernels/`` and called through ctypes; the output must equal the reference interpreter
bit for bit.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402

from paths import OPS_FIXTURES  # noqa: E402
from tvm_mixq.errors import MixqError  # noqa: E402
from tvm_mixq.reader.tflite_reader import read_tflite  # noqa: E402
from tvm_mixq.reference.interpreter import Interpreter  # noqa: E402
from tvm_mixq.relax.codegen import c_source, run_codegen, specs_of  # noqa: E402
from tvm_mixq.relax.importer import from_tflite  # noqa: E402
from tvm_mixq.relax.passes import Partition  # noqa: E402
from tvm_mixq.relax.planner import layers  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc for the host build")

SINGLE_LAYER = ("conv2d_3x3_same_s1_relu", "conv2d_3x3_same_s2", "conv2d_1x1_relu6", "conv2d_1x1_s2_valid",
                "conv2d_5x5_valid_s2", "conv2d_3x3_dilation2_same", "dwconv_3x3_same_s1_relu6", "dwconv_3x3_dm2",
                "dwconv_5x5_same_s2_relu6", "dwconv_3x3_dilation2", "fc_relu", "fc_noact", "fc_per_tensor_nobias",
                "add_two_inputs", "avgpool_3x3_s2_same_relu6", "avgpool_2x2_s2_valid")


@pytest.fixture(scope="module")
def kernel_library() -> Path:
    from tvm_mixq.kernellib import build_host_library

    return build_host_library("release")


def _build(source: str, kernel_lib: Path, work: Path) -> ctypes.CDLL:
    from tvm_mixq.kernellib.build import include_dirs

    c_file = work / "layers.c"
    c_file.write_text(source)
    out = work / "layers.so"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC",
           *[f"-I{d}" for d in include_dirs()], str(c_file), str(kernel_lib), f"-Wl,-rpath,{kernel_lib.parent}",
           "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(out))


def _call(lib: ctypes.CDLL, symbol: str, inputs: list[np.ndarray], out_shape: tuple[int, ...]) -> np.ndarray:
    size_fn = getattr(lib, f"{symbol}_buffer_size")
    size_fn.restype = ctypes.c_int32
    scratch_bytes = max(int(size_fn()), 4)
    scratch = np.zeros(scratch_bytes, np.uint8)

    class Context(ctypes.Structure):
        _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]

    ctx = Context(scratch.ctypes.data, scratch_bytes)
    out = np.zeros(out_shape, np.int8)
    args = [ctypes.byref(ctx)] + [np.ascontiguousarray(x).ctypes.data_as(ctypes.c_void_p) for x in inputs]
    fn = getattr(lib, symbol)
    fn.restype = ctypes.c_int32
    status = fn(*args, out.ctypes.data_as(ctypes.c_void_p))
    assert status == 0, f"{symbol} returned {status}"
    return out


@pytest.mark.parametrize("stem", SINGLE_LAYER)
def test_single_layer_bit_exact_on_host(stem: str, kernel_library: Path, tmp_path: Path) -> None:
    graph = read_tflite(OPS_FIXTURES / f"{stem}.tflite")
    mod = run_codegen(from_tflite(graph))
    source = c_source(mod)
    (layer,) = layers(Partition(annotate_codegen=True)(from_tflite(graph)))
    assert f"mixq_status {layer.name}(" in source
    lib = _build(source, kernel_library, tmp_path)
    rng = np.random.default_rng(7)
    inputs = [rng.integers(-128, 128, graph.tensors[t].shape).astype(np.int8) for t in graph.inputs]
    expected = Interpreter(graph).run(inputs)[0]
    got = _call(lib, layer.name, inputs, expected.shape)
    np.testing.assert_array_equal(got, expected)


def test_whole_model_source_names_every_layer() -> None:
    mod = run_codegen(from_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite"))
    source = c_source(mod)
    names = [layer.name for layer in layers(Partition(annotate_codegen=True)(
        from_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite")))]
    assert len(names) == 6
    for name in names:
        assert f"int32_t {name}_buffer_size(void)" in source
    assert "mixq_pointwise(" in source and "mixq_depthwise(" in source and "mixq_add(" in source
    # main now calls the external functions; the C module is attached to the IRModule
    calls = [b.value for b in mod["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call)]
    assert any(str(c.op.name) == "relax.call_dps_packed" for c in calls if isinstance(c.op, tvm.ir.Op))


def test_codegen_wrapper_keeps_links_and_attributes() -> None:
    mod = Partition(annotate_codegen=True)(from_tflite(OPS_FIXTURES / "conv2d_3x3_same_s2.tflite"))
    (layer,) = layers(mod)
    func = mod[layer.name]
    assert str(func.attrs["Codegen"]) == "mixq" and str(func.attrs["global_symbol"]) == layer.name
    assert layer.op == "conv2d" and layer.op_index == 0 and layer.attr("output_zero_point") is not None


def test_sub_byte_layers_are_left_to_the_model_emitter() -> None:
    mod = Partition(annotate_codegen=True)(from_tflite(OPS_FIXTURES / "conv2d_3x3_same_s2.tflite"))
    (layer,) = layers(mod)
    gv = mod.get_global_var(layer.name)
    func = mod[gv].with_attr("mixq.w_bits", 4)
    with pytest.raises(MixqError, match="8-bit layers only"):
        specs_of([func])


def test_add_with_constant_operand_is_refused() -> None:
    mod = Partition(annotate_codegen=True)(from_tflite(OPS_FIXTURES / "add_const_broadcast.tflite"))
    (layer,) = layers(mod)
    with pytest.raises(MixqError, match="two runtime inputs"):
        specs_of([mod[layer.name]])


def test_pipeline_then_run_codegen() -> None:
    import tvm_mixq

    mod = from_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite")
    with tvm_mixq.pass_context({"mixq.bits": "8"}):
        planned = tvm_mixq.pipeline(annotate_codegen=True)(mod)
    assert all(layer.attr("out_bits") == 8 for layer in layers(planned))
    source = c_source(relax.transform.RunCodegen()(planned))
    assert source.count("mixq_status mixq_") == 6


@pytest.mark.parametrize("name", ["vww", "kws", "resnet", "ad"])
def test_mlperf_models_generate_c_that_compiles_for_cortex_m7(name: str, tmp_path: Path) -> None:
    from paths import MLPERF_INT8
    from tvm_mixq.kernellib.build import include_dirs

    graph = read_tflite(MLPERF_INT8[name])
    source = c_source(run_codegen(from_tflite(graph)))
    kinds = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D"}
    assert source.count("mixq_status mixq_") == sum(1 for op in graph.ops if op.kind in kinds)
    c_file = tmp_path / f"{name}_layers.c"
    c_file.write_text(source)
    compilers = [("gcc", ["-fPIC"])]
    if shutil.which("arm-none-eabi-gcc"):
        compilers.append(("arm-none-eabi-gcc", ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                                "-mfpu=fpv5-d16"]))
    for cc, flags in compilers:
        proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Os", *flags,
                               *[f"-I{d}" for d in include_dirs()], "-c", str(c_file), "-o", str(tmp_path / "l.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{cc}: {proc.stderr[-2000:]}"


@pytest.mark.parametrize("stem", ["conv2d_3x3_same_s2", "dwconv_3x3_dm2", "fc_per_tensor_nobias", "add_two_inputs",
                                  "avgpool_3x3_s2_same_relu6"])
def test_composite_spec_is_the_whole_model_layer(stem: str) -> None:
    """relax.ext.mixq and the whole-model emitter derive a layer's numbers in one place."""
    from tvm_mixq.codegen.layers import make_layer

    graph = read_tflite(OPS_FIXTURES / f"{stem}.tflite")
    (spec,) = specs_of([f for f in Partition(annotate_codegen=True)(from_tflite(graph)).functions.values()
                        if f.attrs is not None and "Codegen" in f.attrs])
    (op,) = [op for op in graph.ops if op.kind not in ("QUANTIZE", "DEQUANTIZE", "RESHAPE")]
    layer = make_layer(graph, op)
    consts = {c.name: c.values for c in layer.consts}
    p = layer.p["q"] if layer.template == "add" else layer.p
    assert (spec.params["act_min"], spec.params["act_max"]) == (p["act_min"], p["act_max"])
    if spec.multiplier is not None:
        np.testing.assert_array_equal(spec.multiplier, consts[layer.p["mult"]])
        np.testing.assert_array_equal(spec.shift, consts[layer.p["shift"]])
        np.testing.assert_array_equal(spec.weights, consts[layer.p["weights"]])
        assert spec.op == (layer.p["kernel"] if layer.template == "conv" else "fully_connected")
    elif spec.op == "add":
        assert spec.params == layer.p["q"]
    else:
        assert (spec.params["multiplier"], spec.params["shift"]) == (layer.p["mult"], layer.p["shift"])
        assert (spec.params["pad_h"], spec.params["pad_w"]) == layer.p["padding"]


def test_padding_other_than_same_or_valid_is_refused() -> None:
    from tvm_mixq.relax.codegen import _tflite_padding

    assert _tflite_padding("l", (1, 1, 1, 1), (8, 8), (3, 3), (1, 1), (1, 1)) == "SAME"
    assert _tflite_padding("l", (0, 0, 0, 0), (8, 8), (3, 3), (1, 1), (1, 1)) == "VALID"
    with pytest.raises(MixqError, match="neither TFLite's SAME nor VALID"):
        _tflite_padding("l", (2, 0, 2, 0), (8, 8), (3, 3), (1, 1), (1, 1))
