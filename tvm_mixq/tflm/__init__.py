"""The TensorFlow Lite Micro path: MIXQ custom ops for existing TFLM firmware.

* :mod:`.rewriter` - int8 graph + bitwidths -> converted graph with MIXQ custom ops;
* :mod:`.custom_options` - the ops' flexbuffer options;
* :mod:`.convert` - ``mixq tflm convert`` (calibration, bitwidth choice, rewriting, writing);
* :mod:`.arena` - TFLM's greedy arena planner replayed offline (the SRAM budget of the search);
* :mod:`.emulate` - the converted graph on the host kernels, without TFLM;
* :mod:`.build` - the ops library for the TFLM Python interpreter, compiled against ``TFLM_DIR``;
* :mod:`.runner` - a model in the TFLM interpreter (child process), with TFLM's arena report;
* :mod:`.firmware` - a Cortex-M TFLM firmware with the ops, run in QEMU;
* :mod:`.check` - ``mixq tflm check``;
* :mod:`.writer` - Graph -> .tflite.

The C++ side lives in ``tflm_ops/`` (see its README).
"""
