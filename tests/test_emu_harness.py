"""The QEMU harness: exit codes, console parsing, deterministic and linear instruction counts."""
from __future__ import annotations

from pathlib import Path

import pytest

from tvm_mixq.emu import (
    HARNESS_DIR,
    INSTRUCTIONS_PER_TICK,
    TARGET_NAMES,
    EmulationError,
    build_and_run,
    build_elf,
    get_target,
    parse_console,
    run_elf,
    tools_available,
)
from tvm_mixq.errors import MixqError

needs_tools = pytest.mark.skipif(tools_available() is not None, reason=f"emulation tools missing: {tools_available()}")
LOOP = HARNESS_DIR / "test_loop.c"


def _run_loop(tmp_path: Path, target: str, iterations: int, fail: bool = False):
    return build_and_run(
        [LOOP],
        target,
        tmp_path,
        name=f"loop{iterations}{'f' if fail else ''}",
        defines={"MIXQ_LOOP_ITERATIONS": iterations, "MIXQ_FORCE_FAIL": int(fail)},
    )


def test_unknown_target_is_refused():
    with pytest.raises(MixqError, match="unknown target"):
        get_target("cortex-m0")


def test_parse_console_ignores_other_lines():
    ticks, checks, values = parse_console("hi\n@mixq count a 12\n@mixq check b FAIL\n@mixq value c -3\n@mixq junk\n")
    assert ticks == {"a": 12} and checks == {"b": False} and values == {"c": -3}


@needs_tools
@pytest.mark.parametrize("target", TARGET_NAMES)
def test_tiny_firmware_exits_zero(tmp_path, target):
    res = _run_loop(tmp_path, target, 1000)
    assert res.exit_code == 0
    assert res.passed
    assert "hello from the firmware" in res.console
    assert res.checks == {"buffer": True}


@needs_tools
@pytest.mark.parametrize("target", TARGET_NAMES)
def test_failing_check_exits_one(tmp_path, target):
    res = _run_loop(tmp_path, target, 1000, fail=True)
    assert res.exit_code == 1
    assert res.checks == {"buffer": False}
    assert res.values["buffer.first_diff"] == 3
    assert not res.passed


@needs_tools
@pytest.mark.parametrize("target", TARGET_NAMES)
def test_counts_are_deterministic_and_linear(tmp_path, target):
    """A 2-instruction loop of N iterations counts 2N instructions (40 per SysTick tick)."""
    elf = build_elf([LOOP], target, tmp_path / "a.elf", defines={"MIXQ_LOOP_ITERATIONS": 100000})
    first = run_elf(elf, target).instructions["loop"]
    second = run_elf(elf, target).instructions["loop"]
    assert first == second
    big = _run_loop(tmp_path, target, 300000).instructions["loop"]
    assert abs(first - 2 * 100000) <= INSTRUCTIONS_PER_TICK
    assert abs((big - first) - 2 * 200000) <= 2 * INSTRUCTIONS_PER_TICK


@needs_tools
def test_build_error_surfaces_compiler_message(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undefined_symbol; }\n")
    with pytest.raises(EmulationError, match="undefined_symbol"):
        build_elf([bad], "cortex-m7", tmp_path / "bad.elf")


@needs_tools
def test_missing_firmware_is_an_error(tmp_path):
    with pytest.raises(EmulationError, match="does not exist"):
        run_elf(tmp_path / "none.elf", "cortex-m4")


@needs_tools
def test_fault_is_reported(tmp_path):
    src = tmp_path / "fault.c"
    src.write_text(
        "#include <stdint.h>\n"
        "int main(void) { return *(volatile int *)(uintptr_t)0xF0000000u; }\n"
    )
    elf = build_elf([src], "cortex-m7", tmp_path / "fault.elf")
    with pytest.raises(EmulationError, match="faulted"):
        run_elf(elf, "cortex-m7")
    assert run_elf(elf, "cortex-m7", allow_fault=True).exit_code == 3
