/*
 * mixq_tflm_ops.h - registrations of the MIXQ custom ops and the layout of their options.
 *
 * Depends only on TFLM's C API headers (no flatbuffer schema): include mixq_tflm.h from
 * firmware, this header from code that builds its own resolver.
 *
 * Inputs and outputs
 *   MIXQ_CONV_2D, MIXQ_DEPTHWISE_CONV_2D, MIXQ_FULLY_CONNECTED:
 *     inputs  [x, weights (UINT8, kernel layout), bias (INT32 [C_out] or -1),
 *              requant (INT32 [2, C_out]: multipliers, shifts)]
 *     outputs [y]
 *   MIXQ_ADD:             inputs [x1, x2], outputs [y] (same logical shape, no broadcasting)
 *   MIXQ_AVERAGE_POOL_2D: inputs [x], outputs [y]
 *
 * Custom options: one flexbuffer map. Integer scalars unless noted; shapes are [n, h, w, c].
 *   every op:        "version" (1), "out_bits", "output_zp", "act_min", "act_max"
 *   conv, depthwise: "in_bits", "w_bits", "input_zp", "in_shape", "filter_shape"
 *                    ([c_out, kh, kw, c_in]; depthwise [1, kh, kw, c_out]), "out_shape",
 *                    "stride" [h, w], "padding" [top, left], "dilation" [h, w],
 *                    "depth_multiplier" (depthwise)
 *   fully connected: "in_bits", "w_bits", "input_zp", "in_shape" [n, 1, 1, k],
 *                    "filter_shape" [c_out, 1, 1, k], "out_shape" [n, 1, 1, c_out]
 *   add:             "in1_bits", "in2_bits", "shape", "in1_zp", "in1_mult", "in1_shift",
 *                    "in2_zp", "in2_mult", "in2_shift", "left_shift", "out_mult", "out_shift"
 *   average pool:    "in_bits", "input_zp", "in_shape", "out_shape", "filter" [h, w],
 *                    "stride" [h, w], "padding" [top, left], "multiplier", "shift"
 *                    (multiplier 0: input and output share scale and zero point)
 */
#ifndef MIXQ_TFLM_OPS_H_
#define MIXQ_TFLM_OPS_H_

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_common.h"

namespace mixq_tflm {

/* Version of the custom options layout the ops accept. */
constexpr int kOptionsVersion = 1;

TFLMRegistration Register_MIXQ_CONV_2D();
TFLMRegistration Register_MIXQ_DEPTHWISE_CONV_2D();
TFLMRegistration Register_MIXQ_FULLY_CONNECTED();
TFLMRegistration Register_MIXQ_ADD();
TFLMRegistration Register_MIXQ_AVERAGE_POOL_2D();

/* Custom op name (as written in the model) and its registration. */
struct OpEntry {
  const char* name;
  TFLMRegistration (*registration)();
};

constexpr int kNumOps = 5;

/* The kNumOps ops, in a fixed order. */
const OpEntry* AllOps();

}  // namespace mixq_tflm

#endif  // MIXQ_TFLM_OPS_H_
