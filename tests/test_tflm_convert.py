"""The TFLM rewriter: MIXQ custom ops, packed tensors, options, fallbacks, and bit-exactness of the
converted graph (host kernel runner) against the reference of the plan. No TFLM needed."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import tflite

from model_builder import conv_graph
from paths import MLPERF_INT8, ROOT
from tflm_models import block_graph, calibrated, convert
from tvm_mixq.errors import MixqError
from tvm_mixq.graph import PoolAttrs
from tvm_mixq.quant.calibration import calibrate
from tvm_mixq.quant.precision import PrecisionAssignment
from tvm_mixq.quant.vdqs import calibrated_act_quant, uniform_assignment
from tvm_mixq.reader import read_tflite, read_tflite_buffer
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions
from tvm_mixq.reference.subbyte import packed_size, unpack
from tvm_mixq.tflm import custom_options as co
from tvm_mixq.tflm.emulate import HostEmulator
from tvm_mixq.tflm.rewriter import rewrite

TFLM_NUMERICS = ReferenceOptions(tflite_float_fc=False)


def _custom_op_count(data: bytes) -> int:
    model = tflite.Model.GetRootAsModel(data, 0)
    sub = model.Subgraphs(0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    return sum(codes[sub.Operators(i).OpcodeIndex()].CustomCode() is not None for i in range(sub.OperatorsLength()))


def _assert_all_tensors_exact(result, samples: int = 3, seed: int = 0) -> None:
    """Every activation of the converted graph (unpacked) equals the reference of the plan."""
    planned = result.planned
    ref = Interpreter(planned, TFLM_NUMERICS)
    emu = HostEmulator(result.converted)
    rng = np.random.default_rng(seed)
    shape = planned.tensors[planned.inputs[0]].shape
    for _ in range(samples):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        want = ref.run_all([x])
        got = emu.run_raw([x])
        for t, value in want.items():
            tensor = planned.tensors[t]
            raw = got[result.tensor_map[t]]
            if tensor.bits < 8:
                got_v = unpack(raw, tensor.bits, tensor.signed, tensor.size).reshape(tensor.shape)
            else:
                got_v = raw.view(np.int8).reshape(tensor.shape)
            np.testing.assert_array_equal(got_v, value, err_msg=f"tensor {tensor.name} ({tensor.bits} bits)")


# -- custom options ---------------------------------------------------------------------------------


def test_options_round_trip_and_validation():
    opts = {"in1_bits": 4, "in2_bits": 2, "out_bits": 8, "shape": [1, 2, 3, 4], "in1_zp": 3, "in1_mult": 1 << 30,
            "in1_shift": -1, "in2_zp": 0, "in2_mult": 123, "in2_shift": -3, "left_shift": 20, "output_zp": -5,
            "out_mult": 1 << 29, "out_shift": -19, "act_min": -128, "act_max": 127}
    decoded = co.decode(co.encode(co.MIXQ_ADD, opts))
    assert decoded == dict(opts, version=co.OPTIONS_VERSION)
    with pytest.raises(MixqError, match="missing"):
        co.encode(co.MIXQ_ADD, {k: v for k, v in opts.items() if k != "left_shift"})
    with pytest.raises(MixqError, match="needs 4 values"):
        co.encode(co.MIXQ_ADD, dict(opts, shape=[1, 2, 3]))
    with pytest.raises(MixqError, match="int32"):
        co.encode(co.MIXQ_ADD, dict(opts, out_mult=1 << 31))
    with pytest.raises(MixqError, match="not a flexbuffer"):
        co.decode(b"\x00\x01")


# -- rewriting --------------------------------------------------------------------------------------


def test_conv_becomes_mixq_op_with_packed_tensors():
    g = conv_graph(cin=3, cout=8, size=8, extra_op="AVERAGE_POOL_2D")
    g.ops[1].attrs = PoolAttrs(filter=(2, 2), stride=(1, 1), padding="SAME")
    res = convert(g, {3: 4}, {0: 2})
    kinds = [op.kind for op in res.converted.ops]
    assert kinds == ["MIXQ_CONV_2D", "MIXQ_AVERAGE_POOL_2D"]
    conv = res.converted.ops[0]
    x, w, b, rq = (res.converted.tensors[i] for i in conv.inputs)
    y = res.converted.tensors[conv.outputs[0]]
    assert (x.dtype, x.shape) == ("int8", (1, 8, 8, 3))  # model input stays int8
    assert (y.dtype, y.shape) == ("uint8", (packed_size(8 * 8 * 8, 4),))  # packed 4-bit activation
    assert (w.dtype, w.shape) == ("uint8", (8 * 32 * 2 // 8,))  # K=27 padded to 32, 2 bits each
    assert (b.dtype, rq.dtype, rq.shape) == ("int32", "int32", (2, 8))
    opts = co.decode(conv.attrs.options)
    assert (opts["in_bits"], opts["w_bits"], opts["out_bits"]) == (8, 2, 4)
    assert opts["padding"] == [1, 1] and opts["stride"] == [1, 1]
    assert 0 <= opts["act_min"] <= opts["act_max"] <= 15  # RELU intersected with the 4-bit range
    assert res.assignment.act_bits == {3: 4}
    _assert_all_tensors_exact(res)


def test_block_sub_byte_bit_exact_on_host_kernels():
    g = block_graph()
    res = convert(g, {1: 4, 2: 2, 3: 4, 4: 4}, {0: 4, 1: 2, 2: 4, 6: 4})
    custom = {op.kind for op in res.converted.ops}
    assert custom >= {"MIXQ_CONV_2D", "MIXQ_DEPTHWISE_CONV_2D", "MIXQ_ADD", "MIXQ_AVERAGE_POOL_2D",
                      "MIXQ_FULLY_CONNECTED"}
    assert res.assignment.act_bits == {1: 4, 2: 2, 3: 4, 4: 4}
    _assert_all_tensors_exact(res)


def test_unconvertible_consumer_keeps_tensors_int8(caplog):
    g = block_graph()
    pool_out = 5  # read by RESHAPE, which has no MIXQ kernel
    with caplog.at_level(logging.INFO, logger="tvm_mixq.tflm.rewriter"):
        res = convert(g, {pool_out: 4, 1: 4})
    assert res.assignment.act_bits == {1: 4}
    assert any("RESHAPE stays builtin int8" in n for n in res.notes)
    assert any("RESHAPE" in r.message for r in caplog.records)
    assert res.converted.ops[5].kind == "RESHAPE"
    _assert_all_tensors_exact(res)


def test_model_outputs_stay_int8_and_int8_plan_changes_nothing():
    g = block_graph()
    res = convert(g, {g.outputs[0]: 4})
    assert res.mixq_ops == [] and any("model input or output" in n for n in res.notes)
    assert [op.kind for op in res.converted.ops] == [op.kind for op in g.ops]
    back = read_tflite_buffer(res.tflite())
    assert [op.kind for op in back.ops] == [op.kind for op in g.ops]


def test_unknown_tensor_name_is_bad_input():
    g = block_graph()
    with pytest.raises(MixqError, match="no tensor named"):
        rewrite(g, {"nope": 4}, {})


def test_names_accepted_in_plain_assignment():
    g = block_graph()
    cal = calibrated(g)
    aq = calibrated_act_quant(cal, PrecisionAssignment(act_bits={1: 4}))
    res = rewrite(g, {"c1": 4}, aq)
    assert res.assignment.act_bits == {1: 4}
    assert res.converted.ops[0].kind == "MIXQ_CONV_2D"


def test_converted_model_is_valid_tflite():
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    g = block_graph()
    res = convert(g, {1: 4, 3: 4})
    data = res.tflite()
    interp = LiteRT(model_content=data)  # parses the flatbuffer; running custom ops needs their kernels
    assert len(interp.get_input_details()) == 1
    model = tflite.Model.GetRootAsModel(data, 0)
    names = {model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())}
    assert b"MIXQ_CONV_2D" in names and b"MIXQ_DEPTHWISE_CONV_2D" in names
    assert _custom_op_count(data) == 4  # conv, depthwise, conv 1x1 and the ADD reading a 4-bit tensor


@pytest.mark.parametrize("act_bits,weight_bits", [(4, 4), (2, 8)])
def test_kws_uniform_bit_exact_on_host_kernels(act_bits, weight_bits):
    g = read_tflite(MLPERF_INT8["kws"])
    cal = calibrate(g, np.random.default_rng(0).integers(-128, 128, (4, 49, 10, 1)).astype(np.int8))
    a = uniform_assignment(g, cal, act_bits, weights=False)
    a.weight_bits = uniform_assignment(g, cal, weight_bits, activations=False).weight_bits
    res = rewrite(g, a, calibrated_act_quant(cal, a))
    assert len(res.mixq_ops) >= 9
    _assert_all_tensors_exact(res, samples=1)


def test_cli_convert_json(tmp_path):
    out = tmp_path / "kws_mixq.tflite"
    proc = subprocess.run([sys.executable, "-m", "tvm_mixq.cli.main", "tflm", "convert", str(MLPERF_INT8["kws"]),
                           "-o", str(out), "--act-bits", "4", "--weight-bits", "4", "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["mixq_ops"]) >= 9 and out.stat().st_size > 0
    assert report["arena_estimate_converted"] <= report["arena_estimate_original"] // 2
    assert _custom_op_count(out.read_bytes()) == len(report["mixq_ops"])


def test_cli_convert_refuses_overwriting_input(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(MLPERF_INT8["kws"].read_bytes())
    proc = subprocess.run([sys.executable, "-m", "tvm_mixq.cli.main", "tflm", "convert", str(model), "-o", str(model)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "overwrite" in proc.stderr


def test_dsp_target_keeps_8bit_weights_where_w4a4_would_respace_into_the_arena():
    g = read_tflite(MLPERF_INT8["kws"])
    cal = calibrate(g, np.random.default_rng(0).integers(-128, 128, (4, 49, 10, 1)).astype(np.int8))
    a = uniform_assignment(g, cal, 4)
    aq = calibrated_act_quant(cal, a)
    on_host = rewrite(g, a, aq, target="host")
    on_m7 = rewrite(g, a, aq, target="cortex-m7")
    pointwise = [op.index for op in g.ops if op.kind == "CONV_2D" and g.tensors[op.inputs[1]].shape[1:3] == (1, 1)]
    assert pointwise and all(on_host.assignment.weight_bits[o] == 4 for o in pointwise)
    assert all(o not in on_m7.assignment.weight_bits for o in pointwise)  # 64 x 64 B re-spaced > 1 KiB
    assert on_m7.assignment.weight_bits[0] == 4  # 8-bit input: no W4A4 re-spacing
    assert sum("re-space 4096 B" in n for n in on_m7.notes) == len(pointwise)


def test_cli_convert_with_calibration_data_and_int8_baseline(tmp_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, input_0=np.random.default_rng(5).integers(-128, 128, (8, 49, 10, 1)).astype(np.int8))
    out = tmp_path / "kws.tflite"
    base = [sys.executable, "-m", "tvm_mixq.cli.main", "tflm", "convert", str(MLPERF_INT8["kws"]), "-o", str(out),
            "--calib", str(calib), "--json"]
    proc = subprocess.run(base + ["--pass-config", "mixq.sram_limit_kb=7"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "synthetic" not in proc.stderr  # the given samples were used
    assert len(json.loads(proc.stdout)["mixq_ops"]) > 0
    proc = subprocess.run(base + ["--pass-config", "mixq.enable=0"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mixq_ops"] == [] and _custom_op_count(out.read_bytes()) == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, input_0=np.zeros((2, 5, 5), np.int8))
    proc = subprocess.run(base[:-3] + ["--calib", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "shape" in proc.stderr


def test_sub_byte_weights_rounded_as_the_tvm_path() -> None:
    """Both ways in give the same sub-byte weights for one assignment: the TFLM rewriter uses the
    Hessian-aware rounding of the TVM path (quant.assign.realise) when given the calibration's
    statistics, and differs from plain rounding to nearest on a real model."""
    from tvm_mixq.quant.assign import realise
    from tvm_mixq.tflm.rewriter import rewrite

    graph = read_tflite(ROOT / "models" / "fmnist_dsconv_int8.tflite")
    samples = np.load(ROOT / "models" / "fmnist_calib.npz")["input_0"][:16]
    calib = calibrate(graph, samples)
    a = PrecisionAssignment(weight_bits=uniform_assignment(graph, calib, 4, activations=False).weight_bits)
    assert a.weight_bits
    act_quant = calibrated_act_quant(calib, a)
    tvm_graph = realise(graph, a, calib).graph
    hessian = rewrite(graph, a, act_quant, hessians=calib.hessians).planned
    nearest = rewrite(graph, a, act_quant).planned
    differs = False
    for op in a.weight_bits:
        w_idx = graph.ops[op].inputs[1]
        assert np.array_equal(hessian.tensors[w_idx].data, tvm_graph.tensors[w_idx].data), f"op {op}"
        differs |= not np.array_equal(nearest.tensors[w_idx].data, tvm_graph.tensors[w_idx].data)
    assert differs
