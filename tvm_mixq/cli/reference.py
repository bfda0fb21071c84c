"""``mixq reference MODEL.tflite --inputs IN.npz --outputs OUT.npz``.

Runs the project's reference interpreter. ``IN.npz`` holds ``input_0``, ``input_1``, ... in the
model's input order, each with the model's dtype and either the model's shape (batch 1) or a
leading batch axis of any size over a batch-1 model; ``OUT.npz`` receives ``output_0``, ... in
the model's output order with the model's output dtypes (batched like the inputs).
"""
from __future__ import annotations

import argparse
import json
import os
import zipfile

import numpy as np

from ..errors import InputDataError, MixqError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reference", help="run the NumPy reference interpreter on inputs from an .npz",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("model", metavar="MODEL.tflite")
    p.add_argument("--inputs", required=True, metavar="IN.npz", help="arrays input_0, input_1, ...")
    p.add_argument("--outputs", required=True, metavar="OUT.npz", help="where to write output_0, output_1, ...")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load_inputs(path: str, graph) -> list[np.ndarray]:
    """The model's inputs from an ``.npz``, checked against the graph (names, dtypes, shapes)."""
    if not os.path.isfile(path):
        raise InputDataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputDataError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    expected = [f"input_{i}" for i in range(len(graph.inputs))]
    missing = [k for k in expected if k not in arrays]
    extra = sorted(k for k in arrays if k not in expected)
    if missing or extra:
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected {', '.join(extra)}")
        raise InputDataError(f"{path}: the model takes {', '.join(expected)}; {'; '.join(detail)}")
    inputs = []
    batch = None
    for i, key in enumerate(expected):
        t = graph.tensors[graph.inputs[i]]
        a = arrays[key]
        if a.dtype.name != t.dtype:
            raise InputDataError(f"{path}: {key} has dtype {a.dtype.name}, the model needs {t.dtype}")
        shape, want = tuple(a.shape), tuple(t.shape)
        if shape == want:
            n = None
        elif len(want) >= 1 and want[0] == 1 and len(shape) == len(want) and shape[1:] == want[1:] and shape[0] >= 1:
            n = shape[0]
        else:
            raise InputDataError(f"{path}: {key} has shape {list(shape)}, the model needs {list(want)} "
                                 f"(or [N, {', '.join(str(d) for d in want[1:])}] for a batch)")
        if i and n != batch:
            raise InputDataError(f"{path}: inputs disagree on the batch size")
        batch = n
        inputs.append(a)
    return inputs


def run(args: argparse.Namespace) -> int:
    from ..reader import read_tflite
    from ..reference.interpreter import Interpreter

    for other, what in ((args.model, "the model"), (args.inputs, "the inputs")):
        if os.path.exists(args.outputs) and _same_file(args.outputs, other) or \
                os.path.realpath(args.outputs) == os.path.realpath(other):
            raise MixqError(f"--outputs {args.outputs} is {what} file; refusing to overwrite it")
    graph = read_tflite(args.model)
    inputs = load_inputs(args.inputs, graph)
    outputs = Interpreter(graph).run(inputs)
    out_dir = os.path.dirname(os.path.abspath(args.outputs))
    if not os.path.isdir(out_dir):
        raise MixqError(f"--outputs {args.outputs}: directory {out_dir} does not exist")
    arrays = {f"output_{i}": o for i, o in enumerate(outputs)}
    with open(args.outputs, "wb") as f:
        np.savez(f, **arrays)
    summary = {k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in arrays.items()}
    if args.json:
        print(json.dumps({"outputs": summary, "path": args.outputs}, indent=2))
    else:
        parts = ", ".join(f"{k} {v['shape']} {v['dtype']}" for k, v in summary.items())
        print(f"wrote {args.outputs}: {parts}")
    return 0
