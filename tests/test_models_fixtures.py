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


# ---------------------------------------------------------------------------------------------
# Benchmark models (scripts/make_large_models.py).

LARGE = {
    "mbv2_035_160_int8.tflite": (1, 160, 160, 3),
    "mcunet_like_int8.tflite": (1, 160, 160, 3),
}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_model(name: str) -> None:
    path = MODELS_DIR / "large" / name
    assert path.is_file(), f"{path} missing: run scripts/make_large_models.py"
    assert path.stat().st_size < 1536 * 1024
    details, outputs = run_reference(path)
    assert list(details[0]["shape"]) == list(LARGE[name])
    assert details[0]["dtype"] == np.int8 and outputs[0].dtype == np.int8
    assert outputs[0].shape == (1, 10)
    names = [n for n, _ in read_ops(path)]
    assert names.count("DEPTHWISE_CONV_2D") >= 10
    if name.startswith("mcunet"):
        # Every stride-2 depthwise conv has its explicit PAD and VALID padding.
        ops = read_ops(path)
        stride2 = [i for i, (n, o) in enumerate(ops) if n == "DEPTHWISE_CONV_2D" and o["stride_h"] == 2]
        assert len(stride2) == 4
        assert all(ops[i][1]["padding"] == "VALID" and ops[i - 1][0] == "PAD" for i in stride2)


# ---------------------------------------------------------------------------------------------
# The bundled Fashion-MNIST model and tvm_mixq.datasets.

from tvm_mixq import datasets  # noqa: E402
from tvm_mixq.errors import InputDataError  # noqa: E402

FMNIST_INT8 = MODELS_DIR / "fmnist_dsconv_int8.tflite"
FMNIST_FLOAT = MODELS_DIR / "fmnist_dsconv_float.tflite"
FMNIST_CALIB = MODELS_DIR / "fmnist_calib.npz"
FMNIST_METRICS = json.loads((MODELS_DIR / "fmnist_metrics.json").read_text())
needs_fmnist = pytest.mark.skipif(
    not datasets.fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)


def _int8_input_quant() -> tuple[float, int]:
    from ai_edge_litert.interpreter import Interpreter

    det = Interpreter(model_path=str(FMNIST_INT8)).get_input_details()[0]
    return float(det["quantization"][0]), int(det["quantization"][1])


def test_fmnist_model_files() -> None:
    details, outputs = run_reference(FMNIST_INT8)
    assert list(details[0]["shape"]) == [1, 32, 32, 1] and details[0]["dtype"] == np.int8
    assert outputs[0].shape == (1, 10) and outputs[0].dtype == np.int8
    names = {n for n, _ in read_ops(FMNIST_INT8)}
    assert "RESIZE_NEAREST_NEIGHBOR" not in names and "DEPTHWISE_CONV_2D" in names
    fdetails, foutputs = run_reference(FMNIST_FLOAT)
    assert fdetails[0]["dtype"] == np.float32 and foutputs[0].shape == (1, 10)
    calib = np.load(FMNIST_CALIB)["input_0"]
    assert calib.shape == (200, 32, 32, 1) and calib.dtype == np.int8
    assert FMNIST_METRICS["tflite_float_test_top1"] >= 0.88
    assert FMNIST_METRICS["tflite_int8_test_top1"] >= 0.88
    assert (FMNIST_METRICS["input_scale"], FMNIST_METRICS["input_zero_point"]) == _int8_input_quant()


@needs_fmnist
def test_fmnist_calib_is_preprocessed_training_images() -> None:
    images, _ = datasets.load_fashion_mnist("train")
    scale, zero_point = _int8_input_quant()
    want = datasets.preprocess(images[FMNIST_METRICS["calib_train_indices"]], scale, zero_point)
    np.testing.assert_array_equal(np.load(FMNIST_CALIB)["input_0"], want)


@needs_fmnist
def test_fmnist_int8_accuracy_on_test_subset() -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    images, labels = datasets.load_fashion_mnist("test")
    scale, zero_point = _int8_input_quant()
    x = datasets.preprocess(images[:300], scale, zero_point)
    interp = Interpreter(model_path=str(FMNIST_INT8), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    pred = np.argmax(interp.get_tensor(interp.get_output_details()[0]["index"]), axis=-1)
    assert np.mean(pred == labels[:300]) >= 0.85


@needs_fmnist
def test_load_fashion_mnist() -> None:
    images, labels = datasets.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == [1000] * 10
    train, train_labels = datasets.load_fashion_mnist("train")
    assert train.shape == (60000, 28, 28) and train_labels.shape == (60000,)
    assert images[0].max() > 0 and not np.array_equal(images[0], train[0])


def test_preprocess_border_and_values() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    q = datasets.preprocess(images, 1.0 / 255.0, -128)
    assert q.shape == (3, 32, 32, 1) and q.dtype == np.int8
    np.testing.assert_array_equal(q[:, 2:30, 2:30, 0], images.astype(np.int16) - 128)
    border = np.ones((32, 32), dtype=bool)
    border[2:30, 2:30] = False
    assert np.all(q[:, border, 0] == -128)
    # Coarser scale: value 255 maps to round(1.0 / 0.01) + 5 = 105; ties round away from zero.
    q2 = datasets.preprocess(np.full((1, 28, 28), 255, np.uint8), 0.01, 5)
    assert np.all(q2[0, 2:30, 2:30] == 105) and np.all(q2[0, :2] == 5)
    f = datasets.preprocess_float(images[0])
    assert f.shape == (1, 32, 32, 1) and f.dtype == np.float32 and f.max() <= 1.0


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(InputDataError):
        datasets.preprocess(np.zeros((2, 32, 32), np.uint8), 1 / 255, -128)
    with pytest.raises(InputDataError):
        datasets.preprocess(np.zeros((2, 28, 28), np.uint8), 0.0, -128)


def _write_idx(path: Path, array: np.ndarray, truncate: int = 0) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(data[: len(data) - truncate] if truncate else data)


def test_read_idx_round_trip_and_errors(tmp_path: Path) -> None:
    import gzip

    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    plain = tmp_path / "images.idx"
    _write_idx(plain, arr)
    np.testing.assert_array_equal(datasets.read_idx(plain), arr)
    gz = tmp_path / "images.idx.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(datasets.read_idx(gz), arr)
    bad = tmp_path / "truncated.idx"
    _write_idx(bad, arr, truncate=5)
    with pytest.raises(InputDataError, match="header says"):
        datasets.read_idx(bad)
    junk = tmp_path / "junk.idx"
    junk.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(InputDataError, match="not an IDX"):
        datasets.read_idx(junk)
    with pytest.raises(InputDataError, match="no such file"):
        datasets.read_idx(tmp_path / "missing.gz")
    with pytest.raises(InputDataError, match="split"):
        datasets.load_fashion_mnist("validation", root=tmp_path)


def _write_idx_gz(path: Path, array: np.ndarray) -> None:
    import gzip

    raw = path.with_suffix(".raw")
    _write_idx(raw, array)
    path.write_bytes(gzip.compress(raw.read_bytes()))


def test_load_fashion_mnist_from_other_root(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    _write_idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (4, 28, 28)))
    _write_idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 3, 9, 1]))
    images, labels = datasets.load_fashion_mnist("test", root=tmp_path)
    assert images.shape == (4, 28, 28) and labels.tolist() == [0, 3, 9, 1]
    _write_idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 3, 12, 1]))
    with pytest.raises(InputDataError, match="outside 0-9"):
        datasets.load_fashion_mnist("test", root=tmp_path)
    _write_idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 3, 1]))
    with pytest.raises(InputDataError, match="3 labels for 4 images"):
        datasets.load_fashion_mnist("test", root=tmp_path)


@pytest.mark.slow
def test_fixtures_regenerate_identically(tmp_path: Path) -> None:
    """scripts/make_test_models.py writes byte-identical fixtures (needs TensorFlow 2.21)."""
    import subprocess
    import sys

    tf = pytest.importorskip("tensorflow")
    if tf.__version__ != MANIFEST["tensorflow"]:
        pytest.skip(f"fixtures were made with TensorFlow {MANIFEST['tensorflow']}, found {tf.__version__}")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_test_models.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=600)
    for entry in ENTRIES.values():
        assert (tmp_path / entry["file"]).read_bytes() == (OPS_DIR / entry["file"]).read_bytes(), entry["file"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == MANIFEST
