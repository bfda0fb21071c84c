"""Mutated real models through the reader, the reference interpreter and the CLI.

Whatever the bytes, the result is an answer or a one-line MixqError (exit 2), never a traceback
or a hang.
"""
from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paths import MLPERF_INT8, ROOT
from tvm_mixq.errors import MixqError
from tvm_mixq.reader import read_tflite_buffer
from tvm_mixq.reference.interpreter import Interpreter

KWS = MLPERF_INT8["kws"].read_bytes()


def _mutate(data: bytes, rnd: random.Random, flips: int) -> bytes:
    model = bytearray(data)
    for _ in range(flips):
        model[rnd.randrange(len(model))] = rnd.randrange(256)
    return bytes(model)


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 40))
def test_readable_mutants_run_or_refuse(seed: int, flips: int) -> None:
    rnd = random.Random(seed)
    data = _mutate(KWS, rnd, flips)
    try:
        graph = read_tflite_buffer(data)
        inputs = [np.zeros(graph.tensors[t].shape, dtype=graph.tensors[t].dtype) for t in graph.inputs]
        outputs = Interpreter(graph).run(inputs)
    except MixqError as exc:
        assert "\n" not in str(exc)
        return
    assert len(outputs) == len(graph.outputs)
    for t, out in zip(graph.outputs, outputs):
        assert out.shape == graph.tensors[t].shape


def test_cli_on_mutants_never_tracebacks(tmp_path) -> None:
    rnd = random.Random(1234)
    codes = set()
    for i in range(6):
        path = tmp_path / f"mutant{i}.tflite"
        path.write_bytes(_mutate(KWS, rnd, 3 + 10 * i) if i else KWS[: len(KWS) // 2])
        proc = subprocess.run([sys.executable, "-m", "tvm_mixq.cli.main", "check", str(path), "--samples", "1"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        codes.add(proc.returncode)
        assert proc.returncode in (0, 1, 2), proc.stderr
        assert "Traceback" not in proc.stderr
        if proc.returncode == 2:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert 2 in codes  # the truncated file at least is refused
