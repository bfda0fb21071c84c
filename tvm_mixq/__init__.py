"""tvm-mixq: deploy int8 TFLite models on Cortex-M with patch-based inference, channel-split
partial execution, value-driven mixed precision (8/4/2-bit) and packed-SIMD sub-byte kernels.

The flow, one subpackage per stage:

    reader/     TFLite flatbuffer -> project graph (graph.py)
    reference/  NumPy interpreter, bit-exact with TFLite; defines sub-byte semantics
    relax/      Relax import and the mixq passes (partition, calibrate, patch plan, VDPC, VDQS,
                channel split, memory plan)
    schedule/   patch plans, channel splits and the static memory planner
    quant/      calibration, VDPC outlier patches, VDQS bitwidth search
    codegen/    plan -> C code, packed weights, static arena
    tflm/       plan -> .tflite with MIXQ custom ops
"""
__version__ = "0.1.0"

# TVM-side entry points, loaded on first use so that `import tvm_mixq` does not import TVM.
_LAZY_EXPORTS = {
    "pipeline": "tvm_mixq.relax.pipelines",
    "pass_context": "tvm_mixq.relax.config",
    "from_tflite": "tvm_mixq.relax.importer",
    "MixqOptions": "tvm_mixq.options",
}


def __getattr__(name: str):
    import importlib

    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'tvm_mixq' has no attribute {name!r}")


# Register the mixq.* PassContext keys once TVM is imported (now, if it already is).
from .relax._autoload import install as _install_tvm_hook  # noqa: E402

_install_tvm_hook()
