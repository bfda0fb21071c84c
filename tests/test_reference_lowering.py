"""The kernel parameters of an op come from one place (tvm_mixq.reference.lowering): its formulas
follow TFLite's Prepare functions, and the C generator and the TFLM rewriter emit exactly the
numbers the reference interpreter runs."""
from __future__ import annotations

import numpy as np
import pytest

from model_builder import conv_graph, q
from tflm_models import block_graph, convert
from tvm_mixq.codegen.layers import make_layer
from tvm_mixq.errors import UnsupportedOpError
from tvm_mixq.graph import FullyConnectedAttrs, Graph, Op, Tensor
from tvm_mixq.reference import lowering
from tvm_mixq.reference.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from tvm_mixq.tflm import custom_options as co


def _fc_graph(s_in: float, s_w: float, s_out: float) -> Graph:
    tensors = [Tensor(0, "x", (1, 4), "int8", q(s_in, 0)),
               Tensor(1, "w", (3, 4), "int8", q(s_w, 0), data=np.ones((3, 4), np.int8)),
               Tensor(2, "y", (1, 3), "int8", q(s_out, 0))]
    return Graph(tensors, [Op(0, "FULLY_CONNECTED", [0, 1, -1], [2], FullyConnectedAttrs())], [0], [2])


def test_fc_per_tensor_multiplier_uses_the_float32_product() -> None:
    # GetQuantizedConvolutionMultipler: s_in * s_w in float32, / s_out in double. Find scales where
    # that differs from the all-double product, so that the test tells the two apart.
    rng = np.random.default_rng(0)
    for _ in range(10000):
        s_in, s_w, s_out = (np.float32(v) for v in rng.uniform(1e-3, 1e-1, 3))
        single = quantize_multiplier(float(np.float64(np.float32(s_in * s_w)) / np.float64(s_out)))
        double = quantize_multiplier(float(np.float64(s_in) * np.float64(s_w) / np.float64(s_out)))
        if single != double:
            break
    else:
        pytest.fail("no scales found where float32 and double products differ")
    mult, shift = lowering.fc_multipliers(s_in, np.array([s_w]), s_out, 3)
    assert list(mult) == [single[0]] * 3 and list(shift) == [single[1]] * 3
    low = lowering.lower_fully_connected(_fc_graph(float(s_in), float(s_w), float(s_out)), Op(0, "FULLY_CONNECTED",
                                                                                           [0, 1, -1], [2]))
    assert (int(low.multiplier[0]), int(low.shift[0])) == single
    # TFLite's reference kernel requantizes this layer in double instead
    assert low.real_multiplier[0] == np.float64(s_in) * np.float64(s_w) / np.float64(s_out)


def test_pool_requantizes_only_sub_byte_tensors_of_another_scale() -> None:
    assert lowering.pool_requant(0.1, 2, 0.2, 3, sub_byte=False) is None  # TFLite's int8 pooling
    assert lowering.pool_requant(0.1, 2, 0.1, 2, sub_byte=True) is None
    r = lowering.pool_requant(0.1, 2, 0.2, 3, sub_byte=True)
    assert r == lowering.PoolRequant(2, *quantize_multiplier(0.5), 3)


@pytest.mark.parametrize("count", [1, 2, 49, 100, 1000])
def test_mean_multiplier_folds_the_count(count: int) -> None:
    mult, shift = lowering.mean_multiplier(0.05, 0.04, count)
    sums = np.arange(-50, 51, dtype=np.int64) * count
    got = multiply_by_quantized_multiplier(sums, mult, shift)
    np.testing.assert_allclose(got, sums / count * 0.05 / 0.04, atol=1.0)
    if count == 1:
        assert (mult, shift) == lowering.requantize_multiplier(0.05, 0.04)


def test_lower_op_refuses_kinds_without_parameters() -> None:
    g = conv_graph(extra_op="RESHAPE")
    with pytest.raises(UnsupportedOpError, match="no kernel parameters"):
        lowering.lower_op(g, g.ops[1])
    assert isinstance(lowering.lower_op(g, g.ops[0]), lowering.ConvLowering)


def test_generator_and_tflm_rewriter_emit_the_lowered_parameters() -> None:
    res = convert(block_graph(), {1: 4, 2: 2, 3: 4, 4: 4}, {0: 4, 1: 2, 2: 4, 6: 4})
    planned, converted = res.planned, res.converted
    mixq_ops = [op for op in converted.ops if op.kind.startswith("MIXQ_")]
    assert len(mixq_ops) == 6
    checked = set()
    for info, new_op in zip(res.mixq_ops, mixq_ops):
        op = planned.ops[info.op]
        low = lowering.lower_op(planned, op)
        layer = make_layer(planned, op)
        consts = {c.name: c.values for c in layer.consts}
        opts = co.decode(new_op.attrs.options)
        layer_p = layer.p["q"] if layer.template == "add" else layer.p
        assert (opts["act_min"], opts["act_max"]) == (layer_p["act_min"], layer_p["act_max"]) \
            == (low.act_min, low.act_max)
        if isinstance(low, (lowering.ConvLowering, lowering.FullyConnectedLowering)):
            requant = np.asarray(converted.tensors[new_op.inputs[3]].data)
            np.testing.assert_array_equal(requant, np.stack([low.multiplier, low.shift]))
            np.testing.assert_array_equal(consts[layer.p["mult"]], low.multiplier)
            np.testing.assert_array_equal(consts[layer.p["shift"]], low.shift)
            assert opts["input_zp"] == layer.p["input_zp"] == low.input_zp
            assert opts["output_zp"] == layer.p["output_zp"] == low.output_zp
        elif isinstance(low, lowering.AddLowering):
            params = low.kernel_params()
            assert layer.p["q"] == params
            assert {k: opts[k] for k in params} == params
        else:
            assert isinstance(low, lowering.PoolLowering) and low.requant is not None  # 4-bit in, 8-bit out
            requant = low.kernel_requant()
            assert {k: opts[k] for k in requant} == requant
            assert (layer.p["input_zp"], layer.p["output_zp"], layer.p["mult"], layer.p["shift"]) == \
                (requant["input_zp"], requant["output_zp"], requant["multiplier"], requant["shift"])
        checked.add(type(low))
    assert checked == {lowering.ConvLowering, lowering.FullyConnectedLowering, lowering.AddLowering,
                       lowering.PoolLowering}
