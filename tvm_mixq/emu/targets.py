"""Emulated Cortex-M targets: QEMU board, compiler flags and linker script per target name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MixqError

#: Firmware support sources shared by every firmware image (startup, semihosting, counter).
HARNESS_DIR = Path(__file__).resolve().parents[2] / "microtvm_templates" / "qemu_cortex_m"
HARNESS_SOURCES = ("mixq_startup.c", "mixq_semihost.c")

#: One SysTick tick (CLKSOURCE=CPU, 25 MHz) is 40 ns of virtual time, i.e. 40 instructions under
#: ``-icount shift=0`` (1 ns per instruction). Checked by tests/test_emu_harness.py.
INSTRUCTIONS_PER_TICK = 40

#: Optimisation flags used for every kernel, ours and the baselines alike.
OPT_FLAGS = ("-Ofast",)


@dataclass(frozen=True)
class Target:
    """A Cortex-M core as emulated by one QEMU board."""

    name: str
    machine: str
    cpu_flags: tuple[str, ...]
    linker_script: str

    @property
    def linker_script_path(self) -> Path:
        return HARNESS_DIR / self.linker_script


_TARGETS = {
    "cortex-m4": Target(
        name="cortex-m4",
        machine="mps2-an386",
        cpu_flags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        linker_script="mps2-an386.ld",
    ),
    "cortex-m7": Target(
        name="cortex-m7",
        machine="mps2-an500",
        cpu_flags=("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
        linker_script="mps2-an500.ld",
    ),
}

TARGET_NAMES = tuple(_TARGETS)


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name`` (``cortex-m4`` or ``cortex-m7``)."""
    try:
        return _TARGETS[name]
    except KeyError:
        raise MixqError(f"unknown target {name!r}: expected one of {', '.join(TARGET_NAMES)}") from None
