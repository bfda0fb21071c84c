"""TFLite flatbuffer -> :class:`tvm_mixq.graph.Graph`.

The reader checks what it reads: anything that is not a full-integer TFLite model of the
supported ops is refused with a :class:`tvm_mixq.errors.ModelError` whose message names the
problem (a file that is not a TFLite flatbuffer, a truncated or corrupted one, a float-only or
hybrid model, an unsupported op with its index, a dynamic shape). Corrupted offsets never make
it loop for long: every vector length is bounded by the file size before it is walked.
"""
from __future__ import annotations

import logging
import math
import os
import struct
from typing import Callable, Optional

import numpy as np
import tflite

from ..errors import ModelError, UnsupportedOpError
from ..graph import (
    ConcatAttrs,
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    NoAttrs,
    Op,
    OpAttrs,
    PoolAttrs,
    QuantParams,
    ReduceAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    Tensor,
)
from .validate import validate_graph

log = logging.getLogger(__name__)

#: Builtin ops the project reads (issue "Foundation", the op list of common MCU models).
SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MUL",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "PAD",
    "RESHAPE",
    "SOFTMAX",
    "LOG_SOFTMAX",
    "QUANTIZE",
    "DEQUANTIZE",
    "TRANSPOSE",
    "CONCATENATION",
    "RESIZE_NEAREST_NEIGHBOR",
    "LOGISTIC",
    "HARD_SWISH",
    "RELU",
    "RELU6",
)

_FILE_IDENTIFIER = b"TFL3"
_MAX_RANK = 6
_MAX_ELEMENTS = 1 << 28  # no microcontroller model comes near this


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


_OP_NAMES = _enum_names(tflite.BuiltinOperator)
_ACTIVATIONS = _enum_names(tflite.ActivationFunctionType)
_PADDINGS = _enum_names(tflite.Padding)
_TENSOR_TYPES = _enum_names(tflite.TensorType)
_DTYPES = {
    "FLOAT32": "float32",
    "INT32": "int32",
    "UINT8": "uint8",
    "INT64": "int64",
    "BOOL": "bool",
    "INT16": "int16",
    "INT8": "int8",
    "INT4": "int8",  # unpacked on read, bits=4
}
# Op kinds whose float activations mark a float-only (or hybrid) model.
_COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def read_tflite(path: str | os.PathLike) -> Graph:
    """Read a ``.tflite`` file into the project graph.

    Raises
    ------
    ModelError
        The file is missing, not a TFLite flatbuffer, truncated or corrupted, a float-only or
        hybrid model, has dynamic shapes, or uses an op outside :data:`SUPPORTED_OPS`.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory, not a .tflite file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    name = os.path.splitext(os.path.basename(path))[0]
    return read_tflite_buffer(buf, name=name, source=path)


def read_tflite_buffer(buf: bytes, name: str = "model", source: str = "<buffer>") -> Graph:
    """Read a TFLite flatbuffer held in memory (see :func:`read_tflite`)."""
    if len(buf) < 8 or buf[4:8] != _FILE_IDENTIFIER:
        raise ModelError(f"{source}: not a TFLite flatbuffer (no 'TFL3' file identifier)")
    try:
        return _Reader(buf, source).read(name)
    except ModelError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, UnicodeDecodeError, MemoryError,
            RecursionError, AttributeError) as exc:
        raise ModelError(f"{source}: truncated or corrupted TFLite file ({type(exc).__name__}: {exc})") from None


class _Reader:
    def __init__(self, buf: bytes, source: str) -> None:
        self.buf = buf
        self.source = source
        self.model = tflite.Model.GetRootAsModel(buf, 0)

    # -- helpers ------------------------------------------------------------------------------
    def _fail(self, msg: str) -> ModelError:
        return ModelError(f"{self.source}: {msg}")

    def _length(self, n: int, what: str, elem_size: int = 4) -> int:
        """A vector length that fits in the file, or a 'corrupted' error."""
        if n < 0 or n * elem_size > len(self.buf):
            raise self._fail(f"truncated or corrupted TFLite file ({what} claims {n} entries)")
        return n

    # -- main ---------------------------------------------------------------------------------
    def read(self, name: str) -> Graph:
        model = self.model
        if self._length(model.SubgraphsLength(), "subgraphs") == 0:
            raise self._fail("model has no subgraph")
        sub = model.Subgraphs(0)
        op_codes = [model.OperatorCodes(i) for i in range(self._length(model.OperatorCodesLength(), "operator codes"))]
        n_buffers = self._length(model.BuffersLength(), "buffers")

        tensors = [self._tensor(sub, i, n_buffers) for i in range(self._length(sub.TensorsLength(), "tensors"))]
        ops: list[Op] = []
        for i in range(self._length(sub.OperatorsLength(), "operators")):
            ops.append(self._op(sub.Operators(i), i, op_codes, len(tensors)))
        inputs = [int(t) for t in self._int_vector(sub.InputsAsNumpy(), sub.InputsLength(), "subgraph inputs")]
        outputs = [int(t) for t in self._int_vector(sub.OutputsAsNumpy(), sub.OutputsLength(), "subgraph outputs")]
        for t in inputs + outputs:
            if not 0 <= t < len(tensors):
                raise self._fail(f"truncated or corrupted TFLite file (graph input/output tensor {t} out of range)")
        if not inputs or not outputs:
            raise self._fail("model has no inputs or no outputs")
        graph = Graph(tensors=tensors, ops=_topological(ops, tensors, inputs, self._fail), inputs=inputs,
                      outputs=outputs, name=name)
        self._check_integer_model(graph)
        try:
            validate_graph(graph)
        except ModelError as exc:
            raise self._fail(str(exc)) from None
        return graph

    def _int_vector(self, arr: object, length: int, what: str) -> np.ndarray:
        self._length(length, what)
        if isinstance(arr, int):  # flatbuffers returns 0 for an absent vector
            return np.zeros(0, dtype=np.int32)
        return np.asarray(arr)

    def _tensor(self, sub: tflite.SubGraph, index: int, n_buffers: int) -> Tensor:
        t = sub.Tensors(index)
        raw_name = t.Name()
        tname = raw_name.decode("utf-8", errors="replace") if raw_name else f"tensor_{index}"
        type_name = _TENSOR_TYPES.get(t.Type(), f"type {t.Type()}")
        shape = tuple(int(d) for d in self._int_vector(t.ShapeAsNumpy(), t.ShapeLength(), "tensor shape"))
        if len(shape) > _MAX_RANK or any(d <= 0 for d in shape):
            if any(d < 0 for d in shape):
                raise self._fail(f"tensor '{tname}' has a dynamic shape {list(shape)}; give the model static shapes")
            if len(shape) > _MAX_RANK or any(d == 0 for d in shape):
                raise self._fail(f"tensor '{tname}' has an invalid shape {list(shape)}")
        if math.prod(shape) > _MAX_ELEMENTS:
            raise self._fail(f"tensor '{tname}' has an implausible shape {list(shape)} (over {_MAX_ELEMENTS} elements)")
        signature = self._int_vector(t.ShapeSignatureAsNumpy(), t.ShapeSignatureLength(), "shape signature")
        if signature.size and any(int(d) < 0 for i, d in enumerate(signature) if not (i == 0 and shape[:1] == (1,))):
            raise self._fail(f"tensor '{tname}' has a dynamic shape {signature.tolist()}; give the model static shapes "
                             "(a dynamic batch of 1 is fine)")
        if t.Sparsity() is not None:
            raise self._fail(f"tensor '{tname}' is sparse; sparse tensors are not supported")
        if t.IsVariable():
            raise self._fail(f"tensor '{tname}' is a variable tensor; stateful models are not supported")
        dtype = _DTYPES.get(type_name)
        bits = 4 if type_name == "INT4" else 8

        data = None
        bidx = t.Buffer()
        if not 0 <= bidx < max(n_buffers, 1):
            raise self._fail(f"truncated or corrupted TFLite file (tensor '{tname}' refers to buffer {bidx})")
        raw = self._buffer_bytes(bidx) if n_buffers else None
        if raw is not None and len(raw):
            if dtype is None:
                raise self._fail(f"tensor '{tname}' has unsupported type {type_name}")
            data = self._constant(raw, dtype, shape, tname, bits)

        quant = self._quant(t.Quantization(), shape, tname)
        return Tensor(index=index, name=tname, shape=shape, dtype=dtype or type_name.lower(), quant=quant,
                      data=data, bits=bits, signed=dtype not in ("uint8",))

    def _buffer_bytes(self, bidx: int) -> Optional[bytes]:
        b = self.model.Buffers(bidx)
        if b is None:
            return None
        offset, size = b.Offset(), b.Size()
        if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
            if offset + size > len(self.buf):
                raise self._fail(f"truncated or corrupted TFLite file (buffer {bidx} past the end of the file)")
            return self.buf[offset:offset + size]
        n = b.DataLength()
        if n == 0:
            return None
        self._length(n, f"buffer {bidx}", elem_size=1)
        arr = b.DataAsNumpy()
        return arr.tobytes()

    def _constant(self, raw: bytes, dtype: str, shape: tuple[int, ...], tname: str, bits: int) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if bits == 4:
            need = (count + 1) // 2
            if len(raw) != need:
                raise self._fail(f"truncated or corrupted TFLite file (int4 tensor '{tname}' has {len(raw)} bytes, "
                                 f"needs {need})")
            packed = np.frombuffer(raw, dtype=np.uint8).astype(np.int16)
            nibbles = np.stack([packed & 0xF, packed >> 4], axis=1).ravel()[:count]
            return np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.int8).reshape(shape)
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != count * itemsize:
            raise self._fail(f"truncated or corrupted TFLite file (tensor '{tname}' has {len(raw)} bytes of data, "
                             f"shape {list(shape)} needs {count * itemsize})")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape).copy()

    def _quant(self, q: Optional[tflite.QuantizationParameters], shape: tuple[int, ...], tname: str
               ) -> Optional[QuantParams]:
        if q is None:
            return None
        if q.DetailsType() != 0:
            raise self._fail(f"tensor '{tname}' uses custom quantization details, which are not supported")
        n_scale = self._length(q.ScaleLength(), "quantization scales")
        if n_scale == 0:
            return None
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).copy()
        n_zp = self._length(q.ZeroPointLength(), "quantization zero points", elem_size=8)
        zp = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).copy() if n_zp else np.zeros(n_scale, np.int64)
        axis = int(q.QuantizedDimension())
        if zp.size != scale.size:
            if zp.size == 1:
                zp = np.full(scale.size, zp[0], dtype=np.int64)
            else:
                raise self._fail(f"tensor '{tname}' has {scale.size} scales but {zp.size} zero points")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self._fail(f"tensor '{tname}' has a non-positive or non-finite quantization scale")
        if scale.size > 1 and (not 0 <= axis < len(shape) or shape[axis] != scale.size):
            raise self._fail(f"tensor '{tname}' has {scale.size} per-channel scales for shape {list(shape)} "
                             f"along axis {axis}")
        return QuantParams(scale=scale, zero_point=zp, axis=axis)

    def _op(self, o: tflite.Operator, index: int, op_codes: list, n_tensors: int) -> Op:
        code_index = o.OpcodeIndex()
        if not 0 <= code_index < len(op_codes):
            raise self._fail(f"truncated or corrupted TFLite file (op {index} has opcode index {code_index})")
        oc = op_codes[code_index]
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        kind = _OP_NAMES.get(code, f"BUILTIN_{code}")
        if kind == "CUSTOM":
            custom = oc.CustomCode()
            kind_desc = f"CUSTOM ({custom.decode('utf-8', errors='replace') if custom else '?'})"
            raise UnsupportedOpError(kind_desc, index, "custom ops are not supported")
        if kind not in SUPPORTED_OPS:
            raise UnsupportedOpError(kind, index, f"the reader handles {', '.join(SUPPORTED_OPS)}")
        inputs = [int(t) for t in self._int_vector(o.InputsAsNumpy(), o.InputsLength(), "op inputs")]
        outputs = [int(t) for t in self._int_vector(o.OutputsAsNumpy(), o.OutputsLength(), "op outputs")]
        for t in inputs + outputs:
            if not -1 <= t < n_tensors or (t == -1 and t in outputs):
                raise self._fail(f"truncated or corrupted TFLite file (op {index} {kind} refers to tensor {t})")
        if not outputs:
            raise self._fail(f"truncated or corrupted TFLite file (op {index} {kind} has no output)")
        attrs = _ATTR_READERS.get(kind, _no_attrs)(o.BuiltinOptions(), kind, index)
        return Op(index=index, kind=kind, inputs=inputs, outputs=outputs, attrs=attrs)

    def _check_integer_model(self, graph: Graph) -> None:
        """Refuse float-only and hybrid models: float is allowed only at the model's edges."""
        for op in graph.ops:
            if op.kind in _COMPUTE_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
                weights = graph.tensors[op.inputs[1]]
                if weights.dtype.startswith("float"):
                    raise self._fail(
                        f"float-only model: op {op.index} {op.kind} has float weights '{weights.name}'; the project "
                        "deploys full-integer (int8) models, convert with full integer quantization")
        for op in graph.ops:
            if op.kind in ("QUANTIZE", "DEQUANTIZE"):
                continue
            for t in op.inputs + op.outputs:
                if t >= 0 and graph.tensors[t].dtype.startswith("float"):
                    raise self._fail(
                        f"hybrid model: op {op.index} {op.kind} uses float tensor '{graph.tensors[t].name}'; the "
                        "project deploys full-integer (int8) models, convert with full integer quantization")
            if op.kind in _COMPUTE_OPS + ("ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX",
                                          "LOG_SOFTMAX", "LOGISTIC", "HARD_SWISH", "CONCATENATION"):
                for t in op.inputs[:1] + op.outputs:
                    if t >= 0 and graph.tensors[t].quant is None:
                        raise self._fail(f"op {op.index} {op.kind}: tensor '{graph.tensors[t].name}' has no "
                                         "quantization parameters")


# -- op attributes ------------------------------------------------------------------------------

def _activation(code: int, kind: str, index: int) -> str:
    name = _ACTIVATIONS.get(code)
    if name is None:
        raise ModelError(f"op {index} {kind} has an unknown fused activation {code}")
    if name not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6"):
        raise UnsupportedOpError(kind, index, f"fused activation {name} is not supported")
    return name


def _padding(code: int, kind: str, index: int) -> str:
    name = _PADDINGS.get(code)
    if name is None:
        raise ModelError(f"op {index} {kind} has an unknown padding {code}")
    return name


def _init(table: object, options_cls: type) -> Optional[object]:
    if table is None:
        return None
    opts = options_cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _positive(value: int, what: str, kind: str, index: int) -> int:
    if value < 1:
        raise ModelError(f"op {index} {kind} has an invalid {what} {value}")
    return int(value)


def _conv_attrs(table: object, kind: str, index: int) -> OpAttrs:
    if kind == "CONV_2D":
        o = _init(table, tflite.Conv2DOptions)
        if o is None:
            return ConvAttrs()
        depth_multiplier = 1
    else:
        o = _init(table, tflite.DepthwiseConv2DOptions)
        if o is None:
            return ConvAttrs()
        depth_multiplier = _positive(o.DepthMultiplier(), "depth multiplier", kind, index)
    return ConvAttrs(
        stride=(_positive(o.StrideH(), "stride", kind, index), _positive(o.StrideW(), "stride", kind, index)),
        dilation=(_positive(o.DilationHFactor(), "dilation", kind, index),
                  _positive(o.DilationWFactor(), "dilation", kind, index)),
        padding=_padding(o.Padding(), kind, index),
        activation=_activation(o.FusedActivationFunction(), kind, index),
        depth_multiplier=depth_multiplier,
    )


def _pool_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.Pool2DOptions)
    if o is None:
        raise ModelError(f"op {index} {kind} has no pooling options")
    return PoolAttrs(
        filter=(_positive(o.FilterHeight(), "filter size", kind, index),
                _positive(o.FilterWidth(), "filter size", kind, index)),
        stride=(_positive(o.StrideH(), "stride", kind, index), _positive(o.StrideW(), "stride", kind, index)),
        padding=_padding(o.Padding(), kind, index),
        activation=_activation(o.FusedActivationFunction(), kind, index),
    )


def _fc_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.FullyConnectedOptions)
    if o is None:
        return FullyConnectedAttrs()
    if o.WeightsFormat() != 0:
        raise UnsupportedOpError(kind, index, "shuffled weights format is not supported")
    return FullyConnectedAttrs(activation=_activation(o.FusedActivationFunction(), kind, index),
                               keep_num_dims=bool(o.KeepNumDims()))


def _add_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
    return ElementwiseAttrs(activation=_activation(o.FusedActivationFunction(), kind, index) if o else "NONE")


def _concat_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.ConcatenationOptions)
    if o is None:
        return ConcatAttrs(axis=0)
    return ConcatAttrs(axis=int(o.Axis()), activation=_activation(o.FusedActivationFunction(), kind, index))


def _reduce_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.ReducerOptions)
    return ReduceAttrs(keep_dims=bool(o.KeepDims()) if o else False)


def _softmax_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.SoftmaxOptions)
    beta = float(o.Beta()) if o else 1.0
    if not math.isfinite(beta):
        raise ModelError(f"op {index} {kind} has a non-finite beta")
    return SoftmaxAttrs(beta=beta)


def _resize_attrs(table: object, kind: str, index: int) -> OpAttrs:
    o = _init(table, tflite.ResizeNearestNeighborOptions)
    if o is None:
        return ResizeAttrs()
    return ResizeAttrs(align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters()))


def _no_attrs(table: object, kind: str, index: int) -> OpAttrs:
    return NoAttrs()


_ATTR_READERS: dict[str, Callable[[object, str, int], OpAttrs]] = {
    "CONV_2D": _conv_attrs,
    "DEPTHWISE_CONV_2D": _conv_attrs,
    "FULLY_CONNECTED": _fc_attrs,
    "ADD": _add_attrs,
    "MUL": _add_attrs,
    "AVERAGE_POOL_2D": _pool_attrs,
    "MAX_POOL_2D": _pool_attrs,
    "CONCATENATION": _concat_attrs,
    "MEAN": _reduce_attrs,
    "SOFTMAX": _softmax_attrs,
    "RESIZE_NEAREST_NEIGHBOR": _resize_attrs,
}


def _topological(ops: list[Op], tensors: list[Tensor], inputs: list[int],
                 fail: Callable[[str], ModelError]) -> list[Op]:
    """Ops in an order where every op runs after the producers of its inputs.

    TFLite stores ops in execution order, which is kept when it is already valid.
    """
    available = set(inputs) | {t.index for t in tensors if t.is_const}
    producer: dict[int, Op] = {}
    for op in ops:
        for t in op.outputs:
            if t in producer:
                raise fail(f"tensor '{tensors[t].name}' is written by op {producer[t].index} and op {op.index}")
            producer[t] = op
    for op in ops:
        for t in op.inputs:
            if t >= 0 and t not in available and t not in producer:
                raise fail(f"op {op.index} {op.kind} reads tensor '{tensors[t].name}' that nothing produces")
    if all(t < 0 or t in available or _before(producer[t], op) for op in ops for t in op.inputs):
        return list(ops)
    # Kahn's algorithm, taking ready ops in file order.
    import heapq

    waiting = {op.index: sum(1 for t in set(op.inputs) if t >= 0 and t not in available) for op in ops}
    readers: dict[int, list[Op]] = {}
    for op in ops:
        for t in set(op.inputs):
            if t >= 0 and t not in available:
                readers.setdefault(t, []).append(op)
    by_index = {op.index: op for op in ops}
    heap = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    order: list[Op] = []
    while heap:
        op = by_index[heapq.heappop(heap)]
        order.append(op)
        for t in op.outputs:
            for reader in readers.get(t, []):
                waiting[reader.index] -= 1
                if waiting[reader.index] == 0:
                    heapq.heappush(heap, reader.index)
    if len(order) != len(ops):
        stuck = next(op for op in ops if waiting[op.index] > 0)
        raise fail(f"the ops form a cycle (op {stuck.index} {stuck.kind} can never run)")
    return order


def _before(a: Op, b: Op) -> bool:
    return a.index < b.index
