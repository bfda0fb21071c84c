"""``mixq.ChannelSplit``: channel-split partial execution (Pex).

Annotates ``mixq.channel_split`` (number of channel slices, 1 = whole) on every layer. Does not
fire for ``mixq.channel_split=off`` or the int8 baseline.
"""
from __future__ import annotations

from typing import Optional

import tvm

from ...options import MixqOptions
from ..planner import Layer
from ._base import PlannerPass


@tvm.transform.module_pass(opt_level=0, name="mixq.ChannelSplit")
class ChannelSplit(PlannerPass):
    """Annotate the channel slices of every layer."""

    stage = "split_channels"

    def skip_reason(self, options: MixqOptions, layers: list[Layer]) -> Optional[str]:
        if options.channel_split == "off":
            return "mixq.channel_split=off"
        return super().skip_reason(options, layers)
