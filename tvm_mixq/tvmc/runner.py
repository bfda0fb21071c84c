"""``tvmc run --device micro PROJECT``: run a built host project or a flashed QEMU project.

Inputs come from an ``.npz`` (arrays named after the model's input tensors, or ``input_0``, ...;
the model's shape for one sample, or a leading sample axis for several) or are made up
(``--fill-mode zeros|ones|random``). Outputs come back as arrays ``output_0``, ... in the same
convention. Under QEMU each inference is counted in instructions (SysTick under
``-icount shift=0``, resolution 40 instructions) and so is each layer (summed over the samples).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import InputDataError, MixqError
from .project import Project, ProjectError, load_project

log = logging.getLogger(__name__)

FILL_MODES = ("zeros", "ones", "random")
#: Exit codes of the project programs (see the templates' main.c).
_EXIT_REASONS = {1: "an inference failed", 2: "bad input or output files", 3: "the firmware faulted"}


@dataclass
class RunOutcome:
    """Outputs of a run and, under QEMU, the instruction counts."""

    outputs: list[np.ndarray]
    samples: int
    instructions: list[int] = field(default_factory=list)  # per sample (QEMU)
    layer_instructions: list[int] = field(default_factory=list)  # per layer, summed over samples (QEMU)
    console: str = ""


def _io_dtype(t: dict[str, Any]) -> np.dtype:
    return np.dtype(t["dtype"])


def load_inputs(path: Path | str, io_inputs: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    """The arrays of an ``.npz`` for the model's inputs (by tensor name or ``input_<i>``)."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"--inputs {p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputDataError(f"--inputs {p}: not a readable .npz ({str(exc).splitlines()[0][:200]})") from None
    out = []
    used = set()
    for i, t in enumerate(io_inputs):
        key = next((k for k in (t["name"], f"input_{i}") if k in arrays), None)
        if key is None and len(io_inputs) == 1 and len(arrays) == 1:
            key = next(iter(arrays))
        if key is None:
            raise InputDataError(f"--inputs {p}: no array for input {i} (name it {t['name']!r} or 'input_{i}'); "
                                 f"the file holds {', '.join(sorted(arrays)) or 'nothing'}")
        used.add(key)
        out.append(arrays[key])
    extra = sorted(set(arrays) - used)
    if extra:
        raise InputDataError(f"--inputs {p}: unexpected arrays {', '.join(extra)} (model inputs: "
                             f"{', '.join(t['name'] for t in io_inputs)})")
    return out


def fill_inputs(io_inputs: Sequence[dict[str, Any]], mode: str, seed: int = 0) -> list[np.ndarray]:
    """One sample per input, as tvmc's ``--fill-mode``."""
    if mode not in FILL_MODES:
        raise MixqError(f"--fill-mode {mode!r}: choose one of {', '.join(FILL_MODES)}")
    rng = np.random.default_rng(seed)
    out = []
    for t in io_inputs:
        dt = _io_dtype(t)
        shape = tuple(t["shape"])
        if mode == "zeros":
            out.append(np.zeros(shape, dt))
        elif mode == "ones":
            out.append(np.ones(shape, dt))
        elif dt.kind == "f":
            out.append(rng.normal(0.0, 1.0, size=shape).astype(dt))
        else:
            info = np.iinfo(dt)
            lo, hi = (0, (1 << t["bits"]) - 1) if t["bits"] < 8 else (info.min, info.max)
            out.append(rng.integers(lo, hi + 1, size=shape).astype(dt))
    return out


def _samples(arrays: Sequence[np.ndarray], io_inputs: Sequence[dict[str, Any]]) -> tuple[list[np.ndarray], int]:
    """Check shapes and dtypes; return the arrays with a leading sample axis and the count."""
    batched: list[np.ndarray] = []
    count: Optional[int] = None
    for i, (x, t) in enumerate(zip(arrays, io_inputs)):
        x = np.asarray(x)
        dt = _io_dtype(t)
        shape = tuple(t["shape"])
        if x.dtype != dt:
            if dt.kind in "iu" and x.dtype.kind in "iu":
                lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
                if x.size and (x.min() < lo or x.max() > hi):
                    raise InputDataError(f"input {i} ({t['name']}): values outside {dt} range [{lo}, {hi}]")
                x = x.astype(dt)
            else:
                raise InputDataError(f"input {i} ({t['name']}) must be {dt}, got {x.dtype} (quantize it first)")
        if x.shape == shape:
            x = x.reshape((1,) + shape[1:]) if shape and shape[0] == 1 else x[None]
        elif shape and shape[0] == 1 and x.shape[1:] == shape[1:] and x.ndim == len(shape):
            pass
        elif shape and shape[0] == 1 and x.shape == shape[1:]:
            x = x[None]
        else:
            raise InputDataError(f"input {i} ({t['name']}) needs shape {list(shape)} (or N samples "
                                 f"{['N'] + list(shape[1:])}), got {list(x.shape)}")
        n = x.shape[0] if shape and shape[0] == 1 else 1
        if count is not None and n != count:
            raise InputDataError(f"input {i} holds {n} samples, input 0 holds {count}")
        if n == 0:
            raise InputDataError(f"input {i} ({t['name']}) holds no sample")
        count = n
        batched.append(x)
    return batched, int(count or 1)


def _to_bytes(t: dict[str, Any], x: np.ndarray, count: int) -> bytes:
    from ..kernellib import layout

    shape = tuple(t["shape"])
    if t["bits"] < 8:
        per = [layout.pack_activations(x[n:n + 1].reshape(shape), t["bits"]).tobytes() for n in range(count)]
        return b"".join(per)
    return np.ascontiguousarray(x).tobytes()


def _from_bytes(t: dict[str, Any], raw: bytes, count: int) -> np.ndarray:
    from ..kernellib import layout

    shape = tuple(t["shape"])
    nbytes = int(t["nbytes"])
    if len(raw) != nbytes * count:
        raise ProjectError(f"output {t['name']}: expected {nbytes * count} bytes, the program wrote {len(raw)}")
    if t["bits"] < 8:
        outs = [layout.unpack_activations(np.frombuffer(raw[n * nbytes:(n + 1) * nbytes], np.uint8), t["bits"], shape)
                .astype(_io_dtype(t)).reshape(shape) for n in range(count)]
        arr = np.concatenate(outs, axis=0) if shape and shape[0] == 1 else np.stack(outs)
    else:
        arr = np.frombuffer(raw, dtype=_io_dtype(t)).copy()
        arr = arr.reshape(((count * shape[0],) + shape[1:]) if shape and shape[0] == 1 else (count,) + shape)
    return arr


def run_project(path: Path | str, inputs: Optional[Sequence[np.ndarray]] = None, fill_mode: str = "random",
                timeout: Optional[float] = None) -> RunOutcome:
    """Run the project at ``path`` on ``inputs`` (or filled ones); see the module docstring."""
    project = load_project(path)
    kind = project.template.kind
    if kind == "export":
        raise ProjectError("an export project has no device to run on: its sources go into your firmware")
    io_in = project.info["io"]["inputs"]
    arrays = list(inputs) if inputs is not None else fill_inputs(io_in, fill_mode)
    if len(arrays) != len(io_in):
        raise InputDataError(f"the model has {len(io_in)} inputs, got {len(arrays)}")
    batched, count = _samples(arrays, io_in)
    limit = float(timeout if timeout is not None else project.options.get("timeout", 600))
    if kind == "host":
        return _run_host(project, batched, count, limit)
    return _run_qemu(project, batched, count, limit)


def _write_inputs(project: Project, batched: Sequence[np.ndarray], count: int, where: Path) -> None:
    for i, (t, x) in enumerate(zip(project.info["io"]["inputs"], batched)):
        (where / f"input_{i}.bin").write_bytes(_to_bytes(t, x, count))


def _run_host(project: Project, batched: Sequence[np.ndarray], count: int, timeout: float) -> RunOutcome:
    exe = project.artefact
    if not exe.is_file():
        raise ProjectError(f"{project.path} is not built: run tvmc micro build {project.path}")
    io = project.info["io"]
    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        d = Path(tmp)
        _write_inputs(project, batched, count, d)
        ins = [str(d / f"input_{i}.bin") for i in range(len(io["inputs"]))]
        outs = [str(d / f"output_{i}.bin") for i in range(len(io["outputs"]))]
        try:
            proc = subprocess.run([str(exe), str(count), *ins, *outs], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProjectError(f"{exe.name} did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            reason = _EXIT_REASONS.get(proc.returncode, f"exit code {proc.returncode}")
            raise ProjectError(f"{exe.name}: {reason}: {proc.stderr.strip()[:300]}")
        outputs = [_from_bytes(t, Path(f).read_bytes(), count) for t, f in zip(io["outputs"], outs)]
    return RunOutcome(outputs, count, console=proc.stdout + proc.stderr)


def _run_qemu(project: Project, batched: Sequence[np.ndarray], count: int, timeout: float) -> RunOutcome:
    from ..emu import INSTRUCTIONS_PER_TICK, find_tool, parse_console
    from ..emu.toolchain import QEMU, qemu_command

    flashed = project.info.get("flashed")
    image = project.path / flashed["image"] if flashed else None
    if image is None or not image.is_file():
        raise ProjectError(f"{project.path} has no staged firmware: run tvmc micro build and tvmc micro flash first")
    if flashed.get("sha256") != (project.info.get("built") or {}).get("sha256"):
        log.warning("the staged firmware is older than the last build: run tvmc micro flash to stage the new one")
    qemu = find_tool(QEMU)
    io = project.info["io"]
    run_dir = project.path / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    _write_inputs(project, batched, count, run_dir)
    cmd = qemu_command(qemu, project.info["machine"], image.resolve())
    log.info("running %s on %s", image, project.info["machine"])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=run_dir,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProjectError(f"{QEMU} run did not finish within {timeout:.0f} s "
                           "(--project-option timeout=SECONDS at create-project)") from None
    console = proc.stdout + proc.stderr
    if proc.returncode != 0:
        reason = _EXIT_REASONS.get(proc.returncode, f"exit code {proc.returncode}")
        detail = "; ".join(ln for ln in console.splitlines() if ln.strip())[:300]
        raise ProjectError(f"firmware on {project.info['machine']}: {reason}: {detail}")
    ticks, _checks, values = parse_console(console)
    if values.get("samples") != count:
        raise ProjectError(f"the firmware reported {values.get('samples')} samples, {count} were sent")
    outputs = [_from_bytes(t, (run_dir / f"output_{i}.bin").read_bytes(), count) for i, t in enumerate(io["outputs"])]
    per_sample = [ticks.get(f"invoke.{s}", 0) * INSTRUCTIONS_PER_TICK for s in range(count)]
    layers = []
    while f"layer.{len(layers)}" in ticks:
        layers.append(ticks[f"layer.{len(layers)}"] * INSTRUCTIONS_PER_TICK)
    return RunOutcome(outputs, count, per_sample, layers, console)


def save_outputs(path: Path | str, outputs: Sequence[np.ndarray]) -> Path:
    """Write ``output_<i>`` arrays to an ``.npz``; an existing file must be an earlier output file."""
    p = Path(path)
    if p.suffix != ".npz":
        raise MixqError(f"--outputs {p}: the file name must end in .npz")
    if p.exists():
        try:
            with np.load(p, allow_pickle=False) as npz:
                ours = bool(npz.files) and all(k.startswith("output_") for k in npz.files)
        except Exception:  # noqa: BLE001 - anything unreadable is not ours to replace
            ours = False
        if not ours:
            raise MixqError(f"--outputs {p} exists and is not an outputs file of tvmc run; refusing to overwrite it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp.npz")
    np.savez(tmp, **{f"output_{i}": o for i, o in enumerate(outputs)})
    tmp.replace(p)
    return p
