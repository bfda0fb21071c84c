"""``mixq demo [--target cortex-m7] [--samples N] [--json]`` (what ``make demo`` runs).

Deploys the bundled default model (models/fmnist_dsconv_int8.tflite, a depthwise-separable CNN
trained on Fashion-MNIST) with ``mixq deploy --run``: the int8 baseline and the mixq deployment
(calibrated on models/fmnist_calib.npz) are generated, built and run in QEMU. Prints a short
table: peak SRAM, flash, instructions, bit-exactness, and top-1 accuracy on the Fashion-MNIST
test set (Python reference of each graph, which the emulated runs match bit for bit) with the
top-1 agreement between the two.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import MixqError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "fmnist_dsconv_int8.tflite"
DEFAULT_CALIB = REPO / "models" / "fmnist_calib.npz"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="deploy the bundled Fashion-MNIST model: int8 baseline vs mixq",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--target", default="cortex-m7", choices=("cortex-m4", "cortex-m7"))
    p.add_argument("--samples", type=int, default=1000, help="test images for the accuracy figures (default 1000)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    p.add_argument("-o", "--output-dir", metavar="DIR", help="default build/demo")
    p.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[mixq demo] {message}", file=sys.stderr, flush=True)


def accuracy(result, samples: int) -> dict:
    """Top-1 accuracy of both graphs on Fashion-MNIST test images, and their agreement."""
    import numpy as np

    from ..datasets import fashion_mnist_available, load_fashion_mnist, preprocess
    from ..deploy import KERNEL_REFERENCE
    from ..reference.interpreter import Interpreter

    if not fashion_mnist_available():
        return {"note": "Fashion-MNIST not installed (Debian package dataset-fashion-mnist)"}
    images, labels = load_fashion_mnist("test")
    images, labels = images[:samples], labels[:samples]
    t = result.int8.graph.tensors[result.int8.graph.inputs[0]]
    scale, zp = t.quant.scalar()
    x = preprocess(images, scale, zp)
    preds = {}
    for v in (result.int8, result.mixq):
        y = Interpreter(v.graph, KERNEL_REFERENCE).run([x])[0]
        preds[v.name] = y.reshape(y.shape[0], -1).argmax(axis=1)
    return {"images": int(len(labels)),
            "int8_top1": float(np.mean(preds["int8"] == labels)),
            "mixq_top1": float(np.mean(preds["mixq"] == labels)),
            "top1_agreement": float(np.mean(preds["int8"] == preds["mixq"]))}


def run(args: argparse.Namespace) -> int:
    from ..deploy import deploy

    if not DEFAULT_MODEL.is_file():
        raise MixqError(f"the demo model {DEFAULT_MODEL} is missing")
    out = Path(args.output_dir) if args.output_dir else REPO / "build" / "demo"
    result = deploy(DEFAULT_MODEL, args.target, calib=DEFAULT_CALIB if DEFAULT_CALIB.is_file() else None,
                    run=True, out_dir=out, progress=_progress)
    _progress(f"accuracy on {args.samples} Fashion-MNIST test images (Python reference of each graph)")
    acc = accuracy(result, args.samples)
    data = result.to_json()
    data["accuracy"] = acc
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    b = data["baselines"]

    def ratio(a, m):
        return f"{a / m:.2f}x" if a and m else "-"

    rows = [
        ("peak SRAM (arena, B)", b["int8_peak_sram_bytes"], data["peak_sram_bytes"]),
        ("flash (B)", b["int8_flash_bytes"], data["flash_bytes"]),
        ("instructions", b["int8_instructions"], data["instructions"]),
    ]
    print(f"\n{DEFAULT_MODEL.name} on {args.target} (QEMU {data['device_memory']['board']})")
    print(f"{'':24}{'int8 baseline':>16}{'mixq':>16}{'int8/mixq':>12}")
    for name, a, m in rows:
        print(f"{name:24}{a:>16,}{m:>16,}{ratio(a, m):>12}")
    print(f"{'bit-exact (emulated)':24}{str(b['int8_bit_exact']):>16}{str(data['bit_exact']):>16}")
    if "int8_top1" in acc:
        print(f"{'top-1 accuracy':24}{acc['int8_top1']:>16.4f}{acc['mixq_top1']:>16.4f}")
        print(f"{'top-1 agreement':24}{'':>16}{acc['top1_agreement']:>16.4f}   ({acc['images']} test images)")
    else:
        print(acc["note"])
    if b["tflm_arena_bytes"]:
        print(f"TFLM arena for the same model: {b['tflm_arena_bytes']:,} B ({b['tflm_arena_source']})")
    print(f"report: {data['report']}")
    return 0 if (result.mixq.bit_exact and result.int8.bit_exact) else 1
