"""Large-input models (models/large, made by scripts/make_large_models.py): the 4x target against
TFLite Micro's arena, bit-exactness of the plans, planning time. Slow: run with --runslow."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from test_schedule_graphs import random_input
from tvm_mixq.schedule import plan_memory
from tvm_mixq.schedule.execute import check_plan

LARGE = os.path.join(os.path.dirname(__file__), "..", "models", "large")

_TFLM = """
import sys
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1], arena_size=8 << 20).print_allocations()
"""


def _large(name: str):
    path = os.path.join(LARGE, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not generated (scripts/make_large_models.py)")
    from tvm_mixq.reader import read_tflite

    return path, read_tflite(path)


def _tflm_arena(path: str) -> int:
    try:
        out = subprocess.run([sys.executable, "-c", _TFLM, path], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"tflite-micro interpreter not usable: {exc}")
    m = re.search(r"Arena allocation head (\d+) bytes", out.stdout + out.stderr)
    if not m:
        pytest.skip("tflite-micro printed no arena figure")
    return int(m.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("config", [{}, {"mixq.stream_input": 1}])
def test_mobilenetv2_four_times_below_tflm(config: dict) -> None:
    path, g = _large("mbv2_035_160_int8.tflite")
    t0 = time.perf_counter()
    plan = plan_memory(g, config)
    assert time.perf_counter() - t0 < 10
    assert plan.extra_macs <= 0.15
    assert _tflm_arena(path) >= 4 * plan.peak
    assert check_plan(plan, random_input(g, 1))


@pytest.mark.slow
def test_mcunet_like_four_times_below_tflm() -> None:
    """Input counted: the first stage ends before the 7x7 stride-2 block, later stages run that
    block and the 40x40x48 residual block patch by patch, within 15% extra MACs."""
    path, g = _large("mcunet_like_int8.tflite")
    t0 = time.perf_counter()
    plan = plan_memory(g)
    assert time.perf_counter() - t0 < 10
    assert plan.extra_macs <= 0.15
    assert plan.later_stages
    assert _tflm_arena(path) >= 4 * plan.peak
    assert check_plan(plan, random_input(g, 1))


@pytest.mark.slow
@pytest.mark.parametrize("config", [{"mixq.sram_limit_kb": 10}, {"mixq.sram_limit_kb": 10, "mixq.stream_input": 1}])
def test_unreachable_limit_is_fast(config: dict) -> None:
    from tvm_mixq.errors import MixqError

    for name in ("mbv2_035_160_int8.tflite", "mcunet_like_int8.tflite"):
        _, g = _large(name)
        t0 = time.perf_counter()
        with pytest.raises(MixqError, match="smallest reachable peak"):
            plan_memory(g, config)
        assert time.perf_counter() - t0 < 10


@pytest.mark.slow
@pytest.mark.parametrize("config", [{}, {"mixq.stream_input": 1}])
def test_mcunet_like_plans_are_bit_exact(config: dict) -> None:
    _, g = _large("mcunet_like_int8.tflite")
    plan = plan_memory(g, config)
    assert plan.extra_macs <= 0.15
    assert plan.peak < plan.baseline_peak
    assert check_plan(plan, random_input(g, 2))
