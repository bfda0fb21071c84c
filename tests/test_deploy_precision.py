"""The mixed-precision step of deploy: the measured cost model finds the target's cost table."""
from __future__ import annotations

import pytest

from paths import MODELS
from tvm_mixq.deploy import mixed_precision_graph
from tvm_mixq.errors import MixqError
from tvm_mixq.options import MixqOptions
from tvm_mixq.reader import read_tflite

MODEL = MODELS / "fmnist_dsconv_int8.tflite"
CALIB = MODELS / "fmnist_calib.npz"


def test_measured_cost_model_uses_the_targets_table() -> None:
    graph = read_tflite(MODEL)
    options = MixqOptions.from_config({"mixq.cost_model": "measured"})
    out = mixed_precision_graph(graph, options, CALIB, lambda msg: None, "cortex-m7")
    assert len(out.tensors) == len(graph.tensors)
    assert any(t.bits < 8 for t in out.tensors if not t.is_const)


def test_measured_cost_model_without_target_is_refused() -> None:
    graph = read_tflite(MODEL)
    options = MixqOptions.from_config({"mixq.cost_model": "measured"})
    with pytest.raises(MixqError, match="cost table"):
        mixed_precision_graph(graph, options, CALIB, lambda msg: None)
