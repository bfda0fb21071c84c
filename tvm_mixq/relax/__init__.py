"""TVM Relax side of tvm-mixq: import, pattern partitioning, the mixq passes and their pipeline.

Importing this package does not import TVM; its names load on first use:

* :func:`from_tflite` / :func:`import_graph` -- TFLite model or project graph -> Relax IRModule
  in QDQ form (``R.dequantize -> float op -> R.quantize``), tensor names kept;
* :func:`partition_for_mixq` -- QDQ patterns -> composite functions ``mixq.conv2d``, ...;
* :mod:`tvm_mixq.relax.passes` -- one ``tvm.transform`` module pass per file;
* :func:`pipeline` -- the passes as one ``tvm.transform.Sequential``;
* :func:`pass_context` -- ``tvm.transform.PassContext`` with ``mixq.*`` keys checked;
* :class:`GraphPlanner` -- the passes driven by :mod:`tvm_mixq.schedule` and :mod:`tvm_mixq.quant`;
* :func:`run_codegen` / :func:`c_source` -- ``relax.ext.mixq``: layers as kernel-library C.

The ``mixq.*`` PassContext keys are registered (C++ shim, :mod:`tvm_mixq.relax.shim`) when
:mod:`tvm_mixq.relax.config` is imported, which happens as soon as TVM is imported in a process
that imported ``tvm_mixq`` (:mod:`tvm_mixq.relax._autoload`).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "pass_context": "config",
    "options_from_context": "config",
    "register_options": "config",
    "parse_pass_configs": "config",
    "from_tflite": "importer",
    "import_graph": "importer",
    "partition_for_mixq": "patterns",
    "pattern_table": "patterns",
    "pipeline": "pipelines",
    "MixqPlanner": "planner",
    "PlanContext": "planner",
    "Annotations": "planner",
    "GraphPlanner": "graph_planner",
    "run_codegen": "codegen",
    "c_source": "codegen",
}

__all__ = sorted(_EXPORTS) + ["passes"]


def __getattr__(name: str) -> Any:
    if name == "passes":
        return importlib.import_module(f"{__name__}.passes")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
