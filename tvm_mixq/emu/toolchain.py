"""Build a firmware ELF with arm-none-eabi-gcc and run it under qemu-system-arm.

The firmware reports through semihosting (see microtvm_templates/qemu_cortex_m/mixq_harness.h):
its exit code becomes QEMU's, and ``@mixq`` lines carry instruction counts (in SysTick ticks,
converted here with :data:`~tvm_mixq.emu.targets.INSTRUCTIONS_PER_TICK`), check results and values.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from ..errors import MixqError
from .targets import HARNESS_DIR, HARNESS_SOURCES, INSTRUCTIONS_PER_TICK, OPT_FLAGS, Target, get_target

log = logging.getLogger(__name__)

GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
WARNING_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
#: Exit code of the firmware's fault handlers.
EXIT_FAULT = 3

PathLike = Union[str, Path]


class EmulationError(MixqError):
    """The cross toolchain or QEMU is missing, a build failed, or a firmware run failed."""


def find_tool(name: str) -> str:
    """Absolute path of an executable on PATH, or :class:`EmulationError` naming its package."""
    path = shutil.which(name)
    if path is None:
        package = "gcc-arm-none-eabi libnewlib-arm-none-eabi" if name == GCC else "qemu-system-arm"
        raise EmulationError(f"{name} not found on PATH (Debian: apt-get install {package})")
    return path


def tools_available() -> Optional[str]:
    """None when both the cross compiler and QEMU are present, else the reason they are not."""
    try:
        find_tool(GCC)
        find_tool(QEMU)
    except EmulationError as exc:
        return str(exc)
    return None


def _first_lines(text: str, limit: int = 12) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    shown = "; ".join(lines[:limit])
    return shown + (" ..." if len(lines) > limit else "")


def build_elf(
    sources: Sequence[PathLike],
    target: Union[str, Target],
    output: PathLike,
    include_dirs: Sequence[PathLike] = (),
    defines: Optional[Mapping[str, Union[str, int, None]]] = None,
    extra_cflags: Sequence[str] = (),
    timeout: float = 600.0,
) -> Path:
    """Compile and link ``sources`` plus the harness support into a firmware ELF.

    Parameters
    ----------
    sources
        C files of the firmware (one of them defines ``int main(void)``).
    target
        Target name (``cortex-m4`` / ``cortex-m7``) or :class:`Target`.
    output
        Path of the ELF to write; its directory is created.
    include_dirs, defines, extra_cflags
        Added to the compiler command line (``defines`` values of None give ``-DNAME``).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    EmulationError
        The compiler is missing or the build fails (its first diagnostics in the message).
    """
    tgt = get_target(target) if isinstance(target, str) else target
    gcc = find_tool(GCC)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [gcc, *tgt.cpu_flags, *OPT_FLAGS, *WARNING_FLAGS, "-ffunction-sections", "-fdata-sections"]
    cmd += [f"-I{HARNESS_DIR}"] + [f"-I{Path(d)}" for d in include_dirs]
    for key, value in (defines or {}).items():
        cmd.append(f"-D{key}" if value is None else f"-D{key}={value}")
    cmd += list(extra_cflags)
    cmd += [str(HARNESS_DIR / s) for s in HARNESS_SOURCES] + [str(Path(s)) for s in sources]
    cmd += [
        f"-T{tgt.linker_script_path}",
        f"-L{HARNESS_DIR}",
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-o",
        str(out),
    ]
    log.info("building %s for %s", out.name, tgt.name)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{GCC} timed out after {timeout:.0f} s building {out.name}") from None
    if proc.returncode != 0:
        raise EmulationError(f"{GCC} failed building {out.name}: {_first_lines(proc.stderr or proc.stdout)}")
    return out


def compile_objects(
    sources: Sequence[PathLike],
    target: Union[str, Target],
    out_dir: PathLike,
    include_dirs: Sequence[PathLike] = (),
    defines: Optional[Mapping[str, Union[str, int, None]]] = None,
    timeout: float = 600.0,
) -> list[Path]:
    """Compile C sources to objects for ``target`` with the flags of :func:`build_elf`.

    Objects are cached in ``out_dir`` under a name that hashes the source, the flags and the
    headers of ``include_dirs``: a second call with unchanged inputs compiles nothing.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    gcc = find_tool(GCC)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flags = [*tgt.cpu_flags, *OPT_FLAGS, *WARNING_FLAGS, "-ffunction-sections", "-fdata-sections"]
    flags += [f"-I{HARNESS_DIR}"] + [f"-I{Path(d)}" for d in include_dirs]
    for key, value in (defines or {}).items():
        flags.append(f"-D{key}" if value is None else f"-D{key}={value}")
    headers = hashlib.sha256(" ".join(flags).encode())
    for d in include_dirs:
        for h in sorted(Path(d).glob("*.h")):
            headers.update(h.name.encode() + h.read_bytes())
    objects = []
    for src in map(Path, sources):
        digest = headers.copy()
        digest.update(src.read_bytes())
        obj = out / f"{src.stem}-{digest.hexdigest()[:12]}.o"
        if not obj.exists():
            tmp = obj.with_suffix(f".tmp{os.getpid()}")
            cmd = [gcc, *flags, "-c", str(src), "-o", str(tmp)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise EmulationError(f"{GCC} timed out after {timeout:.0f} s compiling {src.name}") from None
            if proc.returncode != 0:
                raise EmulationError(f"{GCC} failed compiling {src.name}: {_first_lines(proc.stderr or proc.stdout)}")
            os.replace(tmp, obj)
        objects.append(obj)
    return objects


@dataclass
class RunResult:
    """What one firmware run reported.

    ``instructions`` maps region names to instruction counts (``ticks`` times
    :data:`INSTRUCTIONS_PER_TICK`, resolution 40), ``checks`` maps check names to pass/fail.
    """

    exit_code: int
    console: str
    ticks: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)

    @property
    def stdout(self) -> str:
        """The firmware's console output (semihosting), QEMU's own messages included."""
        return self.console

    @property
    def instructions(self) -> dict[str, int]:
        return {name: t * INSTRUCTIONS_PER_TICK for name, t in self.ticks.items()}

    @property
    def passed(self) -> bool:
        """Exit code 0 and every reported check ok."""
        return self.exit_code == 0 and all(self.checks.values())


def parse_console(text: str) -> tuple[dict[str, int], dict[str, bool], dict[str, int]]:
    """The ``@mixq`` lines of a firmware's console output: (ticks, checks, values)."""
    ticks: dict[str, int] = {}
    checks: dict[str, bool] = {}
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if len(parts) != 4 or parts[0] != "@mixq":
            continue
        kind, name, value = parts[1], parts[2], parts[3]
        if kind == "count":
            ticks[name] = int(value)
        elif kind == "check":
            checks[name] = value == "ok"
        elif kind == "value":
            values[name] = int(value)
    return ticks, checks, values


def qemu_command(qemu: str, machine: str, elf: PathLike) -> list[str]:
    """The QEMU command line of every firmware run: semihosting on, one instruction per icount tick."""
    return [qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]


def run_elf(elf: PathLike, target: Union[str, Target], timeout: float = 120.0, allow_fault: bool = False) -> RunResult:
    """Run a firmware under ``qemu-system-arm -icount shift=0`` with semihosting.

    Parameters
    ----------
    elf
        Firmware built by :func:`build_elf` for the same target.
    target
        Target name or :class:`Target` (selects the QEMU board).
    timeout
        Seconds of host time before the run is killed.
    allow_fault
        Return a faulting run (exit code :data:`EXIT_FAULT`) instead of raising.

    Raises
    ------
    EmulationError
        QEMU is missing, reports an error of its own, times out, or the firmware faults.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    qemu = find_tool(QEMU)
    if not Path(elf).is_file():
        raise EmulationError(f"firmware {elf} does not exist")
    cmd = qemu_command(qemu, tgt.machine, elf)
    log.info("running %s on %s", Path(elf).name, tgt.machine)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{QEMU} run of {Path(elf).name} timed out after {timeout:.0f} s") from None
    # Semihosting console output arrives on stderr with target=native, next to QEMU's own errors.
    console = proc.stdout + proc.stderr
    qemu_errors = [ln for ln in console.splitlines() if ln.startswith(f"{QEMU}:")]
    ticks, checks, values = parse_console(console)
    if qemu_errors and not ticks and not checks:
        raise EmulationError(f"{QEMU} failed (exit {proc.returncode}): {_first_lines(chr(10).join(qemu_errors), 4)}")
    result = RunResult(exit_code=proc.returncode, console=console, ticks=ticks, checks=checks, values=values)
    if proc.returncode == EXIT_FAULT and "fault" in values and not allow_fault:
        raise EmulationError(f"firmware {Path(elf).name} faulted on {tgt.machine}: {_first_lines(console, 6)}")
    return result


def build_and_run(
    sources: Sequence[PathLike],
    target: Union[str, Target],
    build_dir: PathLike,
    name: str = "firmware",
    include_dirs: Sequence[PathLike] = (),
    defines: Optional[Mapping[str, Union[str, int, None]]] = None,
    extra_cflags: Sequence[str] = (),
    timeout: float = 120.0,
) -> RunResult:
    """:func:`build_elf` into ``build_dir/<name>-<target>.elf`` then :func:`run_elf`."""
    tgt = get_target(target) if isinstance(target, str) else target
    elf = build_elf(sources, tgt, Path(build_dir) / f"{name}-{tgt.name}.elf", include_dirs, defines, extra_cflags)
    return run_elf(elf, tgt, timeout=timeout)
