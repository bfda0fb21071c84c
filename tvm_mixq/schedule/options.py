"""The scheduling view of the ``mixq.*`` options: :class:`tvm_mixq.options.MixqOptions` (the one
table of keys, parsed and validated there) -> :class:`tvm_mixq.plan.PlanOptions`.

Keys used here: ``mixq.enable`` (0: no patches, no splits), ``mixq.patch_grid``
(auto/off/NxM), ``mixq.patch_stage_end`` (auto, op index or tensor name), ``mixq.channel_split``
(auto/off/N), ``mixq.stream_input``, ``mixq.sram_limit_kb`` (0 = as small as possible).
Planner-only settings (recomputation budget, arena alignment) are keyword arguments of
:func:`tvm_mixq.schedule.plan_memory`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from ..options import MixqOptions
from ..plan import PlanOptions

OptionsLike = Union[PlanOptions, MixqOptions, Mapping[str, Any], None]


def plan_options(config: OptionsLike = None, *, max_extra_macs: Optional[float] = None,
                 alignment: Optional[int] = None) -> PlanOptions:
    """Scheduling options from a ``{"mixq.KEY": value}`` mapping, :class:`MixqOptions` or
    :class:`PlanOptions` (returned as is, with the keyword settings applied).

    Raises
    ------
    tvm_mixq.options.OptionError
        An unknown ``mixq.*`` key or an invalid value.
    """
    if isinstance(config, PlanOptions):
        opts = config
    else:
        mo = config if isinstance(config, MixqOptions) else MixqOptions.from_config(config or {})
        grid = mo.patch_grid
        opts = PlanOptions(
            patch_grid=f"{grid[0]}x{grid[1]}" if isinstance(grid, tuple) else str(grid),
            patch_stage_end=str(mo.patch_stage_end),
            channel_split=str(mo.channel_split),
            stream_input=bool(mo.stream_input),
            sram_limit_kb=float(mo.sram_limit_kb) if mo.sram_limit_kb else None,
        )
        if not mo.enable:
            opts.patch_grid = "off"
            opts.channel_split = "off"
    if max_extra_macs is not None:
        opts.max_extra_macs = max_extra_macs
    if alignment is not None:
        opts.alignment = alignment
    return opts
