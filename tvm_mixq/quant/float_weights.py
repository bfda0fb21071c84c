"""Float weights of a float TFLite model, matched to the weighted ops of the int8 graph.

The project's reader accepts full-integer models only, so the float model's weights are read here
directly from the flatbuffer: for every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED in operator
order, the constant float32 weight tensor (input 1). Weights stored as float16 or int8 behind a
DEQUANTIZE op are followed to their constant and converted. The i-th weighted op of the float model
is matched to the i-th of the int8 graph; kinds and shapes must agree.
"""
from __future__ import annotations

import os

import numpy as np
import tflite

from ..errors import MixqError
from ..graph import Graph
from .precision import WEIGHTED_OPS

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
_NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
             tflite.TensorType.INT8: np.int8}


def _op_kind(model: "tflite.Model", op: "tflite.Operator") -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    return _OP_NAMES.get(builtin, str(builtin))


def read_float_weights(path: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """``(op kind, float32 weights)`` of every weighted op of a float ``.tflite``, in op order."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
        model = tflite.Model.GetRootAsModel(buf, 0)
        sub = model.Subgraphs(0)
    except OSError as exc:
        raise MixqError(f"cannot read float model {path}: {exc.strerror}") from exc
    except Exception as exc:  # flatbuffer decoding errors come in many types
        raise MixqError(f"{path} is not a readable TFLite model ({type(exc).__name__})") from exc
    producers = {}
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        for j in range(op.OutputsLength()):
            producers[op.Outputs(j)] = op

    def constant(t_index: int) -> np.ndarray:
        t = sub.Tensors(t_index)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, np.ndarray) and data.size:
            dtype = _NP_TYPES.get(t.Type())
            if dtype is None:
                raise MixqError(f"{path}: weight tensor {t.Name().decode()} has an unsupported type")
            arr = data.view(dtype).reshape(tuple(t.ShapeAsNumpy()))
            if dtype is np.int8:
                q = t.Quantization()
                scale = q.ScaleAsNumpy()
                shape = [1] * arr.ndim
                if np.size(scale) > 1:
                    shape[q.QuantizedDimension()] = -1
                arr = arr.astype(np.float32) * np.asarray(scale, np.float32).reshape(shape)
            return arr.astype(np.float32)
        prod = producers.get(t_index)
        if prod is not None and _op_kind(model, prod) == "DEQUANTIZE":
            return constant(prod.Inputs(0))
        raise MixqError(f"{path}: weights {t.Name().decode()} are not a constant")

    out = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        kind = _op_kind(model, op)
        if kind in WEIGHTED_OPS:
            out.append((kind, constant(op.Inputs(1))))
    return out


def float_weights_for(graph: Graph, path: str | os.PathLike) -> dict[int, np.ndarray]:
    """Op index of ``graph`` -> float weights from the float model at ``path``."""
    fops = read_float_weights(path)
    qops = [op for op in graph.ops if op.kind in WEIGHTED_OPS]
    if [k for k, _ in fops] != [o.kind for o in qops]:
        raise MixqError(f"float model {path} does not have the weighted ops of {graph.name} in the same order")
    out = {}
    for q, (_, w) in zip(qops, fops):
        want = tuple(graph.tensors[q.inputs[1]].shape)
        if tuple(w.shape) != want:
            raise MixqError(f"float model {path}: weights {tuple(w.shape)} do not match op {q.index} of "
                            f"{graph.name} ({want})")
        out[q.index] = w
    return out
