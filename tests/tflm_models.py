"""Small models and a conversion helper shared by the TFLM tests."""
from __future__ import annotations

import numpy as np

from model_builder import q
from tvm_mixq.graph import (ConvAttrs, ElementwiseAttrs, FullyConnectedAttrs, Graph, NoAttrs, Op, PoolAttrs,
                            Tensor)
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.vdqs import calibrated_act_quant
from tvm_mixq.tflm.rewriter import ConversionResult, rewrite


def block_graph(seed: int = 0) -> Graph:
    """input -> CONV 3x3 s2 -> DW 3x3 -> CONV 1x1 -> ADD(conv1x1, dw) -> AVG_POOL -> RESHAPE -> FC."""
    rng = np.random.default_rng(seed)

    def w(shape, axis):
        n = shape[axis]
        return q(list(rng.uniform(0.004, 0.02, n)), 0, axis), rng.integers(-127, 128, shape).astype(np.int8)

    def bias(n):
        return rng.integers(-300, 300, n).astype(np.int32)

    t: list[Tensor] = []

    def add(name, shape, dtype="int8", quant=None, data=None):
        t.append(Tensor(len(t), name, shape, dtype, quant, data))
        return len(t) - 1

    x = add("input", (1, 12, 12, 3), quant=q(0.05, -3))
    q1, d1 = w((8, 3, 3, 3), 0)
    c1 = add("c1", (1, 6, 6, 8), quant=q(0.08, -128))
    qd, dd = w((1, 3, 3, 8), 3)
    dw = add("dw", (1, 6, 6, 8), quant=q(0.07, -128))
    q2, d2 = w((8, 1, 1, 8), 0)
    pw = add("pw", (1, 6, 6, 8), quant=q(0.09, -10))
    s = add("sum", (1, 6, 6, 8), quant=q(0.12, -20))
    p = add("pool", (1, 1, 1, 8), quant=q(0.12, -20))
    r = add("flat", (1, 8), quant=q(0.12, -20))
    shape_t = add("shape", (2,), "int32", data=np.array([1, 8], np.int32))
    qf, df = w((4, 8), 0)
    out = add("logits", (1, 4), quant=q(0.2, 3))
    ops = []

    def op(kind, ins, outs, attrs):
        ops.append(Op(len(ops), kind, ins, outs, attrs))

    op("CONV_2D", [x, add("w1", (8, 3, 3, 3), quant=q1, data=d1), add("b1", (8,), "int32", data=bias(8))], [c1],
       ConvAttrs(stride=(2, 2), padding="SAME", activation="RELU"))
    op("DEPTHWISE_CONV_2D", [c1, add("wd", (1, 3, 3, 8), quant=qd, data=dd), add("bd", (8,), "int32", data=bias(8))],
       [dw], ConvAttrs(padding="SAME", activation="RELU6"))
    op("CONV_2D", [dw, add("w2", (8, 1, 1, 8), quant=q2, data=d2), add("b2", (8,), "int32", data=bias(8))], [pw],
       ConvAttrs(padding="VALID"))
    op("ADD", [pw, dw], [s], ElementwiseAttrs(activation="NONE"))
    op("AVERAGE_POOL_2D", [s], [p], PoolAttrs(filter=(6, 6), stride=(6, 6), padding="VALID"))
    op("RESHAPE", [p, shape_t], [r], NoAttrs())
    op("FULLY_CONNECTED", [r, add("wf", (4, 8), quant=qf, data=df), add("bf", (4,), "int32", data=bias(4))], [out],
       FullyConnectedAttrs())
    return Graph(t, ops, [x], [out], name="block")


def calibrated(graph: Graph):
    return calibrate(graph, np.random.default_rng(3).integers(-128, 128, (16,) + graph.tensors[0].shape[1:])
                     .astype(np.int8))


def convert(graph: Graph, act_bits: dict, weight_bits: dict | None = None) -> ConversionResult:
    cal = calibrated(graph)
    a = PrecisionAssignment(act_bits=dict(act_bits), weight_bits=dict(weight_bits or {}))
    return rewrite(graph, a, calibrated_act_quant(cal, a))
