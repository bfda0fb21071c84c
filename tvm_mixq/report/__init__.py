"""Deployment report: one HTML page with PNG figures (matplotlib, Agg backend).

* ``memory.png``: live arena bytes per layer of the mixq and int8 deployments, with the device's
  SRAM limit and TFLM's arena for the same model;
* ``bitwidths.png``: per-layer bitwidths (input, weights, output); when the patch stage has VDPC
  outlier patches, its layers are hatched and the bitwidths outlier patches run them at follow a '/';
* ``instructions.png``: instructions per layer, mixq against the int8 baseline (after ``--run``).
"""
from .html import write_report

__all__ = ["write_report"]
