"""TFLite model (or project graph) -> Relax IRModule in QDQ form.

Why not only ``tvm.relax.frontend.tflite.from_tflite``: TVM 0.27's frontend imports the MLPerf
Tiny models but refuses quantized PAD, TRANSPOSE and RESIZE_NEAREST_NEIGHBOR (DESIGN section 2),
which the MCUNet family uses, and it loses the link between Relax variables and the model's
tensors. This importer builds the module from :class:`tvm_mixq.graph.Graph` (the project's
reader) with ``relax.BlockBuilder`` in the same QDQ style as TVM's frontend, so the same patterns
(:mod:`tvm_mixq.relax.patterns`) partition both:

* arithmetic ops: ``R.dequantize`` of each quantized input, the float op, ``R.quantize`` to the
  output's parameters, then ``R.clip`` to the fused activation's quantized range (TFLite clamps
  in the integer domain, so this is where the clip sits);
* convolutions keep TFLite's weight layout (``OHWI``; depthwise ``[1, kh, kw, C]`` reshaped to
  ``HWOI`` after dequantization, as TVM's frontend does) and dequantize the int32 bias with
  ``scale_in * scale_w``;
* layout ops whose input and output share quantization (PAD, RESHAPE, TRANSPOSE,
  RESIZE_NEAREST_NEIGHBOR, MAX_POOL_2D, CONCATENATION, RELU/RELU6) run on the integers directly,
  which is exact; PAD pads with the input's zero point.

Every integer activation is bound to a variable named ``t<tensor index>`` (model inputs are
parameters ``input_0``, ...), and the module attribute ``mixq.tensors`` maps each such name to
``[tensor index, producing op index]`` (-1 for a model input) and ``mixq.tensor_names`` to the
TFLite tensor name, so every later stage can find its way back to the graph.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import tvm
from tvm import relax
from tvm.relax import op as R

from ..errors import ModelError, UnsupportedOpError
from ..graph import (
    ConcatAttrs,
    ConvAttrs,
    ElementwiseAttrs,
    FullyConnectedAttrs,
    Graph,
    Op,
    PoolAttrs,
    QuantParams,
    ReduceAttrs,
    ResizeAttrs,
    SoftmaxAttrs,
    Tensor,
)
from ..reference import ops as ref_ops
from . import config as _config  # noqa: F401  (registers the mixq.* PassContext keys)

log = logging.getLogger(__name__)

#: Module attributes the importer sets.
ATTR_TENSORS = "mixq.tensors"
ATTR_TENSOR_NAMES = "mixq.tensor_names"
ATTR_MODEL = "mixq.model"

_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def from_tflite(model: Union[str, os.PathLike, bytes, Graph], frontend: str = "mixq") -> tvm.IRModule:
    """Import a TFLite model into a Relax IRModule with a ``main`` function in QDQ form.

    Parameters
    ----------
    model
        Path of a ``.tflite`` file, its bytes, or a :class:`tvm_mixq.graph.Graph`.
    frontend
        ``"mixq"`` (this importer, every op of the reader's list) or ``"tvm"`` (TVM's own
        ``relax.frontend.tflite.from_tflite``, for comparison; refuses quantized PAD, TRANSPOSE,
        RESIZE_NEAREST_NEIGHBOR).

    Raises
    ------
    ModelError
        Unreadable model, or an op the chosen frontend does not import.
    """
    if frontend == "tvm":
        return _from_tvm_frontend(model)
    if frontend != "mixq":
        raise ModelError(f"unknown frontend {frontend!r}; use 'mixq' or 'tvm'")
    if isinstance(model, Graph):
        graph = model
    else:
        from ..reader.tflite_reader import read_tflite, read_tflite_buffer

        graph = read_tflite_buffer(model) if isinstance(model, (bytes, bytearray)) else read_tflite(model)
    return import_graph(graph)


def _from_tvm_frontend(model: Union[str, os.PathLike, bytes, Graph]) -> tvm.IRModule:
    import tflite
    from tvm.relax.frontend.tflite import from_tflite as tvm_from_tflite

    if isinstance(model, Graph):
        raise ModelError("the 'tvm' frontend needs the .tflite file or its bytes, not a graph")
    try:
        buf = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    except OSError as exc:
        raise ModelError(f"{model}: cannot read: {exc.strerror or exc}") from None
    try:
        return tvm_from_tflite(tflite.Model.GetRootAsModel(buf, 0))
    except tvm.error.OpNotImplemented as exc:
        raise ModelError(f"TVM's TFLite frontend refuses the model: {str(exc).strip().splitlines()[0]}") from None


def import_graph(graph: Graph) -> tvm.IRModule:
    """Build the Relax module of a project graph (see the module docstring for its form)."""
    return _Importer(graph).run()


# -- helpers ----------------------------------------------------------------------------------------


def activation_range(activation: str, quant: QuantParams, dtype: str) -> Optional[tuple[int, int]]:
    """Quantized clamp of a fused activation (None for NONE): the reference's
    :func:`tvm_mixq.reference.ops.activation_range` (TFLite's CalculateActivationRangeQuantized)."""
    if activation == "NONE":
        return None
    if activation not in ("RELU", "RELU6", "RELU_N1_TO_1"):
        raise ModelError(f"fused activation {activation} is not supported")
    scale, zp = quant.scalar()
    return ref_ops.activation_range(activation, scale, zp, dtype)


def same_padding(in_size: int, out_size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after) of one spatial axis (:func:`tvm_mixq.reference.ops.same_padding`)."""
    return ref_ops.same_padding(in_size, kernel, stride, dilation, out_size)


def _same_quant(a: Optional[QuantParams], b: Optional[QuantParams]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (a.scale.shape == b.scale.shape and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


class _Importer:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.bb = relax.BlockBuilder()
        self.values: dict[int, relax.Expr] = {}
        self.var_info: dict[str, list[int]] = {}
        self.var_names: dict[str, str] = {}
        self.handlers: dict[str, Callable[[Op], None]] = {
            "CONV_2D": self._conv,
            "DEPTHWISE_CONV_2D": self._conv,
            "FULLY_CONNECTED": self._fully_connected,
            "ADD": self._elementwise,
            "MUL": self._elementwise,
            "AVERAGE_POOL_2D": self._avg_pool,
            "MAX_POOL_2D": self._max_pool,
            "MEAN": self._mean,
            "PAD": self._pad,
            "RESHAPE": self._reshape,
            "SOFTMAX": self._softmax,
            "LOG_SOFTMAX": self._softmax,
            "QUANTIZE": self._quantize,
            "DEQUANTIZE": self._dequantize_op,
            "TRANSPOSE": self._transpose,
            "CONCATENATION": self._concat,
            "RESIZE_NEAREST_NEIGHBOR": self._resize_nearest,
            "LOGISTIC": self._unary_float,
            "HARD_SWISH": self._unary_float,
            "RELU": self._relu,
            "RELU6": self._relu,
        }

    # -- driver -----------------------------------------------------------------------------

    def run(self) -> tvm.IRModule:
        g = self.graph
        params = []
        for i, t in enumerate(g.inputs):
            tensor = g.tensors[t]
            var = relax.Var(f"input_{i}", relax.TensorType(list(tensor.shape), tensor.dtype))
            params.append(var)
            self.values[t] = var
            self.var_info[var.name] = [t, -1]
            self.var_names[var.name] = tensor.name
        with self.bb.function("main", params, attrs={"num_input": len(params)}):
            with self.bb.dataflow():
                for op in g.ops:
                    handler = self.handlers.get(op.kind)
                    if handler is None:
                        raise UnsupportedOpError(op.kind, op.index, "no Relax import for this op")
                    handler(op)
                outputs = [self._value(t) for t in g.outputs]
                result = outputs[0] if len(outputs) == 1 else relax.Tuple(outputs)
                out = self.bb.emit_output(result, name_hint="output")
            self.bb.emit_func_output(out)
        mod = self.bb.get()
        mod = mod.with_attr(ATTR_TENSORS, {k: v for k, v in self.var_info.items()})
        mod = mod.with_attr(ATTR_TENSOR_NAMES, dict(self.var_names))
        mod = mod.with_attr(ATTR_MODEL, g.name)
        log.debug("imported %s: %d ops, %d linked tensors", g.name, len(g.ops), len(self.var_info))
        return mod

    # -- values -----------------------------------------------------------------------------

    def _tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def _value(self, index: int) -> relax.Expr:
        if index in self.values:
            return self.values[index]
        tensor = self._tensor(index)
        if tensor.is_const:
            return relax.const(tensor.data, tensor.dtype)
        raise ModelError(f"tensor '{tensor.name}' is used before it is produced")

    def _bind(self, op: Op, expr: relax.Expr, out_index: int = 0) -> relax.Var:
        t = op.outputs[out_index]
        var = self.bb.emit(expr, name_hint=f"t{t}")
        self.values[t] = var
        self.var_info[var.name] = [t, op.index]
        self.var_names[var.name] = self._tensor(t).name
        return var

    def _quant(self, index: int, op: Op) -> QuantParams:
        tensor = self._tensor(index)
        if tensor.quant is None:
            raise ModelError(f"op {op.index} {op.kind}: tensor '{tensor.name}' has no quantization parameters")
        return tensor.quant

    @staticmethod
    def _scale_zp(quant: QuantParams) -> tuple[relax.Expr, relax.Expr]:
        if quant.per_channel:
            return (relax.const(quant.scale.astype(np.float32), "float32"),
                    relax.const(quant.zero_point.astype(np.int32), "int32"))
        return relax.const(float(quant.scale[0]), "float32"), relax.const(int(quant.zero_point[0]), "int32")

    def _dequantize(self, index: int, op: Op) -> relax.Expr:
        tensor = self._tensor(index)
        if tensor.dtype.startswith("float"):
            return self._value(index)
        return self._dequantize_value(self._value(index), self._quant(index, op))

    def _dequantize_value(self, value: relax.Expr, quant: QuantParams) -> relax.Expr:
        scale, zp = self._scale_zp(quant)
        axis = quant.axis if quant.per_channel else -1
        return self.bb.emit(R.dequantize(value, scale, zp, axis=axis, out_dtype="float32"))

    def _requantize_out(self, op: Op, expr: relax.Expr, activation: str = "NONE") -> relax.Var:
        """float result -> quantize to the op's output (+ fused activation clamp) -> bind."""
        out = self._tensor(op.outputs[0])
        if out.dtype.startswith("float"):
            if activation != "NONE":
                raise UnsupportedOpError(op.kind, op.index, "fused activation on a float output")
            return self._bind(op, expr)
        quant = self._quant(out.index, op)
        if quant.per_channel:
            raise UnsupportedOpError(op.kind, op.index, "per-channel quantized activations are not supported")
        scale, zp = self._scale_zp(quant)
        if out.dtype not in _INT_RANGE:
            raise UnsupportedOpError(op.kind, op.index, f"{out.dtype} activations are not supported")
        bounds = activation_range(activation, quant, out.dtype)
        quantized = R.quantize(expr, scale, zp, axis=-1, out_dtype=out.dtype)
        if bounds is None:
            return self._bind(op, quantized)
        q = self.bb.emit(quantized)
        return self._bind(op, R.clip(q, bounds[0], bounds[1]))

    def _clip_int(self, op: Op, expr: relax.Expr, activation: str) -> relax.Var:
        out = self._tensor(op.outputs[0])
        bounds = activation_range(activation, self._quant(out.index, op), out.dtype)
        if bounds is None:
            return self._bind(op, expr)
        return self._bind(op, R.clip(self.bb.emit(expr), bounds[0], bounds[1]))

    def _exact_int(self, op: Op) -> bool:
        """Can this layout op run on the integers (input and output quantized alike)?"""
        src, dst = self._tensor(op.inputs[0]), self._tensor(op.outputs[0])
        return src.dtype == dst.dtype and _same_quant(src.quant, dst.quant)

    def _const_ints(self, index: int, op: Op) -> np.ndarray:
        tensor = self._tensor(index)
        if not tensor.is_const:
            raise UnsupportedOpError(op.kind, op.index, f"input '{tensor.name}' must be a constant")
        return np.asarray(tensor.data).astype(np.int64)

    # -- op handlers --------------------------------------------------------------------------

    def _conv(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, ConvAttrs)
        x_t, w_t, out_t = self._tensor(op.inputs[0]), self._tensor(op.inputs[1]), self._tensor(op.outputs[0])
        if not w_t.is_const:
            raise UnsupportedOpError(op.kind, op.index, "weights must be constant")
        _, in_h, in_w, in_c = x_t.shape
        _, out_h, out_w, _ = out_t.shape
        kh, kw = w_t.shape[1], w_t.shape[2]
        if attrs.padding == "SAME":
            top, bottom = same_padding(in_h, out_h, kh, attrs.stride[0], attrs.dilation[0])
            left, right = same_padding(in_w, out_w, kw, attrs.stride[1], attrs.dilation[1])
        else:
            top = bottom = left = right = 0
        x = self._dequantize(x_t.index, op)
        w = self._dequantize(w_t.index, op)
        if op.kind == "DEPTHWISE_CONV_2D":
            channels = w_t.shape[3]
            w = self.bb.emit(R.reshape(w, (kh, kw, channels, 1)))
            conv = R.nn.conv2d(x, w, strides=attrs.stride, padding=(top, left, bottom, right),
                               dilation=attrs.dilation, groups=in_c, data_layout="NHWC", kernel_layout="HWOI",
                               out_layout="NHWC")
        else:
            if w_t.shape[3] != in_c:
                raise UnsupportedOpError(op.kind, op.index, "grouped convolution is not supported")
            conv = R.nn.conv2d(x, w, strides=attrs.stride, padding=(top, left, bottom, right),
                               dilation=attrs.dilation, groups=1, data_layout="NHWC", kernel_layout="OHWI",
                               out_layout="NHWC")
        y = self._add_bias(op, self.bb.emit(conv), x_t, w_t)
        self._requantize_out(op, y, attrs.activation)

    def _add_bias(self, op: Op, y: relax.Expr, x_t: Tensor, w_t: Tensor) -> relax.Expr:
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return y
        b_t = self._tensor(op.inputs[2])
        if not b_t.is_const:
            raise UnsupportedOpError(op.kind, op.index, "bias must be constant")
        if b_t.dtype.startswith("float"):
            return self.bb.emit(R.add(y, relax.const(b_t.data, b_t.dtype)))
        x_q, w_q = self._quant(x_t.index, op), self._quant(w_t.index, op)
        scale = (np.float64(x_q.scale[0]) * w_q.scale.astype(np.float64)).astype(np.float32)
        zp = np.zeros(scale.shape, np.int32)
        if scale.size == 1:
            b_scale, b_zp = relax.const(float(scale[0]), "float32"), relax.const(0, "int32")
        else:
            b_scale, b_zp = relax.const(scale, "float32"), relax.const(zp, "int32")
        bias = self.bb.emit(R.dequantize(relax.const(b_t.data, b_t.dtype), b_scale, b_zp, axis=0,
                                         out_dtype="float32"))
        return self.bb.emit(R.add(y, bias))

    def _fully_connected(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, FullyConnectedAttrs)
        x_t, w_t, out_t = self._tensor(op.inputs[0]), self._tensor(op.inputs[1]), self._tensor(op.outputs[0])
        if not w_t.is_const:
            raise UnsupportedOpError(op.kind, op.index, "weights must be constant")
        cout, cin = w_t.shape
        x_in = self._value(x_t.index)
        if len(x_t.shape) != 2 or x_t.shape[1] != cin:
            x_in = self.bb.emit(R.reshape(x_in, (x_t.size // cin, cin)))
            x = self._dequantize_value(x_in, self._quant(x_t.index, op))
        else:
            x = self._dequantize(x_t.index, op)
        w = self._dequantize(w_t.index, op)
        y = self.bb.emit(R.matmul(x, self.bb.emit(R.permute_dims(w, [1, 0]))))
        y = self._add_bias(op, y, x_t, w_t)
        flat_shape = (x_t.size // cin, cout)
        if tuple(out_t.shape) == flat_shape:
            self._requantize_out(op, y, attrs.activation)
            return
        # keep_num_dims (or any other output shape): requantize, then reshape the integers.
        out_dtype = out_t.dtype
        quant = self._quant(out_t.index, op)
        scale, zp = self._scale_zp(quant)
        q = self.bb.emit(R.quantize(y, scale, zp, axis=-1, out_dtype=out_dtype))
        bounds = activation_range(attrs.activation, quant, out_dtype)
        if bounds is not None:
            q = self.bb.emit(R.clip(q, bounds[0], bounds[1]))
        self._bind(op, R.reshape(q, out_t.shape))

    def _elementwise(self, op: Op) -> None:
        attrs = op.attrs
        activation = attrs.activation if isinstance(attrs, ElementwiseAttrs) else "NONE"
        a = self._dequantize(op.inputs[0], op)
        b = self._dequantize(op.inputs[1], op)
        y = self.bb.emit(R.add(a, b) if op.kind == "ADD" else R.multiply(a, b))
        self._requantize_out(op, y, activation)

    def _pool_padding(self, op: Op, attrs: PoolAttrs) -> tuple[int, int, int, int]:
        x_t, out_t = self._tensor(op.inputs[0]), self._tensor(op.outputs[0])
        if attrs.padding != "SAME":
            return 0, 0, 0, 0
        top, bottom = same_padding(x_t.shape[1], out_t.shape[1], attrs.filter[0], attrs.stride[0], 1)
        left, right = same_padding(x_t.shape[2], out_t.shape[2], attrs.filter[1], attrs.stride[1], 1)
        return top, left, bottom, right

    def _avg_pool(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, PoolAttrs)
        x = self._dequantize(op.inputs[0], op)
        y = self.bb.emit(R.nn.avg_pool2d(x, pool_size=attrs.filter, strides=attrs.stride,
                                         padding=self._pool_padding(op, attrs), count_include_pad=False,
                                         layout="NHWC"))
        self._requantize_out(op, y, attrs.activation)

    def _max_pool(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, PoolAttrs)
        pool = lambda x: R.nn.max_pool2d(x, pool_size=attrs.filter, strides=attrs.stride,  # noqa: E731
                                         padding=self._pool_padding(op, attrs), layout="NHWC")
        if self._exact_int(op):
            self._clip_int(op, pool(self._value(op.inputs[0])), attrs.activation)
        else:
            self._requantize_out(op, self.bb.emit(pool(self._dequantize(op.inputs[0], op))), attrs.activation)

    def _mean(self, op: Op) -> None:
        attrs = op.attrs
        keep = attrs.keep_dims if isinstance(attrs, ReduceAttrs) else False
        rank = len(self._tensor(op.inputs[0]).shape)
        axes = sorted({int(a) % rank for a in self._const_ints(op.inputs[1], op).ravel()})
        x = self._dequantize(op.inputs[0], op)
        self._requantize_out(op, self.bb.emit(R.mean(x, axis=axes, keepdims=keep)))

    def _pad(self, op: Op) -> None:
        pads = self._const_ints(op.inputs[1], op).reshape(-1, 2)
        x_t = self._tensor(op.inputs[0])
        if pads.shape[0] != len(x_t.shape) or np.any(pads < 0):
            raise UnsupportedOpError(op.kind, op.index, f"paddings {pads.tolist()} do not fit rank {len(x_t.shape)}")
        width = [int(v) for v in pads.ravel()]
        if x_t.dtype.startswith("float"):
            self._bind(op, R.nn.pad(self._value(x_t.index), width, pad_value=0.0))
            return
        zp = int(self._quant(x_t.index, op).zero_point[0])
        if self._exact_int(op):
            self._bind(op, R.nn.pad(self._value(x_t.index), width, pad_value=float(zp)))
        else:
            x = self._dequantize(x_t.index, op)
            self._requantize_out(op, self.bb.emit(R.nn.pad(x, width, pad_value=0.0)))

    def _reshape(self, op: Op) -> None:
        out_t = self._tensor(op.outputs[0])
        if self._exact_int(op):
            self._bind(op, R.reshape(self._value(op.inputs[0]), out_t.shape))
        else:
            x = self._dequantize(op.inputs[0], op)
            self._requantize_out(op, self.bb.emit(R.reshape(x, out_t.shape)))

    def _transpose(self, op: Op) -> None:
        perm = [int(p) for p in self._const_ints(op.inputs[1], op).ravel()]
        if self._exact_int(op):
            self._bind(op, R.permute_dims(self._value(op.inputs[0]), perm))
        else:
            x = self._dequantize(op.inputs[0], op)
            self._requantize_out(op, self.bb.emit(R.permute_dims(x, perm)))

    def _resize_nearest(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, ResizeAttrs)
        out_t = self._tensor(op.outputs[0])
        size = (out_t.shape[1], out_t.shape[2])
        if attrs.align_corners:
            mode, rounding = "align_corners", "round_prefer_ceil"
        elif attrs.half_pixel_centers:
            mode, rounding = "tf_half_pixel_for_nn", "floor"
        else:
            mode, rounding = "asymmetric", "floor"
        resize = lambda x: R.image.resize2d(x, size, layout="NHWC", method="nearest_neighbor",  # noqa: E731
                                            coordinate_transformation_mode=mode, rounding_method=rounding)
        if self._exact_int(op):
            self._bind(op, resize(self._value(op.inputs[0])))
        else:
            self._requantize_out(op, self.bb.emit(resize(self._dequantize(op.inputs[0], op))))

    def _concat(self, op: Op) -> None:
        attrs = op.attrs
        assert isinstance(attrs, ConcatAttrs)
        out_t = self._tensor(op.outputs[0])
        axis = attrs.axis % len(out_t.shape)
        inputs = [t for t in op.inputs if t >= 0]
        exact = all(self._tensor(t).dtype == out_t.dtype and _same_quant(self._tensor(t).quant, out_t.quant)
                    for t in inputs)
        if exact:
            self._clip_int(op, R.concat([self._value(t) for t in inputs], axis=axis), attrs.activation)
        else:
            parts = [self._dequantize(t, op) for t in inputs]
            self._requantize_out(op, self.bb.emit(R.concat(parts, axis=axis)), attrs.activation)

    def _softmax(self, op: Op) -> None:
        x = self._dequantize(op.inputs[0], op)
        beta = op.attrs.beta if isinstance(op.attrs, SoftmaxAttrs) else 1.0
        if beta != 1.0:
            x = self.bb.emit(R.multiply(x, relax.const(beta, "float32")))
        fn = R.nn.softmax if op.kind == "SOFTMAX" else R.nn.log_softmax
        self._requantize_out(op, self.bb.emit(fn(x, axis=-1)))

    def _unary_float(self, op: Op) -> None:
        x = self._dequantize(op.inputs[0], op)
        if op.kind == "LOGISTIC":
            y = R.sigmoid(x)
        else:  # HARD_SWISH: x * relu6(x + 3) / 6
            shifted = self.bb.emit(R.clip(R.add(x, relax.const(3.0, "float32")), 0.0, 6.0))
            y = R.multiply(x, R.divide(shifted, relax.const(6.0, "float32")))
        self._requantize_out(op, self.bb.emit(y))

    def _relu(self, op: Op) -> None:
        activation = "RELU" if op.kind == "RELU" else "RELU6"
        if self._exact_int(op):
            out_t = self._tensor(op.outputs[0])
            bounds = activation_range(activation, self._quant(out_t.index, op), out_t.dtype)
            assert bounds is not None
            self._bind(op, R.clip(self._value(op.inputs[0]), bounds[0], bounds[1]))
        else:
            self._requantize_out(op, self._dequantize(op.inputs[0], op), activation)

    def _quantize(self, op: Op) -> None:
        self._requantize_out(op, self._dequantize(op.inputs[0], op))

    def _dequantize_op(self, op: Op) -> None:
        out_t = self._tensor(op.outputs[0])
        if not out_t.dtype.startswith("float"):
            raise UnsupportedOpError(op.kind, op.index, f"DEQUANTIZE to {out_t.dtype}")
        x = self._dequantize(op.inputs[0], op)
        self._bind(op, x if out_t.dtype == "float32" else R.astype(x, out_t.dtype))
