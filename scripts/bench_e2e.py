#!/usr/bin/env python3
"""End-to-end benchmark of issue "end-to-end deployment": `mixq deploy` on the MLPerf Tiny KWS and
VWW-96 models (and the bundled Fashion-MNIST model), emulated Cortex-M7, at several operating points.

For every (model, configuration) one `mixq deploy --run` (the int8 baseline of the same code
generator and the mixq plan, both built and run in QEMU, instructions per inference, bit-exact with
the Python reference of each graph), then the accuracy of both graphs in the Python reference on an
evaluation set:

* KWS: calibration on the synthetic spoken-keyword set's ``calib`` split, evaluation on its
  ``test`` split (labelled: top-1 of int8 and mixq, and their top-1 agreement), see
  :mod:`tvm_mixq.kws_data`;
* VWW-96: calibration on 200 Fashion-MNIST training images and evaluation on 300 test images,
  resized to 96x96x3 (no person data can be had offline: agreement only, a weak proxy), always at
  ``mixq.sram_limit_kb=36`` (the memory target: 36,864 B with the input counted);
* fmnist: the bundled model and its calibration images, 1,000 labelled test images.

Configurations: ``default`` (the accuracy guard at its default), ``unguarded``
(``mixq.min_agreement=0``: the anchored accuracy budget as it is) and ``budget-0.667`` (the search
lowers bitwidths until the measured cost model says 1.5x fewer instructions than int8, and deploy
keeps the fastest schedule: ``mixq.objective=speed``) and ``4bit-0.667`` (the same budget with 8 and 4
bits only, 2-bit feature maps costing these models most of their accuracy, and the default
``mixq.objective=balanced``: the fastest schedule may hold a larger arena than a nearly as fast one).

Usage::

    python scripts/bench_e2e.py [--models kws,vww,fmnist] [--configs default,unguarded,budget-0.667,4bit-0.667]
                                [--json] [--out e2e.json] [--target cortex-m7]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tvm_mixq.deploy import deploy  # noqa: E402
from tvm_mixq.errors import MixqError  # noqa: E402
from tvm_mixq.options import MixqOptions  # noqa: E402
from tvm_mixq.quant.execute import BatchRunner  # noqa: E402
from tvm_mixq.reader import read_tflite  # noqa: E402

log = logging.getLogger("bench_e2e")

MLPERF = ROOT / "models" / "mlperf_tiny"
CONFIGS: dict[str, list[str]] = {
    "default": [],
    "unguarded": ["mixq.min_agreement=0"],
    "budget-0.667": ["mixq.cost_budget=0.667", "mixq.objective=speed"],
    "4bit-0.667": ["mixq.bits=8,4", "mixq.cost_budget=0.667"],
}
#: QEMU runs this many evaluation samples (bit-exactness; instructions are those of sample 0).
RUN_SAMPLES = 4


def _resized_fmnist(split: str, n: int, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    from tvm_mixq.datasets import load_fashion_mnist

    images, labels = load_fashion_mnist(split)
    h, w, c = shape[1], shape[2], shape[3]
    rows = (np.arange(h) * images.shape[1] // h).astype(np.int64)
    cols = (np.arange(w) * images.shape[2] // w).astype(np.int64)
    x = images[:n][:, rows][:, :, cols].astype(np.int16) - 128
    return np.repeat(x[..., None], c, axis=3).astype(np.int8), labels[:n]


def kws_data() -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    from tvm_mixq.kws_data import load_keywords

    calib, _ = load_keywords("calib")
    x, y = load_keywords("test")
    return calib, x, y


def vww_data() -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    g = read_tflite(MLPERF / "vww_96_int8.tflite")
    shape = g.tensors[g.inputs[0]].shape
    calib, _ = _resized_fmnist("train", 200, shape)
    x, _ = _resized_fmnist("test", 300, shape)
    return calib, x, None


def fmnist_data() -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    from tvm_mixq.datasets import load_fashion_mnist, preprocess

    g = read_tflite(ROOT / "models" / "fmnist_dsconv_int8.tflite")
    s, zp = g.tensors[g.inputs[0]].quant.scalar()
    images, labels = load_fashion_mnist("test")
    calib = np.load(ROOT / "models" / "fmnist_calib.npz")["input_0"]
    return calib, preprocess(images[:1000], s, zp), labels[:1000]


#: name -> (model, data, pass-config every configuration adds)
MODELS: dict[str, tuple[Path, Callable[[], tuple], list[str]]] = {
    "kws": (MLPERF / "kws_ref_model.tflite", kws_data, []),
    "vww": (MLPERF / "vww_96_int8.tflite", vww_data, ["mixq.sram_limit_kb=36"]),
    "fmnist": (ROOT / "models" / "fmnist_dsconv_int8.tflite", fmnist_data, []),
}


def _top1(y: np.ndarray) -> np.ndarray:
    return np.asarray(y).reshape(y.shape[0], -1).argmax(axis=1)


def measure(name: str, config: str, work: Path, target: str) -> dict[str, Any]:
    path, data_fn, extra = MODELS[name]
    calib, x, labels = data_fn()
    np.savez(work / f"{name}_calib.npz", input_0=calib)
    np.savez(work / f"{name}_run.npz", input_0=x[:RUN_SAMPLES])
    options = MixqOptions.from_strings(extra + CONFIGS[config])
    t0 = time.perf_counter()
    res = deploy(path, target, options, calib=work / f"{name}_calib.npz", inputs_path=work / f"{name}_run.npz",
                 run=True, out_dir=work / f"{name}-{config}", report=False,
                 progress=lambda msg: log.info("%s/%s: %s", name, config, msg))
    seconds = time.perf_counter() - t0
    ref = _top1(BatchRunner(res.int8.graph).run(x)[0])
    got = _top1(BatchRunner(res.mixq.graph).run(x)[0])
    j = res.to_json()
    row = {
        "model": name, "config": config, "pass_config": extra + CONFIGS[config],
        "int8_instructions": j["baselines"]["int8_instructions"], "mixq_instructions": j["instructions"],
        "speedup": j["baselines"]["int8_instructions"] / j["instructions"] if j["instructions"] else None,
        "int8_arena_bytes": j["baselines"]["int8_peak_sram_bytes"], "mixq_arena_bytes": j["peak_sram_bytes"],
        "tflm_arena_bytes": j["baselines"]["tflm_arena_bytes"],
        "int8_flash_bytes": j["baselines"]["int8_flash_bytes"], "mixq_flash_bytes": j["flash_bytes"],
        "bit_exact": bool(j["bit_exact"]) and bool(j["baselines"]["int8_bit_exact"]),
        "eval_samples": int(x.shape[0]), "agreement": float(np.mean(got == ref)),
        "int8_top1": float(np.mean(ref == labels)) if labels is not None else None,
        "mixq_top1": float(np.mean(got == labels)) if labels is not None else None,
        "sub_byte_layers": sum(1 for layer in j["layers"] if layer["w_bits"] and layer["w_bits"] < 8),
        "layers": j["layers"], "int8_layer_instructions": j["baselines"]["int8_layer_instructions"],
        "schedules": j["schedules"], "schedule": j.get("schedule"), "deploy_seconds": round(seconds, 1),
    }
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':7s} {'config':13s} {'int8 instr':>12s} {'mixq instr':>12s} {'int8/mixq':>9s} "
            f"{'arena int8':>10s} {'arena mixq':>10s} {'TFLM':>8s} {'exact':>5s} {'top-1 int8':>10s} "
            f"{'top-1 mixq':>10s} {'agree':>6s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def pct(v: Optional[float]) -> str:
            return f"{100 * v:.1f}%" if v is not None else "-"
        lines.append(f"{r['model']:7s} {r['config']:13s} {r['int8_instructions']:>12,} {r['mixq_instructions']:>12,} "
                     f"{r['speedup']:>8.3f}x {r['int8_arena_bytes']:>10,} {r['mixq_arena_bytes']:>10,} "
                     f"{r['tflm_arena_bytes'] or 0:>8,} {str(r['bit_exact']):>5s} {pct(r['int8_top1']):>10s} "
                     f"{pct(r['mixq_top1']):>10s} {r['agreement']:>6.3f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="kws,vww,fmnist")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--target", default="cortex-m7", choices=("cortex-m4", "cortex-m7"))
    p.add_argument("--json", action="store_true", help="print the JSON on stdout instead of the table")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    models = [m for m in args.models.split(",") if m]
    configs = [c for c in args.configs.split(",") if c]
    for m in models:
        if m not in MODELS:
            print(f"bench_e2e: unknown model {m!r} (one of {', '.join(MODELS)})", file=sys.stderr)
            return 2
    for c in configs:
        if c not in CONFIGS:
            print(f"bench_e2e: unknown configuration {c!r} (one of {', '.join(CONFIGS)})", file=sys.stderr)
            return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="mixq-e2e-") as tmp:
        for m in models:
            for c in configs:
                try:
                    rows.append(measure(m, c, Path(tmp), args.target))
                except MixqError as exc:
                    print(f"bench_e2e: {m}/{c}: {exc}", file=sys.stderr)
                    return 1
                print(f"[bench_e2e] {m}/{c} done", file=sys.stderr)
    result = {"target": args.target, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
