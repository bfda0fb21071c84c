"""Write the deployment report (see the package docstring)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2

from .figures import bitwidth_figure, instructions_figure, memory_figure

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_report(result: Any, out_dir: Path) -> Path:
    """Write ``index.html`` and its PNGs for a :class:`tvm_mixq.deploy.DeployResult`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [("Memory timeline", memory_figure(result, out / "memory.png")),
               ("Bitwidths per layer", bitwidth_figure(result, out / "bitwidths.png"))]
    if result.mixq.run is not None and result.int8.run is not None:
        figures.append(("Instructions per layer", instructions_figure(result, out / "instructions.png")))
    data = result.to_json()
    b = data["baselines"]
    rows = [
        ("peak SRAM (arena, B)", data["peak_sram_bytes"], b["int8_peak_sram_bytes"]),
        ("flash (B)", data["flash_bytes"], b["int8_flash_bytes"]),
        ("instructions", data["instructions"], b["int8_instructions"]),
        ("bit-exact vs reference", data["bit_exact"], b["int8_bit_exact"]),
    ]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    html = env.get_template("report.html.j2").render(r=data, rows=rows, figures=[(t, p.name) for t, p in figures],
                                                     plan_summary=result.plan_summary)
    path = out / "index.html"
    path.write_text(html)
    log.info("report written to %s", path)
    return path
