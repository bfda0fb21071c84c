"""Layer shapes of the kernel benchmark: the four anchor layers of the kernel issue and the
distinct layers of the MLPerf Tiny VWW-96 and KWS models.

A :class:`LayerShape` is what one kernel call computes: input ``[h, w, cin]`` (NHWC),
``cout`` output channels, a ``kh x kw`` window with ``stride`` and top/left padding ``pad``
(bottom/right padding follows from ``out_h``/``out_w``, as TFLite's SAME padding does).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from ..errors import MixqError

log = logging.getLogger(__name__)

OPS = ("conv2d", "pointwise", "depthwise", "fully_connected", "add", "avgpool")

#: Where the MLPerf Tiny models live (the repository's copy).
MODEL_DIRS = (Path(__file__).resolve().parents[2] / "models" / "mlperf_tiny",)
MODEL_FILES = {"vww_96": "vww_96_int8.tflite", "kws": "kws_ref_model.tflite"}


@dataclass(frozen=True)
class LayerShape:
    """One layer as a kernel sees it."""

    op: str
    h: int
    w: int
    cin: int
    cout: int
    kh: int = 1
    kw: int = 1
    stride: int = 1
    pad: int = 0
    out_h: int = 1
    out_w: int = 1
    source: str = "anchor"
    pad_left: int = -1  # left padding when it differs from the top one (-1: same as ``pad``)

    @property
    def pad_w(self) -> int:
        return self.pad if self.pad_left < 0 else self.pad_left

    @property
    def k(self) -> int:
        """Reduction length of one output (conv / pointwise / FC)."""
        return self.kh * self.kw * self.cin

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding, the bottom/right from the output size."""
        bottom = max((self.out_h - 1) * self.stride + self.kh - self.h - self.pad, 0)
        right = max((self.out_w - 1) * self.stride + self.kw - self.w - self.pad_w, 0)
        return self.pad, bottom, self.pad_w, right

    @property
    def macs(self) -> int:
        """Multiply-accumulates (add: elements; avgpool: window elements summed)."""
        if self.op in ("conv2d", "pointwise"):
            return self.out_h * self.out_w * self.cout * self.k
        if self.op == "depthwise":
            return self.out_h * self.out_w * self.cout * self.kh * self.kw
        if self.op == "fully_connected":
            return self.cin * self.cout
        if self.op == "add":
            return self.h * self.w * self.cin
        return self.out_h * self.out_w * self.cin * self.kh * self.kw

    @property
    def in_elems(self) -> int:
        return self.h * self.w * self.cin

    @property
    def out_elems(self) -> int:
        if self.op == "add":
            return self.in_elems
        return self.out_h * self.out_w * self.cout

    def as_json(self) -> dict[str, int]:
        """The ``shape`` object of DESIGN section 4."""
        return {
            "h": self.h,
            "w": self.w,
            "cin": self.cin,
            "cout": self.cout,
            "kh": self.kh,
            "kw": self.kw,
            "stride": self.stride,
            "pad": self.pad,
        }

    def label(self) -> str:
        if self.op == "fully_connected":
            return f"{self.cin}->{self.cout}"
        if self.op == "add":
            return f"{self.h}x{self.w}x{self.cin}"
        pad = f"{self.pad}" if self.pad_left < 0 else f"{self.pad},{self.pad_left}"
        win = f"{self.kh}x{self.kw} s{self.stride} p{pad} " if self.op != "pointwise" else ""
        return f"{win}{self.h}x{self.w}x{self.cin}->{self.cout}"


def _window(op: str, h: int, w: int, cin: int, cout: int, k: int, stride: int, pad: int, source: str) -> LayerShape:
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    return LayerShape(op, h, w, cin, cout, k, k, stride, pad, oh, ow, source)


#: The anchor layers of the kernel issue (CMSIS-NN figures measured on this harness), plus an
#: elementwise add and an average pool of the same activation size.
ANCHOR_SHAPES = (
    _window("conv2d", 24, 24, 16, 16, 3, 1, 1, "anchor"),
    _window("pointwise", 24, 24, 32, 64, 1, 1, 0, "anchor"),
    _window("depthwise", 24, 24, 32, 32, 3, 1, 1, "anchor"),
    LayerShape("fully_connected", 1, 1, 256, 64, source="anchor"),
    LayerShape("add", 24, 24, 32, 32, source="anchor"),
    _window("avgpool", 24, 24, 32, 32, 2, 2, 0, "anchor"),
)

#: Instructions per call of real CMSIS-NN on this harness (arm-none-eabi-gcc 12.2.1 -Ofast,
#: mps2-an500 Cortex-M7), from the kernel issue: s8 and s4 (int4 weights).
CMSIS_NN_ANCHOR_FIGURES = {
    "conv2d": {"s8": 3_097_613, "s4": 5_443_578},
    "pointwise": {"s8": 3_132_886, "s4": 5_214_467},
    "depthwise": {"s8": 1_448_474, "s4": 2_752_553},
    "fully_connected": {"s8": 34_031, "s4": 83_157},
}


def find_model(name: str) -> Path:
    """Path of an MLPerf Tiny model (``vww_96`` or ``kws``)."""
    if name not in MODEL_FILES:
        raise MixqError(f"unknown benchmark model {name!r}: expected one of {', '.join(MODEL_FILES)}")
    for d in MODEL_DIRS:
        p = d / MODEL_FILES[name]
        if p.is_file():
            return p
    raise MixqError(f"model {MODEL_FILES[name]} not found in {', '.join(str(d) for d in MODEL_DIRS)}")


def model_shapes(name: str, path: Optional[Path] = None) -> list[LayerShape]:
    """Distinct kernel-level layers of a model, in model order.

    CONV_2D with a 1x1 window and stride 1 is ``pointwise``; AVERAGE_POOL_2D is ``avgpool``;
    FULLY_CONNECTED, DEPTHWISE_CONV_2D (multiplier 1) and ADD map one to one. Other ops are skipped.
    """
    from ..reader import read_tflite
    from ..reference.ops import compute_padding

    graph = read_tflite(str(path or find_model(name)))
    shapes: list[LayerShape] = []
    for op in graph.ops:
        ins = [graph.tensors[i] if i >= 0 else None for i in op.inputs]
        out = graph.tensors[op.outputs[0]]
        shape: Optional[LayerShape] = None
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, h, w, cin = ins[0].shape
            wshape = ins[1].shape
            kh, kw = wshape[1], wshape[2]
            stride = op.attrs.stride
            if stride[0] != stride[1] or op.attrs.dilation != (1, 1):
                log.info("skipping %s with stride %s dilation %s", op.kind, stride, op.attrs.dilation)
                continue
            if op.kind == "DEPTHWISE_CONV_2D" and op.attrs.depth_multiplier != 1:
                continue
            (oh, ow), pad = compute_padding((h, w), (kh, kw), stride, (1, 1), op.attrs.padding)
            cout = out.shape[-1]
            kind = "depthwise" if op.kind == "DEPTHWISE_CONV_2D" else "conv2d"
            if kind == "conv2d" and kh == 1 and kw == 1 and stride[0] == 1:
                kind = "pointwise"
            pad_left = pad[2] if pad[2] != pad[0] else -1
            shape = LayerShape(kind, h, w, cin, cout, kh, kw, stride[0], pad[0], oh, ow, name, pad_left)
        elif op.kind == "FULLY_CONNECTED":
            k = ins[0].shape[-1]
            shape = LayerShape("fully_connected", 1, 1, k, out.shape[-1], source=name)
        elif op.kind == "AVERAGE_POOL_2D":
            _, h, w, c = ins[0].shape
            fh, fw = op.attrs.filter
            stride = op.attrs.stride
            if stride[0] != stride[1]:
                # a global pool over a non-square map: the window is the map, stride irrelevant
                if (fh, fw) != (h, w):
                    continue
                stride = (1, 1)
            (oh, ow), pad = compute_padding((h, w), (fh, fw), stride, (1, 1), op.attrs.padding)
            shape = LayerShape("avgpool", h, w, c, c, fh, fw, stride[0], pad[0], oh, ow, name)
        elif op.kind == "ADD":
            _, h, w, c = out.shape
            shape = LayerShape("add", h, w, c, c, source=name)
        if shape is not None and shape not in shapes:
            shapes.append(shape)
    return shapes


def benchmark_shapes(models: Iterable[str] = ("vww_96", "kws"), anchors: bool = True) -> list[LayerShape]:
    """Anchor shapes (optional) followed by the distinct layers of ``models``."""
    shapes: list[LayerShape] = list(ANCHOR_SHAPES) if anchors else []
    seen = {(s.op, s.h, s.w, s.cin, s.cout, s.kh, s.kw, s.stride, s.pad, s.pad_w) for s in shapes}
    for name in models:
        for s in model_shapes(name):
            key = (s.op, s.h, s.w, s.cin, s.cout, s.kh, s.kw, s.stride, s.pad, s.pad_w)
            if key not in seen:
                seen.add(key)
                shapes.append(s)
    return shapes
