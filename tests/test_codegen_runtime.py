"""The C runtime's tile copies (``mixq_rt_gather`` / ``mixq_rt_scatter``) on packed sub-byte tensors,
against NumPy: odd channel counts (pixels starting mid-byte), windows at every offset, and the
bytes around the destination rectangle left untouched."""
from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest

from tvm_mixq.codegen.host import _runtime_library
from tvm_mixq.reference import subbyte

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host C compiler")


@pytest.fixture(scope="module")
def rt() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(_runtime_library("gcc")))
    i32, vp = ctypes.c_int32, ctypes.c_void_p
    lib.mixq_rt_gather.argtypes = [vp, i32, i32, i32, i32, i32, i32, i32, vp]
    lib.mixq_rt_scatter.argtypes = [vp, i32, i32, i32, i32, vp, i32, i32, i32]
    return lib


def _pack(values: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return values.astype(np.int8).view(np.uint8).reshape(-1).copy()
    return np.asarray(subbyte.pack(values.reshape(-1), bits, False), dtype=np.uint8)


def _unpack(buf: np.ndarray, count: int, bits: int) -> np.ndarray:
    if bits == 8:
        return buf[:count].view(np.int8).astype(np.int64)
    return np.asarray(subbyte.unpack(buf, bits, False, count), dtype=np.int64)


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("c", [1, 3, 5, 8, 32])
def test_gather_and_scatter_match_numpy(rt: ctypes.CDLL, bits: int, c: int) -> None:
    rng = np.random.default_rng(bits * 100 + c)
    hi = 256 if bits == 8 else 1 << bits
    lo = -128 if bits == 8 else 0
    sh, sw = 7, 9
    src = rng.integers(lo, hi if bits < 8 else 128, size=(sh, sw, c))
    packed = _pack(src, bits)
    for _ in range(12):
        y0, x0 = int(rng.integers(0, sh)), int(rng.integers(0, sw))
        h, w = int(rng.integers(1, sh - y0 + 1)), int(rng.integers(1, sw - x0 + 1))
        # gather: the window into a contiguous buffer
        nbytes = (h * w * c * bits + 7) // 8
        dst = np.zeros(nbytes + 4, dtype=np.uint8)
        rt.mixq_rt_gather(packed.ctypes.data, sw, c, bits, y0, x0, h, w, dst.ctypes.data)
        np.testing.assert_array_equal(_unpack(dst, h * w * c, bits).reshape(h, w, c), src[y0:y0 + h, x0:x0 + w])
        assert not dst[nbytes:].any()
        # scatter: the window back into a bigger tensor at (y0, x0), everything else untouched
        tile = rng.integers(lo, hi if bits < 8 else 128, size=(h, w, c))
        tile_packed = _pack(tile, bits)
        big = rng.integers(lo, hi if bits < 8 else 128, size=(sh, sw, c))
        big_packed = _pack(big, bits)
        rt.mixq_rt_scatter(tile_packed.ctypes.data, h, w, c, bits, big_packed.ctypes.data, sw, y0, x0)
        expected = big.copy()
        expected[y0:y0 + h, x0:x0 + w] = tile
        np.testing.assert_array_equal(_unpack(big_packed, sh * sw * c, bits).reshape(sh, sw, c), expected)
