"""``tvmc compile``: TFLite model -> Relax -> the mixq passes -> C -> a Model Library Format tar.

Steps of :func:`compile_model`:

1. read the model (:func:`tvm_mixq.reader.read_tflite`) and import it into Relax
   (:func:`tvm_mixq.relax.from_tflite`);
2. run :func:`tvm_mixq.pipeline` with the :class:`tvm_mixq.relax.GraphPlanner` inside a
   PassContext holding the ``--pass-config`` keys (``mixq.*`` validated by
   :mod:`tvm_mixq.relax.config`, TVM's own keys passed through) and ``mixq.target`` taken from
   ``--target``;
3. generate the whole-model C (:func:`tvm_mixq.codegen.generate_c`) of the planned graph: the int8
   graph with ``mixq.enable=0``, the graph at the searched bitwidths otherwise;
4. write the archive (:mod:`.mlf`) with the model sources, the runtime and kernel sources, the plan
   and ``metadata.json``.

With the mixq passes on, the emitted graph is planned again with the same options and the C runs
that plan (patch stage, channel splits; without the splits, or layer by layer, when the generator
refuses them) in one static arena, as ``mixq deploy`` does. ``metadata.json`` records the passes' plan (``plan``),
what the code implements (``generated``, ``src/generated_plan.json``) and the arena of the
generated code (``memory``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import MixqError
from ..graph import Graph
from .mlf import is_mlf, write_mlf
from .target import CompileTarget

log = logging.getLogger(__name__)

#: Archive directories (TVM's MLF names where they exist).
SRC_DIR = "codegen/host/src"
INCLUDE_DIR = "codegen/host/include"
RUNTIME_RT_DIR = "runtime/mixq_rt"
RUNTIME_KERNELS_DIR = "runtime/kernels"


@dataclass
class CompileResult:
    """What :func:`compile_model` wrote."""

    output: Path
    metadata: dict[str, Any]


def _check_output(output: Path, model: Path) -> None:
    if output.suffix != ".tar":
        raise MixqError(f"--output {output}: the Model Library Format archive must end in .tar")
    if output.exists():
        if output.resolve() == model.resolve():
            raise MixqError(f"--output {output} is the input model; choose another file")
        if output.is_dir():
            raise MixqError(f"--output {output} is a directory")
        if not is_mlf(output):
            raise MixqError(f"--output {output} exists and is not an archive written by tvmc compile; "
                            "refusing to overwrite it")


def _json_value(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "value"):
        return v.value
    return str(v)


def _io(graph: Graph, model: Any) -> dict[str, list[dict[str, Any]]]:
    def one(t_io: Any) -> dict[str, Any]:
        t = graph.tensors[t_io.index]
        q = t.quant
        scale, zp = q.scalar() if q is not None and not q.per_channel else (None, None)
        return {"name": t_io.name, "dtype": t_io.dtype, "shape": list(t_io.shape), "nbytes": t_io.nbytes,
                "bits": t_io.bits, "scale": scale, "zero_point": zp, "arena_offset": t_io.offset}

    return {"inputs": [one(t) for t in model.inputs], "outputs": [one(t) for t in model.outputs]}


def _execution(code_plan: Any) -> str:
    if code_plan is None:
        return "layer by layer"
    parts = (["patch stage"] if code_plan.patch_stage is not None else []) + \
        (["channel splits"] if code_plan.channel_splits else [])
    return " and ".join(parts) + ", other layers one by one"


def _layers(graph: Graph, model: Any, code_plan: Any) -> list[dict[str, Any]]:
    """Per layer: bitwidths, work, scratch, where its output lives; ``patch_grid`` when it runs in the
    generated patch stage, ``channel_split`` its slice count in the generated code."""
    stage = code_plan.patch_stage if code_plan is not None else None
    stage_ops = set(stage.ops) if stage is not None else set()
    split = {op: c.factor for c in (code_plan.channel_splits if code_plan is not None else []) for op in c.ops}
    offsets = {t: b.offset for b in model.arena.buffers for t in b.tensors}
    rows = []
    for layer in model.layers:
        op = layer.op
        out_t = graph.tensors[op.outputs[0]]
        rows.append({
            "index": layer.position, "op_index": op.index, "op": op.kind, "name": out_t.name,
            "function": layer.cname, "in_bits": layer.in_bits, "w_bits": layer.w_bits, "out_bits": layer.out_bits,
            "macs": layer.macs, "scratch_bytes": layer.scratch, "output_offset": offsets.get(op.outputs[0]),
            "patch_grid": list(stage.grid) if op.index in stage_ops else None,
            "channel_split": int(split.get(op.index, 1)),
        })
    return rows


def _archive_files(model: Any) -> tuple[dict[str, Path], dict[str, Any]]:
    """Archive name -> file, and the ``build`` metadata (sources, include dirs, libraries)."""
    from ..codegen import emitter
    from ..kernellib import build as kbuild

    files: dict[str, Path] = {f"{SRC_DIR}/{model.source.name}": model.source,
                              f"{INCLUDE_DIR}/{model.header.name}": model.header}
    sources = [f"{SRC_DIR}/{model.source.name}"]
    for p in sorted(emitter.RUNTIME_DIR.iterdir()):
        if p.suffix in (".c", ".h"):
            files[f"{RUNTIME_RT_DIR}/{p.name}"] = p
            if p.suffix == ".c":
                sources.append(f"{RUNTIME_RT_DIR}/{p.name}")
    kdir = kbuild.KERNELS_DIR
    for p in kbuild.kernel_sources():
        name = f"{RUNTIME_KERNELS_DIR}/{p.relative_to(kdir).as_posix()}"
        files[name] = p
        sources.append(name)
    include_dirs = [INCLUDE_DIR]
    for d in kbuild.include_dirs():
        rel = f"{RUNTIME_KERNELS_DIR}/{d.relative_to(kdir).as_posix()}"
        include_dirs.append(rel)
        for h in sorted(d.glob("*.h")):
            files[f"{rel}/{h.name}"] = h
    include_dirs.append(RUNTIME_RT_DIR)
    build = {"sources": sources, "include_dirs": include_dirs, "defines": {}, "libs": ["m"],
             "cflags": ["-std=c99"], "header": f"{INCLUDE_DIR}/{model.header.name}"}
    return files, build


def _report(planned: "PlannedModel", model: Any, target: CompileTarget, model_path: Path,
            out_dir: Path) -> dict[str, Path]:
    """The deployment report of :mod:`tvm_mixq.report` (HTML and PNGs) for the generated code next to
    the int8 baseline of the same generator; empty for the host target (no board memory to show)."""
    if target.is_host:
        return {}
    try:
        from ..codegen import generate_c
        from ..codegen.firmware import device_memory
        from ..deploy import DeployResult, Variant
        from ..report import write_report
    except ImportError as exc:
        log.info("no report: %s", exc)
        return {}
    int8_model = model
    if planned.mixed is not None:
        int8_model = generate_c(planned.graph, out_dir / "int8", name=model.name, source=model_path.name,
                                description="int8 baseline for the report")
    memory = device_memory(target.core, planned.options.sram_limit_bytes)
    plan = planned.plan
    result = DeployResult(model_path=model_path, target=target.core, options=planned.options, memory=memory,
                          mixq=Variant("mixq" if planned.mixed is not None else "int8", planned.emit_graph, model),
                          int8=Variant("int8", planned.graph, int8_model), samples=0,
                          planned_peak=plan.peak if plan is not None else None,
                          plan_summary=plan.summary() if plan is not None else "")
    try:
        from ..tflm.arena import tflm_arena_estimate

        result.tflm_arena_bytes, result.tflm_arena_source = int(tflm_arena_estimate(planned.graph, {})), "estimate"
    except Exception as exc:  # noqa: BLE001 - the TFLM line of the figure is optional
        log.info("no TFLM arena estimate in the report: %s", exc)
    report_dir = out_dir / "report"
    write_report(result, report_dir)
    return {f"report/{p.name}": p for p in sorted(report_dir.iterdir()) if p.is_file()}


def resolve_config(target: CompileTarget, pass_configs: Sequence[str]) -> dict[str, Any]:
    """The PassContext config of ``--pass-config`` items, with ``mixq.target`` from ``--target``."""
    from ..options import MixqOptions
    from ..relax.config import parse_pass_configs

    config = parse_pass_configs(pass_configs)
    if "mixq.target" in config:
        given = MixqOptions.from_config({"mixq.target": config["mixq.target"]}).target
        if given != target.core:
            raise MixqError(f"--pass-config mixq.target={config['mixq.target']} contradicts --target "
                            f"{target.text!r} ({target.core}); give the core once, with --target")
    config["mixq.target"] = target.core
    return config


@dataclass
class PlannedModel:
    """The model after the mixq passes: what :func:`compile_model` generates C from."""

    config: dict[str, Any]
    options: Any  # tvm_mixq.options.MixqOptions
    graph: Graph  # the imported int8 graph
    module: Any  # the Relax IRModule after the pipeline
    plan: Any  # tvm_mixq.plan.Plan (None if the planner made none)
    mixed: Any  # tvm_mixq.quant.assign.MixedPrecision (None with mixq.enable=0)
    code_plan: Any = None  # the plan of emit_graph the C generator implements (patch stage), or None

    @property
    def emit_graph(self) -> Graph:
        """The graph the C is generated from: int8, or at the searched bitwidths."""
        return self.mixed.graph if self.mixed is not None else self.graph


def plan_model(model_path: Path | str, target: CompileTarget, pass_configs: Sequence[str] = (),
               opt_level: int = 3) -> PlannedModel:
    """Read, import into Relax and run the mixq pipeline with the ``--pass-config`` options."""
    config = resolve_config(target, pass_configs)

    from ..options import MixqOptions
    from ..reader import read_tflite
    from ..relax import GraphPlanner, from_tflite, pass_context, pipeline

    graph = read_tflite(model_path)
    options = MixqOptions.from_config(config)
    mod = from_tflite(str(model_path))
    planner = GraphPlanner()
    with pass_context(config, opt_level=opt_level):
        mod = pipeline(graph=graph, planner=planner)(mod)
    planned = PlannedModel(config, options, graph, mod, planner.plan, planner.mixed)
    if options.enable:
        planned.code_plan = _code_plan(planned)
    return planned


def _code_plan(planned: PlannedModel, channel_splits: bool = True) -> Any:
    """The plan of the emitted graph that the C generator implements (patch stage, channel splits
    unless ``channel_splits`` is False). None: layer by layer."""
    from ..schedule import plan_memory

    options = planned.options if channel_splits else planned.options.replace(channel_split="off")
    try:
        plan = plan_memory(planned.emit_graph, options)
    except MixqError as exc:
        log.warning("planning the emitted graph failed (%s): generating layer by layer", exc)
        return None
    return plan if (plan.patch_stage is not None or plan.channel_splits) else None


def _generate(planned: PlannedModel, out_dir: Path, **kwargs: Any) -> Any:
    """:func:`tvm_mixq.codegen.generate_c` of the planned model: with its plan, else the plan without
    channel splits, else layer by layer, whichever the generator accepts first (as ``mixq deploy``)."""
    from ..codegen import CodegenError, generate_c

    while True:
        plan = planned.code_plan
        try:
            return generate_c(planned.emit_graph, out_dir, plan=plan, **kwargs)
        except CodegenError as exc:
            if plan is None:
                raise
            if plan.channel_splits:
                log.warning("the plan's channel splits cannot be generated (%s): planning without them", exc)
                planned.code_plan = _code_plan(planned, channel_splits=False)
            else:
                log.warning("the plan cannot be generated (%s): generating layer by layer", exc)
                planned.code_plan = None


def compile_model(model_path: Path | str, target: CompileTarget, output: Path | str,
                  pass_configs: Sequence[str] = (), module_name: Optional[str] = None,
                  opt_level: int = 3) -> CompileResult:
    """Compile ``model_path`` for ``target`` into the archive ``output`` (see the module docstring).

    Raises
    ------
    MixqError
        Missing or unreadable model, bad pass config, an output path that is not ours to replace,
        or a model the importer, planner or C emitter cannot handle.
    """
    model_path = Path(model_path)
    output = Path(output)
    if not model_path.is_file():
        raise MixqError(f"{model_path}: no such model file")
    if model_path.suffix.lower() != ".tflite":
        raise MixqError(f"{model_path}: only TFLite models (.tflite) are supported (--model-format tflite)")
    _check_output(output, model_path)
    planned = plan_model(model_path, target, pass_configs, opt_level)
    config, options, graph, mod, plan = planned.config, planned.options, planned.graph, planned.module, planned.plan
    emit_graph = planned.emit_graph

    import tvm

    from .. import __version__
    name = module_name or model_path.stem
    with tempfile.TemporaryDirectory(prefix="tvmc-compile-") as tmp:
        summary = f"{graph.name} for {target.core}, {options.describe()}"
        model = _generate(planned, Path(tmp) / "codegen", name=name, source=model_path.name,
                          description=summary[:300])
        code_plan = planned.code_plan
        files, build = _archive_files(model)
        archive_files: dict[str, Any] = dict(files)
        if plan is not None:
            archive_files["src/plan.json"] = plan.to_json(indent=1)
        if code_plan is not None:
            archive_files["src/generated_plan.json"] = code_plan.to_json(indent=1)
        if planned.mixed is not None:
            archive_files["src/precision.json"] = json.dumps(planned.mixed.to_dict(), indent=1, default=str)
        try:
            archive_files.update(_report(planned, model, target, model_path, Path(tmp)))
        except MixqError:
            raise
        except Exception as exc:  # noqa: BLE001 - the report is informative; the C is what matters
            log.warning("no HTML report in the archive: %s: %s", type(exc).__name__, exc)
        try:
            archive_files["src/relax.txt"] = mod.script(show_meta=False)
        except Exception as exc:  # noqa: BLE001 - the script is informative only
            log.warning("Relax module not printed into the archive: %s", exc)
        stage = getattr(plan, "patch_stage", None)
        splits = list(getattr(plan, "channel_splits", []) or [])
        metadata = {
            "model_name": model.name,
            "prefix": model.prefix,
            "source_model": {"file": model_path.name, "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()},
            "versions": {"tvm_mixq": __version__, "tvm": tvm.__version__},
            "target": target.to_dict(),
            "pass_config": {str(k): _json_value(v) for k, v in config.items()},
            "mixq_options": options.to_config(),
            "execution": _execution(code_plan),
            "io": _io(emit_graph, model),
            "memory": {
                "arena_size_bytes": model.arena_size,
                "peak_sram_bytes": model.arena_size,
                "alignment": model.arena.alignment,
                "note": "all activations, inputs, outputs and kernel scratch live in the static arena",
                "buffers": [{"name": b.name, "kind": b.kind, "offset": b.offset, "size": b.size, "first": b.first,
                             "last": b.last} for b in sorted(model.arena.buffers, key=lambda b: (b.offset, b.first))],
            },
            "plan": None if plan is None else {
                "peak_sram_bytes": plan.peak,
                "layer_by_layer_peak_sram_bytes": plan.baseline_peak,
                "macs": plan.macs,
                "baseline_macs": plan.baseline_macs,
                "patch_stage": stage.to_dict() if stage is not None else None,
                "channel_splits": [c.to_dict() for c in splits],
                "summary": plan.summary(),
            },
            "generated": {
                "patch_stage": code_plan.patch_stage.to_dict() if code_plan and code_plan.patch_stage else None,
                "channel_splits": [c.to_dict() for c in code_plan.channel_splits] if code_plan else [],
                "plan_peak_sram_bytes": code_plan.peak if code_plan is not None else None,
                "note": "the C implements src/generated_plan.json (the emitted graph's plan) when present, "
                        "else runs layer by layer",
            },
            "layers": _layers(emit_graph, model, code_plan),
            "flash": {"constant_bytes": model.const_bytes,
                      "note": "weights and tables of the model; code size is known after tvmc micro build"},
            "build": build,
            "files": sorted(archive_files),
        }
        write_mlf(output, archive_files, metadata)
    log.info("wrote %s: %s, arena %d B, constants %d B", output, model.prefix, model.arena_size, model.const_bytes)
    return CompileResult(output, metadata)
