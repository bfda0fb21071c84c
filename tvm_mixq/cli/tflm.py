"""``mixq tflm convert|check``: the TensorFlow Lite Micro path.

``mixq tflm convert MODEL.tflite -o OUT.tflite [--calib DATA.npz] [--pass-config mixq.KEY=VAL ...]``
    Rewrites the model so that the layers the mixed-precision plan puts below 8 bits run as MIXQ
    custom ops (tflm_ops/); prints what became a MIXQ op and what stayed builtin.
``mixq tflm check MODEL.tflite [--calib DATA.npz] [--json]``
    Converts, builds the MIXQ ops against the TFLM checkout in TFLM_DIR, runs the original and the
    converted model in the TFLM interpreter (pip package tflite-micro) and reports ``bit_exact``
    (converted model vs the reference of the plan), ``arena_bytes_original`` and
    ``arena_bytes_converted``; with ``--target cortex-m7`` also in a TFLM firmware in QEMU. Exit 0
    when bit-exact, 1 when not, 2 for bad input (TFLM_DIR unset or not a TFLM checkout included).
"""
from __future__ import annotations

import argparse
import json
import os

from ..errors import MixqError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.tflite", help="int8 TFLite model")
    p.add_argument("--calib", metavar="DATA.npz", help="calibration samples: array input_0 (N, *input shape)")
    p.add_argument("--pass-config", action="append", default=[], metavar="mixq.KEY=VAL",
                   help="mixq.* option (repeatable), e.g. mixq.bits=8,4 or mixq.enable=0")
    p.add_argument("--act-bits", type=int, choices=(8, 4, 2),
                   help="every candidate feature map at this bitwidth instead of the VDQS search")
    p.add_argument("--weight-bits", type=int, choices=(8, 4, 2),
                   help="every candidate weight tensor at this bitwidth instead of the VDQS search")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tflm", help="TFLite Micro: convert a model to MIXQ custom ops, check it in TFLM",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="tflm_command", metavar="{convert,check}", parser_class=type(p))
    sub.required = True
    c = sub.add_parser("convert", help="rewrite sub-byte layers as MIXQ custom ops")
    _common(c)
    c.add_argument("-o", "--output", required=True, metavar="OUT.tflite", help="converted model")
    c.add_argument("--json", action="store_true", help="print the conversion as JSON on stdout")
    c.set_defaults(func=run_convert)
    k = sub.add_parser("check", help="run the converted model in real TFLM against the reference")
    _common(k)
    k.add_argument("--samples", type=int, default=4, help="inputs to compare (default 4)")
    k.add_argument("--tflm-dir", help="TFLM checkout (default: $TFLM_DIR)")
    k.add_argument("--target", choices=("cortex-m4", "cortex-m7"),
                   help="also run both models in a TFLM firmware for this core in QEMU")
    k.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    k.set_defaults(func=run_check)


def _check_model_file(path: str) -> None:
    if not os.path.isfile(path):
        raise MixqError(f"{path}: no such file")


def run_convert(args: argparse.Namespace) -> int:
    from ..tflm.convert import convert_model

    _check_model_file(args.model)
    result = convert_model(args.model, args.output, args.calib, args.pass_config, args.act_bits, args.weight_bits)
    if args.json:
        print(json.dumps({"output": args.output, "mixq_ops": [m.to_dict() for m in result.mixq_ops],
                          "notes": result.notes, "assignment": result.assignment.to_dict(),
                          "arena_estimate_original": result.arena_estimate_original,
                          "arena_estimate_converted": result.arena_estimate_converted}, indent=2))
    else:
        print(result.summary())
        print(f"wrote {args.output}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..tflm.check import check_model

    _check_model_file(args.model)
    if args.samples < 1:
        raise MixqError(f"--samples must be >= 1, got {args.samples}")
    report = check_model(args.model, args.calib, args.pass_config, args.samples, args.act_bits, args.weight_bits,
                         args.tflm_dir, target=args.target)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    exact = report.bit_exact and (report.device is None or report.device["bit_exact"])
    return 0 if exact else 1
