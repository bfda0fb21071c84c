"""``mixq.Partition``: QDQ layers -> composite functions ``mixq_<op>_<output>``.

Runs ``FuseOpsByPattern`` with the table of :mod:`tvm_mixq.relax.patterns`, then names each
composite function after its op and the Relax variable of its output (``mixq_conv2d_t12``) and
records where it came from: ``mixq.output`` (that variable), and, for modules made by
:mod:`tvm_mixq.relax.importer`, ``mixq.tensor_index``, ``mixq.op_index`` and
``mixq.tensor_name`` of the project graph. A module with nothing to match (or already
partitioned) is returned unchanged.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

import tvm
from tvm import relax

from ...options import MixqOptions
from .. import patterns
from ..config import options_from_context
from ..importer import ATTR_TENSOR_NAMES, ATTR_TENSORS
from ..planner import composite_functions, layer_attrs

log = logging.getLogger(__name__)


def _binding_names(func: relax.Function) -> dict[int, str]:
    """Address of each bound value -> name of the variable bound to it."""
    names = {}
    for block in func.body.blocks:
        for binding in block.bindings:
            names[binding.value.id_] = binding.var.name
    return names


@tvm.transform.module_pass(opt_level=0, name="mixq.Partition")
class Partition:
    """Group every QDQ layer the mixq kernels run into a composite function.

    Parameters
    ----------
    options
        Fixed options (by default read from the current PassContext). Partitioning itself does
        not depend on them; they are accepted so every mixq pass is built the same way.
    annotate_codegen
        Also wrap each composite for the ``relax.ext.mixq`` external codegen (a public function
        with ``Codegen = "mixq"`` and ``global_symbol`` = its name, the C symbol).
    """

    def __init__(self, options: Optional[MixqOptions] = None, annotate_codegen: bool = False) -> None:
        self.options = options
        self.annotate_codegen = annotate_codegen
        if annotate_codegen:
            from .. import codegen  # noqa: F401  (registers relax.ext.mixq for RunCodegen)

    def transform_module(self, mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        if self.options is None:
            options_from_context(ctx)  # validate the mixq.* keys early, with a clear message
        if "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
            return mod
        before = set(composite_functions(mod))
        outputs = _binding_names(mod["main"])
        fused = relax.transform.FuseOpsByPattern(_fusion_patterns(outputs), bind_constants=True,
                                                 annotate_codegen=self.annotate_codegen)(mod)
        new = [name for name in composite_functions(fused) if name not in before]
        if not new:
            return mod
        return _name_and_link(fused, new, mod.attrs, keep_public=self.annotate_codegen)


def _fusion_patterns(outputs: Mapping[int, str]) -> list[relax.transform.FusionPattern]:
    def getter(op: str):
        def attrs(matched: Mapping[str, relax.Expr]) -> dict[str, Any]:
            result = patterns.match_attrs(op, matched)
            root = next(matched[k] for k in ("clip", "quantize", "narrow") if k in matched)
            name = outputs.get(root.id_)
            if name is not None:
                result["mixq.output"] = name
            return result

        return attrs

    return [relax.transform.FusionPattern(row.name, row.pattern, dict(row.annotations), row.check,
                                          getter(row.name.split(".", 1)[1]))
            for row in patterns.pattern_table()]


def _name_and_link(mod: tvm.IRModule, new: list[str], source_attrs: Any, keep_public: bool = False
                   ) -> tvm.IRModule:
    """Name the new layer functions ``mixq_<op>_<output>`` and link them to the project graph.

    Renaming uses TVM's own ``NormalizeGlobalVar`` (which names a public function after its
    ``global_symbol``); plain composites are made private again afterwards, while functions
    wrapped for the external codegen keep their ``global_symbol`` (the C symbol).
    """
    tensors = dict(source_attrs[ATTR_TENSORS]) if source_attrs is not None and ATTR_TENSORS in source_attrs else {}
    tensor_names = (dict(source_attrs[ATTR_TENSOR_NAMES])
                    if source_attrs is not None and ATTR_TENSOR_NAMES in source_attrs else {})
    taken = {gv.name_hint for gv in mod.get_global_vars()}
    mod = mod.clone()
    names = []
    for index, old in enumerate(new):
        gv = mod.get_global_var(old)
        func = mod[gv]
        attrs = layer_attrs(func)
        op = str(attrs["mixq.op"])
        output = str(attrs.get("mixq.output", index))
        name = f"mixq_{op}_{output}"
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
        link = tensors.get(output)
        extra: dict[str, Any] = {"mixq.tensor_index": int(link[0]) if link is not None else -1,
                                 "mixq.op_index": int(link[1]) if link is not None else -1,
                                 "global_symbol": name}
        if output in tensor_names:
            extra["mixq.tensor_name"] = str(tensor_names[output])
        mod[gv] = func.with_attrs(extra)
    mod = relax.transform.NormalizeGlobalVar()(mod)
    if not keep_public:
        for name in names:
            gv = mod.get_global_var(name)
            mod[gv] = mod[gv].without_attr("global_symbol")
    return mod
