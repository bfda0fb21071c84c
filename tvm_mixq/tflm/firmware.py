"""A Cortex-M firmware running a (converted) model in TFLM with the MIXQ ops, in QEMU.

:func:`build_firmware` compiles TFLM's interpreter and the builtin kernels the model uses from
TFLM_DIR, the MIXQ ops (``tflm_ops/``) and the kernel library (``kernels/``, packed-SIMD paths on
cores with the DSP extension) with ``arm-none-eabi-g++``/``gcc``, and links them with a generated
``main.cc`` and the project's QEMU harness (``microtvm_templates/qemu_cortex_m``). The firmware
registers the builtin ops and calls ``MixqRegisterOps(resolver)`` as any TFLM application would,
runs every sample, compares the output with the expected bytes, and reports the arena TFLM used
(``arena_used_bytes``: head and tail) and the instructions of each ``Invoke``.

Object files are cached per source and flags (``$MIXQ_CACHE_DIR/tflm/firmware``), so only the
generated ``main.cc`` and data are compiled again for another model.
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..emu.targets import HARNESS_DIR, HARNESS_SOURCES, INSTRUCTIONS_PER_TICK, get_target
from ..emu.toolchain import EmulationError, find_tool, run_elf
from ..errors import MixqError
from ..graph import Graph
from .runner import ArenaReport
from .build import (
    KERNELS_DIR,
    OPS_DIR,
    TflmSetupError,
    default_cache_dir,
    find_flatbuffers_include,
    find_gemmlowp_include,
    flatbuffers_version,
    resolve_tflm_dir,
    schema_flatbuffers_version,
    tflm_commit,
    version_overlay,
)

log = logging.getLogger(__name__)

#: Builtin op -> (MicroMutableOpResolver method, TFLM kernel sources under micro/kernels).
BUILTIN_KERNELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CONV_2D": ("AddConv2D", ("conv.cc", "conv_common.cc")),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", ("depthwise_conv.cc", "depthwise_conv_common.cc")),
    "FULLY_CONNECTED": ("AddFullyConnected", ("fully_connected.cc", "fully_connected_common.cc")),
    "ADD": ("AddAdd", ("add.cc", "add_common.cc")),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", ("pooling.cc", "pooling_common.cc")),
    "MAX_POOL_2D": ("AddMaxPool2D", ("pooling.cc", "pooling_common.cc")),
    "RESHAPE": ("AddReshape", ("reshape.cc", "reshape_common.cc")),
    "SOFTMAX": ("AddSoftmax", ("softmax.cc", "softmax_common.cc")),
    "QUANTIZE": ("AddQuantize", ("quantize.cc", "quantize_common.cc")),
    "DEQUANTIZE": ("AddDequantize", ("dequantize.cc", "dequantize_common.cc")),
    "PAD": ("AddPad", ("pad.cc", "pad_common.cc")),
    "MEAN": ("AddMean", ("reduce.cc", "reduce_common.cc")),
}

#: TFLM's interpreter, allocator and planner (paths under TFLM_DIR).
TFLM_CORE = (
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc",
    "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/runtime_shape.cc",
    "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "tensorflow/lite/micro/arena_allocator/non_persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/recording_single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/recording_micro_allocator.cc",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/linear_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/non_persistent_buffer_planner_shim.cc",
    "tensorflow/lite/micro/tflite_bridge/flatbuffer_conversions_bridge.cc",
    "tensorflow/lite/micro/tflite_bridge/micro_error_reporter.cc",
    "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
    "tensorflow/lite/micro/flatbuffer_utils.cc",
    "tensorflow/lite/micro/memory_helpers.cc",
    "tensorflow/lite/micro/micro_allocation_info.cc",
    "tensorflow/lite/micro/micro_allocator.cc",
    "tensorflow/lite/micro/micro_context.cc",
    "tensorflow/lite/micro/micro_interpreter.cc",
    "tensorflow/lite/micro/micro_interpreter_context.cc",
    "tensorflow/lite/micro/micro_interpreter_graph.cc",
    "tensorflow/lite/micro/micro_log.cc",
    "tensorflow/lite/micro/micro_op_resolver.cc",
    "tensorflow/lite/micro/micro_profiler.cc",
    "tensorflow/lite/micro/micro_resource_variable.cc",
    "tensorflow/lite/micro/micro_time.cc",
    "tensorflow/lite/micro/micro_utils.cc",
    "tensorflow/lite/micro/kernels/kernel_util.cc",
)

_CXX = "arm-none-eabi-g++"
_CC = "arm-none-eabi-gcc"
_COMMON = ["-Os", "-ffunction-sections", "-fdata-sections"]
_CXXFLAGS = ["-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-unwind-tables",
             "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_MCU_DEBUG_LOG", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0", "-DNDEBUG"]
_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]

_MAIN = """// Generated by tvm_mixq.tflm.firmware: runs the model in TFLM with the MIXQ ops.
#include <string.h>

#include "mixq_harness.h"
#include "mixq_tflm.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

{data}

alignas(16) static uint8_t g_arena[{arena_size}];

// Static objects are never destroyed on bare metal; the harness has no C runtime start files.
extern "C" {{
void* __dso_handle = nullptr;
}}

static void LogToConsole(const char* s) {{ mixq_puts(s); }}

int main(void) {{
  RegisterDebugLogCallback(LogToConsole);
  static tflite::MicroMutableOpResolver<{op_count}> resolver;
{adds}
  if (MixqRegisterOps(resolver) != kTfLiteOk) {{
    mixq_puts("MixqRegisterOps failed\\n");
    return 2;
  }}
  const tflite::Model* model = tflite::GetModel(g_model);
  static tflite::RecordingMicroInterpreter interpreter(model, resolver, g_arena, sizeof(g_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) {{
    mixq_puts("AllocateTensors failed\\n");
    return 2;
  }}
  mixq_report_value("arena_used_bytes", (int64_t)interpreter.arena_used_bytes());
  interpreter.GetMicroAllocator().PrintAllocations();
  int failures = 0;
  for (int s = 0; s < {samples}; ++s) {{
    memcpy(interpreter.input(0)->data.data, g_input + s * {in_bytes}, {in_bytes});
    mixq_counter_start();
    const TfLiteStatus status = interpreter.Invoke();
    mixq_report_count("invoke", mixq_counter_ticks());
    if (status != kTfLiteOk) {{
      mixq_puts("Invoke failed\\n");
      return 2;
    }}
    failures += !mixq_buffers_equal("output", interpreter.output(0)->data.data, g_expected + s * {out_bytes},
                                    {out_bytes});
  }}
  mixq_report_check("outputs", failures == 0);
  return failures ? 1 : 0;
}}
"""


@dataclass
class FirmwareRun:
    """What the firmware reported: TFLM's arena (used bytes, and its allocation report) and the
    instructions of every Invoke."""

    bit_exact: bool
    arena_used_bytes: int
    arena: ArenaReport
    instructions_per_invoke: list[int]
    elf: Path


def _ruy_profiler_stub(cache: Path) -> Path:
    """Include directory with ``ruy/profiler/instrumentation.h`` as ruy defines it without its
    profiler (a no-op ScopeLabel): the only ruy header TFLM's reference kernels include, and
    ruy is on no registry here."""
    d = cache / "ruy_stub"
    (d / "ruy" / "profiler").mkdir(parents=True, exist_ok=True)
    (d / "ruy" / "profiler" / "instrumentation.h").write_text(
        "/* Generated by tvm_mixq.tflm.firmware: ruy's profiler labels compiled out. */\n"
        "#ifndef MIXQ_RUY_PROFILER_STUB_H_\n#define MIXQ_RUY_PROFILER_STUB_H_\n"
        "namespace ruy {\nnamespace profiler {\nclass ScopeLabel {\n public:\n"
        "  template <typename... Args>\n  explicit ScopeLabel(Args...) {}\n};\n}  // namespace profiler\n"
        "}  // namespace ruy\n#endif\n")
    return d


def _c_array(name: str, data: bytes) -> str:
    body = ",".join(str(b) for b in data)
    return f"alignas(16) static const unsigned char {name}[{max(len(data), 1)}] = {{{body}}};"


def _headers_digest(root: Path, own: bool) -> str:
    """Identity of the headers objects depend on: TFLM_DIR's commit, and (``own``) the project's."""
    h = hashlib.sha256((tflm_commit(root) or str(root)).encode())
    for d in (OPS_DIR, KERNELS_DIR / "include", KERNELS_DIR / "src", HARNESS_DIR) if own else ():
        for f in sorted(d.glob("*.h")):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _compile(tool: str, flags: list[str], src: Path, obj_dir: Path) -> Path:
    digest = hashlib.sha256((tool + " ".join(flags)).encode() + src.read_bytes()).hexdigest()[:12]
    obj = obj_dir / f"{src.stem}-{digest}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".tmp{os.getpid()}")
        proc = subprocess.run([tool, *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EmulationError(f"{tool} failed compiling {src.name}: {proc.stderr.strip()[-2000:]}")
        os.replace(tmp, obj)
    return obj


def build_firmware(model: bytes, graph: Graph, inputs: np.ndarray, expected: np.ndarray,
                   target: str = "cortex-m7", tflm_dir: Optional[str | os.PathLike] = None,
                   arena_size: int = 256 * 1024, work_dir: Optional[Path] = None) -> Path:
    """Build the firmware ELF for ``model`` (``graph`` gives its op kinds) and the samples.

    ``inputs``/``expected``: the model's (single) input and output, one sample per leading index.
    """
    root = resolve_tflm_dir(tflm_dir)
    tgt = get_target(target)
    cxx, cc = find_tool(_CXX), find_tool(_CC)
    kinds = sorted({op.kind for op in graph.ops if not op.kind.startswith("MIXQ_")})
    missing = [k for k in kinds if k not in BUILTIN_KERNELS]
    if missing:
        raise MixqError(f"the firmware builder has no TFLM kernel list for {', '.join(missing)}")
    cache = (work_dir or default_cache_dir()) / "firmware"
    obj_dir = cache / "objects"
    obj_dir.mkdir(parents=True, exist_ok=True)
    fb = find_flatbuffers_include(root)
    includes = []
    want = schema_flatbuffers_version(root)
    if want is not None and flatbuffers_version(fb) != want:
        includes += ["-isystem", str(version_overlay(cache, want))]
    includes += ["-isystem", str(root), "-isystem", str(fb), "-isystem", str(_ruy_profiler_stub(cache)),
                 "-isystem", str(find_gemmlowp_include(root)),
                 "-I", str(OPS_DIR), "-I", str(KERNELS_DIR / "include"), "-I", str(HARNESS_DIR)]
    cpu = list(tgt.cpu_flags)
    # the headers' identity goes into the flags (a define), hence into the objects' cache keys
    tflm_cxxflags = cpu + [f"-DMIXQ_FW_HEADERS={_headers_digest(root, False)[:16]}"] + _COMMON + _CXXFLAGS + includes
    cpu_key = cpu + [f"-DMIXQ_FW_HEADERS={_headers_digest(root, True)[:16]}"]
    cxxflags = cpu_key + _COMMON + _CXXFLAGS + includes
    tflm_sources = [root / s for s in TFLM_CORE]
    for k in kinds:
        tflm_sources += [root / "tensorflow/lite/micro/kernels" / s for s in BUILTIN_KERNELS[k][1]]
    absent = [s for s in tflm_sources if not s.is_file()]
    if absent:
        raise TflmSetupError(f"TFLM_DIR={root} lacks {absent[0].relative_to(root)}")
    objects = [_compile(cxx, tflm_cxxflags, s, obj_dir) for s in dict.fromkeys(tflm_sources)]
    ops = [OPS_DIR / n for n in ("mixq_tflm_common.cc", "mixq_tflm_ops.cc", "mixq_weighted_ops.cc",
                                 "mixq_eltwise_ops.cc")]
    objects += [_compile(cxx, cxxflags + ["-Wall", "-Wextra", "-Werror"], s, obj_dir) for s in ops]
    kernel_srcs = sorted((KERNELS_DIR / "src").glob("*.c")) + sorted((KERNELS_DIR / "generated").glob("*.c"))
    cflags = cpu_key + ["-Ofast", "-ffunction-sections", "-fdata-sections"] + _CFLAGS + \
        ["-I", str(KERNELS_DIR / "include"), "-I", str(KERNELS_DIR / "src")]
    objects += [_compile(cc, cflags, s, obj_dir) for s in kernel_srcs]
    objects += [_compile(cc, cpu_key + _COMMON + _CFLAGS + ["-I", str(HARNESS_DIR)], HARNESS_DIR / s, obj_dir)
                for s in HARNESS_SOURCES]

    samples = int(inputs.shape[0])
    in_bytes = int(np.prod(inputs.shape[1:])) * inputs.dtype.itemsize
    out_bytes = int(np.prod(expected.shape[1:])) * expected.dtype.itemsize
    data = "\n".join([_c_array("g_model", model), _c_array("g_input", np.ascontiguousarray(inputs).tobytes()),
                      _c_array("g_expected", np.ascontiguousarray(expected).tobytes())])
    adds = "\n".join(f"  resolver.{BUILTIN_KERNELS[k][0]}();" for k in kinds)
    main = _MAIN.format(data=data, arena_size=arena_size, op_count=len(kinds) + 5, adds=adds, samples=samples,
                        in_bytes=in_bytes, out_bytes=out_bytes)
    digest = hashlib.sha256(main.encode()).hexdigest()[:12]
    build = cache / f"fw-{digest}"
    build.mkdir(parents=True, exist_ok=True)
    main_cc = build / "main.cc"
    main_cc.write_text(main)
    objects.append(_compile(cxx, cxxflags, main_cc, obj_dir))
    elf = build / "tflm_mixq.elf"
    cmd = [cxx, *cpu, *map(str, objects), f"-T{tgt.linker_script_path}", f"-L{HARNESS_DIR}", "-nostartfiles",
           "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EmulationError(f"linking the TFLM firmware failed: {proc.stderr.strip()[-3000:]}")
    return elf


def run_firmware(elf: Path, target: str = "cortex-m7", samples: int = 1) -> FirmwareRun:
    """Run the firmware in QEMU and collect its report."""
    result = run_elf(elf, target, timeout=600.0)
    if "arena_used_bytes" not in result.values:
        raise EmulationError(f"the firmware stopped early (exit {result.exit_code}): {result.console.strip()[-500:]}")
    counts = [t * INSTRUCTIONS_PER_TICK for t in _all_counts(result.console, "invoke")]
    return FirmwareRun(result.exit_code == 0 and result.checks.get("outputs", False),
                       int(result.values["arena_used_bytes"]), ArenaReport.parse(result.console), counts, elf)


def _all_counts(console: str, name: str) -> list[int]:
    return [int(line.split()[3]) for line in console.splitlines()
            if line.startswith("@mixq count ") and len(line.split()) == 4 and line.split()[2] == name]


def firmware_check(model: bytes, graph: Graph, inputs: np.ndarray, expected: np.ndarray,
                   target: str = "cortex-m7", tflm_dir: Optional[str | os.PathLike] = None) -> FirmwareRun:
    """Build and run; ``bit_exact`` says whether every sample's output matched ``expected``."""
    elf = build_firmware(model, graph, inputs, expected, target, tflm_dir)
    return run_firmware(elf, target, int(inputs.shape[0]))


def expected_outputs(planned: Graph, inputs: np.ndarray) -> np.ndarray:
    """Reference outputs (TFLM numerics) of a planned graph for samples along axis 0."""
    from ..reference.interpreter import Interpreter, ReferenceOptions

    return Interpreter(planned, ReferenceOptions(tflite_float_fc=False)).run([inputs])[0]
