"""The mixq passes driven by the project's real algorithms.

:class:`GraphPlanner` answers the passes' questions (:class:`tvm_mixq.relax.planner.MixqPlanner`)
with the planners of the other subpackages, working on the project graph the module was imported
from (``tvm_mixq.pipeline(graph=...)``) and mapping their per-op and per-tensor answers back to
the composite functions through ``mixq.op_index`` / ``mixq.tensor_index``:

==================  =========================================================================
pass                algorithm
==================  =========================================================================
mixq.Calibrate      int8 plan (:func:`tvm_mixq.schedule.plan_memory`) for its patch stage, then
                    :func:`tvm_mixq.quant.calibration.calibrate` (reference runs, statistics)
mixq.PatchPlan      the plan's patch stage (ops, grid)
mixq.VDPC           :func:`tvm_mixq.quant.assign.assign_precision` (VDPC outlier patches)
mixq.VDQS           the same search's bitwidths per tensor and per weight
mixq.ChannelSplit   :func:`plan_memory` again at the chosen bitwidths: its channel splits
mixq.MemoryPlan     that plan's arena: peak, and each layer's output buffer offset
==================  =========================================================================

One instance keeps the plan, the calibration and the precision search between the passes; the
complete :class:`tvm_mixq.plan.Plan` stays available as :attr:`GraphPlanner.plan` for the code
generators.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

from ..errors import MixqError
from .planner import Annotations, Layer, MixqPlanner, PlanContext

log = logging.getLogger(__name__)


class GraphPlanner(MixqPlanner):
    """Plans with :mod:`tvm_mixq.schedule` and :mod:`tvm_mixq.quant` (see the module docstring)."""

    def __init__(self) -> None:
        self.plan: Any = None  # tvm_mixq.plan.Plan
        self.calibration: Any = None  # tvm_mixq.quant.calibration.Calibration
        self.mixed: Any = None  # tvm_mixq.quant.assign.MixedPrecision

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _graph(ctx: PlanContext) -> Any:
        if ctx.graph is None:
            raise MixqError("the mixq passes need the model's graph for planning: "
                            "tvm_mixq.pipeline(graph=read_tflite(path), planner=GraphPlanner())")
        return ctx.graph

    def _calibration_inputs(self, ctx: PlanContext) -> Any:
        if ctx.calibration is None:
            return None
        keys = [f"input_{i}" for i in range(len(self._graph(ctx).inputs))]
        missing = [k for k in keys if k not in ctx.calibration]
        if missing:
            raise MixqError(f"calibration data has no array '{missing[0]}'")
        arrays = [np.asarray(ctx.calibration[k]) for k in keys]
        return arrays[0] if len(arrays) == 1 else arrays

    def _ensure_plan(self, ctx: PlanContext, precision: Optional[dict] = None) -> Any:
        from ..schedule import plan_memory

        if self.plan is None or precision is not None:
            self.plan = plan_memory(self._graph(ctx), ctx.options, precision=precision)
        return self.plan

    def _ensure_calibration(self, ctx: PlanContext) -> Any:
        from ..quant.calibration import calibrate

        if self.calibration is None:
            self.calibration = calibrate(self._graph(ctx), self._calibration_inputs(ctx), self._ensure_plan(ctx))
        return self.calibration

    def _ensure_mixed(self, ctx: PlanContext) -> Any:
        from ..quant.assign import assign_precision

        if self.mixed is None:
            opts = ctx.options
            bits = (8,) if opts.plain_int8 else opts.bits
            self.mixed = assign_precision(
                self._graph(ctx), self._ensure_plan(ctx), calibration=self._ensure_calibration(ctx), bits=bits,
                outlier_k=opts.outlier_k, lambda_=opts.lambda_, cost_model=opts.cost_model,
                cost_budget=opts.cost_budget or None,
                sram_budget_bytes=opts.sram_limit_bytes, target=opts.target, outlier_rule=opts.outlier_rule,
                outlier_percentile=opts.outlier_percentile, sensitivity=opts.sensitivity,
                weight_rounding=opts.weight_rounding, min_agreement=opts.min_agreement,
                equalize_strength=opts.equalize)
        return self.mixed

    @staticmethod
    def _linked(layer: Layer) -> bool:
        return layer.op_index >= 0 and layer.tensor_index >= 0

    # -- stages ---------------------------------------------------------------------------------

    def calibrate(self, ctx: PlanContext) -> Annotations:
        stats = self._ensure_calibration(ctx).tensors
        ann = Annotations()
        for layer in ctx.layers:
            s = stats.get(layer.tensor_index) if self._linked(layer) else None
            if s is None or s.count == 0:
                continue
            ann.set(layer.name, "calib_min", float(s.min))
            ann.set(layer.name, "calib_max", float(s.max))
        return ann

    def plan_patches(self, ctx: PlanContext) -> Annotations:
        stage = self._ensure_plan(ctx).patch_stage
        ann = Annotations()
        if stage is None:
            return ann
        ops = set(stage.ops)
        for layer in ctx.layers:
            if layer.op_index in ops:
                ann.set(layer.name, "patch_grid", [int(stage.grid[0]), int(stage.grid[1])])
        return ann

    def classify_patches(self, ctx: PlanContext) -> Annotations:
        mixed = self._ensure_mixed(ctx)
        outliers = [int(p) for p in mixed.patch_class.outlier_patches]
        ann = Annotations()
        for layer in ctx.layers:
            if layer.attr("patch_grid") is not None:
                ann.set(layer.name, "outlier_patches", outliers)
        return ann

    def assign_bitwidths(self, ctx: PlanContext) -> Annotations:
        graph = self._graph(ctx)
        assignment = self._ensure_mixed(ctx).assignment
        ann = Annotations()
        for layer in ctx.layers:
            if not self._linked(layer):
                continue
            op = graph.ops[layer.op_index]
            ann.set(layer.name, "in_bits", int(assignment.bits_of_tensor(op.inputs[0])))
            if layer.attr("weight_scale") is not None:
                ann.set(layer.name, "w_bits", int(assignment.bits_of_weights(op.index)))
            ann.set(layer.name, "out_bits", int(assignment.bits_of_tensor(layer.tensor_index)))
        return ann

    def _replan_at_planned_bits(self, ctx: PlanContext) -> Any:
        from ..plan import TensorPrecision
        from ..schedule import default_precision

        graph = self._graph(ctx)
        precision = default_precision(graph)
        if self.mixed is not None:
            for tensor, bits in self.mixed.assignment.act_bits.items():
                if tensor in precision:
                    precision[tensor] = TensorPrecision(tensor, int(bits), precision[tensor].signed)
        return self._ensure_plan(ctx, precision=precision)

    def split_channels(self, ctx: PlanContext) -> Annotations:
        plan = self._replan_at_planned_bits(ctx)
        factor = {op: chain.factor for chain in plan.channel_splits for op in chain.ops}
        ann = Annotations()
        for layer in ctx.layers:
            ann.set(layer.name, "channel_split", int(factor.get(layer.op_index, 1)))
        return ann

    def plan_memory(self, ctx: PlanContext) -> Annotations:
        classified = self.plan.patch_stage if self.plan is not None else None  # the stage VDPC saw
        if self.mixed is not None:
            plan = self._replan_at_planned_bits(ctx)  # the arena at the chosen bitwidths
        else:
            plan = self._ensure_plan(ctx)
        ann = super().plan_memory(ctx)
        # the plan at the chosen bitwidths may patch other layers, or on another grid, than the int8
        # plan plan_patches annotated: the layers say what runs
        stage = plan.patch_stage
        ops = set(stage.ops) if stage is not None else set()
        same = (classified is not None and stage is not None and tuple(classified.grid) == tuple(stage.grid)
                and list(classified.ops) == list(stage.ops))
        for layer in ctx.layers:
            if layer.op_index in ops:
                ann.set(layer.name, "patch_grid", [int(stage.grid[0]), int(stage.grid[1])])
                if not same:
                    ann.set(layer.name, "outlier_patches", [])  # VDPC's patches were another stage's
            elif layer.attr("patch_grid") is not None:
                ann.set(layer.name, "patch_grid", None)
                ann.set(layer.name, "outlier_patches", None)
        offsets = {t: b.offset for b in plan.memory.buffers if b.kind in ("tensor", "input") for t in b.tensors}
        for layer in ctx.layers:
            if self._linked(layer) and layer.tensor_index in offsets:
                ann.set(layer.name, "arena_offset", int(offsets[layer.tensor_index]))
        ann.module["mixq.peak_sram_bytes"] = int(plan.peak)
        ann.module["mixq.int8_peak_sram_bytes"] = int(plan.baseline_peak)
        ann.module["mixq.macs"] = int(plan.macs)
        return ann
