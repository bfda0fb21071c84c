"""Deploy with VDPC outlier patches: the precision search classifies the int8 plan's patch stage,
the mixq plan keeps that stage with the outlier bitwidths, and the firmware is bit-exact in QEMU with
the reference of that plan (outlier patches included)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paths import ROOT
from tvm_mixq.emu import tools_available
from tvm_mixq.options import MixqOptions

NO_TOOLS = tools_available()
FMNIST = ROOT / "models" / "fmnist_dsconv_int8.tflite"
CALIB = ROOT / "models" / "fmnist_calib.npz"
# a 3x3 stage, the BitOPs cost model at 0.3 of int8: VDPC marks 2 of the 9 patches (99.9th percentile)
CONFIG = ["mixq.patch_grid=3x3", "mixq.cost_model=bitops", "mixq.cost_budget=0.3"]


def test_vdpc_sees_the_int8_plan_and_the_outlier_plan_keeps_its_stage() -> None:
    from tvm_mixq.deploy import make_outlier_plan, make_plan, mixed_precision
    from tvm_mixq.reader import read_tflite

    graph = read_tflite(FMNIST)
    options = MixqOptions.from_strings(CONFIG)
    mixed, vdpc_plan = mixed_precision(graph, options, CALIB, lambda msg: None, "cortex-m7")
    assert vdpc_plan is not None and vdpc_plan.patch_stage.grid == (3, 3)
    outliers = sorted(mixed.assignment.outlier_patches)
    assert 0 < len(outliers) < 9 and mixed.outlier_graph is not None
    plan = make_outlier_plan(mixed.graph, options, lambda msg: None, mixed, vdpc_plan)
    assert plan.outlier_graph is mixed.outlier_graph
    assert [p.index for p in plan.patch_stage.patches if p.bits] == outliers
    # the same patches as VDPC's (geometry of the int8 plan)
    assert [p.output for p in plan.patch_stage.patches] == [p.output for p in vdpc_plan.patch_stage.patches]
    # the plan searched at the chosen bitwidths is as before: no patch has bitwidths of its own
    free = make_plan(mixed.graph, options, lambda msg: None)
    assert free.outlier_graph is None and not any(p.bits for st in free.stages for p in st.patches)
    # no outliers, no such plan
    assert make_outlier_plan(mixed.graph, options, lambda msg: None, None, vdpc_plan) is None


@pytest.mark.skipif(NO_TOOLS is not None, reason=str(NO_TOOLS))
def test_deploy_with_outlier_patches_bit_exact_on_m7(tmp_path: Path) -> None:
    from tvm_mixq.deploy import KERNEL_REFERENCE, deploy
    from tvm_mixq.reference.interpreter import Interpreter

    x = np.load(CALIB)["input_0"][180:182]
    np.savez(tmp_path / "in.npz", input_0=x)
    # without a limit every schedule is built and run in QEMU, each checked bit for bit against the
    # reference of its own plan (the outlier plan's: outlier patches included)
    result = deploy(FMNIST, "cortex-m7", MixqOptions.from_strings(CONFIG), calib=CALIB,
                    inputs_path=tmp_path / "in.npz", run=True, out_dir=tmp_path / "dep", with_tflm=False,
                    report=False)
    kinds = {s["kind"]: s for s in result.schedules}
    assert kinds["plan with outlier patches"]["bit_exact"] is True
    assert all(s["bit_exact"] is True for s in result.schedules)
    # the kept one is no slower than int8 (the outlier plan is, here: it is not kept)
    assert kinds[result.schedule]["instructions"] <= result.int8.instructions
    # not run, the smallest arena is kept: the outlier plan (11,936 B against 12,608 B for the plan
    # without outlier patches); its JSON layers and report mark the outlier patches
    result = deploy(FMNIST, "cortex-m7", MixqOptions.from_strings(CONFIG), calib=CALIB,
                    inputs_path=tmp_path / "in.npz", run=False, out_dir=tmp_path / "dep2", with_tflm=False)
    assert result.schedule == "plan with outlier patches"
    mixq = result.mixq
    layers = mixq.layers()
    stage = [la for la in layers if la["patches"] > 1]
    assert stage and all(la["outlier_patches"] == 2 for la in stage)
    assert any(la["outlier_bits"][0] == 8 > la["in_bits"] for la in stage)
    # the outlier plan's reference (what its firmware was checked against above) differs from the
    # all-normal graph's for these inputs
    normal = Interpreter(mixq.model.graph, KERNEL_REFERENCE).run([x])[0]
    assert not np.array_equal(mixq.expected[0], normal)
    assert (result.report_path.parent / "bitwidths.png").is_file()
