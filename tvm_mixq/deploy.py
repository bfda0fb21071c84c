"""End-to-end deployment: plan, generate C, build, run in QEMU, compare, report (DESIGN section 4).

:func:`deploy` makes two deployments of one model with the same code generator:

* the **int8 baseline** (``mixq.enable=0``): the model as it is, layer by layer (every layer whole,
  no in-place rows), all 8-bit;
* the **mixq** deployment: the mixed-precision graph of :func:`tvm_mixq.quant.assign_precision`
  (calibration, VDQS bitwidths; sub-byte activations and weights run on the packed kernels). When
  the int8 plan has a patch stage, VDPC classifies its patches (:func:`mixed_precision`); with
  outlier patches, one candidate schedule keeps that stage and its outlier patches run the stage
  at 8-bit feature maps (:func:`make_outlier_plan`, :mod:`tvm_mixq.codegen.patches`).

Both are generated (:func:`tvm_mixq.codegen.generate_c`), checked against the target's memory
*before* any build (:func:`tvm_mixq.codegen.firmware.check_fit`), built for the QEMU board of the
target, and with ``run`` executed: the firmware compares its outputs with the Python reference of
the same graph (``ReferenceOptions(tflite_float_fc=False)``, the fixed-point FULLY_CONNECTED the
kernels and TFLM compute) and reports instruction counts per layer and in total.

The mixq deployment is generated from a :class:`tvm_mixq.plan.Plan` of the mixed-precision graph:
its patch stages run as table-driven patch loops (streamed input with ``mixq.stream_input=1``), its
channel splits as loops over channel slices, and the reference is the plan's own executor. The
generated arena (``peak_sram_bytes``) comes from the code generator's own placement (in-place
convolutions in blocks of output rows, one stage output over its input); it can exceed the planner's figure
(``planned_peak_sram_bytes``), whose in-place patch tiles are not generated.

Which schedule (:func:`pick_schedule`): the plan with VDPC's outlier patches (when there are
some), the plan, the plan without channel splits, layer by layer and layer by layer without
in-place rows (every layer whole) are generated. With
``mixq.sram_limit_kb`` the simplest that fits is kept. Without a limit, with ``run``, every one that
fits the device is run and, among those no slower than the int8 baseline, the best combined gain
over int8 (SRAM ratio times instruction ratio) is kept (``mixq.objective``: ``balanced``; ``speed``
keeps the fewest instructions, ``memory`` the smallest arena); when none gains, the deployment is
the int8 model itself: a deployment slower than int8 comes only from a limit or ``memory``. The
JSON's ``schedules`` lists each candidate's arena and instructions.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .codegen import CodegenError, GeneratedModel, generate_c
from .codegen.splits import SplitPlan
from .codegen.firmware import DeviceMemory, Firmware, FirmwareRun, build_firmware, check_fit, device_memory, run_firmware
from .errors import InputDataError, MixqError
from .graph import Graph
from .options import MixqOptions
from .reader import read_tflite
from .reference.interpreter import Interpreter, ReferenceOptions

log = logging.getLogger(__name__)

#: The arithmetic the kernels implement (fixed-point FULLY_CONNECTED, as TFLM/CMSIS-NN).
KERNEL_REFERENCE = ReferenceOptions(tflite_float_fc=False)
DEPLOY_TARGETS = ("cortex-m4", "cortex-m7")

Progress = Callable[[str], None]


@dataclass
class Variant:
    """One deployment of the model (``int8`` or ``mixq``)."""

    name: str
    graph: Graph
    model: GeneratedModel
    firmware: Optional[Firmware] = None
    run: Optional[FirmwareRun] = None
    expected: list[np.ndarray] = field(default_factory=list)

    @property
    def instructions(self) -> Optional[int]:
        return self.run.total_instructions if self.run else None

    @property
    def bit_exact(self) -> Optional[bool]:
        return self.run.passed if self.run else None

    def layers(self) -> list[dict[str, Any]]:
        """One row per layer; a layer of a patch stage with outlier patches also gives how many
        patches run it at the outlier bitwidths (``outlier_patches``) and those (``outlier_bits``,
        in/w/out)."""
        rows = []
        outlier = {ol.op.index: ol for ol in getattr(self.model, "outlier_layers", [])}
        for i, layer in enumerate(self.model.layers):
            stage = self.model.stage_of(layer.op.index)
            in_stage = stage is not None
            ol = outlier.get(layer.op.index)
            rows.append({
                "name": layer.label,
                "op": layer.op.kind,
                "in_bits": layer.in_bits,
                "w_bits": layer.w_bits,
                "out_bits": layer.out_bits,
                "patches": stage.patches if in_stage else 1,
                "channel_split": layer.s.factor if isinstance(layer.s, SplitPlan) else 1,
                "macs": layer.macs,
                "instructions": self.run.layer_instructions[i] if self.run else None,
                "outlier_patches": int(stage.outlier.sum()) if ol is not None else 0,
                "outlier_bits": [ol.in_bits, ol.w_bits, ol.out_bits] if ol is not None else None,
            })
        return rows


@dataclass
class DeployResult:
    model_path: Path
    target: str
    options: MixqOptions
    memory: DeviceMemory
    mixq: Variant
    int8: Variant
    samples: int
    planned_peak: Optional[int] = None
    plan_summary: str = ""
    tflm_arena_bytes: Optional[int] = None
    tflm_arena_source: str = ""
    agreement: Optional[float] = None
    out_dir: Optional[Path] = None
    report_path: Optional[Path] = None
    seconds: float = 0.0
    schedules: list[dict[str, Any]] = field(default_factory=list)
    schedule: str = ""  # the kind of the schedule kept

    def to_json(self) -> dict[str, Any]:
        mixq = self.mixq
        return {
            "model": str(self.model_path),
            "target": self.target,
            "pass_config": self.options.to_config(),
            "peak_sram_bytes": mixq.model.arena_size,
            "planned_peak_sram_bytes": self.planned_peak,
            "flash_bytes": mixq.firmware.flash_bytes if mixq.firmware else None,
            "constant_bytes": mixq.model.const_bytes,
            "instructions": mixq.instructions,
            "macs": sum(layer.macs for layer in mixq.model.layers),
            "bit_exact": mixq.bit_exact,
            "samples": self.samples,
            "top1_agreement_with_int8": self.agreement,
            "layers": mixq.layers(),
            "baselines": {
                "int8_instructions": self.int8.instructions,
                "int8_peak_sram_bytes": self.int8.model.arena_size,
                "int8_flash_bytes": self.int8.firmware.flash_bytes if self.int8.firmware else None,
                "int8_bit_exact": self.int8.bit_exact,
                "int8_layer_instructions": {layer["name"]: layer["instructions"] for layer in self.int8.layers()},
                "tflm_arena_bytes": self.tflm_arena_bytes,
                "tflm_arena_source": self.tflm_arena_source,
            },
            "device_memory": {"sram_bytes": self.memory.sram_bytes, "flash_bytes": self.memory.flash_bytes,
                              "board": self.memory.board},
            "schedule": self.schedule,
            "schedules": self.schedules,
            "report": str(self.report_path) if self.report_path else None,
            "output_dir": str(self.out_dir) if self.out_dir else None,
            "export_dir": str(self.out_dir / "export") if self.out_dir else None,
        }


def load_npz_inputs(graph: Graph, path: str | os.PathLike) -> list[np.ndarray]:
    """``input_0..`` of an ``.npz`` as stacked samples (a batch-1 array becomes one sample)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = []
            for i, t_index in enumerate(graph.inputs):
                key = f"input_{i}"
                if key not in npz.files:
                    raise InputDataError(f"{path} has no array '{key}'")
                arrays.append(np.asarray(npz[key]))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read inputs {path}: {exc}") from exc
    out = []
    for t_index, x in zip(graph.inputs, arrays):
        t = graph.tensors[t_index]
        if x.dtype.name != t.dtype:
            raise InputDataError(f"{path}: input '{t.name}' must be {t.dtype}, got {x.dtype.name}")
        if tuple(x.shape) == tuple(t.shape):
            x = x.reshape((1,) + tuple(t.shape[1:]))
        if tuple(x.shape[1:]) != tuple(t.shape[1:]):
            raise InputDataError(f"{path}: input '{t.name}' needs shape {list(t.shape)} (or N samples along the "
                                 f"first axis), got {list(x.shape)}")
        out.append(x)
    return out


def random_inputs(graph: Graph, samples: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t_index in graph.inputs:
        t = graph.tensors[t_index]
        shape = (samples,) + tuple(t.shape[1:])
        if t.dtype == "float32":
            out.append(rng.normal(0.0, 1.0, size=shape).astype(np.float32))
        else:
            info = np.iinfo(np.dtype(t.dtype))
            out.append(rng.integers(info.min, info.max + 1, size=shape).astype(t.dtype))
    return out


def mixed_precision_graph(graph: Graph, options: MixqOptions, calib: Optional[str | os.PathLike],
                          progress: Progress, target: Optional[str] = None, int8_arena: Optional[int] = None) -> Graph:
    """The graph the mixq deployment runs: int8 as is when sub-byte is off, else VDQS's.
    ``int8_arena``: the int8 baseline's arena, the SRAM bound of the kernels' scratch without
    ``mixq.sram_limit_kb``."""
    mp, _ = mixed_precision(graph, options, calib, progress, target, int8_arena)
    return graph if mp is None else mp.graph


def mixed_precision(graph: Graph, options: MixqOptions, calib: Optional[str | os.PathLike], progress: Progress,
                    target: Optional[str] = None, int8_arena: Optional[int] = None) -> tuple[Any, Any]:
    """``(MixedPrecision, vdpc_plan)``: the bitwidths VDQS chose, and the int8 plan whose patch stage
    VDPC classified (outlier patches), as the TVM path does (:mod:`tvm_mixq.relax.graph_planner`:
    the int8 plan's patch stage); ``(None, None)`` when sub-byte is off. ``vdpc_plan`` is None
    without a patch stage (VDPC then has nothing to classify)."""
    if options.plain_int8 or options.min_bits == 8:
        return None, None
    from .quant.assign import assign_precision

    progress("calibrating and searching bitwidths (VDQS)")
    t0 = time.perf_counter()
    admissible = None
    plan8 = None
    try:
        # sub-byte kernels may need more scratch than int8 ones (the depthwise ring of rows): no
        # op's scratch grows past the room the smallest int8 plan leaves under the SRAM limit
        # (without a limit: under the int8 baseline's arena). A bound per op, not a guarantee for
        # the whole plan: the plan generated may still hold more (deploy refuses what does not fit)
        from .codegen.emitter import kernel_scratch_fn
        from .quant.assign import scratch_admissible
        from .schedule import plan_memory

        # the smallest int8 peak (no limit): the room a sub-byte plan can have at best
        plan8 = plan_memory(graph, options.replace(sram_limit_kb=0), scratch_fn=kernel_scratch_fn())
        limit = options.sram_limit_bytes or int8_arena or plan8.baseline_peak
        admissible = scratch_admissible(graph, max(limit - plan8.peak, 0))
    except MixqError as exc:
        log.info("no int8 plan to bound the kernels' scratch (%s)", exc)
    # VDPC classifies the patches of the int8 plan's stage (the bitwidths are not known yet); a
    # candidate schedule keeps that stage when it has outlier patches (make_outlier_plan)
    vdpc_plan = plan8 if plan8 is not None and plan8.patch_stage is not None else None
    mp = assign_precision(graph, plan=vdpc_plan, calib_path=calib, bits=options.bits, outlier_k=options.outlier_k,
                          lambda_=options.lambda_, cost_model=options.cost_model, target=target,
                          cost_budget=options.cost_budget or None,
                          outlier_rule=options.outlier_rule, outlier_percentile=options.outlier_percentile,
                          sensitivity=options.sensitivity, weight_rounding=options.weight_rounding,
                          admissible=admissible, min_agreement=options.min_agreement,
                          equalize_strength=options.equalize)
    low = sum(1 for t in mp.graph.tensors if not t.is_const and t.bits < 8)
    outliers = ""
    if vdpc_plan is not None:
        n = len(vdpc_plan.patch_stage.patches)
        outliers = f", {len(mp.assignment.outlier_patches) if mp.outlier_graph is not None else 0} of {n} patches " \
                   f"outliers (VDPC)"
    progress(f"bitwidths chosen in {time.perf_counter() - t0:.1f} s: {low} sub-byte feature maps, "
             f"BitOPs {mp.bitops / max(mp.int8_bitops, 1):.2f} of int8{outliers}")
    return mp, vdpc_plan


def _same_stage(a, b) -> bool:
    """Whether two patch stages have the same ops and patches (grid and output tiles)."""
    if a is None or b is None:
        return False
    return (list(a.ops) == list(b.ops) and tuple(a.grid) == tuple(b.grid) and len(a.patches) == len(b.patches)
            and all(p.index == q.index and p.output == q.output for p, q in zip(a.patches, b.patches)))


def make_plan(graph: Graph, options: MixqOptions, say: Progress):
    """The memory plan the mixq deployment is generated from (patch stages, channel splits); None
    when planning fails (the deployment is then generated layer by layer). The planner counts the
    kernel scratch the generated code places (:func:`tvm_mixq.codegen.emitter.kernel_scratch_fn`)."""
    from .codegen.emitter import kernel_scratch_fn
    from .quant.cost import mac_weights, make_cost_model
    from .schedule import plan_memory

    try:
        weights = mac_weights(graph, make_cost_model(options.cost_model, None, options.target))
        return plan_memory(graph, options, scratch_fn=kernel_scratch_fn(), op_weights=weights)
    except MixqError as exc:
        say(f"memory planning failed ({exc}); generating layer by layer")
        return None


def make_outlier_plan(graph: Graph, options: MixqOptions, say: Progress, mixed: Any, vdpc_plan: Any):
    """The plan with VDPC's outlier patches (:func:`mixed_precision`): ``vdpc_plan``'s patch stages
    (ops and grids of the first and of the later ones) kept, channel splits as ``options`` say, the
    first stage's patches carrying the outlier bitwidths (``Patch.bits``, ``Plan.outlier_graph``),
    the arena planned with them (the outlier kernels' scratch included). None without outlier
    patches, or when those stages cannot be planned for ``graph``. The stages are the int8 plan's:
    the plan searched at the chosen bitwidths (:func:`make_plan`) may prefer others, so both are
    candidate schedules."""
    from .codegen.emitter import kernel_scratch_fn
    from .schedule import plan_stages, replan_memory

    if mixed is None or mixed.outlier_graph is None or vdpc_plan is None:
        return None
    st = vdpc_plan.patch_stage
    later = [(int(ls.ops[0]), int(ls.ops[-1]), tuple(ls.grid), bool(ls.input_overlap))
             for ls in vdpc_plan.later_stages]
    try:
        plan = plan_stages(graph, (int(st.ops[-1]), tuple(st.grid)), later, options)
    except MixqError as exc:
        say(f"VDPC's patch stage cannot be planned ({exc}): no outlier patches")
        return None
    if not _same_stage(plan.patch_stage, st):
        say("VDPC's patch stage is not the plan's: no outlier patches")
        return None
    mixed.apply_to(plan)
    if not any(p.bits for p in plan.patch_stage.patches):
        say("VDPC's outlier patches run the bitwidths of the others (their feature maps are 8-bit already)")
        return None
    return replan_memory(plan, scratch_fn=kernel_scratch_fn())


@dataclass
class Schedule:
    """One candidate schedule of the mixq deployment: its variant (generated, and when measured,
    built and run) and the memory plan it was generated from (None: layer by layer)."""

    kind: str  # "plan with outlier patches", "plan", "plan without channel splits", "layer by layer",
    # "layer by layer without in-place rows", "int8 baseline"
    plan: Any
    variant: Variant

    @property
    def model(self) -> GeneratedModel:
        return self.variant.model

    @property
    def instructions(self) -> Optional[int]:
        return self.variant.instructions

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arena_bytes": self.model.arena_size, "instructions": self.instructions,
                "bit_exact": self.variant.bit_exact}


def generate_schedules(graph: Graph, plan, options: MixqOptions, out: Path, name: str, source: str,
                       description: str, say: Progress, mixed: Any = None, vdpc_plan: Any = None) -> list[Schedule]:
    """The mixq C from the plan with VDPC's outlier patches (``mixed`` and ``vdpc_plan`` of
    :func:`mixed_precision`, :func:`make_outlier_plan`; and that plan without channel splits), from
    the plan, from the plan without channel splits, layer by layer, and layer by layer without
    in-place rows (when that changes the arena), from the most to the least
    elaborate; a candidate the generator cannot emit is skipped. Only the first run outlier patches:
    the others run every patch (layer by layer: every position) at the searched bitwidths."""
    candidates = []
    outlier_plan = make_outlier_plan(graph, options, say, mixed, vdpc_plan)
    if outlier_plan is not None:
        st = outlier_plan.patch_stage
        say(f"outlier patches {sorted(p.index for p in st.patches if p.bits)} of the {st.grid[0]}x{st.grid[1]} "
            f"patch stage run the stage at 8-bit feature maps")
        candidates.append(("plan with outlier patches", outlier_plan))
        if outlier_plan.channel_splits:
            no_split = make_outlier_plan(graph, options.replace(channel_split="off"), say, mixed, vdpc_plan)
            if no_split is not None:
                candidates.append(("plan with outlier patches, without channel splits", no_split))
    if plan is not None:
        candidates.append(("plan", plan))
        if plan.channel_splits:
            no_split = make_plan(graph, options.replace(channel_split="off"), say)
            if no_split is not None:
                candidates.append(("plan without channel splits", no_split))
    candidates.append(("layer by layer", None))
    # every layer whole: in-place convolutions lower an arena but call their kernel once per block
    # of output rows, and each call repeats its set-up (sub-byte thresholds, weight sums): on KWS at
    # a 2/3 cost budget 14,976 -> 11,296 B for 2.74M -> 3.55M instructions (4.37M in blocks of one
    # row). Generated only when some layer ran in place.
    candidates.append(("layer by layer without in-place rows", None))
    made = []
    for rank, (kind, cand) in enumerate(candidates):
        whole = kind == "layer by layer without in-place rows"
        if whole and made and made[-1].kind == "layer by layer" and \
                not any(la.template == "rows_conv" for la in made[-1].model.layers):
            continue  # no layer ran in place: the same code
        try:
            model = generate_c(graph, out / f"mixq-{rank}", name=name, source=source, description=description,
                               plan=cand, arena_limit=options.sram_limit_bytes, in_place=not whole)
        except CodegenError as exc:
            say(f"{kind}: not generated ({exc})")
            continue
        say(f"{kind}: arena {model.arena_size:,} B")
        made.append(Schedule(kind, cand, Variant("mixq", graph, model)))
    if not made:
        raise MixqError(f"{name}: no schedule of the model could be generated")
    return made


def pick_schedule(schedules: Sequence[Schedule], limit: Optional[int],
                  int8: Optional[tuple[int, int]] = None, objective: str = "balanced") -> Schedule:
    """The schedule deploy keeps (``schedules`` from the most to the least elaborate).

    With ``mixq.sram_limit_kb``: the simplest whose arena fits the limit (patches recompute halos and
    call every kernel once per patch, so a simpler schedule runs fewer instructions); when none fits,
    the smallest arena (refused by :func:`check_fit` with the figures).
    Without a limit, when the candidates were run (``int8``: the baseline's arena and instructions):
    among those no slower than the int8 baseline, the best combined gain over int8, ``(int8 arena /
    arena) x (int8 instructions / instructions)`` (ties: the smaller arena), so neither is given
    away for a smaller gain in the other, and nothing slower than int8 is kept (in-place
    convolutions and patches can halve an arena at a third more instructions). When every
    candidate is slower: the best combined gain (the caller then deploys the int8 model). That is
    ``objective="balanced"`` (``mixq.objective``); ``"speed"``: the fewest instructions (ties: the
    smaller arena), ``"memory"``: the smallest arena (ties: the fewer instructions). Not run: the
    smallest arena."""
    fitting = [s for s in schedules if limit is not None and s.model.arena_size <= limit]
    if fitting:
        return fitting[-1]
    if limit is None and int8 is not None and all(s.instructions is not None for s in schedules):
        rank = _OBJECTIVE_RANK[objective]
        gaining = [s for s in schedules if beats_int8(s, int8, objective)]
        return min(gaining or schedules, key=lambda s: rank(s, int8))
    return min(reversed(schedules), key=lambda s: s.model.arena_size)


def combined_gain(s: Schedule, int8: tuple[int, int]) -> float:
    """``(int8 arena / arena) x (int8 instructions / instructions)`` of a run schedule."""
    return int8[0] / s.model.arena_size * int8[1] / s.instructions


def beats_int8(s: Schedule, int8: tuple[int, int], objective: str = "balanced") -> bool:
    """Whether a run schedule gains over the int8 baseline (``int8``: its arena and instructions) for
    ``mixq.objective``: memory, a smaller arena; speed, no more instructions; balanced, no more
    instructions and a combined gain of at least 1. Deploy keeps the int8 model when none does."""
    if objective == "memory":
        return s.model.arena_size < int8[0]
    return s.instructions <= int8[1] and (objective == "speed" or combined_gain(s, int8) >= 1.0)


#: the order :func:`pick_schedule` ranks run schedules in, per ``mixq.objective`` (smallest first)
_OBJECTIVE_RANK: dict[str, Callable[[Schedule, tuple[int, int]], tuple]] = {
    "balanced": lambda s, int8: (-combined_gain(s, int8), s.model.arena_size),
    "speed": lambda s, int8: (s.instructions, s.model.arena_size),
    "memory": lambda s, int8: (s.model.arena_size, s.instructions),
}


def generate_best(graph: Graph, plan, options: MixqOptions, out: Path, name: str, source: str, description: str,
                  say: Progress, mixed: Any = None, vdpc_plan: Any = None):
    """The schedule :func:`pick_schedule` keeps without running any: ``(model, plan)``."""
    best = pick_schedule(generate_schedules(graph, plan, options, out, name, source, description, say, mixed,
                                            vdpc_plan), options.sram_limit_bytes)
    say(f"generating the mixq deployment {best.kind}")
    return best.model, best.plan


def tflm_arena(path: Path, graph: Graph) -> tuple[Optional[int], str]:
    """TFLM's activation arena for the model: measured with the tflite-micro interpreter when it
    runs, else the project's estimate of TFLM's planner."""
    try:
        from .tflm.runner import run_tflm

        x = random_inputs(graph, 1)
        run = run_tflm(path, x, num_outputs=len(graph.outputs))
        if run.arena.head:
            return int(run.arena.head), "measured (tflite-micro interpreter)"
    except Exception as exc:  # tflite-micro missing or failing: fall back to the estimate
        log.info("TFLM run unavailable (%s); using the estimate", exc)
    try:
        from .tflm.arena import tflm_arena_estimate

        return int(tflm_arena_estimate(graph, {})), "estimate"
    except Exception:
        return None, ""


def _run_or_locate_fault(v: Variant, target: str, samples: list[np.ndarray], say: Progress) -> FirmwareRun:
    """Run the firmware; when it faults, rebuild it with layer tracing to name the faulting layer."""
    from .emu import EmulationError, run_elf

    try:
        return run_firmware(v.firmware, len(v.model.layers))
    except EmulationError as exc:
        say(f"the {v.name} firmware faulted: rebuilding with layer tracing to locate the fault")
        fw = build_firmware(v.model, target, _per_sample(samples), _per_sample(v.expected), trace=True)
        console = run_elf(fw.elf, target, allow_fault=True).console
        started = [ln.strip() for ln in console.splitlines() if ln.strip() in
                   {layer.label for layer in v.model.layers}]
        if not started:
            raise
        layer = next(la for la in v.model.layers if la.label == started[-1])
        bits = layer.p.get("bits", (layer.in_bits, layer.w_bits, layer.out_bits))
        raise EmulationError(f"{exc}; the fault is in layer {layer.label} (kernel {layer.template} "
                             f"{layer.p.get('kernel', '')} bits in/w/out {tuple(bits)})") from None


def _run_plan(plan, samples: list[np.ndarray]) -> list[np.ndarray]:
    """The Python reference of the plan itself (patch by patch), sample by sample."""
    from .schedule.execute import PlanExecutor

    ex = PlanExecutor(plan, KERNEL_REFERENCE)
    outs = [ex.run([x[s:s + 1] for x in samples]) for s in range(samples[0].shape[0])]
    return [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]


def _expected(graph: Graph, plan, samples: list[np.ndarray], say: Progress) -> list[np.ndarray]:
    """The Python reference of a schedule: the plan itself (patch by patch, slice by slice) when it
    has a patch stage or channel splits, else the graph's interpreter."""
    if plan is not None and (plan.patch_stage is not None or plan.channel_splits):
        say(f"reference run of the mixq plan ({samples[0].shape[0]} samples)")
        return _run_plan(plan, samples)
    say(f"reference run of the mixq graph ({samples[0].shape[0]} samples)")
    return Interpreter(graph, KERNEL_REFERENCE).run(samples)


def _per_sample(arrays: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    return [[a[s:s + 1] for s in range(a.shape[0])] for a in arrays]


def _top1(outputs: Sequence[np.ndarray]) -> np.ndarray:
    y = np.asarray(outputs[0])
    return y.reshape(y.shape[0], -1).argmax(axis=1)


def deploy(
    model_path: str | os.PathLike,
    target: str = "cortex-m7",
    options: Optional[MixqOptions] = None,
    calib: Optional[str | os.PathLike] = None,
    inputs_path: Optional[str | os.PathLike] = None,
    outputs_path: Optional[str | os.PathLike] = None,
    run: bool = False,
    out_dir: Optional[str | os.PathLike] = None,
    report: bool = True,
    with_tflm: bool = True,
    progress: Optional[Progress] = None,
) -> DeployResult:
    """Plan, generate, build and (``run``) execute ``model_path`` on ``target``; see the module
    docstring. ``options`` are the ``mixq.*`` pass-config options.

    Raises
    ------
    MixqError
        Bad input, a model that does not fit the target (before any build), a failed build or run.
    """
    t_start = time.perf_counter()
    say = progress or (lambda msg: log.info("%s", msg))
    if target not in DEPLOY_TARGETS:
        raise MixqError(f"unknown target {target!r}: expected one of {', '.join(DEPLOY_TARGETS)}")
    options = options or MixqOptions()
    path = Path(model_path)
    if not path.is_file():
        raise MixqError(f"model {path} does not exist")
    graph = read_tflite(path)
    name = path.stem
    out = Path(out_dir) if out_dir else Path("build") / "deploy" / f"{name}-{target}"
    out.mkdir(parents=True, exist_ok=True)
    memory = device_memory(target, options.sram_limit_bytes)

    samples = load_npz_inputs(graph, inputs_path) if inputs_path else random_inputs(graph, 2)
    say("generating C for the int8 baseline")
    # the baseline runs every layer whole: in-place layers would save it memory but cost
    # instructions (one kernel call per block of output rows), which would flatter the mixq figure
    int8_model = generate_c(graph, out / "int8", name=name, source=str(path),
                            description=f"{name}: int8 baseline (mixq.enable=0), layer by layer", in_place=False)
    mixed, vdpc_plan = mixed_precision(graph, options, calib, say, target, int8_arena=int8_model.arena_size)
    mixq_graph = graph if mixed is None else mixed.graph
    plan = None
    if options.enable:
        say("planning memory (patch stage)")
        plan = make_plan(mixq_graph, options, say)

    say("generating C")
    description = f"{name}: mixq deployment ({options.describe()})"
    schedules = generate_schedules(mixq_graph, plan, options, out, name, str(path), description, say, mixed,
                                   vdpc_plan)
    limit = options.sram_limit_bytes
    # without a limit, the schedules that fit the device are run and mixq.objective picks among them
    # (pick_schedule); otherwise the choice is made here, and refused before any build
    fit = [sch for sch in schedules if sch.model.arena_size <= memory.sram_bytes]
    measure = run and limit is None and bool(fit)
    best = None if measure else pick_schedule(schedules, limit)
    check_fit(best.model if best is not None else fit[0].model, memory)

    int8 = Variant("int8", graph, int8_model)
    say(f"reference run of the int8 graph ({samples[0].shape[0]} samples)")
    int8.expected = Interpreter(graph, KERNEL_REFERENCE).run(samples)
    say(f"building the int8 firmware for {target}")
    int8.firmware = build_firmware(int8_model, target, _per_sample(samples), _per_sample(int8.expected))
    if run:
        say(f"running the int8 firmware in QEMU ({memory.board})")
        int8.run = _run_or_locate_fault(int8, target, samples, say)

    if measure:
        for sch in fit:
            v = sch.variant
            v.expected = _expected(mixq_graph, sch.plan, samples, say)
            say(f"building and running the {sch.kind} schedule for {target}")
            v.firmware = build_firmware(v.model, target, _per_sample(samples), _per_sample(v.expected))
            v.run = _run_or_locate_fault(v, target, samples, say)
            say(f"{sch.kind}: {sch.instructions:,} instructions (int8 {int8.instructions:,})")
        base = (int8_model.arena_size, int8.instructions)
        best = pick_schedule(fit, None, base, options.objective)
        if not beats_int8(best, base, options.objective):
            # no mixed-precision schedule gains over int8 for the objective: the deployment is the
            # int8 model itself (the accuracy guard and the kernels left no gain)
            say(f"no mixed-precision schedule beats the int8 baseline (best {best.kind}: arena "
                f"{best.model.arena_size:,} B, {best.instructions:,} instructions); deploying the int8 model")
            best = Schedule("int8 baseline", None, Variant("mixq", graph, int8_model, int8.firmware, int8.run,
                                                           int8.expected))
            schedules.append(best)
    say(f"generating the mixq deployment {best.kind}")
    mixq_model, plan = best.model, best.plan
    # the planner's figure only when the plan was generated (layer by layer has none)
    planned, summary = (plan.peak, plan.summary()) if plan is not None else (None, "")
    from .codegen.export import export_model

    export_model(mixq_model, out / "export")

    mixq = best.variant
    if mixq.firmware is None:
        mixq.expected = _expected(mixq_graph, plan, samples, say)
        say(f"building the mixq firmware for {target}")
        mixq.firmware = build_firmware(mixq_model, target, _per_sample(samples), _per_sample(mixq.expected))
        if run:
            say(f"running the mixq firmware in QEMU ({memory.board})")
            mixq.run = _run_or_locate_fault(mixq, target, samples, say)
    variants = {"int8": int8, "mixq": mixq}

    result = DeployResult(path, target, options, memory, variants["mixq"], variants["int8"], samples[0].shape[0],
                          planned, summary, out_dir=out,
                          schedules=[sch.to_json() for sch in schedules], schedule=best.kind)
    result.agreement = float(np.mean(_top1(variants["mixq"].expected) == _top1(variants["int8"].expected)))
    if with_tflm:
        say("measuring TFLM's arena")
        result.tflm_arena_bytes, result.tflm_arena_source = tflm_arena(path, graph)
    if outputs_path:
        np.savez(outputs_path, **{f"output_{i}": y for i, y in enumerate(variants["mixq"].expected)})
    if report:
        from .report import write_report

        say("writing the report")
        result.report_path = write_report(result, out / "report")
    result.seconds = time.perf_counter() - t_start
    return result
