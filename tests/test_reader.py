"""TFLite reader: real models, round trip through the writer, and every kind of bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_builder import conv_graph, conv_model_bytes
from tvm_mixq.errors import ModelError, UnsupportedOpError
from tvm_mixq.graph import ConvAttrs, PoolAttrs
from tvm_mixq.reader import read_tflite, read_tflite_buffer
from tvm_mixq.tflm.writer import write_tflite

from paths import MLPERF
INT8_MODELS = ["vww_96_int8", "kws_ref_model", "pretrainedResnet_quant", "ad01_int8"]
FLOAT_MODELS = ["vww_96_float", "kws_ref_model_float32", "pretrainedResnet", "ad01_fp32"]


def mlperf(name: str) -> Path:
    path = MLPERF / f"{name}.tflite"
    assert path.exists(), f"{path} missing from the repository"
    return path


@pytest.mark.parametrize("name", INT8_MODELS)
def test_reads_mlperf_int8_models(name: str) -> None:
    g = read_tflite(mlperf(name))
    assert g.ops and g.inputs and g.outputs
    seen = set(g.inputs) | {t.index for t in g.tensors if t.is_const}
    for op in g.ops:  # topological order
        assert all(t < 0 or t in seen for t in op.inputs), op
        seen.update(op.outputs)
    assert set(g.outputs) <= seen
    for op in g.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = g.tensors[op.inputs[1]]
            assert w.is_const and w.dtype == "int8" and w.data.shape == w.shape
            assert w.quant is not None and np.all(w.quant.zero_point == 0)


def test_vww_structure() -> None:
    g = read_tflite(mlperf("vww_96_int8"))
    assert g.op_counts() == {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                             "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    first = g.ops[0]
    assert first.kind == "CONV_2D" and isinstance(first.attrs, ConvAttrs)
    assert first.attrs.stride == (2, 2) and first.attrs.padding == "SAME"
    weights = g.tensors[first.inputs[1]]
    assert weights.quant.per_channel and weights.quant.scale.size == weights.shape[0] == 8
    pool = next(op for op in g.ops if op.kind == "AVERAGE_POOL_2D")
    assert isinstance(pool.attrs, PoolAttrs) and pool.attrs.filter == (3, 3)
    assert g.tensors[g.inputs[0]].shape == (1, 96, 96, 3)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_writer_round_trip(name: str) -> None:
    g = read_tflite(mlperf(name))
    g2 = read_tflite_buffer(write_tflite(g))
    assert [op.kind for op in g.ops] == [op.kind for op in g2.ops]
    assert [op.attrs for op in g.ops] == [op.attrs for op in g2.ops]
    for a, b in zip(g.tensors, g2.tensors):
        assert (a.shape, a.dtype, a.name) == (b.shape, b.dtype, b.name)
        assert (a.data is None) == (b.data is None)
        if a.data is not None:
            assert np.array_equal(a.data, b.data)
        if a.quant is not None:
            assert np.array_equal(a.quant.scale, b.quant.scale)
            assert np.array_equal(a.quant.zero_point, b.quant.zero_point)


@pytest.mark.parametrize("name", FLOAT_MODELS)
def test_float_models_refused(name: str) -> None:
    with pytest.raises(ModelError, match="float-only model"):
        read_tflite(mlperf(name))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        read_tflite(tmp_path / "absent.tflite")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="directory"):
        read_tflite(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model", b"\x00" * 64, b"PK\x03\x04" + b"\x00" * 60])
def test_not_a_flatbuffer(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.tflite"
    p.write_bytes(content)
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        read_tflite(p)


def test_truncated_model_named() -> None:
    data = mlperf("kws_ref_model").read_bytes()
    with pytest.raises(ModelError, match="truncated or corrupted"):
        read_tflite_buffer(data[: len(data) // 3])


def test_unsupported_op_named_with_index() -> None:
    data = conv_model_bytes(extra_op="TANH")
    with pytest.raises(UnsupportedOpError) as info:
        read_tflite_buffer(data)
    assert info.value.op_name == "TANH" and info.value.op_index == 1
    assert "TANH" in str(info.value) and "index 1" in str(info.value)


def test_custom_op_refused() -> None:
    g = conv_graph(extra_op="MY_CUSTOM_THING")
    with pytest.raises(UnsupportedOpError, match="MY_CUSTOM_THING"):
        read_tflite_buffer(write_tflite(g))


def test_dynamic_shape_refused() -> None:
    g = conv_graph()
    g.tensors[3].shape = (1, -1, 8, 4)
    with pytest.raises(ModelError, match="dynamic shape"):
        read_tflite_buffer(write_tflite(g))


def test_hybrid_model_refused() -> None:
    g = conv_graph()
    g.tensors[3].dtype = "float32"
    g.tensors[3].quant = None
    with pytest.raises(ModelError, match="hybrid model"):
        read_tflite_buffer(write_tflite(g))


def test_per_channel_scale_count_checked() -> None:
    g = conv_graph(cout=4)
    g.tensors[1].quant.scale = g.tensors[1].quant.scale[:3]
    g.tensors[1].quant.zero_point = g.tensors[1].quant.zero_point[:3]
    with pytest.raises(ModelError, match="per-channel scales"):
        read_tflite_buffer(write_tflite(g))


def test_out_of_order_ops_sorted() -> None:
    g = conv_graph(extra_op="RELU")
    g.ops.reverse()
    g2 = read_tflite_buffer(write_tflite(g))
    assert [op.kind for op in g2.ops] == ["CONV_2D", "RELU"]


_SMALL = None


def _small_model() -> bytes:
    global _SMALL
    if _SMALL is None:
        _SMALL = mlperf("kws_ref_model").read_bytes()
    return _SMALL


@settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_model_never_crashes(data: st.DataObject) -> None:
    """Byte flips, truncation and splices of a real model: a Graph or a ModelError, nothing else."""
    model = bytearray(_small_model())
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice", "header"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 24))):
            pos = data.draw(st.integers(0, len(model) - 1))
            model[pos] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        model = model[: data.draw(st.integers(0, len(model) - 1))]
    elif kind == "splice":
        pos = data.draw(st.integers(0, len(model)))
        model[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    else:  # corrupt the root table and vtables near the start
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, min(len(model) - 1, 256)))
            model[pos] = data.draw(st.integers(0, 255))
    try:
        graph = read_tflite_buffer(bytes(model))
    except ModelError as exc:
        assert "\n" not in str(exc)
    else:
        assert graph.ops


@settings(max_examples=40, deadline=3000)
@given(seed=st.integers(0, 2**16), cin=st.integers(1, 5), cout=st.integers(1, 6), size=st.integers(3, 10))
def test_generated_models_round_trip(seed: int, cin: int, cout: int, size: int) -> None:
    g = conv_graph(seed=seed, cin=cin, cout=cout, size=size)
    g2 = read_tflite_buffer(write_tflite(g))
    assert np.array_equal(g.tensors[1].data, g2.tensors[1].data)
    assert g2.tensors[1].quant.per_channel == (cout > 1)
    assert g2.ops[0].attrs == g.ops[0].attrs
