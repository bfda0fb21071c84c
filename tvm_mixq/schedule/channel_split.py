"""Channel-split partial execution (Pex): run a chain slice by slice along the channel axis.

A split chain is ``producer -> channel-wise ops* -> consumer``:

* the *producer* is a CONV_2D; it computes a slice of its output channels from its whole input,
* *channel-wise* ops (depthwise convolution with depth multiplier 1, per-channel pools, unary
  elementwise activations, spatial PAD) map a channel slice to the same slice,
* the *consumer*, when there is one, is a CONV_2D reading the chain's last tensor: it takes one
  input-channel slice at a time and adds its contribution into a full-size int32 accumulator,
  requantized once after the last slice (integer sums are exact, so numerics do not change).
  Without a consumer, the last channel-wise op writes its slices into its whole output tensor.

The sliced intermediates are never whole in memory, and nothing is recomputed. The typical case is
MobileNetV2's ``1x1 expand -> depthwise -> 1x1 project``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..graph import ConvAttrs, Graph, Op
from ..plan import ChannelSplit
from .opinfo import ELEMENTWISE_UNARY, activation_inputs


@dataclass(frozen=True)
class SplitChain:
    """A chain that can run in channel slices (factor still to choose)."""

    producer: int
    channelwise: tuple[int, ...]
    consumer: Optional[int]
    tensors: tuple[int, ...]  # sliced intermediates
    channels: int

    @property
    def ops(self) -> tuple[int, ...]:
        return (self.producer,) + self.channelwise + ((self.consumer,) if self.consumer is not None else ())

    def with_factor(self, graph: Graph, factor: int) -> ChannelSplit:
        factor = max(1, min(factor, self.channels))
        acc = 0
        if self.consumer is not None:
            acc = 4 * graph.tensors[graph.ops[self.consumer].outputs[0]].size
        return ChannelSplit(
            list(self.ops), self.producer, list(self.channelwise), self.consumer, list(self.tensors),
            self.channels, factor, acc,
        )


def _channelwise(graph: Graph, op: Op) -> bool:
    ins = activation_inputs(graph, op)
    if len(ins) != 1 or len(op.outputs) != 1:
        return False
    x, y = graph.tensors[ins[0]], graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[-1] != y.shape[-1]:
        return False
    if op.kind == "DEPTHWISE_CONV_2D":
        return isinstance(op.attrs, ConvAttrs) and op.attrs.depth_multiplier == 1
    if op.kind == "PAD":  # spatial padding only (channel padding would change the slices)
        pads = graph.tensors[op.inputs[1]]
        return pads.data is not None and not np.asarray(pads.data).reshape(-1, 2)[[0, 3]].any()
    return op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D") + ELEMENTWISE_UNARY


def find_split_chains(graph: Graph, exclude: Iterable[int] = ()) -> list[SplitChain]:
    """Every maximal chain that can run in channel slices, ops in ``exclude`` left out."""
    excluded = set(exclude)
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    chains: list[SplitChain] = []

    def only_user(t: int) -> Optional[Op]:
        users = consumers.get(t, [])
        if t in outputs or len(users) != 1 or users[0].index in excluded:
            return None
        return users[0]

    for op in graph.ops:
        if op.kind != "CONV_2D" or op.index in excluded:
            continue
        y = graph.tensors[op.outputs[0]]
        if len(y.shape) != 4:
            continue
        t = op.outputs[0]
        cw: list[int] = []
        sliced = [t]
        consumer: Optional[int] = None
        while True:
            nxt = only_user(t)
            if nxt is None:
                break
            if _channelwise(graph, nxt):
                cw.append(nxt.index)
                t = nxt.outputs[0]
                sliced.append(t)
                continue
            if nxt.kind == "CONV_2D" and activation_inputs(graph, nxt) == [t]:
                consumer = nxt.index
            break
        if consumer is None:
            if not cw:
                continue
            sliced.pop()  # the last channel-wise output is written whole
        chains.append(SplitChain(op.index, tuple(cw), consumer, tuple(sliced), int(y.shape[-1])))
    return chains


def disjoint(chains: Iterable[SplitChain], chosen: Iterable[SplitChain]) -> list[SplitChain]:
    """Chains sharing no op with any chain of ``chosen``."""
    used = {o for c in chosen for o in c.ops}
    return [c for c in chains if not used.intersection(c.ops)]
