# mixq_tflm.mk - Make fragment: the MIXQ TFLM ops and the kernel library they run on.
#
# In a firmware Makefile that already builds TFLM (its headers, flatbuffers and gemmlowp on the
# include path, -DTF_LITE_STATIC_MEMORY as every TFLM build sets):
#
#     MIXQ_DIR := path/to/tvm-mixq
#     include $(MIXQ_DIR)/tflm_ops/mixq_tflm.mk
#     CXX_SRCS += $(MIXQ_TFLM_CC_SRCS)
#     C_SRCS   += $(MIXQ_TFLM_C_SRCS)
#     CPPFLAGS += $(MIXQ_TFLM_INCLUDES)
#
# then #include "mixq_tflm.h" and call MixqRegisterOps(resolver). For Cortex-M builds with the
# DSP extension (-mcpu=cortex-m4/m7/m33 ...) the kernels take their packed-SIMD paths by
# themselves (__ARM_FEATURE_DSP). The C sources are C99, the C++ sources C++17 (as TFLM).

MIXQ_DIR ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

# Everything in tflm_ops/ except the registerer of the host Python interpreter.
MIXQ_TFLM_CC_SRCS := \
  $(MIXQ_DIR)/tflm_ops/mixq_tflm_common.cc \
  $(MIXQ_DIR)/tflm_ops/mixq_tflm_ops.cc \
  $(MIXQ_DIR)/tflm_ops/mixq_weighted_ops.cc \
  $(MIXQ_DIR)/tflm_ops/mixq_eltwise_ops.cc

MIXQ_TFLM_C_SRCS := \
  $(wildcard $(MIXQ_DIR)/kernels/src/*.c) \
  $(wildcard $(MIXQ_DIR)/kernels/generated/*.c)

MIXQ_TFLM_INCLUDES := \
  -I$(MIXQ_DIR)/tflm_ops \
  -I$(MIXQ_DIR)/kernels/include \
  -I$(MIXQ_DIR)/kernels/src
