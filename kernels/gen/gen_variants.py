"""Generate the kernel variants of the mixq kernel library.

One template per op family (kernels/gen/templates/*.c.j2) is rendered for every bitwidth
combination in {8, 4, 2}: 27 variants for conv2d, pointwise, depthwise, fully connected and add,
9 for average pool, plus for conv2d, pointwise and fully connected the 3 A4W4 variants that take
their weights already re-spaced into lane words (suffix ``_lanes``; not in the dispatch tables).
Each variant is a thin public function that calls the op's core (written once, in kernels/src/)
with constant bitwidths, so the compiler specialises it. Output, committed to the repository:

* kernels/include/mixq_kernels_variants.h - prototypes of every variant,
* kernels/generated/mixq_<op>.c             - the variants of one op,
* kernels/generated/mixq_dispatch.c         - variant tables and the per-op dispatchers.

Run ``python kernels/gen/gen_variants.py`` after editing a template; a test checks that the
committed files are up to date (``--check`` exits 1 when they are not).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2

BITS = (8, 4, 2)
HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent


@dataclass(frozen=True)
class Variant:
    """One (op, bitwidths) instance: ``name`` is its public C function."""

    op: str
    a: int  # input bits (first input for add)
    b: int  # weight bits (second input for add; unused for avgpool)
    o: int  # output bits
    lanes: bool = False  # A4W4 weights in lane words (entry point with the suffix _lanes)

    @property
    def suffix(self) -> str:
        if self.op == "add":
            return f"a{self.a}b{self.b}o{self.o}"
        if self.op == "avgpool":
            return f"a{self.a}o{self.o}"
        return f"a{self.a}w{self.b}o{self.o}"

    @property
    def name(self) -> str:
        return f"mixq_{self.op}_{self.suffix}" + ("_lanes" if self.lanes else "")


OPS = ("conv2d", "pointwise", "depthwise", "fully_connected", "add", "avgpool")


def variants(op: str) -> list[Variant]:
    if op == "avgpool":
        return [Variant(op, a, 8, o) for a, o in itertools.product(BITS, BITS)]
    return [Variant(op, a, b, o) for a, b, o in itertools.product(BITS, BITS, BITS)]


def lane_variants(op: str) -> list[Variant]:
    """The A4W4 entry points taking weights in lane words (conv2d, pointwise, fully connected)."""
    if op not in ("conv2d", "pointwise", "fully_connected"):
        return []
    return [Variant(op, 4, 4, o, lanes=True) for o in BITS]


def render_all() -> dict[Path, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    files: dict[Path, str] = {}
    all_variants = {op: variants(op) for op in OPS}
    with_lanes = {op: variants(op) + lane_variants(op) for op in OPS}
    files[KERNELS / "include" / "mixq_kernels_variants.h"] = env.get_template("variants.h.j2").render(
        ops=OPS, variants=with_lanes
    )
    for op in OPS:
        files[KERNELS / "generated" / f"mixq_{op}.c"] = env.get_template(f"{op}.c.j2").render(
            op=op, variants=with_lanes[op]
        )
    files[KERNELS / "generated" / "mixq_dispatch.c"] = env.get_template("dispatch.c.j2").render(
        ops=OPS, variants=all_variants
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render_all().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        sys.stderr.write("out of date: " + ", ".join(str(p) for p in stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
