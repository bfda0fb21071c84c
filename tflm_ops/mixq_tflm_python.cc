/*
 * mixq_tflm_python.cc - registerer for the TFLM Python interpreter (pip package tflite-micro).
 *
 * The interpreter looks a registerer up by name in the process:
 *     runtime.Interpreter.from_file(path, custom_op_registerers=["MixqTflmRegisterer"], ...)
 * after the shared library holding it was loaded with RTLD_GLOBAL. Only the host build
 * (tvm_mixq.tflm.build) compiles this file; firmware uses MixqRegisterOps() from mixq_tflm.h.
 *
 * MicroMutableOpResolver::AddCustom is inlined here, so this library writes the resolver with
 * the layout of the TFLM headers it was compiled against. The registerer checks afterwards,
 * through the interpreter's own (virtual) FindOp, that every op is found with our functions, and
 * reports failure otherwise: a runtime built from other TFLM sources is refused, not corrupted.
 */
#include <cstdarg>
#include <cstdio>

#include "mixq_tflm.h"
#include "python/tflite_micro/python_ops_resolver.h"

/* TFLM's log function lives in the interpreter's module, which Python loads privately; this
 * library carries its own (weak, so a global definition wins). */
extern "C++" __attribute__((weak)) void MicroPrintf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

extern "C" bool MixqTflmRegisterer(tflite::PythonOpsResolver* resolver) {
  if (MixqRegisterOps(*resolver) != kTfLiteOk) {
    return false;
  }
  const mixq_tflm::OpEntry* ops = mixq_tflm::AllOps();
  for (int i = 0; i < mixq_tflm::kNumOps; ++i) {
    const TFLMRegistration* found = static_cast<const tflite::MicroOpResolver*>(resolver)->FindOp(ops[i].name);
    if (found == nullptr || found->invoke != ops[i].registration().invoke ||
        found->prepare != ops[i].registration().prepare) {
      MicroPrintf("MixqTflmRegisterer: op %s not found after registration: the tflite-micro runtime was built "
                  "from TFLM sources with another resolver layout than TFLM_DIR",
                  ops[i].name);
      return false;
    }
  }
  return true;
}

/* Layout facts of the TFLM headers this library was compiled against, for diagnostics. */
extern "C" int MixqTflmAbiInfo(int what) {
  switch (what) {
    case 0:
      return static_cast<int>(sizeof(TfLiteContext));
    case 1:
      return static_cast<int>(sizeof(TfLiteNode));
    case 2:
      return static_cast<int>(sizeof(TFLMRegistration));
    case 3:
      return static_cast<int>(sizeof(tflite::PythonOpsResolver));
    default:
      return -1;
  }
}
