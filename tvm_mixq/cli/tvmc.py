"""``tvmc``: the tvmc-compatible command line (TVM 0.27 ships none).

Commands, with tvmc's flag names::

    tvmc compile MODEL.tflite --target "c -mcpu=cortex-m7" [--pass-config mixq.KEY=VAL ...]
                 [--output-format mlf] --output OUT.tar
    tvmc micro create-project [--force] DIR OUT.tar {host,qemu_cortex_m4,qemu_cortex_m7,export}
                 [--project-option KEY=VALUE ...]
    tvmc micro build [--force] DIR [TEMPLATE]
    tvmc micro flash DIR [TEMPLATE]
    tvmc run --device micro DIR [--inputs X.npz] [--outputs OUT.npz] [--print-top N]
                 [--fill-mode zeros|ones|random]

Everything else tvmc had (``tune``, ``--device cpu``, ``--output-format so``, the graph
executor, ...) is refused with one line and exit code 2, as is any bad input; internal errors
exit 1 (``MIXQ_DEBUG=1`` shows the traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import MixqError
from .main import _Parser, run_guarded

log = logging.getLogger("tvm_mixq")

#: tvmc commands this driver does not offer, with the reason given to the user.
REFUSED_COMMANDS = {
    "tune": "tuning (AutoTVM/MetaSchedule) is not offered: the mixq kernels are hand-written and the "
            "plan comes from --pass-config mixq.*",
}
OUTPUT_FORMATS = ("mlf",)
EXECUTORS = ("aot",)
RUNTIMES = ("crt",)
DEVICES = ("micro",)


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a TFLite model into a Model Library Format archive")
    p.add_argument("model", metavar="MODEL", help="int8 .tflite model")
    p.add_argument("--target", help='TVM target string, e.g. "c -mcpu=cortex-m7", "c -mcpu=cortex-m4", "c" (host)')
    for attr in ("mcpu", "model", "keys", "march", "mattr"):
        p.add_argument(f"--target-c-{attr}", dest=f"target_c_{attr.replace('-', '_')}", metavar="VALUE",
                       help=f"-{attr} of the c target" if attr == "mcpu" else argparse.SUPPRESS)
    p.add_argument("--pass-config", action="append", default=[], metavar="KEY=VALUE",
                   help="PassContext option: mixq.* (e.g. mixq.enable=0, mixq.bits=8,4) or one of TVM's")
    p.add_argument("--output-format", default="mlf", help="mlf (Model Library Format-like tar; the only format)")
    p.add_argument("-o", "--output", default="module.tar", help="output archive (default module.tar)")
    p.add_argument("--model-format", default="tflite", help="tflite (the only format)")
    p.add_argument("--executor", default="aot", help="aot: one invoke function over a static arena (the only one)")
    p.add_argument("--runtime", default="crt", help="crt (the only one)")
    p.add_argument("--module-name", default=None, help="name of the generated C API (default: the model file's)")
    p.add_argument("--opt-level", type=int, default=3, choices=range(0, 4), metavar="{0,1,2,3}",
                   help="PassContext opt_level")
    p.set_defaults(func=_cmd_compile)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a micro project (host program or QEMU firmware)")
    p.add_argument("path", metavar="PROJECT_DIR", help="directory made by tvmc micro create-project")
    p.add_argument("--device", default=None, help="micro (the only device; the project selects host or QEMU)")
    p.add_argument("--inputs", default=None, help=".npz with one array per model input (tensor name or input_<i>)")
    p.add_argument("--outputs", default=None, help=".npz to write (arrays output_<i>)")
    p.add_argument("--print-top", type=int, default=None, metavar="N", help="print the N largest values of output 0")
    p.add_argument("--fill-mode", default="random", help="inputs without --inputs: zeros, ones or random")
    p.add_argument("--print-time", action="store_true",
                   help="also print the instructions of every layer (QEMU; the count per inference is always shown)")
    p.add_argument("--project-option", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="timeout=SECONDS")
    p.set_defaults(func=_cmd_run)


def _add_micro(sub: argparse._SubParsersAction) -> None:
    from ..tvmc.project import TEMPLATES

    micro = sub.add_parser("micro", help="micro projects: create-project, build, flash")
    msub = micro.add_subparsers(dest="micro_command", metavar="COMMAND", parser_class=_Parser)
    msub.required = True
    templates = ", ".join(f"{t.name} ({t.help})" for t in TEMPLATES.values())
    p = msub.add_parser("create-project", help="create a project from a compiled archive")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing project in PROJECT_DIR")
    p.add_argument("project_dir", metavar="PROJECT_DIR")
    p.add_argument("mlf", metavar="MLF", help="archive written by tvmc compile")
    p.add_argument("template", metavar="TEMPLATE", help=templates)
    p.add_argument("--project-option", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_create)
    for name, func, hlp in (("build", _cmd_build, "build the project"),
                            ("flash", _cmd_flash, "stage the firmware for the emulator (host: no-op)")):
        p = msub.add_parser(name, help=hlp)
        if name == "build":
            p.add_argument("-f", "--force", action="store_true", help="remove build/ first")
        p.add_argument("project_dir", metavar="PROJECT_DIR")
        p.add_argument("template", metavar="TEMPLATE", nargs="?", default=None,
                       help="the project's template (checked when given)")
        p.add_argument("--project-option", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
        p.set_defaults(func=func)


def build_parser(prog: str = "tvmc") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="tvmc-compatible driver of tvm_mixq (TVM 0.27 ships no tvmc).")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress to stderr (-vv: debug)")
    parser.add_argument("--version", action="store_true", help="print the versions and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_compile(sub)
    _add_run(sub)
    _add_micro(sub)
    return parser


# ---------------------------------------------------------------------------------------------


def _one_of(value: str, allowed: Sequence[str], flag: str, why: str) -> None:
    if value not in allowed:
        raise MixqError(f"{flag} {value}: not offered ({why}); use {' or '.join(allowed)}")


def _cmd_compile(args: argparse.Namespace) -> int:
    from ..tvmc.compiler import compile_model
    from ..tvmc.target import parse_target

    _one_of(args.output_format, OUTPUT_FORMATS, "--output-format",
            "TVM 0.27 builds no runtime module for an MCU; the generated C goes into an MLF archive")
    _one_of(args.model_format, ("tflite",), "--model-format", "the project imports int8 TFLite models")
    _one_of(args.executor, EXECUTORS, "--executor", "the generated C is one invoke over a static arena")
    _one_of(args.runtime, RUNTIMES, "--runtime", "the generated C needs no TVM runtime")
    if args.target is None:
        raise MixqError('--target is required, e.g. --target "c -mcpu=cortex-m7"')
    extra = {k[len("target_c_"):]: v for k, v in vars(args).items() if k.startswith("target_c_")}
    target = parse_target(args.target, extra)
    result = compile_model(args.model, target, args.output, args.pass_config, module_name=args.module_name,
                           opt_level=args.opt_level)
    meta = result.metadata
    plan = meta.get("plan") or {}
    print(f"wrote {result.output}: {meta['prefix']} for {target.core}, {len(meta['layers'])} layers, "
          f"arena {meta['memory']['arena_size_bytes']:,} B, constants {meta['flash']['constant_bytes']:,} B"
          + (f", plan peak {plan['peak_sram_bytes']:,} B" if plan else ""))
    return 0


def _cmd_create(args: argparse.Namespace) -> int:
    from ..tvmc.project import create_project

    project = create_project(args.project_dir, args.mlf, args.template, args.project_option, force=args.force)
    print(f"created {project.template.name} project in {project.path}")
    return 0


def _no_options(args: argparse.Namespace) -> None:
    if args.project_option:
        raise MixqError("--project-option is read at create-project; re-create the project to change "
                        f"{', '.join(args.project_option)}")


def _cmd_build(args: argparse.Namespace) -> int:
    from ..tvmc.project import build_project

    _no_options(args)
    project = build_project(args.project_dir, args.template, force=args.force)
    built = project.info["built"]
    extra = ""
    if "flash_bytes" in built:
        extra = f" (flash {built['flash_bytes']:,} B, static RAM {built['static_ram_bytes']:,} B)"
    print(f"built {project.artefact}{extra}")
    return 0


def _cmd_flash(args: argparse.Namespace) -> int:
    from ..tvmc.project import flash_project

    _no_options(args)
    _project, message = flash_project(args.project_dir, args.template)
    print(message)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..tvmc.runner import load_inputs, run_project, save_outputs

    if args.device is None:
        raise MixqError("only --device micro is offered (there is no TVM runtime module to run on the CPU); "
                        "create a host project with tvmc micro create-project DIR OUT.tar host")
    _one_of(args.device, DEVICES, "--device", "the generated C runs in a micro project, host or QEMU")
    if args.print_top is not None and args.print_top < 1:
        raise MixqError("--print-top must be >= 1")
    timeout = None
    for item in args.project_option:
        key, _, value = item.partition("=")
        if key != "timeout":
            raise MixqError(f"--project-option {item!r}: tvmc run takes only timeout=SECONDS")
        try:
            timeout = float(value)
        except ValueError:
            raise MixqError(f"--project-option {item!r}: expected timeout=SECONDS") from None
    from ..tvmc.project import load_project

    project = load_project(args.path)
    if args.outputs is not None and not str(args.outputs).endswith(".npz"):
        raise MixqError(f"--outputs {args.outputs}: the file name must end in .npz")
    inputs = load_inputs(args.inputs, project.info["io"]["inputs"]) if args.inputs else None
    outcome = run_project(args.path, inputs, fill_mode=args.fill_mode, timeout=timeout)
    if args.outputs:
        save_outputs(args.outputs, outcome.outputs)
    io_out = project.info["io"]["outputs"]
    if args.print_top:
        out0 = outcome.outputs[0]
        t = io_out[0]
        rows = out0.reshape(outcome.samples, -1) if outcome.samples > 1 else out0.reshape(1, -1)
        for s, row in enumerate(rows):
            n = min(args.print_top, row.size)
            order = np.argsort(-row.astype(np.float64), kind="stable")[:n]
            head = f"output_0 ({t['name']})" + (f" sample {s}" if outcome.samples > 1 else "") + f": top {n}"
            print(head)
            for rank, idx in enumerate(order):
                value = row[idx]
                deq = ""
                if t.get("scale") is not None and row.dtype.kind in "iu":
                    deq = f"  ({(float(value) - t['zero_point']) * t['scale']:.6g})"
                print(f"  {rank + 1:>3}  index {int(idx):>6}  value {value}{deq}")
    elif not args.outputs:
        with np.printoptions(threshold=64, edgeitems=8):
            for i, (t, o) in enumerate(zip(io_out, outcome.outputs)):
                print(f"output_{i} ({t['name']}) {o.dtype} {list(o.shape)}:\n{o}")
    if outcome.instructions:
        per = outcome.instructions
        mean = sum(per) / len(per)
        print(f"instructions per inference ({project.info['machine']}, QEMU -icount, resolution 40): "
              + (f"{per[0]:,}" if len(per) == 1 else f"mean {mean:,.0f}, min {min(per):,}, max {max(per):,} over "
                 f"{len(per)} samples"))
    if args.print_time and outcome.layer_instructions:
        names = [f"{r['op_index']}:{r['op']}" for r in _layers(project.path)]
        for i, n in enumerate(outcome.layer_instructions):
            label = names[i] if i < len(names) else f"layer {i}"
            print(f"  layer {i:>3} {label:<28} {n // max(outcome.samples, 1):>12,} instructions")
    if args.outputs:
        print(f"wrote {args.outputs}: {len(outcome.outputs)} outputs, {outcome.samples} samples")
    return 0


def _layers(project_path: Path) -> list[dict]:
    """The ``layers`` rows of the project's archive metadata (names for the per-layer counts)."""
    import json

    for meta in (project_path / "model" / "metadata.json", project_path / "metadata.json"):
        try:
            return list(json.loads(meta.read_text()).get("layers", []))
        except (OSError, ValueError):
            continue
    return []


def main(argv: Optional[Sequence[str]] = None, prog: str = "tvmc") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in REFUSED_COMMANDS:
        print(f"{prog}: error: {first}: {REFUSED_COMMANDS[first]}", file=sys.stderr)
        return 2
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors (one line, 2) and --help (0)
        return int(exc.code or 0)
    level = logging.WARNING if args.verbose == 0 else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(name)s: %(message)s")
    if args.version:
        from .. import __version__

        print(f"tvm_mixq {__version__} (tvmc-compatible driver)")
        return 0
    if args.command is None:
        print(f"{prog}: error: a command is required: compile, micro or run", file=sys.stderr)
        return 2
    return run_guarded(lambda: args.func(args), prog)


if __name__ == "__main__":
    sys.exit(main())
