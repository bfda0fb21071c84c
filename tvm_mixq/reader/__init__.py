"""TFLite reader: flatbuffer -> project graph (:mod:`tvm_mixq.graph`)."""
from .tflite_reader import SUPPORTED_OPS, read_tflite, read_tflite_buffer

__all__ = ["SUPPORTED_OPS", "read_tflite", "read_tflite_buffer"]
