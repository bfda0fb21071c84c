"""``mixq bench kernels --target cortex-m4|cortex-m7 [--json]``.

Runs every kernel variant of the project's library against the baselines (cmsis_int8: int8
widened to 16 bit + SMLAD; cmix_unpack16: sub-byte unpacked to 16 bit + SMLAD) on an emulated
Cortex-M core (QEMU, -icount shift=0), over the four anchor layers of the kernel issue and the
distinct layers of the MLPerf Tiny VWW-96 and KWS models. Every output is checked bit for bit in
the firmware against the Python reference. Prints a table (MACs, instructions, MACs per
instruction, ratio to each baseline) or, with --json, the DESIGN section 4 JSON. Exit code 0 when
every output matched, 1 otherwise, 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import MixqError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="emulated benchmarks", description="Emulated benchmarks.")
    sub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    sub.required = True
    k = sub.add_parser("kernels", help="kernel variants against the baselines on an emulated Cortex-M",
                       description=__doc__.split("\n\n")[1])
    k.add_argument("--target", required=True, help="cortex-m4 (QEMU mps2-an386) or cortex-m7 (mps2-an500)")
    k.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    k.add_argument("--models", default="vww_96,kws",
                   help="comma-separated MLPerf Tiny models whose layers are benchmarked (default vww_96,kws; "
                        "'none' for the anchor layers only)")
    k.add_argument("--no-anchors", action="store_true", help="leave out the anchor layers of the kernel issue")
    k.add_argument("--ops", default="", help="comma-separated ops to keep (conv2d,pointwise,depthwise,"
                                             "fully_connected,add,avgpool; default all)")
    k.add_argument("--variants", default="",
                   help="comma-separated variants such as W4A4,W2A2,W4A8 (W<weights>A<activations>[O<out>]); "
                        "W8A8 always runs (the cmsis_int8 baseline uses it)")
    k.add_argument("--baselines-only", action="store_true", help="do not build the project's kernels")
    k.add_argument("--cost-table", metavar="PATH", help="also write the per-layer cost table (JSON) to PATH")
    k.add_argument("--build-dir", metavar="DIR", help="where firmware sources and ELFs go (default build/bench)")
    k.add_argument("--seed", type=int, default=0, help="seed of the random layer data (default 0)")
    k.set_defaults(func=run_kernels)


def run_kernels(args: argparse.Namespace) -> int:
    from ..bench.cases import parse_variant
    from ..bench.kernels import format_table, run_kernel_bench, write_cost_table
    from ..bench.shapes import ANCHOR_SHAPES, MODEL_FILES, OPS, benchmark_shapes
    from ..emu import get_target, tools_available

    get_target(args.target)
    missing = tools_available()
    if missing:
        raise MixqError(missing)
    models = [] if args.models.strip().lower() == "none" else [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODEL_FILES:
            raise MixqError(f"unknown model {m!r}: expected one of {', '.join(MODEL_FILES)} or none")
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            raise MixqError(f"unknown op {o!r}: expected one of {', '.join(OPS)}")
    variants = [parse_variant(v) for v in args.variants.split(",") if v] or None
    shapes = benchmark_shapes(models, anchors=not args.no_anchors) if models else \
        ([] if args.no_anchors else list(ANCHOR_SHAPES))
    if ops:
        shapes = [s for s in shapes if s.op in ops]
    if not shapes:
        raise MixqError("no layers selected")
    report = run_kernel_bench(
        args.target,
        shapes=shapes,
        variants=variants,
        build_dir=Path(args.build_dir) if args.build_dir else None,
        with_ours=False if args.baselines_only else None,
        seed=args.seed,
    )
    if args.cost_table:
        write_cost_table(report, Path(args.cost_table))
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
    else:
        print(format_table(report))
    return 0 if report.all_bit_exact else 1
