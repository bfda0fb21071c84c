"""Cortex-M emulation: build firmware with arm-none-eabi-gcc, run it in QEMU, count instructions.

Targets: ``cortex-m4`` (QEMU ``mps2-an386``) and ``cortex-m7`` (``mps2-an500``). Instruction counts
come from SysTick under ``-icount shift=0`` (40 instructions per tick; see
``microtvm_templates/qemu_cortex_m/mixq_harness.h``).
"""
from .targets import HARNESS_DIR, INSTRUCTIONS_PER_TICK, OPT_FLAGS, TARGET_NAMES, Target, get_target
from .toolchain import (
    EXIT_FAULT,
    EmulationError,
    RunResult,
    build_and_run,
    build_elf,
    compile_objects,
    find_tool,
    parse_console,
    run_elf,
    tools_available,
)

__all__ = [
    "EXIT_FAULT",
    "HARNESS_DIR",
    "INSTRUCTIONS_PER_TICK",
    "OPT_FLAGS",
    "TARGET_NAMES",
    "EmulationError",
    "RunResult",
    "Target",
    "build_and_run",
    "build_elf",
    "compile_objects",
    "find_tool",
    "get_target",
    "parse_console",
    "run_elf",
    "tools_available",
]
