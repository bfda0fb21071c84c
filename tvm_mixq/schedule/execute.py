"""Run a scheduled :class:`tvm_mixq.plan.Plan` in the Python reference, patch by patch and slice by
slice, to show that scheduling never changes numerics.

Nothing here re-implements an op's arithmetic: every computation goes through the reference
interpreter's preparers (:data:`tvm_mixq.reference.interpreter.OP_PREPARERS`) or the functional
kernels of :mod:`tvm_mixq.reference.ops`, applied to sub-tensors:

* every patch stage (the first, from the graph input, and the later ones, each from a whole
  intermediate tensor) runs patch by patch; a patch with bitwidths of its own (``Patch.bits``: a
  VDPC outlier patch) runs the stage's ops with the quantization of ``plan.outlier_graph``, and its
  tile of the stage output (whose precision all patches share) goes into the same tensor, as in
  :class:`tvm_mixq.quant.execute.PlanRunner`; a patch-stage convolution runs on its input window
  padded explicitly with the input zero point (what TFLite's padding means), as a VALID
  convolution producing exactly its output tile;
* pools run through :func:`ops.avg_pool` / :func:`ops.max_pool` with the tile's explicit padding
  (padded cells are excluded from the window, as in TFLite);
* a split producer/depthwise runs on a channel slice of its weights, bias and per-channel scales;
* a split consumer adds :func:`ops.conv2d_accumulate` of each input-channel slice into one int32
  accumulator, requantized once at the end.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from ..graph import ConvAttrs, Graph, Op, QuantParams, Tensor
from ..plan import ChannelSplit, PatchStage, Plan
from ..reference import lowering, ops
from ..reference.fixedpoint import requantize
from ..reference.interpreter import OP_PREPARERS, Interpreter, ReferenceOptions
from ..reference.subbyte import qrange
from .opinfo import activation_inputs

_INT_DTYPES = ("int8", "uint8", "int16", "int32")


def _clamp_subbyte(t: Tensor, value: np.ndarray) -> np.ndarray:
    if t.dtype in ("int8", "uint8") and t.bits < 8:
        lo, hi = qrange(t.bits, t.signed)
        return np.clip(value, lo, hi)
    return value


def _slice_quant(q: Optional[QuantParams], c0: int, c1: int) -> Optional[QuantParams]:
    if q is None or not q.per_channel:
        return q
    return QuantParams(q.scale[c0:c1].copy(), q.zero_point[c0:c1].copy(), q.axis)


class PlanExecutor:
    """Executes ``plan`` on int8 inputs; outputs equal the unscheduled interpreter's bit for bit."""

    def __init__(self, plan: Plan, options: ReferenceOptions = ReferenceOptions()) -> None:
        self.plan = plan
        self.options = options
        self.g = plan.graph
        self._kernels: dict[tuple, object] = {}
        self._outlier: Optional["PlanExecutor"] = None

    def _for_patch(self, patch) -> "PlanExecutor":
        """The executor whose graph a patch runs: the outlier graph's for a patch with bitwidths
        of its own."""
        if not patch.bits:
            return self
        if self.plan.outlier_graph is None:
            raise ValueError(f"patch {patch.index} has bitwidths of its own but the plan has no outlier graph")
        if self._outlier is None:
            self._outlier = PlanExecutor(dataclasses.replace(self.plan, graph=self.plan.outlier_graph,
                                                             outlier_graph=None), self.options)
        return self._outlier

    # -- one op on temporary tensors ------------------------------------------------------
    def _single_op(self, op: Op, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...],
                   attrs: object = None, consts: Optional[dict[int, Tensor]] = None, tag: tuple = ()):
        """Kernel of ``op`` prepared on a one-op graph whose activations have the given shapes and
        whose constant inputs may be replaced (``consts``: input position -> tensor)."""
        key = (op.index, tuple(in_shapes), out_shape, tag)
        kernel = self._kernels.get(key)
        if kernel is not None:
            return kernel
        tensors: list[Tensor] = []
        inputs: list[int] = []
        act = iter(in_shapes)
        for pos, t in enumerate(op.inputs):
            if t < 0:
                inputs.append(-1)
                continue
            src = self.g.tensors[t]
            if consts and pos in consts:
                new = dataclasses.replace(consts[pos], index=len(tensors))
            elif src.is_const:
                new = dataclasses.replace(src, index=len(tensors))
            else:
                new = dataclasses.replace(src, index=len(tensors), shape=tuple(next(act)))
            tensors.append(new)
            inputs.append(new.index)
        out_src = self.g.tensors[op.outputs[0]]
        out = dataclasses.replace(out_src, index=len(tensors), shape=tuple(out_shape))
        if consts and -1 in consts:
            out = dataclasses.replace(consts[-1], index=len(tensors), shape=tuple(out_shape))
        tensors.append(out)
        tmp_op = Op(0, op.kind, inputs, [out.index], attrs if attrs is not None else op.attrs)
        graph = Graph(tensors, [tmp_op], [i for i in inputs if i >= 0 and not tensors[i].is_const], [out.index])
        kernel = OP_PREPARERS[op.kind](graph, tmp_op, self.options)
        self._kernels[key] = kernel
        return kernel

    def _const(self, t: int) -> np.ndarray:
        c = self.g.tensors[t]
        return np.asarray(c.data).astype(np.float32 if c.dtype.startswith("float") else np.int64)

    def _run_whole(self, op: Op, values: dict[int, np.ndarray]) -> None:
        key = (op.index, "whole")
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = OP_PREPARERS[op.kind](self.g, op, self.options)
            self._kernels[key] = kernel
        args = [None if t < 0 else values[t] if t in values else self._const(t) for t in op.inputs]
        for t, v in zip(op.outputs, kernel(args)):
            values[t] = _clamp_subbyte(self.g.tensors[t], v)

    # -- patch stage ------------------------------------------------------------------------
    def _tile_op(self, op: Op, window: np.ndarray, pad: tuple[int, int, int, int],
                 out_shape: tuple[int, ...]) -> np.ndarray:
        x_t = self.g.tensors[op.inputs[0]]
        top, bottom, left, right = pad
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            zp = int(x_t.quant.zero_point[0]) if x_t.quant is not None else 0
            xp = np.pad(window, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=zp)
            attrs = dataclasses.replace(op.attrs, padding="VALID")
            kernel = self._single_op(op, [xp.shape], out_shape, attrs)
            return kernel([xp if t == op.inputs[0] else None for t in op.inputs])[0]
        if op.kind == "PAD":
            widths = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], dtype=np.int32)
            pads_t = dataclasses.replace(self.g.tensors[op.inputs[1]], shape=(4, 2), data=widths)
            kernel = self._single_op(op, [window.shape], out_shape, consts={1: pads_t}, tag=pad)
            return kernel([window, widths.astype(np.int64)] + [None] * (len(op.inputs) - 2))[0]
        if op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            return self._pool_tile(op, window, pad)
        raise ValueError(f"op {op.kind} cannot run on a tile")

    def _pool_tile(self, op: Op, window: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
        low = lowering.lower_pool(self.g, op)
        pool = ops.avg_pool if low.average else ops.max_pool
        return pool(window, low.filter, low.stride, pad, low.act_min, low.act_max, **low.oracle_requant())

    def _run_stage(self, values: dict[int, np.ndarray], stage: PatchStage) -> None:
        g = self.g
        split_t = g.tensors[stage.split_tensor]
        result = np.zeros(split_t.shape, dtype=np.int64)
        for patch in stage.patches:
            ex = self._for_patch(patch)
            g = ex.g
            local: dict[int, np.ndarray] = {}
            origin = {t: (tile.h.start, tile.w.start) for t, tile in patch.tensor_tiles.items()}
            inp_tile = patch.tensor_tiles[stage.input_tensor]
            local[stage.input_tensor] = values[stage.input_tensor][
                :, inp_tile.h.start:inp_tile.h.stop, inp_tile.w.start:inp_tile.w.stop, :]

            def view(t: int, h0: int, h1: int, w0: int, w1: int) -> np.ndarray:
                oh, ow = origin[t]
                return local[t][:, h0 - oh:h1 - oh, w0 - ow:w1 - ow, :]

            for ot in patch.op_tiles:
                op = g.ops[ot.op]
                out = op.outputs[0]
                c = g.tensors[out].shape[-1]
                out_shape = (1, ot.output.h.size, ot.output.w.size, c)
                if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
                    win = view(op.inputs[0], ot.window.h.start, ot.window.h.stop, ot.window.w.start, ot.window.w.stop)
                    y = ex._tile_op(op, win, ot.padding.as_tuple(), out_shape)
                else:  # elementwise: every input read over the output tile
                    h0, h1, w0, w1 = ot.output.h.start, ot.output.h.stop, ot.output.w.start, ot.output.w.stop
                    ins = activation_inputs(g, op)
                    shapes = [(1, h1 - h0, w1 - w0, g.tensors[t].shape[-1]) for t in ins]
                    kernel = ex._single_op(op, shapes, out_shape)
                    args = [view(t, h0, h1, w0, w1) if t in ins else None for t in op.inputs]
                    y = kernel(args)[0]
                y = _clamp_subbyte(g.tensors[out], y).reshape(out_shape)
                local[out] = y
                if out == stage.split_tensor:
                    result[:, ot.output.h.start:ot.output.h.stop, ot.output.w.start:ot.output.w.stop, :] = y
        values[stage.split_tensor] = result

    # -- channel splits ---------------------------------------------------------------------
    def _sliced_op(self, op: Op, x: np.ndarray, c0: int, c1: int, weights_axis: int) -> np.ndarray:
        g = self.g
        out_t = g.tensors[op.outputs[0]]
        out_shape = tuple(out_t.shape[:-1]) + (c1 - c0,)
        consts: dict[int, Tensor] = {}
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = g.tensors[op.inputs[1]]
            sl = [slice(None)] * len(w.shape)
            sl[weights_axis] = slice(c0, c1)
            data = np.asarray(w.data)[tuple(sl)]
            consts[1] = dataclasses.replace(w, shape=data.shape, data=data, quant=_slice_quant(w.quant, c0, c1))
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b = g.tensors[op.inputs[2]]
                bd = np.asarray(b.data)[c0:c1]
                consts[2] = dataclasses.replace(b, shape=bd.shape, data=bd, quant=_slice_quant(b.quant, c0, c1))
        kernel = self._single_op(op, [x.shape], out_shape, consts=consts, tag=(c0, c1))
        args = [x if i == 0 else None for i, _ in enumerate(op.inputs)]
        return _clamp_subbyte(out_t, kernel(args)[0])

    def _run_split(self, chain: ChannelSplit, values: dict[int, np.ndarray]) -> None:
        g = self.g
        acc = None
        q = g.ops[chain.consumer] if chain.consumer is not None else None
        last_whole = None
        for c0, c1 in chain.slices():
            x = values[activation_inputs(g, g.ops[chain.producer])[0]]
            y = self._sliced_op(g.ops[chain.producer], x, c0, c1, weights_axis=0)
            for o in chain.channelwise:
                y = self._sliced_op(g.ops[o], y, c0, c1, weights_axis=3)
            if q is not None:
                attrs = q.attrs if isinstance(q.attrs, ConvAttrs) else ConvAttrs()
                x_t, w_t = g.tensors[q.inputs[0]], g.tensors[q.inputs[1]]
                w = np.asarray(w_t.data).astype(np.int64)
                _, pads = ops.compute_padding(x_t.shape[1:3], w.shape[1:3], attrs.stride, attrs.dilation, attrs.padding)
                part = ops.conv2d_accumulate(y, int(x_t.quant.zero_point[0]), w[..., c0:c1], attrs.stride, pads,
                                             attrs.dilation)
                acc = part if acc is None else acc + part
            else:
                out = chain.channelwise[-1]
                t_out = g.ops[out].outputs[0]
                if last_whole is None:
                    last_whole = np.zeros(g.tensors[t_out].shape, dtype=np.int64)
                last_whole[..., c0:c1] = y
        if q is not None:
            values[q.outputs[0]] = self._requantize_consumer(q, acc)
        else:
            values[g.ops[chain.channelwise[-1]].outputs[0]] = last_whole

    def _requantize_consumer(self, q: Op, acc: np.ndarray) -> np.ndarray:
        """Bias, the per-channel multipliers and the fused activation's clamp of ``q``
        (:func:`lowering.lower_conv`), applied once to the summed accumulator."""
        low = lowering.lower_conv(self.g, q)
        if low.bias is not None:
            acc = acc + low.bias
        out = requantize(acc, low.multiplier, low.shift, low.output_zp, low.act_min, low.act_max)
        return _clamp_subbyte(self.g.tensors[q.outputs[0]], out)

    # -- whole plan -------------------------------------------------------------------------
    def run_all(self, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        """Every tensor the schedule materialises whole, by index (sliced/tiled ones absent)."""
        g = self.g
        values: dict[int, np.ndarray] = {}
        for t, x in zip(g.inputs, inputs):
            internal = np.float32 if g.tensors[t].dtype.startswith("float") else np.int64
            values[t] = np.asarray(x).reshape(g.tensors[t].shape).astype(internal)
        stage = self.plan.patch_stage
        stage_ops = set(stage.ops) if stage else set()
        later = {st.ops[0]: st for st in getattr(self.plan, "later_stages", [])}
        for st in later.values():
            stage_ops.update(st.ops)
        in_split = {o: c for c in self.plan.channel_splits for o in c.ops}
        if stage is not None:
            self._run_stage(values, stage)
        for op in g.ops:
            if op.index in later:
                self._run_stage(values, later[op.index])
            if op.index in stage_ops:
                continue
            chain = in_split.get(op.index)
            if chain is not None:
                if chain.producer == op.index:
                    self._run_split(chain, values)
                continue
            self._run_whole(op, values)
        return values

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Model outputs in the model's order and dtypes (batch 1)."""
        values = self.run_all(inputs)
        return [values[t].astype(self.g.tensors[t].dtype).reshape(self.g.tensors[t].shape) for t in self.g.outputs]


def run_plan(plan: Plan, inputs: Sequence[np.ndarray],
             options: ReferenceOptions = ReferenceOptions()) -> list[np.ndarray]:
    """One-shot convenience: ``PlanExecutor(plan, options).run(inputs)``."""
    return PlanExecutor(plan, options).run(inputs)


def check_plan(plan: Plan, inputs: Sequence[np.ndarray], options: ReferenceOptions = ReferenceOptions()) -> bool:
    """True when the scheduled plan and the unscheduled interpreter agree bit for bit."""
    ours = run_plan(plan, inputs, options)
    ref = Interpreter(plan.graph, options).run(list(inputs))
    return all(np.array_equal(a, b) for a, b in zip(ours, ref))
