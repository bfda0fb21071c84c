"""``mixq.*`` keys in TVM's PassContext.

Importing this module imports TVM and registers every key of
:data:`tvm_mixq.options.OPTION_SPECS` through the C++ shim (:mod:`tvm_mixq.relax.shim`), after
which ``tvm.transform.PassContext(config={"mixq.sram_limit_kb": 64})`` is accepted and
``PassContext.list_configs()`` lists the keys. TVM refuses unregistered keys on its own
(``AttributeError: Invalid config option 'mixq.bogus' candidates are: ...``) and the shim refuses
values of the wrong type (``TypeError`` naming the key, the expected type and every mixq key);
:func:`pass_context` checks ``mixq.*`` keys and values first and raises a
:class:`tvm_mixq.options.OptionError` (a :class:`tvm_mixq.errors.MixqError`) instead.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any, Iterable, Mapping, Optional

import tvm
import tvm_ffi

from ..errors import InputDataError, MixqError, ModelError
from ..options import (
    OPTION_SPECS,
    PREFIX,
    MixqOptions,
    OptionError,
    parse_value,
    spec_for,
    split_assignment,
)
from . import shim

log = logging.getLogger(__name__)

_LOCK = threading.Lock()


def registered_keys() -> list[str]:
    """The ``mixq.*`` keys TVM knows in this process."""
    return sorted(k for k in tvm.transform.PassContext.list_configs() if str(k).startswith(PREFIX))


def register_options() -> None:
    """Register every ``mixq.*`` key with TVM (idempotent; builds the shim on first use).

    Raises
    ------
    shim.ShimBuildError
        The shim could not be built (no g++, no TVM headers).
    RuntimeError
        TVM refused a registration.
    """
    with _LOCK:
        known = set(tvm.transform.PassContext.list_configs())
        missing = [spec for spec in OPTION_SPECS if spec.key not in known]
        if not missing:
            return
        path = shim.shim_path(build_if_missing=True)
        lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        register = lib.mixq_register_config_option
        register.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
        register.restype = ctypes.c_int
        for spec in missing:
            status = register(spec.key.encode(), spec.type.encode(), spec.help.encode())
            if status != 0:
                raise RuntimeError(f"TVM refused to register PassContext option {spec.key} (status {status})")
        log.debug("registered %d mixq PassContext options from %s", len(missing), path)


def options_from_context(ctx: Optional[tvm.transform.PassContext] = None) -> MixqOptions:
    """The :class:`MixqOptions` of a PassContext (the current one by default)."""
    ctx = ctx if ctx is not None else tvm.transform.PassContext.current()
    return MixqOptions.from_config({str(k): v for k, v in ctx.config.items()})


def check_config(config: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Validate the ``mixq.*`` entries of a PassContext config; return the config unchanged.

    Raises
    ------
    OptionError
        Unknown ``mixq.*`` key (the message lists the valid keys), a value of the wrong type
        (e.g. ``"64"`` for ``mixq.sram_limit_kb``) or out of range.
    """
    config = dict(config or {})
    for key, value in config.items():
        if not str(key).startswith(PREFIX):
            continue
        spec = spec_for(str(key))
        if not _has_type(value, spec.type):
            raise OptionError(f"{key} expects {spec.type} ({spec.help}), got {type(value).__name__} {value!r}")
    MixqOptions.from_config(config)  # ranges and formats
    return config


def _has_type(value: Any, type_name: str) -> bool:
    """Would the shim's legalization accept ``value`` for a key of TVM type ``type_name``?"""
    if type_name == "bool":
        return isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def pass_context(config: Optional[Mapping[str, Any]] = None, options: Optional[MixqOptions] = None,
                 opt_level: int = 2, **kwargs: Any) -> tvm.transform.PassContext:
    """``tvm.transform.PassContext`` with ``mixq.*`` keys checked first (clear one-line errors).

    Parameters
    ----------
    config
        PassContext config; ``mixq.*`` keys are validated, others are left to TVM.
    options
        Typed options merged under ``config`` (``config`` wins on a shared key).
    opt_level, kwargs
        Passed to ``tvm.transform.PassContext``.
    """
    register_options()
    merged: dict[str, Any] = dict(options.to_config()) if options is not None else {}
    merged.update(check_config(config))
    try:
        return tvm.transform.PassContext(opt_level=opt_level, config=merged, **kwargs)
    except AttributeError as exc:  # TVM: "Invalid config option 'x' candidates are: ..."
        raise OptionError(f"{str(exc).splitlines()[0][:300]}") from None


def parse_pass_configs(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``KEY=VAL`` strings (tvmc's ``--pass-config``) for ``mixq.*`` and TVM's own keys.

    ``mixq.*`` values are parsed and validated per :mod:`tvm_mixq.options`; other keys take the
    type TVM lists for them (``bool``, ``int``/``IntImm``, else the string itself).
    """
    register_options()
    known = tvm.transform.PassContext.list_configs()
    config: dict[str, Any] = {}
    for item in items:
        key, text = split_assignment(item)
        if key.startswith(PREFIX):
            config[key] = parse_value(key, text)
            continue
        if key not in known:
            raise OptionError(f"unknown pass config {key}; TVM knows {', '.join(sorted(map(str, known)))}")
        type_name = str(known[key]["type"])
        text = text.strip()
        if type_name == "bool":
            if text.lower() not in ("0", "1", "true", "false"):
                raise OptionError(f"{key}={text!r}: expected a bool")
            config[key] = text.lower() in ("1", "true")
        elif type_name in ("int", "ir.IntImm"):
            try:
                config[key] = int(text, 0)
            except ValueError:
                raise OptionError(f"{key}={text!r}: expected an int") from None
        else:
            config[key] = text
    check_config(config)
    return config


def _register_error_kinds() -> None:
    """Let the project's bad-input errors cross TVM's FFI (a pass raising them) with their class,
    so command lines still print one line and exit 2 instead of reporting an internal error."""
    for cls in (MixqError, ModelError, InputDataError, OptionError):
        tvm_ffi.register_error(cls)


register_options()
_register_error_kinds()
