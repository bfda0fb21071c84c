"""Check firmware for the kernel library on an emulated Cortex-M core.

:func:`write_check_firmware` turns a list of :class:`~tvm_mixq.kernellib.cases.ConvCase` (and
``PoolCase``, ``AddCase``) into one C file: the packed operands and the oracle's expected output of every case as constant arrays,
and a ``main`` that runs each case through the public dispatcher (the DSP path when built for
a core with the DSP extension), counts its instructions and compares the output byte for byte.
:func:`run_cases` builds it with the emulation harness (:mod:`tvm_mixq.emu`) and runs it in QEMU.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import layout
from .build import default_build_dir, include_dirs, kernel_sources
from .cases import AddCase, PoolCase

log = logging.getLogger(__name__)

#: Static scratch arena of the check firmware (bytes).
ARENA_BYTES = 96 * 1024


def _array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    if not flat:
        flat = [0]
    body = ",".join(str(v) for v in flat)
    return f"static const {ctype} {name}[{len(flat)}] = {{{body}}};\n"


def case_name(i: int, case) -> str:
    """The name case i reports under (``<op>_a<in>w<w>o<out>_<i>``, pools ``avgpool_a<in>o<out>_<i>``)."""
    if isinstance(case, PoolCase):
        return f"avgpool_a{case.bits[0]}o{case.bits[1]}_{i}"
    if isinstance(case, AddCase):
        return "add_a{}b{}o{}_{}".format(*case.bits, i)
    ib, wb, ob = case.bits
    return f"{case.op}_a{ib}w{wb}o{ob}_{i}"


def _run_and_check(name: str, size_call: str, run_call: str, i: int, scratch: Optional[int] = None) -> str:
    """The code of main that sizes the scratch, runs one call, counts it and compares its output
    (``scratch``: the bytes the call gets instead of what the size query asks for)."""
    return f"""    {{
        const int32_t asked = {size_call};
        const int32_t size = {'asked' if scratch is None else int(scratch)};
        int ok = asked >= 0 && size <= (int32_t)sizeof(arena);
        if (ok) {{
            const mixq_context ctx = {{arena, size}};
            const uint64_t t0 = mixq_counter_ticks();
            const mixq_status st = {run_call};
            const uint64_t t1 = mixq_counter_ticks();
            mixq_report_count("{name}", t1 - t0);
            mixq_report_value("{name}.scratch", size);
            ok = st == MIXQ_OK && mixq_buffers_equal("{name}", out_{i}, exp_{i}, sizeof(exp_{i}));
        }}
        failures += mixq_report_check("{name}", ok);
    }}
"""


def _pool_case_c(i: int, case: PoolCase) -> tuple[str, str]:
    """(data definitions, code of main) of an average pool case."""
    ib, ob = case.bits
    n, h, w, c = case.x.shape
    fh, fw = case.filter_hw
    sh, sw = case.stride
    top, bottom, left, right = case.padding
    oh, ow = (h + top + bottom - fh) // sh + 1, (w + left + right - fw) // sw + 1
    exp = layout.pack_activations(case.oracle(), ob)
    data = _array("uint8_t", f"in_{i}", layout.pack_activations(case.x, ib))
    data += _array("uint8_t", f"exp_{i}", exp)
    data += f"static uint8_t out_{i}[{max(exp.size, 1)}];\n"
    requant = case.x_zp is not None
    zp, ozp = (case.x_zp, case.out_zp) if requant else (0, 0)
    mult, shift = (case.multiplier, case.shift) if requant else (0, 0)
    name = case_name(i, case)
    code = (f"    {{\n        const mixq_pool_params p = {{{{{sh}, {sw}}}, {{{top}, {left}}}, {{{fh}, {fw}}}, {zp}, {ozp}, "
            f"{mult}, {shift}, {case.qmin}, {case.qmax}}};\n"
            f"        const mixq_dims idims = {{{n}, {h}, {w}, {c}}}, odims = {{{n}, {oh}, {ow}, {c}}};\n"
            f"        const mixq_bits bits = {{{ib}, 8, {ob}}};\n"
            + _run_and_check(name, "mixq_avgpool_get_buffer_size(bits, &p, &idims, &odims)",
                             f"mixq_avgpool(bits, &ctx, &p, &idims, in_{i}, &odims, out_{i})", i)
            + "    }\n")
    return data, code


def _add_case_c(i: int, case: AddCase) -> tuple[str, str]:
    """(data definitions, code of main) of an elementwise add case."""
    b1, b2, ob = case.bits
    q = case.params
    exp = layout.pack_activations(case.oracle(), ob)
    data = _array("uint8_t", f"in_{i}", layout.pack_activations(case.x1, b1))
    data += _array("uint8_t", f"in2_{i}", layout.pack_activations(case.x2, b2))
    data += _array("uint8_t", f"exp_{i}", exp)
    data += f"static uint8_t out_{i}[{max(exp.size, 1)}];\n"
    code = (f"    {{\n        const mixq_add_params p = {{{case.x1_zp}, {q.x1_mult}, {q.x1_shift}, {case.x2_zp}, "
            f"{q.x2_mult}, {q.x2_shift}, {q.left_shift}, {case.out_zp}, {q.out_mult}, {q.out_shift}, {case.qmin}, "
            f"{case.qmax}}};\n"
            f"        const mixq_dims dims = {{{', '.join(map(str, case.x1.shape))}}};\n"
            f"        const mixq_bits bits = {{{b1}, {b2}, {ob}}};\n"
            + _run_and_check(case_name(i, case), "mixq_add_get_buffer_size(bits, &dims)",
                             f"mixq_add(bits, &ctx, &p, &dims, in_{i}, in2_{i}, out_{i})", i)
            + "    }\n")
    return data, code


def _case_c(i: int, case) -> tuple[str, str]:
    """(data definitions, the code of main that runs and checks case i)."""
    if isinstance(case, PoolCase):
        return _pool_case_c(i, case)
    if isinstance(case, AddCase):
        return _add_case_c(i, case)
    ib, wb, ob = case.bits
    x = case.x if case.op != "fully_connected" else case.x.reshape(case.x.shape[0], 1, 1, -1)
    expected = case.oracle()
    wpacked, bias_values = case.kernel_weights()
    if case.op == "depthwise":
        _, kh, kw, cout = case.w.shape
        wdims = (1, kh, kw, cout)
    else:
        cout = case.w.shape[0]
        wdims = (cout, *case.w.shape[1:3], case.w.shape[3]) if case.w.ndim == 4 else (cout, 1, 1, case.w.shape[1])
    out4 = expected.reshape(expected.shape[0], 1, 1, -1) if case.op == "fully_connected" else expected
    data = _array("uint8_t", f"in_{i}", layout.pack_activations(x, ib))
    data += _array("uint8_t", f"w_{i}", wpacked)
    data += _array("int32_t", f"mult_{i}", case.multiplier)
    data += _array("int32_t", f"shift_{i}", case.shift)
    if bias_values is not None:
        data += _array("int32_t", f"bias_{i}", bias_values)
    exp = layout.pack_activations(expected, ob)
    data += _array("uint8_t", f"exp_{i}", exp)
    data += f"static uint8_t out_{i}[{max(exp.size, 1)}];\n"
    bias = f"bias_{i}" if bias_values is not None else "0"
    name = case_name(i, case)
    dims = (f"const mixq_dims idims = {{{', '.join(map(str, x.shape))}}}, wdims = {{{', '.join(map(str, wdims))}}}, "
            f"odims = {{{', '.join(map(str, out4.shape))}}};")
    if case.op == "fully_connected":
        params = f"const mixq_fc_params p = {{{case.x_zp}, {case.out_zp}, {case.qmin}, {case.qmax}}};"
    else:
        top, _, left, _ = case.padding
        params = (f"const mixq_conv_params p = {{{case.x_zp}, {case.out_zp}, {{{case.stride[0]}, {case.stride[1]}}}, "
                  f"{{{top}, {left}}}, {{{case.dilation[0]}, {case.dilation[1]}}}, {case.depth_multiplier}, "
                  f"{case.qmin}, {case.qmax}}};")
    # the dispatcher, or the A4W4 entry point taking weights in lane words (no bits argument)
    fn, lead = (f"mixq_{case.op}_a4w4o{ob}_lanes", "") if case.lanes else (f"mixq_{case.op}", "bits, ")
    code = (f"    {{\n        {dims}\n        {params}\n"
            f"        const mixq_per_channel_quant q = {{mult_{i}, shift_{i}}};\n"
            f"        const mixq_bits bits = {{{ib}, {wb}, {ob}}};\n        (void)bits;\n"
            + _run_and_check(name, f"{fn}_get_buffer_size({lead}&p, &idims, &wdims, &odims)",
                             f"{fn}({lead}&ctx, &p, &q, &idims, in_{i}, &wdims, w_{i}, {bias}, &odims, out_{i})", i,
                             case.scratch)
            + "    }\n")
    return data, code


def write_check_firmware(cases: Sequence, path: Path) -> Path:
    """Write the check firmware's C source for ``cases`` to ``path``."""
    data, code = [], []
    for i, case in enumerate(cases):
        d, c = _case_c(i, case)
        data.append(d)
        code.append(c)
    text = (
        "/* Kernel check firmware generated by tvm_mixq.kernellib.firmware: do not edit. */\n"
        '#include "mixq_harness.h"\n#include "mixq_kernels.h"\n\n'
        f"static uint32_t arena[{ARENA_BYTES // 4}];\n"
        + "".join(data)
        + "\nint main(void) {\n    int failures = 0;\n    mixq_counter_start();\n"
        + f'    mixq_report_value("dsp", mixq_has_dsp());\n'
        + "".join(code)
        + "    return failures ? 1 : 0;\n}\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@dataclass
class CaseResult:
    name: str
    ok: bool
    instructions: int
    scratch: int
    macs: int


def case_macs(case) -> int:
    out = case.oracle()
    if isinstance(case, PoolCase):
        return int(out.size * case.filter_hw[0] * case.filter_hw[1])
    if isinstance(case, AddCase):
        return int(out.size)
    if case.op == "depthwise":
        return int(out.size * case.w.shape[1] * case.w.shape[2])
    return int(out.size * np.prod(case.w.shape[1:]))


def run_cases(cases: Sequence, target: str, work_dir: Path) -> tuple[list[CaseResult], object]:
    """Build the check firmware for ``target`` (cortex-m4 / cortex-m7), run it in QEMU, and return
    one :class:`CaseResult` per case plus the raw run result."""
    from ..emu import toolchain

    work_dir = Path(work_dir)
    src = write_check_firmware(cases, work_dir / "kernel_check.c")
    objs = toolchain.compile_objects(kernel_sources(), target, default_build_dir() / f"obj-{target}",
                                     include_dirs=include_dirs())
    elf = toolchain.build_elf([src, *objs], target, work_dir / "kernel_check.elf", include_dirs=include_dirs())
    res = toolchain.run_elf(elf, target, timeout=600)
    results = []
    for i, case in enumerate(cases):
        name = case_name(i, case)
        results.append(CaseResult(name, res.checks.get(name, False), res.instructions.get(name, -1),
                                  res.values.get(f"{name}.scratch", -1), case_macs(case)))
    return results, res


def check_in_qemu(cases: Sequence, target: str, work_dir: Path) -> tuple[list[CaseResult], list[str]]:
    """:func:`run_cases`, and what went wrong: a firmware built without the DSP path, the cases
    whose output differs from the oracle's (with their description), a non-zero exit code."""
    results, raw = run_cases(cases, target, work_dir)
    problems = [] if raw.values.get("dsp") == 1 else ["firmware built without the DSP path"]
    problems += [f"{r.name}: {c.describe()}" for r, c in zip(results, cases) if not r.ok]
    if raw.exit_code != 0:
        problems.append(f"exit code {raw.exit_code}")
    return results, problems
