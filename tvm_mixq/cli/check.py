"""``mixq check MODEL.tflite [--samples N] [--seed S] [--json]``.

Runs the project's reference interpreter and TFLite's reference kernels (ai-edge-litert,
``BUILTIN_REF``) on the same inputs, ``N`` random ones and three edge cases (all minimum, all
maximum, zeros), and reports whether every output is identical. JSON keys: ``bit_exact``,
``max_abs_diff`` (integer steps of the output quantization; null when the model could not be
run), ``unsupported_ops``, ``samples`` and details. Exit code 0 when bit-exact, 1 when the outputs
differ, 2 for bad input (including unsupported ops).
"""
from __future__ import annotations

import argparse
import json
import os

from ..errors import MixqError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check", help="compare the reference interpreter with TFLite on a model",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("model", metavar="MODEL.tflite", help="int8 TFLite model (float I/O allowed)")
    p.add_argument("--samples", type=int, default=20, help="random inputs besides the 3 edge cases (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..reference.compare import check_model

    if args.samples < 0:
        raise MixqError(f"--samples must be >= 0, got {args.samples}")
    if not os.path.isfile(args.model):
        raise MixqError(f"{args.model}: no such file")
    result = check_model(args.model, samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    if result.unsupported_ops:
        if not args.json:
            raise MixqError(f"{result.model}: unsupported ops: {'; '.join(result.unsupported_ops)}")
        return 2
    if not args.json:
        verdict = "bit-exact" if result.bit_exact else "NOT bit-exact"
        print(f"{result.model}: {verdict} with TFLite (BUILTIN_REF) on {result.compared} inputs "
              f"({result.samples} random, {len(result.edge_cases)} edge), max |diff| {result.max_abs_diff}; "
              f"reference {result.reference_ms} ms, TFLite {result.tflite_ms} ms per inference")
        if result.mismatched:
            print(f"  differing inputs: {', '.join(result.mismatched)}")
    return 0 if result.bit_exact else 1
