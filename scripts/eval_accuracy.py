#!/usr/bin/env python3
"""Top-1 of mixed-precision plans on the Fashion-MNIST test set, and their cost.

Rows (one per configuration, all on the same patch plan of the int8 model):

* ``float``: the float TFLite model (ai_edge_litert reference kernels);
* ``int8``: the int8 model in the project's reference interpreter (bit-exact with TFLite);
* ``uniform4``: every feature map that can go sub-byte and every layer's weights at 4 bits;
* ``mixq``: VDPC + VDQS at several budgets (fraction of the int8 patch-based BitOPs; ``null``: the
  search stops by itself when no step scores positive), the last one uniform4's BitOPs;
* ``random``: random assignments (several seeds) at the BitOPs of each mixq plan (at or just
  below), with the same outlier patches.

Every sub-byte row quantizes the same way (``--weight-rounding``: Hessian-aware rounding of sub-byte
weights from calibration statistics by default, from the float model's weights when it exists), so
rows differ only in their assignment. The calibration is ``--calib`` (200 training images); nothing is
tuned on the test images.

BitOPs are those of the patch-based schedule (``sum macs * b_in * b_w`` over convolutions and fully
connected layers, halo recomputation included); ``int8_patch_bitops`` is 64 x its MACs. Peak SRAM
comes from the memory planner of :mod:`tvm_mixq.schedule` (its own search, as for the int8 row)
with the row's activation bitwidths; BitOPs are counted on the int8 plan's patch stage.

MLPerf Tiny (``--mlperf``): top-1 agreement of mixq plans with the int8 model. No natural data of
the image tasks exists offline here, so VWW and ResNet-8 take the Fashion-MNIST *test* images
(calibration: *training* images), resized by nearest neighbour to the model input and replicated
over channels, with the pixel p mapped to the int8 value p - 128 (VWW's input is [0, 1] with zero
point -128, ResNet-8's [0, 255] with zero point -128, so that is the natural image encoding of both).
KWS takes the synthetic spoken-keyword set of :mod:`tvm_mixq.kws_data` (espeak-ng voices through the
model's own MFCC front end): calibration from its ``calib`` split, agreement and top-1 (of the float
model, the int8 model and the mixq plan, overall and per class) on its ``test`` split, whose voices
calibration never hears. Without espeak-ng the KWS entry is skipped with the reason. The
anomaly-detection autoencoder has no classes and is left out.

Usage::

    python scripts/eval_accuracy.py [--json] [--limit N] [--plot eval_accuracy.png] [--mlperf]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tvm_mixq.datasets import load_fashion_mnist, preprocess, preprocess_float  # noqa: E402
from tvm_mixq.errors import MixqError  # noqa: E402
from tvm_mixq.kws_data import LABELS as KWS_LABELS  # noqa: E402
from tvm_mixq.kws_data import espeak_available, keyword_features, quantize_features  # noqa: E402
from tvm_mixq.graph import Graph  # noqa: E402
from tvm_mixq.plan import TensorPrecision  # noqa: E402
from tvm_mixq.quant.assign import MixedPrecision, assign_precision, realise  # noqa: E402
from tvm_mixq.quant.calibration import Calibration, calibrate  # noqa: E402
from tvm_mixq.quant.cost import CostEvaluator  # noqa: E402
from tvm_mixq.quant.execute import BatchRunner  # noqa: E402
from tvm_mixq.quant.float_weights import float_weights_for  # noqa: E402
from tvm_mixq.quant.vdpc import classify_patches  # noqa: E402
from tvm_mixq.quant.vdqs import random_assignment, uniform_assignment  # noqa: E402
from tvm_mixq.reader import read_tflite  # noqa: E402
from tvm_mixq.schedule.search import plan_memory  # noqa: E402

log = logging.getLogger("eval_accuracy")

MODELS = REPO / "models"
DEFAULT_BUDGETS = (1 / 2.2, 0.4)
MLPERF = {
    "vww": MODELS / "mlperf_tiny" / "vww_96_int8.tflite",
    "resnet": MODELS / "mlperf_tiny" / "pretrainedResnet_quant.tflite",
    "kws": MODELS / "mlperf_tiny" / "kws_ref_model.tflite",
}
KWS_FLOAT = MODELS / "mlperf_tiny" / "kws_ref_model_float32.tflite"


def float_predict(path: Path, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Top-1 classes of the float model (ai_edge_litert's reference kernels) for float inputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    preds, resized = [], None
    for start in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[start:start + batch], dtype=np.float32)
        if resized != len(chunk):
            interp.resize_tensor_input(inp["index"], list(chunk.shape))
            interp.allocate_tensors()
            resized = len(chunk)
        interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        preds.append(interp.get_tensor(out["index"]).argmax(-1))
    return np.concatenate(preds)


def float_top1(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 of the float Fashion-MNIST model."""
    return float((float_predict(path, preprocess_float(images)) == labels).mean())


def peak_sram(graph: Graph, plan: Any, mp: Optional[MixedPrecision]) -> Optional[int]:
    """Arena peak the memory planner finds (its own search, as for the int8 plan) with the row's
    activation bitwidths (outlier patches' 8-bit tiles are not sized apart)."""
    if mp is None:
        return int(plan.peak)
    precision = {t.index: TensorPrecision(t.index, t.bits, t.signed) for t in mp.graph.tensors if not t.is_const}
    try:
        return int(plan_memory(mp.graph, None, precision).peak)
    except MixqError as exc:  # pragma: no cover - planner refusal is reported, not fatal
        log.warning("memory planner: %s", exc)
        return None


def top1(runner: Any, x: np.ndarray, labels: np.ndarray) -> float:
    return float((runner.run(x)[0].argmax(-1) == labels).mean())


def resize_nearest(images: np.ndarray, h: int, w: int, channels: int) -> np.ndarray:
    """uint8 [N, 28, 28] -> int8 [N, h, w, channels]: nearest-neighbour resize, value p - 128."""
    rows = (np.arange(h) * images.shape[1] // h).astype(np.int64)
    cols = (np.arange(w) * images.shape[2] // w).astype(np.int64)
    r = images[:, rows][:, :, cols].astype(np.int16) - 128
    return np.repeat(r[..., None], channels, axis=3).astype(np.int8)


def plan_and_agree(g: Graph, calib_x: np.ndarray, x: np.ndarray, budget: float,
                   args: argparse.Namespace) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Search a mixq plan for ``g`` at ``budget`` (calibration ``calib_x``), run it and the int8 model
    on ``x``: the plan's summary with its top-1 agreement, and both models' top-1 classes."""
    t0 = time.perf_counter()
    plan = plan_memory(g)
    mp = assign_precision(g, plan, calib_inputs=calib_x, bits=args.bits, outlier_k=args.outlier_k,
                          lambda_=args.lambda_, cost_budget=budget, **search_args(args))
    search_s = time.perf_counter() - t0
    ref = BatchRunner(g).run(x, batch=100)[0].argmax(-1)
    got = mp.runner(plan).run(x, batch=100)[0].argmax(-1)
    summary = {
        "samples": int(len(x)),
        "budget": budget,
        "bitops": mp.bitops,
        "int8_patch_bitops": mp.int8_bitops,
        "bitops_reduction": mp.bitops_reduction,
        "outlier_patches": len(mp.assignment.outlier_patches),
        "agreement": float((ref == got).mean()),
        "search_seconds": search_s,
    }
    return summary, ref, got


def mlperf_agreement(name: str, path: Path, budget: float, limit: int, calib_n: int,
                     train: np.ndarray, test: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    g = read_tflite(path)
    shape = g.tensors[g.inputs[0]].shape
    calib_x = resize_nearest(train[:calib_n], shape[1], shape[2], shape[3])
    x = resize_nearest(test[:limit], shape[1], shape[2], shape[3])
    summary, _, _ = plan_and_agree(g, calib_x, x, budget, args)
    return {
        "model": name,
        "inputs": f"Fashion-MNIST test images resized to {shape[1]}x{shape[2]}x{shape[3]} (nearest, p-128)",
        "calibration": f"{calib_n} Fashion-MNIST training images, same mapping",
        **summary,
    }


def kws_agreement(path: Path, budget: float, per_class: Optional[int], args: argparse.Namespace) -> dict[str, Any]:
    """KWS on the synthetic spoken-keyword set: calibration from its calib split, then on its test
    split top-1 of the float model, the int8 model and the mixq plan (overall and per class), and
    the plan's agreement with the int8 model."""
    if not espeak_available():
        reason = "espeak-ng not installed (Debian package espeak-ng): no spoken-keyword set"
        log.warning("MLPerf kws skipped: %s", reason)
        return {"model": "kws", "skipped": reason}
    g = read_tflite(path)
    scale, zero_point = g.tensors[g.inputs[0]].quant.scalar()
    t0 = time.perf_counter()
    calib_f, _ = keyword_features("calib")
    test_f, labels = keyword_features("test", per_class)
    data_s = time.perf_counter() - t0
    calib_x = quantize_features(calib_f, scale, zero_point)
    summary, ref, got = plan_and_agree(g, calib_x, quantize_features(test_f, scale, zero_point), budget, args)
    preds = {"int8": ref, "mixq": got}
    if KWS_FLOAT.exists():
        preds = {"float": float_predict(KWS_FLOAT, test_f), **preds}
    return {
        "model": "kws",
        "inputs": "synthetic spoken keywords, test split (espeak-ng voices, MLPerf Tiny MFCC front end)",
        "calibration": f"{len(calib_x)} clips of the calib split (voices disjoint from the test split)",
        **summary,
        "top1": {k: float((p == labels).mean()) for k, p in preds.items()},
        "top1_per_class": {name: {k: float((p[labels == c] == c).mean()) for k, p in preds.items()}
                           for c, name in enumerate(KWS_LABELS)},
        "data_seconds": data_s,
    }


def search_args(args: argparse.Namespace) -> dict[str, Any]:
    """The search options of the command line, as :func:`assign_precision` keywords."""
    return {"outlier_rule": args.outlier_rule, "outlier_percentile": args.outlier_percentile,
            "sensitivity": args.sensitivity, "weight_rounding": args.weight_rounding}


def plot(rows: list[dict[str, Any]], int8_bitops: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"float": "black", "int8": "tab:blue", "uniform4": "tab:orange", "random": "tab:gray",
               "mixq": "tab:red"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, colour in colours.items():
        sel = [r for r in rows if r["name"] == name]
        if not sel:
            continue
        xs_b = [r["bitops"] / 1e6 if r["bitops"] is not None else None for r in sel]
        xs_m = [r["peak_sram_bytes"] / 1024 if r["peak_sram_bytes"] is not None else None for r in sel]
        ys = [100 * r["top1"] for r in sel]
        pts = [(a, y) for a, y in zip(xs_b, ys) if a is not None]
        if pts:
            axes[0].scatter(*zip(*pts), label=name, color=colour, marker="x" if name == "random" else "o")
        pts = [(a, y) for a, y in zip(xs_m, ys) if a is not None]
        if pts:
            axes[1].scatter(*zip(*pts), label=name, color=colour, marker="x" if name == "random" else "o")
        if name == "float":
            for ax in axes:
                ax.axhline(ys[0], color=colour, lw=0.8, ls=":", label="float")
    axes[0].axvline(int8_bitops / 2.2 / 1e6, color="tab:green", lw=0.8, ls="--", label="int8 / 2.2")
    axes[0].set_xlabel("BitOPs (millions, patch-based)")
    axes[1].set_xlabel("peak activation SRAM (KiB)")
    for ax in axes:
        ax.set_ylabel("top-1 on Fashion-MNIST test (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[0].legend(uniq.values(), uniq.keys(), fontsize=8)
    fig.suptitle("Mixed precision on the bundled Fashion-MNIST DS-CNN")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=MODELS / "fmnist_dsconv_int8.tflite")
    p.add_argument("--float-model", type=Path, default=MODELS / "fmnist_dsconv_float.tflite")
    p.add_argument("--calib", type=Path, default=MODELS / "fmnist_calib.npz")
    p.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    p.add_argument("--budgets", type=float, nargs="*", default=list(DEFAULT_BUDGETS),
                   help="BitOPs budgets as fractions of int8 patch-based BitOPs")
    p.add_argument("--seeds", type=int, default=3, help="random assignments per budget")
    p.add_argument("--bits", default="8,4,2")
    p.add_argument("--outlier-k", dest="outlier_k", type=float, default=3.0)
    p.add_argument("--outlier-rule", dest="outlier_rule", default="percentile", choices=("percentile", "sigma"))
    p.add_argument("--outlier-percentile", dest="outlier_percentile", type=float, default=99.9)
    p.add_argument("--lambda", dest="lambda_", type=float, default=0.5)
    p.add_argument("--sensitivity", default="measured", choices=("measured", "entropy"),
                   help="VDQS accuracy proxy (mixq.sensitivity)")
    p.add_argument("--weight-rounding", dest="weight_rounding", default="hessian", choices=("hessian", "nearest"),
                   help="sub-byte weight rounding (mixq.weight_rounding), for every row")
    p.add_argument("--int8-weights", action="store_true", help="requantize from int8 weights, not the float model")
    p.add_argument("--plot", type=Path, default=Path("eval_accuracy.png"))
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--mlperf", action="store_true", help="also report MLPerf Tiny top-1 agreement")
    p.add_argument("--mlperf-limit", type=int, default=300, help="inputs per MLPerf image model")
    p.add_argument("--kws-per-class", type=int, default=None,
                   help="test clips per KWS label (12 labels; default: the whole test split, 100 each)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.bits = tuple(int(b) for b in args.bits.split(","))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")

    t_start = time.perf_counter()
    g = read_tflite(args.model)
    s, zp = g.tensors[g.inputs[0]].quant.scalar()
    images, labels = load_fashion_mnist("test")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    x = preprocess(images, s, zp)
    calib_x = np.load(args.calib)["input_0"] if args.calib.exists() else None
    plan = plan_memory(g)
    calib: Calibration = calibrate(g, calib_x, plan)
    fw_path = None if args.int8_weights or not args.float_model.exists() else args.float_model
    fw = float_weights_for(g, fw_path) if fw_path is not None else None
    ev = CostEvaluator(g, plan)
    int8_bitops = ev.int8_bitops()
    pc = (classify_patches(calib, plan, args.outlier_k, rule=args.outlier_rule, percentile=args.outlier_percentile)
          if plan.patch_stage is not None else None)

    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def add(name: str, budget: Optional[float], mp: Optional[MixedPrecision], acc: float, extra=None) -> None:
        row = {"name": name, "budget": budget, "bitops": mp.bitops if mp is not None else int8_bitops,
               "peak_sram_bytes": peak_sram(g, plan, mp), "top1": acc}
        if mp is not None:
            row["assignment"] = mp.assignment.histogram()
            row["outlier_patches"] = len(mp.assignment.outlier_patches)
        row.update(extra or {})
        rows.append(row)
        log.warning("%-8s budget=%-6s bitops=%6.2fM (%.2fx) top1=%.4f", name,
                    "-" if budget is None else f"{budget:.3f}", row["bitops"] / 1e6, int8_bitops / row["bitops"], acc)

    if args.float_model.exists():
        t0 = time.perf_counter()
        rows.append({"name": "float", "budget": None, "bitops": None, "peak_sram_bytes": None,
                     "top1": float_top1(args.float_model, images, labels)})
        timings["float"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    add("int8", None, None, top1(BatchRunner(g), x, labels))
    timings["int8_eval"] = time.perf_counter() - t0
    u = realise(g, uniform_assignment(g, calib, 4), calib, plan, fw, weight_rounding=args.weight_rounding)
    add("uniform4", None, u, top1(u.runner(plan), x, labels))
    search_s = []
    # the budgets asked for, VDQS's own stopping point (None), and uniform4's BitOPs for comparison
    for budget in [None] + list(args.budgets) + [u.bitops / int8_bitops]:
        t0 = time.perf_counter()
        mp = assign_precision(g, plan, bits=args.bits, outlier_k=args.outlier_k, lambda_=args.lambda_,
                              cost_budget=budget, float_model=fw_path, calibration=calib, **search_args(args))
        search_s.append(time.perf_counter() - t0)
        add("mixq", budget, mp, top1(mp.runner(plan), x, labels), {"search_seconds": search_s[-1]})
        if budget is None:
            continue
        for seed in range(args.seeds):
            a = random_assignment(g, calib, mp.bitops, plan, pc, args.bits, seed=seed)
            r = realise(g, a, calib, plan, fw, weight_rounding=args.weight_rounding)
            add("random", budget, r, top1(r.runner(plan), x, labels), {"seed": seed})
    timings["search_max"] = max(search_s)
    result: dict[str, Any] = {
        "dataset": "fashion-mnist",
        "model": args.model.name,
        "test_images": int(len(x)),
        "int8_patch_bitops": int8_bitops,
        "layer_by_layer_int8_bitops": 64 * plan.baseline_macs,
        "calibration": {"samples": calib.samples, "synthetic": calib.synthetic},
        "weights_from": "float model" if fw is not None else "int8 model",
        "options": {"bits": list(args.bits), "outlier_rule": args.outlier_rule, "outlier_k": args.outlier_k,
                    "outlier_percentile": args.outlier_percentile, "lambda": args.lambda_,
                    "sensitivity": args.sensitivity, "weight_rounding": args.weight_rounding},
        "rows": rows,
    }
    if args.mlperf:
        train, _ = load_fashion_mnist("train")
        result["mlperf"] = [kws_agreement(path, 1 / 2.2, args.kws_per_class, args) if n == "kws" else
                            mlperf_agreement(n, path, 1 / 2.2, args.mlperf_limit, 200, train, images, args)
                            for n, path in MLPERF.items()]
    timings["total"] = time.perf_counter() - t_start
    result["seconds"] = timings
    plot(rows, int8_bitops, args.plot)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(f"Fashion-MNIST test ({len(x)} images), int8 patch-based BitOPs {int8_bitops / 1e6:.2f}M")
        print(f"{'name':9s} {'budget':>7s} {'BitOPs(M)':>10s} {'x int8':>7s} {'SRAM(B)':>9s} {'top-1':>7s}")
        for r in rows:
            b = "-" if r["budget"] is None else f"{r['budget']:.3f}"
            bo = "-" if r["bitops"] is None else f"{r['bitops'] / 1e6:.2f}"
            red = "-" if r["bitops"] is None else f"{int8_bitops / r['bitops']:.2f}"
            sram = "-" if r["peak_sram_bytes"] is None else str(r["peak_sram_bytes"])
            print(f"{r['name']:9s} {b:>7s} {bo:>10s} {red:>7s} {sram:>9s} {100 * r['top1']:6.2f}%")
        for m in result.get("mlperf", []):
            if "skipped" in m:
                print(f"MLPerf {m['model']}: skipped ({m['skipped']})")
                continue
            print(f"MLPerf {m['model']}: {m['bitops_reduction']:.2f}x fewer BitOPs, top-1 agreement "
                  f"{100 * m['agreement']:.1f}% on {m['samples']} inputs ({m['inputs']})")
            if "top1" in m:
                print("  top-1 " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in m["top1"].items()))
                for name, accs in m["top1_per_class"].items():
                    print(f"  {name:8s} " + " ".join(f"{k} {100 * v:5.1f}%" for k, v in accs.items()))
        print(f"plot: {args.plot}; time: {timings['total']:.1f} s (int8 eval {timings['int8_eval']:.1f} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MixqError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
