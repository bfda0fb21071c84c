"""Measured kernel costs for the mixed-precision search.

``mixq bench kernels --cost-table PATH`` (or scripts/bench_kernels.py, which writes
``tvm_mixq/bench/data/cost_table_<target>.json``) records, per implementation, op, bitwidths and
layer shape, the instructions one call took on the emulated core. :class:`CostTable` answers
"how many instructions does this layer take at these bitwidths": the measured figure when the
shape was benchmarked, else the op's median instructions per MAC at those bitwidths times the
layer's MACs.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import MixqError
from .shapes import LayerShape

DATA_DIR = Path(__file__).resolve().parent / "data"


def default_path(target: str) -> Path:
    """Where scripts/bench_kernels.py writes the cost table of ``target``."""
    return DATA_DIR / f"cost_table_{target}.json"


@dataclass(frozen=True)
class CostEntry:
    impl: str
    op: str
    in_bits: int
    w_bits: int
    out_bits: int
    shape: tuple[tuple[str, int], ...]
    macs: int
    instructions: int


def _shape_key(shape: Union[LayerShape, dict]) -> tuple[tuple[str, int], ...]:
    d = shape.as_json() if isinstance(shape, LayerShape) else dict(shape)
    return tuple(sorted((k, int(v)) for k, v in d.items()))


@dataclass
class CostTable:
    target: str
    entries: list[CostEntry]

    @classmethod
    def load(cls, path: Union[str, Path]) -> "CostTable":
        p = Path(path)
        if not p.is_file():
            raise MixqError(f"cost table {p} not found (run scripts/bench_kernels.py or mixq bench kernels "
                            f"--cost-table {p})")
        try:
            data = json.loads(p.read_text())
            entries = [
                CostEntry(e["impl"], e["op"], int(e["in_bits"]), int(e["w_bits"]), int(e["out_bits"]),
                          _shape_key(e["shape"]), int(e["macs"]), int(e["instructions"]))
                for e in data["entries"]
            ]
            return cls(str(data["target"]), entries)
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise MixqError(f"cost table {p} is malformed: {exc}") from None

    @classmethod
    def for_target(cls, target: str) -> "CostTable":
        return cls.load(default_path(target))

    def instructions(
        self,
        op: str,
        in_bits: int,
        w_bits: int,
        out_bits: int,
        shape: Optional[Union[LayerShape, dict]] = None,
        macs: Optional[int] = None,
        impl: str = "ours",
    ) -> float:
        """Instructions of one call: measured for ``shape``, else estimated from ``macs``."""
        same = [e for e in self.entries
                if e.impl == impl and e.op == op and (e.in_bits, e.w_bits, e.out_bits) == (in_bits, w_bits, out_bits)]
        if shape is not None:
            key = _shape_key(shape)
            for e in same:
                if e.shape == key:
                    return float(e.instructions)
            if macs is None and isinstance(shape, LayerShape):
                macs = shape.macs
        if not same:
            raise MixqError(f"no {impl} cost measured for {op} W{w_bits}A{in_bits}O{out_bits} on {self.target}")
        if macs is None:
            raise MixqError("an unmeasured shape needs its MAC count")
        per_mac = statistics.median(e.instructions / e.macs for e in same if e.macs)
        return per_mac * macs
