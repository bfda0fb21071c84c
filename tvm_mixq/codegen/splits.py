"""Channel splits of a :class:`tvm_mixq.plan.Plan` (Pex partial execution) as generated code.

A chain (producer -> channel-wise ops -> optional consumer) runs in a loop over channel slices
(a constant table of ``(c0, channels)`` rows): the producer computes the slice's output channels from
its whole input (weights, bias and multipliers of those channels), each depthwise op maps the slice
to the same slice, and the consumer adds the slice's contribution into a full-size int32
accumulator (``mixq_rt_conv_accumulate``), requantized once after the last slice
(``mixq_rt_requantize_acc``). Without a consumer, each slice is copied into its channels of the
chain's output. The sliced intermediates never exist whole. Numerics: those of
:meth:`tvm_mixq.schedule.execute.PlanExecutor._run_split`. Slices of sub-byte tensors are packed
at their bitwidth (a slice of a 4-bit tensor with an odd channel count starts its pixels mid-byte,
which the kernels and the runtime copies take); the consumer's weights are one byte each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graph import Graph
from ..kernellib import layout
from ..reference import interpreter as ref
from ..reference import lowering
from .layers import CodegenError, Layer, conv_weights, uses_w4_lanes


@dataclass
class SplitPlan:
    """What the emitter needs of one channel-split chain."""

    ops: list[int]
    producer: int
    channelwise: list[int]
    consumer: int | None
    input_tensor: int  # the producer's (whole) input
    output_tensor: int  # the chain's whole output
    sliced: list[int]  # tensors that exist only as slices
    table: np.ndarray  # [factor, 2] int16: first channel, channels
    slice_bytes: dict[int, int]
    acc_bytes: int
    channels: int
    factor: int
    table_name: str = ""
    acc: str = ""  # C expression of the accumulator
    weight_tables: dict[int, str] = field(default_factory=dict)  # op -> C name of its slice pointer table


def prepare_splits(graph: Graph, plan, layers: dict[int, Layer]) -> list[SplitPlan]:
    """Every channel split of ``plan`` for code generation; the weight slices are added to the
    layers' constants.

    Raises
    ------
    CodegenError
        A chain that is not int8 throughout, or whose ops the generator cannot slice.
    """
    out: list[SplitPlan] = []
    for chain in plan.channel_splits:
        prod = layers[chain.producer]
        if prod.template != "conv" or prod.p["kernel"] == "depthwise":
            raise CodegenError(f"channel split producer op {chain.producer} must be a CONV_2D")
        for o in chain.channelwise:
            lo = layers[o]
            if lo.template == "rt_pad" and lo.p["before"][3] == 0 and lo.p["in_shape"][3] == lo.p["out_shape"][3]:
                continue
            if lo.template != "conv" or lo.p["kernel"] != "depthwise" or lo.p["ch_mult"] != 1:
                raise CodegenError(f"channel split op {o} must be a depthwise convolution (multiplier 1) or a "
                                   "spatial PAD")
        if chain.consumer is not None:
            cons = layers[chain.consumer]
            if cons.template != "conv" or cons.p["kernel"] == "depthwise":
                raise CodegenError(f"channel split consumer op {chain.consumer} must be a CONV_2D")
        if chain.consumer is None and chain.channelwise and layers[chain.channelwise[-1]].template == "rt_pad":
            raise CodegenError("a channel split ending in a PAD without a consumer is not generated")
        slices = chain.slices()
        table = np.array([(c0, c1 - c0) for c0, c1 in slices], dtype=np.int16)
        last = chain.consumer if chain.consumer is not None else chain.channelwise[-1] if chain.channelwise \
            else chain.producer
        sliced = [graph.ops[o].outputs[0] for o in [chain.producer, *chain.channelwise]]
        max_cs = max(c1 - c0 for c0, c1 in slices)
        slice_bytes = {t: packed_slice_bytes(graph, t, max_cs) for t in sliced}
        sp = SplitPlan(list(chain.ops), chain.producer, list(chain.channelwise), chain.consumer,
                       graph.ops[chain.producer].inputs[0], graph.ops[last].outputs[0], sliced, table, slice_bytes,
                       0, chain.channels, chain.factor)
        # weight slices
        w = ref._weights(graph, graph.ops[chain.producer], 1)
        # (the producer's bias, the lane bias for A4W4 weights in lane words, is sliced by pointer)
        sp.weight_tables[chain.producer] = _slices(prod, [conv_weights(w[c0:c1], prod.p["bits"], None, 0)[0]
                                                          for c0, c1 in slices], "uint8_t")
        for o in chain.channelwise:
            if layers[o].template == "rt_pad":
                continue
            wd = ref._weights(graph, graph.ops[o], 1)
            wb = layers[o].p["bits"][1]
            sp.weight_tables[o] = _slices(layers[o], [layout.pack_depthwise_weights(wd[..., c0:c1], wb)
                                                      for c0, c1 in slices], "uint8_t")
        if chain.consumer is not None:
            cons = layers[chain.consumer]
            # the runtime accumulates the consumer's slices (no kernel call): two widened pixels of scratch
            cs4 = (max_cs + 3) & ~3
            cons.scratch = 4 * cs4
            if uses_w4_lanes(cons.p):
                # the runtime sums (x - zp) w itself: the plain bias, not the kernel's lane bias
                cons.consts = [a for a in cons.consts if a.name != cons.p["bias"]]
                plain = lowering.lower_conv(graph, graph.ops[chain.consumer]).bias
                cons.p["bias"] = cons.const("b", "int32_t", plain.astype(np.int32)) if plain is not None else None
            wc = ref._weights(graph, graph.ops[chain.consumer], 1)
            sp.weight_tables[chain.consumer] = _slices(cons, [_pad_channels(wc[..., c0:c1], 4) for c0, c1 in slices],
                                                       "int8_t")
            sp.acc_bytes = 4 * graph.tensors[graph.ops[chain.consumer].outputs[0]].size
        out.append(sp)
    return out


def _pad_channels(w: np.ndarray, multiple: int) -> np.ndarray:
    """int8 weights with the last axis padded with zeros to a multiple of ``multiple``."""
    cs = w.shape[-1]
    pad = -cs % multiple
    return np.pad(w.astype(np.int8), [(0, 0)] * (w.ndim - 1) + [(0, pad)])


def packed_slice_bytes(graph: Graph, t: int, channels: int) -> int:
    """Bytes of a ``channels``-channel slice of tensor ``t`` at its bitwidth (packed)."""
    tensor = graph.tensors[t]
    return (tensor.size // tensor.shape[-1] * channels * tensor.bits + 7) // 8


def _slices(layer: Layer, arrays: list[np.ndarray], ctype: str) -> list[str]:
    return [layer.const(f"ws{i}", ctype, a, align=4) for i, a in enumerate(arrays)]
