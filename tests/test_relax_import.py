"""Relax import (tvm_mixq.relax.importer): structure, links to the graph, and numerics on the host.

The numeric checks compile the imported QDQ module with TVM for the host (``llvm``) and compare
it with the project's reference interpreter: float dequantize/quantize arithmetic is not the
integer requantization TFLite does, so outputs may differ by a few units in the last place,
never more.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402

from paths import MLPERF_INT8, OPS_FIXTURES  # noqa: E402
from model_builder import conv_graph, q  # noqa: E402
from tvm_mixq.errors import ModelError  # noqa: E402
from tvm_mixq.graph import Graph, NoAttrs, Op, ResizeAttrs, Tensor  # noqa: E402
from tvm_mixq.reader.tflite_reader import read_tflite  # noqa: E402
from tvm_mixq.reference.interpreter import Interpreter  # noqa: E402
from tvm_mixq.relax.importer import ATTR_TENSORS, from_tflite, import_graph, same_padding  # noqa: E402

FIXTURES = sorted(OPS_FIXTURES.glob("*.tflite"))
# Ops TVM 0.27's TFLite frontend refuses when quantized (DESIGN section 2).
TVM_REFUSED = ("pad_symmetric", "transpose_nchw", "resize_nearest_2x")
# A quick numeric sample; every fixture runs with --runslow.
NUMERIC_QUICK = ("pad_asymmetric_conv", "transpose_hw", "resize_nearest_half_pixel", "resize_nearest_align_corners",
                 "dwconv_3x3_dm2", "conv2d_3x3_same_s2", "fc_keep_num_dims", "concat_inputs_axis3", "mean_spatial")


def _ops(func: relax.Function) -> list[str]:
    names = []
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
                names.append(value.op.name)
    return names


def _random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = []
    for index in graph.inputs:
        t = graph.tensors[index]
        if t.dtype.startswith("float"):
            inputs.append(rng.uniform(-1.0, 1.0, t.shape).astype(t.dtype))
        else:
            info = np.iinfo(t.dtype)
            inputs.append(rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype))
    return inputs


def _max_diff_vs_reference(graph: Graph) -> float:
    mod = import_graph(graph)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    inputs = _random_inputs(graph)
    expected = Interpreter(graph).run(inputs)
    got = vm["main"](*[tvm.runtime.tensor(x) for x in inputs])
    got = [got] if hasattr(got, "numpy") else list(got)
    assert len(got) == len(expected)
    worst = 0.0
    for e, g, index in zip(expected, got, graph.outputs):
        g = g.numpy()
        assert g.shape == e.shape and g.dtype == e.dtype
        diff = np.abs(e.astype(np.float64) - g.astype(np.float64))
        scale = 1.0
        if e.dtype.kind == "f":  # a float output comes from a DEQUANTIZE: count in its input's steps
            producer = graph.producers()[index]
            scale = float(graph.tensors[producer.inputs[0]].quant.scale[0])
        worst = max(worst, float(diff.max() / scale))
    return worst


# -- the shared models --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_mlperf_model_imports_with_links(name: str) -> None:
    graph = read_tflite(MLPERF_INT8[name])
    mod = from_tflite(MLPERF_INT8[name])
    main = mod["main"]
    assert [p.name for p in main.params] == [f"input_{i}" for i in range(len(graph.inputs))]
    for param, index in zip(main.params, graph.inputs):
        assert tuple(int(d) for d in param.ty.shape) == graph.tensors[index].shape
        assert str(param.ty.dtype) == graph.tensors[index].dtype
    links = {str(k): [int(x) for x in v] for k, v in mod.attrs[ATTR_TENSORS].items()}
    producers = graph.producers()
    for var_name, (tensor, op) in links.items():
        assert var_name in ("input_0",) or var_name == f"t{tensor}"
        assert op == -1 or producers[tensor].index == op
    # one linked variable per op output
    assert sum(1 for _, op in links.values() if op >= 0) == sum(len(op.outputs) for op in graph.ops)
    counts = Counter(_ops(main))
    kinds = graph.op_counts()
    assert counts["relax.nn.conv2d"] == kinds.get("CONV_2D", 0) + kinds.get("DEPTHWISE_CONV_2D", 0)
    assert counts["relax.matmul"] == kinds.get("FULLY_CONNECTED", 0)


@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_tvm_frontend_also_imports_mlperf(name: str) -> None:
    mod = from_tflite(MLPERF_INT8[name], frontend="tvm")
    assert "relax.quantize" in _ops(mod["main"])


@pytest.mark.parametrize("stem", TVM_REFUSED)
def test_ops_tvm_refuses_import_here(stem: str) -> None:
    path = OPS_FIXTURES / f"{stem}.tflite"
    with pytest.raises(ModelError, match="TVM's TFLite frontend refuses"):
        from_tflite(path, frontend="tvm")
    ops = _ops(from_tflite(path)["main"])
    assert ops  # imported, on the integers (no dequantize needed for a layout op)
    assert "relax.dequantize" not in ops


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_fixture_imports(path) -> None:
    graph = read_tflite(path)
    mod = from_tflite(graph)
    assert len(mod["main"].params) == len(graph.inputs)
    assert tvm.relax.analysis.check_well_formed(mod)


# -- structure of single ops ------------------------------------------------------------------------


def test_conv_is_qdq_with_int_clip() -> None:
    graph = conv_graph(cin=3, cout=4, size=8)  # 3x3 SAME, RELU, per-channel weights
    ops = _ops(import_graph(graph)["main"])
    assert ops == ["relax.dequantize", "relax.dequantize", "relax.nn.conv2d", "relax.dequantize", "relax.add",
                   "relax.quantize", "relax.clip"]
    conv = next(b.value for b in import_graph(graph)["main"].body.blocks[0].bindings
                if isinstance(b.value, relax.Call) and b.value.op.name == "relax.nn.conv2d")
    assert [int(p) for p in conv.attrs.padding] == [1, 1, 1, 1]
    assert str(conv.attrs.kernel_layout) == "OHWI"
    clip = import_graph(graph)["main"].body.blocks[0].bindings[-2].value
    assert clip.op.name == "relax.clip"
    assert int(clip.args[1].value) == 5 and int(clip.args[2].value) == 127  # RELU: [zero point, qmax]


def _layout_graph(kind: str, out_shape: tuple[int, ...], const: np.ndarray | None, attrs=None) -> Graph:
    tensors = [Tensor(0, "x", (1, 4, 4, 2), "int8", q(0.1, -7))]
    inputs = [0]
    if const is not None:
        tensors.append(Tensor(1, "c", const.shape, "int32", None, data=const.astype(np.int32)))
        inputs.append(1)
    tensors.append(Tensor(len(tensors), "y", out_shape, "int8", q(0.1, -7)))
    op = Op(0, kind, inputs, [len(tensors) - 1], attrs or NoAttrs())
    return Graph(tensors=tensors, ops=[op], inputs=[0], outputs=[len(tensors) - 1])


def test_pad_runs_on_integers_with_zero_point() -> None:
    graph = _layout_graph("PAD", (1, 5, 7, 2), np.array([[0, 0], [1, 0], [2, 1], [0, 0]]))
    binding = import_graph(graph)["main"].body.blocks[0].bindings[0]
    assert binding.value.op.name == "relax.nn.pad"
    assert float(binding.value.attrs.pad_value) == -7.0
    assert [int(v) for v in binding.value.attrs.pad_width] == [0, 0, 1, 0, 2, 1, 0, 0]
    assert _max_diff_vs_reference(graph) == 0.0


def test_transpose_and_resize_are_exact() -> None:
    transpose = _layout_graph("TRANSPOSE", (1, 2, 4, 4), np.array([0, 3, 1, 2]))
    assert _ops(import_graph(transpose)["main"]) == ["relax.permute_dims"]
    assert _max_diff_vs_reference(transpose) == 0.0
    for attrs in (ResizeAttrs(), ResizeAttrs(align_corners=True), ResizeAttrs(half_pixel_centers=True)):
        resize = _layout_graph("RESIZE_NEAREST_NEIGHBOR", (1, 7, 9, 2), np.array([7, 9]), attrs)
        assert _ops(import_graph(resize)["main"]) == ["relax.image.resize2d"]
        assert _max_diff_vs_reference(resize) == 0.0, attrs


def test_requantizing_layout_op_goes_through_float() -> None:
    graph = _layout_graph("RESHAPE", (1, 32), None)
    graph.tensors[1].quant = q(0.2, 3)
    assert _ops(import_graph(graph)["main"]) == ["relax.dequantize", "relax.reshape", "relax.quantize"]


@pytest.mark.parametrize("in_size, out_size, k, s, d, expected", [
    (8, 8, 3, 1, 1, (1, 1)), (8, 4, 3, 2, 1, (0, 1)), (7, 4, 3, 2, 1, (1, 1)), (8, 8, 3, 1, 2, (2, 2)),
    (5, 5, 1, 1, 1, (0, 0)),
])
def test_same_padding_matches_tflite(in_size, out_size, k, s, d, expected) -> None:
    assert same_padding(in_size, out_size, k, s, d) == expected


def test_unknown_frontend_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown frontend"):
        from_tflite(conv_graph(), frontend="onnx")


# -- numerics ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", NUMERIC_QUICK)
def test_fixture_numerics_quick(stem: str) -> None:
    assert _max_diff_vs_reference(read_tflite(OPS_FIXTURES / f"{stem}.tflite")) <= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_numerics_all(path) -> None:
    assert _max_diff_vs_reference(read_tflite(path)) <= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_mlperf_numerics(name: str) -> None:
    assert _max_diff_vs_reference(read_tflite(MLPERF_INT8[name])) <= 2.0


def test_fused_activation_clamp_is_the_reference_s() -> None:
    """6 / scale in float32, as TFLite (in double 6 / 0.047058824 is just below 127.5)."""
    from tvm_mixq.graph import QuantParams
    from tvm_mixq.reference import ops
    from tvm_mixq.relax.importer import activation_range

    quant = QuantParams(np.array([0.0470588244497776], np.float32), np.array([-128]))
    assert activation_range("RELU6", quant, "int8") == (-128, 0) == ops.activation_range("RELU6", 0.0470588244497776,
                                                                                            -128)
    assert activation_range("NONE", quant, "int8") is None
