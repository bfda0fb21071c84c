"""Benchmark firmware: embed the cases of several layers into one image, build it for a target,
run it in QEMU and collect per-call instruction counts and in-firmware check results.

Implementations measured per case (``impl`` names):

* ``ours``: the project's kernel library (kernels/include/mixq_kernels.h, weights packed by
  :func:`tvm_mixq.kernellib.pack_weights`; A4W4 conv2d / pointwise / fully connected as the code
  generator emits them: weights in lane words, :func:`tvm_mixq.kernellib.pack_w4_lanes`, through the
  ``_lanes`` entry points);
* ``cmsis_int8``: the int8 CMSIS-NN style baseline (kernels/baselines), run on the W8A8 data;
* ``cmix_unpack16``: the sub-byte CMix-NN style baseline at the case's bitwidths.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import jinja2
import numpy as np

from ..emu import INSTRUCTIONS_PER_TICK, EmulationError, build_elf, compile_objects, run_elf
from ..reference import subbyte
from .cases import WEIGHTED_OPS, CaseData

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[2]
BASELINE_DIR = REPO_DIR / "kernels" / "baselines"
KERNELS_DIR = REPO_DIR / "kernels"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

OUT_BYTES_MIN = 4096
SCRATCH_BYTES = 512 * 1024

IMPLS = ("ours", "cmsis_int8", "cmix_unpack16")


def baseline_sources() -> list[Path]:
    return sorted(BASELINE_DIR.glob("*.c"))


def ours_available() -> Optional[str]:
    """None when the project's kernel library can be built, else the reason it cannot."""
    if not (KERNELS_DIR / "include" / "mixq_kernels.h").is_file():
        return "kernels/include/mixq_kernels.h not found"
    try:
        import tvm_mixq.kernellib.build  # noqa: F401
    except ImportError as exc:
        return f"tvm_mixq.kernellib not importable: {exc}"
    return None


def baseline_accepts(case: CaseData) -> bool:
    """Whether the baselines take this case's shape at its bitwidths (see mixq_baselines.h)."""
    s, v = case.shape, case.variant
    if s.op in ("conv2d", "pointwise", "fully_connected"):
        return (s.k * v.w_bits) % 8 == 0
    if s.op == "depthwise":
        return (s.cin * min(v.in_bits, v.w_bits, v.out_bits)) % 8 == 0
    return True


@dataclass
class _Array:
    name: str
    ctype: str
    count: int
    body: str


def _c_body(values: np.ndarray, per_line: int = 24) -> str:
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    if not flat:
        flat = ["0"]
    return ",\n".join("    " + ", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line))


@dataclass
class Run:
    """One measured kernel call of the firmware."""

    name: str  # region name reported by the firmware
    impl: str
    case: CaseData
    weight_bytes: int = 0
    fields: dict = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What the firmware reported for one run."""

    name: str
    instructions: Optional[int]
    bit_exact: bool
    scratch_bytes: Optional[int]
    status: int = 0


class FirmwareImage:
    """C source of one benchmark image, accumulated run by run."""

    def __init__(self, name: str, with_ours: bool) -> None:
        self.name = name
        self.with_ours = with_ours
        self.arrays: list[_Array] = []
        self.runs: list[Run] = []
        self._array_names: dict[str, str] = {}
        self.flash_bytes = 0
        self.out_bytes = OUT_BYTES_MIN

    def _array(self, name: str, values: np.ndarray, ctype: str) -> str:
        if name in self._array_names:
            return self._array_names[name]
        a = np.asarray(values)
        self.arrays.append(_Array(name, ctype, max(int(a.size), 1), _c_body(a)))
        self.flash_bytes += int(a.size) * (4 if ctype == "int32_t" else 1)
        self._array_names[name] = name
        return name

    def add_run(self, key: str, impl: str, case: CaseData) -> Run:
        """Add one kernel call: ``impl`` on ``case``; ``key`` names the case's arrays."""
        s, v = case.shape, case.variant
        ib, wb, ob = v.in_bits, v.w_bits, v.out_bits
        prefix = f"{key}_v{v.key}"
        x = self._array(f"{prefix}_x", subbyte.pack(case.x, ib, signed=(ib == 8)), "uint8_t")
        out_bytes = subbyte.packed_size(case.expected.size, ob)
        expected = self._array(f"{prefix}_expected", subbyte.pack(case.expected, ob, signed=(ob == 8)), "uint8_t")
        self.out_bytes = max(self.out_bytes, (out_bytes + 7) // 8 * 8)
        fields: dict = {
            "op": s.op,
            "s": s,
            "bits": (ib, wb, ob),
            "x": x,
            "x_zp": case.x_zp,
            "out_zp": case.out_zp,
            "qmin": case.qmin,
            "qmax": case.qmax,
            "expected": expected,
            "out_bytes": out_bytes,
            "bias": "NULL",
            "mult": "NULL",
            "shift": "NULL",
            "lanes": False,
        }
        weight_bytes = 0
        if s.op in WEIGHTED_OPS:
            bias = case.bias
            if impl == "ours":
                from ..kernellib.layout import kernel_weights

                fields["lanes"] = (ib, wb) == (4, 4) and s.op != "depthwise"  # as the code generator emits A4W4
                packed, bias = kernel_weights(case.w, wb, case.bias, case.x_zp, fields["lanes"], s.op == "depthwise")
                fields["w"] = self._array(f"{prefix}_w_ours", packed, "uint8_t")
            else:
                packed = subbyte.pack(case.w, wb, signed=True)
                fields["w"] = self._array(f"{prefix}_w_plain", packed, "uint8_t")
            weight_bytes = int(packed.size)
            fields["bias"] = self._array(f"{prefix}_bias{'_lanes' if fields['lanes'] else ''}", bias, "int32_t")
        if case.multiplier is not None:
            fields["mult"] = self._array(f"{prefix}_mult", case.multiplier, "int32_t")
            fields["shift"] = self._array(f"{prefix}_shift", case.shift, "int32_t")
        if s.op == "avgpool":
            fields["pool_mult"] = int(case.multiplier[0])
            fields["pool_shift"] = int(case.shift[0])
        if s.op == "add":
            fields["x2"] = self._array(f"{prefix}_x2", subbyte.pack(case.x2, wb, signed=(wb == 8)), "uint8_t")
            fields["x2_zp"] = case.x2_zp
            fields["add"] = case.add
        name = f"{key}.{v.key}.{impl}"
        run = Run(name=name, impl=impl, case=case, weight_bytes=weight_bytes, fields=fields)
        self.runs.append(run)
        return run

    def render(self, target: str) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        runs = []
        for i, r in enumerate(self.runs):
            f = dict(r.fields)
            f.update(
                name=r.name,
                impl=r.impl,
                func=f"run_{i}",
                comment=f"{r.impl} {r.case.shape.op} {r.case.shape.label()} {r.case.variant.label}",
            )
            runs.append(f)
        return env.get_template("bench_main.c.j2").render(
            image_name=self.name,
            target=target,
            with_ours=self.with_ours,
            arrays=self.arrays,
            runs=runs,
            out_bytes=self.out_bytes,
            scratch_bytes=SCRATCH_BYTES,
        )


def library_objects(target: str, build_dir: Path, with_ours: bool) -> list[Path]:
    """Cross-compiled objects of the baselines (and of the kernel library), cached."""
    objs = compile_objects(baseline_sources(), target, build_dir / "obj" / target / "baselines",
                           include_dirs=[BASELINE_DIR / "include", BASELINE_DIR])
    if with_ours:
        from ..kernellib.build import include_dirs, kernel_sources

        objs += compile_objects(kernel_sources(), target, build_dir / "obj" / target / "kernels",
                                include_dirs=include_dirs())
    return objs


def run_image(image: FirmwareImage, target: str, build_dir: Path, work_dir: Path,
              timeout: float = 600.0) -> dict[str, RunOutcome]:
    """Build and run one image; map each run's name to its outcome.

    Library objects are cached in ``build_dir``; the image's source and ELF go to ``work_dir``.
    """
    build_dir = Path(build_dir)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    src = work_dir / f"{image.name}-{target}.c"
    src.write_text(image.render(target))
    includes: list[Path] = [BASELINE_DIR / "include"]
    if image.with_ours:
        from ..kernellib.build import include_dirs

        includes += include_dirs()
    objs = library_objects(target, build_dir, image.with_ours)
    elf = build_elf([src, *objs], target, work_dir / f"{image.name}-{target}.elf", include_dirs=includes)
    result = run_elf(elf, target, timeout=timeout)
    outcomes: dict[str, RunOutcome] = {}
    for r in image.runs:
        ticks = result.ticks.get(r.name)
        scratch = result.values.get(f"{r.name}.scratch")
        status = int(result.values.get(f"{r.name}.status", 0))
        if status == 0 and scratch is not None and scratch < 0:
            status = int(scratch)  # _get_buffer_size refused the layer
        outcomes[r.name] = RunOutcome(
            name=r.name,
            instructions=None if ticks is None else ticks * INSTRUCTIONS_PER_TICK,
            bit_exact=bool(result.checks.get(r.name, False)),
            scratch_bytes=scratch,
            status=status,
        )
    if result.exit_code not in (0, 1):
        raise EmulationError(f"benchmark image {image.name} exited with {result.exit_code}")
    if "failures" not in result.values:
        raise EmulationError(f"benchmark image {image.name} stopped early: {result.console[-300:]}")
    return outcomes
