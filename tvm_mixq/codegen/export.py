"""Export a generated model for an existing firmware tree (microtvm_templates/export).

The exported directory is self-contained: ``model/`` (the generated header and source),
``runtime/`` (the C runtime), ``kernels/`` (the kernel library's sources and headers), and the Make
and CMake fragments ``mixq_model.mk`` / ``mixq_model.cmake`` that add them to a build.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..kernellib.build import KERNELS_DIR
from .emitter import RUNTIME_DIR, GeneratedModel

EXPORT_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "microtvm_templates" / "export"


def export_model(model: GeneratedModel, dest: Path | str) -> Path:
    """Copy ``model`` and what it needs into ``dest``; returns ``dest``."""
    out = Path(dest)
    for sub in ("model", "runtime", "kernels"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "model").mkdir(parents=True, exist_ok=True)
    shutil.copy2(model.header, out / "model" / model.header.name)
    shutil.copy2(model.source, out / "model" / model.source.name)
    shutil.copytree(RUNTIME_DIR, out / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("include", "src", "generated"):
        shutil.copytree(KERNELS_DIR / sub, out / "kernels" / sub,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.o"))
    for name in ("mixq_model.mk", "mixq_model.cmake"):
        shutil.copy2(EXPORT_TEMPLATE_DIR / name, out / name)
    return out
