/*
 * mixq_tflm.h - MIXQ custom operators for TensorFlow Lite Micro.
 *
 * `mixq tflm convert` rewrites an int8 .tflite so that the layers the mixed-precision plan puts
 * below 8 bits become custom operators (MIXQ_CONV_2D, MIXQ_DEPTHWISE_CONV_2D,
 * MIXQ_FULLY_CONNECTED, MIXQ_ADD, MIXQ_AVERAGE_POOL_2D). This header is all firmware needs to
 * run such a model: add the sources listed by mixq_tflm.mk / mixq_tflm.cmake to the build and
 * call MixqRegisterOps() on the op resolver next to the builtin registrations:
 *
 *     static tflite::MicroMutableOpResolver<12> resolver;
 *     resolver.AddConv2D();
 *     ...
 *     MixqRegisterOps(resolver);  // five more slots
 *
 * Semantics (common to all MIXQ ops)
 *   - Activations are NHWC. An 8-bit activation is int8, exactly as for builtin ops, so MIXQ and
 *     builtin ops exchange 8-bit tensors directly. A 4- or 2-bit activation is unsigned and
 *     packed little-end first over the flattened NHWC tensor (element i in bits
 *     [(i % k) * b, (i % k + 1) * b) of byte i / k, k = 8 / b); the model declares such a tensor
 *     as UINT8 of shape [packed bytes], its logical shape and bitwidth are in the custom options
 *     of the MIXQ ops that read and write it.
 *   - Weights are signed, zero point 0, per output channel, in the kernel layout of the mixq
 *     kernel library (mixq_kernels.h); the model declares them as a UINT8 [bytes] constant.
 *   - Requantization is TFLite's: out = clamp(MultiplyByQuantizedMultiplier(acc, m[c], s[c]) +
 *     output_zp, act_min, act_max). Per-channel multipliers and shifts are a constant INT32
 *     [2, C_out] input (row 0 multipliers, row 1 shifts) so that they stay in flash.
 *   - Custom options are a flexbuffer map (keys documented in mixq_tflm_ops.h), parsed once in
 *     Init; Prepare checks every tensor against them and requests the kernel's scratch memory
 *     from the arena; Invoke only dispatches into the kernel library.
 */
#ifndef MIXQ_TFLM_H_
#define MIXQ_TFLM_H_

#include "mixq_tflm_ops.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

/* Number of resolver slots MixqRegisterOps() takes. */
#define MIXQ_TFLM_NUM_OPS 5

/* Add every MIXQ custom op to an existing resolver (it needs MIXQ_TFLM_NUM_OPS free slots).
 * Returns kTfLiteError if the resolver is full or an op is already registered. */
template <unsigned int tOpCount>
TfLiteStatus MixqRegisterOps(tflite::MicroMutableOpResolver<tOpCount>& resolver) {
  const mixq_tflm::OpEntry* ops = mixq_tflm::AllOps();
  for (int i = 0; i < mixq_tflm::kNumOps; ++i) {
    const TFLMRegistration registration = ops[i].registration();
    if (resolver.AddCustom(ops[i].name, &registration) != kTfLiteOk) {
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

template <unsigned int tOpCount>
TfLiteStatus MixqRegisterOps(tflite::MicroMutableOpResolver<tOpCount>* resolver) {
  return resolver != nullptr ? MixqRegisterOps(*resolver) : kTfLiteError;
}

#endif  // MIXQ_TFLM_H_
