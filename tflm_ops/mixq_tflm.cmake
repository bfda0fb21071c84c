# mixq_tflm.cmake - CMake fragment: a static library `mixq_tflm` with the MIXQ TFLM ops and the
# kernel library they run on.
#
#     set(MIXQ_DIR path/to/tvm-mixq)
#     include(${MIXQ_DIR}/tflm_ops/mixq_tflm.cmake)
#     mixq_tflm_add_library(my_tflm_target)   # the target that provides TFLM's headers
#     target_link_libraries(firmware PRIVATE mixq_tflm)
#
# `my_tflm_target` must carry TFLM's include directories (TFLM, flatbuffers, gemmlowp) and its
# compile definitions (TF_LITE_STATIC_MEMORY); they are forwarded to `mixq_tflm`. The firmware
# then includes "mixq_tflm.h" and calls MixqRegisterOps(resolver).

if(NOT DEFINED MIXQ_DIR)
  get_filename_component(MIXQ_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()

set(MIXQ_TFLM_CC_SRCS
  ${MIXQ_DIR}/tflm_ops/mixq_tflm_common.cc
  ${MIXQ_DIR}/tflm_ops/mixq_tflm_ops.cc
  ${MIXQ_DIR}/tflm_ops/mixq_weighted_ops.cc
  ${MIXQ_DIR}/tflm_ops/mixq_eltwise_ops.cc)
file(GLOB MIXQ_TFLM_C_SRCS ${MIXQ_DIR}/kernels/src/*.c ${MIXQ_DIR}/kernels/generated/*.c)

function(mixq_tflm_add_library tflm_target)
  add_library(mixq_tflm STATIC ${MIXQ_TFLM_CC_SRCS} ${MIXQ_TFLM_C_SRCS})
  target_include_directories(mixq_tflm
    PUBLIC ${MIXQ_DIR}/tflm_ops ${MIXQ_DIR}/kernels/include
    PRIVATE ${MIXQ_DIR}/kernels/src
            $<TARGET_PROPERTY:${tflm_target},INTERFACE_INCLUDE_DIRECTORIES>)
  target_compile_definitions(mixq_tflm
    PRIVATE $<TARGET_PROPERTY:${tflm_target},INTERFACE_COMPILE_DEFINITIONS>)
  set_source_files_properties(${MIXQ_TFLM_C_SRCS} PROPERTIES COMPILE_OPTIONS "-std=c99")
  set_target_properties(mixq_tflm PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
endfunction()
