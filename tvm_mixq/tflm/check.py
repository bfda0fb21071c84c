"""``mixq tflm check``: convert, build the MIXQ ops against TFLM_DIR, run both models in real TFLM.

Figures (:class:`CheckReport`):

* ``bit_exact``: the converted model's outputs in the TFLM interpreter equal, on every sample,
  the reference interpreter's outputs for the planned graph (:mod:`tvm_mixq.reference`, with
  TFLM's fixed-point FULLY_CONNECTED numerics), i.e. TFLM runs exactly the plan.
  ``original_bit_exact`` is the same comparison for the unconverted int8 model (the reference
  against TFLM's own kernels).
* ``arena_bytes_original`` / ``arena_bytes_converted``: the ``head`` of TFLM's allocation report,
  the non-persistent arena section where TFLM's planner places activations and scratch buffers
  (the activation arena). ``arena_total_bytes_*`` add the persistent ``tail`` (op data,
  interpreter structures): what firmware must reserve.
* Inputs: the first ``samples`` of ``--calib`` when given, else seeded uniform samples over the
  input's integer range.
* With ``target`` (``cortex-m4``/``cortex-m7``), both models also run in a TFLM firmware in QEMU
  (:mod:`.firmware`): ``device`` holds that run's ``bit_exact``, arena figures and instructions per
  inference. The kernels' packed-SIMD paths run there, and their scratch buffers (part of the
  arena's head) differ from the host's portable path.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from ..reference.interpreter import Interpreter, ReferenceOptions
from .build import build_ops_library, resolve_tflm_dir, runtime_info, tflm_commit
from .convert import plan_model
from .rewriter import rewrite
from .runner import run_tflm

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 4
_SEED = 1234


@dataclass
class CheckReport:
    model: str
    bit_exact: bool
    max_abs_diff: int
    original_bit_exact: bool
    samples: int
    arena_bytes_original: int
    arena_bytes_converted: int
    arena_total_bytes_original: int
    arena_total_bytes_converted: int
    mixq_ops: int
    ops: int
    notes: list[str] = field(default_factory=list)
    tflm_dir: str = ""
    tflm_commit: Optional[str] = None
    runtime: str = ""
    library: str = ""
    device: Optional[dict[str, Any]] = None

    @property
    def arena_ratio(self) -> float:
        return self.arena_bytes_original / self.arena_bytes_converted if self.arena_bytes_converted else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["arena_ratio"] = round(self.arena_ratio, 3)
        return d

    def text(self) -> str:
        dev = []
        if self.device is not None:
            d = self.device
            dev = [f"{d['target']} firmware in QEMU: bit_exact {d['bit_exact']}, arena head "
                   f"{d['arena_bytes_original']:,} B -> {d['arena_bytes_converted']:,} B, total "
                   f"{d['arena_total_bytes_original']:,} B -> {d['arena_total_bytes_converted']:,} B, instructions "
                   f"per inference {d['instructions_original']:,} -> {d['instructions_converted']:,}"]
        return "\n".join([
            f"{self.model}: {self.mixq_ops} of {self.ops} ops as MIXQ ops, {self.samples} samples",
            f"bit_exact (TFLM vs reference of the plan): {self.bit_exact} (max |diff| {self.max_abs_diff})",
            f"original int8 model, TFLM vs reference: {self.original_bit_exact}",
            f"TFLM activation arena: {self.arena_bytes_original:,} B -> {self.arena_bytes_converted:,} B "
            f"({self.arena_ratio:.2f}x smaller)",
            f"TFLM total arena: {self.arena_total_bytes_original:,} B -> {self.arena_total_bytes_converted:,} B",
        ] + dev + [f"note: {n}" for n in self.notes])


def _check_inputs(graph, samples: Optional[np.ndarray], count: int) -> np.ndarray:
    if samples is not None:
        return samples[:count]
    t = graph.tensors[graph.inputs[0]]
    info = np.iinfo(np.dtype(t.dtype))
    rng = np.random.default_rng(_SEED)
    return rng.integers(info.min, info.max + 1, (count,) + tuple(t.shape[1:])).astype(t.dtype)


def check_model(model: str | os.PathLike, calib: Optional[str | os.PathLike] = None,
                pass_config: Iterable[str] = (), samples: int = DEFAULT_SAMPLES, act_bits: Optional[int] = None,
                weight_bits: Optional[int] = None, tflm_dir: Optional[str | os.PathLike] = None,
                cache_dir: Optional[Path] = None, target: Optional[str] = None) -> CheckReport:
    """Run the whole check (see the module docstring)."""
    root = resolve_tflm_dir(tflm_dir)  # fail fast, before any planning
    library = build_ops_library(root, cache_dir)
    info = runtime_info()
    planned = plan_model(model, calib, pass_config, act_bits, weight_bits)
    result = rewrite(planned.quant_graph, planned.assignment, planned.act_quant, target=planned.options.target,
                     hessians=planned.hessians())
    graph = planned.graph
    x = _check_inputs(graph, planned.samples, max(1, samples))
    n_out = len(graph.outputs)
    with tempfile.TemporaryDirectory(prefix="mixq_tflm_check_") as tmp:
        converted_path = Path(tmp) / "converted.tflite"
        converted_path.write_bytes(result.tflite())
        original = run_tflm(Path(model), [x], n_out)
        converted = run_tflm(converted_path, [x], n_out, library=library)
    tflm_numerics = ReferenceOptions(tflite_float_fc=False)  # TFLM's fixed-point FULLY_CONNECTED
    want = Interpreter(result.planned, tflm_numerics).run([x])
    want_int8 = Interpreter(graph, tflm_numerics).run([x])
    diff = max(int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max(initial=0))
               for a, b in zip(converted.outputs, want))
    exact = all(np.array_equal(a, b) for a, b in zip(converted.outputs, want))
    orig_exact = all(np.array_equal(a, b) for a, b in zip(original.outputs, want_int8))
    device = None
    if target is not None:
        from .firmware import firmware_check

        fw_conv = firmware_check(result.tflite(), result.converted, x, want[0], target, root)
        fw_orig = firmware_check(Path(model).read_bytes(), graph, x, want_int8[0], target, root)
        device = {"target": target, "bit_exact": fw_conv.bit_exact, "original_bit_exact": fw_orig.bit_exact,
                  "arena_bytes_original": fw_orig.arena.head, "arena_bytes_converted": fw_conv.arena.head,
                  "arena_total_bytes_original": fw_orig.arena.total,
                  "arena_total_bytes_converted": fw_conv.arena.total,
                  "instructions_original": max(fw_orig.instructions_per_invoke, default=0),
                  "instructions_converted": max(fw_conv.instructions_per_invoke, default=0)}
    return CheckReport(
        model=graph.name, bit_exact=exact, max_abs_diff=diff, original_bit_exact=orig_exact, samples=int(x.shape[0]),
        arena_bytes_original=original.arena.head, arena_bytes_converted=converted.arena.head,
        arena_total_bytes_original=original.arena.total, arena_total_bytes_converted=converted.arena.total,
        mixq_ops=len(result.mixq_ops), ops=len(result.planned.ops), notes=list(result.notes),
        tflm_dir=str(root), tflm_commit=tflm_commit(root), runtime=f"tflite-micro {info.version}",
        library=str(library), device=device)
