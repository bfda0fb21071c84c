"""The project's bit-exact NumPy reference: integer kernels (:mod:`.ops`), fixed-point helpers
(:mod:`.fixedpoint`, :mod:`.transcendental`), sub-byte semantics (:mod:`.subbyte`), the graph
interpreter (:mod:`.interpreter`) and the comparison with TFLite (:mod:`.compare`)."""
from .interpreter import Interpreter, ReferenceOptions, find_unsupported, run_reference

__all__ = ["Interpreter", "ReferenceOptions", "find_unsupported", "run_reference"]
