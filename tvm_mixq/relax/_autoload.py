"""Register the ``mixq.*`` PassContext keys as soon as TVM is imported, without importing it.

``import tvm_mixq`` stays light (no TVM), yet ``import tvm_mixq; import tvm;
tvm.transform.PassContext(config={"mixq.sram_limit_kb": 64})`` must work. :func:`install`
registers the keys at once when TVM is already imported, and otherwise puts a one-shot finder on
``sys.meta_path`` that lets the normal import of ``tvm`` run and then imports
:mod:`tvm_mixq.relax.config` (which registers the keys). A failure there (no compiler to build
the shim, say) is logged, not raised: the import of TVM itself must not break, and
:mod:`tvm_mixq.relax.config` raises the real error when the mixq passes are used.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from types import ModuleType
from typing import Optional, Sequence

log = logging.getLogger(__name__)

_CONFIG_MODULE = "tvm_mixq.relax.config"


def _register() -> None:
    try:
        importlib.import_module(_CONFIG_MODULE)
    except Exception as exc:  # never break `import tvm`
        log.warning("mixq PassContext options are not registered: %s", exc)


class _TvmImportHook(importlib.abc.MetaPathFinder):
    """Finds ``tvm`` through the other finders and runs :func:`_register` after it executes."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "tvm":
            return None
        _uninstall()
        spec = importlib.util.find_spec("tvm")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            _register()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TvmImportHook)]


def install() -> None:
    """Register now if TVM is imported, else when it is (idempotent)."""
    if "tvm" in sys.modules:
        if _CONFIG_MODULE not in sys.modules:
            _register()
        return
    if not any(isinstance(f, _TvmImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TvmImportHook())
