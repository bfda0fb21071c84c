"""The report's PNG figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def memory_figure(result: Any, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for variant, style in ((result.int8, dict(color="#999999", ls="--")), (result.mixq, dict(color="#1f77b4"))):
        m = variant.model
        live = [lb for lb, _ in m.arena.timeline(len(m.layers))]
        ax.step(range(len(live)), live, where="mid", label=f"{variant.name}: live bytes (arena {m.arena_size:,} B)",
                **style)
    ax.axhline(result.memory.sram_bytes, color="#d62728", lw=1.2, label=f"SRAM limit {result.memory.sram_bytes:,} B")
    if result.tflm_arena_bytes:
        ax.axhline(result.tflm_arena_bytes, color="#ff7f0e", lw=1, ls=":",
                   label=f"TFLM arena {result.tflm_arena_bytes:,} B ({result.tflm_arena_source})")
    peak = max(result.mixq.model.arena_size, result.int8.model.arena_size, result.tflm_arena_bytes or 0)
    ax.set_ylim(0, max(peak * 1.4, 1))
    if result.memory.sram_bytes > peak * 1.4:
        ax.text(0.99, 0.03, f"SRAM limit {result.memory.sram_bytes // 1024} KiB is above the plot", ha="right",
                va="bottom", transform=ax.transAxes, fontsize=8, color="#d62728")
    ax.set_xlabel("layer")
    ax.set_ylabel("bytes")
    ax.set_title("Activation memory per layer")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bitwidth_figure(result: Any, path: Path) -> Path:
    layers = result.mixq.layers()
    grid = np.array([[layer["in_bits"] if layer["in_bits"] <= 8 else np.nan for layer in layers],
                     [layer["w_bits"] if layer["w_bits"] else np.nan for layer in layers],
                     [layer["out_bits"] if layer["out_bits"] <= 8 else np.nan for layer in layers]], dtype=float)
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(layers) + 2), 2.6))
    cmap = matplotlib.colors.ListedColormap(["#d62728", "#ff7f0e", "#2ca02c"])
    norm = matplotlib.colors.BoundaryNorm([1, 3, 6, 9], cmap.N)
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, norm=norm)
    for (r, c), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(c, r, int(v), ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks([0, 1, 2], ["input", "weights", "output"])
    ax.set_xticks(range(len(layers)), [layer["op"].replace("_2D", "").replace("DEPTHWISE_CONV", "DW")[:8]
                                       for layer in layers], rotation=90, fontsize=7)
    patched = [i for i, layer in enumerate(layers) if layer["patches"] > 1]
    split = [i for i, layer in enumerate(layers) if layer["channel_split"] > 1]
    for i in patched:
        ax.add_patch(matplotlib.patches.Rectangle((i - 0.5, -0.5), 1, 3, fill=False, edgecolor="black", lw=1.5))
    for i in split:
        ax.add_patch(matplotlib.patches.Rectangle((i - 0.5, -0.5), 1, 3, fill=False, edgecolor="#9467bd", lw=1.5,
                                                  ls="--"))
    # outlier patches (VDPC): the bitwidths they run a stage layer at, where they differ, as "/8"
    outliers = [i for i, layer in enumerate(layers) if layer.get("outlier_patches")]
    for i in outliers:
        theirs = layers[i]["outlier_bits"]
        for r, v in enumerate(theirs):
            if v and not np.isnan(grid[r, i]) and v != grid[r, i]:
                ax.text(i + 0.45, r + 0.45, f"/{v}", ha="right", va="bottom", fontsize=6, color="black",
                        fontweight="bold")
        ax.add_patch(matplotlib.patches.Rectangle((i - 0.5, -0.5), 1, 3, fill=False, edgecolor="#e377c2", lw=1.2,
                                                  hatch="//"))
    notes = []
    if patched:
        notes.append("black frame: run in patches")
    if split:
        notes.append("dashed: channel split")
    if outliers:
        n = layers[outliers[0]]["outlier_patches"]
        total = layers[outliers[0]]["patches"]
        notes.append(f"hatched: {n} of {total} patches are outliers (VDPC), run at the bitwidths after '/'")
    else:
        notes.append("no outlier patches")
    ax.set_title("Bitwidth per layer (input, weights, output)", fontsize=9)
    ax.set_xlabel("; ".join(notes), fontsize=7)
    fig.colorbar(im, ax=ax, ticks=[2, 4, 8], fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def instructions_figure(result: Any, path: Path) -> Path:
    mixq = result.mixq.layers()
    int8_by_name = {layer["name"]: layer for layer in result.int8.layers()}
    int8 = [int8_by_name.get(layer["name"], {"instructions": 0}) for layer in mixq]  # same op, mixq order
    n = len(mixq)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * n + 2), 3.6))
    ax.bar(x - 0.2, [layer["instructions"] or 0 for layer in int8], 0.4, label=f"int8 ({result.int8.instructions:,})",
           color="#999999")
    ax.bar(x + 0.2, [layer["instructions"] or 0 for layer in mixq], 0.4, label=f"mixq ({result.mixq.instructions:,})",
           color="#1f77b4")
    ax.set_xticks(x, [layer["op"].replace("_2D", "").replace("DEPTHWISE_CONV", "DW")[:8] for layer in mixq],
                  rotation=90, fontsize=7)
    ax.set_ylabel("instructions (QEMU -icount)")
    ax.set_title(f"Instructions per layer on {result.target}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
