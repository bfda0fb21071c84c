"""Small quantized models made in the tests without TensorFlow, through the project's writer."""
from __future__ import annotations

import numpy as np

from tvm_mixq.graph import ConvAttrs, ElementwiseAttrs, Graph, NoAttrs, Op, QuantParams, Tensor
from tvm_mixq.tflm.writer import write_tflite


def q(scale: float | list[float], zero_point: int | list[int] = 0, axis: int = 0) -> QuantParams:
    scale_arr = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    zp = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
    if zp.size == 1 and scale_arr.size > 1:
        zp = np.zeros(scale_arr.size, dtype=np.int64) + zp[0]
    return QuantParams(scale=scale_arr, zero_point=zp, axis=axis)


def conv_graph(seed: int = 0, cin: int = 3, cout: int = 4, size: int = 8, extra_op: str | None = None) -> Graph:
    """input int8 [1,size,size,cin] -> CONV_2D 3x3 SAME (per-channel) -> output; optionally one more op."""
    rng = np.random.default_rng(seed)
    tensors = [
        Tensor(0, "input", (1, size, size, cin), "int8", q(0.05, -3)),
        Tensor(1, "weights", (cout, 3, 3, cin), "int8", q(list(rng.uniform(0.005, 0.02, cout)), 0),
               data=rng.integers(-127, 128, (cout, 3, 3, cin), dtype=np.int8)),
        Tensor(2, "bias", (cout,), "int32", None, data=rng.integers(-500, 500, cout).astype(np.int32)),
        Tensor(3, "conv_out", (1, size, size, cout), "int8", q(0.1, 5)),
    ]
    ops = [Op(0, "CONV_2D", [0, 1, 2], [3], ConvAttrs(stride=(1, 1), padding="SAME", activation="RELU"))]
    outputs = [3]
    if extra_op is not None:
        tensors.append(Tensor(4, "extra_out", (1, size, size, cout), "int8", q(0.1, 5)))
        ops.append(Op(1, extra_op, [3], [4], NoAttrs()))
        outputs = [4]
    return Graph(tensors=tensors, ops=ops, inputs=[0], outputs=outputs, name="tiny_conv")


def conv_model_bytes(**kwargs) -> bytes:
    return write_tflite(conv_graph(**kwargs))


def two_input_graph(seed: int = 0, size: int = 8, c: int = 8) -> Graph:
    """inputs a, b int8 [1,size,size,c] -> ADD -> CONV_2D 3x3 SAME (RELU) -> CONV_2D 1x1 -> output:
    a model with two inputs whose middle feature map the mixed-precision search may lower."""
    rng = np.random.default_rng(seed)

    def weights(index: int, name: str, shape: tuple[int, ...]) -> Tensor:
        return Tensor(index, name, shape, "int8", q(list(rng.uniform(0.005, 0.02, shape[0])), 0),
                      data=rng.integers(-127, 128, shape, dtype=np.int8))

    def bias(index: int, n: int) -> Tensor:
        return Tensor(index, f"bias{index}", (n,), "int32", None, data=rng.integers(-500, 500, n).astype(np.int32))

    fmap = (1, size, size, c)
    tensors = [
        Tensor(0, "a", fmap, "int8", q(0.05, -3)),
        Tensor(1, "b", fmap, "int8", q(0.04, 2)),
        Tensor(2, "sum", fmap, "int8", q(0.08, 0)),
        weights(3, "w3x3", (c, 3, 3, c)),
        bias(4, c),
        Tensor(5, "conv_out", fmap, "int8", q(0.1, -128)),
        weights(6, "w1x1", (c, 1, 1, c)),
        bias(7, c),
        Tensor(8, "out", fmap, "int8", q(0.1, 5)),
    ]
    ops = [
        Op(0, "ADD", [0, 1], [2], ElementwiseAttrs()),
        Op(1, "CONV_2D", [2, 3, 4], [5], ConvAttrs(padding="SAME", activation="RELU")),
        Op(2, "CONV_2D", [5, 6, 7], [8], ConvAttrs(padding="SAME")),
    ]
    return Graph(tensors=tensors, ops=ops, inputs=[0, 1], outputs=[8], name="two_inputs")
