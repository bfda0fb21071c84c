"""``mixq bench kernels``: every kernel variant against the baselines on an emulated core.

For each layer shape (:mod:`.shapes`) and bitwidth variant (:mod:`.cases`), the firmware runs the
project's kernel and the baselines on the same random data, checks each output against the Python
reference inside the firmware and counts instructions (:mod:`tvm_mixq.emu`). Many layers share one
firmware image, so a whole target takes a few QEMU runs.

Result rows follow DESIGN section 4: one per (kernel, baseline) pair, where ``cmsis_int8`` is the
int8 baseline on the W8A8 data of the same shape and ``cmix_unpack16`` the sub-byte baseline at
the kernel's own bitwidths (W8A8 kernels have only the ``cmsis_int8`` row).
"""
from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..emu import get_target
from ..errors import MixqError
from .cases import ELEMENTWISE_VARIANTS, WEIGHTED_OPS, WEIGHTED_VARIANTS, CaseData, Variant, make_case
from .firmware import FirmwareImage, RunOutcome, baseline_accepts, ours_available, run_image
from .shapes import CMSIS_NN_ANCHOR_FIGURES, LayerShape, benchmark_shapes

log = logging.getLogger(__name__)

#: Flash budget of one benchmark image (the boards have 4 MB of code memory).
IMAGE_FLASH_BYTES = 1_500_000


@dataclass
class Measurement:
    """One kernel call measured in the firmware."""

    impl: str
    op: str
    in_bits: int
    w_bits: int
    out_bits: int
    shape: dict
    source: str
    macs: int
    instructions: Optional[int]
    bit_exact: bool
    weight_bytes: int
    scratch_bytes: Optional[int]
    status: int = 0


@dataclass
class BenchRow:
    """One (kernel, baseline) pair, DESIGN section 4 plus memory and derived figures."""

    op: str
    in_bits: int
    w_bits: int
    out_bits: int
    shape: dict
    macs: int
    instructions: Optional[int]
    bit_exact: bool
    baseline: str
    baseline_instructions: Optional[int]
    baseline_bit_exact: bool
    source: str
    variant: str
    macs_per_instruction: Optional[float]
    speedup: Optional[float]  # baseline_instructions / instructions
    weight_bytes: int
    baseline_weight_bytes: int
    scratch_bytes: Optional[int]
    baseline_scratch_bytes: Optional[int]
    status: int = 0  # the project's kernel's return status (negative: it refused the layer)


@dataclass
class BenchReport:
    target: str
    results: list[BenchRow] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    ours: bool = True
    ours_missing_reason: Optional[str] = None

    @property
    def all_bit_exact(self) -> bool:
        """Every call that ran matched the reference (calls a kernel refused, status < 0, aside)."""
        return all(m.bit_exact for m in self.measurements if m.status == 0)

    @property
    def refused(self) -> list[Measurement]:
        """Calls whose kernel returned an error status (a shape or bitwidth it does not take)."""
        return [m for m in self.measurements if m.status != 0]

    def as_json(self) -> dict:
        return {
            "target": self.target,
            "instruction_counting": "QEMU -icount shift=0, SysTick at 40 instructions per tick (resolution 40)",
            "ours": self.ours,
            "ours_missing_reason": self.ours_missing_reason,
            "bit_exact": self.all_bit_exact,
            "refused": [asdict(m) for m in self.refused],
            "results": [asdict(r) for r in self.results],
            "measurements": [asdict(m) for m in self.measurements],
            "cmsis_nn_anchor_figures_m7": CMSIS_NN_ANCHOR_FIGURES,
            "summary": summary(self) if self.ours else None,
        }


def all_weighted_variants() -> list[Variant]:
    """Every (input, weight, output) bitwidth combination of the weighted ops, W8A8 first."""
    return [Variant(i, w, o) for i in (8, 4, 2) for w in (8, 4, 2) for o in (8, 4, 2)]


def variants_for(op: str, selected: Optional[Sequence[Variant]] = None) -> list[Variant]:
    """Variants benchmarked for ``op`` (W8A8 always first: the cmsis_int8 baseline runs on it)."""
    base = WEIGHTED_VARIANTS if op in WEIGHTED_OPS else ELEMENTWISE_VARIANTS
    chosen = list(base if selected is None else [v for v in selected if v in base or op in WEIGHTED_OPS])
    if op not in WEIGHTED_OPS:
        chosen = [v for v in chosen if v.in_bits == v.w_bits]
    int8 = Variant(8, 8, 8)
    return [int8] + [v for v in chosen if v != int8]


def _measurement(impl: str, case: CaseData, outcome: RunOutcome, weight_bytes: int) -> Measurement:
    s, v = case.shape, case.variant
    return Measurement(
        impl=impl,
        op=s.op,
        in_bits=v.in_bits,
        w_bits=v.w_bits,
        out_bits=v.out_bits,
        shape=s.as_json(),
        source=s.source,
        macs=s.macs,
        instructions=outcome.instructions,
        bit_exact=outcome.bit_exact,
        weight_bytes=weight_bytes,
        scratch_bytes=outcome.scratch_bytes,
        status=outcome.status,
    )


def run_kernel_bench(
    target: str,
    shapes: Optional[Iterable[LayerShape]] = None,
    variants: Optional[Sequence[Variant]] = None,
    build_dir: Optional[Path] = None,
    with_ours: Optional[bool] = None,
    seed: int = 0,
    image_flash_bytes: int = IMAGE_FLASH_BYTES,
    timeout: float = 900.0,
    baselines: bool = True,
) -> BenchReport:
    """Benchmark every (shape, variant) on ``target`` (``cortex-m4`` / ``cortex-m7``).

    Parameters
    ----------
    shapes
        Layers to run; default :func:`.shapes.benchmark_shapes` (anchors, VWW-96, KWS).
    variants
        Bitwidth variants; default :data:`.cases.WEIGHTED_VARIANTS` / ``ELEMENTWISE_VARIANTS``.
    with_ours
        Include the project's kernels (default: when kernels/ provides them).
    build_dir
        Where generated sources, objects and ELFs go (default ``build/bench``).
    baselines
        ``False``: the project's kernels only (cost-table sweeps over every bitwidth combination).
    """
    get_target(target)
    reason = ours_available()
    if with_ours is None:
        with_ours = reason is None
    elif with_ours and reason is not None:
        raise MixqError(f"the project's kernels cannot be benchmarked: {reason}")
    shape_list = list(benchmark_shapes() if shapes is None else shapes)
    if not shape_list:
        raise MixqError("no layer shapes to benchmark")
    bdir = Path(build_dir) if build_dir else Path(__file__).resolve().parents[2] / "build" / "bench"

    images: list[FirmwareImage] = []
    # (shape index, variant key, impl) -> (case, run name, weight bytes)
    planned: dict[tuple[int, str, str], tuple[CaseData, str, int]] = {}
    cases: dict[tuple[int, str], CaseData] = {}
    current: Optional[FirmwareImage] = None
    for i, shape in enumerate(shape_list):
        if current is None or current.flash_bytes > image_flash_bytes:
            current = FirmwareImage(f"bench{len(images)}", with_ours)
            images.append(current)
        for vi, variant in enumerate(variants_for(shape.op, variants)):
            case = make_case(shape, variant, seed=seed * 1000 + i * 16 + vi)
            cases[(i, variant.key)] = case
            impls = ["ours"] if with_ours else []
            if not baselines:
                pass
            elif variant.is_int8:
                impls.append("cmsis_int8")
            elif baseline_accepts(case):
                impls.append("cmix_unpack16")
            for impl in impls:
                run = current.add_run(f"l{i}", impl, case)
                planned[(i, variant.key, impl)] = (case, run.name, run.weight_bytes)
    log.info("%d layers, %d kernel calls in %d images", len(shape_list), len(planned), len(images))

    outcomes: dict[str, RunOutcome] = {}
    bdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=bdir) as work:
        for image in images:
            log.info("running %s (%d calls, %d KB of data)", image.name, len(image.runs), image.flash_bytes // 1024)
            outcomes.update(run_image(image, target, bdir, Path(work), timeout=timeout))

    report = BenchReport(target=target, ours=with_ours, ours_missing_reason=None if with_ours else reason)
    measured: dict[tuple[int, str, str], Measurement] = {}
    for key, (case, name, wbytes) in planned.items():
        m = _measurement(key[2], case, outcomes[name], wbytes)
        measured[key] = m
        report.measurements.append(m)
    if with_ours:
        for (i, vkey, impl), m in measured.items():
            if impl != "ours":
                continue
            case = cases[(i, vkey)]
            pairs = [("cmsis_int8", measured.get((i, "888", "cmsis_int8")))]
            if not case.variant.is_int8:
                pairs.append(("cmix_unpack16", measured.get((i, vkey, "cmix_unpack16"))))
            for bname, b in pairs:
                if b is None:
                    continue
                report.results.append(_row(case, m, bname, b))
    return report


def _row(case: CaseData, ours: Measurement, baseline: str, b: Measurement) -> BenchRow:
    instr = ours.instructions
    binstr = b.instructions
    return BenchRow(
        op=ours.op,
        in_bits=ours.in_bits,
        w_bits=ours.w_bits,
        out_bits=ours.out_bits,
        shape=ours.shape,
        macs=ours.macs,
        instructions=instr,
        bit_exact=ours.bit_exact,
        baseline=baseline,
        baseline_instructions=binstr,
        baseline_bit_exact=b.bit_exact,
        source=ours.source,
        variant=case.variant.label,
        macs_per_instruction=round(ours.macs / instr, 4) if instr else None,
        speedup=round(binstr / instr, 4) if instr and binstr else None,
        weight_bytes=ours.weight_bytes,
        baseline_weight_bytes=b.weight_bytes,
        scratch_bytes=ours.scratch_bytes,
        baseline_scratch_bytes=b.scratch_bytes,
        status=ours.status,
    )


def _exact(rows: Iterable[BenchRow]) -> str:
    rows = list(rows)
    if any(r.instructions is None for r in rows) or any(r.status != 0 for r in rows):
        return "refsd"
    return "yes" if all(r.bit_exact and r.baseline_bit_exact for r in rows) else "NO"


def _shape_label(shape: dict, op: str) -> str:
    if op == "fully_connected":
        return f"{shape['cin']}->{shape['cout']}"
    if op == "add":
        return f"{shape['h']}x{shape['w']}x{shape['cin']}"
    win = "" if op == "pointwise" else f"{shape['kh']}x{shape['kw']}s{shape['stride']} "
    return f"{win}{shape['h']}x{shape['w']}x{shape['cin']}->{shape['cout']}"


def format_table(report: BenchReport) -> str:
    """Human-readable table: per kernel, instructions, MACs/instr and the ratio to each baseline."""
    lines = [f"kernel benchmark on {report.target} (instructions per call, QEMU -icount, resolution 40)"]
    if report.ours:
        hdr = (f"{'op':<15} {'src':<7} {'shape':<26} {'var':<8} {'MACs':>9} {'instr':>10} {'MAC/i':>6} "
               f"{'cmsis8':>10} {'x':>5} {'cmix16':>10} {'x':>5} {'exact':>5} {'W B':>7} {'scr B':>7}")
        lines.append(hdr)
        by_kernel: dict[tuple, dict[str, BenchRow]] = {}
        for r in report.results:
            key = (r.op, r.source, json.dumps(r.shape, sort_keys=True), r.in_bits, r.w_bits, r.out_bits)
            by_kernel.setdefault(key, {})[r.baseline] = r
        for rows in by_kernel.values():
            r = next(iter(rows.values()))
            c = rows.get("cmsis_int8")
            x = rows.get("cmix_unpack16")

            def fmt(v: Optional[float], spec: str) -> str:
                return "-" if v is None else format(v, spec)

            lines.append(
                f"{r.op:<15} {r.source:<7} {_shape_label(r.shape, r.op):<26} {r.variant:<8} {r.macs:>9} "
                f"{fmt(r.instructions, 'd'):>10} {fmt(r.macs_per_instruction, '.2f'):>6} "
                f"{fmt(c.baseline_instructions if c else None, 'd'):>10} {fmt(c.speedup if c else None, '.2f'):>5} "
                f"{fmt(x.baseline_instructions if x else None, 'd'):>10} {fmt(x.speedup if x else None, '.2f'):>5} "
                f"{_exact(rows.values()):>5} "
                f"{r.weight_bytes:>7} {fmt(r.scratch_bytes, 'd'):>7}"
            )
        lines.extend(_summary(report))
    else:
        lines.append(f"(project kernels not benchmarked: {report.ours_missing_reason or 'disabled'})")
        lines.append(f"{'impl':<14} {'op':<15} {'src':<7} {'shape':<26} {'bits':<6} {'MACs':>9} {'instr':>10} "
                     f"{'MAC/i':>6} {'exact':>5}")
        for m in report.measurements:
            mpi = f"{m.macs / m.instructions:.2f}" if m.instructions else "-"
            lines.append(
                f"{m.impl:<14} {m.op:<15} {m.source:<7} {_shape_label(m.shape, m.op):<26} "
                f"{m.in_bits}{m.w_bits}{m.out_bits:<4} {m.macs:>9} {m.instructions if m.instructions else '-':>10} "
                f"{mpi:>6} {'yes' if m.bit_exact else 'NO':>5}"
            )
    return "\n".join(lines)


def _geomean(values: list[float]) -> Optional[float]:
    vals = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _anchor_measurement(report: BenchReport, op: str, bits: tuple[int, int, int], impl: str = "ours"):
    for m in report.measurements:
        if m.impl == impl and m.source == "anchor" and m.op == op and (m.in_bits, m.w_bits, m.out_bits) == bits:
            return m
    return None


def summary(report: BenchReport) -> dict:
    """The kernel issue's target figures, computed from this run.

    ``geomean_vs_own_w8a8``: over the conv2d + pointwise layers, ours W8A8 instructions divided by
    ours at the sub-byte variant (higher is better). ``anchors``: per anchor layer, ours at each
    variant against the CMSIS-NN figures quoted in the issue (M7; M4 within 2.5%) and against this
    run's baselines.
    """
    out: dict = {"geomean_vs_own_w8a8": {}, "geomean_vs_cmix_unpack16": {}, "anchors": {}}
    ours = {(m.op, json.dumps(m.shape, sort_keys=True), m.source, m.in_bits, m.w_bits, m.out_bits): m
            for m in report.measurements if m.impl == "ours"}
    for label, bits in (("W4A4", (4, 4, 4)), ("W2A2", (2, 2, 2)), ("W4A8", (8, 4, 8)), ("W8A4", (4, 8, 4)),
                        ("W2A8", (8, 2, 8))):
        ratios = []
        for (op, sh, src, *b), m in ours.items():
            if op not in ("conv2d", "pointwise") or tuple(b) != bits or not m.instructions:
                continue
            ref = ours.get((op, sh, src, 8, 8, 8))
            if ref and ref.instructions:
                ratios.append(ref.instructions / m.instructions)
        g = _geomean(ratios)
        if g:
            out["geomean_vs_own_w8a8"][label] = {"layers": len(ratios), "ratio": round(g, 3)}
        cmix = [r.speedup for r in report.results
                if r.baseline == "cmix_unpack16" and (r.in_bits, r.w_bits, r.out_bits) == bits
                and r.op in ("conv2d", "pointwise") and r.speedup]
        g = _geomean(cmix)
        if g:
            out["geomean_vs_cmix_unpack16"][label] = {"layers": len(cmix), "ratio": round(g, 3)}
    for op, figures in CMSIS_NN_ANCHOR_FIGURES.items():
        entry: dict = {"cmsis_nn_s8": figures["s8"], "cmsis_nn_s4": figures["s4"]}
        base = _anchor_measurement(report, op, (8, 8, 8), "cmsis_int8")
        if base and base.instructions:
            entry["cmsis_int8_baseline"] = base.instructions
        for label, bits in (("W8A8", (8, 8, 8)), ("W4A4", (4, 4, 4)), ("W2A2", (2, 2, 2)), ("W4A8", (8, 4, 8))):
            m = _anchor_measurement(report, op, bits)
            if m and m.instructions:
                entry[label] = {
                    "instructions": m.instructions,
                    "vs_cmsis_nn_s8": round(figures["s8"] / m.instructions, 3),
                    "vs_cmsis_nn_s4": round(figures["s4"] / m.instructions, 3),
                }
        out["anchors"][op] = entry
    return out


def _summary(report: BenchReport) -> list[str]:
    s = summary(report)
    out = []
    for label, v in s["geomean_vs_own_w8a8"].items():
        cm = s["geomean_vs_cmix_unpack16"].get(label)
        extra = f"; vs cmix_unpack16 {cm['ratio']:.2f}x" if cm else ""
        out.append(f"conv2d+pointwise geomean over {v['layers']} layers: ours W8A8 / ours {label} = "
                   f"{v['ratio']:.2f}x{extra}")
    if s["anchors"]:
        out.append("anchor layers, CMSIS-NN instructions (kernel issue, M7) / ours:")
        for op, e in s["anchors"].items():
            parts = [f"{k} {v['instructions']} ({v['vs_cmsis_nn_s8']:.2f}x s8, {v['vs_cmsis_nn_s4']:.2f}x s4)"
                     for k, v in e.items() if isinstance(v, dict)]
            if parts:
                out.append(f"  {op:<16} s8 {e['cmsis_nn_s8']}, s4 {e['cmsis_nn_s4']}, cmsis_int8 baseline "
                           f"{e.get('cmsis_int8_baseline', '-')}: " + "; ".join(parts))
    return out


def write_cost_table(report: BenchReport, path: Path) -> Path:
    """Per (impl, op, bitwidths, shape): instructions and MACs, for the mixed-precision search.

    The file is JSON: ``{"target", "entries": [{impl, op, in_bits, w_bits, out_bits, shape, macs,
    instructions, instructions_per_mac}]}``; :func:`.cost_table.load_cost_table` reads it.
    """
    entries = []
    for m in report.measurements:
        if m.instructions is None or not m.bit_exact:
            continue
        entries.append({
            "impl": m.impl,
            "op": m.op,
            "in_bits": m.in_bits,
            "w_bits": m.w_bits,
            "out_bits": m.out_bits,
            "shape": m.shape,
            "source": m.source,
            "macs": m.macs,
            "instructions": m.instructions,
            "instructions_per_mac": round(m.instructions / m.macs, 4) if m.macs else None,
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"target": report.target, "entries": entries}, indent=1) + "\n")
    return path
