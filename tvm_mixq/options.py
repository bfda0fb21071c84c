"""The ``mixq.*`` options shared by every command and by the TVM pass pipeline (DESIGN section 4).

One table, :data:`OPTION_SPECS`, lists every key with its TVM config type (``bool``, ``int``,
``float`` or ``str``), its default and a one-line help. From it come

* the keys registered with TVM's PassContext (:mod:`tvm_mixq.relax.config`, through the C++
  shim), so ``tvm.transform.PassContext(config={"mixq.sram_limit_kb": 64})`` is accepted;
* :class:`MixqOptions`, the typed, validated view of those keys that the passes and the planners
  read;
* :func:`parse_pass_config`, the parser of the ``--pass-config mixq.KEY=VAL`` strings of the
  command lines.

This module does not import TVM: command lines that never build a Relax module stay light.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from .errors import MixqError

PREFIX = "mixq."

#: Bitwidths the kernels implement.
SUPPORTED_BITS = (8, 4, 2)
#: Cores the project targets (``host`` builds the generated C for the machine running the tools).
SUPPORTED_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "host")
COST_MODELS = ("auto", "bitops", "measured")
#: VDPC rules, VDQS accuracy proxies and sub-byte weight roundings (tvm_mixq.quant).
OUTLIER_RULES = ("percentile", "sigma")
SENSITIVITIES = ("measured", "entropy")
WEIGHT_ROUNDINGS = ("hessian", "nearest")
OBJECTIVES = ("balanced", "speed", "memory")

PatchGrid = Union[str, tuple[int, int]]  # "auto", "off" or (rows, cols)
StageEnd = Union[str, int]  # "auto", an op index, or a tensor name
ChannelSplit = Union[str, int]  # "auto", "off" or a slice count >= 2


class OptionError(MixqError):
    """A ``mixq.*`` key that does not exist, or a value of the wrong type or out of range."""


@dataclass(frozen=True)
class OptionSpec:
    """One ``mixq.*`` key: how TVM stores it and how it becomes a :class:`MixqOptions` field."""

    key: str  # full key, "mixq.sram_limit_kb"
    field: str  # MixqOptions field name
    type: str  # TVM config type: "bool", "int", "float" or "str"
    default: Any  # raw default, of ``type``
    help: str  # one line, shown in error messages and by `mixq options`
    convert: Callable[[Any], Any]  # raw value -> typed field value; raises ValueError


# -- value converters (raw TVM config value -> typed field) -----------------------------------------


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected a bool (or 0/1)")


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an int")
    if value < 0:
        raise ValueError("must be >= 0")
    return int(value)


def _positive_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a float")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("must be a finite number > 0")
    return float(value)


def _unit_float(value: Any, what: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a float")
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be within [0, 1]" + what)
    return float(value)


def _budget_fraction(value: Any) -> float:
    return _unit_float(value, " (a fraction of the int8 cost; 0 = no budget)")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a str")
    return value.strip()


def _target(value: Any) -> str:
    """``cortex-m7``, ``c -mcpu=cortex-m7`` (a TVM target string as tvmc took it), or ``host``."""
    text = _str(value).lower()
    match = re.search(r"-mcpu=([\w-]+)", text)
    if match:
        cpu = match.group(1)
    elif text in ("c", "llvm") or text.startswith(("c ", "llvm ")):
        cpu = "host"
    else:
        cpu = text
    if cpu not in SUPPORTED_TARGETS:
        raise ValueError(f"unknown target {cpu!r}; use one of {', '.join(SUPPORTED_TARGETS)} "
                         "or a TVM target string such as 'c -mcpu=cortex-m7'")
    return cpu


def _bits(value: Any) -> tuple[int, ...]:
    text = _str(value)
    try:
        bits = tuple(sorted({int(b) for b in text.replace(" ", "").split(",") if b}, reverse=True))
    except ValueError:
        raise ValueError(f"expected a comma-separated list of bitwidths such as '8,4,2', got {text!r}") from None
    if not bits or any(b not in SUPPORTED_BITS for b in bits):
        raise ValueError(f"bitwidths must be drawn from {','.join(map(str, SUPPORTED_BITS))}, got {text!r}")
    if 8 not in bits:
        raise ValueError("the allowed bitwidths must include 8 (outlier patches and unplanned layers stay int8)")
    return bits


def _patch_grid(value: Any) -> PatchGrid:
    text = _str(value).lower()
    if text in ("auto", "off"):
        return text
    match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"expected 'auto', 'off' or 'NxM' (patch rows x columns, e.g. '3x3'), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _stage_end(value: Any) -> StageEnd:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("an op index must be >= 0")
        return int(value)
    text = _str(value)
    if not text:
        raise ValueError("expected 'auto', an op index or a tensor name")
    if text.lower() == "auto":
        return "auto"
    if text.isdigit():
        return int(text)
    return text


def _channel_split(value: Any) -> ChannelSplit:
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = _str(value).lower()
    if text in ("auto", "off"):
        return text
    if text.isdigit() and int(text) >= 2:
        return int(text)
    if text == "1":
        return "off"
    raise ValueError(f"expected 'auto', 'off' or a slice count >= 2, got {text!r}")


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _str(value).lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    convert.__name__ = f"_{name}"
    return convert


def _percentile(value: Any) -> float:
    v = _positive_float(value)
    if not 50.0 < v <= 100.0:
        raise ValueError(f"expected a percentile in (50, 100], got {v}")
    return v


def _cost_model(value: Any) -> str:
    text = _str(value).lower()
    if text not in COST_MODELS:
        raise ValueError(f"expected one of {', '.join(COST_MODELS)}, got {text!r}")
    return text


#: Every ``mixq.*`` key, in the order documentation and error messages list them.
OPTION_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec("mixq.enable", "enable", "bool", True, "0 gives the plain int8 baseline: no patches, no "
               "channel splits, no sub-byte", _as_bool),
    OptionSpec("mixq.target", "target", "str", "cortex-m7", "core: cortex-m4|cortex-m7|cortex-m33|cortex-m55|host "
               "or a TVM target string 'c -mcpu=...'", _target),
    OptionSpec("mixq.sram_limit_kb", "sram_limit_kb", "int", 0, "activation SRAM budget in KiB, 0 = no limit "
               "(minimise)", _non_negative_int),
    OptionSpec("mixq.bits", "bits", "str", "8,4,2", "allowed bitwidths, a subset of 8,4,2 that includes 8", _bits),
    OptionSpec("mixq.outlier_k", "outlier_k", "float", 3.0, "VDPC outlier threshold: a value beyond mean + k*std "
               "of the calibrated feature map is an outlier", _positive_float),
    OptionSpec("mixq.lambda", "lambda_", "float", 0.5, "VDQS trade-off in [0,1]: weight of the entropy loss "
               "against the BitOPs saved", _unit_float),
    OptionSpec("mixq.patch_grid", "patch_grid", "str", "auto", "patch grid of the first stage: auto|off|NxM",
               _patch_grid),
    OptionSpec("mixq.patch_stage_end", "patch_stage_end", "str", "auto", "last op of the patch stage: auto, an op "
               "index or a tensor name", _stage_end),
    OptionSpec("mixq.channel_split", "channel_split", "str", "auto", "channel-split partial execution: auto|off|N "
               "slices", _channel_split),
    OptionSpec("mixq.cost_model", "cost_model", "str", "auto", "cost the planners minimise: auto (measured when "
               "the target has a kernel cost table, else bitops)|bitops|measured (kernel instruction counts)",
               _cost_model),
    OptionSpec("mixq.cost_budget", "cost_budget", "float", 0.0, "VDQS cost target as a fraction of the int8 "
               "cost (e.g. 0.667 for 1.5x fewer instructions with the measured model); 0 = mixq.lambda decides",
               _budget_fraction),
    OptionSpec("mixq.stream_input", "stream_input", "bool", False, "read the model input patch by patch from its "
               "source instead of holding it whole in SRAM", _as_bool),
    OptionSpec("mixq.outlier_rule", "outlier_rule", "str", "percentile", "VDPC outlier rule: percentile (a value "
               "above mixq.outlier_percentile of the feature map's calibration values) or sigma (mixq.outlier_k)",
               _choice("outlier_rule", OUTLIER_RULES)),
    OptionSpec("mixq.outlier_percentile", "outlier_percentile", "float", 99.9, "VDPC percentile rule: a value "
               "above this percentile (or below 100 minus it) of the calibrated feature map is an outlier",
               _percentile),
    OptionSpec("mixq.sensitivity", "sensitivity", "str", "measured", "VDQS accuracy proxy: measured (entropy "
               "loss weighted by the output change measured on calibration samples) or entropy (alone)",
               _choice("sensitivity", SENSITIVITIES)),
    OptionSpec("mixq.weight_rounding", "weight_rounding", "str", "hessian", "sub-byte weight rounding: hessian "
               "(error feedback from calibration statistics) or nearest", _choice("weight_rounding", WEIGHT_ROUNDINGS)),
    OptionSpec("mixq.equalize", "equalize", "float", 0.5, "range equalization of sub-byte feature maps in [0,1]: "
               "the producer stretches each channel by (channel range / feature-map range) ** -x and the consumer's "
               "weights compensate (0 = off, 1 = equal ranges)", _unit_float),
    OptionSpec("mixq.min_agreement", "min_agreement", "float", 0.95, "accuracy guard of the default search: the "
               "plan's top-1 agreement with the int8 model on the calibration samples must reach this, else the "
               "search spends less of its accuracy budget (classifiers with --calib data; 0 = off)", _unit_float),
    OptionSpec("mixq.objective", "objective", "str", "balanced", "which measured schedule deploy --run keeps without "
               "mixq.sram_limit_kb: balanced (among those no slower than int8, the best SRAM ratio times instruction "
               "ratio), speed (the fewest instructions) or memory (the smallest arena)",
               _choice("objective", OBJECTIVES)),
)

_BY_KEY: dict[str, OptionSpec] = {spec.key: spec for spec in OPTION_SPECS}
_BY_FIELD: dict[str, OptionSpec] = {spec.field: spec for spec in OPTION_SPECS}


def valid_keys_text() -> str:
    """``mixq.enable (bool), mixq.target (str), ...``: the list error messages show."""
    return ", ".join(f"{spec.key} ({spec.type})" for spec in OPTION_SPECS)


def spec_for(key: str) -> OptionSpec:
    """The spec of a ``mixq.*`` key, or an :class:`OptionError` naming the valid keys."""
    spec = _BY_KEY.get(key)
    if spec is None:
        close = difflib.get_close_matches(key, list(_BY_KEY), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise OptionError(f"unknown option {key}{hint} Valid keys: {valid_keys_text()}")
    return spec


def _convert(spec: OptionSpec, raw: Any) -> Any:
    try:
        return spec.convert(raw)
    except ValueError as exc:
        raise OptionError(f"{spec.key}={raw!r}: {exc} ({spec.help})") from None


@dataclass(frozen=True)
class MixqOptions:
    """Typed, validated ``mixq.*`` options. Build with :meth:`from_config` or keyword arguments.

    Field values are already converted: ``bits`` is a tuple such as ``(8, 4, 2)``, ``patch_grid``
    is ``"auto"``, ``"off"`` or ``(rows, cols)``, ``channel_split`` is ``"auto"``, ``"off"`` or
    a slice count, ``target`` is a core name (``"cortex-m7"``).
    """

    enable: bool = True
    target: str = "cortex-m7"
    sram_limit_kb: int = 0
    bits: tuple[int, ...] = (8, 4, 2)
    outlier_k: float = 3.0
    lambda_: float = 0.5
    patch_grid: PatchGrid = "auto"
    patch_stage_end: StageEnd = "auto"
    channel_split: ChannelSplit = "auto"
    cost_model: str = "auto"
    cost_budget: float = 0.0
    stream_input: bool = False
    outlier_rule: str = "percentile"
    outlier_percentile: float = 99.9
    sensitivity: str = "measured"
    weight_rounding: str = "hessian"
    equalize: float = 0.5
    min_agreement: float = 0.95
    objective: str = "balanced"

    def __post_init__(self) -> None:
        # Accept raw spellings for every field (e.g. bits="8,4") and validate typed ones.
        for spec in OPTION_SPECS:
            value = getattr(self, spec.field)
            raw = _to_raw(spec, value)
            object.__setattr__(self, spec.field, _convert(spec, raw))

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]]) -> "MixqOptions":
        """Options from a PassContext config (or any mapping); keys outside ``mixq.`` are ignored.

        Raises
        ------
        OptionError
            An unknown ``mixq.*`` key, or a value of the wrong type or out of range.
        """
        values: dict[str, Any] = {}
        for key, raw in dict(config or {}).items():
            key = str(key)
            if not key.startswith(PREFIX):
                continue
            spec = spec_for(key)
            values[spec.field] = _convert(spec, _python_value(raw))
        return cls(**values)

    @classmethod
    def from_strings(cls, items: Iterable[str]) -> "MixqOptions":
        """Options from ``mixq.KEY=VAL`` strings (the ``--pass-config`` flags)."""
        return cls.from_config(parse_pass_config(items))

    def replace(self, **changes: Any) -> "MixqOptions":
        """A copy with some fields changed (field names, e.g. ``lambda_=0.3``)."""
        return dataclasses.replace(self, **changes)

    # -- views ----------------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The raw ``{"mixq.KEY": value}`` mapping for ``tvm.transform.PassContext(config=...)``."""
        return {spec.key: _to_raw(spec, getattr(self, spec.field)) for spec in OPTION_SPECS}

    @property
    def plain_int8(self) -> bool:
        """True for the int8 baseline (``mixq.enable=0``): no patches, splits or sub-byte layers."""
        return not self.enable

    @property
    def max_bits(self) -> int:
        return max(self.bits)

    @property
    def min_bits(self) -> int:
        """Lowest bitwidth a layer may get (8 when mixed precision is off)."""
        return 8 if self.plain_int8 else min(self.bits)

    @property
    def sram_limit_bytes(self) -> Optional[int]:
        return self.sram_limit_kb * 1024 if self.sram_limit_kb else None

    def describe(self) -> str:
        """One line, ``mixq.enable=1 mixq.target=cortex-m7 ...``, for logs and reports."""
        return " ".join(f"{k}={_format_raw(v)}" for k, v in self.to_config().items())


def _python_value(raw: Any) -> Any:
    """TVM config values come back as Python bool/int/float/str; unwrap anything else TVM gives."""
    if isinstance(raw, (bool, int, float, str)):
        return raw
    for attr in ("value",):  # IntImm / FloatImm
        if hasattr(raw, attr):
            return getattr(raw, attr)
    return str(raw)


def _to_raw(spec: OptionSpec, value: Any) -> Any:
    """Typed field value (or a raw one) -> the raw config value of the spec's TVM type."""
    if spec.field == "bits" and isinstance(value, (tuple, list)):
        return ",".join(str(int(b)) for b in value)
    if spec.field == "patch_grid" and isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise OptionError(f"{spec.key}: expected (rows, cols), got {value!r}")
        return f"{int(value[0])}x{int(value[1])}"
    if spec.type == "str" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if spec.type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _format_raw(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


# -- command-line strings ------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_value(key: str, text: str) -> Any:
    """Parse the text of ``mixq.KEY=VAL`` into the raw config value of the key's TVM type."""
    spec = spec_for(key)
    text = text.strip()
    if spec.type == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise OptionError(f"{key}={text!r}: expected a bool (0/1, true/false) ({spec.help})")
    if spec.type == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise OptionError(f"{key}={text!r}: expected an int ({spec.help})") from None
    if spec.type == "float":
        try:
            return float(text)
        except ValueError:
            raise OptionError(f"{key}={text!r}: expected a float ({spec.help})") from None
    return text


def split_assignment(item: str) -> tuple[str, str]:
    """``"mixq.bits=8,4"`` -> ``("mixq.bits", "8,4")``; a missing ``=`` is an :class:`OptionError`."""
    if "=" not in item:
        raise OptionError(f"pass config {item!r} is not of the form KEY=VALUE")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise OptionError(f"pass config {item!r} has an empty key")
    return key, text


def parse_pass_config(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``mixq.KEY=VAL`` strings into a validated raw config dict.

    Each value is parsed to its key's TVM type and then validated as :class:`MixqOptions` would;
    a later assignment of a key overrides an earlier one. Keys outside ``mixq.`` are refused
    here; the TVM-aware parser :func:`tvm_mixq.relax.config.parse_pass_configs` also accepts
    TVM's own keys.

    Raises
    ------
    OptionError
        Malformed item, unknown key, wrong type or out-of-range value.
    """
    config: dict[str, Any] = {}
    for item in items:
        key, text = split_assignment(item)
        if not key.startswith(PREFIX):
            raise OptionError(f"{key} is not a mixq option. Valid keys: {valid_keys_text()}")
        spec = spec_for(key)
        raw = parse_value(key, text)
        _convert(spec, raw)  # validate now, one clear message per bad flag
        config[key] = raw
    return config


def field_spec(field_name: str) -> OptionSpec:
    """The spec of a :class:`MixqOptions` field (``"lambda_"`` -> ``mixq.lambda``)."""
    return _BY_FIELD[field_name]
