"""Kernel library under AddressSanitizer + UBSan.

The ``sanitize`` flavour (-fsanitize=address,undefined -fno-sanitize-recover=all) is loaded by a
child Python process started with the ASan runtime preloaded (LD_PRELOAD, see
tvm_mixq.kernellib.build.sanitizer_env) and PYTHONMALLOC=malloc so that NumPy buffers get ASan
redzones. The child runs random cases of every variant against the oracle
(``python -m tvm_mixq.kernellib.cases``); any sanitizer report aborts it with a non-zero status.
A second child writes past an output buffer on purpose to prove the sanitizer is active.
"""
import shutil
import subprocess
import sys

import pytest

from tvm_mixq.kernellib.build import build_host_library, sanitizer_env

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc with libasan/libubsan")

OVERFLOW_SCRIPT = r"""
import ctypes, numpy as np, sys
from tvm_mixq.kernellib import KernelLib, layout
from tvm_mixq.kernellib import lib as L
k = KernelLib(sys.argv[1])
fn = k.symbol("mixq_pointwise_a8w8o8")
fn.argtypes = L._CONV_ARGS[1:]
p = L.ConvParams(0, 0, L.Tile(1, 1), L.Tile(0, 0), L.Tile(1, 1), 1, -128, 127)
idims, wdims, odims = L.Dims(1, 4, 4, 4), L.Dims(8, 1, 1, 4), L.Dims(1, 4, 4, 8)
x = np.zeros(64, np.int8); w = layout.pack_weights(np.ones((8, 4), np.int64), 8)
q = L._Quant(np.full(8, 1 << 30, np.int32), np.zeros(8, np.int32)).struct()
buf = np.zeros(256, np.int32); ctx = L.Context(buf.ctypes.data, buf.nbytes)
out = np.zeros(4 * 4 * 8 - 1, np.int8)  # one byte short
fn(ctx, p, q, idims, x.ctypes.data, wdims, w.ctypes.data, None, odims, out.ctypes.data)
print("no report")
"""


@pytest.fixture(scope="module")
def sanitized_lib():
    return build_host_library("sanitize")


def _env():
    env = sanitizer_env()
    env["PYTHONMALLOC"] = "malloc"
    return env


def test_every_variant_clean_under_asan_ubsan(sanitized_lib):
    proc = subprocess.run([sys.executable, "-m", "tvm_mixq.kernellib.cases", "--lib", str(sanitized_lib),
                           "--per-variant", "2", "--seed", "11"], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "306/306 cases bit-exact" in proc.stdout  # 288 variant cases + 18 of the _lanes entry points


def test_pool_blocks_and_add_groups_clean_under_asan_ubsan(sanitized_lib):
    """The average pool's block loop (channel blocks, window runs, partial windows, long windows)
    and the add's groups of four with their element tail."""
    from tvm_mixq.kernellib.cases import add_fast_cases, pool_block_cases

    n = len(pool_block_cases(12, big=True)) + len(add_fast_cases(12))
    proc = subprocess.run([sys.executable, "-m", "tvm_mixq.kernellib.cases", "--lib", str(sanitized_lib),
                           "--per-variant", "0", "--seed", "12", "--pool-blocks"], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"{n}/{n} cases bit-exact" in proc.stdout


def test_sanitizer_catches_an_overflow(sanitized_lib):
    proc = subprocess.run([sys.executable, "-c", OVERFLOW_SCRIPT, str(sanitized_lib)], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "AddressSanitizer" in proc.stderr and "heap-buffer-overflow" in proc.stderr
