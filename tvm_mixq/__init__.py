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
