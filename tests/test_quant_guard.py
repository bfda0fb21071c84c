"""The accuracy guard (``mixq.min_agreement``): the default search's plan must agree with the int8
model on the calibration samples, or the search spends less of its accuracy budget."""
from __future__ import annotations

import numpy as np
import pytest

from paths import MLPERF_INT8
from tvm_mixq import kws_data
from tvm_mixq.options import MixqOptions
from tvm_mixq.quant.assign import assign_precision, guard_agreement, is_classifier
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.execute import BatchRunner
from tvm_mixq.quant.vdqs import Step, VdqsResult
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.reader import read_tflite

needs_espeak = pytest.mark.skipif(not kws_data.espeak_available(),
                                  reason="espeak-ng not installed (Debian package espeak-ng)")


def test_classifiers_are_told_from_other_outputs():
    assert is_classifier(read_tflite(MLPERF_INT8["kws"]))  # SOFTMAX
    assert is_classifier(read_tflite(MLPERF_INT8["vww"]))
    assert not is_classifier(read_tflite(MLPERF_INT8["ad"]))  # a 640-value reconstruction


def test_option_defaults_and_range():
    assert MixqOptions().min_agreement == 0.95
    assert MixqOptions.from_strings(["mixq.min_agreement=0"]).min_agreement == 0.0
    with pytest.raises(Exception, match="min_agreement"):
        MixqOptions.from_strings(["mixq.min_agreement=1.5"])


class _Runner:
    """A plan that gets the first ``wrong`` calibration samples' class wrong."""

    def __init__(self, ref: np.ndarray, wrong: int) -> None:
        self.ref, self.wrong = ref, wrong

    def run(self, x):
        y = np.eye(12)[self.ref]
        y[:self.wrong] = np.roll(y[:self.wrong], 1, axis=1)
        return [y]


def test_guard_keeps_the_largest_budget_fraction_that_agrees():
    g = read_tflite(MLPERF_INT8["kws"])
    x = np.random.default_rng(0).integers(-128, 128, (40, 49, 10, 1)).astype(np.int8)
    cal = calibrate(g, x, hessians=False)
    ref = BatchRunner(g).run(x)[0].reshape(40, -1).argmax(1)
    searched = []

    def search(budget):
        searched.append(budget)
        a = PrecisionAssignment(act_bits={0: 4}) if budget > 0 else PrecisionAssignment()
        steps = [Step("act", 0, 4, 0.0, budget, 0.0, 0.0)] if budget > 0 else []
        return VdqsResult(a, {}, 0.0, 1.0, 0, 1, "measured", steps)

    # agreement falls with the budget spent: 1 - budget / 2 (40 samples, rounded), threshold 0.8 -> budget < 0.425
    def runner_for(result_budget):
        return _Runner(ref, int(round(40 * result_budget / 2)))

    budgets = {}

    def runner(a):
        return runner_for(budgets[id(a)])

    def tracked(budget):
        r = search(budget)
        budgets[id(r.assignment)] = budget
        return r

    out = guard_agreement(g, cal, 1.0, tracked, runner, 0.8)
    chosen = budgets[id(out.assignment)]
    assert searched[0] == 1.0 and 0.35 < chosen < 0.425, searched
    # a plan that agrees well enough at the anchored budget is kept as it is
    assert budgets[id(guard_agreement(g, cal, 0.3, tracked, runner, 0.8).assignment)] == 0.3


@needs_espeak
def test_guarded_kws_plan_agrees_on_speech():
    """On spoken keywords the default budget's plan agrees with int8 on about 0.9 of the calibration
    clips; the guard brings it to the threshold and spends less of the budget."""
    g = read_tflite(MLPERF_INT8["kws"])
    x, _ = kws_data.load_keywords("calib", per_class=10)
    cal = calibrate(g, x)
    common = dict(calibration=cal, cost_model="measured", target="cortex-m7")
    free = assign_precision(g, min_agreement=0.0, **common)
    guarded = assign_precision(g, min_agreement=0.95, **common)
    ref = BatchRunner(g).run(x)[0].argmax(-1)

    def agreement(mp):
        return float(np.mean(mp.runner().run(x)[0].argmax(-1) == ref))

    assert agreement(free) < 0.95, "the unguarded plan is the case the guard is for"
    assert agreement(guarded) >= 0.95
    assert guarded.bitops >= free.bitops
