"""Small quantized graphs for the scheduling tests, built directly as project graphs, and checks that
they run in the reference interpreter (so the scheduling tests compare against something real)."""
from __future__ import annotations

import numpy as np

from tvm_mixq.graph import (
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    NoAttrs,
    Op,
    PoolAttrs,
    QuantParams,
    ReduceAttrs,
    Tensor,
)
from tvm_mixq.reference.interpreter import Interpreter


def _q(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []

    def act(self, shape: tuple[int, ...], scale: float = 0.05, zp: int = -10) -> int:
        t = Tensor(len(self.tensors), f"act{len(self.tensors)}", shape, "int8", _q(scale, zp))
        self.tensors.append(t)
        return t.index

    def const(self, data: np.ndarray, quant: QuantParams | None = None) -> int:
        dtype = str(data.dtype)
        t = Tensor(len(self.tensors), f"const{len(self.tensors)}", data.shape, dtype, quant, data=data)
        self.tensors.append(t)
        return t.index

    def _wq(self, channels: int, axis: int) -> QuantParams:
        return QuantParams(self.rng.uniform(0.004, 0.02, channels).astype(np.float32),
                           np.zeros(channels, np.int64), axis)

    def conv(self, x: int, cout: int, k: int, stride: int = 1, padding: str = "SAME", dilation: int = 1,
             out_scale: float = 0.05) -> int:
        n, h, w, cin = self.tensors[x].shape
        wt = self.const(self.rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8), self._wq(cout, 0))
        b = self.const(self.rng.integers(-300, 300, cout).astype(np.int32))
        eff = (k - 1) * dilation + 1
        oh = (h + stride - 1) // stride if padding == "SAME" else (h - eff) // stride + 1
        ow = (w + stride - 1) // stride if padding == "SAME" else (w - eff) // stride + 1
        y = self.act((1, oh, ow, cout), out_scale * np.sqrt(k * k * cin) / 3)
        self.ops.append(Op(len(self.ops), "CONV_2D", [x, wt, b], [y],
                           ConvAttrs((stride, stride), (dilation, dilation), padding, "RELU")))
        return y

    def dw(self, x: int, k: int = 3, stride: int = 1, padding: str = "SAME") -> int:
        n, h, w, c = self.tensors[x].shape
        wt = self.const(self.rng.integers(-127, 128, (1, k, k, c)).astype(np.int8), self._wq(c, 3))
        b = self.const(self.rng.integers(-300, 300, c).astype(np.int32))
        oh = (h + stride - 1) // stride if padding == "SAME" else (h - k) // stride + 1
        ow = (w + stride - 1) // stride if padding == "SAME" else (w - k) // stride + 1
        y = self.act((1, oh, ow, c), 0.08)
        self.ops.append(Op(len(self.ops), "DEPTHWISE_CONV_2D", [x, wt, b], [y],
                           ConvAttrs((stride, stride), (1, 1), padding, "RELU6", 1)))
        return y

    def add(self, a: int, b: int) -> int:
        y = self.act(self.tensors[a].shape, 0.07, -5)
        self.ops.append(Op(len(self.ops), "ADD", [a, b], [y], ElementwiseAttrs("NONE")))
        return y

    def pad(self, x: int, top: int, bottom: int, left: int, right: int) -> int:
        n, h, w, c = self.tensors[x].shape
        p = self.const(np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32))
        q = self.tensors[x].quant
        y = Tensor(len(self.tensors), f"act{len(self.tensors)}", (1, h + top + bottom, w + left + right, c), "int8", q)
        self.tensors.append(y)
        self.ops.append(Op(len(self.ops), "PAD", [x, p], [y.index], NoAttrs()))
        return y.index

    def pool(self, x: int, kind: str, k: int, stride: int, padding: str) -> int:
        n, h, w, c = self.tensors[x].shape
        oh = (h + stride - 1) // stride if padding == "SAME" else (h - k) // stride + 1
        ow = (w + stride - 1) // stride if padding == "SAME" else (w - k) // stride + 1
        y = Tensor(len(self.tensors), f"act{len(self.tensors)}", (1, oh, ow, c), "int8", self.tensors[x].quant)
        self.tensors.append(y)
        self.ops.append(Op(len(self.ops), kind, [x], [y.index], PoolAttrs((k, k), (stride, stride), padding, "NONE")))
        return y.index

    def unary(self, x: int, kind: str, scale: float = 0.06, zp: int = -20) -> int:
        y = self.act(self.tensors[x].shape, scale, zp)
        self.ops.append(Op(len(self.ops), kind, [x], [y], NoAttrs()))
        return y

    def mean(self, x: int) -> int:
        axes = self.const(np.array([1, 2], np.int32))
        n, h, w, c = self.tensors[x].shape
        y = self.act((1, 1, 1, c), 0.05, -10)
        self.ops.append(Op(len(self.ops), "MEAN", [x, axes], [y], ReduceAttrs(keep_dims=True)))
        return y

    def mul(self, a: int, b: int) -> int:
        y = self.act(self.tensors[a].shape, 0.06, -15)
        self.ops.append(Op(len(self.ops), "MUL", [a, b], [y], ElementwiseAttrs("NONE")))
        return y

    def head(self, x: int, classes: int = 4) -> int:
        n = self.tensors[x].size
        shape = self.const(np.array([1, n], np.int32))
        r = Tensor(len(self.tensors), f"act{len(self.tensors)}", (1, n), "int8", self.tensors[x].quant)
        self.tensors.append(r)
        self.ops.append(Op(len(self.ops), "RESHAPE", [x, shape], [r.index], NoAttrs()))
        wt = self.const(self.rng.integers(-127, 128, (classes, n)).astype(np.int8), _q(0.01))
        b = self.const(self.rng.integers(-300, 300, classes).astype(np.int32))
        y = self.act((1, classes), 0.5, 0)
        self.ops.append(Op(len(self.ops), "FULLY_CONNECTED", [r.index, wt, b], [y], FullyConnectedAttrs()))
        return y

    def graph(self, inp: int, out: int, name: str) -> Graph:
        return Graph(self.tensors, self.ops, [inp], [out], name)


def mixed_stage_graph(seed: int = 0, size: int = 24) -> Graph:
    """Strided SAME conv, depthwise, a residual ADD, PAD + VALID depthwise, pools, a dilated conv,
    then an expand -> depthwise -> project chain and a classifier head."""
    b = _Builder(seed)
    x = b.act((1, size, size, 3), 0.02, 0)
    t1 = b.conv(x, 8, 3, stride=2)
    t2 = b.dw(t1)
    t3 = b.conv(t2, 8, 1)
    t4 = b.add(t3, t1)
    t5 = b.pad(t4, 1, 1, 1, 1)
    t6 = b.dw(t5, 3, 2, "VALID")
    t7 = b.pool(t6, "AVERAGE_POOL_2D", 3, 1, "SAME")
    t8 = b.pool(t7, "MAX_POOL_2D", 3, 1, "SAME")
    t9 = b.conv(t8, 16, 3, dilation=2)
    t10 = b.conv(t9, 48, 1)
    t11 = b.dw(t10)
    t12 = b.conv(t11, 8, 1)
    y = b.head(t12)
    return b.graph(x, y, "mixed_stage")


def se_graph(seed: int = 0, size: int = 20) -> Graph:
    """MobileNetV3-like: hard-swish, RELU and a same-shape MUL inside the possible stage, then a
    squeeze-and-excitation block (MEAN, 1x1 convs, LOGISTIC, broadcast MUL) that ends it."""
    b = _Builder(seed)
    x = b.act((1, size, size, 3), 0.02, 0)
    t1 = b.conv(x, 8, 3, stride=2)
    t2 = b.unary(t1, "HARD_SWISH")
    t3 = b.dw(t2)
    t4 = b.unary(t3, "RELU", 0.05, -30)
    t5 = b.mul(t4, t2)
    t6 = b.conv(t5, 16, 1)
    t7 = b.dw(t6, 3, 2)
    s1 = b.mean(t7)
    s2 = b.conv(s1, 4, 1)
    s3 = b.conv(s2, 16, 1)
    gate = b.act(b.tensors[s3].shape, 1.0 / 256, -128)
    b.ops.append(Op(len(b.ops), "LOGISTIC", [s3], [gate], NoAttrs()))
    t8 = b.mul(t7, gate)
    t9 = b.conv(t8, 8, 1)
    y = b.head(t9)
    return b.graph(x, y, "se_block")


def float_input_graph(seed: int = 0, size: int = 16) -> Graph:
    """A float32 input quantized by the model (QUANTIZE), as many exported models keep it."""
    b = _Builder(seed)
    x = Tensor(0, "float_input", (1, size, size, 3), "float32", None)
    b.tensors.append(x)
    xq = b.act((1, size, size, 3), 0.02, 3)
    b.ops.append(Op(0, "QUANTIZE", [0], [xq], NoAttrs()))
    t1 = b.conv(xq, 8, 3, stride=2)
    t2 = b.dw(t1)
    t3 = b.conv(t2, 16, 1)
    t4 = b.dw(t3, 3, 2)
    y = b.head(b.conv(t4, 8, 1))
    return b.graph(0, y, "float_input")


def mcunet_block_graph(seed: int = 0, size: int = 32) -> Graph:
    """MCUNet-like: a stride-2 stem, a separable block, an expand -> explicit PAD -> stride-2 5x5
    depthwise -> project block, then an inverted residual block whose expanded tensors (16x16x48)
    are much larger than the input: the kind of block a later patch stage runs."""
    b = _Builder(seed)
    x = b.act((1, size, size, 3), 0.02, 0)
    t1 = b.conv(x, 8, 3, stride=2)  # 0
    t2 = b.dw(t1)  # 1
    t3 = b.conv(t2, 8, 1)  # 2
    t4 = b.conv(t3, 24, 1)  # 3
    t5 = b.pad(t4, 2, 2, 2, 2)  # 4
    t6 = b.dw(t5, 5, 2, "VALID")  # 5
    t7 = b.conv(t6, 12, 1)  # 6
    t8 = b.conv(t7, 48, 1)  # 7
    t9 = b.dw(t8, 5)  # 8
    t10 = b.conv(t9, 12, 1)  # 9
    t11 = b.add(t10, t7)  # 10
    y = b.head(b.conv(t11, 8, 1, stride=2))
    return b.graph(x, y, "mcunet_block")


def random_input(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in graph.inputs:
        t = graph.tensors[i]
        if t.dtype.startswith("float"):
            out.append(rng.uniform(-2.5, 2.5, t.shape).astype(t.dtype))
        else:
            out.append(rng.integers(-128, 128, t.shape).astype(t.dtype))
    return out


def test_mixed_stage_graph_runs_and_is_not_saturated() -> None:
    g = mixed_stage_graph()
    values = Interpreter(g).run_all(random_input(g))
    # intermediate feature maps hold a spread of values, so equality checks are meaningful
    for t in (9, 19, 25):
        if t in values:
            assert len(np.unique(values[t])) > 5
    assert values[g.outputs[0]].shape == (1, 4)


def test_se_graph_runs() -> None:
    g = se_graph()
    values = Interpreter(g).run_all(random_input(g))
    assert len(np.unique(values[g.outputs[0]])) > 1 or values[g.outputs[0]].size == 4
