"""Run quantized graphs and mixed-precision plans in the reference interpreter, many samples at once.

Batching
    The reference kernels of :mod:`tvm_mixq.reference.ops` take a leading batch axis. To run ``N``
    samples in one pass, :func:`batched_graph` makes a copy of the graph whose activation tensors
    have batch ``N`` instead of 1, and :class:`~tvm_mixq.reference.interpreter.Interpreter` runs
    it as it runs the model: same preparation, same kernels, so the values are those of ``N``
    single-sample runs (checked by the tests).

Mixed-precision plans (:func:`run_plan`)
    A plan's precision is two graphs from :func:`tvm_mixq.quant.vdqs.build_graphs`: the *normal*
    graph (sub-byte feature maps and weights as the search chose them) and, when VDPC found
    outlier patches, the *outlier* graph (same weights, the stage's inner tensors back at int8).
    Patch-based execution recomputes each patch's receptive field on its own, so patch ``p``'s tile
    of the stage output equals the same tile of a whole-tensor run of the graph whose precision
    ``p`` uses. The stage output is therefore assembled tile by tile from a normal run and an
    outlier run, and the ops after the stage run on it with the normal graph. This is the
    semantics the generated code and the TFLM ops must match bit for bit.
"""
from __future__ import annotations

import copy
from typing import Any, Optional, Sequence

import numpy as np

from ..graph import Graph, Op
from ..reference.interpreter import Interpreter
from .calibration import SampleBatch, feeds

#: Samples per interpreter pass when running many inputs.
EVAL_BATCH = 500


def batched_graph(graph: Graph, n: int) -> Graph:
    """Copy of ``graph`` whose batch-1 activation tensors have batch ``n``."""
    if n == 1:
        return graph
    out = copy.copy(graph)
    tensors = []
    for t in graph.tensors:
        if not t.is_const and len(t.shape) >= 1 and t.shape[0] == 1:
            t = copy.copy(t)
            t.shape = (n,) + tuple(t.shape[1:])
        tensors.append(t)
    out.tensors = tensors
    return out


class BatchRunner:
    """Caches one prepared interpreter per batch size for a graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._interp: dict[int, Interpreter] = {}

    def interpreter(self, n: int) -> Interpreter:
        if n not in self._interp:
            self._interp[n] = Interpreter(batched_graph(self.graph, n))
        return self._interp[n]

    def run_all(self, x: SampleBatch) -> dict[int, np.ndarray]:
        """Every activation tensor for the samples ``x`` (leading batch axis; :class:`~tvm_mixq.
        quant.calibration.Samples` for several inputs), by tensor index."""
        interp = self.interpreter(len(x))
        return interp.run_all(feeds(x))

    def run(self, x: SampleBatch, batch: int = EVAL_BATCH) -> list[np.ndarray]:
        """Model outputs for ``x`` (leading batch axis), ``batch`` samples per pass."""
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            parts.append(self.interpreter(len(chunk)).run(feeds(chunk)))
        return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(self.graph.outputs))]


def run_all(graph: Graph, x: SampleBatch) -> dict[int, np.ndarray]:
    """Every activation tensor of ``graph`` for the samples ``x`` (leading batch axis)."""
    return BatchRunner(graph).run_all(x)


def op_subgraph(graph: Graph, ops: Sequence[Op], outputs: Optional[Sequence[int]] = None) -> Graph:
    """``ops`` of ``graph`` as a graph whose inputs are the activations they read but do not write
    (``outputs``: its outputs; None keeps the graph's)."""
    ops = list(ops)
    written = {t for op in ops for t in op.outputs}
    inputs: list[int] = []
    for op in ops:
        for t in op.inputs:
            if t >= 0 and t not in written and not graph.tensors[t].is_const and t not in inputs:
                inputs.append(t)
    out = copy.copy(graph)
    out.ops = ops
    out.inputs = inputs
    if outputs is not None:
        out.outputs = list(outputs)
    return out


class PlanRunner:
    """Runs a mixed-precision plan (normal graph, optional outlier graph, patch stage)."""

    def __init__(self, normal: Graph, outlier: Optional[Graph] = None, plan: Any = None,
                 outlier_patches: Optional[list[int]] = None) -> None:
        self.normal = BatchRunner(normal)
        stage = getattr(plan, "patch_stage", None) if plan is not None else None
        patches = set(outlier_patches or [])
        self.mixed = outlier is not None and stage is not None and bool(patches)
        if self.mixed:
            self.stage = stage
            self.tiles = [p.output for p in stage.patches if p.index in patches]
            self.outlier = BatchRunner(outlier)
            in_stage = set(stage.ops)
            self.tail_graph = op_subgraph(normal, [op for op in normal.ops if op.index not in in_stage])
            self.tail = BatchRunner(self.tail_graph)

    def run(self, x: SampleBatch, batch: int = EVAL_BATCH) -> list[np.ndarray]:
        if not self.mixed:
            return self.normal.run(x, batch)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), batch):
            parts.append(self._run_chunk(x[start:start + batch]))
        n_out = len(self.tail_graph.outputs)
        return [np.concatenate([p[i] for p in parts], axis=0) for i in range(n_out)]

    def _run_chunk(self, x: SampleBatch) -> list[np.ndarray]:
        normal_vals = self.normal.run_all(x)
        outlier_vals = self.outlier.run_all(x)
        split = self.stage.split_tensor
        assembled = normal_vals[split].copy()
        src = outlier_vals[split]
        for tile in self.tiles:
            sl = (slice(None), slice(tile.h.start, tile.h.stop), slice(tile.w.start, tile.w.stop))
            assembled[sl] = src[sl]
        normal_vals[split] = assembled
        feeds = [normal_vals[t] for t in self.tail_graph.inputs]
        interp = self.tail.interpreter(len(x))
        return interp.run(feeds)
