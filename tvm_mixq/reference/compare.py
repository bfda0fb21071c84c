"""Compare the reference interpreter with TFLite's reference kernels on a model.

What ``mixq check`` runs: ``N`` random inputs (seeded) plus three edge inputs, all minimum, all
maximum and all zeros. For a float input (a model that starts with QUANTIZE) the edge inputs are
the float values that quantize to the minimum and maximum of the QUANTIZE output, and 0.0; its
random inputs are uniform over the float range that quantizes into int8.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import Graph, Tensor
from ..reader import read_tflite
from .interpreter import Interpreter, find_unsupported
from .tflite_runner import TFLiteRunner

log = logging.getLogger(__name__)

EDGE_CASES = ("all_min", "all_max", "zeros")


@dataclass
class CheckResult:
    """Outcome of :func:`check_model` (the JSON of ``mixq check``)."""

    model: str
    bit_exact: bool
    max_abs_diff: Optional[int]  # in integer steps of the output's quantization; None if not run
    unsupported_ops: list[str] = field(default_factory=list)
    samples: int = 0  # random inputs
    edge_cases: list[str] = field(default_factory=list)
    compared: int = 0  # inputs actually compared (random + edge)
    mismatched: list[str] = field(default_factory=list)  # names of inputs whose outputs differ
    reference_ms: Optional[float] = None  # mean time of one reference inference
    tflite_ms: Optional[float] = None

    def to_json(self) -> dict:
        return asdict(self)


def _float_input_quant(graph: Graph, t_index: int) -> tuple[float, int, int, int]:
    """(scale, zero point, qmin, qmax) a float input is quantized with (its QUANTIZE's output)."""
    for op in graph.consumers().get(t_index, []):
        if op.kind == "QUANTIZE":
            out = graph.tensors[op.outputs[0]]
            if out.quant is not None:
                info = np.iinfo(out.dtype)
                return float(out.quant.scale[0]), int(out.quant.zero_point[0]), int(info.min), int(info.max)
    return 1.0 / 128, 0, -128, 127


def edge_input(graph: Graph, t: Tensor, case: str) -> np.ndarray:
    """One edge-case input array for tensor ``t`` (``case`` in :data:`EDGE_CASES`)."""
    if case == "zeros":
        return np.zeros(t.shape, dtype=t.dtype)
    if t.dtype.startswith("float"):
        scale, zp, qmin, qmax = _float_input_quant(graph, t.index)
        q = qmin if case == "all_min" else qmax
        return np.full(t.shape, np.float32(scale) * np.float32(q - zp), dtype=t.dtype)
    info = np.iinfo(t.dtype)
    return np.full(t.shape, info.min if case == "all_min" else info.max, dtype=t.dtype)


def random_input(graph: Graph, t: Tensor, rng: np.random.Generator) -> np.ndarray:
    """A random input array for tensor ``t``: full integer range, or the quantizable float range."""
    if t.dtype.startswith("float"):
        scale, zp, qmin, qmax = _float_input_quant(graph, t.index)
        lo, hi = scale * (qmin - 0.5 - zp), scale * (qmax + 0.5 - zp)
        return rng.uniform(lo, hi, t.shape).astype(t.dtype)
    info = np.iinfo(t.dtype)
    return rng.integers(int(info.min), int(info.max) + 1, t.shape).astype(t.dtype)


def model_inputs(graph: Graph, samples: int, seed: int) -> list[tuple[str, list[np.ndarray]]]:
    """The named input sets :func:`check_model` compares on: edge cases, then random ones."""
    rng = np.random.default_rng(seed)
    tensors = [graph.tensors[i] for i in graph.inputs]
    sets = [(case, [edge_input(graph, t, case) for t in tensors]) for case in EDGE_CASES]
    sets += [(f"random_{k}", [random_input(graph, t, rng) for t in tensors]) for k in range(samples)]
    return sets


def _output_scale(graph: Graph, t_index: int) -> float:
    """Quantization step a float output is dequantized with (1.0 when it is unknown)."""
    op = graph.producers().get(t_index)
    if op is not None and op.kind == "DEQUANTIZE":
        src = graph.tensors[op.inputs[0]]
        if src.quant is not None:
            return float(src.quant.scale[0])
    return 1.0


def output_difference(graph: Graph, ours: list[np.ndarray], theirs: list[np.ndarray]) -> tuple[bool, int]:
    """(all outputs identical, max |difference| in integer steps) of two output lists."""
    exact = True
    worst = 0
    for t_index, a, b in zip(graph.outputs, ours, theirs):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"output shapes differ: {a.shape} vs {b.shape}")
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            same = np.array_equal(a, b, equal_nan=True)
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            diff = diff[np.isfinite(diff)]
            steps = int(math.ceil(float(diff.max()) / _output_scale(graph, t_index))) if diff.size else 0
            steps = max(steps, 0 if same else 1)
        else:
            same = np.array_equal(a, b)
            steps = int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) if a.size else 0
        exact = exact and same
        worst = max(worst, steps)
    return exact, worst


def check_model(path: str | os.PathLike, samples: int = 20, seed: int = 0) -> CheckResult:
    """Run the reference and TFLite (``BUILTIN_REF``) on the same inputs and compare.

    Raises
    ------
    ModelError
        The file cannot be read by the reader (not TFLite, corrupted, dynamic shapes, ...).
    """
    name = os.path.basename(os.fspath(path))
    try:
        graph = read_tflite(path)
    except UnsupportedOpError as exc:
        return CheckResult(name, False, None, unsupported_ops=[f"{exc.op_name} at index {exc.op_index}"])
    unsupported = find_unsupported(graph)
    if unsupported:
        return CheckResult(name, False, None, unsupported_ops=unsupported)
    interp = Interpreter(graph)
    runner = TFLiteRunner(path)
    result = CheckResult(name, True, 0, samples=samples, edge_cases=list(EDGE_CASES))
    ref_time = tfl_time = 0.0
    for label, inputs in model_inputs(graph, samples, seed):
        t0 = time.perf_counter()
        ours = interp.run(inputs)
        t1 = time.perf_counter()
        theirs = runner.run(inputs)
        t2 = time.perf_counter()
        ref_time += t1 - t0
        tfl_time += t2 - t1
        exact, worst = output_difference(graph, ours, theirs)
        result.compared += 1
        result.max_abs_diff = max(result.max_abs_diff or 0, worst)
        if not exact:
            result.bit_exact = False
            result.mismatched.append(label)
            log.info("%s: outputs differ on %s (max %d steps)", name, label, worst)
    if result.compared:
        result.reference_ms = round(1000 * ref_time / result.compared, 3)
        result.tflite_ms = round(1000 * tfl_time / result.compared, 3)
    return result
