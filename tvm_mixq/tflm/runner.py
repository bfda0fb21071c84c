"""Run a .tflite in the real TFLM interpreter (pip package tflite-micro), in a child process.

:func:`run_tflm` starts ``python -m tvm_mixq.tflm.runner`` so that a crash inside TFLM or a
custom op (a segfault from mismatched headers, say) is reported as an error instead of killing the
caller, and so that TFLM's allocation report, which the C++ side prints to the process's standard
output, can be read. The child loads the MIXQ ops library with ``RTLD_GLOBAL`` (when given),
creates the interpreter with the registerer, runs every sample and calls ``print_allocations()``.

Arena figures (:class:`ArenaReport`) come from that report: ``total`` (what firmware must
reserve), ``head`` (the non-persistent section: activations and scratch buffers, as planned by
TFLM's memory planner) and ``tail`` (persistent: op data, eval tensors, interpreter structures).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import MixqError

log = logging.getLogger(__name__)

DEFAULT_ARENA_SIZE = 1 << 20
_TIMEOUT_S = 600


class TflmRunError(MixqError):
    """The TFLM interpreter refused the model or crashed while running it."""


@dataclass
class ArenaReport:
    """TFLM's own arena accounting (``RecordingMicroAllocator``)."""

    total: int
    head: int
    tail: int
    lines: list[str]

    @classmethod
    def parse(cls, text: str) -> "ArenaReport":
        def grab(word: str) -> int:
            m = re.search(rf"Arena allocation {word} (\d+) bytes", text)
            if m is None:
                raise TflmRunError(f"TFLM printed no 'Arena allocation {word}' line")
            return int(m.group(1))

        lines = [ln for ln in text.splitlines() if "[RecordingMicroAllocator]" in ln]
        return cls(grab("total"), grab("head"), grab("tail"), lines)


@dataclass
class TflmRun:
    outputs: list[np.ndarray]
    arena: ArenaReport


def run_tflm(model: Path, inputs: Sequence[np.ndarray], num_outputs: int = 1, library: Optional[Path] = None,
             arena_size: int = DEFAULT_ARENA_SIZE, python: Optional[str] = None) -> TflmRun:
    """Run ``model`` on samples (each input with a leading sample axis) in the TFLM interpreter.

    Returns the outputs (stacked along the sample axis) and the arena report.

    Raises
    ------
    TflmRunError
        The interpreter failed to load or run the model, or the child process died.
    """
    with tempfile.TemporaryDirectory(prefix="mixq_tflm_run_") as tmp:
        in_path, out_path = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        np.savez(in_path, **{f"input_{i}": np.asarray(x) for i, x in enumerate(inputs)})
        cmd = [python or sys.executable, "-m", "tvm_mixq.tflm.runner", "--model", str(model), "--inputs",
               str(in_path), "--outputs", str(out_path), "--arena-size", str(arena_size),
               "--num-outputs", str(num_outputs)]
        if library is not None:
            cmd += ["--library", str(library)]
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), repo) if p)
        log.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TflmRunError(f"TFLM run of {model.name} did not finish in {_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            if proc.returncode < 0:
                detail = f"killed by signal {-proc.returncode} (a TFLM/ops ABI mismatch crashes like this)"
            raise TflmRunError(f"TFLM could not run {model.name}: {detail}")
        with np.load(out_path) as npz:
            outputs = [npz[f"output_{i}"] for i in range(len(npz.files))]
        return TflmRun(outputs, ArenaReport.parse(proc.stdout + proc.stderr))


# ---------------------------------------------------------------------------------------------
# The child process.


def _child(args: argparse.Namespace) -> int:
    registerers = []
    if args.library:
        ctypes.CDLL(args.library, mode=ctypes.RTLD_GLOBAL)
        registerers.append("MixqTflmRegisterer")
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_file(args.model, custom_op_registerers=registerers,
                                               arena_size=args.arena_size)
    except Exception as exc:  # the runtime raises RuntimeError with TFLM's message
        print(f"interpreter creation failed: {exc}", file=sys.stderr)
        return 3
    with np.load(args.inputs) as npz:
        inputs = [npz[f"input_{i}"] for i in range(len(npz.files))]
    count = inputs[0].shape[0] if inputs else 0
    outputs: list[list[np.ndarray]] = []
    for n in range(count):
        for i, x in enumerate(inputs):
            interp.set_input(x[n:n + 1], i)
        try:
            interp.invoke()
        except Exception as exc:
            print(f"invoke failed: {exc}", file=sys.stderr)
            return 3
        while len(outputs) < args.num_outputs:
            outputs.append([])
        for k in range(args.num_outputs):
            outputs[k].append(np.array(interp.get_output(k), copy=True))
    np.savez(args.outputs, **{f"output_{i}": np.concatenate(o, axis=0) for i, o in enumerate(outputs)})
    sys.stdout.flush()
    interp.print_allocations()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvm_mixq.tflm.runner", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--outputs", required=True)
    p.add_argument("--num-outputs", type=int, default=1)
    p.add_argument("--library")
    p.add_argument("--arena-size", type=int, default=DEFAULT_ARENA_SIZE)
    return _child(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
