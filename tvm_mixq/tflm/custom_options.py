"""Custom options of the MIXQ ops: flexbuffer maps the TFLM kernels in ``tflm_ops/`` parse in Init.

Every map has ``version`` (:data:`OPTIONS_VERSION`); the keys of each op are listed in
``tflm_ops/mixq_tflm_ops.h`` and in :data:`REQUIRED_KEYS` here (integers, or integer lists for
shapes ``[n, h, w, c]`` and pairs ``[h, w]``). :func:`encode` checks the keys and writes the
bytes; :func:`decode` reads them back (used by tests and ``mixq tflm`` reports).
"""
from __future__ import annotations

from typing import Any, Mapping

from flatbuffers import flexbuffers

from ..errors import MixqError

OPTIONS_VERSION = 1

#: The custom op names, in the order ``mixq_tflm::AllOps()`` registers them.
MIXQ_CONV_2D = "MIXQ_CONV_2D"
MIXQ_DEPTHWISE_CONV_2D = "MIXQ_DEPTHWISE_CONV_2D"
MIXQ_FULLY_CONNECTED = "MIXQ_FULLY_CONNECTED"
MIXQ_ADD = "MIXQ_ADD"
MIXQ_AVERAGE_POOL_2D = "MIXQ_AVERAGE_POOL_2D"
MIXQ_OPS = (MIXQ_CONV_2D, MIXQ_DEPTHWISE_CONV_2D, MIXQ_FULLY_CONNECTED, MIXQ_ADD, MIXQ_AVERAGE_POOL_2D)

_COMMON = ("version", "out_bits", "output_zp", "act_min", "act_max")
_WEIGHTED = _COMMON + ("in_bits", "w_bits", "input_zp", "in_shape", "filter_shape", "out_shape")

#: Keys each op's options must have (lists: shapes of 4, pairs of 2).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    MIXQ_CONV_2D: _WEIGHTED + ("stride", "padding", "dilation"),
    MIXQ_DEPTHWISE_CONV_2D: _WEIGHTED + ("stride", "padding", "dilation", "depth_multiplier"),
    MIXQ_FULLY_CONNECTED: _WEIGHTED,
    MIXQ_ADD: _COMMON + ("in1_bits", "in2_bits", "shape", "in1_zp", "in1_mult", "in1_shift", "in2_zp", "in2_mult",
                         "in2_shift", "left_shift", "out_mult", "out_shift"),
    MIXQ_AVERAGE_POOL_2D: _COMMON + ("in_bits", "input_zp", "in_shape", "out_shape", "filter", "stride", "padding",
                                     "multiplier", "shift"),
}

_LIST_LENGTHS = {"in_shape": 4, "filter_shape": 4, "out_shape": 4, "shape": 4, "stride": 2, "padding": 2,
                 "dilation": 2, "filter": 2}

_INT32 = (-(1 << 31), (1 << 31) - 1)


def _check_int(op: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise MixqError(f"{op} option {key}={value!r} is not an integer")
    v = int(value)
    if not _INT32[0] <= v <= _INT32[1]:
        raise MixqError(f"{op} option {key}={v} leaves the int32 range")
    return v


def encode(op: str, options: Mapping[str, Any]) -> bytes:
    """Flexbuffer bytes of one MIXQ op's options (``version`` is added).

    Raises
    ------
    MixqError
        An unknown op, a missing key, an unknown key, or a value that is not an int32 (list).
    """
    if op not in REQUIRED_KEYS:
        raise MixqError(f"unknown MIXQ op {op!r}; one of {', '.join(MIXQ_OPS)}")
    values = dict(options)
    values["version"] = OPTIONS_VERSION
    required = set(REQUIRED_KEYS[op])
    missing = sorted(required - set(values))
    extra = sorted(set(values) - required)
    if missing or extra:
        raise MixqError(f"{op} options: missing {missing or 'none'}, unknown {extra or 'none'}")
    clean: dict[str, Any] = {}
    for key in sorted(values):
        value = values[key]
        if key in _LIST_LENGTHS:
            items = [_check_int(op, key, v) for v in value]
            if len(items) != _LIST_LENGTHS[key]:
                raise MixqError(f"{op} option {key} needs {_LIST_LENGTHS[key]} values, got {items}")
            clean[key] = items
        else:
            clean[key] = _check_int(op, key, value)
    return bytes(flexbuffers.Dumps(clean))


def decode(data: bytes) -> dict[str, Any]:
    """The options map of a MIXQ op (inverse of :func:`encode`)."""
    try:
        value = flexbuffers.Loads(bytes(data))
    except Exception as exc:  # flexbuffers raises assorted errors on garbage
        raise MixqError(f"custom options are not a flexbuffer: {exc}") from None
    if not isinstance(value, dict):
        raise MixqError("custom options are not a flexbuffer map")
    return value
