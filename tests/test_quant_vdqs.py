"""VDQS search, cost models and VDPC patch classification."""
import json
import time

import numpy as np
import pytest

from paths import MLPERF_INT8
from tvm_mixq.errors import MixqError
from tvm_mixq.quant.assign import assign_precision
from tvm_mixq.quant.calibration import Calibration, PatchStats, TensorStats, calibrate
from tvm_mixq.quant.cost import (BitopsCost, CostEvaluator, MeasuredCost, make_cost_model, op_family, op_features,
                                 work_items)
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.vdpc import classify_patches, stage_internal_tensors
from tvm_mixq.quant.vdqs import candidate_tensors, random_assignment, uniform_assignment, vdqs_search
from tvm_mixq.reader import read_tflite
from tvm_mixq.schedule.search import plan_memory


@pytest.fixture(scope="module")
def kws():
    g = read_tflite(MLPERF_INT8["kws"])
    plan = plan_memory(g, {"mixq.patch_grid": "2x2", "mixq.patch_stage_end": "3"})
    return g, plan, calibrate(g, None, plan)


def synthetic_table(graph) -> dict:
    """A kernel cost table in the benchmark's format: sub-byte kernels cheaper per MAC."""
    rows = []
    per_mac = {8: 1.3, 4: 0.9, 2: 0.7}
    for fam in ("pointwise", "conv2d", "depthwise", "fully_connected"):
        for a in (8, 4, 2):
            for w in (8, 4, 2):
                for o in (8, 4, 2):
                    rows.append({"op": fam, "in_bits": a, "w_bits": w, "out_bits": o, "macs": 1000,
                                 "instructions": int(1000 * max(per_mac[a], per_mac[w]) + 10 * (8 - o)),
                                 "bit_exact": True, "baseline": "cmsis_int8", "baseline_instructions": 2600,
                                 "shape": {"h": 8, "w": 8, "cin": 16, "cout": 16, "kh": 1, "kw": 1, "stride": 1,
                                           "pad": 0}})
    return {"target": "cortex-m7", "results": rows}


def test_work_items_follow_patches(kws):
    g, plan, _ = kws
    items = work_items(g, plan)
    ev = CostEvaluator(g, plan)
    assert ev.macs == plan.macs
    staged = [it for it in items if it.patch is not None]
    assert {it.patch for it in staged} == {0, 1, 2, 3}
    assert ev.int8_bitops() == 64 * plan.macs


def test_bitops_of_an_assignment(kws):
    g, plan, _ = kws
    ev = CostEvaluator(g)
    op = g.ops[2]
    a = PrecisionAssignment({op.inputs[0]: 4}, {op.index: 2})
    macs = 25 * 5 * 64 * 64
    assert ev.int8_bitops() - ev.bitops(a) == macs * 64 - macs * 4 * 2


def test_outlier_patches_counted_at_8_bits(kws):
    g, plan, _ = kws
    ev = CostEvaluator(g, plan)
    inner = stage_internal_tensors(plan)
    a = PrecisionAssignment({t: 4 for t in inner})
    all_out = PrecisionAssignment({t: 4 for t in inner}, {}, [0, 1, 2, 3], inner)
    assert ev.bitops(all_out) == ev.int8_bitops() > ev.bitops(a)


def test_search_meets_budget_and_is_fast(kws):
    g, plan, calib = kws
    t0 = time.perf_counter()
    r = vdqs_search(g, calib, plan, cost_budget=1 / 2.2)
    assert time.perf_counter() - t0 < 30
    assert r.budget_met and r.bitops * 2.2 <= r.int8_bitops
    assert r.steps and all(s.bits in (4, 2) for s in r.steps)
    assert all(b < 8 for b in list(r.assignment.act_bits.values()) + list(r.assignment.weight_bits.values()))


def test_search_without_budget_stops_at_non_positive_scores(kws):
    g, plan, calib = kws
    assert not vdqs_search(g, calib, plan, lambda_=1.0).steps  # only the entropy term: nothing scores > 0
    r = vdqs_search(g, calib, plan, lambda_=0.0)  # only the gain: lowers everything that saves cost
    assert r.bitops < r.int8_bitops
    assert all(s.score > 0 for s in r.steps)


def test_allowed_bits_respected(kws):
    g, plan, calib = kws
    r = vdqs_search(g, calib, plan, bits=(8, 4), cost_budget=0.3)
    assert set(r.assignment.act_bits.values()) | set(r.assignment.weight_bits.values()) <= {4}
    assert not r.budget_met  # 0.3 of int8 needs 2-bit somewhere
    with pytest.raises(MixqError, match="include 8"):
        vdqs_search(g, calib, plan, bits=(4, 2))
    with pytest.raises(MixqError, match="lambda"):
        vdqs_search(g, calib, plan, lambda_=1.5)


def test_larger_lambda_gives_up_less_entropy(kws):
    g, plan, calib = kws
    low = vdqs_search(g, calib, plan, lambda_=0.2)
    high = vdqs_search(g, calib, plan, lambda_=0.8)
    assert high.bitops >= low.bitops


def test_measured_cost_model(kws, tmp_path):
    g, plan, calib = kws
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(synthetic_table(g)))
    model = make_cost_model("measured", str(path))
    assert isinstance(model, MeasuredCost)
    assert model.instructions_per_mac("pointwise", 8, 8, 8) == pytest.approx(1.3)
    assert model.instructions_per_mac("depthwise", 4, 2, 4) == pytest.approx(0.94)
    r = vdqs_search(g, calib, plan, cost_model=model, cost_budget=0.8)
    assert r.cost_model == "measured" and r.cost <= 0.8 * r.int8_cost
    assert r.bitops < r.int8_bitops
    assert op_family(g, g.ops[0]) == "conv2d" and op_family(g, g.ops[2]) == "pointwise"


def test_measured_cost_follows_the_nearest_benchmarked_layer(kws):
    g, _, _ = kws
    pw = next(op for op in g.ops if op_family(g, op) == "pointwise")  # 25x5, 64 -> 64
    cin = g.tensors[pw.inputs[1]].shape[3]

    def row(c, bits, ipm, stride=1):
        return {"op": "pointwise", "in_bits": bits[0], "w_bits": bits[1], "out_bits": bits[2], "macs": 10_000,
                "instructions": int(10_000 * ipm), "shape": {"h": 24, "w": 24, "cin": c, "cout": 16, "kh": 1,
                                                             "kw": 1, "stride": stride, "pad": 0}}
    # 2-bit slower than int8 with 8 input channels, faster with as many as the op has
    table = {"results": [row(8, (8, 8, 8), 2.8), row(8, (2, 2, 2), 3.0), row(cin, (8, 8, 8), 1.3),
                         row(cin, (2, 2, 2), 0.8)]}
    model = MeasuredCost(table)
    macs = 1000
    assert model.op_cost(g, pw.index, macs, 2, 2, 2) == pytest.approx(800)
    assert model.op_cost(g, pw.index, macs, 8, 8, 8) == pytest.approx(1300)
    # an unmeasured output width takes the measured ones of its (input, weight) at that layer
    assert model.op_cost(g, pw.index, macs, 2, 2, 4) == pytest.approx(800)
    # an unmeasured (input, weight) pair: int8 at that layer
    assert model.op_cost(g, pw.index, macs, 8, 4, 8) == pytest.approx(1300)
    # a layer with 8 input channels is nearer the other row
    f8 = (3.0,) + op_features(g, pw)[1:]
    assert model.instructions_per_mac("pointwise", 2, 2, 2, f8) == pytest.approx(3.0)
    # a patch's tile has fewer output pixels than the layer
    assert op_features(g, pw, macs=64 * cin)[2] == pytest.approx(0.0)


def test_loss_budget_spends_the_accuracy_proxy_where_it_saves_most(kws, tmp_path):
    g, plan, calib = kws
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(synthetic_table(g)))
    model = make_cost_model("measured", str(path))
    cache: dict = {}
    anchor = vdqs_search(g, calib, plan, cost_model=BitopsCost(), cost_budget=1 / 2.2, sensitivity_cache=cache)
    spent = sum(st.omega for st in anchor.steps)
    assert spent > 0 and "weights" in cache
    runs = []
    for budget in (0.25 * spent, spent, 4 * spent):
        r = vdqs_search(g, calib, plan, cost_model=model, loss_budget=budget, sensitivity_cache=cache)
        assert sum(st.omega for st in r.steps) <= budget * (1 + 1e-9)
        runs.append(r)
    # more proxy to spend never costs more instructions; the ordering is by saving per unit of proxy
    assert runs[0].cost >= runs[1].cost >= runs[2].cost and runs[2].cost < runs[2].int8_cost
    ratios = [st.score for st in runs[1].steps]
    assert ratios and all(r > 0 for r in ratios)


def test_inadmissible_bitwidths_are_never_chosen(kws):
    g, plan, calib = kws

    def no_w4a4(op, ib, wb, ob):
        return not (ib == 4 and wb == 4)

    for kwargs in ({"cost_budget": 1 / 3}, {"loss_budget": 10.0, "cost_model": BitopsCost()}):
        r = vdqs_search(g, calib, plan, admissible=no_w4a4, **kwargs)
        ev = CostEvaluator(g, plan)
        chosen = [ev.op_bits(o, r.assignment) for o in range(len(g.ops)) if o in ev._by_op]
        assert all(no_w4a4(0, *b) for b in chosen)
        assert any(b != (8, 8, 8) for b in chosen)


def test_scratch_admissible_bounds_the_kernel_scratch():
    from tvm_mixq.codegen.emitter import scratch_at_bits
    from tvm_mixq.quant.assign import scratch_admissible

    g = read_tflite(MLPERF_INT8["vww"])
    at = scratch_at_bits(g)
    # the packed-field depthwise path (4-bit activations, 3x3) needs a ring of three converted rows
    dw = next(o.index for o in reversed(g.ops) if o.kind == "DEPTHWISE_CONV_2D")
    grow = at(dw, (4, 4, 8)) - at(dw, (8, 8, 8))
    assert grow > 1024
    ok = scratch_admissible(g, grow - 1)
    assert not ok(dw, 4, 4, 8) and ok(dw, 8, 8, 8) and ok(dw, 8, 8, 4)
    assert scratch_admissible(g, grow)(dw, 4, 4, 8)
    # A4W4 convolutions take their weights in lane words from flash: no re-spaced copy in scratch
    wide = next(o.index for o in reversed(g.ops) if o.kind == "CONV_2D")  # pointwise 3x3x256 -> 256
    assert at(wide, (4, 4, 8)) <= at(wide, (8, 8, 8))


def test_measured_cost_table_errors(tmp_path):
    with pytest.raises(MixqError, match="needs a kernel cost table"):
        make_cost_model("measured")
    with pytest.raises(MixqError, match="unknown cost model"):
        make_cost_model("cycles")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MixqError, match="not JSON"):
        MeasuredCost.from_file(bad)
    with pytest.raises(MixqError, match="no 'results'"):
        MeasuredCost({"results": []})
    with pytest.raises(MixqError, match="malformed"):
        MeasuredCost({"results": [{"op": "pointwise"}]})
    partial = MeasuredCost({"results": [{"op": "pointwise", "in_bits": 8, "w_bits": 8, "out_bits": 8,
                                          "macs": 100, "instructions": 200}]})
    # unmeasured combinations are never assumed faster than int8
    assert partial.instructions_per_mac("pointwise", 4, 4, 4) == pytest.approx(2.0)
    assert isinstance(make_cost_model("bitops"), BitopsCost)


def test_auto_cost_model_measures_where_a_table_exists(tmp_path):
    # the repository's kernel benchmark tables: measured for the cores it ran on, BitOPs elsewhere
    assert isinstance(make_cost_model("auto", target="cortex-m7"), MeasuredCost)
    assert isinstance(make_cost_model("auto", target="cortex-m4"), MeasuredCost)
    assert isinstance(make_cost_model("auto", target="host"), BitopsCost)
    assert isinstance(make_cost_model("auto"), BitopsCost)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"results": [{"op": "pointwise", "in_bits": 8, "w_bits": 8, "out_bits": 8,
                                             "macs": 10, "instructions": 30}]}))
    assert make_cost_model("auto", str(path), "host").instructions_per_mac("pointwise", 8, 8, 8) == pytest.approx(3)


def test_random_and_uniform_assignments(kws):
    g, plan, calib = kws
    ev = CostEvaluator(g, plan)
    target = ev.int8_bitops() / 2.2
    a = random_assignment(g, calib, target, plan, seed=1)
    b = random_assignment(g, calib, target, plan, seed=2)
    assert ev.bitops(a) <= target and ev.bitops(b) <= target
    assert a.to_dict() != b.to_dict()
    u = uniform_assignment(g, calib, 4)
    assert ev.bitops(u) <= ev.int8_bitops() // 4 + 64 * ev.macs // 8
    assert set(u.act_bits) == set(candidate_tensors(g, calib))


def _stats_for_vdpc(plan, planted_patch: int, normal: int = 20) -> Calibration:
    """Calibration of a stage whose tensors are uniform noise, one patch holding a huge value
    (the other patches span [-normal, normal])."""
    rng = np.random.default_rng(0)
    tensors, patches = {}, []
    stage_tensors = sorted({t for p in plan.patch_stage.patches for t in p.tensor_tiles})
    for t in stage_tensors:
        s = TensorStats(t, f"t{t}", 0.1, 0)
        s.add(rng.integers(-20, 21, 10000))
        tensors[t] = s
    for p in plan.patch_stage.patches:
        ps = PatchStats(p.index)
        for t in stage_tensors:
            big = 120 if p.index == planted_patch else normal
            ps.qmax[t] = [big] * 8
            ps.qmin[t] = [-normal] * 8
        patches.append(ps)
    return Calibration("synthetic", 8, tensors, patches)


def test_vdpc_finds_the_planted_outlier_patch(kws):
    g, plan, _ = kws
    calib = _stats_for_vdpc(plan, planted_patch=2)
    pc = classify_patches(calib, plan, k=3.0)
    assert pc.outlier_patches == [2]
    assert pc.outlier_tensors == stage_internal_tensors(plan)
    assert plan.patch_stage.split_tensor not in pc.outlier_tensors
    assert classify_patches(calib, plan, k=100.0).outlier_patches == []
    assert len(classify_patches(calib, plan, k=0.5).outlier_patches) == 4
    with pytest.raises(MixqError):
        classify_patches(calib, plan, k=3.0, min_rate=0.0)


def test_assign_precision_end_to_end(kws, tmp_path):
    g, plan, calib = kws
    data = np.random.default_rng(0).integers(-128, 128, (8, 49, 10, 1)).astype(np.int8)
    path = tmp_path / "calib.npz"
    np.savez(path, input_0=data)
    mp = assign_precision(g, plan, calib_path=path, cost_budget=0.5)
    assert mp.bitops <= 0.5 * mp.int8_bitops
    assert mp.calibration.samples == 8 and not mp.calibration.synthetic
    out = mp.runner(plan).run(data)[0]
    assert out.shape == (8, 12)
    d = mp.to_dict()
    json.dumps(d)
    assert d["bitops_reduction"] >= 2.0


def test_sram_budget_lowers_the_peak(kws):
    g, plan, calib = kws
    from tvm_mixq.quant.assign import sram_function

    peak_of = sram_function(g, plan)
    int8_peak = peak_of(PrecisionAssignment())
    r = vdqs_search(g, calib, plan, sram_budget_bytes=int8_peak * 3 // 4, sram_of=peak_of)
    assert r.budget_met and peak_of(r.assignment) <= int8_peak * 3 // 4
    with pytest.raises(MixqError, match="memory planner"):
        vdqs_search(g, calib, plan, sram_budget_bytes=1000)


def test_measured_cost_reads_the_bench_cost_table_format():
    table = {"target": "cortex-m7", "entries": [
        {"impl": "ours", "op": "pointwise", "in_bits": 4, "w_bits": 4, "out_bits": 4, "shape": {}, "macs": 100,
         "instructions": 80},
        {"impl": "cmsis_int8", "op": "pointwise", "in_bits": 4, "w_bits": 4, "out_bits": 4, "shape": {},
         "macs": 100, "instructions": 500},
        {"impl": "ours", "op": "pointwise", "in_bits": 8, "w_bits": 8, "out_bits": 8, "shape": {}, "macs": 100,
         "instructions": 130}]}
    m = MeasuredCost(table)
    assert m.instructions_per_mac("pointwise", 4, 4, 4) == pytest.approx(0.8)
    assert m.instructions_per_mac("pointwise", 8, 8, 8) == pytest.approx(1.3)
    # another output width of a measured (in, w) pair: that pair's figure; an unmeasured pair: int8's
    assert m.instructions_per_mac("pointwise", 4, 4, 8) == pytest.approx(0.8)
    assert m.instructions_per_mac("pointwise", 2, 2, 2) == pytest.approx(1.3)
    with pytest.raises(MixqError, match="entries"):
        MeasuredCost({"entries": [dict(table["entries"][1])]})


def test_mac_weights_have_mean_one(kws, tmp_path):
    from tvm_mixq.quant.cost import mac_weights, op_macs

    g, _, _ = kws
    assert mac_weights(g, BitopsCost()) is None
    w = mac_weights(g, make_cost_model("measured", target="cortex-m7"))
    macs = {o.index: op_macs(g, o) for o in g.ops if o.index in w}
    assert sum(w[o] * m for o, m in macs.items()) / sum(macs.values()) == pytest.approx(1.0)
    assert len(set(round(v, 3) for v in w.values())) > 1  # depthwise and pointwise differ per MAC


def test_unreachable_budget_keeps_the_cheapest_point():
    """At 8/4 bits KWS cannot reach 1/2 of int8's measured cost. The search then takes the best
    steps whatever they save, but does not keep those that cost more: the first convolution reads
    the 8-bit model input, and its 4-bit weights run the slower W4A8 path."""
    g = read_tflite(MLPERF_INT8["kws"])
    calib = calibrate(g, None)
    model = make_cost_model("measured", None, "cortex-m7")
    r = vdqs_search(g, calib, None, bits=(8, 4), cost_model=model, cost_budget=0.5)
    ev = CostEvaluator(g, None, model)
    assert not r.budget_met
    assert r.assignment.weight_bits.get(0, 8) == 8
    assert r.cost == pytest.approx(ev.cost(r.assignment))
    assert r.steps and r.cost <= min(st.cost_after for st in r.steps) + 1e-6
    worse = r.assignment.copy()
    worse.weight_bits[0] = 4
    assert ev.cost(worse) > r.cost
