"""Run a ``.tflite`` model with TFLite's *reference* kernels (ai-edge-litert, ``BUILTIN_REF``).

These are the kernels TFLM and CMSIS-NN are bit-exact with; the default optimized kernels may
round differently. Used by ``mixq check`` and the tests as the ground truth for
:class:`tvm_mixq.reference.interpreter.Interpreter`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputDataError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IODetail:
    """Shape, dtype and (scale, zero point) of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


class TFLiteRunner:
    """A TFLite interpreter on one model with the reference op resolver.

    Parameters
    ----------
    model : path of the ``.tflite`` file, or its bytes.
    """

    def __init__(self, model: str | os.PathLike | bytes) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError as exc:  # pragma: no cover - environment problem
            raise ModelError("ai-edge-litert is not installed; `pip install ai-edge-litert`") from exc
        kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF, "num_threads": 1}
        try:
            if isinstance(model, (bytes, bytearray)):
                self._interp = Interpreter(model_content=bytes(model), **kwargs)
            else:
                self._interp = Interpreter(model_path=os.fspath(model), **kwargs)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"TFLite cannot load the model: {str(exc).strip().splitlines()[0]}") from None
        self.inputs = [self._detail(d) for d in self._interp.get_input_details()]
        self.outputs = [self._detail(d) for d in self._interp.get_output_details()]
        self._in_index = [d["index"] for d in self._interp.get_input_details()]
        self._out_index = [d["index"] for d in self._interp.get_output_details()]

    @staticmethod
    def _detail(d: dict) -> IODetail:
        scale, zp = d.get("quantization", (0.0, 0))
        return IODetail(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name, float(scale), int(zp))

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference: ``inputs`` in the model's order, shapes and dtypes exactly."""
        if len(inputs) != len(self.inputs):
            raise InputDataError(f"model has {len(self.inputs)} inputs, got {len(inputs)}")
        for index, detail, value in zip(self._in_index, self.inputs, inputs):
            value = np.asarray(value)
            if value.shape != detail.shape or value.dtype.name != detail.dtype:
                raise InputDataError(f"input '{detail.name}' needs shape {list(detail.shape)} dtype {detail.dtype}, "
                                     f"got {list(value.shape)} {value.dtype.name}")
            self._interp.set_tensor(index, value)
        self._interp.invoke()
        return [np.array(self._interp.get_tensor(i)) for i in self._out_index]

    def run_batch(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Inputs with a leading batch axis (model batch 1): one inference per sample, stacked."""
        count = int(np.asarray(inputs[0]).shape[0]) if inputs else 0
        results: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for i in range(count):
            sample = [np.asarray(x)[i:i + 1] for x in inputs]
            for slot, out in zip(results, self.run(sample)):
                slot.append(out)
        return [np.concatenate(r, axis=0) for r in results]


def run_tflite(model: str | os.PathLike | bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One inference of ``model`` with TFLite's reference kernels."""
    return TFLiteRunner(model).run(inputs)
