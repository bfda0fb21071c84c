"""Range equalization of sub-byte feature maps (tvm_mixq.quant.equalize)."""
import numpy as np
import pytest

from paths import MLPERF_INT8
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.equalize import channel_factors, equalizable, equalize, equalized_stats
from tvm_mixq.quant.execute import BatchRunner, run_all
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.requantize import activation_quant
from tvm_mixq.quant.vdqs import build_graphs, calibrated_act_quant, candidate_tensors
from tvm_mixq.reader import read_tflite
from tvm_mixq.tflm.convert import plan_model
from tvm_mixq.tflm.rewriter import rewrite


@pytest.fixture(scope="module")
def kws():
    g = read_tflite(MLPERF_INT8["kws"])
    return g, calibrate(g, None)


def _samples(graph, n, seed=0):
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + tuple(shape)).astype(np.int8)


def _real(graph, t, q):
    s, zp = graph.tensors[t].quant.scalar()
    return s * (q.astype(np.float64) - zp)


def test_which_feature_maps_are_equalizable(kws):
    g, _ = kws
    cand = equalizable(g)
    # DS-CNN: every conv / depthwise output that the next conv / depthwise reads; not the last
    # pointwise output (read by AVERAGE_POOL_2D) and not the model input
    assert sorted(cand) == sorted(g.ops[i].outputs[0] for i in range(8))
    assert g.ops[8].outputs[0] not in cand and g.inputs[0] not in cand
    resnet = read_tflite(MLPERF_INT8["resnet"])
    add_inputs = {t for op in resnet.ops if op.kind == "ADD" for t in op.inputs}
    assert not add_inputs & set(equalizable(resnet))


def test_factors_stretch_small_channels_only(kws):
    g, calib = kws
    t = g.ops[2].outputs[0]
    k = channel_factors(calib.tensors[t], 0.5)
    assert k is not None and k.shape == (g.tensors[t].shape[-1],)
    assert np.all(k <= 1.0) and np.isclose(k.max(), 1.0) and k.min() < 0.9
    assert channel_factors(calib.tensors[t], 0.0) is None
    k1 = channel_factors(calib.tensors[t], 1.0)
    assert np.allclose(k1, k ** 2)


def test_equalized_int8_model_computes_the_same(kws):
    """Channel c of an equalized feature map holds the int8 model's value divided by k_c."""
    g, calib = kws
    tensors = sorted(equalizable(g))
    eq = equalize(g, calib, tensors, 0.5)
    assert set(eq.factors) == set(tensors)
    x = calib.inputs[:4]  # within the calibrated ranges (beyond them a stretched channel saturates)
    ref, got = run_all(g, x), run_all(eq.graph, x)
    first = g.ops[0].outputs[0]
    for t in tensors:
        s = g.tensors[t].quant.scalar()[0]
        diff = np.abs(_real(eq.graph, t, got[t]) * eq.factors[t] - _real(g, t, ref[t])) / s
        # the first map: the producer's scale change alone, within rounding of the int8 grid;
        # downstream, the requantized weights of convolution consumers add a few steps here and
        # there (a few tenths of a step on average; without the consumers' compensation whole
        # channels would be off by the factor)
        if t == first:
            assert diff.max() <= 1.0, diff.max()
        assert diff.mean() <= 0.5, (t, diff.mean())
    out = g.outputs[0]
    assert np.abs(got[out].astype(int) - ref[out].astype(int)).mean() <= 1.0
    # the integers of the producers' weights are untouched, only their scales change
    for t in tensors:
        w = g.ops[next(o.index for o in g.ops if o.outputs[0] == t)].inputs[1]
        if g.ops[next(o.index for o in g.ops if o.outputs[0] == t)].kind == "DEPTHWISE_CONV_2D":
            assert np.array_equal(eq.graph.tensors[w].data, g.tensors[w].data)


def test_equalization_lowers_the_4bit_error(kws):
    """The point of it: the 4-bit grid fits the stretched channels better (calibration values,
    error measured in the int8 model's units)."""
    g, calib = kws
    tensors = sorted(equalizable(g))
    eq = equalize(g, calib, tensors, 0.5)
    values = np.arange(-128, 128)
    better = 0
    for t in tensors:
        errs = []
        for stats, k in ((calib.tensors[t], np.ones(len(eq.factors[t]))), (eq.calibration.tensors[t], eq.factors[t])):
            qp = activation_quant(stats.hist, stats.scale, stats.zero_point, 4)
            s4, zp4 = qp.scalar()
            real = stats.scale * (values - stats.zero_point)
            deq = s4 * (np.clip(np.round(real / s4) + zp4, 0, 15) - zp4)
            # per channel, back in the int8 model's units
            e = ((deq[None, :] - real[None, :]) * k[:, None]) ** 2 * stats.channel_hist
            errs.append(e.sum())
        better += errs[1] < errs[0]
    assert better == len(tensors)


def test_nothing_changes_at_8_bits_or_strength_0(kws):
    g, calib = kws
    t = g.ops[0].outputs[0]
    for tensors, strength in (([], 0.5), ([t], 0.0)):
        eq = equalize(g, calib, tensors, strength)
        assert eq.graph is g and eq.calibration is calib and not eq.factors
    a = PrecisionAssignment({x: 8 for x in candidate_tensors(g, calib)})
    normal, _ = build_graphs(g, a, calib)
    x = _samples(g, 3)
    assert np.array_equal(BatchRunner(normal).run(x)[0], BatchRunner(g).run(x)[0])


def test_build_graphs_equalizes_only_subbyte_maps(kws):
    g, calib = kws
    t4, t8 = g.ops[2].outputs[0], g.ops[4].outputs[0]
    a = PrecisionAssignment({t4: 4})
    normal, _ = build_graphs(g, a, calib, equalize_strength=0.5)
    plain, _ = build_graphs(g, a, calib, equalize_strength=0.0)
    w_prod = g.ops[2].inputs[1]
    assert not np.allclose(normal.tensors[w_prod].quant.scale, plain.tensors[w_prod].quant.scale)
    w_cons = g.ops[3].inputs[1]  # the depthwise consumer compensates in its scales
    assert np.allclose(normal.tensors[w_cons].quant.scale * normal.tensors[w_prod].quant.scale,
                       plain.tensors[w_cons].quant.scale * plain.tensors[w_prod].quant.scale, rtol=1e-5)
    w8 = g.ops[4].inputs[1]  # producer of an 8-bit map: as in the int8 model
    assert np.array_equal(normal.tensors[w8].quant.scale, g.tensors[w8].quant.scale)
    assert np.array_equal(normal.tensors[t8].quant.scale, g.tensors[t8].quant.scale)


def test_tflm_path_quantizes_the_same_equalized_model(kws, tmp_path):
    """One plan, identical answers: the TFLM rewriter's planned graph computes what the TVM path's
    graph computes for the same assignment."""
    g, calib = kws
    planned = plan_model(MLPERF_INT8["kws"], None, ["mixq.equalize=0.5"], act_bits=4, weight_bits=4)
    assert planned.quant_graph is not planned.graph
    result = rewrite(planned.quant_graph, planned.assignment, planned.act_quant, target=planned.options.target,
                     hessians=planned.hessians())
    tvm, _ = build_graphs(g, result.assignment, calib, equalize_strength=0.5)
    x = _samples(g, 4, seed=3)
    assert np.array_equal(BatchRunner(result.planned).run(x)[0], BatchRunner(tvm).run(x)[0])
    assert calibrated_act_quant(planned.calibration, planned.assignment).keys() == planned.act_quant.keys()


def test_equalized_stats_are_those_of_equalize(kws):
    g, calib = kws
    tensors = sorted(equalizable(g))
    stats = equalized_stats(g, calib, tensors, 0.5)
    eq = equalize(g, calib, tensors, 0.5)
    for t in tensors:
        assert np.array_equal(stats[t].hist, eq.calibration.tensors[t].hist)
        assert np.array_equal(stats[t].channel_hist, eq.calibration.tensors[t].channel_hist)
        assert not np.array_equal(stats[t].hist, calib.tensors[t].hist)
