"""Generated models with A4W4 layers: their weights go to flash re-spaced into lane words with the
lane bias (``tvm_mixq.codegen.layers.uses_w4_lanes``), called through the kernel library's ``_lanes``
entry points, bit-exact with the reference on the host (portable path) and on the emulated
Cortex-M7 (packed DSP path), with the scratch of the DSP path minus the re-spaced copy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tvm_mixq.codegen import generate_c, run_host
from tvm_mixq.codegen.emitter import build_layers, dsp_conv_scratch
from tvm_mixq.graph import ConvAttrs, FullyConnectedAttrs, Graph, NoAttrs, Op, QuantParams, Tensor
from tvm_mixq.kernellib import layout
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions

REF = ReferenceOptions(tflite_float_fc=False)


def _q(scale, zp=0) -> QuantParams:
    s = np.atleast_1d(np.asarray(scale, np.float32))
    return QuantParams(scale=s, zero_point=np.zeros(s.size, np.int64) + int(zp), axis=0)


def w4a4_graph(seed: int = 0) -> Graph:
    """int8 [1,8,8,8] -> 1x1 a8w8o4 -> 3x3 SAME a4w4o4 (16 -> 16) -> 1x1 a4w4o4 without bias (16 -> 6)
    -> RESHAPE [1, 384] -> FC a4w4o8 (384 -> 10) -> int8."""
    rng = np.random.default_rng(seed)

    def w(shape, bits):
        lo, hi = layout.weight_range(bits)
        return rng.integers(lo, hi + 1, size=shape).astype(np.int8)

    def bias(n):
        return rng.integers(-300, 300, size=n).astype(np.int32)

    t = [
        Tensor(0, "input", (1, 8, 8, 8), "int8", _q(0.05, -3)),
        Tensor(1, "w0", (16, 1, 1, 8), "int8", _q(list(rng.uniform(0.004, 0.01, 16))), data=w((16, 1, 1, 8), 8)),
        Tensor(2, "b0", (16,), "int32", None, data=bias(16)),
        Tensor(3, "t0", (1, 8, 8, 16), "int8", _q(0.08, 3), bits=4, signed=False),
        Tensor(4, "w1", (16, 3, 3, 16), "int8", _q(list(rng.uniform(0.02, 0.05, 16))), data=w((16, 3, 3, 16), 4),
               bits=4),
        Tensor(5, "b1", (16,), "int32", None, data=bias(16)),
        Tensor(6, "t1", (1, 8, 8, 16), "int8", _q(0.3, 7), bits=4, signed=False),
        Tensor(7, "w2", (6, 1, 1, 16), "int8", _q(list(rng.uniform(0.02, 0.05, 6))), data=w((6, 1, 1, 16), 4),
               bits=4),
        Tensor(8, "t2", (1, 8, 8, 6), "int8", _q(0.2, 5), bits=4, signed=False),
        Tensor(9, "shape", (2,), "int32", None, data=np.array([1, 384], np.int32)),
        Tensor(10, "t3", (1, 384), "int8", _q(0.2, 5), bits=4, signed=False),
        Tensor(11, "w3", (10, 384), "int8", _q(list(rng.uniform(0.02, 0.05, 10))), data=w((10, 384), 4), bits=4),
        Tensor(12, "b3", (10,), "int32", None, data=bias(10)),
        Tensor(13, "output", (1, 10), "int8", _q(0.25, -4)),
    ]
    ops = [
        Op(0, "CONV_2D", [0, 1, 2], [3], ConvAttrs(padding="VALID")),
        Op(1, "CONV_2D", [3, 4, 5], [6], ConvAttrs(padding="SAME", activation="RELU")),
        Op(2, "CONV_2D", [6, 7, -1], [8], ConvAttrs(padding="VALID")),
        Op(3, "RESHAPE", [8, 9], [10], NoAttrs()),
        Op(4, "FULLY_CONNECTED", [10, 11, 12], [13], FullyConnectedAttrs()),
    ]
    return Graph(t, ops, [0], [13], name="w4a4_lanes")


def _inputs(graph: Graph, samples: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(-128, 128, size=(samples, 8, 8, 8)).astype(np.int8)]


def test_w4a4_layers_emit_lane_weights(tmp_path: Path) -> None:
    graph = w4a4_graph()
    layers = {la.op.index: la for la in build_layers(graph)}
    lanes = {i for i, la in layers.items() if la.p.get("fn", "").endswith("_lanes")}
    assert lanes == {1, 2, 4}  # every A4W4 conv2d / pointwise / fully connected, not the a8w8o4 one
    for i in lanes:
        la = layers[i]
        f = la.p["filter_dims"]
        k, cout = f["h"] * f["w"] * f["c"], f["n"]
        w = next(a for a in la.consts if a.name == la.p["weights"])
        b = next(a for a in la.consts if a.name == la.p["bias"])
        op = graph.ops[i]
        wq = graph.tensors[op.inputs[1]].data.astype(np.int64)
        assert w.values.size == layout.w4_lanes_size(k, cout)  # one byte per weight of the padded rows
        np.testing.assert_array_equal(w.values, layout.pack_w4_lanes(wq))
        bias = graph.tensors[op.inputs[2]].data if op.inputs[2] >= 0 else None
        x_zp = int(graph.tensors[op.inputs[0]].quant.zero_point[0])
        np.testing.assert_array_equal(b.values, layout.w4_lane_bias(wq, bias, x_zp))  # no bias: lane bias anyway
        # the DSP path's scratch: two lane rows and the per-channel words, no re-spaced copy (it was
        # Cpad * kp bytes more), plus the ring of converted rows of the 3x3 conv
        kp, cpad = layout.weight_row_len(k, 4), cout + cout % 2
        assert dsp_conv_scratch(la) == 2 * kp + 28 * cpad + (4 * 3 * 10 * 8 if i == 1 else 0)
        assert la.scratch >= dsp_conv_scratch(la)
    model = generate_c(graph, tmp_path, name="w4a4")
    source = model.source.read_text()
    for fn in ("mixq_conv2d_a4w4o4_lanes(", "mixq_pointwise_a4w4o4_lanes(", "mixq_fully_connected_a4w4o8_lanes(",
               "mixq_pointwise_a8w8o4("):
        assert fn in source


def test_w4a4_lanes_bit_exact_on_host(tmp_path: Path) -> None:
    graph = w4a4_graph()
    model = generate_c(graph, tmp_path, name="w4a4")
    x = _inputs(graph)
    expected = Interpreter(graph, REF).run(x)
    got = run_host(model, x)
    np.testing.assert_array_equal(got[0], expected[0])
    assert len(np.unique(expected[0])) > 4  # outputs are not all saturated


toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")


@pytest.mark.skipif(toolchain.tools_available() is not None, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_w4a4_lanes_bit_exact_on_m7(tmp_path: Path) -> None:
    from tvm_mixq.codegen.firmware import build_firmware, run_firmware

    graph = w4a4_graph(seed=1)
    model = generate_c(graph, tmp_path, name="w4a4")
    x = _inputs(graph)
    expected = Interpreter(graph, REF).run(x)
    fw = build_firmware(model, "cortex-m7", x, expected)
    run = run_firmware(fw, len(model.layers))
    assert run.passed, run.console[-400:]
