"""TVM target strings as tvmc took them, reduced to the core the project generates code for.

TVM 0.27 no longer parses command-line target strings (``tvm.target.Target("c -mcpu=...")`` is
refused), so the driver parses them itself:

* ``c`` (or ``llvm``) alone: the machine running the tools (``host``);
* ``c -mcpu=cortex-m7`` / ``c -mcpu=cortex-m4`` (``-keys=...``, ``-model=...``, ``-march=...`` are
  accepted and recorded);
* a BYOC prefix as tvmc wrote it, ``mixq, c -mcpu=cortex-m7`` (the project's own codegen);
* the split spelling ``--target c --target-c-mcpu cortex-m7`` (:func:`parse_target` takes the
  ``--target-c-*`` values as ``extra``).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..errors import MixqError

#: Cores the generated C is built for: their QEMU template, and ``host``.
CORES = ("cortex-m4", "cortex-m7", "host")
#: Target kinds that mean "C source" here.
C_KINDS = ("c", "llvm")
#: BYOC kinds accepted before the C target (``mixq, c -mcpu=...``).
BYOC_KINDS = ("mixq",)
#: Attributes of the C target that are accepted; only ``mcpu`` changes anything.
KNOWN_ATTRS = ("mcpu", "keys", "model", "march", "mattr", "mfloat-abi")


class TargetError(MixqError):
    """A target string or target flag the driver does not understand."""


@dataclass(frozen=True)
class CompileTarget:
    """The parsed ``--target``: the core, the kind and every attribute as given."""

    core: str  # "cortex-m4", "cortex-m7" or "host"
    kind: str  # "c" or "llvm"
    attrs: Mapping[str, str] = field(default_factory=dict)
    byoc: tuple[str, ...] = ()
    text: str = ""

    @property
    def is_host(self) -> bool:
        return self.core == "host"

    def to_dict(self) -> dict:
        return {"core": self.core, "kind": self.kind, "attrs": dict(self.attrs), "byoc": list(self.byoc),
                "string": self.text}


def _parse_attrs(tokens: list[str], text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for tok in tokens:
        if not tok.startswith("-") or "=" not in tok:
            raise TargetError(f"target {text!r}: cannot read {tok!r} (expected -key=value, e.g. -mcpu=cortex-m7)")
        key, value = tok.lstrip("-").split("=", 1)
        if key not in KNOWN_ATTRS:
            raise TargetError(f"target {text!r}: unknown attribute -{key} (known: "
                              f"{', '.join('-' + a for a in KNOWN_ATTRS)})")
        if not value:
            raise TargetError(f"target {text!r}: -{key} has no value")
        attrs[key] = value
    return attrs


def parse_target(text: str, extra: Optional[Mapping[str, Optional[str]]] = None) -> CompileTarget:
    """Parse a tvmc ``--target`` value (and the ``--target-c-KEY`` flags as ``extra``).

    Raises
    ------
    TargetError
        An empty string, a kind other than ``c``/``llvm`` (after an optional ``mixq`` BYOC
        prefix), an unknown attribute, or a core other than cortex-m4, cortex-m7 or the host.
    """
    text = (text or "").strip()
    if not text:
        raise TargetError("empty --target: use e.g. --target \"c -mcpu=cortex-m7\"")
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise TargetError(f"target {text!r}: empty entry in the comma-separated list")
    byoc = tuple(p for p in parts[:-1])
    for kind in byoc:
        if kind not in BYOC_KINDS:
            raise TargetError(f"target {text!r}: unsupported BYOC target {kind!r} (this driver offers: "
                              f"{', '.join(BYOC_KINDS)})")
    try:
        tokens = shlex.split(parts[-1])
    except ValueError as exc:
        raise TargetError(f"target {text!r}: {exc}") from None
    kind = tokens[0]
    if kind not in C_KINDS:
        raise TargetError(f"unsupported target kind {kind!r}: this driver generates C for Cortex-M or the host; "
                          "use \"c -mcpu=cortex-m7\", \"c -mcpu=cortex-m4\" or \"c\"")
    attrs = _parse_attrs(tokens[1:], text)
    for key, value in (extra or {}).items():
        if value is None:
            continue
        if key not in KNOWN_ATTRS:
            raise TargetError(f"unknown target flag --target-{kind}-{key}")
        attrs[key] = str(value).strip()
    cpu = attrs.get("mcpu", "").lower()
    core = cpu or "host"
    if core not in CORES:
        raise TargetError(f"unsupported -mcpu={cpu}: use cortex-m4 or cortex-m7 (or plain \"c\" for the host)")
    return CompileTarget(core=core, kind=kind, attrs=attrs, byoc=byoc, text=text)
