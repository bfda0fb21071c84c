"""Emulated kernel benchmark (``mixq bench kernels``, DESIGN sections 4 and 5).

* :mod:`.shapes` - the layers: the four anchor layers of the kernel issue (plus an add and an
  average pool), and the distinct layers of the MLPerf Tiny VWW-96 and KWS models read with
  :func:`tvm_mixq.reader.read_tflite`;
* :mod:`.cases` - random data per (layer, bitwidth variant) and its expected output from
  :mod:`tvm_mixq.reference.ops`;
* :mod:`.firmware` - firmware images that embed many cases, call the project's kernels
  (kernels/include/mixq_kernels.h) and the baselines (kernels/baselines), check every output in
  the firmware and count instructions (:mod:`tvm_mixq.emu`);
* :mod:`.kernels` - the benchmark itself: rows per (kernel, baseline) pair, table, summary
  against the kernel issue's targets, cost table;
* :mod:`.cost_table` - reader of the cost table for the mixed-precision search.

Outputs: the JSON report (``mixq bench kernels --json``; ``results`` as DESIGN section 4 plus
``weight_bytes``/``scratch_bytes`` and the baseline's, ``measurements`` with every call,
``summary``), and the cost table, written by ``--cost-table PATH`` or by scripts/bench_kernels.py
to ``tvm_mixq/bench/data/cost_table_<target>.json``.
"""
