"""The mixq passes, one ``tvm.transform`` module pass per file, in pipeline order.

* :class:`Partition`    -- QDQ layers -> composite functions (``mixq.conv2d``, ...)
* :class:`Calibrate`    -- float range of every layer's output
* :class:`PatchPlan`    -- patch grid of the leading, memory-heavy stage (MCUNetV2)
* :class:`VDPC`         -- value-driven patch classification: outlier patches stay 8-bit (QuantMCU)
* :class:`VDQS`         -- value-driven quantization search: bitwidths per feature map (QuantMCU)
* :class:`ChannelSplit` -- channel-split partial execution (Pex)
* :class:`MemoryPlan`   -- the static activation arena

Each is usable alone; :func:`tvm_mixq.relax.pipeline.pipeline` composes them.
"""
from .calibrate import Calibrate
from .channel_split import ChannelSplit
from .memory_plan import MemoryPlan
from .partition import Partition
from .patch_plan import PatchPlan
from .vdpc import VDPC
from .vdqs import VDQS

__all__ = ["Partition", "Calibrate", "PatchPlan", "VDPC", "VDQS", "ChannelSplit", "MemoryPlan"]
