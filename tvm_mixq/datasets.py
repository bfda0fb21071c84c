"""Fashion-MNIST loading and the preprocessing of the bundled Fashion-MNIST model.

The labelled images come from the Debian package ``dataset-fashion-mnist`` (IDX files, gzip
compressed, in ``/usr/share/datasets/fashion-mnist/``); nothing is downloaded.

The bundled model ``models/fmnist_dsconv_int8.tflite`` takes a 32x32x1 int8 image. The 28x28
Fashion-MNIST image is mapped to it by :func:`preprocess_float` (pixel / 255, then 2 zero pixels
of border on every side: the background of the dataset is black, so the border is background)
and quantized with the model's input scale and zero point by :func:`preprocess`. Training,
calibration and every accuracy figure use these two functions.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputDataError

#: Where ``apt-get install dataset-fashion-mnist`` puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Side of the model input; the 28x28 image is centred with a zero border.
MODEL_SIDE = 32
IMAGE_SIDE = 28
BORDER = (MODEL_SIDE - IMAGE_SIDE) // 2
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08


def fashion_mnist_dir() -> Path:
    """The dataset directory: ``$MIXQ_FASHION_MNIST_DIR`` if set, else the Debian location."""
    return Path(os.environ.get("MIXQ_FASHION_MNIST_DIR", str(FASHION_MNIST_DIR)))


def fashion_mnist_available(root: Optional[Path] = None) -> bool:
    """True when all four IDX files are present."""
    root = fashion_mnist_dir() if root is None else Path(root)
    return all((root / f).is_file() for pair in _FILES.values() for f in pair)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes (``.gz`` or plain) into an array of its shape.

    Raises
    ------
    InputDataError
        If the file is missing, is not an IDX file of unsigned bytes, or is truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such file (install the Debian package dataset-fashion-mnist)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or not 1 <= raw[3] <= 4:
        raise InputDataError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputDataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count:
        raise InputDataError(f"{path}: IDX data has {len(raw) - header} bytes, header says {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(split: str, root: Optional[Path] = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a Fashion-MNIST split.

    Parameters
    ----------
    split:
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    root:
        Directory of the IDX files; default :func:`fashion_mnist_dir`.

    Returns
    -------
    images, labels:
        ``uint8 [N, 28, 28]`` (0 = black background) and ``uint8 [N]`` class indices 0-9.
    """
    if split not in _FILES:
        raise InputDataError(f"unknown Fashion-MNIST split {split!r}: use 'train' or 'test'")
    root = fashion_mnist_dir() if root is None else Path(root)
    img_file, lab_file = _FILES[split]
    images = read_idx(root / img_file)
    labels = read_idx(root / lab_file)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise InputDataError(f"{root / img_file}: expected [N, 28, 28] images, got {list(images.shape)}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise InputDataError(f"{root / lab_file}: {labels.shape[0]} labels for {images.shape[0]} images")
    if labels.size and int(labels.max()) > 9:
        raise InputDataError(f"{root / lab_file}: label {int(labels.max())} outside 0-9")
    return images, labels


def preprocess_float(images: np.ndarray) -> np.ndarray:
    """28x28 uint8 images -> float32 ``[N, 32, 32, 1]`` in [0, 1] with a 2-pixel zero border.

    This is the input of the float model; :func:`preprocess` quantizes it for the int8 model.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise InputDataError(f"expected [N, 28, 28] images, got {list(images.shape)}")
    x = images.astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (BORDER, BORDER), (BORDER, BORDER)))
    return x[..., None]


def preprocess(images: np.ndarray, input_scale: float, input_zero_point: int) -> np.ndarray:
    """28x28 uint8 images -> int8 ``[N, 32, 32, 1]`` quantized as the model input says.

    ``q = clip(round(x / input_scale) + input_zero_point, -128, 127)`` with ``x`` from
    :func:`preprocess_float`, the division in float32 and ties rounded away from zero, as
    TFLite's reference QUANTIZE does.
    """
    if not input_scale > 0:
        raise InputDataError(f"input scale must be positive, got {input_scale}")
    v = preprocess_float(images) / np.float32(input_scale)
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + int(input_zero_point)
    return np.clip(q, -128, 127).astype(np.int8)
