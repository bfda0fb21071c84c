"""VDPC, value-driven patch classification: which patches of the patch stage keep 8 bits.

Rule
    For every tensor ``t`` of the patch stage, calibration gives the mean ``mu_t`` and standard
    deviation ``sigma_t`` of its real values over all calibration samples and positions. A value is
    an *outlier* when it lies outside ``[mu_t - k*sigma_t, mu_t + k*sigma_t]``, with
    ``k = mixq.outlier_k`` (default 3). In one calibration sample, a patch *holds outliers* when
    any value of its tiles of the stage tensors is an outlier. The plan is static (the generated
    code does not branch on values), so a patch (a grid position) is classified **outlier** when it
    holds outliers in at least ``min_rate`` of the calibration samples (default 0.5: in most
    inputs), **normal** otherwise.

Consequence
    An outlier patch runs the rest of its patch-stage branch at 8 bits: every stage tensor after
    the stage input and before the stage output (the *outlier tensors*) keeps the int8 model's
    quantization in that patch, whatever bitwidth the search gives the normal patches. The stage
    output is shared by all patches (the layers after the stage read it whole), so its bitwidth is
    the same for all of them. Larger ``k`` -> fewer outlier patches -> fewer BitOPs, less accuracy
    headroom. ``k <= 0`` classifies every patch that has any spread as outlier; an infinite ``k``
    none.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MixqError
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

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "outlier_patches": list(self.outlier_patches),
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


def classify_patches(calib: Calibration, plan: Any, k: float = DEFAULT_OUTLIER_K,
                     min_rate: float = DEFAULT_MIN_RATE) -> PatchClass:
    """Classify the patches of ``plan``'s patch stage (see the module docstring)."""
    if k != k:
        raise MixqError("mixq.outlier_k must be a number")
    if not 0.0 < min_rate <= 1.0:
        raise MixqError(f"VDPC min_rate must be in (0, 1], got {min_rate}")
    stage = getattr(plan, "patch_stage", None)
    if stage is None or not calib.patches:
        return PatchClass([], [], {}, {}, k)
    thresholds: dict[int, tuple[float, float]] = {}
    for t, s in calib.tensors.items():
        mu, sd = s.mean, s.std
        thresholds[t] = (s.real_to_q(mu - k * sd), s.real_to_q(mu + k * sd))
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
    internal = stage_internal_tensors(plan)
    log.info("VDPC k=%.2f: %d of %d patches are outliers", k, len(outliers), len(calib.patches))
    return PatchClass(outliers, internal if outliers else [], rates, thresholds, k)
