"""Which schedule `mixq deploy` generates: with an SRAM limit, the simplest schedule that fits
(layer by layer before patches: no halo recomputation, one kernel call per layer); without one and
not run, the smallest arena; run, among the schedules no slower than int8 the best combined gain
(SRAM ratio times instruction ratio)."""
from __future__ import annotations

from pathlib import Path

from paths import MLPERF_INT8, ROOT
from tvm_mixq.codegen import generate_c
from tvm_mixq.deploy import generate_best, make_plan
from tvm_mixq.options import MixqOptions
from tvm_mixq.reader import read_tflite

FMNIST = ROOT / "models" / "fmnist_dsconv_int8.tflite"


def _best(tmp_path: Path, *config: str):
    """generate_best on a plan with a forced 2x2 patch stage."""
    graph = read_tflite(FMNIST)
    options = MixqOptions.from_strings(["mixq.channel_split=off", "mixq.patch_grid=2x2", *config])
    plan = make_plan(graph, options, lambda msg: None)
    assert plan is not None and plan.patch_stage is not None
    return generate_best(graph, plan, options, tmp_path, "fm", str(FMNIST), "", lambda msg: None)


def test_without_limit_the_smallest_arena(tmp_path: Path) -> None:
    model, plan = _best(tmp_path)
    layer_by_layer = generate_c(read_tflite(FMNIST), tmp_path / "lbl")
    assert plan is not None and model.stages and model.arena_size < layer_by_layer.arena_size


def test_with_a_limit_the_simplest_schedule_that_fits(tmp_path: Path) -> None:
    model, plan = _best(tmp_path / "loose", "mixq.sram_limit_kb=64")
    assert plan is None and not model.stages and model.arena_size <= 64 * 1024
    tight, tight_plan = _best(tmp_path / "tight", "mixq.sram_limit_kb=16")
    assert tight_plan is not None and tight.stages and tight.arena_size <= 16 * 1024 < model.arena_size


class _Run:
    def __init__(self, instructions: int) -> None:
        self.total_instructions = instructions


def _schedules(tmp_path: Path, instructions: list[int]):
    from tvm_mixq.deploy import Schedule, Variant

    graph = read_tflite(FMNIST)
    options = MixqOptions.from_strings(["mixq.channel_split=off", "mixq.patch_grid=2x2"])
    plan = make_plan(graph, options, lambda msg: None)
    made = [Schedule("plan", plan, Variant("mixq", graph, generate_c(graph, tmp_path / "p", plan=plan))),
            Schedule("layer by layer", None, Variant("mixq", graph, generate_c(graph, tmp_path / "l")))]
    assert made[0].model.arena_size < made[1].model.arena_size
    for sch, n in zip(made, instructions):
        sch.variant.run = _Run(n)
    return made


def test_measured_without_limit_the_best_combined_gain(tmp_path: Path) -> None:
    from tvm_mixq.deploy import pick_schedule

    plan, lbl = _schedules(tmp_path, [1000, 1000])
    a8 = lbl.model.arena_size
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is plan  # same speed: the smaller arena
    ratio = a8 / plan.model.arena_size
    plan, lbl = _schedules(tmp_path, [int(1000 * ratio * 1.1), 1000])  # the plan gives back more speed
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is lbl
    plan, lbl = _schedules(tmp_path, [int(1000 * ratio * 0.9), 1000])  # or less than the SRAM it saves:
    assert ratio * 0.9 > 1.0  # still slower than int8, and without a limit speed is not traded for SRAM
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is lbl
    plan, lbl = _schedules(tmp_path, [990, 1200])  # faster than int8 and smaller: kept
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is plan
    plan, lbl = _schedules(tmp_path, [1100, 1200])  # every one slower: the best gain (deploy keeps int8)
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is plan
    assert pick_schedule([plan, lbl], None) is plan  # not run: the smallest arena


def test_layer_by_layer_without_in_place_rows_is_a_candidate(tmp_path: Path) -> None:
    """Row-by-row in-place convolutions lower an arena at one kernel call per output row: every
    layer whole is one more candidate, kept under a limit it fits (the simplest), dropped when the
    rows changed nothing."""
    from tvm_mixq.deploy import generate_schedules, pick_schedule

    kws = read_tflite(MLPERF_INT8["kws"])
    made = generate_schedules(kws, None, MixqOptions(), tmp_path / "kws", "kws", "", "", lambda msg: None)
    kinds = [s.kind for s in made]
    assert kinds == ["layer by layer", "layer by layer without in-place rows"]
    rows, whole = made
    assert any(la.template == "rows_conv" for la in rows.model.layers)
    assert not any(la.template == "rows_conv" for la in whole.model.layers)
    assert whole.model.arena_size == generate_c(kws, tmp_path / "ref", in_place=False).arena_size
    assert rows.model.arena_size < whole.model.arena_size
    assert pick_schedule(made, whole.model.arena_size) is whole
    assert pick_schedule(made, whole.model.arena_size - 1) is rows
    # FMNIST layer by layer: no row lowers the arena, so no second candidate
    fm = read_tflite(FMNIST)
    kinds = [s.kind for s in generate_schedules(fm, None, MixqOptions(), tmp_path / "fm", "fm", "", "",
                                                lambda msg: None)]
    assert kinds == ["layer by layer"]


def test_objective_speed_or_memory(tmp_path: Path) -> None:
    """``mixq.objective``: speed keeps the fewest instructions even when a smaller arena gains more
    on the product, memory the smallest arena even when slower than int8."""
    from tvm_mixq.deploy import pick_schedule

    plan, lbl = _schedules(tmp_path, [990, 900])  # the plan: a smaller arena, a little faster than int8
    a8 = lbl.model.arena_size
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is plan
    assert pick_schedule([plan, lbl], None, (a8, 1000), "speed") is lbl
    plan, lbl = _schedules(tmp_path, [1500, 900])  # the plan slower than int8
    assert pick_schedule([plan, lbl], None, (a8, 1000)) is lbl
    assert pick_schedule([plan, lbl], None, (a8, 1000), "memory") is plan
    # under a limit the objective does not apply: the simplest that fits
    assert pick_schedule([plan, lbl], a8, (a8, 1000), "memory") is lbl


def test_objective_is_validated() -> None:
    import pytest

    from tvm_mixq.options import OptionError

    assert MixqOptions.from_strings(["mixq.objective=speed"]).objective == "speed"
    with pytest.raises(OptionError, match="objective"):
        MixqOptions.from_strings(["mixq.objective=fast"])
