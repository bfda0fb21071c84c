"""Build and load the C++ shim that registers ``mixq.*`` PassContext keys (DESIGN section 2).

The shim (``mixq_config.cc``) is compiled with ``g++ -std=c++17 -shared -fPIC`` against the
``tvm/ffi`` headers of the ``apache-tvm-ffi`` wheel and linked with ``libtvm_compiler.so`` of the
``apache-tvm`` wheel. ``setup.py`` builds it into the package at install time; when it is missing
(an editable checkout, a wheel built without TVM in the build environment, another TVM
version) :func:`shim_path` builds it on first use into a cache directory
(``$MIXQ_CACHE_DIR``, else ``$XDG_CACHE_HOME/tvm_mixq``, else ``~/.cache/tvm_mixq``).

The library's file name carries a digest of the source and of the TVM version, so a stale build
is never loaded. Nothing here imports TVM: :func:`build_shim` only needs to find the wheels, which
lets ``setup.py`` call it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("mixq_config.cc")
LIB_PREFIX = "libmixq_config_"


class ShimBuildError(RuntimeError):
    """The shim could not be compiled (no compiler, no TVM wheel, a compiler error)."""


@dataclass(frozen=True)
class TvmPaths:
    """Where the installed wheels keep what the shim compiles and links against."""

    version: str
    ffi_include: Path
    dlpack_include: Path
    tvm_lib_dir: Path
    ffi_lib_dir: Path


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ShimBuildError(f"Python package {name!r} is not installed (pip install apache-tvm==0.27.0.post1)")
    return Path(list(spec.submodule_search_locations)[0])


def find_tvm() -> TvmPaths:
    """Locate the TVM and TVM-FFI wheels without importing them."""
    tvm_dir = _package_dir("tvm")
    ffi_dir = _package_dir("tvm_ffi")
    version = "unknown"
    version_file = tvm_dir / "_version.py"
    if version_file.exists():
        for line in version_file.read_text().splitlines():
            if line.replace(" ", "").startswith(("__version__=", "version=")):
                version = line.split("=", 1)[1].strip().strip("'\"")
                break
    paths = TvmPaths(
        version=version,
        ffi_include=ffi_dir / "include",
        dlpack_include=ffi_dir / "3rdparty" / "dlpack" / "include",
        tvm_lib_dir=tvm_dir / "lib",
        ffi_lib_dir=ffi_dir / "lib",
    )
    if not (paths.ffi_include / "tvm" / "ffi" / "any.h").exists():
        raise ShimBuildError(f"tvm/ffi headers not found under {paths.ffi_include} (apache-tvm-ffi wheel)")
    if not (paths.tvm_lib_dir / "libtvm_compiler.so").exists():
        raise ShimBuildError(f"libtvm_compiler.so not found under {paths.tvm_lib_dir} (apache-tvm wheel)")
    return paths


def library_name(paths: Optional[TvmPaths] = None) -> str:
    """``libmixq_config_<digest>.so``; the digest covers the source and the TVM version."""
    paths = paths or find_tvm()
    digest = hashlib.sha256(SOURCE.read_bytes() + paths.version.encode()).hexdigest()[:12]
    return f"{LIB_PREFIX}{digest}.so"


def compile_command(output: Path, paths: TvmPaths, compiler: str = "g++") -> list[str]:
    """The g++ command line that builds the shim into ``output``."""
    cmd = [compiler, "-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra",
           f"-I{paths.ffi_include}"]
    if paths.dlpack_include.is_dir():
        cmd.append(f"-I{paths.dlpack_include}")
    cmd += [str(SOURCE), "-o", str(output),
            f"-L{paths.tvm_lib_dir}", f"-L{paths.ffi_lib_dir}", "-ltvm_compiler", "-ltvm_ffi",
            f"-Wl,-rpath,{paths.tvm_lib_dir}", f"-Wl,-rpath,{paths.ffi_lib_dir}"]
    return cmd


def build_shim(out_dir: Path, paths: Optional[TvmPaths] = None) -> Path:
    """Compile the shim into ``out_dir`` (atomically: concurrent builders do not clash).

    Raises
    ------
    ShimBuildError
        No C++ compiler, no TVM wheel, or the compiler failed (its output is in the message).
    """
    paths = paths or find_tvm()
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise ShimBuildError(f"C++ compiler {compiler!r} not found; install g++ (Debian: apt-get install g++)")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / library_name(paths)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".so", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = compile_command(tmp, paths, compiler)
        log.info("building the mixq PassContext shim: %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ShimBuildError(f"compiling {SOURCE.name} failed:\n{proc.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def cache_dir() -> Path:
    explicit = os.environ.get("MIXQ_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tvm_mixq"


def shim_path(build_if_missing: bool = True) -> Path:
    """The shim library for the installed TVM: the one built by setup.py, else the cached one,
    else (``build_if_missing``) a fresh build in the cache directory."""
    paths = find_tvm()
    name = library_name(paths)
    for candidate in (Path(__file__).parent / name, cache_dir() / name):
        if candidate.exists():
            return candidate
    if not build_if_missing:
        raise ShimBuildError(f"{name} is neither in the package nor in {cache_dir()}")
    log.info("mixq PassContext shim not built yet; compiling it into %s", cache_dir())
    return build_shim(cache_dir(), paths)
