"""Host side of the mixed-precision kernel library in ``kernels/``.

* :mod:`.layout` - offline packing of weights into the kernel layout (what goes to flash) and of
  activations into packed sub-byte tensors;
* :mod:`.build` - builds ``kernels/`` into a shared library with the system C compiler (plain or
  with AddressSanitizer + UBSan), or cross-compiles it for Cortex-M;
* :mod:`.lib` - :class:`KernelLib`, a ctypes binding that validates shapes and bitwidths in
  Python (raising :class:`tvm_mixq.errors.MixqError`) and calls the kernels on NumPy arrays.
"""
from .build import KERNELS_DIR, build_host_library, cross_compile, kernel_sources
from .layout import (
    BITS,
    act_range,
    kernel_weights,
    pack_activations,
    pack_depthwise_weights,
    pack_w4_lanes,
    pack_weights,
    unpack_activations,
    w4_lane_bias,
    w4_lanes_size,
    weight_range,
    weight_row_len,
    weights_size,
)
from .lib import KernelLib, KernelStatusError

__all__ = [
    "BITS",
    "KERNELS_DIR",
    "KernelLib",
    "KernelStatusError",
    "act_range",
    "kernel_weights",
    "build_host_library",
    "cross_compile",
    "kernel_sources",
    "pack_activations",
    "pack_depthwise_weights",
    "pack_w4_lanes",
    "pack_weights",
    "unpack_activations",
    "w4_lane_bias",
    "w4_lanes_size",
    "weight_range",
    "weight_row_len",
    "weights_size",
]
