"""VDPC, value-driven patch classification: which patches of the patch stage keep 8 bits.

Rule
    Only the *inner* tensors of the patch stage are looked at (every stage tensor after the stage
    input and before the stage output: the tensors whose precision a patch can keep at 8 bits on
    its own). For each, calibration gives an outlier threshold, by one of two rules
    (``mixq.outlier_rule``):

    * ``percentile`` (default): a value is an *outlier* when it lies above the ``p``-th percentile
      (``mixq.outlier_percentile``, default 99.9) or below the ``(100 - p)``-th percentile of the
      tensor's calibration distribution (all samples, all positions);
    * ``sigma``: outside ``[mu - k*sigma, mu + k*sigma]``, ``mu`` and ``sigma`` the mean and
      standard deviation of the tensor's real values, ``k = mixq.outlier_k`` (default 3).

    In one calibration sample, a patch *holds outliers* when any value of its tiles of the inner
    tensors is an outlier. The plan is static (the generated code does not branch on values), so a
    patch (a grid position) is classified **outlier** when it holds outliers in at least
    ``min_rate`` of the calibration samples (default 0.5: in most inputs), **normal** otherwise.

    Why percentile is the default: feature maps after ReLU/ReLU6 are mostly zeros with a long
    tail, so ``mu + 3 sigma`` sits inside the ordinary range of any patch with content; on the
    bundled Fashion-MNIST model it made every patch an outlier. The 99.9th percentile marks the
    values a sub-byte grid clips or resolves worst, and separates the patches that regularly hold
    them (the centre of the image there) from the others.

Consequence
    An outlier patch runs the rest of its patch-stage branch at 8 bits: every inner tensor (the
    *outlier tensors*) keeps the int8 model's quantization in that patch, whatever bitwidth the
    search gives the normal patches. The stage output is shared by all patches (the layers after
    the stage read it whole), so its bitwidth is the same for all of them. A higher percentile (or
    larger ``k``) -> fewer outlier patches -> fewer BitOPs, less accuracy headroom. ``k <= 0``
    classifies every patch that has any spread as outlier; an infinite ``k`` (or ``p = 100``: nothing
    lies above the calibration maximum) none.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import MixqError
from ..options import OUTLIER_RULES
from .calibration import Calibration

log = logging.getLogger(__name__)

DEFAULT_OUTLIER_K = 3.0
DEFAULT_MIN_RATE = 0.5


@dataclass
class PatchClass:
    """VDPC result: outlier patches and the stage tensors they keep at 8 bits."""

    outlier_patches: list[int]
    outlier_tensors: list[int]
    rates: dict[int, float]  # patch -> fraction of calibration samples where it held outliers
    thresholds: dict[int, tuple[float, float]]  # tensor -> (low, high) int8 thresholds
    k: float
    rule: str = "sigma"
    percentile: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "k": self.k, "percentile": self.percentile,
                "outlier_patches": list(self.outlier_patches),
                "outlier_tensors": list(self.outlier_tensors),
                "rates": {str(p): r for p, r in self.rates.items()}}


def stage_internal_tensors(plan: Any) -> list[int]:
    """Tensors of the patch stage strictly between its input and its output."""
    stage = plan.patch_stage
    tensors: set[int] = set()
    for p in stage.patches:
        tensors.update(p.tensor_tiles)
    tensors.discard(stage.input_tensor)
    tensors.discard(stage.split_tensor)
    return sorted(tensors)


DEFAULT_OUTLIER_RULE = "percentile"
DEFAULT_OUTLIER_PERCENTILE = 99.9


def classify_patches(calib: Calibration, plan: Any, k: float = DEFAULT_OUTLIER_K,
                     min_rate: float = DEFAULT_MIN_RATE, rule: str = "sigma",
                     percentile: float = DEFAULT_OUTLIER_PERCENTILE) -> PatchClass:
    """Classify the patches of ``plan``'s patch stage (see the module docstring).

    ``rule`` defaults to ``sigma`` here (``k`` given alone keeps its meaning);
    :func:`~tvm_mixq.quant.assign.assign_precision` and the ``mixq.outlier_rule`` option default
    to :data:`DEFAULT_OUTLIER_RULE`.
    """
    if rule not in OUTLIER_RULES:
        raise MixqError(f"unknown VDPC rule {rule!r}: expected one of {', '.join(OUTLIER_RULES)}")
    if k != k:
        raise MixqError("mixq.outlier_k must be a number")
    if not 50.0 < percentile <= 100.0:
        raise MixqError(f"mixq.outlier_percentile must be in (50, 100], got {percentile}")
    if not 0.0 < min_rate <= 1.0:
        raise MixqError(f"VDPC min_rate must be in (0, 1], got {min_rate}")
    stage = getattr(plan, "patch_stage", None)
    if stage is None or not calib.patches:
        return PatchClass([], [], {}, {}, k)
    internal = stage_internal_tensors(plan)
    thresholds: dict[int, tuple[float, float]] = {}
    for t in internal:
        s = calib.tensors.get(t)
        if s is None or s.count == 0:
            continue
        if rule == "sigma":
            mu, sd = s.mean, s.std
            thresholds[t] = (s.real_to_q(mu - k * sd), s.real_to_q(mu + k * sd))
        else:
            thresholds[t] = (float(s.percentile_q(100.0 - percentile)), float(s.percentile_q(percentile)))
    rates: dict[int, float] = {}
    outliers: list[int] = []
    for ps in calib.patches:
        hit = None
        for t, maxes in ps.qmax.items():
            if t not in thresholds:
                continue
            lo, hi = thresholds[t]
            h = (np.asarray(maxes) > hi) | (np.asarray(ps.qmin[t]) < lo)
            hit = h if hit is None else hit | h
        rate = float(hit.mean()) if hit is not None and hit.size else 0.0
        rates[ps.patch] = rate
        if rate >= min_rate:
            outliers.append(ps.patch)
    log.info("VDPC %s: %d of %d patches are outliers", f"k={k:.2f}" if rule == "sigma" else f"p={percentile:g}",
             len(outliers), len(calib.patches))
    return PatchClass(outliers, internal if outliers else [], rates, thresholds, k, rule,
                      percentile if rule == "percentile" else None)
