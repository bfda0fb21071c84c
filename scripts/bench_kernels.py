#!/usr/bin/env python3
"""Run the kernel benchmark on both emulated cores and store its outputs.

Writes, for each target, the JSON report to ``--out`` (default build/bench/results) and the cost
table to tvm_mixq/bench/data/cost_table_<target>.json (read by tvm_mixq.bench.cost_table and the
measured cost model of the bitwidth search), and prints the tables. With ``--all-variants`` the
cost table also holds the project's kernels for every other (input, weight, output) combination of
the weighted ops (mixed-precision plans use them all), measured in a second pass without baselines.
Usage: scripts/bench_kernels.py [--targets cortex-m7,cortex-m4] [--out DIR] [--all-variants]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tvm_mixq.bench.cost_table import default_path  # noqa: E402
from tvm_mixq.bench.cases import WEIGHTED_OPS, WEIGHTED_VARIANTS  # noqa: E402
from tvm_mixq.bench.kernels import all_weighted_variants, format_table, run_kernel_bench, write_cost_table  # noqa: E402
from tvm_mixq.bench.shapes import benchmark_shapes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="cortex-m7,cortex-m4")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "build" / "bench" / "results"))
    parser.add_argument("--no-cost-table", action="store_true", help="do not update tvm_mixq/bench/data")
    parser.add_argument("--all-variants", action="store_true",
                        help="also measure every other bitwidth combination of the weighted ops for the cost table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    for target in [t for t in args.targets.split(",") if t]:
        report = run_kernel_bench(target)
        if args.all_variants:
            others = [v for v in all_weighted_variants() if v not in WEIGHTED_VARIANTS]
            shapes = [s for s in benchmark_shapes() if s.op in WEIGHTED_OPS]
            extra = run_kernel_bench(target, shapes, others, with_ours=True, baselines=False)
            ok = ok and extra.all_bit_exact
            report.measurements.extend(m for m in extra.measurements if (m.in_bits, m.w_bits, m.out_bits) != (8, 8, 8))
        (out / f"bench_kernels_{target}.json").write_text(json.dumps(report.as_json(), indent=1) + "\n")
        (out / f"bench_kernels_{target}.txt").write_text(format_table(report) + "\n")
        if not args.no_cost_table:
            write_cost_table(report, default_path(target))
        print(format_table(report))
        ok = ok and report.all_bit_exact
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
