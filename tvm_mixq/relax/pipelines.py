"""``tvm_mixq.pipeline``: the mixq passes as one ``tvm.transform.Sequential``.

Phases, as TVM's own pipelines are written: partition (layers -> composite functions), plan
(calibrate, patches, VDPC, VDQS, channel split), memory. Options come from the PassContext's
``mixq.*`` keys unless given here.

Example
-------
>>> import tvm, tvm_mixq
>>> mod = tvm_mixq.from_tflite("vww_96_int8.tflite")
>>> with tvm_mixq.pass_context({"mixq.sram_limit_kb": 64, "mixq.bits": "8,4"}):
...     mod = tvm_mixq.pipeline()(mod)
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import tvm

from ..graph import Graph
from ..options import MixqOptions
from . import passes
from .planner import MixqPlanner


def partition_phase(options: Optional[MixqOptions] = None, annotate_codegen: bool = False
                    ) -> list[tvm.transform.Pass]:
    return [passes.Partition(options=options, annotate_codegen=annotate_codegen)]


def plan_phase(planner: MixqPlanner, options: Optional[MixqOptions] = None, graph: Optional[Graph] = None,
               calibration: Optional[Mapping[str, np.ndarray]] = None) -> list[tvm.transform.Pass]:
    kwargs = dict(planner=planner, options=options, graph=graph, calibration=calibration)
    return [passes.Calibrate(**kwargs), passes.PatchPlan(**kwargs), passes.VDPC(**kwargs), passes.VDQS(**kwargs),
            passes.ChannelSplit(**kwargs)]


def memory_phase(planner: MixqPlanner, options: Optional[MixqOptions] = None, graph: Optional[Graph] = None,
                 calibration: Optional[Mapping[str, np.ndarray]] = None) -> list[tvm.transform.Pass]:
    return [passes.MemoryPlan(planner=planner, options=options, graph=graph, calibration=calibration)]


def pipeline(options: Optional[MixqOptions] = None, planner: Optional[MixqPlanner] = None,
             graph: Optional[Graph] = None, calibration: Optional[Mapping[str, np.ndarray]] = None,
             annotate_codegen: bool = False) -> tvm.transform.Pass:
    """The mixq pass pipeline.

    Parameters
    ----------
    options
        Fixed options; by default every pass reads the current PassContext's ``mixq.*`` keys.
    planner
        The algorithms behind the passes (default: the int8 stand-in
        :class:`tvm_mixq.relax.planner.MixqPlanner`); one instance is shared by all passes.
    graph, calibration
        Handed to the planner (the project graph; calibration inputs ``input_0``, ...).
    annotate_codegen
        Wrap the layers for the ``relax.ext.mixq`` external codegen, so that
        ``relax.transform.RunCodegen()`` can follow the pipeline.
    """
    planner = planner if planner is not None else MixqPlanner()
    seq = (partition_phase(options, annotate_codegen) + plan_phase(planner, options, graph, calibration)
           + memory_phase(planner, options, graph, calibration))
    return tvm.transform.Sequential(seq, opt_level=0, name="mixq.Pipeline")
