/*
 * mixq_tflm_ops.cc - the table of MIXQ custom ops (names as `mixq tflm convert` writes them).
 */
#include "mixq_tflm_ops.h"

namespace mixq_tflm {

const OpEntry* AllOps() {
  static const OpEntry kOps[kNumOps] = {
      {"MIXQ_CONV_2D", Register_MIXQ_CONV_2D},
      {"MIXQ_DEPTHWISE_CONV_2D", Register_MIXQ_DEPTHWISE_CONV_2D},
      {"MIXQ_FULLY_CONNECTED", Register_MIXQ_FULLY_CONNECTED},
      {"MIXQ_ADD", Register_MIXQ_ADD},
      {"MIXQ_AVERAGE_POOL_2D", Register_MIXQ_AVERAGE_POOL_2D},
  };
  return kOps;
}

}  // namespace mixq_tflm
