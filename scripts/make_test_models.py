#!/usr/bin/env python3
"""Generate the small full-integer int8 TFLite fixtures in ``tests/models/ops/``.

Each fixture holds one or a few builtin ops, made with the TensorFlow 2.21 converter from a
``tf.function`` of plain ``tf.nn`` / ``tf`` ops with random weights (fixed seeds), fully
quantized to int8 with a representative dataset of random inputs. The set covers the builtin
op list of the TFLite reader (CONV_2D ... RELU6) with the variants the reference interpreter must
get right: per-channel weights, SAME/VALID padding, strides, dilation, depth multiplier, fused
RELU/RELU6, broadcasting, float input/output (QUANTIZE first, DEQUANTIZE last) and int8 I/O.

Every generated file is checked before it is kept: it must run in ai_edge_litert with the
reference kernels (``OpResolverType.BUILTIN_REF``), its int8 result must follow the float
function it was converted from, and the builtin ops it really contains (read from the
flatbuffer with the ``tflite`` package) must include the ops the spec asked for.
``manifest.json`` records the real op list and the options of every op.

Usage::

    python scripts/make_test_models.py [--out tests/models/ops] [--only NAME ...]

The output is reproducible: the same TensorFlow version writes byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LOG = logging.getLogger("make_test_models")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "models" / "ops"
#: Number of random samples in the representative (calibration) dataset.
CALIB_SAMPLES = 64
#: Size limit of one fixture file.
MAX_FILE_BYTES = 60 * 1024

TensorFn = Callable[..., object]


@dataclass(frozen=True)
class OpModelSpec:
    """One fixture model.

    Attributes
    ----------
    name:
        File stem of the fixture (``<name>.tflite``).
    inputs:
        Shapes of the float inputs of the function (batch 1, NHWC for images).
    build:
        ``build(rng) -> fn`` returns the function of TensorFlow ops to convert; ``rng`` gives
        its weights.
    expect_ops:
        Builtin ops the converted model must contain (checked after conversion).
    float_io:
        Keep float32 model inputs/outputs (QUANTIZE first, DEQUANTIZE last) instead of int8.
    notes:
        What the fixture exercises, copied to the manifest.
    input_range:
        Range of the uniform random inputs of the representative dataset.
    per_tensor_dense:
        Quantize FULLY_CONNECTED weights per tensor (the converter's default is per channel).
    """

    name: str
    inputs: tuple[tuple[int, ...], ...]
    build: Callable[[np.random.RandomState], TensorFn]
    expect_ops: tuple[str, ...]
    float_io: bool = False
    notes: str = ""
    input_range: tuple[float, float] = (-1.0, 1.0)
    per_tensor_dense: bool = False


# ---------------------------------------------------------------------------------------------
# Random weights. Output channels get very different magnitudes so per-channel scales matter.


def _channel_gains(rng: np.random.RandomState, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(0.1), np.log(2.0), n)).astype(np.float32)


def conv_weights(rng: np.random.RandomState, kh: int, kw: int, cin: int, cout: int) -> np.ndarray:
    """HWIO filter, He-like scale, with a random gain per output channel."""
    w = rng.randn(kh, kw, cin, cout).astype(np.float32) * np.sqrt(2.0 / (kh * kw * cin))
    return (w * _channel_gains(rng, cout)[None, None, None, :]).astype(np.float32)


def dw_weights(rng: np.random.RandomState, kh: int, kw: int, cin: int, mult: int) -> np.ndarray:
    """Depthwise filter [kh, kw, cin, mult], random gain per output channel."""
    w = rng.randn(kh, kw, cin, mult).astype(np.float32) * np.sqrt(2.0 / (kh * kw))
    gains = _channel_gains(rng, cin * mult).reshape(cin, mult)
    return (w * gains[None, None, :, :]).astype(np.float32)


def fc_weights(rng: np.random.RandomState, cin: int, cout: int) -> np.ndarray:
    w = rng.randn(cin, cout).astype(np.float32) * np.sqrt(2.0 / cin)
    return (w * _channel_gains(rng, cout)[None, :]).astype(np.float32)


def bias(rng: np.random.RandomState, n: int, scale: float = 0.2) -> np.ndarray:
    return (rng.randn(n) * scale).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Builders. Each returns a function of TensorFlow ops; TensorFlow is imported lazily so that
# ``--help`` works without it.


def _tf():
    import tensorflow as tf

    return tf


def conv_block(
    rng: np.random.RandomState,
    cin: int,
    cout: int,
    k: int,
    stride: int = 1,
    padding: str = "SAME",
    dilation: int = 1,
    act: str | None = None,
    use_bias: bool = True,
) -> TensorFn:
    """CONV_2D with bias and an optional fused activation."""
    tf = _tf()
    w = conv_weights(rng, k, k, cin, cout)
    b = bias(rng, cout)

    def fn(x):
        y = tf.nn.conv2d(x, w, strides=stride, padding=padding, dilations=dilation)
        if use_bias:
            y = tf.nn.bias_add(y, b)
        return _activation(y, act)

    return fn


def dw_block(
    rng: np.random.RandomState,
    cin: int,
    k: int,
    stride: int = 1,
    padding: str = "SAME",
    dilation: int = 1,
    mult: int = 1,
    act: str | None = None,
) -> TensorFn:
    """DEPTHWISE_CONV_2D with bias and an optional fused activation."""
    tf = _tf()
    w = dw_weights(rng, k, k, cin, mult)
    b = bias(rng, cin * mult)

    def fn(x):
        y = tf.nn.depthwise_conv2d(
            x, w, strides=[1, stride, stride, 1], padding=padding, dilations=[dilation, dilation]
        )
        return _activation(tf.nn.bias_add(y, b), act)

    return fn


def _activation(y, act: str | None):
    tf = _tf()
    if act is None:
        return y
    if act == "relu":
        return tf.nn.relu(y)
    if act == "relu6":
        return tf.nn.relu6(y)
    raise ValueError(act)


def b_conv(**kw) -> Callable[[np.random.RandomState], TensorFn]:
    return lambda rng: conv_block(rng, **kw)


def b_dw(**kw) -> Callable[[np.random.RandomState], TensorFn]:
    return lambda rng: dw_block(rng, **kw)


def b_fc(cin: int, cout: int, act: str | None = None, softmax: bool = False, use_bias: bool = True):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        w = fc_weights(rng, cin, cout)
        b = bias(rng, cout)

        def fn(x):
            y = tf.matmul(x, w)
            y = _activation(y + b if use_bias else y, act)
            return tf.nn.softmax(y) if softmax else y

        return fn

    return build


def b_fc_keep_dims(rng: np.random.RandomState) -> TensorFn:
    """Dense layer on a rank-3 input [1, 4, 16] -> [1, 4, 8] (FULLY_CONNECTED keep_num_dims)."""
    tf = _tf()
    w = fc_weights(rng, 16, 8)
    b = bias(rng, 8)

    def fn(x):
        return tf.nn.relu(tf.tensordot(x, w, axes=[[2], [0]]) + b)

    return fn


def b_conv_flatten_fc_softmax(rng: np.random.RandomState) -> TensorFn:
    """Classifier head: CONV_2D -> RESHAPE (flatten) -> FULLY_CONNECTED -> SOFTMAX."""
    tf = _tf()
    conv = conv_block(rng, 3, 4, 3, stride=2, act="relu")
    w = fc_weights(rng, 4 * 4 * 4, 10)
    b = bias(rng, 10)

    def fn(x):
        y = tf.reshape(conv(x), [1, -1])
        return tf.nn.softmax(tf.matmul(y, w) + b)

    return fn


def b_binary(op: str, act: str | None = None, const_shape: tuple[int, ...] | None = None):
    """ADD or MUL of the two model inputs, or of the input and a constant of ``const_shape``."""

    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        const = None if const_shape is None else rng.uniform(-1.0, 1.0, const_shape).astype(np.float32)

        def fn(a, b=None):
            other = const if b is None else b
            y = tf.add(a, other) if op == "add" else tf.multiply(a, other)
            return _activation(y, act)

        return fn

    return build


def b_add_after_convs(rng: np.random.RandomState) -> TensorFn:
    """Residual ADD of two conv branches (different input scales), fused RELU."""
    tf = _tf()
    c1 = conv_block(rng, 4, 8, 3)
    c2 = conv_block(rng, 4, 8, 1)

    def fn(x):
        return tf.nn.relu(c1(x) + c2(x))

    return fn


def b_pool(kind: str, k: int, stride: int, padding: str, act: str | None = None):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()

        def fn(x):
            if kind == "avg":
                y = tf.nn.avg_pool2d(x, ksize=k, strides=stride, padding=padding)
            else:
                y = tf.nn.max_pool2d(x, ksize=k, strides=stride, padding=padding)
            return _activation(y, act)

        return fn

    return build


def b_mean(axes: tuple[int, ...], keepdims: bool):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        return lambda x: tf.reduce_mean(x, axis=list(axes), keepdims=keepdims)

    return build


def b_pad_conv(rng: np.random.RandomState) -> TensorFn:
    """Asymmetric zero PAD then a VALID stride-2 conv.

    The pads (top 1, bottom 0, left 2, right 1) are not what SAME would add: a PAD that SAME
    padding reproduces is folded into the convolution by the converter.
    """
    tf = _tf()
    conv = conv_block(rng, 4, 8, 3, stride=2, padding="VALID", act="relu6")
    return lambda x: conv(tf.pad(x, [[0, 0], [1, 0], [2, 1], [0, 0]]))


def b_pad_dw(rng: np.random.RandomState) -> TensorFn:
    """Symmetric PAD then a stride-2 VALID depthwise conv (MCUNet style)."""
    tf = _tf()
    dw = dw_block(rng, 8, 3, stride=2, padding="VALID", act="relu6")
    return lambda x: dw(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))


def b_pad(paddings: list[list[int]]):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        return lambda x: tf.pad(x, paddings)

    return build


def b_reshape(shape: list[int]):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        return lambda x: tf.reshape(x, shape)

    return build


def b_unary(kind: str, beta: float = 1.0):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        fns = {
            "softmax": lambda x: tf.nn.softmax(x * beta) if beta != 1.0 else tf.nn.softmax(x),
            "log_softmax": lambda x: tf.nn.log_softmax(x),
            "logistic": lambda x: tf.math.sigmoid(x),
            "hard_swish": lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0),
            "relu": lambda x: tf.nn.relu(x),
            "relu6": lambda x: tf.nn.relu6(x),
            "identity_quant": lambda x: x,
        }
        return fns[kind]

    return build


def b_transpose(perm: list[int]):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        return lambda x: tf.transpose(x, perm)

    return build


def b_concat_relu(rng: np.random.RandomState) -> TensorFn:
    """Two conv branches -> CONCATENATION (channels) -> standalone RELU."""
    tf = _tf()
    c1 = conv_block(rng, 4, 6, 3)
    c2 = conv_block(rng, 4, 5, 1)
    return lambda x: tf.nn.relu(tf.concat([c1(x), c2(x)], axis=3))


def b_concat_relu6(rng: np.random.RandomState) -> TensorFn:
    """Depthwise and conv branches -> CONCATENATION -> standalone RELU6."""
    tf = _tf()
    c1 = dw_block(rng, 4, 3)
    c2 = conv_block(rng, 4, 4, 1)
    return lambda x: tf.nn.relu6(tf.concat([c1(x), c2(x)], axis=3))


def b_concat_inputs(axis: int):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()
        return lambda a, b: tf.concat([a, b], axis=axis)

    return build


def b_resize(size: tuple[int, int], half_pixel: bool, align_corners: bool = False):
    def build(rng: np.random.RandomState) -> TensorFn:
        tf = _tf()

        def fn(x):
            return tf.compat.v1.image.resize_nearest_neighbor(
                x, size, align_corners=align_corners, half_pixel_centers=half_pixel
            )

        return fn

    return build


def b_conv_hard_swish(rng: np.random.RandomState) -> TensorFn:
    """CONV_2D followed by hard-swish (MobileNetV3 style)."""
    tf = _tf()
    conv = conv_block(rng, 4, 8, 3)

    def fn(x):
        y = conv(x)
        return y * tf.nn.relu6(y + 3.0) * (1.0 / 6.0)

    return fn


def b_conv_logistic_mul(rng: np.random.RandomState) -> TensorFn:
    """Squeeze-and-excite gate: MEAN -> 1x1 conv -> LOGISTIC -> MUL (broadcast)."""
    tf = _tf()
    conv = conv_block(rng, 4, 8, 3, act="relu")
    se = conv_block(rng, 8, 8, 1)

    def fn(x):
        y = conv(x)
        g = tf.math.sigmoid(se(tf.reduce_mean(y, axis=[1, 2], keepdims=True)))
        return y * g

    return fn


def b_logistic_concat(rng: np.random.RandomState) -> TensorFn:
    """LOGISTIC (fixed output scale 1/256) concatenated with a conv branch.

    CONCATENATION needs one scale on all inputs, so the converter requantizes the LOGISTIC
    output with an int8 -> int8 QUANTIZE.
    """
    tf = _tf()
    conv = conv_block(rng, 4, 4, 3)
    return lambda x: tf.concat([tf.math.sigmoid(x), conv(x)], axis=3)


def b_two_outputs(rng: np.random.RandomState) -> TensorFn:
    """Two model outputs: a conv branch and a max-pool branch of the same input."""
    tf = _tf()
    conv = conv_block(rng, 4, 6, 3, act="relu")
    return lambda x: (conv(x), tf.nn.max_pool2d(x, 2, 2, "VALID"))


def b_mobilenet_block(rng: np.random.RandomState) -> TensorFn:
    """Inverted residual block and classifier: conv, expand, depthwise, project, ADD, MEAN, FC."""
    tf = _tf()
    stem = conv_block(rng, 3, 8, 3, stride=2, act="relu6")
    expand = conv_block(rng, 8, 24, 1, act="relu6")
    dw = dw_block(rng, 24, 3, act="relu6")
    project = conv_block(rng, 24, 8, 1)
    w = fc_weights(rng, 8, 10)
    b = bias(rng, 10)

    def fn(x):
        y = stem(x)
        y = y + project(dw(expand(y)))
        y = tf.reduce_mean(y, axis=[1, 2])
        return tf.nn.softmax(tf.matmul(y, w) + b)

    return fn


def specs() -> list[OpModelSpec]:
    """All fixtures, in manifest order."""
    img8 = ((1, 8, 8, 4),)
    img9 = ((1, 9, 9, 4),)
    return [
        # CONV_2D
        OpModelSpec("conv2d_3x3_same_s1_relu", img8, b_conv(cin=4, cout=8, k=3, act="relu"),
                    ("CONV_2D",), notes="3x3 SAME stride 1, per-channel weights, fused RELU"),
        OpModelSpec("conv2d_3x3_valid_s2_relu6", img9, b_conv(cin=4, cout=8, k=3, stride=2, padding="VALID", act="relu6"),
                    ("CONV_2D",), notes="3x3 VALID stride 2, fused RELU6, odd input size"),
        OpModelSpec("conv2d_3x3_same_s2", img8, b_conv(cin=4, cout=8, k=3, stride=2),
                    ("CONV_2D",), notes="3x3 SAME stride 2 (asymmetric implicit padding), no activation"),
        OpModelSpec("conv2d_5x5_same_s1_relu6", img8, b_conv(cin=4, cout=6, k=5, act="relu6"),
                    ("CONV_2D",), notes="5x5 SAME stride 1, fused RELU6"),
        OpModelSpec("conv2d_5x5_valid_s2", ((1, 11, 11, 3),), b_conv(cin=3, cout=8, k=5, stride=2, padding="VALID"),
                    ("CONV_2D",), notes="5x5 VALID stride 2, 3 input channels"),
        OpModelSpec("conv2d_1x1_relu6", img8, b_conv(cin=4, cout=16, k=1, act="relu6"),
                    ("CONV_2D",), notes="1x1 pointwise, fused RELU6"),
        OpModelSpec("conv2d_1x1_s2_valid", img8, b_conv(cin=4, cout=8, k=1, stride=2, padding="VALID"),
                    ("CONV_2D",), notes="1x1 stride 2 VALID (downsampling shortcut)"),
        OpModelSpec("conv2d_3x3_dilation2_same", ((1, 10, 10, 4),), b_conv(cin=4, cout=8, k=3, dilation=2, act="relu"),
                    ("CONV_2D",), notes="3x3 dilation 2 SAME, fused RELU"),
        OpModelSpec("conv2d_3x3_dilation2_valid", ((1, 10, 10, 4),), b_conv(cin=4, cout=8, k=3, dilation=2, padding="VALID"),
                    ("CONV_2D",), notes="3x3 dilation 2 VALID"),
        OpModelSpec("conv2d_3x3_nobias", img8, b_conv(cin=4, cout=8, k=3, use_bias=False),
                    ("CONV_2D",), notes="no bias in the TensorFlow graph; the converter still adds an int32 zero bias"),
        OpModelSpec("conv2d_3x3_float_io", img8, b_conv(cin=4, cout=8, k=3, act="relu"),
                    ("QUANTIZE", "CONV_2D", "DEQUANTIZE"), float_io=True,
                    notes="float32 input/output: QUANTIZE first, DEQUANTIZE last"),
        # DEPTHWISE_CONV_2D
        OpModelSpec("dwconv_3x3_same_s1_relu6", img8, b_dw(cin=4, k=3, act="relu6"),
                    ("DEPTHWISE_CONV_2D",), notes="3x3 SAME stride 1, per-channel, fused RELU6"),
        OpModelSpec("dwconv_3x3_valid_s1_relu", img8, b_dw(cin=4, k=3, padding="VALID", act="relu"),
                    ("DEPTHWISE_CONV_2D",), notes="3x3 VALID stride 1, fused RELU"),
        OpModelSpec("dwconv_3x3_same_s2", img9, b_dw(cin=4, k=3, stride=2),
                    ("DEPTHWISE_CONV_2D",), notes="3x3 SAME stride 2, odd input size"),
        OpModelSpec("dwconv_3x3_valid_s2", img9, b_dw(cin=4, k=3, stride=2, padding="VALID"),
                    ("DEPTHWISE_CONV_2D",), notes="3x3 VALID stride 2"),
        OpModelSpec("dwconv_3x3_dm2", img8, b_dw(cin=4, k=3, mult=2, act="relu"),
                    ("DEPTHWISE_CONV_2D",), notes="depth_multiplier 2 (4 -> 8 channels), fused RELU"),
        OpModelSpec("dwconv_3x3_dilation2", ((1, 10, 10, 4),), b_dw(cin=4, k=3, dilation=2),
                    ("DEPTHWISE_CONV_2D",), notes="dilation 2 SAME"),
        OpModelSpec("dwconv_5x5_same_s2_relu6", ((1, 10, 10, 8),), b_dw(cin=8, k=5, stride=2, act="relu6"),
                    ("DEPTHWISE_CONV_2D",), notes="5x5 SAME stride 2, fused RELU6"),
        # FULLY_CONNECTED
        OpModelSpec("fc_relu", ((1, 32),), b_fc(32, 16, act="relu"),
                    ("FULLY_CONNECTED",), notes="fused RELU"),
        OpModelSpec("fc_noact", ((1, 32),), b_fc(32, 10),
                    ("FULLY_CONNECTED",), notes="no activation"),
        OpModelSpec("fc_keep_num_dims", ((1, 4, 16),), b_fc_keep_dims,
                    ("FULLY_CONNECTED",), notes="rank-3 input [1,4,16] -> [1,4,8]"),
        OpModelSpec("fc_per_tensor_nobias", ((1, 32),), b_fc(32, 12, use_bias=False),
                    ("FULLY_CONNECTED",), per_tensor_dense=True,
                    notes="per-tensor weight scale (as in MLPerf Tiny models), no bias input (-1)"),
        OpModelSpec("fc_softmax_float_io", ((1, 32),), b_fc(32, 10, softmax=True),
                    ("QUANTIZE", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"), float_io=True,
                    notes="classifier with float I/O"),
        OpModelSpec("conv_flatten_fc_softmax", ((1, 8, 8, 3),), b_conv_flatten_fc_softmax,
                    ("CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"), notes="flatten then dense head"),
        # ADD / MUL
        OpModelSpec("add_two_inputs", (img8[0], img8[0]), b_binary("add"),
                    ("ADD",), notes="ADD of two int8 inputs with different scales"),
        OpModelSpec("add_relu_broadcast", ((1, 4, 4, 8), (1, 1, 1, 8)), b_binary("add", act="relu"),
                    ("ADD",), notes="ADD with broadcast of a [1,1,1,8] input, fused RELU"),
        OpModelSpec("add_const_broadcast", ((1, 4, 4, 8),), b_binary("add", const_shape=(8,)),
                    ("ADD",), notes="ADD of a constant per-channel vector"),
        OpModelSpec("add_residual_relu", img8, b_add_after_convs,
                    ("CONV_2D", "ADD"), notes="residual ADD of two conv branches, fused RELU"),
        OpModelSpec("mul_two_inputs", (img8[0], img8[0]), b_binary("mul"),
                    ("MUL",), notes="MUL of two int8 inputs"),
        OpModelSpec("mul_broadcast_relu6", ((1, 4, 4, 8), (1, 1, 1, 8)), b_binary("mul", act="relu6"),
                    ("MUL",), notes="MUL with broadcast, fused RELU6"),
        OpModelSpec("mul_const", ((1, 4, 4, 8),), b_binary("mul", const_shape=(1, 1, 1, 8)),
                    ("MUL",), notes="MUL by a constant per-channel vector"),
        # Pooling / MEAN
        OpModelSpec("avgpool_2x2_s2_valid", img8, b_pool("avg", 2, 2, "VALID"),
                    ("AVERAGE_POOL_2D",), notes="2x2 stride 2 VALID"),
        OpModelSpec("avgpool_3x3_s1_same", img8, b_pool("avg", 3, 1, "SAME"),
                    ("AVERAGE_POOL_2D",), notes="3x3 stride 1 SAME (edge windows average fewer values)"),
        OpModelSpec("avgpool_3x3_s2_same_relu6", img9, b_pool("avg", 3, 2, "SAME", act="relu6"),
                    ("AVERAGE_POOL_2D",), notes="3x3 stride 2 SAME, RELU6 after"),
        OpModelSpec("maxpool_2x2_s2_valid", img8, b_pool("max", 2, 2, "VALID"),
                    ("MAX_POOL_2D",), notes="2x2 stride 2 VALID"),
        OpModelSpec("maxpool_3x3_s2_same", img9, b_pool("max", 3, 2, "SAME"),
                    ("MAX_POOL_2D",), notes="3x3 stride 2 SAME"),
        OpModelSpec("mean_spatial_keepdims", img8, b_mean((1, 2), True),
                    ("MEAN",), notes="spatial mean over H,W keepdims (global average pool)"),
        OpModelSpec("mean_spatial", ((1, 5, 5, 8),), b_mean((1, 2), False),
                    ("MEAN",), notes="spatial mean over H,W without keepdims"),
        # PAD / RESHAPE / TRANSPOSE / CONCATENATION / RESIZE
        OpModelSpec("pad_symmetric", img8, b_pad([[0, 0], [1, 1], [1, 1], [0, 0]]),
                    ("PAD",), notes="zero pad 1 on each spatial side (pads the zero point)"),
        OpModelSpec("pad_asymmetric_conv", img8, b_pad_conv,
                    ("PAD", "CONV_2D"), notes="pad bottom/right by 1, then 3x3 VALID stride-2 conv"),
        OpModelSpec("pad_dwconv_s2", ((1, 8, 8, 8),), b_pad_dw,
                    ("PAD", "DEPTHWISE_CONV_2D"), notes="explicit pad then stride-2 VALID depthwise (MCUNet style)"),
        OpModelSpec("reshape_flatten", img8, b_reshape([1, 256]),
                    ("RESHAPE",), notes="NHWC -> [1, 256]"),
        OpModelSpec("reshape_4d", ((1, 4, 4, 8),), b_reshape([1, 8, 2, 8]),
                    ("RESHAPE",), notes="[1,4,4,8] -> [1,8,2,8]"),
        OpModelSpec("transpose_nchw", img8, b_transpose([0, 3, 1, 2]),
                    ("TRANSPOSE",), notes="NHWC -> NCHW"),
        OpModelSpec("transpose_hw", ((1, 4, 6, 8),), b_transpose([0, 2, 1, 3]),
                    ("TRANSPOSE",), notes="swap H and W"),
        OpModelSpec("concat_conv_relu", img8, b_concat_relu,
                    ("CONV_2D", "CONCATENATION", "RELU"), notes="channel concat of two conv branches, then standalone RELU"),
        OpModelSpec("concat_dw_relu6", img8, b_concat_relu6,
                    ("DEPTHWISE_CONV_2D", "CONV_2D", "CONCATENATION", "RELU6"),
                    notes="channel concat of depthwise and conv branches, then standalone RELU6"),
        OpModelSpec("concat_inputs_axis1", ((1, 4, 4, 8), (1, 3, 4, 8)), b_concat_inputs(1),
                    ("CONCATENATION",), notes="concat of two int8 inputs along H"),
        OpModelSpec("concat_inputs_axis3", ((1, 4, 4, 8), (1, 4, 4, 3)), b_concat_inputs(3),
                    ("CONCATENATION",), notes="concat of two int8 inputs along C"),
        OpModelSpec("resize_nearest_2x", ((1, 4, 4, 8),), b_resize((8, 8), half_pixel=False),
                    ("RESIZE_NEAREST_NEIGHBOR",), notes="nearest 2x upsample (align_corners=False, half_pixel_centers=False)"),
        OpModelSpec("resize_nearest_half_pixel", ((1, 5, 5, 4),), b_resize((8, 8), half_pixel=True),
                    ("RESIZE_NEAREST_NEIGHBOR",), notes="5x5 -> 8x8 with half_pixel_centers=True (TF2 default)"),
        OpModelSpec("resize_nearest_align_corners", ((1, 5, 5, 4),), b_resize((9, 9), half_pixel=False, align_corners=True),
                    ("RESIZE_NEAREST_NEIGHBOR",), notes="5x5 -> 9x9 with align_corners=True"),
        # Activations / softmax
        OpModelSpec("softmax", ((1, 10),), b_unary("softmax"),
                    ("SOFTMAX",), notes="softmax over 10 classes", input_range=(-4.0, 4.0)),
        OpModelSpec("softmax_beta", ((1, 4, 6),), b_unary("softmax", beta=0.5),
                    ("SOFTMAX",), notes="softmax of x*0.5 on a rank-3 input: the converter keeps MUL, SOFTMAX beta stays 1.0",
                    input_range=(-4.0, 4.0)),
        OpModelSpec("log_softmax", ((1, 10),), b_unary("log_softmax"),
                    ("LOG_SOFTMAX",), notes="log-softmax over 10 classes", input_range=(-4.0, 4.0)),
        OpModelSpec("logistic", ((1, 4, 4, 8),), b_unary("logistic"),
                    ("LOGISTIC",), notes="sigmoid", input_range=(-6.0, 6.0)),
        OpModelSpec("hard_swish", ((1, 4, 4, 8),), b_unary("hard_swish"),
                    ("HARD_SWISH",), notes="x*relu6(x+3)/6 pattern", input_range=(-5.0, 5.0)),
        OpModelSpec("conv_hard_swish", img8, b_conv_hard_swish,
                    ("CONV_2D", "HARD_SWISH"), notes="conv then hard-swish (MobileNetV3 style)"),
        OpModelSpec("relu", ((1, 4, 4, 8),), b_unary("relu"),
                    ("RELU",), notes="standalone RELU on an int8 input"),
        OpModelSpec("relu6", ((1, 4, 4, 8),), b_unary("relu6"),
                    ("RELU6",), notes="standalone RELU6 on an int8 input", input_range=(-8.0, 8.0)),
        OpModelSpec("se_logistic_mul", img8, b_conv_logistic_mul,
                    ("CONV_2D", "MEAN", "LOGISTIC", "MUL"), notes="squeeze-and-excite gate with broadcast MUL"),
        # QUANTIZE / DEQUANTIZE alone, and whole small networks
        OpModelSpec("quantize_dequantize", ((1, 4, 4, 8),), b_unary("relu"),
                    ("QUANTIZE", "RELU", "DEQUANTIZE"), float_io=True,
                    notes="float input -> QUANTIZE -> RELU -> DEQUANTIZE"),
        OpModelSpec("quantize_requant_concat", img8, b_logistic_concat,
                    ("CONV_2D", "LOGISTIC", "QUANTIZE", "CONCATENATION"),
                    notes="int8 -> int8 QUANTIZE (requantize) inserted before a concat", input_range=(-4.0, 4.0)),
        OpModelSpec("two_outputs_float_io", img8, b_two_outputs,
                    ("QUANTIZE", "CONV_2D", "MAX_POOL_2D", "DEQUANTIZE"), float_io=True,
                    notes="two model outputs, each with its DEQUANTIZE"),
        OpModelSpec("two_outputs_int8_io", img8, b_two_outputs,
                    ("CONV_2D", "MAX_POOL_2D"), notes="two int8 model outputs"),
        OpModelSpec("mobilenet_block_int8_io", ((1, 16, 16, 3),), b_mobilenet_block,
                    ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"),
                    notes="stem, inverted residual block, global mean, dense, softmax; int8 I/O"),
        OpModelSpec("mobilenet_block_float_io", ((1, 16, 16, 3),), b_mobilenet_block,
                    ("QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED",
                     "SOFTMAX", "DEQUANTIZE"), float_io=True,
                    notes="the same network with float input/output"),
    ]


# ---------------------------------------------------------------------------------------------
# Conversion and verification.


def seed_of(name: str) -> int:
    """Stable per-model seed derived from the name (independent of the list order)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def configure_tensorflow(threads: int = 2) -> None:
    tf = _tf()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel(logging.ERROR)


def representative_inputs(
    shapes: Sequence[tuple[int, ...]], seed: int, n: int, lo: float, hi: float
) -> list[list[np.ndarray]]:
    rng = np.random.RandomState(seed)
    return [[rng.uniform(lo, hi, s).astype(np.float32) for s in shapes] for _ in range(n)]


def convert_int8(
    fn: TensorFn,
    shapes: Sequence[tuple[int, ...]],
    calib: list[list[np.ndarray]],
    float_io: bool,
    per_tensor_dense: bool = False,
) -> bytes:
    """Full-integer int8 conversion of ``fn`` with the given calibration samples."""
    tf = _tf()
    sig = [tf.TensorSpec(s, tf.float32, name=f"input_{i}") for i, s in enumerate(shapes)]
    func = tf.function(fn, input_signature=sig, autograph=False)
    concrete = func.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], func)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: iter(calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if per_tensor_dense:
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def builtin_name_table() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


_OPTION_FIELDS = {
    "CONV_2D": ("Conv2DOptions", ("Padding", "StrideW", "StrideH", "DilationWFactor", "DilationHFactor", "FusedActivationFunction")),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", ("Padding", "StrideW", "StrideH", "DepthMultiplier", "DilationWFactor", "DilationHFactor", "FusedActivationFunction")),
    "AVERAGE_POOL_2D": ("Pool2DOptions", ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight", "FusedActivationFunction")),
    "MAX_POOL_2D": ("Pool2DOptions", ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight", "FusedActivationFunction")),
    "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction", "KeepNumDims")),
    "ADD": ("AddOptions", ("FusedActivationFunction",)),
    "MUL": ("MulOptions", ("FusedActivationFunction",)),
    "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
    "SOFTMAX": ("SoftmaxOptions", ("Beta",)),
    "MEAN": ("ReducerOptions", ("KeepDims",)),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions", ("AlignCorners", "HalfPixelCenters")),
}


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


def describe_ops(model_bytes: bytes) -> list[dict]:
    """The operators of subgraph 0 with their builtin name, tensor types and main options."""
    import tflite

    names = builtin_name_table()
    ttypes = _enum_names(tflite.TensorType)
    paddings = _enum_names(tflite.Padding)
    acts = _enum_names(tflite.ActivationFunctionType)
    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = model.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN")
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        outs = [op.Outputs(j) for j in range(op.OutputsLength())]
        entry: dict = {
            "op": name,
            "inputs": [ttypes[sg.Tensors(t).Type()].lower() if t >= 0 else None for t in ins],
            "outputs": [ttypes[sg.Tensors(t).Type()].lower() for t in outs],
        }
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(ins) > 1:
            wq = sg.Tensors(ins[1]).Quantization()
            entry["weight_scales"] = int(wq.ScaleLength()) if wq is not None else 0
        if name in _OPTION_FIELDS and op.BuiltinOptions() is not None:
            cls_name, fields = _OPTION_FIELDS[name]
            opts = getattr(tflite, cls_name)()
            opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            options = {}
            for f in fields:
                v = getattr(opts, f)()
                if f == "Padding":
                    v = paddings[v]
                elif f == "FusedActivationFunction":
                    v = acts[v]
                elif isinstance(v, (bool, np.bool_)):
                    v = bool(v)
                elif isinstance(v, float):
                    v = round(float(v), 6)
                options[_snake(f)] = v
            entry["options"] = options
        out.append(entry)
    return out


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def run_reference(model_bytes: bytes, float_inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[dict]]:
    """Run the model with ai_edge_litert's reference kernels on float inputs (quantized here).

    Returns the outputs dequantized to float and the interpreter's input details.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=model_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF, num_threads=1
    )
    interp.allocate_tensors()
    in_details = interp.get_input_details()
    for det, x in zip(in_details, float_inputs):
        if det["dtype"] == np.int8:
            scale, zp = det["quantization"]
            x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
        interp.set_tensor(det["index"], x)
    interp.invoke()
    outs = []
    for det in interp.get_output_details():
        y = interp.get_tensor(det["index"])
        if det["dtype"] == np.int8:
            scale, zp = det["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        outs.append(y)
    return outs, in_details


def build_one(spec: OpModelSpec) -> tuple[bytes, dict]:
    """Convert one spec, verify it, and return (model bytes, manifest entry)."""
    seed = seed_of(spec.name)
    fn = spec.build(np.random.RandomState(seed))
    lo, hi = spec.input_range
    calib = representative_inputs(spec.inputs, seed + 1, CALIB_SAMPLES, lo, hi)
    model = convert_int8(fn, spec.inputs, calib, spec.float_io, spec.per_tensor_dense)
    ops = describe_ops(model)
    op_names = [o["op"] for o in ops]
    missing = [o for o in spec.expect_ops if o not in op_names]
    if missing:
        raise RuntimeError(f"{spec.name}: converter did not produce {missing}; got {op_names}")
    if len(model) > MAX_FILE_BYTES:
        raise RuntimeError(f"{spec.name}: {len(model)} bytes exceeds {MAX_FILE_BYTES}")

    # Run with the reference kernels on fresh inputs; the int8 result must follow the float one.
    test_in = representative_inputs(spec.inputs, seed + 2, 1, lo, hi)[0]
    got, in_details = run_reference(model, test_in)
    want = fn(*test_in)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    errs = []
    for g in got:  # the converter may order outputs differently: match them by shape
        same = [w for w in want if w.shape == g.shape]
        if not same:
            raise RuntimeError(f"{spec.name}: output shape {g.shape} not among float outputs")
        errs.append(min(float(np.max(np.abs(g - w))) / (float(np.max(w) - np.min(w)) or 1.0) for w in same))
    rel_err = max(errs)
    if rel_err > 0.15:
        raise RuntimeError(f"{spec.name}: int8 output differs from float by {rel_err:.3f} of its range")

    entry = {
        "file": f"{spec.name}.tflite",
        "ops": sorted(set(op_names), key=op_names.index),
        "op_sequence": op_names,
        "covers": list(spec.expect_ops),
        "io": "float32" if spec.float_io else "int8",
        "inputs": [list(d["shape"].tolist()) for d in in_details],
        "notes": spec.notes,
        "seed": seed,
        "bytes": len(model),
        "max_err_vs_float": round(rel_err, 4),
        "op_details": ops,
    }
    return model, entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--only", nargs="*", default=None, help="build only these fixtures (manifest merged)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    configure_tensorflow()
    tf = _tf()
    tf.random.set_seed(0)

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest: dict = {}
    if args.only and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())["models"]
    todo = [s for s in specs() if not args.only or s.name in args.only]
    failed = []
    for spec in todo:
        try:
            model, entry = build_one(spec)
        except Exception as exc:  # noqa: BLE001 - report every failing fixture, keep going
            LOG.error("FAILED %s: %s", spec.name, exc)
            failed.append(spec.name)
            continue
        (args.out / entry["file"]).write_bytes(model)
        manifest[spec.name] = entry
        print(f"{spec.name:34s} {len(model):6d} B  {' '.join(entry['op_sequence'])}")
    order = [s.name for s in specs()]
    manifest = {k: manifest[k] for k in sorted(manifest, key=lambda k: order.index(k) if k in order else 999)}
    doc = {
        "generator": "scripts/make_test_models.py",
        "tensorflow": tf.__version__,
        "verified_with": "ai_edge_litert Interpreter, OpResolverType.BUILTIN_REF",
        "not_produced_as_int8": NOT_PRODUCED,
        "models": manifest,
    }
    manifest_path.write_text(json.dumps(doc, indent=1) + "\n")
    total = sum(e["bytes"] for e in manifest.values())
    print(f"{len(manifest)} models, {total} bytes in {args.out}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


#: Ops or variants the TensorFlow 2.21 converter does not emit in a full-int8 model (filled in
#: from what the conversions above showed).
NOT_PRODUCED: dict[str, str] = {
    "CONV_2D without bias": "the converter always adds an int32 zero bias to CONV_2D / "
    "DEPTHWISE_CONV_2D; only FULLY_CONNECTED keeps an absent bias (input -1), see fc_per_tensor_nobias",
    "SOFTMAX beta != 1": "softmax(x * beta) is converted to MUL + SOFTMAX with beta 1.0 (softmax_beta)",
    "PAD equal to SAME padding": "a PAD that SAME padding reproduces (e.g. bottom/right 1 before a "
    "stride-2 3x3 conv on an even size) is folded into the conv; other pads stay PAD ops",
    "per-tensor FULLY_CONNECTED weights": "per channel by default in TF 2.21; per tensor only with "
    "the private converter flag _experimental_disable_per_channel_quantization_for_dense_layers",
}


if __name__ == "__main__":
    sys.exit(main())
