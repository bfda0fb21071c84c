#!/usr/bin/env python3
"""Peak activation SRAM of memory-aware scheduling against TFLite Micro and a layer-by-layer plan.

For every model: TFLite Micro's activation arena (the ``head`` figure of ``print_allocations`` of
the tflite-micro Python interpreter, measured in a subprocess), the layer-by-layer int8 peak of the
project's planner (no patches, no splits), and the project's peak with patches only (the first
patch stage and later patch stages of deeper blocks), channel splits only, and both, with the
input counted in SRAM and streamed patch by patch; extra MACs of each plan and the time planning
took.

Every plan is also executed patch by patch / slice by slice in the Python reference on a random
input and compared with the unscheduled interpreter (``bit_exact``; ``--no-check`` skips it).

Usage::

    python scripts/bench_memory.py [--json] [--no-check] [--models A.tflite B.tflite ...]

Without ``--models``: the four MLPerf Tiny int8 models and every ``models/large/*.tflite``.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import subprocess
import sys
import time
from typing import Any, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tvm_mixq.errors import MixqError  # noqa: E402
from tvm_mixq.reader import read_tflite  # noqa: E402
from tvm_mixq.schedule import plan_memory  # noqa: E402
from tvm_mixq.schedule.execute import check_plan  # noqa: E402

log = logging.getLogger("bench_memory")

MLPERF = os.path.join(ROOT, "..", "shared", "models", "mlperf_tiny")
DEFAULT_MODELS = [
    os.path.join(MLPERF, "vww_96_int8.tflite"),
    os.path.join(MLPERF, "kws_ref_model.tflite"),
    os.path.join(MLPERF, "pretrainedResnet_quant.tflite"),
    os.path.join(MLPERF, "ad01_int8.tflite"),
]

#: Configurations measured: name -> mixq.* options.
CONFIGS: dict[str, dict[str, Any]] = {
    "layer_by_layer": {"mixq.enable": 0},
    "patches": {"mixq.channel_split": "off"},
    "splits": {"mixq.patch_grid": "off"},
    "both": {},
    "patches_streamed": {"mixq.channel_split": "off", "mixq.stream_input": 1},
    "both_streamed": {"mixq.stream_input": 1},
}

_TFLM_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
it.print_allocations()
"""


def tflm_arena(path: str, arena_size: int = 8 << 20, timeout: float = 600) -> Optional[int]:
    """TFLite Micro's activation arena (``Arena allocation head``) for a model, or ``None``."""
    try:
        res = subprocess.run([sys.executable, "-c", _TFLM_SCRIPT, path, str(arena_size)], capture_output=True,
                             text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("tflite-micro failed on %s: %s", path, exc)
        return None
    m = re.search(r"Arena allocation head (\d+) bytes", res.stdout + res.stderr)
    if not m:
        log.warning("tflite-micro gave no arena figure for %s: %s", path, (res.stderr or res.stdout)[-300:])
        return None
    return int(m.group(1))


def bench_model(path: str, check: bool = True) -> dict[str, Any]:
    graph = read_tflite(path)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(-128, 128, graph.tensors[i].shape).astype(graph.tensors[i].dtype) for i in graph.inputs]
    row: dict[str, Any] = {"model": os.path.basename(path), "tflm_arena_bytes": tflm_arena(path)}
    for name, cfg in CONFIGS.items():
        t0 = time.perf_counter()
        try:
            plan = plan_memory(graph, cfg)
        except MixqError as exc:
            row[name] = {"error": str(exc)}
            continue
        seconds = time.perf_counter() - t0
        st = plan.patch_stage
        row[name] = {
            "peak_bytes": plan.peak,
            "mode": plan.memory.mode,
            "extra_macs_pct": round(100 * plan.extra_macs, 2),
            "macs": plan.macs,
            "planning_seconds": round(seconds, 3),
            "grid": list(st.grid) if st else None,
            "stage_end_op": st.ops[-1] if st else None,
            "stage_output_shape": list(graph.tensors[st.split_tensor].shape[1:]) if st else None,
            "channel_splits": [{"ops": c.ops, "factor": c.factor} for c in plan.channel_splits],
            "later_stages": [{"ops": [ls.ops[0], ls.ops[-1]], "grid": list(ls.grid), "input_overlap": ls.input_overlap,
                              "output_shape": list(graph.tensors[ls.split_tensor].shape[1:])}
                             for ls in plan.later_stages],
        }
        if check:  # the scheduled plan run patch by patch / slice by slice against the interpreter
            row[name]["bit_exact"] = check_plan(plan, inputs)
    tflm = row["tflm_arena_bytes"]
    for name in CONFIGS:
        r = row[name]
        if tflm and "peak_bytes" in r and r["peak_bytes"]:
            r["tflm_ratio"] = round(tflm / r["peak_bytes"], 2)
    return row


def _fmt(r: dict[str, Any]) -> str:
    if "error" in r:
        return "error"
    extra = f" +{r['extra_macs_pct']:.1f}%" if r["extra_macs_pct"] else ""
    flag = "" if r.get("bit_exact", True) else " NOT-EXACT"
    return f"{r['peak_bytes']:,}{extra}{flag}"


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["layer_by_layer", "patches", "splits", "both", "patches_streamed", "both_streamed"]
    head = ["model", "TFLM arena"] + cols + ["TFLM/both", "TFLM/streamed", "plan s"]
    lines = [head]
    for row in rows:
        tflm = row["tflm_arena_bytes"]
        both, streamed = row["both"], row["both_streamed"]
        lines.append([
            row["model"],
            f"{tflm:,}" if tflm else "n/a",
            *[_fmt(row[c]) for c in cols],
            f"{both.get('tflm_ratio', 0):.2f}x" if both.get("tflm_ratio") else "n/a",
            f"{streamed.get('tflm_ratio', 0):.2f}x" if streamed.get("tflm_ratio") else "n/a",
            f"{max(row[c].get('planning_seconds', 0) for c in cols):.2f}",
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(line, widths))))
    print()
    print("Peaks in bytes (+extra MACs). patches/splits/both: input counted in SRAM; *_streamed: input read "
          "patch by patch through a callback. TFLM arena: tflite-micro 'Arena allocation head'.")
    checked = [row[c]["bit_exact"] for row in rows for c in cols if "bit_exact" in row[c]]
    if checked:
        print(f"Every plan run patch by patch / slice by slice in the Python reference: "
              f"{sum(checked)}/{len(checked)} bit-exact with the unscheduled interpreter (one random input).")
    for row in rows:
        b = row["both"]
        if "peak_bytes" in b and b.get("grid"):
            later = "".join(f", later stage ops {ls['ops'][0]}..{ls['ops'][1]} "
                            f"({'x'.join(map(str, ls['output_shape']))}) grid {ls['grid'][0]}x{ls['grid'][1]}"
                            + (" over its input" if ls["input_overlap"] else "")
                            for ls in b.get("later_stages", []))
            print(f"  {row['model']}: both -> stage to op {b['stage_end_op']} "
                  f"({'x'.join(map(str, b['stage_output_shape']))}), grid {b['grid'][0]}x{b['grid'][1]}{later}, "
                  f"splits {[(c['ops'][0], c['factor']) for c in b['channel_splits']]}")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--models", nargs="*", help="models to measure (default: MLPerf Tiny + models/large)")
    ap.add_argument("--no-check", action="store_true", help="skip running each plan against the interpreter")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    models = args.models or DEFAULT_MODELS + sorted(glob.glob(os.path.join(ROOT, "models", "large", "*.tflite")))
    rows = [bench_model(m, check=not args.no_check) for m in models if os.path.exists(m)]
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
