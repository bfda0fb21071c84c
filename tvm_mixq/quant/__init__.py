"""Value-driven mixed precision: calibration, VDPC outlier patches, VDQS bitwidth search.

Modules, in the order the flow uses them:

    calibration.py   run the reference on calibration inputs; per-tensor and per-patch statistics
    vdpc.py          which patches of the patch stage keep 8 bits (mixq.outlier_k)
    cost.py          BitOPs or measured kernel instructions of an assignment (mixq.cost_model)
    vdqs.py          the iterative per-feature-map / per-layer-weight search (mixq.lambda, mixq.bits)
    requantize.py    an assignment -> a new quantized Graph (sub-byte scales, weights, biases)
    execute.py       batched reference runs; a plan with outlier patches run patch-exactly
    precision.py     the PrecisionAssignment and how it is written into a Plan
    assign.py        assign_precision(): the one call the passes and command lines make
    float_weights.py weights of the float model, to requantize from

Entry point: :func:`tvm_mixq.quant.assign.assign_precision`.
"""
