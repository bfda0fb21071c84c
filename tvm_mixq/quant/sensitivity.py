"""Measured sensitivity: how far the model's output moves when one feature map or one layer's
weights drops to a lower bitwidth, on calibration samples.

Divergence
    The int8 model and a copy with exactly one change (feature map ``t`` at ``b`` bits, or op
    ``o``'s weights at ``b`` bits, quantized as the final plan would quantize them) run on the same
    ``n`` calibration samples. When the model ends in SOFTMAX, the divergence is the mean
    Kullback-Leibler divergence ``KL(p_int8 || p_changed)`` of the softmax of the logits (the
    SOFTMAX input, dequantized, so the int8 output's 1/256 steps do not hide small changes);
    otherwise the mean squared error of the dequantized first output divided by its variance.

Cost
    Only the ops from the first one the change affects onward run (the producer of a feature map,
    the op of the weights), fed with the int8 model's cached activations, so a change near the
    output costs little. :class:`SensitivityProbe` works within a budget of interpreter MACs
    (:data:`DEFAULT_MACS`): the number of samples is chosen so that the expected measurements fit
    (at least ``MIN_SAMPLES``), and :meth:`SensitivityProbe.affordable` tells the search when to
    stop asking (also when a time budget, a safety net on a loaded machine, runs out).
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Optional

import numpy as np

from ..graph import Graph, QuantParams
from .calibration import Calibration
from .cost import op_macs
from .execute import BatchRunner, op_subgraph
from .precision import PrecisionAssignment
from .equalize import equalize
from .requantize import apply_assignment

log = logging.getLogger(__name__)

#: Default and smallest number of calibration samples a probe runs.
DEFAULT_SAMPLES = 64
MIN_SAMPLES = 8
#: Default time budget (seconds) of all measurements of one search: a safety net; the work is set
#: by the MAC budget, so that the result does not depend on the machine's load.
DEFAULT_SECONDS = 12.0
#: Default budget of all measurements of one search, in reference-interpreter MACs (the samples
#: times the MACs each measurement runs). The interpreter runs about 4 ns per MAC here, so this is
#: about 8 s.
DEFAULT_MACS = 2.0e9


def tail_shares(graph: Graph) -> Callable[[str, int], float]:
    """(kind, index) -> fraction of the model's MACs from the first op a change affects onward."""
    position = {op.index: i for i, op in enumerate(graph.ops)}
    producer = {t: op.index for op in graph.ops for t in op.outputs}
    macs = [op_macs(graph, op) for op in graph.ops]
    total = float(sum(macs)) or 1.0
    share = [sum(macs[i:]) / total for i in range(len(macs))]

    def of(kind: str, index: int) -> float:
        return share[position[producer[index]] if kind == "act" else position[index]]

    return of


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class SensitivityProbe:
    """Output divergence of single-change assignments (see the module docstring).

    Parameters
    ----------
    graph : the int8 graph; calib : its calibration (must hold ``inputs``).
    act_quant : (tensor, bits) -> the sub-byte quantization the plan would give that feature map.
    float_weights, hessians : as for :func:`~tvm_mixq.quant.requantize.apply_assignment`.
    samples : calibration samples to run (at most); seconds : time budget of all measurements.
    equalize_strength : a sub-byte feature map is measured range-equalized, as the plan quantizes
        it (:mod:`tvm_mixq.quant.equalize`; ``act_quant`` must then be of the equalized maps).
    """

    def __init__(self, graph: Graph, calib: Calibration, act_quant: Mapping[tuple[int, int], QuantParams],
                 float_weights: Optional[Mapping[int, np.ndarray]] = None, hessians: Optional[Mapping] = None,
                 samples: int = DEFAULT_SAMPLES, seconds: float = DEFAULT_SECONDS,
                 expected_runs: float = 1.0, macs_budget: float = DEFAULT_MACS,
                 equalize_strength: float = 0.0) -> None:
        if calib.inputs is None:
            raise ValueError("measured sensitivity needs the calibration samples (Calibration.inputs)")
        self.graph = graph
        self.calib = calib
        self.equalize_strength = equalize_strength
        self.act_quant = act_quant
        self.float_weights = float_weights
        self.hessians = hessians
        self.seconds = seconds
        self.spent = 0.0
        self.runs = 0
        self.position = {op.index: i for i, op in enumerate(graph.ops)}
        self.producer = {t: op.index for op in graph.ops for t in op.outputs}
        macs = [op_macs(graph, op) for op in graph.ops]
        self.model_macs = float(sum(macs)) or 1.0
        self._tail_share = [sum(macs[i:]) / self.model_macs for i in range(len(macs))]
        # samples: about ``expected_runs`` whole-model runs within the MAC budget (deterministic)
        n = int(macs_budget // (max(expected_runs, 1.0) * self.model_macs))
        n = int(min(len(calib.inputs), samples, max(MIN_SAMPLES, n)))
        self.macs_budget = macs_budget
        self.macs_spent = 0.0
        t0 = time.perf_counter()
        x = calib.inputs[:n]
        values = BatchRunner(graph).run_all(x)
        self.samples = len(x)
        self.values = values
        self.spent += time.perf_counter() - t0
        out = graph.outputs[0]
        prod = graph.ops[self.position[self.producer[out]]] if out in self.producer else None
        self.kind = "kl" if prod is not None and prod.kind == "SOFTMAX" else "mse"
        self.target = prod.inputs[0] if self.kind == "kl" else out
        self.reference = self._real(graph, self.target, values[self.target])
        self._stop = self.position[self.producer[self.target]] + 1 if self.target in self.producer else len(graph.ops)
        log.info("sensitivity probe: %d samples, %s of tensor %d, a whole run %.3f s", self.samples, self.kind,
                 self.target, self.spent)

    def affordable(self, kind: str, index: int) -> bool:
        """Whether measuring this change stays within the MAC budget (and the time budget)."""
        cost = self.tail_share(kind, index) * self.model_macs * self.samples
        return self.macs_spent + cost <= self.macs_budget and not self.out_of_time()

    @staticmethod
    def _real(graph: Graph, tensor: int, q: np.ndarray) -> np.ndarray:
        t = graph.tensors[tensor]
        if t.quant is None:
            return np.asarray(q, np.float64)
        s, zp = t.quant.scalar()
        return s * (np.asarray(q, np.float64) - zp)

    def out_of_time(self) -> bool:
        return self.spent >= self.seconds

    def _divergence(self, got: np.ndarray) -> float:
        ref = self.reference.reshape(self.samples, -1)
        got = got.reshape(self.samples, -1)
        if self.kind == "kl":
            p, q = _softmax(ref), _softmax(got)
            return float(np.mean(np.sum(p * (np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(q, 1e-12))), axis=1)))
        var = float(ref.var()) or 1.0
        return float(np.mean((got - ref) ** 2) / var)

    def measure(self, kind: str, index: int, bits: int) -> float:
        """Divergence of the int8 model with only feature map ``index`` (``kind="act"``) or op
        ``index``'s weights (``kind="weight"``) at ``bits``."""
        t0 = time.perf_counter()
        graph, float_weights, hessians = self.graph, self.float_weights, self.hessians
        if kind == "act":
            a = PrecisionAssignment({index: bits})
            aq = {index: self.act_quant[(index, bits)]} if bits < 8 else {}
            first = self.position[self.producer[index]]
            if bits < 8 and self.equalize_strength > 0:
                eq = equalize(graph, self.calib, [index], self.equalize_strength, float_weights)
                graph, float_weights = eq.graph, eq.float_weights
                hessians = eq.calibration.hessians if hessians is not None else None
        else:
            a = PrecisionAssignment({}, {index: bits})
            aq = {}
            first = self.position[index]
        g = apply_assignment(graph, a, aq, float_weights, None, hessians)
        sub = op_subgraph(g, g.ops[first:self._stop], [self.target])
        feeds = [self.values[t] for t in sub.inputs]
        got_q = BatchRunner(sub).interpreter(self.samples).run(feeds)[0]
        d = self._divergence(self._real(g, self.target, got_q))
        self.spent += time.perf_counter() - t0
        self.runs += 1
        self.macs_spent += self.tail_share(kind, index) * self.model_macs * self.samples
        return max(d, 0.0)

    def tail_share(self, kind: str, index: int) -> float:
        """Fraction of the model's MACs a measurement of this change runs (for time estimates)."""
        first = self.position[self.producer[index]] if kind == "act" else self.position[index]
        return self._tail_share[first]
