"""Run a converted graph on the host without TFLM: a kernel runner for the MIXQ ops.

Builtin ops run on the reference interpreter's kernels; each MIXQ op decodes its flexbuffer
options exactly as ``tflm_ops/`` does in Init (same keys, same mapping to the kernel library's
parameter structures), checks its tensors' byte counts as Prepare does, and calls the kernel
library's dispatcher through ctypes on the tensors' raw bytes (packed sub-byte data included).
Tests use it to check the rewriter bit for bit against the reference of the plan on any machine;
the TFLM tests then check the C++ glue in the real interpreter.
"""
from __future__ import annotations

import ctypes
from typing import Optional, Sequence

import numpy as np

from ..errors import MixqError
from ..graph import Graph, Op, Tensor
from ..kernellib.lib import (
    AddParams,
    Bits,
    Context,
    ConvParams,
    Dims,
    FcParams,
    KernelLib,
    PerChannelQuant,
    PoolParams,
    Tile,
)
from ..reference.interpreter import OP_PREPARERS, ReferenceOptions
from ..reference.subbyte import packed_size
from . import custom_options as co


class _Buffers:
    """Tensor values in storage form: raw bytes (uint8 arrays) per tensor index."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.raw: dict[int, np.ndarray] = {}

    def set_value(self, t: int, value: np.ndarray) -> None:
        tensor = self.graph.tensors[t]
        self.raw[t] = np.ascontiguousarray(np.asarray(value).astype(tensor.dtype)).view(np.uint8).reshape(-1)

    def value(self, t: int) -> np.ndarray:
        tensor = self.graph.tensors[t]
        data = tensor.data if tensor.is_const else self.raw[t]
        return np.ascontiguousarray(data).view(np.dtype(tensor.dtype)).reshape(tensor.shape)

    def bytes_of(self, t: int) -> np.ndarray:
        tensor = self.graph.tensors[t]
        if tensor.is_const:
            return np.ascontiguousarray(tensor.data).view(np.uint8).reshape(-1)
        return self.raw[t]


def _dims(v: Sequence[int]) -> Dims:
    return Dims(*(int(x) for x in v))


def _tile(v: Sequence[int]) -> Tile:
    return Tile(int(v[0]), int(v[1]))


def _ptr(a: Optional[np.ndarray]) -> Optional[int]:
    return None if a is None else a.ctypes.data


class HostEmulator:
    """Runs a converted graph (see the module docstring).

    Parameters
    ----------
    converted : the converted graph (:attr:`tvm_mixq.tflm.rewriter.ConversionResult.converted`).
    kernels : the kernel library (built on first use when omitted).
    """

    def __init__(self, converted: Graph, kernels: Optional[KernelLib] = None) -> None:
        self.graph = converted
        self.kernels = kernels or KernelLib()
        ref_options = ReferenceOptions(tflite_float_fc=False)
        self._builtin = {op.index: OP_PREPARERS[op.kind](converted, op, ref_options)
                         for op in converted.ops if op.kind not in co.MIXQ_OPS}

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs for one batch-1 set of inputs (model order)."""
        buf = self._invoke(inputs)
        return [buf.value(t).copy() for t in self.graph.outputs]

    def run_raw(self, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        """The bytes of every activation tensor (packed as stored) after one inference."""
        return {t: v.copy() for t, v in self._invoke(inputs).raw.items()}

    def _invoke(self, inputs: Sequence[np.ndarray]) -> _Buffers:
        buf = _Buffers(self.graph)
        for t, x in zip(self.graph.inputs, inputs):
            buf.set_value(t, x)
        for op in self.graph.ops:
            if op.kind in co.MIXQ_OPS:
                self._mixq(op, buf)
            else:
                args = [None if t < 0 else buf.value(t).astype(np.int64) for t in op.inputs]
                for t, v in zip(op.outputs, self._builtin[op.index](args)):
                    buf.set_value(t, v)
        return buf

    # -- MIXQ ops -------------------------------------------------------------------------------
    def _check_activation(self, op: Op, buf_bytes: int, shape: Sequence[int], bits: int, what: str) -> None:
        want = packed_size(int(np.prod(shape)), bits)
        if buf_bytes != want:
            raise MixqError(f"op {op.index} {op.kind}: {what} holds {buf_bytes} bytes, options say {want}")

    def _out(self, op: Op, shape: Sequence[int], bits: int) -> np.ndarray:
        t: Tensor = self.graph.tensors[op.outputs[0]]
        out = np.zeros(t.nbytes if t.bits == 8 else packed_size(t.size, t.bits), np.uint8)
        self._check_activation(op, out.size, shape, bits, "output")
        return out

    def _call(self, name: str, *args) -> None:
        st = self.kernels.symbol(name)(*args)
        if st != 0:
            raise MixqError(f"{name} returned {st}")

    def _scratch(self, name: str, *args) -> tuple[np.ndarray, Context]:
        size = int(self.kernels.symbol(f"{name}_get_buffer_size")(*args))
        if size < 0:
            raise MixqError(f"{name}: the kernel library rejects these options")
        scratch = np.zeros(size // 4 + 2, np.int32)
        return scratch, Context(scratch.ctypes.data, size)

    def _mixq(self, op: Op, buf: _Buffers) -> None:
        o = co.decode(op.attrs.options)  # type: ignore[union-attr]
        if o.get("version") != co.OPTIONS_VERSION:
            raise MixqError(f"op {op.index} {op.kind}: options version {o.get('version')}")
        if op.kind == co.MIXQ_ADD:
            x1, x2 = buf.bytes_of(op.inputs[0]), buf.bytes_of(op.inputs[1])
            self._check_activation(op, x1.size, o["shape"], o["in1_bits"], "first input")
            self._check_activation(op, x2.size, o["shape"], o["in2_bits"], "second input")
            out = self._out(op, o["shape"], o["out_bits"])
            bits, dims = Bits(o["in1_bits"], o["in2_bits"], o["out_bits"]), _dims(o["shape"])
            p = AddParams(*(o[k] for k in ("in1_zp", "in1_mult", "in1_shift", "in2_zp", "in2_mult", "in2_shift",
                                           "left_shift", "output_zp", "out_mult", "out_shift", "act_min",
                                           "act_max")))
            scratch, ctx = self._scratch("mixq_add", bits, ctypes.byref(dims))
            self._call("mixq_add", bits, ctx, p, dims, _ptr(x1), _ptr(x2), _ptr(out))
        elif op.kind == co.MIXQ_AVERAGE_POOL_2D:
            x = buf.bytes_of(op.inputs[0])
            self._check_activation(op, x.size, o["in_shape"], o["in_bits"], "input")
            out = self._out(op, o["out_shape"], o["out_bits"])
            bits, di, do = Bits(o["in_bits"], 8, o["out_bits"]), _dims(o["in_shape"]), _dims(o["out_shape"])
            p = PoolParams(_tile(o["stride"]), _tile(o["padding"]), _tile(o["filter"]), o["input_zp"],
                           o["output_zp"], o["multiplier"], o["shift"], o["act_min"], o["act_max"])
            scratch, ctx = self._scratch("mixq_avgpool", bits, ctypes.byref(p), ctypes.byref(di), ctypes.byref(do))
            self._call("mixq_avgpool", bits, ctx, p, di, _ptr(x), do, _ptr(out))
        else:
            out = self._weighted(op, o, buf)
        buf.raw[op.outputs[0]] = out

    def _weighted(self, op: Op, o: dict, buf: _Buffers) -> np.ndarray:
        x = buf.bytes_of(op.inputs[0])
        self._check_activation(op, x.size, o["in_shape"], o["in_bits"], "input")
        out = self._out(op, o["out_shape"], o["out_bits"])
        w = buf.bytes_of(op.inputs[1])
        bias = None if op.inputs[2] < 0 else np.ascontiguousarray(buf.value(op.inputs[2]), np.int32)
        requant = np.ascontiguousarray(buf.value(op.inputs[3]), np.int32)
        cout = int(o["out_shape"][3])
        mult, shift = np.ascontiguousarray(requant[0]), np.ascontiguousarray(requant[1])
        q = PerChannelQuant(mult.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                            shift.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        if requant.shape != (2, cout):
            raise MixqError(f"op {op.index}: requant has shape {requant.shape}, expected (2, {cout})")
        bits = Bits(o["in_bits"], o["w_bits"], o["out_bits"])
        di, df, do = _dims(o["in_shape"]), _dims(o["filter_shape"]), _dims(o["out_shape"])
        if op.kind == co.MIXQ_FULLY_CONNECTED:
            p = FcParams(o["input_zp"], o["output_zp"], o["act_min"], o["act_max"])
            name = "mixq_fully_connected"
        else:
            p = ConvParams(o["input_zp"], o["output_zp"], _tile(o["stride"]), _tile(o["padding"]),
                           _tile(o["dilation"]), int(o.get("depth_multiplier", 1)), o["act_min"], o["act_max"])
            if op.kind == co.MIXQ_DEPTHWISE_CONV_2D:
                name = "mixq_depthwise"
            elif df.h == 1 and df.w == 1 and list(o["padding"]) == [0, 0]:
                name = "mixq_pointwise"
            else:
                name = "mixq_conv2d"
        scratch, ctx = self._scratch(name, bits, p, di, df, do)
        self._call(name, bits, ctx, p, q, di, _ptr(x), df, _ptr(w), _ptr(bias), do, _ptr(out))
        del scratch
        return out
