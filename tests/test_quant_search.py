"""Measured sensitivity, the budgeted VDQS search (lambda bisection, giving back slack), VDPC's
percentile rule, random assignments at the target, and the new mixq.* keys."""
import time

import numpy as np
import pytest

from paths import MLPERF_INT8, MODELS
from test_quant_vdqs import _stats_for_vdpc
from tvm_mixq.errors import MixqError
from tvm_mixq.options import MixqOptions, OptionError
from tvm_mixq.quant.calibration import Calibration, calibrate
from tvm_mixq.quant.cost import CostEvaluator
from tvm_mixq.quant.execute import BatchRunner
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.requantize import apply_assignment
from tvm_mixq.quant.sensitivity import SensitivityProbe, _softmax
from tvm_mixq.quant.vdpc import classify_patches, stage_internal_tensors
from tvm_mixq.quant.vdqs import (EntropyTable, candidate_tensors, candidate_weight_ops, random_assignment,
                                 vdqs_search)
from tvm_mixq.reader import read_tflite
from tvm_mixq.schedule.search import plan_memory


@pytest.fixture(scope="module")
def fmnist():
    g = read_tflite(MODELS / "fmnist_dsconv_int8.tflite")
    plan = plan_memory(g, {"mixq.patch_stage_end": 1, "mixq.patch_grid": "4x2"})
    x = np.load(MODELS / "fmnist_calib.npz")["input_0"][:64]
    return g, plan, calibrate(g, x, plan)


@pytest.fixture(scope="module")
def kws():
    g = read_tflite(MLPERF_INT8["kws"])
    plan = plan_memory(g, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "3"})
    return g, plan, calibrate(g, None, plan)


def _kl(ref: np.ndarray, got: np.ndarray) -> float:
    p, q = _softmax(ref), _softmax(got)
    return float(np.mean(np.sum(p * (np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(q, 1e-12))), axis=1)))


def test_probe_equals_a_whole_model_run(fmnist):
    """The tail run from cached int8 activations gives the divergence a whole run of the changed
    graph gives."""
    g, _, calib = fmnist
    tensors, ops = candidate_tensors(g, calib), candidate_weight_ops(g)
    ent = EntropyTable(g, calib, tensors, ops, (8, 4, 2))
    probe = SensitivityProbe(g, calib, ent.act_quant, None, calib.hessians, samples=16, seconds=60)
    assert probe.kind == "kl" and probe.samples == 16
    logits = g.ops[-1].inputs[0]
    s, zp = g.tensors[logits].quant.scalar()
    x = calib.inputs[:16]
    ref = s * (BatchRunner(g).run_all(x)[logits].astype(np.float64) - zp)
    for kind, idx, bits in (("act", 29, 4), ("weight", 4, 2), ("weight", 12, 2)):
        a = PrecisionAssignment({idx: bits}) if kind == "act" else PrecisionAssignment({}, {idx: bits})
        aq = {idx: ent.act_quant[(idx, bits)]} if kind == "act" else {}
        changed = apply_assignment(g, a, aq, None, None, calib.hessians)
        got = s * (BatchRunner(changed).run_all(x)[logits].astype(np.float64) - zp)
        assert probe.measure(kind, idx, bits) == pytest.approx(_kl(ref, got), rel=1e-9, abs=1e-12)
    assert probe.measure("weight", 4, 8) == 0.0
    assert probe.measure("act", 26, 2) > probe.measure("act", 26, 4) > 0


def test_probe_works_within_its_mac_and_time_budgets(fmnist):
    g, _, calib = fmnist
    ent = EntropyTable(g, calib, [29], [], (8, 4))
    macs = CostEvaluator(g).macs
    probe = SensitivityProbe(g, calib, ent.act_quant, samples=64, expected_runs=10, macs_budget=20 * macs)
    assert probe.samples == 8  # MIN_SAMPLES: 20 runs' worth of MACs for 10 expected runs
    probe = SensitivityProbe(g, calib, ent.act_quant, samples=64, expected_runs=2, macs_budget=40 * macs)
    assert probe.samples == 20
    assert probe.affordable("act", 29) and probe.affordable("weight", 0)
    probe.measure("act", 29, 4)
    assert probe.macs_spent == pytest.approx(probe.tail_share("act", 29) * macs * 20)
    while probe.affordable("weight", 0):
        probe.measure("weight", 0, 4)
    assert probe.macs_spent <= 40 * macs
    late = SensitivityProbe(g, calib, ent.act_quant, samples=8, seconds=1e-6)
    assert late.out_of_time() and not late.affordable("act", 29)
    with pytest.raises(ValueError, match="calibration samples"):
        SensitivityProbe(g, Calibration("m", 0, {}, []), ent.act_quant)


def test_measured_search_meets_the_budget_tightly_and_fast(fmnist):
    g, plan, calib = fmnist
    t0 = time.perf_counter()
    r = vdqs_search(g, calib, plan, cost_budget=1 / 2.2, sensitivity_seconds=8)
    assert time.perf_counter() - t0 < 30
    assert r.budget_met and r.bitops * 2.2 <= r.int8_bitops
    ev = CostEvaluator(g, plan)
    budget = r.int8_bitops / 2.2
    # giving back: no candidate's last step can be undone within the budget
    for table, kind in ((r.assignment.act_bits, "act"), (r.assignment.weight_bits, "weight")):
        for idx, bits in table.items():
            up = PrecisionAssignment(dict(r.assignment.act_bits), dict(r.assignment.weight_bits),
                                     list(r.assignment.outlier_patches), list(r.assignment.outlier_tensors))
            (up.act_bits if kind == "act" else up.weight_bits)[idx] = {2: 4, 4: 8}[bits]
            assert ev.bitops(up) > budget
    # the most sensitive feature map (the first conv's output) stays 8-bit
    assert 26 not in r.assignment.act_bits


def test_measured_and_entropy_proxies_differ_and_are_checked(kws):
    g, plan, calib = kws
    m = vdqs_search(g, calib, plan, cost_budget=0.5, sensitivity_seconds=5)
    e = vdqs_search(g, calib, plan, cost_budget=0.5, sensitivity="entropy")
    assert m.budget_met and e.budget_met
    assert m.bitops <= 0.5 * m.int8_bitops and e.bitops <= 0.5 * e.int8_bitops
    with pytest.raises(MixqError, match="sensitivity"):
        vdqs_search(g, calib, plan, cost_budget=0.5, sensitivity="oracle")


def test_lambda_is_lowered_only_when_the_budget_needs_it(kws):
    g, plan, calib = kws
    free = vdqs_search(g, calib, plan, lambda_=0.9, sensitivity="entropy")  # stops by itself
    tight = vdqs_search(g, calib, plan, lambda_=0.9, cost_budget=0.3, sensitivity="entropy")
    assert tight.budget_met and tight.bitops <= 0.3 * tight.int8_bitops < free.bitops
    assert all(s.score > 0 for s in tight.steps)  # bisection keeps positive scores at its lambda


def test_vdpc_percentile_rule(kws):
    g, plan, _ = kws
    calib = _stats_for_vdpc(plan, 1, normal=19)
    pc = classify_patches(calib, plan, rule="percentile", percentile=99.9)
    assert pc.outlier_patches == [1] and pc.outlier_tensors == stage_internal_tensors(plan)
    assert pc.rule == "percentile" and pc.to_dict()["percentile"] == 99.9
    # a percentile near the median: every patch's range reaches past it
    assert len(classify_patches(calib, plan, rule="percentile", percentile=50.5).outlier_patches) == 4
    with pytest.raises(MixqError, match="rule"):
        classify_patches(calib, plan, rule="median")
    with pytest.raises(MixqError, match="percentile"):
        classify_patches(calib, plan, rule="percentile", percentile=20.0)


def test_vdpc_rules_on_fmnist(fmnist):
    """mu + 3 sigma of ReLU6 feature maps lies inside every patch's range; the percentile rule
    separates the patches."""
    g, plan, calib = fmnist
    sigma = classify_patches(calib, plan, 3.0, rule="sigma")
    pct = classify_patches(calib, plan, rule="percentile", percentile=99.9)
    n = len(plan.patch_stage.patches)
    assert len(sigma.outlier_patches) == n
    assert 0 < len(pct.outlier_patches) < n


def test_random_assignment_ends_just_below_the_target(kws):
    g, plan, calib = kws
    ev = CostEvaluator(g, plan)
    target = ev.int8_bitops() / 2.2
    for seed in range(3):
        a = random_assignment(g, calib, target, plan, seed=seed)
        assert ev.bitops(a) <= target
        for table in (a.act_bits, a.weight_bits):
            for idx, bits in list(table.items()):
                table[idx] = {2: 4, 4: 8}[bits]
                assert ev.bitops(a) > target
                table[idx] = bits


def test_new_option_keys():
    o = MixqOptions()
    assert (o.outlier_rule, o.outlier_percentile, o.sensitivity, o.weight_rounding) == (
        "percentile", 99.9, "measured", "hessian")
    o = MixqOptions.from_strings(["mixq.outlier_rule=sigma", "mixq.outlier_percentile=99.5",
                                  "mixq.sensitivity=entropy", "mixq.weight_rounding=nearest"])
    assert (o.outlier_rule, o.outlier_percentile, o.sensitivity, o.weight_rounding) == (
        "sigma", 99.5, "entropy", "nearest")
    for bad in ("mixq.outlier_rule=median", "mixq.outlier_percentile=40", "mixq.sensitivity=oracle",
                "mixq.weight_rounding=stochastic"):
        with pytest.raises(OptionError):
            MixqOptions.from_strings([bad])


def test_joint_steps_when_only_matched_kernels_are_cheaper(kws):
    """A cost table where lowering an op's input or its weights alone saves nothing (the kernel's
    speed follows the wider operand): the search lowers both together."""
    from tvm_mixq.quant.cost import MeasuredCost

    rows = []
    per_mac = {8: 1.3, 4: 0.9, 2: 0.7}
    for fam in ("pointwise", "conv2d", "depthwise", "fully_connected"):
        for a in (8, 4, 2):
            for w in (8, 4, 2):
                rows.append({"op": fam, "in_bits": a, "w_bits": w, "out_bits": 8, "macs": 1000,
                             "instructions": int(1000 * max(per_mac[a], per_mac[w]))})
    model = MeasuredCost({"results": rows})
    g, plan, calib = kws
    r = vdqs_search(g, calib, plan, lambda_=0.2, cost_model=model, sensitivity="entropy")
    assert r.steps and r.cost < r.int8_cost
    lowered_ops = [o for o in r.assignment.weight_bits if g.ops[o].inputs[0] in r.assignment.act_bits]
    assert lowered_ops  # input and weights of the same op went down together
