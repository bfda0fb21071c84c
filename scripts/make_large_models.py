#!/usr/bin/env python3
"""Build the two int8 benchmark models for patch-based inference in ``models/large/``.

* ``mbv2_035_160_int8.tflite``: Keras ``MobileNetV2(alpha=0.35)`` at 160x160x3, 10 classes
  (1000 classes would not fit the 1.5 MB size budget).
* ``mcunet_like_int8.tflite``: an MCUNet-style network at 160x160x3: a stride-2 stem, then
  MobileNetV2 inverted residual blocks (expansion 3-5, kernels 3/5/7, widths 8-96) with an
  explicit symmetric ``ZeroPadding2D`` before every stride-2 convolution. Symmetric padding is
  not what SAME padding adds on an even input, so the converter keeps the quantized ``PAD`` ops
  that MCUNet models exported from other frameworks carry. (On an odd input the two are the
  same and the converter folds the PAD into the convolution; the resolution 160 keeps every
  stride-2 input even: 160, 80, 40, 20, 10.)

The weights are random (``weights=None``, fixed seed): these models measure memory and cycles,
not accuracy. To give the activations realistic per-channel statistics anyway, every
BatchNormalization layer takes its moving mean and variance from one training-mode pass over
a batch of synthetic images (momentum 0), so each feature map is roughly zero-mean, unit
variance before its ReLU6, as in a trained network, instead of shrinking or exploding with
depth. The synthetic images (low-frequency random colour fields plus noise, in [-1, 1], the
MobileNetV2 input range) also form the representative dataset of the full-integer int8
conversion (int8 input and output). Everything is seeded; the same TensorFlow version gives the
same files.

Usage::

    python scripts/make_large_models.py [--out models/large] [--only mbv2|mcunet]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LOG = logging.getLogger("make_large_models")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "models" / "large"
SEED = 20261121
#: Images in the batch that sets the BatchNormalization statistics.
BN_BATCH = 32
#: Images in the representative dataset of the int8 conversion.
CALIB_IMAGES = 100
MAX_BYTES = 1536 * 1024


@dataclass(frozen=True)
class InvertedResidualStage:
    """``repeats`` MobileNetV2 blocks; the first has ``stride``, the others stride 1."""

    expansion: int
    channels: int
    repeats: int
    stride: int
    kernel: int


#: The MCUNet-style body after the stem (160 -> 80) and the first separable block.
MCUNET_STAGES: tuple[InvertedResidualStage, ...] = (
    InvertedResidualStage(expansion=3, channels=16, repeats=2, stride=2, kernel=7),  # 80 -> 40
    InvertedResidualStage(expansion=4, channels=24, repeats=2, stride=2, kernel=5),  # 40 -> 20
    InvertedResidualStage(expansion=4, channels=40, repeats=2, stride=2, kernel=5),  # 20 -> 10
    InvertedResidualStage(expansion=4, channels=48, repeats=2, stride=1, kernel=3),
    InvertedResidualStage(expansion=5, channels=96, repeats=2, stride=2, kernel=3),  # 10 -> 5
)


def configure_tensorflow(threads: int = 2) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel(logging.ERROR)


def synthetic_images(n: int, size: int, seed: int) -> np.ndarray:
    """Reproducible image-like inputs in [-1, 1], shape [n, size, size, 3].

    Each image is a random 6x6 colour field upsampled bilinearly (smooth regions, edges between
    them) plus a little pixel noise, so neighbouring patches differ in their values, unlike
    i.i.d. noise.
    """
    rng = np.random.RandomState(seed)
    coarse = rng.uniform(-1.0, 1.0, (n, 6, 6, 3)).astype(np.float32)
    # Separable bilinear upsampling with numpy (no TensorFlow needed).
    pos = np.linspace(0.0, 5.0, size)
    lo = np.floor(pos).astype(int).clip(0, 4)
    frac = (pos - lo).astype(np.float32)
    rows = coarse[:, lo] * (1 - frac)[None, :, None, None] + coarse[:, lo + 1] * frac[None, :, None, None]
    img = rows[:, :, lo] * (1 - frac)[None, None, :, None] + rows[:, :, lo + 1] * frac[None, None, :, None]
    img += rng.normal(0.0, 0.08, img.shape).astype(np.float32)
    return np.clip(img, -1.0, 1.0).astype(np.float32)


def set_batchnorm_statistics(model, images: np.ndarray) -> None:
    """Give every BatchNormalization layer the statistics of one training-mode pass.

    With momentum 0 the moving mean/variance become those of ``images`` at that layer, and
    each layer normalises with the statistics its inputs really have after the layers before
    it were normalised the same way.
    """
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(images, training=True)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum


def randomise_batchnorm_affine(model, rng: np.random.RandomState) -> None:
    """Random gamma/beta so channels differ in range and sparsity after ReLU6 (as in trained nets)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(np.exp(rng.normal(0.0, 0.4, n)).astype(np.float32))
            layer.beta.assign(rng.normal(0.0, 0.5, n).astype(np.float32))


def build_mbv2(classes: int = 10):
    import keras

    return keras.applications.MobileNetV2(
        input_shape=(160, 160, 3), alpha=0.35, weights=None, classes=classes, classifier_activation="softmax"
    )


def build_mcunet_like(size: int = 160, classes: int = 10):
    """MCUNet-style network with explicit symmetric padding before stride-2 convolutions."""
    import keras
    from keras import layers

    def conv_bn(x, filters: int, kernel: int, stride: int, act: bool, name: str):
        if stride == 2 and kernel > 1:
            x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(filters, kernel, strides=stride, padding="valid" if stride == 2 else "same",
                          use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x) if act else x

    def dw_bn(x, kernel: int, stride: int, name: str):
        if stride == 2:
            x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="valid" if stride == 2 else "same",
                                   use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    inp = keras.Input((size, size, 3), name="image")
    x = conv_bn(inp, 16, 3, 2, True, "stem")
    x = dw_bn(x, 3, 1, "sep_dw")
    x = conv_bn(x, 8, 1, 1, False, "sep_pw")
    block = 0
    for stage in MCUNET_STAGES:
        for r in range(stage.repeats):
            stride = stage.stride if r == 0 else 1
            name = f"block{block}"
            cin = x.shape[-1]
            y = conv_bn(x, cin * stage.expansion, 1, 1, True, f"{name}_expand")
            y = dw_bn(y, stage.kernel, stride, f"{name}_dw")
            y = conv_bn(y, stage.channels, 1, 1, False, f"{name}_project")
            x = layers.Add(name=f"{name}_add")([x, y]) if stride == 1 and cin == stage.channels else y
            block += 1
    x = conv_bn(x, 160, 1, 1, True, "head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(classes, name="logits")(x)
    out = layers.Softmax(name="probs")(x)
    return keras.Model(inp, out, name="mcunet_like")


def convert_int8(model, calib: np.ndarray) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def op_histogram(model_bytes: bytes) -> dict[str, int]:
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = model.Subgraphs(0)
    hist: dict[str, int] = {}
    for i in range(sg.OperatorsLength()):
        code = model.OperatorCodes(sg.Operators(i).OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        hist[name] = hist.get(name, 0) + 1
    return hist


def check_against_float(model_bytes: bytes, keras_model, images: np.ndarray) -> tuple[float, float]:
    """Run the int8 model with the reference kernels; (top-1 agreement, max |prob diff|)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    s_in, z_in = inp["quantization"]
    s_out, z_out = out["quantization"]
    want = np.asarray(keras_model(images, training=False))
    agree, diff = 0, 0.0
    for i, img in enumerate(images):
        q = np.clip(np.round(img / s_in) + z_in, -128, 127).astype(np.int8)[None]
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        got = (interp.get_tensor(out["index"]).astype(np.float32) - z_out) * s_out
        agree += int(np.argmax(got) == np.argmax(want[i]))
        diff = max(diff, float(np.max(np.abs(got - want[i]))))
    return agree / len(images), diff


@dataclass(frozen=True)
class LargeModel:
    name: str
    file: str
    size: int
    build: Callable[[], object]


MODELS = (
    LargeModel("mbv2", "mbv2_035_160_int8.tflite", 160, build_mbv2),
    LargeModel("mcunet", "mcunet_like_int8.tflite", 160, build_mcunet_like),
)


def make(spec: LargeModel, out_dir: Path) -> Path:
    import keras

    keras.utils.set_random_seed(SEED)
    model = spec.build()
    randomise_batchnorm_affine(model, np.random.RandomState(SEED + 1))
    set_batchnorm_statistics(model, synthetic_images(BN_BATCH, spec.size, SEED + 2))
    calib = synthetic_images(CALIB_IMAGES, spec.size, SEED + 3)
    tfl = convert_int8(model, calib)
    if len(tfl) > MAX_BYTES:
        raise RuntimeError(f"{spec.file}: {len(tfl)} bytes exceeds {MAX_BYTES}")
    agree, diff = check_against_float(tfl, model, synthetic_images(16, spec.size, SEED + 4))
    path = out_dir / spec.file
    path.write_bytes(tfl)
    hist = op_histogram(tfl)
    print(f"{spec.file}: {len(tfl)} B, {model.count_params()} params, int8 vs float top-1 agreement "
          f"{agree:.2f}, max |prob diff| {diff:.3f}")
    print("  ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(hist.items())))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", choices=[m.name for m in MODELS], default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    configure_tensorflow()
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in MODELS:
        if args.only in (None, spec.name):
            make(spec, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
