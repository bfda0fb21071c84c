"""Project graph -> TFLite flatbuffer bytes.

The inverse of :mod:`tvm_mixq.reader`: what :func:`write_tflite` writes, ``read_tflite_buffer``
reads back to an equal graph, and TFLite / TFLite Micro interpreters load. Ops whose kind is not a
TFLite builtin are written as custom ops; their ``attrs`` must be :class:`CustomAttrs` holding the
custom options bytes (flexbuffer). Tests also use the writer to make small models without
TensorFlow.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import flatbuffers
import numpy as np
import tflite

from ..graph import (
    ConcatAttrs,
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    Op,
    PoolAttrs,
    ReduceAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    Tensor,
)


@dataclass
class CustomAttrs:
    """Attributes of a custom op: its options as written in the flatbuffer."""

    options: bytes = b""


_BUILTIN_CODES = {k: v for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATION_CODES = {k: v for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
_PADDING_CODES = {k: v for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_TYPE_CODES = {
    "float32": tflite.TensorType.FLOAT32,
    "int32": tflite.TensorType.INT32,
    "uint8": tflite.TensorType.UINT8,
    "int64": tflite.TensorType.INT64,
    "bool": tflite.TensorType.BOOL,
    "int16": tflite.TensorType.INT16,
    "int8": tflite.TensorType.INT8,
}


def write_tflite(graph: Graph, description: str = "tvm_mixq") -> bytes:
    """Serialise ``graph`` as a TFLite flatbuffer (schema version 3)."""
    b = flatbuffers.Builder(1024)

    # Buffers: index 0 is the conventional empty buffer; one per constant tensor after it.
    buffer_of: dict[int, int] = {}
    buffers = [_buffer(b, None)]
    for t in graph.tensors:
        if t.is_const:
            buffer_of[t.index] = len(buffers)
            buffers.append(_buffer(b, _tensor_bytes(t)))

    tensors = [_tensor(b, t, buffer_of.get(t.index, 0)) for t in graph.tensors]

    codes: list[tuple[str, bool]] = []
    code_index: dict[str, int] = {}
    for op in graph.ops:
        if op.kind not in code_index:
            code_index[op.kind] = len(codes)
            codes.append((op.kind, op.kind not in _BUILTIN_CODES))
    operators = [_operator(b, op, code_index[op.kind]) for op in graph.ops]
    op_codes = [_operator_code(b, kind, custom) for kind, custom in codes]

    sub_name = b.CreateString(graph.name)
    tensors_vec = _table_vector(b, tflite.SubGraphStartTensorsVector, tensors)
    inputs_vec = _int32_vector(b, graph.inputs)
    outputs_vec = _int32_vector(b, graph.outputs)
    operators_vec = _table_vector(b, tflite.SubGraphStartOperatorsVector, operators)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, inputs_vec)
    tflite.SubGraphAddOutputs(b, outputs_vec)
    tflite.SubGraphAddOperators(b, operators_vec)
    tflite.SubGraphAddName(b, sub_name)
    subgraph = tflite.SubGraphEnd(b)

    desc = b.CreateString(description)
    codes_vec = _table_vector(b, tflite.ModelStartOperatorCodesVector, op_codes)
    subgraphs_vec = _table_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
    buffers_vec = _table_vector(b, tflite.ModelStartBuffersVector, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers_vec)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


# -- pieces -----------------------------------------------------------------------------------------

def _options_module(name: str):
    """The generated module of an options table (the package exports the class under the same name)."""
    return importlib.import_module(f"tflite.{name}")


def _table_vector(b: flatbuffers.Builder, start: Callable, offsets: list[int]) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _int32_vector(b: flatbuffers.Builder, values: list[int]) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.int32))


def _tensor_bytes(t: Tensor) -> bytes:
    assert t.data is not None
    return np.ascontiguousarray(t.data, dtype=np.dtype(t.dtype).newbyteorder("<")).tobytes()


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    vec = None
    if data:
        b.StartVector(1, len(data), 16)  # 16-byte alignment, as TFLite's converter does
        b.head = b.head - len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        vec = b.EndVector()
    tflite.BufferStart(b)
    if vec is not None:
        tflite.BufferAddData(b, vec)
    return tflite.BufferEnd(b)


def _tensor(b: flatbuffers.Builder, t: Tensor, buffer_index: int) -> int:
    name = b.CreateString(t.name)
    shape = _int32_vector(b, list(t.shape))
    quant = None
    if t.quant is not None:
        scale = b.CreateNumpyVector(np.asarray(t.quant.scale, dtype=np.float32))
        zp = b.CreateNumpyVector(np.asarray(t.quant.zero_point, dtype=np.int64))
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scale)
        tflite.QuantizationParametersAddZeroPoint(b, zp)
        tflite.QuantizationParametersAddQuantizedDimension(b, int(t.quant.axis))
        quant = tflite.QuantizationParametersEnd(b)
    if t.dtype not in _TYPE_CODES:
        raise ValueError(f"tensor '{t.name}': cannot write dtype {t.dtype}")
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, _TYPE_CODES[t.dtype])
    tflite.TensorAddBuffer(b, buffer_index)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _operator_code(b: flatbuffers.Builder, kind: str, custom: bool) -> int:
    custom_name = b.CreateString(kind) if custom else None
    code = tflite.BuiltinOperator.CUSTOM if custom else _BUILTIN_CODES[kind]
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, 1)
    if custom_name is not None:
        tflite.OperatorCodeAddCustomCode(b, custom_name)
    return tflite.OperatorCodeEnd(b)


def _operator(b: flatbuffers.Builder, op: Op, code_index: int) -> int:
    inputs = _int32_vector(b, op.inputs)
    outputs = _int32_vector(b, op.outputs)
    custom = None
    options_type, options = 0, None
    if isinstance(op.attrs, CustomAttrs):
        custom = b.CreateNumpyVector(np.frombuffer(op.attrs.options, dtype=np.uint8))
    elif op.kind in _OPTION_WRITERS:
        options_type, options = _OPTION_WRITERS[op.kind](b, op)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, code_index)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, outputs)
    if options is not None:
        tflite.OperatorAddBuiltinOptionsType(b, options_type)
        tflite.OperatorAddBuiltinOptions(b, options)
    if custom is not None:
        tflite.OperatorAddCustomOptions(b, custom)
        tflite.OperatorAddCustomOptionsFormat(b, tflite.CustomOptionsFormat.FLEXBUFFERS)
    return tflite.OperatorEnd(b)


def _conv_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    if op.kind == "CONV_2D":
        m, kind = _options_module("Conv2DOptions"), tflite.BuiltinOptions.Conv2DOptions
        m.Start(b)
    else:
        m, kind = _options_module("DepthwiseConv2DOptions"), tflite.BuiltinOptions.DepthwiseConv2DOptions
        m.Start(b)
        m.AddDepthMultiplier(b, a.depth_multiplier)
    m.AddPadding(b, _PADDING_CODES[a.padding])
    m.AddStrideH(b, a.stride[0])
    m.AddStrideW(b, a.stride[1])
    m.AddDilationHFactor(b, a.dilation[0])
    m.AddDilationWFactor(b, a.dilation[1])
    m.AddFusedActivationFunction(b, _ACTIVATION_CODES[a.activation])
    return kind, m.End(b)


def _pool_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, PoolAttrs)
    m = _options_module("Pool2DOptions")
    m.Start(b)
    m.AddPadding(b, _PADDING_CODES[a.padding])
    m.AddStrideH(b, a.stride[0])
    m.AddStrideW(b, a.stride[1])
    m.AddFilterHeight(b, a.filter[0])
    m.AddFilterWidth(b, a.filter[1])
    m.AddFusedActivationFunction(b, _ACTIVATION_CODES[a.activation])
    return tflite.BuiltinOptions.Pool2DOptions, m.End(b)


def _fc_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, FullyConnectedAttrs)
    m = _options_module("FullyConnectedOptions")
    m.Start(b)
    m.AddFusedActivationFunction(b, _ACTIVATION_CODES[a.activation])
    m.AddKeepNumDims(b, a.keep_num_dims)
    return tflite.BuiltinOptions.FullyConnectedOptions, m.End(b)


def _elementwise_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, ElementwiseAttrs)
    if op.kind == "ADD":
        m, kind = _options_module("AddOptions"), tflite.BuiltinOptions.AddOptions
    else:
        m, kind = _options_module("MulOptions"), tflite.BuiltinOptions.MulOptions
    m.Start(b)
    m.AddFusedActivationFunction(b, _ACTIVATION_CODES[a.activation])
    return kind, m.End(b)


def _concat_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, ConcatAttrs)
    m = _options_module("ConcatenationOptions")
    m.Start(b)
    m.AddAxis(b, a.axis)
    m.AddFusedActivationFunction(b, _ACTIVATION_CODES[a.activation])
    return tflite.BuiltinOptions.ConcatenationOptions, m.End(b)


def _reduce_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, ReduceAttrs)
    m = _options_module("ReducerOptions")
    m.Start(b)
    m.AddKeepDims(b, a.keep_dims)
    return tflite.BuiltinOptions.ReducerOptions, m.End(b)


def _softmax_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, SoftmaxAttrs)
    m = _options_module("SoftmaxOptions")
    m.Start(b)
    m.AddBeta(b, a.beta)
    return tflite.BuiltinOptions.SoftmaxOptions, m.End(b)


def _resize_options(b: flatbuffers.Builder, op: Op) -> tuple[int, int]:
    a = op.attrs
    assert isinstance(a, ResizeAttrs)
    m = _options_module("ResizeNearestNeighborOptions")
    m.Start(b)
    m.AddAlignCorners(b, a.align_corners)
    m.AddHalfPixelCenters(b, a.half_pixel_centers)
    return tflite.BuiltinOptions.ResizeNearestNeighborOptions, m.End(b)


_OPTION_WRITERS: dict[str, Callable[[flatbuffers.Builder, Op], tuple[int, int]]] = {
    "CONV_2D": _conv_options,
    "DEPTHWISE_CONV_2D": _conv_options,
    "AVERAGE_POOL_2D": _pool_options,
    "MAX_POOL_2D": _pool_options,
    "FULLY_CONNECTED": _fc_options,
    "ADD": _elementwise_options,
    "MUL": _elementwise_options,
    "CONCATENATION": _concat_options,
    "MEAN": _reduce_options,
    "SOFTMAX": _softmax_options,
    "RESIZE_NEAREST_NEIGHBOR": _resize_options,
}
