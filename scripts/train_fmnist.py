#!/usr/bin/env python3
"""Train the bundled Fashion-MNIST model and write it as int8 and float TFLite.

The network is a small MobileNet-style classifier on a 32x32x1 input: a 3x3 stem convolution
then five depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, BatchNorm, ReLU6; widths
16-64, three stride-2 blocks), global average pooling and a dense layer to the 10 classes.
BatchNorm is folded into the convolutions by the TFLite converter.

Data: the real Fashion-MNIST of the Debian package ``dataset-fashion-mnist`` read with
:func:`tvm_mixq.datasets.load_fashion_mnist`; images are mapped to the 32x32 input by
:func:`tvm_mixq.datasets.preprocess_float` (the int8 model input by
:func:`tvm_mixq.datasets.preprocess`), so the model has no RESIZE op.

Outputs (``--out``, default ``models/``):

* ``fmnist_dsconv_int8.tflite``: full-integer int8 (int8 input and output), calibrated on 500
  training images;
* ``fmnist_dsconv_float.tflite``: the same network in float32;
* ``fmnist_calib.npz``: ``input_0``, 200 training images preprocessed and quantized to the int8
  input's scale and zero point, ``[200, 32, 32, 1]`` int8 (the first 200 of the 500 images of
  the representative dataset);
* ``fmnist_metrics.json``: the training settings and the test top-1 of both TFLite models
  measured with ai_edge_litert's reference kernels on the 10,000 test images.

Usage::

    python scripts/train_fmnist.py [--epochs 4] [--seed 7] [--out models]
    python scripts/train_fmnist.py --eval-only      # re-measure the saved .tflite files
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tvm_mixq.datasets import load_fashion_mnist, preprocess, preprocess_float  # noqa: E402

LOG = logging.getLogger("train_fmnist")
INT8_FILE = "fmnist_dsconv_int8.tflite"
FLOAT_FILE = "fmnist_dsconv_float.tflite"
CALIB_FILE = "fmnist_calib.npz"
METRICS_FILE = "fmnist_metrics.json"
#: (stride, pointwise channels) of the depthwise-separable blocks after the 16-channel stem.
BLOCKS: tuple[tuple[int, int], ...] = ((2, 32), (1, 32), (2, 64), (1, 64), (2, 64))


@dataclass
class TrainConfig:
    """Settings recorded with the model."""

    seed: int = 7
    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 3e-3
    bn_images: int = 2000
    representative_images: int = 500
    calib_images: int = 200
    threads: int = 2


def configure_tensorflow(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel(logging.ERROR)


def build_model():
    """The depthwise-separable CNN, float input ``[N, 32, 32, 1]`` in [0, 1], softmax output."""
    import keras
    from keras import layers

    def bn_relu6(x, name: str):
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    inp = keras.Input((32, 32, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = bn_relu6(x, "stem")
    for i, (stride, channels) in enumerate(BLOCKS):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = bn_relu6(x, f"dw{i}")
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"pw{i}")(x)
        x = bn_relu6(x, f"pw{i}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(10, name="logits")(x)
    out = layers.Softmax(name="probs")(x)
    return keras.Model(inp, out, name="fmnist_dsconv")


def train(cfg: TrainConfig, x_train: np.ndarray, y_train: np.ndarray):
    import keras

    keras.utils.set_random_seed(cfg.seed)
    model = build_model()
    steps = cfg.epochs * int(np.ceil(len(x_train) / cfg.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=2)
    rng = np.random.RandomState(cfg.seed + 1)
    set_batchnorm_statistics(model, x_train[rng.choice(len(x_train), cfg.bn_images, replace=False)])
    return model


def set_batchnorm_statistics(model, images: np.ndarray) -> None:
    """Re-estimate every BatchNormalization's moving mean/variance from ``images``.

    One training-mode pass with momentum 0: the moving statistics become the batch statistics
    of the final weights (the running averages of training lag behind the last updates).
    """
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(images, training=True)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum


def convert(model, representative: np.ndarray) -> tuple[bytes, bytes]:
    """(int8 model with int8 I/O, float32 model)."""
    import tensorflow as tf

    float_bytes = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([representative[i : i + 1]] for i in range(len(representative)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert(), float_bytes


def input_quantization(model_path: Path) -> tuple[float, int]:
    from ai_edge_litert.interpreter import Interpreter

    det = Interpreter(model_path=str(model_path)).get_input_details()[0]
    scale, zero_point = det["quantization"]
    return float(scale), int(zero_point)


def evaluate_tflite(model_path: Path, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Top-1 of a TFLite model with ai_edge_litert's reference kernels (BUILTIN_REF).

    ``images`` are the raw uint8 28x28 images; an int8 model gets :func:`preprocess` with its
    own input scale and zero point, a float model :func:`preprocess_float`.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(model_path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    correct = 0
    resized_to = None
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        if inp["dtype"] == np.int8:
            scale, zero_point = inp["quantization"]
            x = preprocess(chunk, scale, zero_point)
        else:
            x = preprocess_float(chunk)
        if resized_to != len(chunk):
            interp.resize_tensor_input(inp["index"], list(x.shape))
            interp.allocate_tensors()
            resized_to = len(chunk)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        pred = np.argmax(interp.get_tensor(out["index"]), axis=-1)
        correct += int(np.sum(pred == labels[start : start + batch]))
    return correct / len(images)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "models")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--eval-only", action="store_true", help="only measure the saved .tflite files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = TrainConfig(seed=args.seed, epochs=args.epochs)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    x_test, y_test = load_fashion_mnist("test")
    metrics_path = out / METRICS_FILE
    metrics: dict = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if not args.eval_only:
        configure_tensorflow(cfg.threads)
        x_train_u8, y_train = load_fashion_mnist("train")
        x_train = preprocess_float(x_train_u8)
        t0 = time.time()
        model = train(cfg, x_train, y_train)
        train_seconds = time.time() - t0
        keras_acc = float(model.evaluate(preprocess_float(x_test), y_test, verbose=0)[1])
        LOG.info("trained in %.0f s, Keras float test top-1 %.4f", train_seconds, keras_acc)

        rng = np.random.RandomState(cfg.seed)
        pick = rng.choice(len(x_train_u8), cfg.representative_images, replace=False)
        int8_bytes, float_bytes = convert(model, x_train[pick])
        (out / INT8_FILE).write_bytes(int8_bytes)
        (out / FLOAT_FILE).write_bytes(float_bytes)
        scale, zero_point = input_quantization(out / INT8_FILE)
        calib = preprocess(x_train_u8[pick[: cfg.calib_images]], scale, zero_point)
        np.savez_compressed(out / CALIB_FILE, input_0=calib)
        metrics = {
            "config": asdict(cfg),
            "blocks": [list(b) for b in BLOCKS],
            "params": int(model.count_params()),
            "train_seconds": round(train_seconds, 1),
            "keras_float_test_top1": round(keras_acc, 4),
            "calib_train_indices": [int(i) for i in pick[: cfg.calib_images]],
            "input_scale": scale,
            "input_zero_point": zero_point,
        }

    t0 = time.time()
    metrics["tflite_float_test_top1"] = evaluate_tflite(out / FLOAT_FILE, x_test, y_test)
    metrics["tflite_int8_test_top1"] = evaluate_tflite(out / INT8_FILE, x_test, y_test)
    metrics["eval_seconds"] = round(time.time() - t0, 1)
    metrics["int8_bytes"] = (out / INT8_FILE).stat().st_size
    metrics["float_bytes"] = (out / FLOAT_FILE).stat().st_size
    metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")
    LOG.info(
        "test top-1 (ai_edge_litert BUILTIN_REF, 10k images): float %.4f, int8 %.4f",
        metrics["tflite_float_test_top1"],
        metrics["tflite_int8_test_top1"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
