"""Calibration: run the reference interpreter on sample inputs and collect value statistics.

Input data
    An ``.npz`` file with the array ``input_0`` of shape ``(N, *model_input_shape[1:])`` and the
    model input's dtype (int8 for the models the project reads), ``N >= 1`` samples along the
    leading batch axis (a single sample may also be given without the batch axis). Data whose shape
    or dtype differs from the model input, that is empty, or that holds NaN or infinity is refused
    with an :class:`~tvm_mixq.errors.InputDataError` naming both sides. A model with several
    inputs takes ``input_0``, ``input_1``, ... (one per input, in the model's order, the same number
    of samples each); in Python its samples are a :class:`Samples` (one array per input).

Fallback without data (:func:`fallback_inputs`)
    A warning is logged and ``FALLBACK_SAMPLES`` (64) synthetic inputs are made from a fixed seed:
    for every input, smooth random images (uniform noise on a grid four times coarser than the input, upsampled by
    repetition) plus fine uniform noise of 1/8 of the range, clipped to the input's quantized
    range ``[-128, 127]``. They exercise every channel at plausible magnitudes but are not natural
    data: bitwidths found from them are a starting point, and outlier thresholds from them are
    looser than from real data. Pass real samples (``--calib``) for deployment.

Statistics
    Per activation tensor (:class:`TensorStats`): count, min/max, mean/std (real values), the
    exact histogram of its int8 values (256 bins), the entropy of that distribution in bits, and
    the mean and the histogram of every channel (used to correct biases for the mean shift of
    weight and activation requantization).
    Per weighted op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED with constant weights): the second
    moments ``sum x x^T`` of its receptive fields (:mod:`tvm_mixq.quant.gptq`), for Hessian-aware
    rounding of sub-byte weights.
    Per patch of the plan's patch stage (:class:`PatchStats`): for every stage tensor, the largest
    and smallest int8 value of the patch's tile in each calibration sample, which is what VDPC
    classifies patches from.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import InputDataError
from ..graph import Graph, Tensor

log = logging.getLogger(__name__)

FALLBACK_SAMPLES = 64
FALLBACK_SEED = 0
#: Samples run through the reference at once.
BATCH = 64

Runner = Callable[[Graph, np.ndarray], dict[int, np.ndarray]]


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram."""
    c = np.asarray(counts, np.float64)
    total = c.sum()
    if total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(-(p * np.log2(p)).sum())


@dataclass
class TensorStats:
    """Calibration statistics of one int8 activation tensor (real values unless said)."""

    tensor: int
    name: str
    scale: float
    zero_point: int
    count: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))  # int8 values -128..127
    qmin: int = 127
    qmax: int = -128
    channel_sum: Optional[np.ndarray] = None  # sum of int8 values per channel (last axis)
    channel_hist: Optional[np.ndarray] = None  # [channels, 256] int8 histogram of every channel

    def add(self, q: np.ndarray) -> None:
        arr = np.asarray(q, np.int64)
        v = arr.ravel()
        if v.size == 0:
            return
        per_channel = arr.reshape(-1, arr.shape[-1]).sum(axis=0) if arr.ndim >= 2 else None
        if per_channel is not None:
            self.channel_sum = per_channel if self.channel_sum is None else self.channel_sum + per_channel
            c = arr.shape[-1]
            codes = (arr.reshape(-1, c) + 128) + 256 * np.arange(c, dtype=np.int64)[None, :]
            ch = np.bincount(codes.ravel(), minlength=256 * c)[:256 * c].reshape(c, 256)
            self.channel_hist = ch if self.channel_hist is None else self.channel_hist + ch
        self.hist += np.bincount(v + 128, minlength=256)[:256]
        self.count += int(v.size)
        self.qmin = min(self.qmin, int(v.min()))
        self.qmax = max(self.qmax, int(v.max()))

    def _real(self) -> np.ndarray:
        return self.scale * (np.arange(-128, 128, dtype=np.float64) - self.zero_point)

    @property
    def min(self) -> float:
        return self.scale * (self.qmin - self.zero_point)

    @property
    def max(self) -> float:
        return self.scale * (self.qmax - self.zero_point)

    @property
    def mean(self) -> float:
        return float((self._real() * self.hist).sum() / max(self.count, 1))

    @property
    def std(self) -> float:
        m = self.mean
        return float(np.sqrt(((self._real() - m) ** 2 * self.hist).sum() / max(self.count, 1)))

    @property
    def channel_mean(self) -> Optional[np.ndarray]:
        """Mean real value of every channel (last axis) over the calibration set."""
        if self.channel_sum is None or self.count == 0:
            return None
        per = self.count / self.channel_sum.size
        return self.scale * (self.channel_sum / per - self.zero_point)

    @property
    def entropy(self) -> float:
        return entropy_bits(self.hist)

    def real_to_q(self, value: float) -> float:
        """The (fractional) int8 value of a real value."""
        return value / self.scale + self.zero_point

    def percentile_q(self, pct: float) -> int:
        """The int8 value at a percentile of the calibration distribution."""
        c = np.cumsum(self.hist)
        idx = int(np.searchsorted(c, pct / 100.0 * c[-1]))
        return min(idx, 255) - 128

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "name": self.name, "count": self.count, "min": self.min, "max": self.max,
                "mean": self.mean, "std": self.std, "entropy_bits": self.entropy}


@dataclass
class PatchStats:
    """Per-sample extremes of every stage tensor in one patch's tile (int8 values)."""

    patch: int
    qmax: dict[int, list[int]] = field(default_factory=dict)  # tensor -> per-sample max
    qmin: dict[int, list[int]] = field(default_factory=dict)  # tensor -> per-sample min

    def add(self, tensor: int, tile_values: np.ndarray) -> None:
        flat = tile_values.reshape(tile_values.shape[0], -1).astype(np.int64)
        self.qmax.setdefault(tensor, []).extend(int(v) for v in flat.max(axis=1))
        self.qmin.setdefault(tensor, []).extend(int(v) for v in flat.min(axis=1))


@dataclass
class Calibration:
    """Everything calibration learned about one graph."""

    graph_name: str
    samples: int
    tensors: dict[int, TensorStats]
    patches: list[PatchStats]
    synthetic: bool = False
    #: The calibration samples themselves (leading batch axis), for data-driven steps that run the
    #: model again (measured sensitivity in VDQS).
    inputs: Optional["SampleBatch"] = field(default=None, repr=False)
    #: Weighted op index -> ``sum x x^T`` of its receptive fields on the int8 model's activations
    #: (:class:`~tvm_mixq.quant.gptq.LayerHessian`), for Hessian-aware weight rounding.
    hessians: dict[int, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.graph_name, "samples": self.samples, "synthetic": self.synthetic,
                "tensors": [s.to_dict() for s in self.tensors.values()]}


class Samples:
    """Samples of a model with several inputs: one array per model input, in the model's input
    order, sharing the leading sample axis. Models with one input use a plain array instead; both
    take ``len(x)`` and ``x[a:b]``, and :func:`feeds` gives the interpreter's input list of either."""

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.arrays = [np.asarray(a) for a in arrays]
        if not self.arrays or len({a.shape[0] for a in self.arrays}) != 1:
            raise ValueError("Samples need one array per input with the same number of samples")

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index: slice) -> "Samples":
        if not isinstance(index, slice):
            raise TypeError("Samples are indexed by a slice of samples")
        return Samples([a[index] for a in self.arrays])


SampleBatch = Union[np.ndarray, Samples]


def feeds(x: SampleBatch) -> list[np.ndarray]:
    """The interpreter's input list (one array per model input) of a batch of samples."""
    return list(x.arrays) if isinstance(x, Samples) else [x]


def _validate_one(t: Tensor, data: Any, source: str) -> np.ndarray:
    want = tuple(t.shape)
    arr = np.asarray(data)
    if arr.size == 0:
        raise InputDataError(f"{source} is empty (shape {arr.shape}); the model input is {want} {t.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputDataError(f"{source} holds NaN or infinite values")
    if arr.dtype.kind not in "iuf":
        raise InputDataError(f"{source} has dtype {arr.dtype}; the model input is {t.dtype}")
    if arr.dtype != np.dtype(t.dtype):
        raise InputDataError(f"{source} has dtype {arr.dtype} but model input {t.name!r} is {t.dtype} {want}")
    if arr.ndim == len(want) - 1 and tuple(arr.shape) == want[1:]:
        arr = arr[None]
    if arr.ndim != len(want) or tuple(arr.shape[1:]) != want[1:]:
        raise InputDataError(f"{source} has shape {tuple(arr.shape)} but model input {t.name!r} is "
                             f"{want} (samples along the leading axis: (N, {', '.join(map(str, want[1:]))}))")
    return arr


def validate_inputs(graph: Graph, data: Any, source: str = "calibration data") -> SampleBatch:
    """Check calibration samples against the model inputs; return them with a leading batch axis.
    One input: an array. Several: a sequence of arrays, one per input in the model's order (returned
    as :class:`Samples`)."""
    tensors = [graph.tensors[i] for i in graph.inputs]
    if len(tensors) == 1:
        return _validate_one(tensors[0], data, source)
    if isinstance(data, Samples):
        data = data.arrays
    if isinstance(data, np.ndarray) or not isinstance(data, (list, tuple)) or len(data) != len(tensors):
        raise InputDataError(f"{source}: {graph.name} has {len(tensors)} inputs; give one array per input "
                             f"(input_0..input_{len(tensors) - 1})")
    arrays = [_validate_one(t, d, f"{source} (input_{i})") for i, (t, d) in enumerate(zip(tensors, data))]
    if len({a.shape[0] for a in arrays}) != 1:
        raise InputDataError(f"{source}: the inputs hold different numbers of samples "
                             f"({', '.join(str(a.shape[0]) for a in arrays)})")
    return Samples(arrays)


def load_calibration_data(graph: Graph, path: str | os.PathLike) -> SampleBatch:
    """Read ``input_0`` (``input_0..`` for a model with several inputs) from an ``.npz`` and
    validate it (see the module docstring)."""
    keys = [f"input_{i}" for i in range(len(graph.inputs))]
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise InputDataError(f"{path} has no array '{missing[0]}' (it has: {', '.join(npz.files) or 'nothing'})")
            arrays = [npz[k] for k in keys]
    except InputDataError:
        raise
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read calibration data {path}: {exc}") from exc
    return validate_inputs(graph, arrays[0] if len(arrays) == 1 else arrays, f"calibration data {os.fspath(path)}")


def fallback_inputs(graph: Graph, samples: int = FALLBACK_SAMPLES, seed: int = FALLBACK_SEED) -> SampleBatch:
    """Synthetic calibration inputs (see the module docstring), with a logged warning."""
    log.warning("no calibration data for %s: using %d synthetic inputs (smooth seeded noise); "
                "bitwidths and outlier thresholds will be less reliable than with --calib", graph.name, samples)
    rng = np.random.default_rng(seed)
    arrays = [_synthetic(graph, graph.tensors[i], samples, rng) for i in graph.inputs]
    return arrays[0] if len(arrays) == 1 else Samples(arrays)


def _synthetic(graph: Graph, t: Tensor, samples: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = _input_range(graph, t)
    shape = (samples,) + tuple(t.shape[1:])
    if len(shape) == 4:
        coarse_shape = (samples, max(1, -(-shape[1] // 4)), max(1, -(-shape[2] // 4)), shape[3])
        coarse = rng.uniform(lo, hi, coarse_shape)
        smooth = coarse.repeat(4, axis=1).repeat(4, axis=2)[:, : shape[1], : shape[2], :]
    else:
        smooth = rng.uniform(lo, hi, shape)
    values = smooth + rng.uniform(-1, 1, shape) * (hi - lo) / 16
    if np.issubdtype(np.dtype(t.dtype), np.integer):
        values = np.round(values)
    return np.clip(values, lo, hi).astype(t.dtype)


def _input_range(graph: Graph, t: Tensor) -> tuple[float, float]:
    """Value range of synthetic inputs: the integer range, or for a float input the real range
    its QUANTIZE maps onto the whole int8 range."""
    if np.issubdtype(np.dtype(t.dtype), np.integer):
        info = np.iinfo(np.dtype(t.dtype))
        return float(info.min), float(info.max)
    for op in graph.ops:
        if op.kind == "QUANTIZE" and op.inputs and op.inputs[0] == t.index:
            out = graph.tensors[op.outputs[0]]
            if out.quant is not None and not out.quant.per_channel:
                scale, zp = out.quant.scalar()
                info = np.iinfo(np.dtype(out.dtype))
                return scale * (info.min - zp), scale * (info.max - zp)
    return -1.0, 1.0


def activation_tensors(graph: Graph) -> list[int]:
    """Indices of the int8 activation tensors (non-constant, written by an op or a graph input)."""
    written = {t for op in graph.ops for t in op.outputs} | set(graph.inputs)
    return [t.index for t in graph.tensors
            if t.index in written and not t.is_const and t.dtype == "int8" and t.quant is not None
            and not t.quant.per_channel]


def calibrate(
    graph: Graph,
    inputs: Optional[np.ndarray] = None,
    plan: Any = None,
    runner: Optional[Runner] = None,
    batch: int = BATCH,
    hessians: bool = True,
) -> Calibration:
    """Run the reference on ``inputs`` (or the fallback) and collect statistics.

    Parameters
    ----------
    graph : the int8 graph.
    inputs : validated samples with a leading batch axis (:func:`load_calibration_data`), or None
        for the synthetic fallback.
    plan : a :class:`tvm_mixq.plan.Plan` whose patch stage gives the patch grid (optional).
    runner : graph, batch -> every tensor's values (default: the reference interpreter).
    hessians : also accumulate the second moments of every weighted op's receptive fields.
    """
    from .gptq import accumulate_hessian, new_hessian, rows_per_batch
    from .precision import WEIGHTED_OPS

    synthetic = inputs is None
    data = fallback_inputs(graph) if inputs is None else validate_inputs(graph, inputs)
    if runner is None:
        from .execute import run_all
        runner = run_all
    acts = activation_tensors(graph)
    stats = {t: TensorStats(t, graph.tensors[t].name, *graph.tensors[t].quant.scalar()) for t in acts}
    weighted = [op for op in graph.ops if op.kind in WEIGHTED_OPS and graph.tensors[op.inputs[1]].data is not None
                and op.inputs[0] in stats] if hessians else []
    hess = {op.index: new_hessian(graph, op) for op in weighted}
    rng = np.random.default_rng(FALLBACK_SEED)
    stage = getattr(plan, "patch_stage", None) if plan is not None else None
    patch_stats = [PatchStats(p.index) for p in stage.patches] if stage is not None else []
    for start in range(0, len(data), batch):
        values = runner(graph, data[start:start + batch])
        for t in acts:
            if t in values:
                stats[t].add(values[t])
        for op in weighted:
            q = values.get(op.inputs[0])
            if q is not None:
                s_in = stats[op.inputs[0]]
                k = hess[op.index].matrix.shape[-1] - 1
                xtx, rows = accumulate_hessian(graph, op, s_in.scale * (q.astype(np.float64) - s_in.zero_point), rng,
                                               rows_per_batch(k, batch, len(data)))
                hess[op.index].add(xtx, rows)
        if stage is not None:
            for p, ps in zip(stage.patches, patch_stats):
                for t, tile in p.tensor_tiles.items():
                    if t in values and t in stats:
                        v = values[t][:, tile.h.start:tile.h.stop, tile.w.start:tile.w.stop, :]
                        if v.size:
                            ps.add(t, v)
    log.info("calibrated %s on %d %s samples", graph.name, len(data), "synthetic" if synthetic else "given")
    return Calibration(graph.name, len(data), stats, patch_stats, synthetic, data, hess)
