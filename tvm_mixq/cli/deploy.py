"""``mixq deploy MODEL.tflite --target cortex-m4|cortex-m7 [--pass-config mixq.KEY=VAL ...]
[--calib DATA.npz] [--inputs IN.npz --outputs OUT.npz] [--run] [--json] [-o DIR]``.

Plans the model (mixed precision from ``--calib``), generates C for it and for the int8 baseline
(``mixq.enable=0``) with the same generator, refuses a model that cannot fit the target's memory
before building, builds both firmwares for the target's QEMU board and, with ``--run``, runs them:
outputs are compared bit for bit with the Python reference of the same graph, instructions are
counted per layer and in total. Writes an HTML report with PNG figures. Progress goes to stderr;
``--json`` prints the DESIGN section 4 keys on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import MixqError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("deploy", help="generate, build and run a model on an emulated Cortex-M",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("model", metavar="MODEL.tflite")
    p.add_argument("--target", default="cortex-m7", choices=("cortex-m4", "cortex-m7"))
    p.add_argument("--pass-config", action="append", default=[], metavar="mixq.KEY=VAL",
                   help="mixq.* option (repeatable), e.g. mixq.enable=0 or mixq.bits=8,4")
    p.add_argument("--calib", metavar="DATA.npz", help="calibration samples (input_0, leading sample axis)")
    p.add_argument("--inputs", metavar="IN.npz", help="inputs to run (input_0..); random when omitted")
    p.add_argument("--outputs", metavar="OUT.npz", help="write the outputs (output_0..) of the mixq deployment")
    p.add_argument("--run", action="store_true", help="run both firmwares in QEMU")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("-o", "--output-dir", metavar="DIR", help="where to write C, firmware and report "
                   "(default build/deploy/<model>-<target>)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--no-tflm", action="store_true", help="do not measure TFLM's arena")
    p.set_defaults(func=run)


def progress(message: str) -> None:
    print(f"[mixq deploy] {message}", file=sys.stderr, flush=True)


def parse_options(items: list[str]):
    """``--pass-config`` strings -> MixqOptions (the shared parser of tvm_mixq.options)."""
    from ..options import MixqOptions

    return MixqOptions.from_strings(items)


def run(args: argparse.Namespace) -> int:
    from ..deploy import deploy

    if args.outputs and not args.inputs:
        raise MixqError("--outputs needs --inputs")
    options = parse_options(args.pass_config)
    result = deploy(args.model, args.target, options, calib=args.calib, inputs_path=args.inputs,
                    outputs_path=args.outputs, run=args.run, out_dir=args.output_dir, report=not args.no_report,
                    with_tflm=not args.no_tflm, progress=progress)
    data = result.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        b = data["baselines"]
        print(f"{result.model_path.name} on {result.target}: arena {data['peak_sram_bytes']:,} B "
              f"(int8 {b['int8_peak_sram_bytes']:,} B, TFLM {b['tflm_arena_bytes'] or '-'} B), "
              f"flash {data['flash_bytes']:,} B (int8 {b['int8_flash_bytes']:,} B)")
        if args.run:
            print(f"instructions {data['instructions']:,} (int8 {b['int8_instructions']:,}, "
                  f"{b['int8_instructions'] / max(data['instructions'], 1):.2f}x); bit-exact: {data['bit_exact']} "
                  f"(int8: {b['int8_bit_exact']})")
        if data["report"]:
            print(f"report: {data['report']}")
    if args.run and not (result.mixq.bit_exact and result.int8.bit_exact):
        return 1
    return 0
