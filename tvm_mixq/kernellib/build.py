"""Build ``kernels/`` with the system compiler (host shared library) or arm-none-eabi-gcc.

The host library goes to a build directory outside the source tree (``$MIXQ_BUILD_DIR`` or
``<repo>/build/kernellib``), named after a hash of the sources and flags, so it is rebuilt only
when a kernel source changes. Two flavours:

* ``release``: ``-O2``, the portable C path (the host has no Cortex-M DSP instructions);
* ``sanitize``: ``-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all``. A process can
  load it only with the ASan runtime first in line: run Python with
  ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)`` (see :func:`sanitizer_env`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from ..errors import MixqError

log = logging.getLogger(__name__)

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
REPO_DIR = KERNELS_DIR.parent

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
FLAVOURS = {
    "release": ["-O2", "-fPIC"],
    "sanitize": ["-O1", "-g", "-fPIC", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=all"],
}


def kernel_sources() -> list[Path]:
    """The C sources of the library (hand-written cores and generated variants)."""
    return sorted((KERNELS_DIR / "src").glob("*.c")) + sorted((KERNELS_DIR / "generated").glob("*.c"))


def include_dirs() -> list[Path]:
    return [KERNELS_DIR / "include", KERNELS_DIR / "src"]


def _digest(paths: list[Path], flags: list[str]) -> str:
    h = hashlib.sha256(" ".join(flags).encode())
    for p in sorted(set(paths)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _all_inputs() -> list[Path]:
    files = kernel_sources()
    for d in include_dirs():
        files += sorted(d.glob("*.h"))
    return files


def default_build_dir() -> Path:
    return Path(os.environ.get("MIXQ_BUILD_DIR", REPO_DIR / "build")) / "kernellib"


def _run(cmd: list[str], what: str) -> None:
    log.debug("%s: %s", what, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def build_host_library(flavour: str = "release", build_dir: Optional[Path] = None, cc: str = "gcc") -> Path:
    """Build (or reuse) the host shared library and return its path."""
    if flavour not in FLAVOURS:
        raise MixqError(f"unknown kernel library flavour {flavour!r}; one of {sorted(FLAVOURS)}")
    if shutil.which(cc) is None:
        raise MixqError(f"C compiler {cc!r} not found")
    flags = WARNINGS + FLAVOURS[flavour]
    out_dir = Path(build_dir) if build_dir else default_build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libmixq_kernels-{flavour}-{_digest(_all_inputs(), flags + [cc])}.so"
    if lib.exists():
        return lib
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    obj_dir = Path(tempfile.mkdtemp(dir=out_dir))
    includes = [f"-I{d}" for d in include_dirs()]
    try:
        # one compiler process per source, two at a time (the sources are independent)
        jobs = [([cc, *flags, *includes, "-c", str(src), "-o", str(obj_dir / (src.stem + ".o"))],
                 f"host build of {src.name} ({flavour})") for src in kernel_sources()]
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda job: _run(*job), jobs))
        _run([cc, *flags, "-shared", *[str(obj_dir / (src.stem + ".o")) for src in kernel_sources()], "-o", tmp],
             f"host link ({flavour})")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        shutil.rmtree(obj_dir, ignore_errors=True)
    log.info("built %s", lib)
    return lib


def sanitizer_env(cc: str = "gcc") -> dict[str, str]:
    """Environment for a child process that loads the ``sanitize`` flavour."""
    libasan = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    libubsan = subprocess.run([cc, "-print-file-name=libubsan.so"], capture_output=True, text=True).stdout.strip()
    env = dict(os.environ)
    env["LD_PRELOAD"] = f"{libasan}:{libubsan}"
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def cross_compile(
    out_dir: Path,
    cpu: str = "cortex-m7",
    opt: str = "-Ofast",
    cc: str = "arm-none-eabi-gcc",
    extra_flags: Optional[list[str]] = None,
) -> list[Path]:
    """Compile every kernel source for a Cortex-M core (objects only) and return the objects.

    ``-mcpu=cortex-m4``/``cortex-m7``/``cortex-m33`` enable the DSP extension, hence the packed
    SIMD paths.
    """
    if shutil.which(cc) is None:
        raise MixqError(f"cross compiler {cc!r} not found (Debian package gcc-arm-none-eabi)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = WARNINGS + [f"-mcpu={cpu}", "-mthumb", opt, "-ffunction-sections", "-fdata-sections"]
    flags += list(extra_flags or [])
    objs = []
    for src in kernel_sources():
        obj = out_dir / (src.stem + ".o")
        _run([cc, *flags, *[f"-I{d}" for d in include_dirs()], "-c", str(src), "-o", str(obj)],
             f"cross build of {src.name} ({cpu})")
        objs.append(obj)
    return objs
