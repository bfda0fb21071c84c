"""QEMU firmware of a generated model (microtvm_templates/qemu_cortex_m4 and qemu_cortex_m7).

:func:`check_fit` refuses, before any build, a model whose arena or constants cannot fit the
target device (figures in the message). :func:`build_firmware` renders the firmware main with
embedded samples and expected outputs, compiles it with the shared harness
(:mod:`tvm_mixq.emu`; kernel library and runtime objects cached), and reads the flash figure from
``arm-none-eabi-size``. :func:`run_firmware` runs it in QEMU and returns the instruction counts
(total and per layer) and whether every output matched.
"""
from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..emu import compile_objects, find_tool, get_target, run_elf
from ..emu import build_elf
from ..errors import MixqError
from ..kernellib.build import default_build_dir
from .emitter import GeneratedModel, include_dirs, kernel_sources, runtime_sources, template_env
from .host import _to_bytes

log = logging.getLogger(__name__)

TEMPLATES_ROOT = Path(__file__).resolve().parents[2] / "microtvm_templates"
#: Code of the kernel library, runtime and harness is not known before the build; this is the
#: allowance the pre-build flash check adds to the constants (measured: 20-60 KB at -Ofast).
CODE_ALLOWANCE_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeviceMemory:
    """Memory of the device a target stands for (template.json of its QEMU template)."""

    target: str
    board: str
    sram_bytes: int
    flash_bytes: int


def device_memory(target: str, sram_limit_bytes: Optional[int] = None) -> DeviceMemory:
    """The target's memory; ``sram_limit_bytes`` (``mixq.sram_limit_kb``) replaces its SRAM."""
    get_target(target)  # validates the name
    spec = json.loads((template_dir(target) / "template.json").read_text())
    sram = int(sram_limit_bytes) if sram_limit_bytes else int(spec["sram_bytes"])
    return DeviceMemory(target, spec["board"], sram, int(spec["flash_bytes"]))


def template_dir(target: str) -> Path:
    return TEMPLATES_ROOT / f"qemu_{target.replace('-', '_')}"


def check_fit(model: GeneratedModel, memory: DeviceMemory) -> None:
    """Raise :class:`MixqError` when the arena or the constants cannot fit ``memory``."""
    if model.arena_size > memory.sram_bytes:
        raise MixqError(f"{model.name} does not fit {memory.target}: arena {model.arena_size:,} B > SRAM "
                        f"{memory.sram_bytes:,} B (constants {model.const_bytes:,} B)")
    need = model.const_bytes + CODE_ALLOWANCE_BYTES
    if need > memory.flash_bytes:
        raise MixqError(f"{model.name} does not fit {memory.target}: constants {model.const_bytes:,} B + code "
                        f"~{CODE_ALLOWANCE_BYTES:,} B > flash {memory.flash_bytes:,} B")


@dataclass
class Firmware:
    elf: Path
    target: str
    samples: int
    test_data_bytes: int
    text_bytes: int = 0
    data_bytes: int = 0
    bss_bytes: int = 0

    @property
    def flash_bytes(self) -> int:
        """Flash of the model firmware: text + data of the ELF minus the embedded test samples."""
        return self.text_bytes + self.data_bytes - self.test_data_bytes


@dataclass
class FirmwareRun:
    passed: bool
    total_instructions: int
    layer_instructions: list[int]
    checks: dict[str, bool] = field(default_factory=dict)
    console: str = ""


def _sample_rows(t, samples: Sequence[np.ndarray]) -> list[list[int]]:
    return [list(np.frombuffer(_to_bytes(t, s), dtype=np.uint8)) for s in samples]


def build_firmware(model: GeneratedModel, target: str, inputs: Sequence[np.ndarray],
                   expected: Sequence[np.ndarray], build_dir: Optional[Path] = None, trace: bool = False) -> Firmware:
    """Firmware of ``model`` for ``target`` embedding ``inputs`` and ``expected`` outputs (lists of
    per-sample arrays in the model's order: ``inputs[i][s]`` is sample ``s`` of input ``i``).
    ``trace`` prints each layer's name as it starts (to locate a fault)."""
    tdir = template_dir(target)
    samples = len(inputs[0])
    data = {"inputs": [_sample_rows(t, x) for t, x in zip(model.inputs, inputs)],
            "outputs": [_sample_rows(t, y) for t, y in zip(model.outputs, expected)]}
    env = template_env((TEMPLATES_ROOT, tdir))
    main = model.out_dir / f"fw_main_{target.replace('-', '_')}.c"
    spec = json.loads((tdir / "template.json").read_text())
    main.write_text(env.get_template("main.c.j2").render(m={"prefix": model.prefix, "macro": model.macro,
                                                           "inputs": model.inputs, "outputs": model.outputs},
                                                        data=data, samples=samples, target=target,
                                                        board=spec["board"]))
    cache = (build_dir or default_build_dir().parent / "codegen") / f"objs-{target}"
    log.info("compiling the kernel library and runtime for %s (cached)", target)
    objs = compile_objects(kernel_sources() + runtime_sources(), target, cache, include_dirs())
    elf = model.out_dir / f"{model.prefix}-{target}.elf"
    log.info("building firmware %s", elf.name)
    build_elf([main, model.source, *objs], target, elf, include_dirs=model.include_dirs,
              extra_cflags=["-include", str(TEMPLATES_ROOT / "qemu_cortex_m" / "mixq_fw_profile.h")] + (["-DMIXQ_FW_TRACE"] if trace else []))
    test_bytes = samples * (sum(t.nbytes for t in model.inputs) + sum(t.nbytes for t in model.outputs))
    fw = Firmware(elf, target, samples, test_bytes)
    fw.text_bytes, fw.data_bytes, fw.bss_bytes = elf_size(elf)
    return fw


def elf_size(elf: Path) -> tuple[int, int, int]:
    """(text, data, bss) of an ELF from ``arm-none-eabi-size``."""
    size = find_tool("arm-none-eabi-gcc").replace("arm-none-eabi-gcc", "arm-none-eabi-size")
    proc = subprocess.run([size, str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise MixqError(f"arm-none-eabi-size failed on {elf.name}: {proc.stderr.strip()}")
    fields = proc.stdout.strip().splitlines()[-1].split()
    return int(fields[0]), int(fields[1]), int(fields[2])


def run_firmware(fw: Firmware, layers: int, timeout: float = 600.0) -> FirmwareRun:
    """Run ``fw`` in QEMU: instruction counts and the output checks."""
    result = run_elf(fw.elf, fw.target, timeout=timeout)
    instr = result.instructions
    if "total" not in instr:
        raise MixqError(f"firmware {fw.elf.name} reported no count (exit {result.exit_code}): "
                        f"{result.console.strip()[-400:]}")
    per_layer = [instr.get(f"layer.{i}", 0) for i in range(layers)]
    return FirmwareRun(result.passed and len(result.checks) > 0, instr["total"], per_layer, dict(result.checks),
                       result.console)
