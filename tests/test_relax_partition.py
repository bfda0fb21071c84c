"""Pattern partitioning (mixq.Partition): composite functions, their attributes, and non-matches."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402
from tvm.script import ir as I  # noqa: E402
from tvm.script import relax as R  # noqa: E402

from paths import MLPERF_INT8, OPS_FIXTURES  # noqa: E402
from model_builder import conv_graph  # noqa: E402
from tvm_mixq.graph import Graph  # noqa: E402
from tvm_mixq.reader.tflite_reader import read_tflite  # noqa: E402
from tvm_mixq.relax.importer import from_tflite, import_graph  # noqa: E402
from tvm_mixq.relax.passes import Partition  # noqa: E402
from tvm_mixq.relax.patterns import pattern_table, register  # noqa: E402
from tvm_mixq.relax.planner import composite_functions, layers  # noqa: E402

# Graph op kinds that become one composite function each.
LAYER_KINDS = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "fully_connected",
               "ADD": "add", "AVERAGE_POOL_2D": "avg_pool2d"}


def _expected_layers(graph: Graph) -> Counter:
    return Counter(LAYER_KINDS[op.kind] for op in graph.ops if op.kind in LAYER_KINDS)


@pytest.mark.parametrize("frontend", ["mixq", "tvm"])
@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_mlperf_models_partition_completely(name: str, frontend: str) -> None:
    graph = read_tflite(MLPERF_INT8[name])
    mod = Partition()(from_tflite(MLPERF_INT8[name], frontend=frontend))
    found = Counter(layer.op for layer in layers(mod))
    assert found == _expected_layers(graph)
    assert len(composite_functions(mod)) == sum(found.values())
    main_ops = {b.value.op.name for blk in mod["main"].body.blocks for b in blk.bindings
                if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)}
    assert "relax.nn.conv2d" not in main_ops and "relax.matmul" not in main_ops  # all inside composites


@pytest.mark.parametrize("name", sorted(MLPERF_INT8))
def test_composites_link_to_graph_ops(name: str) -> None:
    graph = read_tflite(MLPERF_INT8[name])
    mod = Partition()(from_tflite(graph))
    for layer in layers(mod):
        op = graph.ops[layer.op_index]
        assert op.index == layer.op_index
        assert LAYER_KINDS[op.kind] == layer.op
        assert op.outputs[0] == layer.tensor_index
        assert layer.name == f"mixq_{layer.op}_t{layer.tensor_index}"
        assert layer.attr("tensor_name") == graph.tensors[layer.tensor_index].name
        out_q = graph.tensors[layer.tensor_index].quant
        assert layer.attr("output_scale") == pytest.approx(float(out_q.scale[0]))
        assert layer.attr("output_zero_point") == int(out_q.zero_point[0])
        in_q = graph.tensors[op.inputs[0]].quant
        assert layer.attr("input_zero_point") == int(in_q.zero_point[0])
        if layer.op in ("conv2d", "depthwise_conv2d", "fully_connected"):
            w_q = graph.tensors[op.inputs[1]].quant
            assert np.allclose(layer.attr("weight_scale"), w_q.scale)
            assert layer.attr("has_bias") == (len(op.inputs) > 2 and op.inputs[2] >= 0)


@pytest.mark.parametrize("path", sorted(OPS_FIXTURES.glob("*.tflite")), ids=lambda p: p.stem)
def test_fixture_layers_partition(path) -> None:
    graph = read_tflite(path)
    mod = Partition()(from_tflite(graph))
    assert Counter(layer.op for layer in layers(mod)) == _expected_layers(graph)


def test_conv_composite_attributes_and_script() -> None:
    graph = conv_graph(cin=3, cout=4, size=8)  # RELU, output scale 0.1 zero point 5
    mod = Partition()(import_graph(graph))
    assert [gv.name_hint for gv in mod.get_global_vars()].count("mixq_conv2d_t3") == 1
    func = mod["mixq_conv2d_t3"]
    assert str(func.attrs["Composite"]) == "mixq.conv2d"
    assert int(func.attrs["mixq.activation_min"]) == 5 and int(func.attrs["mixq.activation_max"]) == 127
    assert float(func.attrs["mixq.input_scale"]) == pytest.approx(0.05)
    assert int(func.attrs["mixq.input_zero_point"]) == -3
    assert np.allclose([float(s) for s in func.attrs["mixq.weight_scale"]], graph.tensors[1].quant.scale)
    # the composite holds the whole layer, constants bound inside
    ops = [b.value.op.name for b in func.body.blocks[0].bindings]
    assert ops == ["relax.dequantize", "relax.dequantize", "relax.nn.conv2d", "relax.dequantize", "relax.add",
                   "relax.quantize", "relax.clip"]
    assert len(func.params) == 1
    # main calls it once on the input
    calls = [b.value for b in mod["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call)]
    assert len(calls) == 1 and calls[0].op.name_hint == "mixq_conv2d_t3"
    script = mod.script()
    assert '"Composite": "mixq.conv2d"' in script and '"mixq.op_index": 0' in script


def test_partition_twice_changes_nothing() -> None:
    once = Partition()(from_tflite(OPS_FIXTURES / "mobilenet_block_int8_io.tflite"))
    tvm.ir.assert_structural_equal(Partition()(once), once)


def test_grouped_conv_is_not_a_mixq_layer() -> None:
    """A conv2d with 1 < groups < channels: the check refuses it, main stays as it was."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([1, 6, 6, 4], "int8"))
    w = relax.const(np.ones((4, 3, 3, 2), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            xf = bb.emit(relax.op.dequantize(x, relax.const(0.05), relax.const(0, "int32")))
            wf = bb.emit(relax.op.dequantize(w, relax.const(0.01), relax.const(0, "int32")))
            y = bb.emit(relax.op.nn.conv2d(xf, wf, padding=(1, 1, 1, 1), groups=2, data_layout="NHWC",
                                           kernel_layout="OHWI", out_layout="NHWC"))
            out = bb.emit_output(relax.op.quantize(y, relax.const(0.1), relax.const(0, "int32")))
        bb.emit_func_output(out)
    before = bb.get()
    tvm.ir.assert_structural_equal(Partition()(before), before)


@I.ir_module
class FloatConv:
    """No quantize/dequantize: nothing for the mixq kernels."""

    @R.function
    def main(x: R.Tensor((1, 8, 8, 4), "float32"), w: R.Tensor((4, 3, 3, 4), "float32")
             ) -> R.Tensor((1, 6, 6, 4), "float32"):
        with R.dataflow():
            y = R.nn.conv2d(x, w, data_layout="NHWC", kernel_layout="OHWI", out_layout="NHWC")
            R.output(y)
        return y


@I.ir_module
class RuntimeWeights:
    """QDQ conv whose weights are a function parameter, not a constant: not a mixq layer."""

    @R.function
    def main(x: R.Tensor((1, 8, 8, 4), "int8"), w: R.Tensor((4, 3, 3, 4), "int8")) -> R.Tensor((1, 6, 6, 4), "int8"):
        with R.dataflow():
            xf = R.dequantize(x, R.const(0.05, "float32"), R.const(0, "int32"), axis=-1)
            wf = R.dequantize(w, R.const(0.01, "float32"), R.const(0, "int32"), axis=-1)
            y = R.nn.conv2d(xf, wf, data_layout="NHWC", kernel_layout="OHWI", out_layout="NHWC")
            z = R.quantize(y, R.const(0.1, "float32"), R.const(0, "int32"), axis=-1, out_dtype="int8")
            R.output(z)
        return z


@I.ir_module
class QdqAdd:
    """Two dequantized inputs added and requantized: one mixq.add."""

    @R.function
    def main(a: R.Tensor((1, 4, 4, 2), "int8"), b: R.Tensor((1, 4, 4, 2), "int8")) -> R.Tensor((1, 4, 4, 2), "int8"):
        with R.dataflow():
            af = R.dequantize(a, R.const(0.05, "float32"), R.const(1, "int32"), axis=-1)
            bf = R.dequantize(b, R.const(0.02, "float32"), R.const(-2, "int32"), axis=-1)
            s = R.add(af, bf)
            r = R.nn.relu(s)
            z = R.quantize(r, R.const(0.1, "float32"), R.const(-4, "int32"), axis=-1, out_dtype="int8")
            R.output(z)
        return z


@pytest.mark.parametrize("before", [FloatConv, RuntimeWeights], ids=["float_conv", "runtime_weights"])
def test_partition_does_not_fire(before) -> None:
    tvm.ir.assert_structural_equal(Partition()(before), before)


def test_tvmscript_add_with_float_relu() -> None:
    mod = Partition()(QdqAdd)
    (layer,) = layers(mod)
    assert layer.op == "add" and layer.output == "z" and layer.op_index == -1
    assert layer.name == "mixq_add_z"
    assert layer.attr("input_b_scale") == pytest.approx(0.02) and layer.attr("input_b_zero_point") == -2
    assert layer.attr("activation_min") == -4  # relu in float: clamp at the output zero point
    assert layer.attr("activation_max") == 127


def test_pattern_table_and_registry() -> None:
    from tvm.relax.backend.pattern_registry import get_patterns_with_prefix

    names = [row.name for row in pattern_table()]
    assert names[:5] == ["mixq.conv2d", "mixq.depthwise_conv2d", "mixq.fully_connected", "mixq.add", "mixq.avg_pool2d"]
    assert all(len(row.as_tuple()) == 4 for row in pattern_table())
    register()
    assert {p.name for p in get_patterns_with_prefix("mixq")} >= set(names)


def test_registered_patterns_exit_cleanly() -> None:
    """Registering the table must not make the interpreter crash when it exits."""
    import subprocess
    import sys

    code = "import tvm_mixq.relax.patterns as p; p.register(); print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(__import__("paths").ROOT))
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert proc.stdout.strip() == "ok"


def test_float_clip_bounds_quantize_in_float32() -> None:
    """TVM's frontend puts a fused activation of ADD as a float clip; its bounds quantize as TFLite's.

    6 / 2.4000001 is just below 2.5 in double and exactly 2.5 in float32, so TFLite clamps at 3.
    """
    import numpy as np
    from tvm import relax

    from tvm_mixq.reference import ops
    from tvm_mixq.relax.patterns import match_attrs

    xi = relax.Var("xi", relax.TensorType([1, 4], "int8"))
    zp = relax.const(np.int8(0))
    deq = relax.op.dequantize(xi, relax.const(np.float32(0.05)), zp, axis=-1, out_dtype="float32")
    clip = relax.op.clip(deq, 0.0, 6.0)
    scale = 2.4000000953674316
    q = relax.op.quantize(clip, relax.const(np.float32(scale)), zp, axis=-1, out_dtype="int8")
    attrs = match_attrs("add", {"input": deq, "input_b": deq, "quantize": q, "float_clip": clip})
    assert (attrs["mixq.activation_min"], attrs["mixq.activation_max"]) == ops.activation_range("RELU6", scale, 0)
    assert attrs["mixq.activation_max"] == 3
