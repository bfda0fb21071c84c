"""Build a generated model for the host (microtvm_templates/host) and run it on NumPy inputs.

The host program links the kernel library's host build (portable C path, the same
:func:`tvm_mixq.kernellib.build_host_library` the kernel tests use), the C runtime and the
generated model; inputs and outputs travel as raw files. Tests compare its outputs with the
Python reference.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MixqError
from ..kernellib import build_host_library, layout
from ..kernellib.build import default_build_dir
from .emitter import GeneratedModel, IoTensor, include_dirs, runtime_sources, template_env

log = logging.getLogger(__name__)

HOST_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "microtvm_templates" / "host"
HOST_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")


class HostBuildError(MixqError):
    """The host compiler failed on generated code, or the host program failed."""


def render_host_main(model: GeneratedModel) -> Path:
    env = template_env((HOST_TEMPLATE_DIR,))
    path = model.out_dir / "host_main.c"
    t0 = model.graph.tensors[model.graph.inputs[0]]
    in0 = {"w": t0.shape[2] if len(t0.shape) == 4 else 1, "c": t0.shape[-1], "bits": t0.bits}
    path.write_text(env.get_template("main.c.j2").render(m={
        "prefix": model.prefix, "macro": model.macro, "inputs": model.inputs, "outputs": model.outputs, "in0": in0}))
    return path


def _runtime_library(cc: str) -> Path:
    """The C runtime as a host shared library, cached by a hash of its sources and flags."""
    srcs = runtime_sources() + sorted(runtime_sources()[0].parent.glob("*.h"))
    digest = hashlib.sha256(" ".join(HOST_FLAGS).encode())
    for p in srcs:
        digest.update(p.read_bytes())
    out_dir = default_build_dir().parent / "codegen"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libmixq_rt-{digest.hexdigest()[:16]}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".tmp{os.getpid()}")
        cmd = [cc, *HOST_FLAGS, "-fPIC", "-shared", *[f"-I{d}" for d in include_dirs()],
               *map(str, runtime_sources()), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise HostBuildError(f"{cc} failed on the C runtime: {proc.stderr.strip()[:2000]}")
        os.replace(tmp, lib)
    return lib


def build_host(model: GeneratedModel, cc: str = "gcc", streamed: bool = False) -> Path:
    """Compile the host program of ``model`` into its output directory; returns the executable.
    ``streamed``: the program feeds input 0 through ``invoke_streamed`` and its read callback."""
    if shutil.which(cc) is None:
        raise HostBuildError(f"host C compiler {cc!r} not found")
    lib = build_host_library("release")
    main = render_host_main(model)
    exe = model.out_dir / f"{model.prefix}_host{'_streamed' if streamed else ''}"
    cmd = [cc, *HOST_FLAGS, *(["-DMIXQ_HOST_STREAMED"] if streamed else []), *[f"-I{d}" for d in [model.out_dir, *include_dirs()]], str(main), str(model.source),
           str(_runtime_library(cc)), str(lib), f"-Wl,-rpath,{lib.parent}", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostBuildError(f"{cc} failed on the generated code: {proc.stderr.strip()[:2000]}")
    return exe


def _to_bytes(t: IoTensor, value: np.ndarray) -> bytes:
    value = np.asarray(value)
    if t.dtype == "int8" and t.bits < 8:
        return layout.pack_activations(value.reshape(t.shape), t.bits).tobytes()
    return np.ascontiguousarray(value.astype(t.dtype)).reshape(t.shape).tobytes()


def _from_bytes(t: IoTensor, raw: bytes, count: int) -> np.ndarray:
    if t.dtype == "int8" and t.bits < 8:
        out = [layout.unpack_activations(np.frombuffer(raw[i * t.nbytes:(i + 1) * t.nbytes], np.uint8), t.bits,
                                         t.shape).astype(np.int8) for i in range(count)]
        return np.stack(out)
    return np.frombuffer(raw, dtype=t.dtype).reshape((count,) + tuple(t.shape))


def run_host(model: GeneratedModel, inputs: Sequence[np.ndarray], exe: Path | None = None,
             timeout: float = 300.0, streamed: bool = False) -> list[np.ndarray]:
    """Run the host program on ``inputs`` (one array per model input: the model's batch-1 shape, or
    several samples stacked along the batch axis, as :class:`tvm_mixq.reference.Interpreter`
    takes them); returns the outputs in the same convention."""
    exe = exe or build_host(model, streamed=streamed)
    if len(inputs) != len(model.inputs):
        raise MixqError(f"model has {len(model.inputs)} inputs, got {len(inputs)}")
    arrays = [np.asarray(x) for x in inputs]
    batched = arrays[0].shape != tuple(model.inputs[0].shape)
    count = arrays[0].shape[0] if batched else 1
    for t, x in zip(model.inputs, arrays):
        want = (count,) + tuple(t.shape[1:]) if batched else tuple(t.shape)
        if tuple(x.shape) != want:
            raise MixqError(f"input '{t.name}' needs shape {list(want)}, got {list(x.shape)}")
    with tempfile.TemporaryDirectory() as tmp:
        in_files, out_files = [], []
        for i, (t, x) in enumerate(zip(model.inputs, arrays)):
            samples = [x[n:n + 1] for n in range(count)] if batched else [x]
            path = Path(tmp) / f"in{i}.bin"
            path.write_bytes(b"".join(_to_bytes(t, s) for s in samples))
            in_files.append(str(path))
        out_files = [str(Path(tmp) / f"out{i}.bin") for i in range(len(model.outputs))]
        proc = subprocess.run([str(exe), str(count), *in_files, *out_files], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise HostBuildError(f"host run of {model.prefix} failed ({proc.returncode}): {proc.stderr.strip()}")
        outs = [_from_bytes(t, Path(f).read_bytes(), count) for t, f in zip(model.outputs, out_files)]
    if batched:
        return [o.reshape((count * o.shape[1],) + o.shape[2:]) for o in outs]
    return [o[0] for o in outs]
