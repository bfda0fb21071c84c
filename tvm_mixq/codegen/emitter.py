"""Graph -> C: one header with a small API, one source with packed constant weights, one static
arena of exactly the planned size, and calls into the kernel library and the C runtime.

:func:`generate_c` is the entry point; the result (:class:`GeneratedModel`) lists the files, the
arena and the per-layer facts the deploy report prints. Templates are Jinja2
(``templates/model.h.j2``, ``model.c.j2``, one macro pair per layer template in
``layers.c.j2``); :mod:`.layers` prepares each op (one class per op kind, :func:`make_layer`).
"""
from __future__ import annotations

import ctypes
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import jinja2
import numpy as np

from ..errors import MixqError
from ..graph import Graph, Tensor
from ..kernellib import KernelLib
from ..kernellib import build as kbuild
from .arena import ArenaBuffer, ArenaPlan, place
from .layers import KERNEL_TEMPLATES, ConstArray, Layer, make_layer

log = logging.getLogger(__name__)

CODEGEN_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = CODEGEN_DIR / "templates"
RUNTIME_DIR = CODEGEN_DIR / "runtime"


def runtime_sources() -> list[Path]:
    return sorted(RUNTIME_DIR.glob("*.c"))


def kernel_sources() -> list[Path]:
    return kbuild.kernel_sources()


def include_dirs() -> list[Path]:
    """Include directories a generated model needs (kernel library, runtime)."""
    return kbuild.include_dirs() + [RUNTIME_DIR]


@dataclass
class IoTensor:
    """A model input or output as the generated API sees it."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    bits: int
    offset: int = 0


@dataclass
class GeneratedModel:
    """What :func:`generate_c` wrote and planned."""

    name: str
    prefix: str
    macro: str
    out_dir: Path
    header: Path
    source: Path
    graph: Graph
    layers: list[Layer]
    arena: ArenaPlan
    consts: list[ConstArray]
    inputs: list[IoTensor]
    outputs: list[IoTensor]

    @property
    def arena_size(self) -> int:
        return self.arena.size

    @property
    def const_bytes(self) -> int:
        return sum(a.nbytes for a in self.consts)

    @property
    def sources(self) -> list[Path]:
        """Every C source of a firmware or host program using this model (main excluded)."""
        return [self.source] + runtime_sources() + kernel_sources()

    @property
    def include_dirs(self) -> list[Path]:
        return [self.out_dir] + include_dirs()


def c_identifier(name: str) -> str:
    ident = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


def _c_values(values: np.ndarray) -> str:
    """Jinja filter: array values, 16 per line."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(flat[i:i + 16]) for i in range(0, len(flat), 16)]
    return ",\n".join("    " + r for r in rows)


def template_env(extra_dirs: tuple[Path, ...] = ()) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES_DIR), *map(str, extra_dirs)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["c_values"] = _c_values
    return env


# ---------------------------------------------------------------------------------------------
# Scratch: the kernel library's own get_buffer_size, through the host build.


class _ScratchQuery:
    def __init__(self) -> None:
        self.lib = KernelLib()
        for name, args in (("mixq_add_get_buffer_size", 2), ("mixq_avgpool_get_buffer_size", 4)):
            fn = self.lib.symbol(name)
            fn.restype = ctypes.c_int32
            del args

    def bytes(self, layer: Layer, graph: Graph) -> int:
        from ..kernellib import lib as klib

        p = layer.p
        if layer.template == "conv":
            op = layer.op
            x_t = graph.tensors[op.inputs[0]]
            w_t = graph.tensors[op.inputs[1]]
            pads = self._pads(layer)
            return self.lib.scratch_bytes(p["kernel"], p["bits"], x_t.shape, w_t.shape, p["stride"], pads,
                                          p["dilation"])
        if layer.template == "fc":
            d, f = p["in_dims"], p["filter_dims"]
            return self.lib.scratch_bytes("fully_connected", p["bits"], (d["n"], 1, 1, d["c"]), (f["n"], f["c"]))
        if layer.template == "add":
            d = p["dims"]
            fn = self.lib.symbol("mixq_add_get_buffer_size")
            return int(fn(klib.Bits(*p["bits"]), ctypes.byref(klib.Dims(d["n"], d["h"], d["w"], d["c"]))))
        if layer.template == "avgpool":
            fn = self.lib.symbol("mixq_avgpool_get_buffer_size")
            pp = klib.PoolParams(klib.Tile(*p["stride"]), klib.Tile(*p["padding"]), klib.Tile(*p["filter"]),
                                 p["input_zp"], p["output_zp"], p["mult"], p["shift"], p["act_min"], p["act_max"])
            i, o = p["in_dims"], p["out_dims"]
            return int(fn(klib.Bits(*p["bits"]), ctypes.byref(pp), ctypes.byref(klib.Dims(i["n"], i["h"], i["w"], i["c"])),
                          ctypes.byref(klib.Dims(o["n"], o["h"], o["w"], o["c"]))))
        return 0

    @staticmethod
    def _pads(layer: Layer) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) consistent with the output dims."""
        p = layer.p
        i, f, o = p["in_dims"], p["filter_dims"], p["out_dims"]
        top, left = p["padding"]
        bottom = max(0, (o["h"] - 1) * p["stride"][0] + (f["h"] - 1) * p["dilation"][0] + 1 - i["h"] - top)
        right = max(0, (o["w"] - 1) * p["stride"][1] + (f["w"] - 1) * p["dilation"][1] + 1 - i["w"] - left)
        return top, bottom, left, right


# ---------------------------------------------------------------------------------------------


def _tensor_bytes(t: Tensor) -> int:
    return t.nbytes


def _plan_arena(graph: Graph, layers: list[Layer], alignment: int) -> tuple[ArenaPlan, dict[int, ArenaBuffer]]:
    """Buffers of every activation tensor (RESHAPE outputs share their input's) and of scratch."""
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for layer in layers:
        if layer.alias:
            root[find(layer.op.outputs[0])] = find(layer.op.inputs[0])
    end = len(layers)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph.inputs:
        first[find(t)] = -1
    for pos, layer in enumerate(layers):
        for t in layer.op.outputs:
            r = find(t)
            first[r] = min(first.get(r, pos), pos)
            last[r] = max(last.get(r, pos), pos)
        for t in layer.op.inputs:
            if t >= 0 and not graph.tensors[t].is_const:
                r = find(t)
                last[r] = max(last.get(r, pos), pos)
    for t in graph.outputs:
        last[find(t)] = end
    members: dict[int, list[int]] = {}
    for t in list(first):
        members.setdefault(t, [])
    for t_index, t in enumerate(graph.tensors):
        if not t.is_const and find(t_index) in first:
            members[find(t_index)].append(t_index)
    buffers: list[ArenaBuffer] = []
    by_tensor: dict[int, ArenaBuffer] = {}
    for r, ts in members.items():
        size = max(_tensor_bytes(graph.tensors[t]) for t in ts)
        kind = "input" if r in graph.inputs else ("output" if any(t in graph.outputs for t in ts) else "tensor")
        b = ArenaBuffer(f"t{r}:{graph.tensors[r].name}", size, first[r], last.get(r, first[r]), kind, sorted(ts))
        buffers.append(b)
        for t in ts:
            by_tensor[t] = b
    for pos, layer in enumerate(layers):
        if layer.scratch > 0:
            buffers.append(ArenaBuffer(f"scratch:{layer.cname}", layer.scratch, pos, pos, "scratch"))
    return place(buffers, alignment), by_tensor


def dsp_conv_scratch(layer: Layer) -> int:
    """Scratch of the Cortex-M DSP path of a conv2d / pointwise / fully connected call.

    The host build of the kernel library answers ``get_buffer_size`` for its portable path, which
    needs less than the DSP path the firmware runs; this bound follows the DSP path's documented
    needs (kernels/src/mixq_conv_dsp.h): per output channel 28 bytes of requantization constants and
    accumulators, plus two int16 im2col rows, or for the packed W4A4/W2A2 paths two lane rows and
    (W4A4) the re-spaced weights. The generated ``init()`` re-checks it on the target.
    """
    from ..kernellib.layout import weight_row_len

    ib, wb, _ = layer.p["bits"]
    f = layer.p["filter_dims"]
    cpad = (f["n"] + 1) & ~1
    kp = weight_row_len(f["h"] * f["w"] * f["c"], wb)
    per_channel = cpad * (16 + 12)
    if (ib, wb) in ((4, 4), (2, 2)):
        return max(2 * kp + per_channel + (cpad * kp if ib == 4 else 0), 4 * kp + per_channel)
    return 4 * kp + per_channel


def build_layers(graph: Graph) -> list[Layer]:
    """Prepared layers of ``graph`` (every op, in order), with kernel scratch sizes."""
    layers = [make_layer(graph, op) for op in graph.ops]
    query: Optional[_ScratchQuery] = None
    for pos, layer in enumerate(layers):
        layer.position = pos
        if layer.template in KERNEL_TEMPLATES:
            query = query or _ScratchQuery()
            size = query.bytes(layer, graph)
            if size < 0:
                raise MixqError(f"op {layer.op.index} ({layer.op.kind}): the kernel library refuses its shape or "
                                f"bitwidths {layer.p['bits']}")
            if layer.template == "fc" or (layer.template == "conv" and layer.p["kernel"] != "depthwise"):
                size = max(size, dsp_conv_scratch(layer))
            layer.scratch = (size + 3) // 4 * 4
    return layers


def generate_c(graph: Graph, out_dir: Path | str, name: Optional[str] = None, source: str = "",
               description: str = "", alignment: int = 8) -> GeneratedModel:
    """Write ``<prefix>.h`` and ``<prefix>.c`` for ``graph`` (layer by layer) into ``out_dir``.

    Parameters
    ----------
    graph : the model, int8 or with sub-byte tensors and weights (a planned graph).
    name : model name for the C identifiers (``mixq_<name>_invoke``); the graph's by default.
    source : where the model came from (written into the file comments).
    description : one line for the header comment (e.g. the plan's summary).

    Raises
    ------
    MixqError
        An op, dtype or bitwidth the generator cannot emit.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ident = c_identifier(name or graph.name)
    prefix = f"mixq_{ident}"
    macro = prefix.upper()
    layers = build_layers(graph)
    arena, by_tensor = _plan_arena(graph, layers, alignment)

    def operand(layer: Layer, pos: int, t_index: int) -> str:
        if pos in layer.const_inputs:
            return layer.const_inputs[pos]
        return f"(arena + {by_tensor[t_index].offset})"

    for pos, layer in enumerate(layers):
        layer.src = [operand(layer, i, t) for i, t in enumerate(layer.op.inputs)
                     if t >= 0 and (i in layer.const_inputs or not graph.tensors[t].is_const)]
        layer.dst = [f"(arena + {by_tensor[t].offset})" for t in layer.op.outputs]
        if layer.scratch > 0:
            sb = next(b for b in arena.buffers if b.name == f"scratch:{layer.cname}")
            layer.scratch_expr = f"(arena + {sb.offset})"
        else:
            layer.scratch_expr = "NULL"

    def io(t_index: int) -> IoTensor:
        t = graph.tensors[t_index]
        return IoTensor(t_index, t.name, t.dtype, tuple(t.shape), t.nbytes, t.bits, by_tensor[t_index].offset)

    inputs = [io(t) for t in graph.inputs]
    outputs = [io(t) for t in graph.outputs]
    consts = [a for layer in layers for a in layer.consts]
    in0 = graph.tensors[graph.inputs[0]]
    rows = int(np.prod(in0.shape[:-2], dtype=np.int64)) if len(in0.shape) >= 3 else 1
    io_note = "int8" if all(t.dtype == "int8" and t.bits == 8 for t in inputs + outputs) else \
        ", ".join(sorted({f"{t.dtype}" if t.bits == 8 else f"{t.bits}-bit packed" for t in inputs + outputs}))
    model = {
        "prefix": prefix, "macro": macro, "source": source or graph.name,
        "description": description or f"{graph.name}: {len(layers)} layers, layer by layer",
        "arena_size": arena.size, "arena_size_decl": max(arena.size, 8), "layers": layers,
        "inputs": inputs, "outputs": outputs, "consts": consts,
        "const_bytes": sum(a.nbytes for a in consts),
        "arena_buffers": sorted(arena.buffers, key=lambda b: b.offset),
        "io_note": io_note, "input_rows": rows, "input_row_bytes": in0.nbytes // rows,
    }
    env = template_env()
    header = out / f"{prefix}.h"
    src = out / f"{prefix}.c"
    header.write_text(env.get_template("model.h.j2").render(m=model))
    src.write_text(env.get_template("model.c.j2").render(m=model, kernel_templates=KERNEL_TEMPLATES))
    log.info("generated %s: %d layers, arena %d B, constants %d B", prefix, len(layers), arena.size,
             model["const_bytes"])
    return GeneratedModel(ident, prefix, macro, out, header, src, graph, layers, arena, consts, inputs, outputs)
