"""The ``mixq.*`` options of memory-aware scheduling, parsed into :class:`tvm_mixq.plan.PlanOptions`.

=========================  ===================================================================
key                        values
=========================  ===================================================================
``mixq.enable``            ``0`` disables patches and channel splits (plain layer-by-layer plan)
``mixq.patch_grid``        ``auto`` (searched), ``off``, or ``NxM`` (rows x columns, forced)
``mixq.patch_stage_end``   ``auto``, or the op index / output tensor name ending the stage
``mixq.channel_split``     ``auto``, ``off``, or a factor ``N`` applied to every split chain
``mixq.stream_input``      ``1``: the input is read patch by patch through a callback (not in SRAM)
``mixq.sram_limit_kb``     arena limit in KiB; the search minimises MACs under it
``mixq.max_extra_macs``    recomputation allowed when minimising the peak (default ``0.15``)
``mixq.alignment``         arena alignment in bytes (default 8)
=========================  ===================================================================
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import MixqError
from ..plan import PlanOptions
from .patches import parse_grid

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise MixqError(f"{key}={value!r}: expected 0 or 1")


def parse_options(config: Mapping[str, Any] | None = None) -> PlanOptions:
    """``{"mixq.patch_grid": "4x4", ...}`` -> :class:`PlanOptions` (keys of other areas ignored).

    Raises
    ------
    MixqError
        A value that is not valid for its key.
    """
    opts = PlanOptions()
    cfg = {k: v for k, v in (config or {}).items() if str(k).startswith("mixq.")}
    if "mixq.patch_grid" in cfg:
        v = str(cfg["mixq.patch_grid"]).strip().lower()
        if v not in ("auto", "off") and parse_grid(v) is None:
            raise MixqError(f"mixq.patch_grid={cfg['mixq.patch_grid']!r}: expected auto, off or NxM (e.g. 4x4)")
        opts.patch_grid = v
    if "mixq.patch_stage_end" in cfg:
        opts.patch_stage_end = str(cfg["mixq.patch_stage_end"]).strip() or "auto"
    if "mixq.channel_split" in cfg:
        v = str(cfg["mixq.channel_split"]).strip().lower()
        if v not in ("auto", "off") and not (v.isdigit() and int(v) >= 1):
            raise MixqError(f"mixq.channel_split={cfg['mixq.channel_split']!r}: expected auto, off or a factor N >= 1")
        opts.channel_split = "off" if v == "1" else v
    if "mixq.stream_input" in cfg:
        opts.stream_input = _bool("mixq.stream_input", cfg["mixq.stream_input"])
    if "mixq.sram_limit_kb" in cfg:
        try:
            opts.sram_limit_kb = float(cfg["mixq.sram_limit_kb"])
        except (TypeError, ValueError):
            raise MixqError(f"mixq.sram_limit_kb={cfg['mixq.sram_limit_kb']!r}: expected a number of KiB") from None
        if not opts.sram_limit_kb > 0:
            raise MixqError(f"mixq.sram_limit_kb={cfg['mixq.sram_limit_kb']!r}: must be positive")
    if "mixq.max_extra_macs" in cfg:
        try:
            opts.max_extra_macs = float(cfg["mixq.max_extra_macs"])
        except (TypeError, ValueError):
            raise MixqError(f"mixq.max_extra_macs={cfg['mixq.max_extra_macs']!r}: expected a fraction (0.15)") from None
        if opts.max_extra_macs < 0:
            raise MixqError("mixq.max_extra_macs must not be negative")
    if "mixq.alignment" in cfg:
        v = str(cfg["mixq.alignment"]).strip()
        if not v.isdigit() or int(v) < 1 or int(v) & (int(v) - 1):
            raise MixqError(f"mixq.alignment={cfg['mixq.alignment']!r}: expected a power of two")
        opts.alignment = int(v)
    if "mixq.bits" in cfg:
        try:
            opts.bits = int(cfg["mixq.bits"])
        except (TypeError, ValueError):
            raise MixqError(f"mixq.bits={cfg['mixq.bits']!r}: expected 8, 4 or 2") from None
    if "mixq.enable" in cfg and not _bool("mixq.enable", cfg["mixq.enable"]):
        opts.patch_grid = "off"
        opts.channel_split = "off"
    return opts
