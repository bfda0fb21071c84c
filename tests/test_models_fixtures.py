"""The committed fixture models: the op fixtures of tests/models/ops/ and the bundled models.

Each manifest entry must exist, run in ai_edge_litert with the reference kernels and hold the
builtin ops (and the op options) the manifest says; together the fixtures must cover the op
list the TFLite reader supports. The Fashion-MNIST helpers of :mod:`tvm_mixq.datasets` are
checked against the real dataset when the Debian package is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tflite

REPO = Path(__file__).resolve().parent.parent
OPS_DIR = REPO / "tests" / "models" / "ops"
MODELS_DIR = REPO / "models"
MANIFEST = json.loads((OPS_DIR / "manifest.json").read_text())
ENTRIES = MANIFEST["models"]

#: Builtin ops the TFLite reader supports (issue 2); the fixtures must cover every one.
READER_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D",
    "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "SOFTMAX", "LOG_SOFTMAX", "QUANTIZE", "DEQUANTIZE",
    "TRANSPOSE", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR", "LOGISTIC", "HARD_SWISH", "RELU",
    "RELU6",
)

_BUILTIN = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACT = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}


def read_ops(path: Path) -> list[tuple[str, dict]]:
    """(builtin name, main options) of each operator of subgraph 0, read with ``tflite``."""
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = _BUILTIN[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        opts: dict = {}
        table = op.BuiltinOptions()
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and table is not None:
            o = tflite.Conv2DOptions() if name == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            o.Init(table.Bytes, table.Pos)
            opts = {
                "padding": _PADDING[o.Padding()],
                "stride_h": o.StrideH(),
                "stride_w": o.StrideW(),
                "dilation_h_factor": o.DilationHFactor(),
                "dilation_w_factor": o.DilationWFactor(),
                "fused_activation_function": _ACT[o.FusedActivationFunction()],
            }
            if name == "DEPTHWISE_CONV_2D":
                opts["depth_multiplier"] = o.DepthMultiplier()
        elif name == "FULLY_CONNECTED" and table is not None:
            o = tflite.FullyConnectedOptions()
            o.Init(table.Bytes, table.Pos)
            opts = {"fused_activation_function": _ACT[o.FusedActivationFunction()], "keep_num_dims": bool(o.KeepNumDims())}
        ops.append((name, opts))
    return ops


def run_reference(path: Path, seed: int = 0) -> tuple[list[dict], list[np.ndarray]]:
    """Run a model once in ai_edge_litert (reference kernels) on random inputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    rng = np.random.default_rng(seed)
    details = interp.get_input_details()
    for det in details:
        if det["dtype"] == np.int8:
            x = rng.integers(-128, 128, det["shape"], dtype=np.int8)
        else:
            x = rng.uniform(-1.0, 1.0, det["shape"]).astype(det["dtype"])
        interp.set_tensor(det["index"], x)
    interp.invoke()
    outs = interp.get_output_details()
    return details, [interp.get_tensor(d["index"]) for d in outs]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fixture_ops_match_manifest(name: str) -> None:
    entry = ENTRIES[name]
    path = OPS_DIR / entry["file"]
    assert path.is_file(), f"{path} missing: run scripts/make_test_models.py"
    assert path.stat().st_size == entry["bytes"]
    ops = read_ops(path)
    names = [n for n, _ in ops]
    assert names == entry["op_sequence"]
    assert set(entry["covers"]) <= set(names)
    for (op_name, opts), detail in zip(ops, entry["op_details"]):
        for key, value in opts.items():
            assert detail["options"][key] == value, (op_name, key)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fixture_runs_in_litert(name: str) -> None:
    entry = ENTRIES[name]
    details, outputs = run_reference(OPS_DIR / entry["file"])
    io_dtype = np.int8 if entry["io"] == "int8" else np.float32
    assert [list(d["shape"]) for d in details] == entry["inputs"]
    assert all(d["dtype"] == io_dtype for d in details)
    assert outputs and all(o.dtype == io_dtype for o in outputs)


def test_fixtures_cover_reader_ops() -> None:
    covered = {op for e in ENTRIES.values() for op in e["ops"]}
    assert set(READER_OPS) <= covered, sorted(set(READER_OPS) - covered)


def test_fixtures_cover_variants() -> None:
    """Per-channel weights, both paddings, strides, dilation, depth multiplier, fused activations, I/O."""
    convs = [d for e in ENTRIES.values() for d in e["op_details"] if d["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert {d["options"]["padding"] for d in convs} == {"SAME", "VALID"}
    assert {d["options"]["stride_h"] for d in convs} >= {1, 2}
    assert any(d["options"]["dilation_h_factor"] == 2 for d in convs if d["op"] == "CONV_2D")
    assert any(d["options"]["dilation_h_factor"] == 2 for d in convs if d["op"] == "DEPTHWISE_CONV_2D")
    assert any(d["options"].get("depth_multiplier") == 2 for d in convs)
    assert {d["options"]["fused_activation_function"] for d in convs} >= {"NONE", "RELU", "RELU6"}
    assert all(d["weight_scales"] > 1 for d in convs), "conv weights must be per-channel"
    fcs = [d for e in ENTRIES.values() for d in e["op_details"] if d["op"] == "FULLY_CONNECTED"]
    assert any(d["options"]["keep_num_dims"] for d in fcs)
    assert any(d["weight_scales"] == 1 and d["inputs"][2] is None for d in fcs)
    assert {e["io"] for e in ENTRIES.values()} == {"int8", "float32"}
    requant = [d for e in ENTRIES.values() for d in e["op_details"] if d["op"] == "QUANTIZE" and d["inputs"] == ["int8"]]
    assert requant, "an int8 -> int8 QUANTIZE (requantize) fixture is expected"


def test_fixture_sizes() -> None:
    sizes = [p.stat().st_size for p in OPS_DIR.glob("*.tflite")]
    assert len(sizes) == len(ENTRIES)
    assert max(sizes) < 60 * 1024
    assert sum(sizes) < 1024 * 1024
